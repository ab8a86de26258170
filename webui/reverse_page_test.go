package webui

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type routesSave struct {
	author string
	doc    RoutesDoc
}

// fakeRoutes keeps a routes document in memory.
type fakeRoutes struct {
	mu       sync.Mutex
	doc      RoutesDoc
	problems []Problem
	saveErr  error
	saves    []routesSave
}

func (f *fakeRoutes) Routes(context.Context) (RoutesDoc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.doc, nil
}

func (f *fakeRoutes) Validate(context.Context, RoutesDoc) []Problem {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.problems
}

func (f *fakeRoutes) Save(_ context.Context, author string, doc RoutesDoc) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves = append(f.saves, routesSave{author, doc})
	if f.saveErr != nil {
		return "", f.saveErr
	}
	doc.Version = "v2"
	f.doc = doc
	return "v2", nil
}

func (f *fakeRoutes) set(problems []Problem, saveErr error) {
	f.mu.Lock()
	f.problems, f.saveErr = problems, saveErr
	f.mu.Unlock()
}

func (f *fakeRoutes) saveCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.saves)
}

func newRoutesEnv(t *testing.T) (*env, *fakeRoutes) {
	retries := 0
	f := &fakeRoutes{doc: RoutesDoc{Version: "v1", Listeners: []string{"127.0.0.1:8080"}, Routes: []RouteDoc{{
		Name: "wiki", Hosts: []string{"wiki.corp.example"}, Backends: []RouteBackend{{URL: "http://10.0.0.5:8080"}},
		Retries: &retries, Health: &RouteHealth{Path: "/healthz", Interval: "2s"},
	}}}}
	return newEnv(t, func(o *Options) { o.Routes = f }), f
}

func TestRoutesGet(t *testing.T) {
	e, f := newRoutesEnv(t)
	cookie, _ := e.login("audrey") // auditors may read
	w := e.do(req{method: "GET", path: "/api/v1/reverse/routes", cookie: cookie})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for _, want := range []string{`"version":"v1"`, `"name":"wiki"`, `"backends":[{"url":"http://10.0.0.5:8080"}]`,
		`"retries":0`, `"health":{"path":"/healthz","interval":"2s"}`, `"listeners":["127.0.0.1:8080"]`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("answer lacks %s: %s", want, w.Body)
		}
	}
	if w := e.do(req{method: "GET", path: "/api/v1/reverse/routes?x=1", cookie: cookie}); w.Code != http.StatusBadRequest {
		t.Errorf("unknown parameter: %d", w.Code)
	}

	// No routes, and a route without backends: lists, not null.
	f.mu.Lock()
	f.doc = RoutesDoc{Version: "v9"}
	f.mu.Unlock()
	w = e.do(req{method: "GET", path: "/api/v1/reverse/routes", cookie: cookie})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"routes":[]`) {
		t.Errorf("no routes: %d %s", w.Code, w.Body)
	}
	f.mu.Lock()
	f.doc = RoutesDoc{Version: "v9", Routes: []RouteDoc{{Name: "x"}}}
	f.mu.Unlock()
	w = e.do(req{method: "GET", path: "/api/v1/reverse/routes", cookie: cookie})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"backends":[]`) {
		t.Errorf("no backends: %d %s", w.Code, w.Body)
	}
}

