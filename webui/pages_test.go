package webui

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestLoginPage(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(req{method: "GET", path: "/login"})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{`<form id="login" method="post" action="/api/v1/session"`, `autocomplete="current-password"`,
		`<label for="username">`, `<script src="/static/login.js"></script>`, `name="viewport"`, `href="/static/style.css"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	assertNoInlineScript(t, body)
	// The assets it needs are served, with the right types.
	for path, ct := range map[string]string{"/static/login.js": "text/javascript; charset=utf-8", "/static/app.js": "text/javascript; charset=utf-8", "/static/style.css": "text/css; charset=utf-8"} {
		w := e.do(req{method: "GET", path: path})
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != ct || w.Body.Len() == 0 || w.Header().Get("ETag") == "" {
			t.Errorf("%s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		// Revalidation works.
		w2 := e.do(req{method: "GET", path: path, header: map[string]string{"If-None-Match": w.Header().Get("ETag")}})
		if w2.Code != http.StatusNotModified {
			t.Errorf("%s revalidation: %d", path, w2.Code)
		}
	}
	for _, path := range []string{"/static/", "/static/nope.js", "/static/../templates/login.html", "/static//etc/passwd"} {
		if w := e.do(req{method: "GET", path: path}); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d", path, w.Code)
		}
	}
	// Logged in already: on to the start page.
	cookie, _ := e.login("alice")
	if w := e.do(req{method: "GET", path: "/login", cookie: cookie}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Errorf("logged in: %d %q", w.Code, w.Header().Get("Location"))
	}
}

var scriptTag = regexp.MustCompile(`(?i)<script[^>]*>`)

// assertNoInlineScript checks that every script comes from a file (CSP
// forbids inline script) and that no event handler attributes are used.
func assertNoInlineScript(t *testing.T, body string) {
	t.Helper()
	for _, tag := range scriptTag.FindAllString(body, -1) {
		if !strings.Contains(tag, `src="/static/`) {
			t.Errorf("inline script %s", tag)
		}
	}
	if regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(body) || strings.Contains(body, "style=") {
		t.Error("inline event handler or style attribute")
	}
}

func TestIndexPage(t *testing.T) {
	e := newEnv(t, nil)
	if w := e.do(req{method: "GET", path: "/"}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("anonymous: %d %q", w.Code, w.Header().Get("Location"))
	}
	cookie, csrf := e.login("alice")
	w := e.do(req{method: "GET", path: "/", cookie: cookie})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, want := range []string{`<strong id="user">alice</strong>`, `(admin)`, `<meta name="csrf-token" content="` + csrf + `">`,
		`<button type="button" id="logout">Log out</button>`, `<script src="/static/app.js"></script>`} {
		if !strings.Contains(body, want) {
			t.Errorf("start page lacks %s:\n%s", want, body)
		}
	}
	assertNoInlineScript(t, body)
	// With a token: no CSRF token, no logout button.
	tok := e.token("alice", true, e.clock.Now().Add(3600e9))
	w = e.do(req{method: "GET", path: "/", bearer: tok})
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "csrf-token") || strings.Contains(w.Body.String(), `id="logout"`) {
		t.Errorf("token page: %d %s", w.Code, w.Body)
	}
}

func TestIndexPageEscapesHostileNames(t *testing.T) {
	e := newEnv(t, nil)
	const hostile = "<script>alert(1)</script>"
	cookie, _ := e.login(hostile)
	w := e.do(req{method: "GET", path: "/", cookie: cookie})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	if strings.Contains(body, hostile) || strings.Contains(body, "<script>alert") {
		t.Fatalf("name not escaped:\n%s", body)
	}
	if !strings.Contains(body, html.EscapeString(hostile)) && !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("escaped name missing:\n%s", body)
	}
	assertNoInlineScript(t, body)
	// And in the JSON API, where encoding/json escapes < and >.
	w = e.do(req{method: "GET", path: "/api/v1/session", cookie: cookie})
	if strings.ContainsAny(w.Body.String(), "<>") {
		t.Errorf("session info %s", w.Body)
	}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(req{method: "GET", path: "/healthz"})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"ok"`) {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	e := newEnv(t, nil)
	if w := e.do(req{method: "GET", path: "/api/v1/nope"}); w.Code != http.StatusNotFound || !strings.Contains(errorOf(t, w), "no such endpoint") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if w := e.do(req{method: "POST", path: "/api/v1/logs", body: "{}"}); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET" {
		t.Errorf("%d %s %q", w.Code, w.Body, w.Header().Get("Allow"))
	}
	if w := e.do(req{method: "GET", path: "/api/v1/logs/"}); w.Code != http.StatusNotFound {
		t.Errorf("trailing slash: %d", w.Code)
	}
}
