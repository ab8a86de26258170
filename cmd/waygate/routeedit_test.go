package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"waygate/webui"
)

// startGateway builds the gateway of the site's config in this process
// (listeners on loopback, the audit and admin stores in the site's
// folder) without serving: enough to save routes and reload. It is shut
// down when the test ends.
func startGateway(t *testing.T, s *testSite) *gateway {
	t.Helper()
	t.Setenv("WAYGATE_ADMIN_PASSWORD", "route editor test password")
	g, err := newGateway(s.config, mustLoad(t, s.config), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.shutdown(syscall.SIGTERM)
		g.closeListeners()
	})
	return g
}

// newRouteEditor writes the site's config with extra (see writeConfig),
// starts its gateway (startGateway) and returns it with the route editor
// of its config file.
func newRouteEditor(t *testing.T, s *testSite, extra string) (*gateway, routeEditor) {
	t.Helper()
	s.writeConfig(t, "127.0.0.0/8", extra)
	g := startGateway(t, s)
	return g, routeEditor{file: policyEditor{g: g, store: g.adminStore}}
}

// fileUnchanged stops the test when the file at path no longer holds
// before; what names the change that should have left it alone.
func fileUnchanged(t *testing.T, path string, before []byte, what string) {
	t.Helper()
	if _, now := fileVersion(t, path); string(now) != string(before) {
		t.Fatalf("%s changed the file:\n%s", what, now)
	}
}

// backendServer is an app on loopback answering with its name.
func backendServer(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fileVersion(t *testing.T, path string) (string, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), data
}

// commentedRoutes is a reverse section with comments, a route written in
// the short forms (flow lists, a bare backend URL) and one with a weighted
// backend, zero retries and compression off: what the editor must keep.
func commentedRoutes(wiki, wiki2 string) string {
	return `# Games are blocked for everyone.
categories:
  - name: games   # the inline list
    domains: [games.test]
rules:
  - name: no-games
    categories: [games]
    action: block
reverse:
  listen: "127.0.0.1:0"   # the plain listener
  routes:
    # The wiki: kept as written.
    - name: wiki   # wiki's own comment
      hosts: [wiki.corp.test]
      backends: [` + wiki + `]
    - name: wiki-canary
      hosts: [wiki.corp.test]
      headers: {X-Canary: "1"}
      backends:
        - url: ` + wiki2 + `
          weight: 3
      balance: weighted
      retries: 0
      compress: false
`
}