func TestRoutesPut(t *testing.T) {
	e, f := newRoutesEnv(t)
	cookie, csrf := e.login("alice")
	off := false
	doc := RoutesDoc{Version: "v1", Routes: []RouteDoc{
		{Name: "wiki", Hosts: []string{"wiki.corp.example"}, Backends: []RouteBackend{{URL: "http://10.0.0.5:8080"}}},
		{Name: "api", Hosts: []string{"api.corp.example"}, PathPrefix: "/v1", StripPrefix: true, Priority: 3,
			Headers: map[string]string{"X-Canary": "*"}, Cookies: map[string]string{"beta": "1"}, Balance: "weighted",
			Backends: []RouteBackend{{URL: "http://10.0.0.7:8080", Weight: 2, MaxConns: 10}}, Compress: &off,
			SecurityHeaders: &RouteSecurityHeaders{FrameOptions: new(string)}},
	}}
	w := e.do(req{method: "PUT", path: "/api/v1/reverse/routes", body: doc, cookie: cookie, csrf: csrf})
	if w.Code != http.StatusOK || w.Body.String() != `{"version":"v2"}` {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	f.mu.Lock()
	save := f.saves[0]
	f.mu.Unlock()
	if save.author != "alice" || !reflect.DeepEqual(save.doc, doc) {
		t.Errorf("saved %+v\nwant %+v", save, doc)
	}
	if ev := e.audit.byAction("routes_save"); len(ev) != 1 || ev[0].User != "alice" || ev[0].Status != 200 ||
		ev[0].Detail != `{"previous":"v1","routes":2,"version":"v2"}` {
		t.Errorf("audit %+v", ev)
	}

	// Validate's problems: 422 with their paths, and no save.
	f.set([]Problem{{Path: "routes[1].backends[0].url", Message: `"ftp://x" is not an http:// or https:// URL`},
		{Path: "routes[1].name", Message: `route "wiki" is defined twice`}}, nil)
	w = e.do(req{method: "PUT", path: "/api/v1/reverse/routes", body: doc, cookie: cookie, csrf: csrf})
	var inv struct {
		Error    string
		Problems []Problem
	}
	decode(t, w, &inv)
	if w.Code != http.StatusUnprocessableEntity || inv.Error != "invalid routes" || len(inv.Problems) != 2 ||
		inv.Problems[0].Path != "routes[1].backends[0].url" || inv.Problems[1].Path != "routes[1].name" {
		t.Errorf("invalid: %d %s", w.Code, w.Body)
	}
	if f.saveCount() != 1 {
		t.Error("Save called for invalid routes")
	}

	// Save's own failures, each audited.
	tests := []struct {
		err  error
		code int
		body string
	}{
		{fmt.Errorf("saving: %w", ErrConflict), http.StatusConflict, `changed since version \"v1\"`},
		{&InvalidPolicyError{Problems: []Problem{{Path: "routes", Message: "reverse route \"api\": ca.pem: no such file"}}},
			http.StatusUnprocessableEntity, `"path":"routes"`},
		{&InvalidPolicyError{}, http.StatusUnprocessableEntity, `"problems":[]`},
		{errBoom, http.StatusInternalServerError, "saving the routes failed"},
	}
	for _, tt := range tests {
		f.set(nil, tt.err)
		w := e.do(req{method: "PUT", path: "/api/v1/reverse/routes", body: doc, cookie: cookie, csrf: csrf})
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("Save error %v: %d %s, want %d with %s", tt.err, w.Code, w.Body, tt.code, tt.body)
		}
		if strings.Contains(w.Body.String(), "boom") {
			t.Errorf("internal error revealed: %s", w.Body)
		}
		ev := e.audit.byAction("routes_save")
		if last := ev[len(ev)-1]; last.Status != tt.code || last.Error == "" {
			t.Errorf("Save error %v audited as %+v", tt.err, last)
		}
	}
	f.set(nil, nil)

	// Malformed bodies: 400 naming the problem, no save.
	before := f.saveCount()
	for body, want := range map[string]string{
		`{"routes": [`:      "unexpected end",
		`{"routes": [}`:     "byte",
		`{"routes": "all"}`: "routes",
		`{"routes": [{"name": "a", "priority": "high"}]}`:       "routes.priority",
		`{"routes": [{"name": "a", "backends": ["http://x"]}]}`: "routes.backends",
		`{"routes": [{"name": "a", "hostz": []}]}`:              `"hostz"`,
		`[]`:    "expected",
		`{} {}`: "after the value",
		``:      "empty",
	} {
		w := e.do(req{method: "PUT", path: "/api/v1/reverse/routes", body: body, cookie: cookie, csrf: csrf})
		if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w), want) {
			t.Errorf("%q: %d %s (want 400 mentioning %s)", body, w.Code, w.Body, want)
		}
	}
	if w := e.do(req{method: "PUT", path: "/api/v1/reverse/routes", body: "{}", noType: true, cookie: cookie, csrf: csrf}); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("no Content-Type: %d", w.Code)
	}
	if w := e.do(req{method: "PUT", path: "/api/v1/reverse/routes?force=1", body: "{}", cookie: cookie, csrf: csrf}); w.Code != http.StatusBadRequest {
		t.Errorf("unknown parameter: %d", w.Code)
	}
	if f.saveCount() != before {
		t.Error("saved a malformed body")
	}
}

