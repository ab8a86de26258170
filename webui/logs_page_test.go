package webui

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// logsEnv is a test env whose server serves GET /logs. The route belongs
// in Server.routes; until it is there, it is added here so that the page
// itself is tested (TestLogsRouteRegistered says it is missing).
func logsEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, nil)
	if !hasRoute(e.srv.engine, "GET", "/logs") {
		e.srv.engine.Group("/", e.srv.authPage).GET("/logs", e.srv.logsPage)
	}
	return e
}

func hasRoute(g *gin.Engine, method, path string) bool {
	return slices.ContainsFunc(g.Routes(), func(r gin.RouteInfo) bool { return r.Method == method && r.Path == path })
}

func TestLogsRouteRegistered(t *testing.T) {
	e := newEnv(t, nil)
	if !hasRoute(e.srv.engine, "GET", "/logs") {
		t.Fatal(`GET /logs is not routed: add pages.GET("/logs", s.logsPage) to Server.routes`)
	}
}

func TestLogsPageAnonymous(t *testing.T) {
	e := logsEnv(t)
	for _, path := range []string{"/logs", "/logs?host=example.com"} {
		if w := e.do(req{method: "GET", path: path}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
			t.Errorf("%s anonymous: %d %q", path, w.Code, w.Header().Get("Location"))
		}
	}
}

func TestLogsPage(t *testing.T) {
	e := logsEnv(t)
	cookie, csrf := e.login("alice")
	body := getPage(t, e, req{cookie: cookie}, "/logs")
	for _, want := range []string{
		`<form id="search" class="filters" method="get" action="/logs"`,
		`name="since" type="datetime-local"`, `name="until" type="datetime-local"`,
		`name="user"`, `name="client"`, `name="host"`, `name="host_suffix"`, `name="category"`,
		`<select id="f-action" name="action"><option value="" selected>any</option><option value="allow">allow</option>`,
		`<option value="deny">deny</option>`, `<option value="monitor">monitor</option>`,
		`<select id="f-kind" name="kind"><option value="" selected>any</option><option value="http">http</option>`,
		`name="status" type="number"`, `name="q" type="search"`,
		`<tbody id="rows"></tbody>`, `id="more"`, `id="tail"`, `id="error"`,
		`<meta name="csrf-token" content="` + csrf + `">`, `id="logout"`,
		`<script src="/static/app.js"></script>`, `<script src="/static/logs.js"></script>`,
		`<strong id="user">alice</strong>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("logs page lacks %s", want)
		}
	}
	assertNoInlineScript(t, body)
	assertNoScriptBodies(t, body)

	// Read-only token: the page, without CSRF token or logout.
	tok := e.token("alice", true, e.clock.Now().Add(3600e9))
	w := e.do(req{method: "GET", path: "/logs", bearer: tok})
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "csrf-token") || strings.Contains(w.Body.String(), `id="logout"`) {
		t.Errorf("token page: %d %s", w.Code, w.Body)
	}
	// The page only renders the form: it searches nothing itself.
	if n := e.logs.calls(); n != 0 {
		t.Errorf("the page searched the logs %d times", n)
	}
}

// assertNoScriptBodies checks that every <script> element is empty.
func assertNoScriptBodies(t *testing.T, body string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`(?is)<script[^>]*>(.*?)</script>`).FindAllStringSubmatch(body, -1) {
		if strings.TrimSpace(m[1]) != "" {
			t.Errorf("inline script body %q", m[1])
		}
	}
	if strings.Count(strings.ToLower(body), "<script") != strings.Count(strings.ToLower(body), "</script>") {
		t.Error("unbalanced script tags")
	}
	if regexp.MustCompile(`(?i)<style|\sstyle\s*=|javascript:`).MatchString(body) {
		t.Error("inline style or javascript: URL")
	}
}

func TestLogsPageKeepsFiltersEscaped(t *testing.T) {
	e := logsEnv(t)
	cookie, _ := e.login("audrey")
	path := "/logs?host=%3Cscript%3Ex%3C%2Fscript%3E&user=%22%3E%3Cimg+src%3Dx%3E&since=2026-03-01T10%3A00" +
		"&action=block&kind=%3Cb%3Edns&q=a%26b&status=403&client=10.0.0.1&host_suffix=.example&category=ads"
	w := e.do(req{method: "GET", path: path, cookie: cookie})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, bad := range []string{"<script>x", "<img", "<b>dns"} {
		if strings.Contains(body, bad) {
			t.Errorf("unescaped %s in:\n%s", bad, body)
		}
	}
	for _, want := range []string{
		`name="host" type="text" autocapitalize="none" spellcheck="false" value="&lt;script&gt;x&lt;/script&gt;"`,
		`value="&#34;&gt;&lt;img src=x&gt;"`,
		`value="2026-03-01T10:00"`, `value="a&amp;b"`, `value="403"`, `value="10.0.0.1"`, `value=".example"`, `value="ads"`,
		`<option value="block" selected>block</option>`,
		`<option value="">any</option><option value="allow">`,
		// A kind the form does not know is kept, escaped, and selected.
		`<option value="&lt;b&gt;dns" selected>&lt;b&gt;dns</option>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("logs page lacks %s:\n%s", want, body)
		}
	}
	assertNoInlineScript(t, body)
	assertNoScriptBodies(t, body)
}

func TestLogsScript(t *testing.T) {
	e := newEnv(t, nil)
	// Data goes in with textContent and setAttribute only.
	assertScript(t, e, "logs.js", `"/api/v1/logs?"`, `"/api/v1/events"`, `"audit"`, `"dropped"`, `"before"`, "textContent")
	if w := e.do(req{method: "GET", path: "/static/style.css"}); !strings.Contains(w.Body.String(), "max-width: 700px") {
		t.Error("style.css has no narrow-screen rules for the logs table")
	}
}
