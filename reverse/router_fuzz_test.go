package reverse

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

// routerFuzzRoutes is the fixed router of FuzzRouterMatch.
var routerFuzzRoutes = []RouteMatch{
	{Hosts: []string{"wiki.corp.example"}, PathPrefix: "/api"},
	{Hosts: []string{"*.corp.example"}, PathPrefix: "/"},
	{Hosts: []string{"*.a.corp.example"}, PathPrefix: "/x/", Headers: map[string]string{"X-Env": "canary"}},
	{PathPrefix: "/admin"},
	{Cookies: map[string]string{"beta": "1"}, PathPrefix: "/api"},
	{Hosts: []string{"bücher.example", "[::1]", "127.0.0.1"}},
	{Hosts: []string{"wiki.corp.example"}, Headers: map[string]string{"X-Debug": "*"}, PathPrefix: "/api/v1"},
	{Hosts: []string{"corp.example"}, PathPrefix: "/docs/été", Priority: 5},
	{Priority: -1},
	{Hosts: []string{"wiki.corp.example", "*.corp.example"}, Cookies: map[string]string{"sid": ""}, PathPrefix: "/api/"},
	{Hosts: []string{"*.example"}, Headers: map[string]string{"X-Env": "prod"}, Cookies: map[string]string{"beta": "*"}},
	{Hosts: []string{"a_b.corp.example"}, PathPrefix: "/a b%2Fc"},
}

