package webui

import (
	"html"
	"io/fs"
	"net/http"
	"path"
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

// commonScript is the tag of static/common.js, which every page script
// uses, so it must come first.
const commonScript = `<script src="/static/common.js">`

// assertNoInlineScript checks that every script comes from a file (CSP
// forbids inline script), that common.js comes before the others, and
// that no event handler attributes are used.
func assertNoInlineScript(t *testing.T, body string) {
	t.Helper()
	tags := scriptTag.FindAllString(body, -1)
	for _, tag := range tags {
		if !strings.Contains(tag, `src="/static/`) {
			t.Errorf("inline script %s", tag)
		}
	}
	if len(tags) == 0 || tags[0] != commonScript || strings.Count(body, commonScript) != 1 {
		t.Errorf("the first script is not common.js, or it is loaded twice: %q", tags)
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

// TestPagesEscapeHostileNames: every page of the navigation bar shows the
// logged-in user's name, escaped; the JSON API escapes it too.
func TestPagesEscapeHostileNames(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Setup = fakeSetup{info: wildcardSetup()} })
	const hostile = "<script>alert(1)</script>"
	cookie, _ := e.login(hostile)
	for _, pg := range navPages {
		w := e.do(req{method: "GET", path: pg.Path, cookie: cookie})
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d %s", pg.Path, w.Code, w.Body)
			continue
		}
		body := w.Body.String()
		if strings.Contains(body, hostile) || strings.Contains(body, "<script>alert") {
			t.Errorf("%s: name not escaped:\n%s", pg.Path, body)
		}
		if !strings.Contains(body, html.EscapeString(hostile)) && !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: escaped name missing:\n%s", pg.Path, body)
		}
		assertNoInlineScript(t, body)
	}
	// And in the JSON API, where encoding/json escapes < and >.
	w := e.do(req{method: "GET", path: "/api/v1/session", cookie: cookie})
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

// getPage GETs the page at path with r's credentials, checks that it is
// HTML with the strict Content-Security-Policy and not to be cached, and
// returns its body.
func getPage(t *testing.T, e *env, r req, path string) string {
	t.Helper()
	r.method, r.path = "GET", path
	w := e.do(r)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	if w.Header().Get("Content-Security-Policy") != contentSecurityPolicy || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", w.Header())
	}
	return w.Body.String()
}

// forbiddenInScripts are what no script of the UI may hold: HTML sinks and
// code from strings (values from traffic go in as text), dialogs (a
// browser test fails on one: confirmations are a second button in the
// page) and inline style (the Content-Security-Policy refuses it).
var forbiddenInScripts = []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
	`setTimeout("`, "javascript:", "alert(", "confirm(", "prompt(", ".style", `setAttribute("style"`}

// assertScript fetches /static/name and checks that it is served as
// JavaScript in strict mode, holds none of forbiddenInScripts and holds
// every string of want. It returns the script.
func assertScript(t *testing.T, e *env, name string, want ...string) string {
	t.Helper()
	w := e.do(req{method: "GET", path: "/static/" + name})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || w.Body.Len() == 0 {
		t.Fatalf("%s: %d %q", name, w.Code, w.Header().Get("Content-Type"))
	}
	js := w.Body.String()
	for _, bad := range forbiddenInScripts {
		if strings.Contains(js, bad) {
			t.Errorf("%s uses %s", name, bad)
		}
	}
	for _, s := range append([]string{`"use strict"`}, want...) {
		if !strings.Contains(js, s) {
			t.Errorf("%s lacks %s", name, s)
		}
	}
	return js
}

// TestScripts checks every script the UI serves: common.js with the
// helpers the pages share (text only, the CSRF token on state changes,
// the login link on 401, the live stream with its backoff), and every
// other script for the forbidden constructs.
func TestScripts(t *testing.T) {
	e := newEnv(t, nil)
	assertScript(t, e, "common.js", "window.Waygate = Object.freeze(", "textContent", `meta[name="csrf-token"]`,
		`opts.headers["X-CSRF-Token"] = csrf()`, `method !== "GET" && method !== "HEAD"`, `credentials: "same-origin"`,
		`a.href = "/login"`, "createElementNS", "new EventSource(url)", `"audit"`, `"dropped"`, "backoff * 2, 60000",
		`"pagehide"`, `"pageshow"`)
	files, err := fs.Glob(staticFS, "static/*.js")
	if err != nil || len(files) < 10 {
		t.Fatalf("scripts %v: %v", files, err)
	}
	for _, f := range files {
		name := path.Base(f)
		t.Run(name, func(t *testing.T) {
			js := assertScript(t, e, name)
			// Page scripts use the shared helpers rather than copies.
			if name != "common.js" && name != "login.js" && !strings.Contains(js, "var W = window.Waygate") {
				t.Errorf("%s does not use common.js", name)
			}
			for _, copied := range []string{"function el(", "function clear(", "function $(", "function pad(",
				`"Your session has ended. "`, `querySelector('meta[name="csrf-token"]')`, "function svgEl(", "new EventSource(eventsURL)"} {
				if name != "common.js" && strings.Contains(js, copied) {
					t.Errorf("%s has its own copy of %s", name, copied)
				}
			}
		})
	}
	// Every page template is built on the "head" template, which loads
	// common.js; none loads it again.
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		b, _ := templateFS.ReadFile(p)
		if path.Base(p) != "base.html" && (!strings.HasPrefix(string(b), `{{template "head" .}}`) || strings.Contains(string(b), "common.js")) {
			t.Errorf("%s does not start with the head template, or loads common.js itself", p)
		}
	}
}