// TestRouteEditorSave: the routes come back as written; a new route is
// saved into the file with the rest of the file, its comments and the
// routes left alone kept; the save is a revision by its author and is
// applied by a reload; a stale version is a conflict that changes nothing.
func TestRouteEditorSave(t *testing.T) {
	s := newSite(t)
	wiki, wiki2, api := backendServer(t, "wiki"), backendServer(t, "wiki2"), backendServer(t, "api")
	g, e := newRouteEditor(t, s, commentedRoutes(wiki.URL, wiki2.URL))
	ctx := context.Background()

	doc, err := e.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v1, before := fileVersion(t, s.config)
	zero, off := 0, false
	want := []webui.RouteDoc{
		{Name: "wiki", Hosts: []string{"wiki.corp.test"}, Backends: []webui.RouteBackend{{URL: wiki.URL}}},
		{Name: "wiki-canary", Hosts: []string{"wiki.corp.test"}, Headers: map[string]string{"X-Canary": "1"},
			Backends: []webui.RouteBackend{{URL: wiki2.URL, Weight: 3}}, Balance: "weighted", Retries: &zero, Compress: &off},
	}
	if doc.Version != v1 || !reflect.DeepEqual(doc.Routes, want) || !slices.Equal(doc.Listeners, []string{"127.0.0.1:0"}) {
		t.Fatalf("Routes = %+v\nwant version %s, routes %+v", doc, v1, want)
	}

	doc.Routes = append(doc.Routes, webui.RouteDoc{Name: "api", Hosts: []string{"api.corp.test"}, PathPrefix: "/v1",
		StripPrefix: true, Priority: 5, Backends: []webui.RouteBackend{{URL: api.URL}},
		Health: &webui.RouteHealth{Path: "/healthz", Interval: "2s"}})
	if probs := e.Validate(ctx, doc); probs != nil {
		t.Fatalf("Validate: %v", probs)
	}
	v2, err := e.Save(ctx, "alice", doc)
	if err != nil {
		t.Fatal(err)
	}
	gotV2, saved := fileVersion(t, s.config)
	if v2 != gotV2 || v2 == v1 {
		t.Errorf("Save returned version %s; the file's is %s (before %s)", v2, gotV2, v1)
	}
	text := string(saved)
	for _, keep := range []string{
		"# Games are blocked for everyone.", "- name: games # the inline list", "domains: [games.test]",
		"action: block", `listen: "127.0.0.1:0" # the plain listener`, "# The wiki: kept as written.",
		"- name: wiki # wiki's own comment", "hosts: [wiki.corp.test]", wiki.URL,
		"headers: {X-Canary: \"1\"}", "retries: 0", "compress: false", "allow_destinations: [127.0.0.1/32]",
		"- name: api", "path_prefix: /v1", "strip_prefix: true", "priority: 5", "- " + api.URL, "interval: 2s",
	} {
		if !strings.Contains(text, keep) {
			t.Errorf("the saved file lacks %q:\n%s", keep, text)
		}
	}
	if cfg := mustLoad(t, s.config); len(cfg.Reverse.Routes) != 3 || cfg.Reverse.Routes[2].Health.Path != "/healthz" {
		t.Errorf("the saved file does not load as saved: %+v", cfg.Reverse.Routes)
	}

	// Read back, the routes are what was saved.
	again, err := e.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != v2 || !reflect.DeepEqual(again.Routes, doc.Routes) {
		t.Errorf("read back %+v\nwant %+v", again.Routes, doc.Routes)
	}

	// Applied by the reload: the running reverse proxy has the route.
	var names []string
	for _, r := range g.rev.srv.Status().Routes {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"wiki", "wiki-canary", "api"}) {
		t.Errorf("running routes %v after the save", names)
	}

	// Kept as revisions: the file before the first save, then the save
	// with its author.
	revs, err := g.adminStore.Revisions(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 2 || revs[0].Author != "alice" || revs[0].Comment != "routes saved from the web UI" ||
		revs[0].SHA256 != sha256.Sum256(saved) || revs[1].SHA256 != sha256.Sum256(before) {
		t.Fatalf("revisions after the save: %+v", revs)
	}

	// A save made from the first version is stale: a conflict, and nothing
	// changes.
	doc.Version = v1
	doc.Routes = doc.Routes[:1]
	if _, err := e.Save(ctx, "bob", doc); !errors.Is(err, webui.ErrConflict) {
		t.Fatalf("stale save: %v, want a conflict", err)
	}
	fileUnchanged(t, s.config, saved, "a stale save")
	if revs, _ := g.adminStore.Revisions(ctx, 0, 10); len(revs) != 2 {
		t.Errorf("a stale save made a revision: %d revisions", len(revs))
	}
}