// refRouterHost is the reference host normalizer: an independent, slow
// spelling of the rules documented on RouteMatch.
func refRouterHost(h string) (string, bool) {
	if h == "" {
		return "", false
	}
	if strings.HasPrefix(h, "[") {
		hp := h
		if strings.HasSuffix(h, "]") {
			hp = h + ":0"
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil || strings.Trim(port, "0123456789") != "" {
			return "", false
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return "[" + a.String() + "]", true
	}
	if strings.Count(h, ":") > 1 {
		return "", false
	}
	if i := strings.Index(h, ":"); i >= 0 {
		if strings.Trim(h[i+1:], "0123456789") != "" {
			return "", false
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	for _, r := range h {
		if r >= 0x80 {
			a, err := idna.Lookup.ToASCII(h)
			if err != nil {
				return "", false
			}
			h = strings.TrimSuffix(a, ".")
			break
		}
	}
	h = strings.ToLower(h)
	if h == "" || len(h) > 253 {
		return "", false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return "", false
		}
		if strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return "", false
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		if a, err := netip.ParseAddr(h); err != nil || !a.Is4() || a.String() != h {
			return "", false
		}
	}
	return h, true
}

// refRouterPath is the reference path check: ok=false for a path the
// router must refuse, else the path with runs of "/" collapsed.
func refRouterPath(p string) (string, bool) {
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	for _, r := range []byte(p) {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		seg, _, _ = strings.Cut(seg, ";")
		switch strings.ToLower(seg) {
		case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
			return "", false
		}
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	out := "/" + strings.Join(segs, "/")
	if strings.HasSuffix(p, "/") && out != "/" {
		out += "/"
	}
	return out, true
}

// refRouterPrefix decodes a configured prefix; "" for any path.
func refRouterPrefix(p string) string {
	d, _ := url.PathUnescape(p)
	if d == "/" {
		return ""
	}
	return d
}

// refRouterMatch is the reference router: every route checked one by one
// against the request, the best by the documented order. It returns the
// route index, -1 for none, -2 for a refused path.
func refRouterMatch(routes []RouteMatch, r *http.Request) int {
	path, ok := refRouterPath(r.URL.Path)
	if !ok {
		return -2
	}
	hostHeader := r.Host
	if hostHeader == "" {
		hostHeader = r.URL.Host
	}
	host, hostOK := refRouterHost(hostHeader)
	isIP := hostOK && (strings.HasPrefix(host, "[") || net.ParseIP(host) != nil)
	best, bestRank := -1, 0
	better := func(i, rank int) bool {
		if best < 0 {
			return true
		}
		a, b := routes[i], routes[best]
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		if rank != bestRank {
			return rank > bestRank
		}
		pa, pb := refRouterPrefix(a.PathPrefix), refRouterPrefix(b.PathPrefix)
		if len(pa) != len(pb) {
			return len(pa) > len(pb)
		}
		if ca, cb := len(a.Headers)+len(a.Cookies), len(b.Headers)+len(b.Cookies); ca != cb {
			return ca > cb
		}
		return false // earlier index already holds best
	}
	for i, m := range routes {
		rank := -1
		if len(m.Hosts) == 0 {
			rank = 0
		}
		for _, h := range m.Hosts {
			if !hostOK {
				break
			}
			if base, ok := strings.CutPrefix(h, "*."); ok {
				b, _ := refRouterHost(base)
				if !isIP && strings.HasSuffix(host, "."+b) {
					if r := 1 + len(strings.Split(b, ".")); r > rank {
						rank = r
					}
				}
				continue
			}
			if c, _ := refRouterHost(h); c == host {
				rank = 1 << 20
			}
		}
		if rank < 0 {
			continue
		}
		if p := refRouterPrefix(m.PathPrefix); p != "" {
			if !strings.HasPrefix(path, p) || !(len(path) == len(p) || strings.HasSuffix(p, "/") || path[len(p)] == '/') {
				continue
			}
		}
		ok := true
		for name, v := range m.Headers {
			vals := r.Header.Values(name)
			if len(vals) == 0 || (v != "" && v != "*" && vals[0] != v) {
				ok = false
			}
		}
		for name, v := range m.Cookies {
			c, err := r.Cookie(name)
			if err != nil || (v != "" && v != "*" && c.Value != v) {
				ok = false
			}
		}
		if ok && better(i, rank) {
			best, bestRank = i, rank
		}
	}
	return best
}

func FuzzRouterMatch(f *testing.F) {
	idx := make([]int, len(routerFuzzRoutes))
	for i := range idx {
		idx[i] = i
	}
	rt, err := NewRouter(routerFuzzRoutes, idx)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][5]string{
		{"wiki.corp.example", "/api/v1/x", "", "", ""},
		{"WIKI.corp.example:443", "/api/v1", "canary", "1", "sid=a; beta=1"},
		{"q.a.corp.example", "/x/y", "canary", "", ""},
		{"q.a.corp.example", "/x", "prod", "", "beta=2"},
		{"bücher.example", "/%2e%2e/admin", "", "", ""},
		{"[::1]:80", "//admin//x", "", "", ""},
		{"corp.example.", "/docs/%C3%A9t%C3%A9/x", "", "", ""},
		{"a_b.corp.example", "/a%20b/c/x", "", "", ""},
		{"", "/api/..;/admin", "", "", `beta="1"`},
		{"x.example", "/admin%2F", "prod", "", "beta=; beta=1"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	f.Fuzz(func(t *testing.T, host, target, env, debug, cookie string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: target}
		}
		r := &http.Request{Method: http.MethodGet, Host: host, URL: u, Header: http.Header{}}
		if env != "" {
			r.Header["X-Env"] = strings.Split(env, "\n")
		}
		if debug != "" {
			r.Header["X-Debug"] = []string{debug}
		}
		if cookie != "" {
			r.Header["Cookie"] = strings.Split(cookie, "\n")
		}
		res, err := rt.MatchInfo(r)
		want := refRouterMatch(routerFuzzRoutes, r)
		switch {
		case errors.Is(err, ErrBadRequestPath):
			if want != -2 {
				t.Fatalf("path %q refused, reference routes it to %d", r.URL.Path, want)
			}
			return
		case errors.Is(err, ErrNoRouteMatch):
			if want != -1 {
				t.Fatalf("no match, reference says %d (host %q path %q)", want, host, r.URL.Path)
			}
			return
		case err != nil:
			t.Fatal(err)
		}
		if res.Index != want || res.Value != want {
			t.Fatalf("host %q path %q: matched %d, reference says %d", host, r.URL.Path, res.Index, want)
		}
		// Stripping the matched prefix keeps Path and RawPath in step.
		u2 := *r.URL
		StripPrefix(&u2, res.Prefix)
		if !strings.HasPrefix(u2.Path, "/") && r.URL.Path != "" {
			t.Fatalf("StripPrefix(%q, %q) = %q", r.URL.Path, res.Prefix, u2.Path)
		}
		if dec, err := url.PathUnescape(u2.EscapedPath()); err != nil || dec != u2.Path {
			t.Fatalf("StripPrefix(%q, %q): escaped %q does not decode to %q", r.URL.EscapedPath(), res.Prefix, u2.EscapedPath(), u2.Path)
		}
	})
}

func FuzzRouteHost(f *testing.F) {
	for _, s := range []string{
		"wiki.corp.example", "*.corp.example", "Bücher.Example.", "[::1]:8080", "[::ffff:1.2.3.4]",
		"127.0.0.1:80", "a_b.x", "xn--bcher-kva.example", "*.*.x", "a.b.c:", "ﬀ.example", "1.2.3",
		"xn--zz.example", "\u3002.example", "a.example..", "[fe80::1%25eth0]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if key, wildcard, err := routerConfigHost(s); err == nil {
			again := key
			if wildcard {
				again = "*." + key
			}
			k2, w2, err := routerConfigHost(again)
			if err != nil || k2 != key || w2 != wildcard {
				t.Fatalf("config host %q -> %q (%v), again -> %q %v %v", s, key, wildcard, k2, w2, err)
			}
			if !wildcard {
				if k, _, ok := routerRequestHost(key); !ok || k != key {
					t.Fatalf("config host %q -> %q, as a request host -> %q %v", s, key, k, ok)
				}
				if k, _, ok := routerRequestHost(key + ":8080"); !ok || k != key {
					t.Fatalf("config host %q -> %q, with a port -> %q %v", s, key, k, ok)
				}
				if !strings.HasPrefix(key, "[") {
					if k, _, ok := routerRequestHost(strings.ToUpper(key) + "."); !ok || k != key {
						t.Fatalf("config host %q -> %q, upper case with a dot -> %q %v", s, key, k, ok)
					}
				}
			}
		}
		key, isIP, ok := routerRequestHost(s)
		ref, refOK := refRouterHost(s)
		if ok != refOK || key != ref {
			t.Fatalf("request host %q -> %q %v, reference %q %v", s, key, ok, ref, refOK)
		}
		if !ok {
			return
		}
		if k2, ip2, ok2 := routerRequestHost(key); !ok2 || k2 != key || ip2 != isIP {
			t.Fatalf("request host %q -> %q, again -> %q %v", s, key, k2, ok2)
		}
		if isIP != (strings.HasPrefix(key, "[") || net.ParseIP(key) != nil) {
			t.Fatalf("request host %q -> %q: isIP %v", s, key, isIP)
		}
	})
}
