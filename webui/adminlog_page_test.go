package webui

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdminLogPage: the page is a shell for adminlog.js; it offers the
// rollback only to admins in a browser session.
func TestAdminLogPage(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Revisions = &fakeRevisions{} })
	if w := e.do(req{method: "GET", path: "/admin-log"}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("anonymous: %d %q", w.Code, w.Header().Get("Location"))
	}
	adminCookie, adminCSRF := e.login("alice")
	auditorCookie, _ := e.login("audrey")
	for _, tc := range []struct {
		name     string
		r        req
		rollback bool
		want     []string
	}{
		{"admin session", req{cookie: adminCookie}, true, []string{`<meta name="csrf-token" content="` + adminCSRF + `">`, `id="logout"`}},
		{"auditor session", req{cookie: auditorCookie}, false, []string{"Rolling back needs the admin role", `(auditor)`}},
		{"admin token", req{bearer: e.token("alice", false, e.clock.Now().Add(time.Hour))}, false, nil},
		{"read-only token", req{bearer: e.token("alice", true, e.clock.Now().Add(time.Hour))}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := getPage(t, e, tc.r, "/admin-log")
			flag := `data-can-rollback="false"`
			if tc.rollback {
				flag = `data-can-rollback="true"`
			}
			for _, want := range append(tc.want, flag, `<h1>Admin log</h1>`, `<a href="/admin-log" aria-current="page">Admin log</a>`,
				`data-revisions-url="/api/v1/revisions"`, `data-logs-url="/api/v1/logs"`,
				`<tbody id="revision-rows">`, `<tbody id="event-rows">`, `id="more-revisions"`, `id="more-events"`,
				`<pre id="diff"`, `id="rollback"`, `<script src="/static/adminlog.js"></script>`) {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			assertNoInlineScript(t, body)
			assertNoScriptBodies(t, body)
		})
	}
	// The page itself reads nothing: the script does.
	if n := e.logs.calls(); n != 0 {
		t.Errorf("the page searched the logs %d times", n)
	}
}

// TestAdminLogPageAPI: what the page's script calls answers the auditor
// but refuses the auditor's rollback, and takes the admin's.
func TestAdminLogPageAPI(t *testing.T) {
	revs := &fakeRevisions{revs: []Revision{
		{ID: 1, Time: time.Unix(100, 0).UTC(), Author: "(file before the first save)", Config: "rules: []\n"},
		{ID: 2, Time: time.Unix(200, 0).UTC(), Author: "alice", Comment: "policy saved from the web UI", Config: "rules:\n  - name: <b>x</b>\n"},
	}}
	e := newEnv(t, func(o *Options) { o.Revisions = revs })
	auditor, auditorCSRF := e.login("audrey")
	for _, path := range []string{"/api/v1/revisions?limit=20", "/api/v1/revisions/2", "/api/v1/logs?kind=admin&limit=50"} {
		if w := e.do(req{method: "GET", path: path, cookie: auditor}); w.Code != http.StatusOK || strings.ContainsAny(w.Body.String(), "<>") {
			t.Errorf("auditor GET %s: %d %s", path, w.Code, w.Body)
		}
	}
	if got := e.logs.last(t); got.Kind != "admin" || got.Limit != 50 {
		t.Errorf("logs query %+v", got)
	}
	if w := e.do(req{method: "POST", path: "/api/v1/revisions/1/rollback", cookie: auditor, csrf: auditorCSRF}); w.Code != http.StatusForbidden {
		t.Errorf("auditor rollback: %d %s", w.Code, w.Body)
	}
	admin, adminCSRF := e.login("alice")
	if w := e.do(req{method: "POST", path: "/api/v1/revisions/1/rollback", cookie: admin}); w.Code != http.StatusForbidden {
		t.Errorf("rollback without the CSRF token: %d %s", w.Code, w.Body)
	}
	if w := e.do(req{method: "POST", path: "/api/v1/revisions/1/rollback", cookie: admin, csrf: adminCSRF}); w.Code != http.StatusOK {
		t.Errorf("admin rollback: %d %s", w.Code, w.Body)
	}
	if len(revs.rollBack) != 1 || revs.rollBack[0] != "alice:1" {
		t.Errorf("rollbacks %v", revs.rollBack)
	}
}

func TestAdminLogScript(t *testing.T) {
	// Data goes in as text; confirmations are in the page, never dialogs.
	// The rollback is a POST through Waygate.api, which adds the CSRF
	// token (TestScripts).
	assertScript(t, newEnv(t, nil), "adminlog.js", `"/rollback", "POST")`, `W.api(method || "GET", url)`, `p.set("kind", "admin")`,
		`p.set("before", eventsNext)`, `"&before="`, `body.next`, `"rollback-yes"`, `"rollback-cancel"`, `"data-can-rollback"`,
		"textContent")
}