// TestRouteEditorRefusesBadRoutes: each mistake is reported with the path
// of its field, by Validate and by Save, and leaves the file byte for byte
// as it was, with no revision.
func TestRouteEditorRefusesBadRoutes(t *testing.T) {
	s := newSite(t)
	wiki, wiki2 := backendServer(t, "wiki"), backendServer(t, "wiki2")
	g, e := newRouteEditor(t, s, commentedRoutes(wiki.URL, wiki2.URL))
	ctx := context.Background()
	base, err := e.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, before := fileVersion(t, s.config)
	good := func() webui.RouteDoc {
		return webui.RouteDoc{Name: "api", Hosts: []string{"api.corp.test"}, Backends: []webui.RouteBackend{{URL: wiki.URL}}}
	}
	tests := []struct {
		name    string
		change  func(r *webui.RouteDoc)
		path    string // a problem must have this path
		message string // and contain this
	}{
		{"backend URL without a scheme", func(r *webui.RouteDoc) { r.Backends[0].URL = "127.0.0.1:8080" }, "routes[2].backends[0].url", "http://"},
		{"backend URL with a path", func(r *webui.RouteDoc) { r.Backends[0].URL = wiki.URL + "/app" }, "routes[2].backends[0].url", "path"},
		{"second backend bad", func(r *webui.RouteDoc) {
			r.Backends = append(r.Backends, webui.RouteBackend{URL: "ftp://files.corp.test"})
		}, "routes[2].backends[1].url", "ftp://files.corp.test"},
		{"no backends", func(r *webui.RouteDoc) { r.Backends = nil }, "routes[2].backends", "at least one backend"},
		{"bad weight", func(r *webui.RouteDoc) { r.Backends[0].Weight = 5000 }, "routes[2].backends[0].weight", "5000"},
		{"name taken", func(r *webui.RouteDoc) { r.Name = "wiki" }, "routes[2].name", "twice"},
		{"name missing", func(r *webui.RouteDoc) { r.Name = "" }, "routes[2].name", "needs a name"},
		{"bad host", func(r *webui.RouteDoc) { r.Hosts = []string{"ok.test", "not a host"} }, "routes[2].hosts[1]", "not a host"},
		{"bad path prefix", func(r *webui.RouteDoc) { r.PathPrefix = "v1" }, "routes[2].path_prefix", `start with "/"`},
		{"bad balance", func(r *webui.RouteDoc) { r.Balance = "random" }, "routes[2].balance", "random"},
		{"bad header name", func(r *webui.RouteDoc) { r.Headers = map[string]string{"X Bad": "1"} }, "routes[2].headers.X Bad", "header name"},
		{"bad health interval", func(r *webui.RouteDoc) { r.Health = &webui.RouteHealth{Path: "/h", Interval: "soon"} }, "routes[2].health.interval", "duration"},
		{"shadows a route", func(r *webui.RouteDoc) { r.Hosts = []string{"wiki.corp.test"} }, "routes[2]", "shadows"},
		{"backend TLS file missing", func(r *webui.RouteDoc) {
			r.Backends[0].URL = "https://127.0.0.1:8443"
			r.BackendTLS = &webui.RouteBackendTLS{CAFile: "no-such-ca.pem"}
		}, "routes", "no-such-ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.change(&r)
			doc := webui.RoutesDoc{Version: base.Version, Routes: append(slices.Clone(base.Routes), r)}
			has := func(probs []webui.Problem) bool {
				for _, p := range probs {
					if p.Path == tt.path && strings.Contains(p.Message, tt.message) {
						return true
					}
				}
				return false
			}
			if probs := e.Validate(ctx, doc); !has(probs) {
				t.Errorf("Validate: %+v, want %s: ...%s...", probs, tt.path, tt.message)
			}
			_, err := e.Save(ctx, "alice", doc)
			var invalid *webui.InvalidPolicyError
			if !errors.As(err, &invalid) || !has(invalid.Problems) {
				t.Errorf("Save: %v, want problem %s", err, tt.path)
			}
			fileUnchanged(t, s.config, before, "a refused save")
		})
	}
	if revs, _ := g.adminStore.Revisions(ctx, 0, 10); len(revs) != 0 {
		t.Errorf("refused saves made %d revisions", len(revs))
	}
	// The good route itself is fine: the cases fail for their change.
	if probs := e.Validate(ctx, webui.RoutesDoc{Version: base.Version, Routes: append(slices.Clone(base.Routes), good())}); probs != nil {
		t.Errorf("the good route: %v", probs)
	}
}

