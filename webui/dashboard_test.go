package webui

import (
	"bytes"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// inlineScriptBody matches a script element with content between its tags.
var inlineScriptBody = regexp.MustCompile(`(?is)<script[^>]*>\s*[^<\s][^<]*</script>`)

// assertDashboardHTML checks what every rendering of the dashboard must
// hold: scripts from files only, no handlers, no style attributes.
func assertDashboardHTML(t *testing.T, body string) {
	t.Helper()
	assertNoInlineScript(t, body)
	if m := inlineScriptBody.FindString(body); m != "" {
		t.Errorf("inline script body: %s", m)
	}
	if regexp.MustCompile(`(?i)\sstyle\s*=`).MatchString(body) || regexp.MustCompile(`(?i)<style`).MatchString(body) {
		t.Error("inline style")
	}
	for _, want := range []string{`<script src="/static/dashboard.js"></script>`, `href="/static/style.css"`, `name="viewport"`,
		`data-stats-url="/api/v1/stats"`, `data-events-url="/api/v1/events"`, `<table id="ticker">`, `<table id="top-host">`,
		`<table id="top-user">`, `<table id="top-category">`, `id="notice"`, `<h1>Dashboard</h1>`} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
}

// TestDashboardTemplate renders the template directly, so it runs whether
// or not the route is registered.
func TestDashboardTemplate(t *testing.T) {
	e := newEnv(t, nil)
	const hostile = `<script>alert(1)</script>`
	var b bytes.Buffer
	if err := e.srv.pages.ExecuteTemplate(&b, "dashboard.html", pageData{Title: "Dashboard", User: hostile, Role: "auditor", CSRF: "c<s>rf", Session: true}); err != nil {
		t.Fatal(err)
	}
	body := b.String()
	assertDashboardHTML(t, body)
	if strings.Contains(body, hostile) || !strings.Contains(body, html.EscapeString(hostile)) {
		t.Errorf("user name not escaped:\n%s", body)
	}
	if strings.Contains(body, "c<s>rf") {
		t.Error("CSRF token not escaped")
	}
}

func TestDashboardPage(t *testing.T) {
	e := newEnv(t, nil)
	if w := e.do(req{method: "GET", path: "/dashboard"}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("anonymous: %d %q (is the route GET /dashboard registered?)", w.Code, w.Header().Get("Location"))
	}
	cookie, csrf := e.login("alice")
	w := e.do(req{method: "GET", path: "/dashboard", cookie: cookie})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	if got := w.Header().Get("Content-Security-Policy"); got != contentSecurityPolicy {
		t.Errorf("CSP %q", got)
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	body := w.Body.String()
	assertDashboardHTML(t, body)
	for _, want := range []string{`<strong id="user">alice</strong>`, `<meta name="csrf-token" content="` + csrf + `">`, `id="logout"`} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	// With an API token: the page, without CSRF token or logout button.
	tok := e.token("audrey", true, e.clock.Now().Add(time.Hour))
	w = e.do(req{method: "GET", path: "/dashboard", bearer: tok})
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "csrf-token") || strings.Contains(w.Body.String(), `id="logout"`) {
		t.Errorf("token: %d %s", w.Code, w.Body)
	}
}

func TestDashboardAssets(t *testing.T) {
	e := newEnv(t, nil)
	// Network text goes in as text only: no HTML sinks, no eval. The SVG
	// and the live stream are drawn and followed with common.js
	// (TestScripts).
	assertScript(t, e, "dashboard.js", "textContent", "svgEl = W.svgEl", `svgEl("polyline"`, "W.liveStream(eventsURL",
		"dropped: function (n)", "audit: addEvent", "step=minute")
	if w := e.do(req{method: "GET", path: "/static/style.css"}); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), ".dash-grid") {
		t.Errorf("style.css: %d", w.Code)
	}
	// The stats query the script sends (toISOString has milliseconds) is
	// accepted.
	cookie, _ := e.login("alice")
	since := e.clock.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	if w := e.do(req{method: "GET", path: "/api/v1/stats?step=minute&top=10&since=" + since, cookie: cookie}); w.Code != http.StatusOK {
		t.Errorf("stats query: %d %s", w.Code, w.Body)
	}
}
