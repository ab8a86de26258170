package webui

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPolicyRouteRegistered(t *testing.T) {
	e := newEnv(t, nil)
	if !hasRoute(e.srv.engine, "GET", "/policy") {
		t.Fatal(`GET /policy is not routed: add pages.GET("/policy", s.policyPage) to Server.routes`)
	}
}

func TestPolicyPageAnonymous(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/policy", "/policy?url=example.com"} {
		if w := e.do(req{method: "GET", path: path}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
			t.Errorf("%s anonymous: %d %q", path, w.Code, w.Header().Get("Location"))
		}
	}
}

// TestPolicyPage renders the page for each kind of viewer: only an admin
// in a browser session gets the editing controls; auditors and API tokens
// see it read-only. Everyone gets the test-a-URL form.
func TestPolicyPage(t *testing.T) {
	e := newEnv(t, nil)
	adminCookie, adminCSRF := e.login("alice")
	auditorCookie, auditorCSRF := e.login("audrey")
	// Controls only an editor gets.
	editing := []string{`id="add-rule"`, `id="save"`, `id="reload"`, `data-editable="true"`}
	// Marks of the read-only page.
	readOnly := []string{`data-editable="false"`, `id="read-only"`, `<select id="default-action" aria-describedby="default-action-error" disabled>`}
	common := []string{
		`<h1>Policy</h1>`, `<ol id="rules" class="rules"`, `id="problems"`, `id="error"`, `id="status"`,
		`<select id="default-action"`, `<option value="allow">allow</option><option value="block">block</option><option value="warn">warn</option><option value="monitor">monitor</option></select>`,
		`<form id="explain"`, `<label for="x-url">URL</label>`, `<input id="x-url" name="url" type="text"`,
		`<label for="x-user">User`, `<label for="x-client">Client address`, `<label for="x-at">Time`, `name="at" type="datetime-local"`,
		`id="x-result"`, `<datalist id="tz-list">`, `<a href="/policy" aria-current="page">Policy</a>`,
		`<script src="/static/app.js"></script>`, `<script src="/static/policy.js"></script>`,
	}
	for _, tc := range []struct {
		name     string
		r        req
		user     string
		editable bool
		csrf     string // the session's CSRF token, in the page; empty: none
		notice   string // the read-only notice
	}{
		{name: "admin session", r: req{cookie: adminCookie}, user: "alice", editable: true, csrf: adminCSRF},
		{name: "auditor session", r: req{cookie: auditorCookie}, user: "audrey", csrf: auditorCSRF, notice: "as an auditor"},
		{name: "admin token", r: req{bearer: e.token("alice", false, e.clock.Now().Add(time.Hour))}, user: "alice", notice: "with an API token"},
		{name: "admin read-only token", r: req{bearer: e.token("alice", true, e.clock.Now().Add(time.Hour))}, user: "alice", notice: "with an API token"},
		{name: "auditor token", r: req{bearer: e.token("audrey", false, e.clock.Now().Add(time.Hour))}, user: "audrey", notice: "as an auditor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := getPage(t, e, tc.r, "/policy")
			want := append([]string{`<strong id="user">` + tc.user + `</strong>`}, common...)
			absent := editing
			if tc.editable {
				want, absent = append(want, editing...), readOnly
			} else {
				want = append(want, readOnly...)
				want = append(want, tc.notice)
			}
			for _, s := range want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %s", s)
				}
			}
			for _, s := range absent {
				if strings.Contains(body, s) {
					t.Errorf("page has %s", s)
				}
			}
			if tc.csrf != "" && !strings.Contains(body, `<meta name="csrf-token" content="`+tc.csrf+`">`) {
				t.Error("page lacks the session's CSRF token")
			}
			if tc.csrf == "" && strings.Contains(body, "csrf-token") {
				t.Error("page without a session has a CSRF token")
			}
			assertNoInlineScript(t, body)
			assertNoScriptBodies(t, body)
			assertLabelled(t, body)
		})
	}
	// The page is a shell: it saves and explains nothing by itself.
	if n := e.policy.saveCount(); n != 0 {
		t.Errorf("rendering saved the policy %d times", n)
	}
	e.explain.mu.Lock()
	defer e.explain.mu.Unlock()
	if n := len(e.explain.reqs); n != 0 {
		t.Errorf("rendering explained %d requests", n)
	}
}

// assertLabelled checks that every input and select of the page has a
// label naming its id.
func assertLabelled(t *testing.T, body string) {
	t.Helper()
	for _, m := range regexp.MustCompile(`<(?:input|select|textarea)[^>]*\sid="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(body, `<label for="`+m[1]+`"`) {
			t.Errorf("control %s has no label", m[1])
		}
	}
}

// TestPolicyPageEscapesHostileValues: the test-a-URL form is filled in
// from the query string and the bar shows the user name; hostile values
// in either are escaped.
func TestPolicyPageEscapesHostileValues(t *testing.T) {
	e := newEnv(t, nil)
	const hostile = "<script>alert(1)</script>"
	cookie, _ := e.login(hostile)
	path := "/policy?url=http%3A%2F%2Fx.example%2F%3Cscript%3Ealert(2)%3C%2Fscript%3E&user=%22%3E%3Cimg+src%3Dx%3E" +
		"&client=%3Cb%3E10.0.0.1&at=2026-03-01T10%3A00%22+autofocus+data-x%3D%22"
	w := e.do(req{method: "GET", path: path, cookie: cookie})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, bad := range []string{hostile, "<script>alert", "<img", "<b>10", `" autofocus`} {
		if strings.Contains(body, bad) {
			t.Errorf("unescaped %s in:\n%s", bad, body)
		}
	}
	for _, want := range []string{
		`<strong id="user">&lt;script&gt;alert(1)&lt;/script&gt;</strong>`,
		`value="http://x.example/&lt;script&gt;alert(2)&lt;/script&gt;"`,
		`value="&#34;&gt;&lt;img src=x&gt;"`,
		`value="&lt;b&gt;10.0.0.1"`,
		`value="2026-03-01T10:00&#34; autofocus data-x=&#34;"`,
		`data-editable="false"`, // the hostile account is an auditor
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	assertNoInlineScript(t, body)
	assertNoScriptBodies(t, body)

	// Over-long parameters are cut, not echoed whole.
	long := strings.Repeat("u", 3*maxParamLen)
	w = e.do(req{method: "GET", path: "/policy?user=" + long, cookie: cookie})
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), long) || !strings.Contains(w.Body.String(), strings.Repeat("u", maxParamLen)) {
		t.Errorf("long user: %d", w.Code)
	}
}

// TestPolicyScript checks the page's script: served, using the API the
// page needs, putting data in with textContent only and asking nothing
// through dialogs.
func TestPolicyScript(t *testing.T) {
	e := newEnv(t, nil)
	// The save is a PUT through Waygate.api, which adds the CSRF token
	// (TestScripts).
	assertScript(t, e, "policy.js", `getJSON("/api/v1/policy")`, `getJSON("/api/v1/categories")`, `"/api/v1/explain?"`,
		`W.api("PUT", "/api/v1/policy", out)`, "textContent", "r.status === 409", "r.status === 422")
	css := e.do(req{method: "GET", path: "/static/style.css"}).Body.String()
	if !strings.Contains(css, "/* Policy page (templates/policy.html, static/policy.js). */") || !strings.Contains(css, ".policy-grid") {
		t.Error("style.css has no policy page section")
	}
}
