package reverse

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// routerTestReq builds a server-side request as net/http would parse it
// from the request line "GET target HTTP/1.1" with the given Host.
func routerTestReq(host, target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Host = host
	return r
}

func mustRouter(t testing.TB, routes []RouteMatch) *Router[string] {
	t.Helper()
	names := make([]string, len(routes))
	for i := range routes {
		names[i] = fmt.Sprintf("r%d", i)
	}
	rt, err := NewRouter(routes, names)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func routerExpect(t *testing.T, rt *Router[string], host, target, want string) {
	t.Helper()
	got, ok := rt.Match(routerTestReq(host, target))
	if want == "" {
		if ok {
			t.Errorf("%s %s: matched %s, want no match", host, target, got)
		}
		return
	}
	if !ok || got != want {
		t.Errorf("%s %s: got %q (ok=%v), want %s", host, target, got, ok, want)
	}
}

func TestRouterHosts(t *testing.T) {
	rt := mustRouter(t, []RouteMatch{
		{Hosts: []string{"Wiki.Corp.Example."}},           // r0
		{Hosts: []string{"*.corp.example"}},               // r1
		{Hosts: []string{"*.deep.corp.example"}},          // r2
		{Hosts: []string{"bücher.example"}},               // r3
		{Hosts: []string{"[0:0::1]", "127.0.0.1"}},        // r4
		{Hosts: []string{"xn--caf-dma.example", "a_b.x"}}, // r5
		{}, // r6: any host
	})
	for _, c := range []struct{ host, want string }{
		{"wiki.corp.example", "r0"},
		{"WIKI.corp.EXAMPLE:8443", "r0"},
		{"wiki.corp.example.", "r0"},
		{"wiki.corp.example.:80", "r0"},
		{"other.corp.example", "r1"},
		{"a.b.c.corp.example", "r1"},
		{"corp.example", "r6"}, // a wildcard does not match its apex
		{"x.deep.corp.example", "r2"},
		{"y.x.deep.corp.example", "r2"},
		{"deep.corp.example", "r1"},
		{"xn--bcher-kva.example", "r3"},
		{"BÜCHER.example", "r3"},
		{"[::1]:8080", "r4"},
		{"[::1]", "r4"},
		{"127.0.0.1:80", "r4"},
		{"127.0.0.01", "r6"}, // not a canonical address: no host route
		{"café.example", "r5"},
		{"A_B.x", "r5"},
		{"", "r6"},
		{"bad host", "r6"},
		{"a..corp.example", "r6"},
		{"wiki.corp.example:http", "r6"},
		{"::1", "r6"},
		{"[::1", "r6"},
		{"notcorp.example", "r6"},
		{"xcorp.example", "r6"},
	} {
		routerExpect(t, rt, c.host, "/", c.want)
	}

	// The URL host is used when Host is empty (as for client requests).
	r := &http.Request{URL: &url.URL{Host: "wiki.corp.example", Path: "/"}, Header: http.Header{}}
	if got, _ := rt.Match(r); got != "r0" {
		t.Errorf("URL host: got %q", got)
	}
}

func TestRouterPathPrefix(t *testing.T) {
	rt := mustRouter(t, []RouteMatch{
		{PathPrefix: "/api"},                // r0
		{PathPrefix: "/static/"},            // r1
		{PathPrefix: "/api/v1"},             // r2
		{PathPrefix: "/docs/%C3%A9t%C3%A9"}, // r3
		{PathPrefix: "/a b"},                // r4
	})
	for _, c := range []struct{ target, want string }{
		{"/api", "r0"},
		{"/api/", "r0"},
		{"/api/x", "r0"},
		{"/apix", ""},
		{"/api/v1", "r2"},
		{"/api/v1/users", "r2"},
		{"/api/v10", "r0"},
		{"/static/", "r1"},
		{"/static/app.js", "r1"},
		{"/static", ""},
		{"/docs/été/x", "r3"},
		{"/docs/%c3%a9t%C3%A9", "r3"},
		{"/a%20b/c", "r4"},
		{"/API", ""}, // case-sensitive
		{"/", ""},
		{"/api?x=/static/", "r0"},
	} {
		routerExpect(t, rt, "h.example", c.target, c.want)
	}
}

// TestRouterPathConfusion checks that no spelling of a path reaches
// another route than the path it decodes to, and that dot segments are
// refused before routing.
func TestRouterPathConfusion(t *testing.T) {
	rt := mustRouter(t, []RouteMatch{
		{PathPrefix: "/admin"}, // r0
		{PathPrefix: "/api"},   // r1
		{},                     // r2: everything else
	})
	for _, c := range []struct{ target, want string }{
		{"/%61dmin", "r0"},
		{"/%61dmin/x", "r0"},
		{"//admin", "r0"},
		{"/api//x", "r1"},
		{"///admin///x", "r0"},
		{"/api%2Fx", "r1"},
		{"/%2Fadmin", "r0"},
		{"/admin%2F", "r0"},
		{"/adm%69n", "r0"},
		{"/apiadmin", "r2"},
		{"/api.", "r2"},
		{"/api/...", "r1"}, // "..." is an ordinary segment
		{"/api/.well-known", "r1"},
	} {
		routerExpect(t, rt, "h.example", c.target, c.want)
	}
	for _, target := range []string{
		"/api/../admin",
		"/api/./x",
		"/api/..",
		"/..",
		"/.",
		"/api/%2e%2e/admin",
		"/api/%2E%2e/admin",
		"/api/.%2e/admin",
		"/api%2F..%2Fadmin",
		"/api/..%2Fadmin",
		`/api\..\admin`,
		"/api/%5C..%5Cadmin",
		"/api/..;/admin",
		"/api/.;x/admin",
		"/api/%252e%252e/admin",
		"/api/%252E./admin",
		"/api/%00",
		"/api/%0d%0aSet-Cookie:x",
		"/api/%7F",
	} {
		_, err := rt.MatchInfo(routerTestReq("h.example", target))
		if !errors.Is(err, ErrBadRequestPath) {
			t.Errorf("%s: err = %v, want ErrBadRequestPath", target, err)
		}
		if v, ok := rt.Match(routerTestReq("h.example", target)); ok {
			t.Errorf("%s: Match = %s, want no match", target, v)
		}
	}
	// Requests without a path: "*" is refused, "" is "/".
	r := routerTestReq("h.example", "/")
	r.URL.Path = "*"
	if _, err := rt.MatchInfo(r); !errors.Is(err, ErrBadRequestPath) {
		t.Errorf("*: err = %v", err)
	}
	r.URL.Path = ""
	if v, err := rt.MatchInfo(r); err != nil || v.Value != "r2" {
		t.Errorf("empty path: %v %v", v, err)
	}
}

func TestRouterHeadersCookies(t *testing.T) {
	rt := mustRouter(t, []RouteMatch{
		{Headers: map[string]string{"x-env": "canary"}},                                // r0
		{Headers: map[string]string{"X-Debug": "*"}},                                   // r1
		{Headers: map[string]string{"X-Empty": ""}},                                    // r2
		{Cookies: map[string]string{"beta": "1"}},                                      // r3
		{Cookies: map[string]string{"session": "*"}},                                   // r4
		{Cookies: map[string]string{"a": "x"}, Headers: map[string]string{"X-A": "y"}}, // r5
		{PathPrefix: "/"}, // r6
	})
	for _, c := range []struct {
		hdr  http.Header
		want string
	}{
		{http.Header{"X-Env": {"canary"}}, "r0"},
		{http.Header{"X-Env": {"Canary"}}, "r6"},         // values are case-sensitive
		{http.Header{"X-Env": {"prod", "canary"}}, "r6"}, // the first line counts
		{http.Header{"X-Debug": {""}}, "r1"},             // presence
		{http.Header{"X-Empty": {"anything"}}, "r2"},
		{http.Header{"Cookie": {"beta=1"}}, "r3"},
		{http.Header{"Cookie": {`x=y; beta="1"`}}, "r3"},      // quotes stripped as net/http does
		{http.Header{"Cookie": {"beta=0; beta=1"}}, "r6"},     // the first cookie counts
		{http.Header{"Cookie": {"beta=2", "beta=1"}}, "r6"},   // across lines too
		{http.Header{"Cookie": {"bad name=1; beta=1"}}, "r3"}, // invalid cookies skipped
		{http.Header{"Cookie": {"session="}}, "r4"},
		{http.Header{"Cookie": {"a=x"}, "X-A": {"y"}}, "r5"},
		{http.Header{"Cookie": {"a=x"}}, "r6"},
		{http.Header{"Cookie": {"beta=1" + strings.Repeat(";", routerMaxCookies)}}, "r6"}, // over net/http's cookie limit
	} {
		r := routerTestReq("h.example", "/")
		r.Header = c.hdr
		got, _ := rt.Match(r)
		if got != c.want {
			t.Errorf("%v: got %s, want %s", c.hdr, got, c.want)
		}
	}
}

func TestRouterPriority(t *testing.T) {
	rt := mustRouter(t, []RouteMatch{
		{},                                    // r0 any
		{Hosts: []string{"*.corp.example"}},   // r1
		{Hosts: []string{"app.corp.example"}}, // r2
		{Hosts: []string{"app.corp.example"}, PathPrefix: "/api"},                                         // r3
		{Hosts: []string{"app.corp.example"}, PathPrefix: "/api", Headers: map[string]string{"X-V": "2"}}, // r4
		{PathPrefix: "/api/admin", Priority: 10},                                                          // r5
		{Hosts: []string{"*.x.corp.example"}},                                                             // r6
		{Hosts: []string{"app.corp.example"}, PathPrefix: "/api"},                                         // r7 duplicate of r3: config order
		{Hosts: []string{"*.corp.example", "other.corp.example"}, PathPrefix: "/o"},                       // r8
		{Hosts: []string{"other.corp.example"}, PathPrefix: "/o", Priority: -1},                           // r9
	})
	for _, c := range []struct {
		host, target, hdr, want string
	}{
		{"app.corp.example", "/", "", "r2"},       // exact beats wildcard and any
		{"zzz.corp.example", "/", "", "r1"},       // wildcard beats any
		{"elsewhere.example", "/", "", "r0"},      // any
		{"app.corp.example", "/api/x", "", "r3"},  // longer prefix; r7 loses on config order
		{"app.corp.example", "/api/x", "2", "r4"}, // more conditions
		{"app.corp.example", "/api/admin/x", "2", "r5"},
		{"y.x.corp.example", "/", "", "r6"},    // longer wildcard wins
		{"other.corp.example", "/o", "", "r8"}, // r8 matches as exact here, with a higher priority than r9
		{"q.corp.example", "/o", "", "r8"},
	} {
		r := routerTestReq(c.host, c.target)
		if c.hdr != "" {
			r.Header.Set("X-V", c.hdr)
		}
		got, _ := rt.Match(r)
		if got != c.want {
			t.Errorf("%s %s: got %s, want %s", c.host, c.target, got, c.want)
		}
	}
	res, err := rt.MatchInfo(routerTestReq("app.corp.example", "/api/x"))
	if err != nil || res.Index != 3 || res.Prefix != "/api" || res.Value != "r3" {
		t.Errorf("MatchInfo = %+v, %v", res, err)
	}
}

func TestRouterEmptyAndNil(t *testing.T) {
	var nilRouter *Router[int]
	if _, ok := nilRouter.Match(routerTestReq("h", "/")); ok {
		t.Error("nil router matched")
	}
	if _, err := nilRouter.MatchInfo(routerTestReq("h", "/")); !errors.Is(err, ErrNoRouteMatch) {
		t.Error(err)
	}
	rt, err := NewRouter[int](nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.MatchInfo(routerTestReq("h", "/")); !errors.Is(err, ErrNoRouteMatch) {
		t.Error(err)
	}
	if _, ok := rt.Match(nil); ok {
		t.Error("nil request matched")
	}
}

func TestNewRouterErrors(t *testing.T) {
	for _, c := range []struct {
		m    RouteMatch
		want string
	}{
		{RouteMatch{Hosts: []string{""}}, `route 2: host ""`},
		{RouteMatch{Hosts: []string{"a.*.example"}}, `host "a.*.example": a wildcard`},
		{RouteMatch{Hosts: []string{"*"}}, `host "*"`},
		{RouteMatch{Hosts: []string{"*x.example"}}, `host "*x.example"`},
		{RouteMatch{Hosts: []string{"**.example"}}, `host "**.example"`},
		{RouteMatch{Hosts: []string{"*.10.0.0.1"}}, `host "*.10.0.0.1"`},
		{RouteMatch{Hosts: []string{"host:80"}}, `no port`},
		{RouteMatch{Hosts: []string{"bad host"}}, `host "bad host"`},
		{RouteMatch{Hosts: []string{"-a.example"}}, `host "-a.example"`},
		{RouteMatch{Hosts: []string{"a..example"}}, `host "a..example"`},
		{RouteMatch{Hosts: []string{strings.Repeat("a", 64) + ".example"}}, "not a valid host name"},
		{RouteMatch{Hosts: []string{"[::1"}}, `host "[::1"`},
		{RouteMatch{Hosts: []string{"[10.0.0.1]"}}, "not an IPv6"},
		{RouteMatch{Hosts: []string{"[fe80::1%eth0]"}}, "not an IPv6"},
		{RouteMatch{Hosts: []string{"10.0.0.01"}}, "not a valid host name"},
		{RouteMatch{Hosts: []string{"xn--zz.example"}}, `host "xn--zz.example"`},
		{RouteMatch{PathPrefix: "api"}, `path prefix "api": must start with "/"`},
		{RouteMatch{PathPrefix: "/a/../b"}, "dot segments"},
		{RouteMatch{PathPrefix: "/a//b"}, `"//"`},
		{RouteMatch{PathPrefix: "/a?b"}, "'?'"},
		{RouteMatch{PathPrefix: "/a%zz"}, "percent-encoding"},
		{RouteMatch{PathPrefix: "/a%00"}, "control"},
		{RouteMatch{Headers: map[string]string{"Bad Header": "x"}}, `header "Bad Header"`},
		{RouteMatch{Headers: map[string]string{"": "x"}}, `header ""`},
		{RouteMatch{Headers: map[string]string{"host": "x"}}, `Hosts`},
		{RouteMatch{Headers: map[string]string{"X-A": "a\nb"}}, `value`},
		{RouteMatch{Cookies: map[string]string{"": "x"}}, "empty cookie name"},
		{RouteMatch{Cookies: map[string]string{"a b": "x"}}, `cookie "a b"`},
		{RouteMatch{Cookies: map[string]string{"a": "x;y"}}, `cookie "a"`},
		{RouteMatch{Cookies: map[string]string{"a": `"x"`}}, `cookie "a"`},
	} {
		_, err := NewRouter([]RouteMatch{{}, c.m}, []int{0, 1})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want it to contain %q", c.m, err, c.want)
		}
	}
	if _, err := NewRouter([]RouteMatch{{}}, []int{}); err == nil {
		t.Error("length mismatch accepted")
	}
}

func TestStripPrefix(t *testing.T) {
	for _, c := range []struct {
		target, prefix, path, escaped string
	}{
		{"/app/x", "/app", "/x", "/x"},
		{"/app", "/app", "/", "/"},
		{"/app/", "/app", "/", "/"},
		{"/app/x", "/app/", "/x", "/x"},
		{"/app/", "/app/", "/", "/"},
		{"/appx", "/app", "/appx", "/appx"},
		{"/other/app", "/app", "/other/app", "/other/app"},
		{"/x", "/", "/x", "/x"},
		{"/x", "", "/x", "/x"},
		{"//app//x", "/app", "//x", "//x"},
		{"/a/b/c", "/a/b", "/c", "/c"},
		{"/app/a%2Fb", "/app", "/a/b", "/a%2Fb"},
		{"/app%2Fa%2Fb", "/app", "/a/b", "/a%2Fb"},
		{"/app%2f", "/app", "/", "/"},
		{"/docs/%C3%A9t%C3%A9/a%2Fb", "/docs/été", "/a/b", "/a%2Fb"},
		{"/docs/%C3%A9t%C3%A9/x", "/docs/%C3%A9t%C3%A9", "/x", "/x"},
		{"/%61pp/x%20y", "/app", "/x y", "/x%20y"},
	} {
		r := routerTestReq("h", c.target)
		StripPrefix(r.URL, c.prefix)
		if r.URL.Path != c.path || r.URL.EscapedPath() != c.escaped {
			t.Errorf("StripPrefix(%s, %s) = %q / %q, want %q / %q", c.target, c.prefix, r.URL.Path, r.URL.EscapedPath(), c.path, c.escaped)
		}
	}
	StripPrefix(nil, "/x") // no panic

	for _, c := range []struct{ path, prefix, want string }{
		{"/app/x", "/app", "/x"},
		{"/app", "/app", "/"},
		{"/apps", "/app", "/apps"},
		{"/a/b", "/a/b/", "/"},
		{"/x", "", "/x"},
	} {
		if got := StripPathPrefix(c.path, c.prefix); got != c.want {
			t.Errorf("StripPathPrefix(%q, %q) = %q, want %q", c.path, c.prefix, got, c.want)
		}
	}
}

func routerBenchRoutes() ([]RouteMatch, []int) {
	var routes []RouteMatch
	for i := 0; i < 20; i++ {
		h := fmt.Sprintf("app%d.corp.example", i)
		routes = append(routes,
			RouteMatch{Hosts: []string{h}, PathPrefix: "/api"},
			RouteMatch{Hosts: []string{h}},
		)
	}
	for i := 0; i < 5; i++ {
		routes = append(routes, RouteMatch{Hosts: []string{fmt.Sprintf("*.zone%d.corp.example", i)}})
	}
	for i := 0; i < 4; i++ {
		routes = append(routes, RouteMatch{PathPrefix: fmt.Sprintf("/shared%d", i)})
	}
	routes = append(routes, RouteMatch{Headers: map[string]string{"X-Canary": "1"}, Priority: 1})
	payloads := make([]int, len(routes))
	for i := range payloads {
		payloads[i] = i
	}
	return routes, payloads
}

// TestRouterMatchNoAlloc: an exact-host match allocates nothing.
func TestRouterMatchNoAlloc(t *testing.T) {
	routes, payloads := routerBenchRoutes()
	rt, err := NewRouter(routes, payloads)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"app7.corp.example", "app7.corp.example:443", "x.zone3.corp.example"} {
		r := routerTestReq(host, "/api/v1/users")
		r.Header.Set("Cookie", "a=b")
		if _, ok := rt.Match(r); !ok {
			t.Fatal("no match")
		}
		if n := testing.AllocsPerRun(100, func() { rt.Match(r) }); n != 0 {
			t.Errorf("%s: %v allocations per Match", host, n)
		}
	}
}

func BenchmarkRouterMatch(b *testing.B) {
	routes, payloads := routerBenchRoutes()
	rt, err := NewRouter(routes, payloads)
	if err != nil {
		b.Fatal(err)
	}
	if len(routes) != 50 {
		b.Fatalf("%d routes", len(routes))
	}
	for _, c := range []struct{ name, host, path string }{
		{"exact", "app13.corp.example", "/api/v1/users"},
		{"exact-port", "app13.corp.example:8443", "/index.html"},
		{"mixed-case", "App13.corp.example", "/index.html"}, // lower-cased copy: 1 alloc
		{"wildcard", "x.y.zone2.corp.example", "/"},
		{"fallback", "unknown.example", "/shared3/x"},
	} {
		r := routerTestReq(c.host, c.path)
		if _, ok := rt.Match(r); !ok {
			b.Fatalf("%s: no match", c.name)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rt.Match(r)
			}
		})
	}
}