// TestRouteEditorWithoutListener: with no reverse listener in the file,
// routes are refused with the reason (the file would not pass `waygate
// check`), and an empty list adds nothing. Once the file names a
// listener, saving is allowed while the running gateway still has none:
// the listener starts at the next restart.
func TestRouteEditorWithoutListener(t *testing.T) {
	s := newSite(t)
	app := backendServer(t, "app")
	g, e := newRouteEditor(t, s, "# no reverse section\n")
	ctx := context.Background()
	doc, err := e.Routes(ctx)
	if err != nil || len(doc.Routes) != 0 || len(doc.Listeners) != 0 || doc.Version == "" {
		t.Fatalf("Routes = %+v, %v", doc, err)
	}
	route := webui.RouteDoc{Name: "app", Backends: []webui.RouteBackend{{URL: app.URL}}}
	_, before := fileVersion(t, s.config)
	_, err = e.Save(ctx, "alice", webui.RoutesDoc{Version: doc.Version, Routes: []webui.RouteDoc{route}})
	var invalid *webui.InvalidPolicyError
	if !errors.As(err, &invalid) || len(invalid.Problems) != 1 || invalid.Problems[0].Path != "routes" ||
		!strings.Contains(invalid.Problems[0].Message, "reverse.listen") {
		t.Fatalf("routes without a listener: %v", err)
	}
	fileUnchanged(t, s.config, before, "a refused save")
	if _, err := e.Save(ctx, "alice", webui.RoutesDoc{Version: doc.Version}); err != nil {
		t.Fatal(err)
	}
	if _, now := fileVersion(t, s.config); strings.Contains(string(now), "reverse:") {
		t.Errorf("saving no routes added a reverse section:\n%s", now)
	}

	// The admin adds the listener by hand; the running gateway has none.
	f, err := os.OpenFile(s.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "reverse:\n  listen: \"127.0.0.1:0\"\n")
	f.Close()
	doc, err = e.Routes(ctx)
	if err != nil || !slices.Equal(doc.Listeners, []string{"127.0.0.1:0"}) {
		t.Fatalf("Routes = %+v, %v", doc, err)
	}
	doc.Routes = []webui.RouteDoc{route}
	if _, err := e.Save(ctx, "alice", doc); err != nil {
		t.Fatalf("save with the listener in the file: %v", err)
	}
	if cfg := mustLoad(t, s.config); len(cfg.Reverse.Routes) != 1 || cfg.Reverse.Listen != "127.0.0.1:0" {
		t.Errorf("saved reverse section: %+v", cfg.Reverse)
	}
	if g.rev.srv != nil {
		t.Error("a reverse proxy started without a restart")
	}
}

// TestRouteEditorOnDefaults: without a config file there is nothing to
// save to, and the answer says so.
func TestRouteEditorOnDefaults(t *testing.T) {
	e := routeEditor{file: policyEditor{g: &gateway{}}}
	ctx := context.Background()
	doc, err := e.Routes(ctx)
	if err != nil || len(doc.Routes) != 0 {
		t.Fatalf("Routes = %+v, %v", doc, err)
	}
	_, err = e.Save(ctx, "alice", doc)
	var invalid *webui.InvalidPolicyError
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "-config FILE") {
		t.Errorf("Save: %v", err)
	}
	if probs := e.Validate(ctx, doc); len(probs) != 1 || !strings.Contains(probs[0].Message, "-config FILE") {
		t.Errorf("Validate: %v", probs)
	}
}

func TestRouteProblemPath(t *testing.T) {
	for in, want := range map[string]string{
		"reverse.routes[1].backends[0].url": "routes[1].backends[0].url",
		"reverse.routes[0]":                 "routes[0]",
		"reverse.routes":                    "routes",
		"reverse.routes_x":                  "reverse.routes_x",
		"reverse.listen":                    "reverse.listen",
		"rules[0].action":                   "rules[0].action",
		"":                                  "",
	} {
		if got := routeProblemPath(in); got != want {
			t.Errorf("routeProblemPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRouteEditorKeepsToWaygateCheck: a policy that `waygate check`
// accepts with a reported malformed inline entry does not keep routes
// from being saved: routes are checked as the reload builds the file,
// not with the policy editor's stricter checks.
func TestRouteEditorKeepsToWaygateCheck(t *testing.T) {
	s := newSite(t)
	app := backendServer(t, "app")
	const policy = `categories:
  - name: games
    domains: [games.test, "not a domain!"]
rules:
  - name: no-games
    categories: [games]
    action: block
reverse:
  listen: "127.0.0.1:0"
`
	g, e := newRouteEditor(t, s, policy)
	if code, out, errOut := runCLI("", "check", "-config", s.config); code != 0 {
		t.Fatalf("waygate check refuses the config: %s %s", out, errOut)
	}
	ctx := context.Background()
	doc, err := e.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	doc.Routes = []webui.RouteDoc{{Name: "app", Backends: []webui.RouteBackend{{URL: app.URL}}}}
	if _, err := e.Save(ctx, "alice", doc); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if st := g.rev.srv.Status(); len(st.Routes) != 1 || st.Routes[0].Name != "app" {
		t.Errorf("running routes %+v", st.Routes)
	}
}
