package webui

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"
)

// categoriesEnv is a test env whose server serves GET /categories. The
// route belongs in Server.routes; until it is there, it is added here so
// that the page itself is tested (TestCategoriesRouteRegistered says it is
// missing).
func categoriesEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, func(o *Options) {
		o.Categories = &fakeCategories{list: map[string]any{"policy": "p1", "active": true, "categories": []any{}}}
	})
	if !hasRoute(e.srv.engine, "GET", "/categories") {
		e.srv.engine.Group("/", e.srv.authPage).GET("/categories", e.srv.categoriesPage)
	}
	return e
}

func TestCategoriesRouteRegistered(t *testing.T) {
	e := newEnv(t, nil)
	if !hasRoute(e.srv.engine, "GET", "/categories") {
		t.Fatal(`GET /categories is not routed: add pages.GET("/categories", s.categoriesPage) to Server.routes`)
	}
}

func TestCategoriesPageAnonymous(t *testing.T) {
	e := categoriesEnv(t)
	if w := e.do(req{method: "GET", path: "/categories"}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Errorf("anonymous: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// TestCategoriesPage checks the page each kind of visitor gets: only an
// admin in a browser session gets the editors; everyone gets the same
// script, no inline script or style, and the page is the current one in
// the navigation bar.
func TestCategoriesPage(t *testing.T) {
	e := categoriesEnv(t)
	adminCookie, adminCSRF := e.login("alice")
	auditorCookie, auditorCSRF := e.login("audrey")
	adminToken := e.token("alice", false, e.clock.Now().Add(time.Hour))
	readOnlyToken := e.token("alice", true, e.clock.Now().Add(time.Hour))
	tests := []struct {
		name     string
		r        req
		user     string
		editable bool
		csrf     string
	}{
		{"admin session", req{cookie: adminCookie}, "alice", true, adminCSRF},
		// Auditors' sessions have a token too: to log out.
		{"auditor session", req{cookie: auditorCookie}, "audrey", false, auditorCSRF},
		{"admin token", req{bearer: adminToken}, "alice", false, ""},
		{"read-only token", req{bearer: readOnlyToken}, "alice", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := getPage(t, e, tt.r, "/categories")
			assertNoInlineScript(t, body)
			assertNoScriptBodies(t, body)
			for _, want := range []string{
				`<title>Categories · Waygate</title>`, `<h1>Categories</h1>`,
				`<a href="/categories" aria-current="page">Categories</a>`,
				fmt.Sprintf(`data-editable="%t"`, tt.editable),
				`<div id="cats" class="cat-list"></div>`, `id="t-entries"`, `id="t-domains"`, `id="t-malformed"`,
				`<label for="find">`, `<input id="find" type="search"`, `id="error"`, `id="notice"`,
				`<strong id="user">` + tt.user + `</strong>`,
				`<script src="/static/app.js"></script>`, `<script src="/static/categories.js"></script>`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			// The form that adds a category, with a label for each field,
			// is for those who may save it.
			form := []string{`<form id="new-cat"`, `<label for="new-name">`, `<label for="new-domains">`, `<label for="new-urls">`,
				`id="new-name-err"`, `id="new-domains-err"`, `<button type="submit" id="new-add">`}
			for _, f := range form {
				if strings.Contains(body, f) != tt.editable {
					t.Errorf("editable %v, but %s present: %v", tt.editable, f, strings.Contains(body, f))
				}
			}
			if has := strings.Contains(body, `<meta name="csrf-token" content="`+tt.csrf+`">`); has != (tt.csrf != "") {
				t.Errorf("CSRF meta present: %v", has)
			}
			if tt.csrf == "" && strings.Contains(body, "csrf-token") {
				t.Error("a CSRF token on a token's page")
			}
		})
	}
	// The page only renders the shell: it reads nothing itself.
	if n := e.policy.saveCount(); n != 0 {
		t.Errorf("%d saves", n)
	}
}

func TestCategoriesPageEscapesNames(t *testing.T) {
	e := categoriesEnv(t)
	const hostile = "<script>alert(1)</script>"
	var b bytes.Buffer
	d := categoriesData{pageData: pageData{Title: "Categories", User: hostile, Role: `"><b>`, CSRF: `c"<s>rf`, Session: true}, Editable: true}
	if err := e.srv.pages.ExecuteTemplate(&b, "categories.html", d); err != nil {
		t.Fatal(err)
	}
	body := b.String()
	for _, bad := range []string{hostile, `"><b>`, `c"<s>rf`} {
		if strings.Contains(body, bad) {
			t.Errorf("unescaped %s", bad)
		}
	}
	if !strings.Contains(body, html.EscapeString(hostile)) {
		t.Error("escaped user name missing")
	}
	assertNoInlineScript(t, body)
	assertNoScriptBodies(t, body)
}

// TestCategoriesScript checks the script's contract with the page and the
// API, and that it inserts text only, opens no dialogs and sets no inline
// style (the Content-Security-Policy would refuse it).
func TestCategoriesScript(t *testing.T) {
	e := newEnv(t, nil)
	// The save is a PUT through Waygate.api, which adds the CSRF token
	// (TestScripts).
	js := assertScript(t, e, "categories.js", `W.api("GET", "/api/v1/categories")`, `W.api("PUT", "/api/v1/policy", next)`,
		"textContent", `"data-editable"`, "status === 409", "status === 422", "status === 401",
		"aria-invalid", `"new-cat"`, `"cats"`, `"find"`)
	// Every element id the script looks up is in the page.
	page := categoriesEnv(t)
	cookie, _ := page.login("alice")
	body := page.do(req{method: "GET", path: "/categories", cookie: cookie}).Body.String()
	for _, id := range []string{"main", "cats", "error", "notice", "find", "shown", "new-cat", "new-error", "new-name",
		"t-categories", "t-entries", "t-domains", "t-malformed", "t-policy"} {
		if !strings.Contains(js, `"`+id+`"`) {
			t.Errorf("categories.js does not use #%s", id)
		}
		if !strings.Contains(body, `id="`+id+`"`) {
			t.Errorf("the page has no #%s", id)
		}
	}
	css := e.do(req{method: "GET", path: "/static/style.css"}).Body.String()
	for _, want := range []string{"/* Categories page", ".cat-fields", "table.cat-sources", ".cat-confirm[hidden]"} {
		if !strings.Contains(css, want) {
			t.Errorf("style.css lacks %s", want)
		}
	}
}

// TestCategoriesSaveContract checks the answers of PUT /api/v1/policy that
// the page reads when it saves a category's lists: the new version, a 409
// with an error to show, and 422 problems whose paths name the field.
func TestCategoriesSaveContract(t *testing.T) {
	e := categoriesEnv(t)
	cookie, csrf := e.login("alice")
	doc := PolicyDoc{Version: "v1",
		Categories: []PolicyCategory{{Name: "gambling", Domains: []string{"casino.example", "poker.example"}}},
		Rules:      []PolicyRule{{Name: "no-gambling", Categories: []string{"gambling"}, Action: "block"}}}
	tests := []struct {
		name     string
		problems []Problem
		saveErr  error
		code     int
		want     string
	}{
		{"saved", nil, nil, http.StatusOK, `{"version":"v2"}`},
		{"conflict", nil, fmt.Errorf("changed: %w", ErrConflict), http.StatusConflict, `"error":"the policy has changed since version \"v1\" was read`},
		{"invalid", []Problem{{Path: "categories[0].domains[1]", Message: "not a domain"}}, nil, http.StatusUnprocessableEntity,
			`"problems":[{"path":"categories[0].domains[1]","message":"not a domain"}]`},
		{"invalid on save", nil, &InvalidPolicyError{Problems: []Problem{{Path: "categories[0].name", Message: "defined twice"}}},
			http.StatusUnprocessableEntity, `"problems":[{"path":"categories[0].name","message":"defined twice"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.policy.mu.Lock()
			e.policy.problems, e.policy.saveErr = tt.problems, tt.saveErr
			e.policy.doc.Version = "v1"
			e.policy.mu.Unlock()
			w := e.do(req{method: "PUT", path: "/api/v1/policy", cookie: cookie, csrf: csrf, body: doc})
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("%d %s, want %d with %s", w.Code, w.Body, tt.code, tt.want)
			}
		})
	}
	// The saved document is the one sent: both domains, the rules kept.
	e.policy.mu.Lock()
	defer e.policy.mu.Unlock()
	if len(e.policy.saves) == 0 {
		t.Fatal("nothing saved")
	}
	got := e.policy.saves[0]
	if got.author != "alice" || len(got.doc.Categories) != 1 || strings.Join(got.doc.Categories[0].Domains, ",") != "casino.example,poker.example" ||
		len(got.doc.Rules) != 1 {
		t.Errorf("saved %+v", got)
	}
}