func TestRoutesUnavailable(t *testing.T) {
	e := newEnv(t, nil) // no Options.Routes
	cookie, csrf := e.login("alice")
	for _, r := range []req{
		{method: "GET", path: "/api/v1/reverse/routes"},
		{method: "PUT", path: "/api/v1/reverse/routes", body: RoutesDoc{}},
	} {
		r.cookie, r.csrf = cookie, csrf
		w := e.do(r)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(errorOf(t, w), "route editing") {
			t.Errorf("%s %s: %d %s, want 503", r.method, r.path, w.Code, w.Body)
		}
	}
	// The page itself still renders: it says what it cannot load.
	if w := e.do(req{method: "GET", path: "/reverse", cookie: cookie}); w.Code != http.StatusOK {
		t.Errorf("page: %d", w.Code)
	}
}

// inputIDs finds the ids of a page's form controls.
var inputIDs = regexp.MustCompile(`<(?:input|select|textarea)\s[^>]*\bid="([^"]+)"`)

// assertReverseHTML checks what every rendering of the reverse page must
// hold: scripts from files only, no handlers, no style attributes, a
// label for every input.
func assertReverseHTML(t *testing.T, body string) {
	t.Helper()
	assertNoInlineScript(t, body)
	if m := inlineScriptBody.FindString(body); m != "" {
		t.Errorf("inline script body: %s", m)
	}
	for _, want := range []string{`<script src="/static/reverse.js"></script>`, `<h1>Reverse</h1>`,
		`data-routes-url="/api/v1/reverse/routes"`, `data-status-url="/api/v1/reverse"`, `id="routes"`, `id="updated"`,
		`<a href="/reverse" aria-current="page">Reverse</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("reverse page lacks %s", want)
		}
	}
	for _, id := range inputIDs.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(body, `for="`+id[1]+`"`) {
			t.Errorf("input %s has no label", id[1])
		}
	}
}

func TestReversePage(t *testing.T) {
	e, _ := newRoutesEnv(t)
	if w := e.do(req{method: "GET", path: "/reverse"}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("anonymous: %d %q", w.Code, w.Header().Get("Location"))
	}
	cookie, csrf := e.login("alice")
	w := e.do(req{method: "GET", path: "/reverse", cookie: cookie})
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	assertReverseHTML(t, body)
	for _, want := range []string{`<meta name="csrf-token" content="` + csrf + `">`, `data-can-edit="true"`, `id="add-route"`,
		`id="route-form"`, `for="r-name"`, `id="backend-rows"`, `data-path="backends"`, `data-path="health.interval"`} {
		if !strings.Contains(body, want) {
			t.Errorf("admin's page lacks %s", want)
		}
	}

	// Auditors see the routes, without the controls that change them; an
	// API token sees the page without CSRF token.
	for name, r := range map[string]req{
		"auditor session": {cookie: func() string { c, _ := e.login("audrey"); return c }()},
		"read-only token": {bearer: e.token("alice", true, e.clock.Now().Add(time.Hour))},
	} {
		r.method, r.path = "GET", "/reverse"
		w := e.do(r)
		body := w.Body.String()
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d", name, w.Code)
		}
		assertReverseHTML(t, body)
		for _, bad := range []string{`data-can-edit`, `id="add-route"`, `id="route-form"`} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: page has %s", name, bad)
			}
		}
	}
}

func TestReversePageEscapesHostileNames(t *testing.T) {
	e, _ := newRoutesEnv(t)
	const hostile = "<script>alert(1)</script>"
	var b bytes.Buffer
	if err := e.srv.pages.ExecuteTemplate(&b, "reverse.html", reverseData{pageData: pageData{Title: "Reverse", User: hostile,
		Role: "admin", CSRF: `c"s<r>f`, Session: true}, CanEdit: true}); err != nil {
		t.Fatal(err)
	}
	body := b.String()
	if strings.Contains(body, hostile) || !strings.Contains(body, html.EscapeString(hostile)) || strings.Contains(body, `c"s<r>f`) {
		t.Errorf("not escaped:\n%s", body)
	}
	assertReverseHTML(t, body)
}

func TestReverseAssets(t *testing.T) {
	e, _ := newRoutesEnv(t)
	// The save is a PUT through Waygate.api, which adds the CSRF token
	// (TestScripts).
	assertScript(t, e, "reverse.js", "textContent", `W.api("PUT", routesURL,`, "/api/v1/reverse/routes", "/api/v1/reverse")
	if w := e.do(req{method: "GET", path: "/static/style.css"}); !strings.Contains(w.Body.String(), "/* Reverse page (templates/reverse.html, static/reverse.js). */") {
		t.Error("style.css has no reverse section")
	}
}
