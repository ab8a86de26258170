package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"waygate/cmd/waygate/internal/config"
)

func TestParseReverseFull(t *testing.T) {
	src := `schema_version: 1
reverse:
  listen: "127.0.0.1:8080"
  tls:
    listen: ":8443"
    certificates:
      - {cert: certs/wiki.pem, key: certs/wiki.key}
      - cert: /etc/ssl/api.pem
        key: /etc/ssl/api.key
    redirect_http: true
  trusted_proxies: [10.0.5.0/24, "2001:db8::1"]
  allow_backends: [10.0.0.0/8]
  timeouts:
    read_header: 5s
    idle: 0s
    dial: 1s
    response_header: 30s
  limits:
    max_header_bytes: 32768
    max_body_bytes: -1
    max_connections: 0
  compression:
    algorithms: [gzip, br]
    levels: {gzip: 6, br: 0, zstd: 4}
    min_size: 0
    types: [Application/JSON, "text/*"]
  security_headers:
    hsts: "max-age=63072000; includeSubDomains"
    content_type_options: ""
    frame_options: DENY
    referrer_policy: no-referrer
    content_security_policy: "default-src 'self'"
  routes:
    - name: wiki
      hosts: [Wiki.Corp.Example, "*.wiki.corp.example", 192.0.2.10, "2001:DB8::10"]
      path_prefix: /wiki
      strip_prefix: true
      headers: {x-canary: "1", Accept: "*"}
      cookies: {beta: "*", lang: en}
      priority: 5
      backends:
        - http://10.0.0.5:8080
        - {url: "https://10.0.0.6:8443", weight: 2, max_conns: 100}
      balance: hash
      hash_on: header:X-User
      health:
        path: /healthz?full=1
        interval: 5s
        timeout: 1s
        rise: 1
        fall: 4
        expect_status: "200-299"
        host: wiki.internal:8080
      passive: {failures: -1, cooldown: 1m}
      retries: 0
      backend_tls:
        ca_file: certs/ca.pem
        server_name: wiki.internal
        cert_file: certs/client.pem
        key_file: certs/client.key
      allow_clients: [10.0.0.0/8]
      deny_clients: [10.66.0.0/16]
      rate_limit: {requests_per_second: 2.5, burst: 10}
      max_body_bytes: 1048576
      compress: false
      security_headers: {frame_options: "", content_security_policy: "default-src *"}
      response_header_timeout: 2m
    - name: api.v2_default
      backends: ["http://api.internal"]
      balance: hash
      health: {path: /, interval: 1s, expect_status: 204}
      rate_limit: {requests_per_second: 2.5}
`
	got, err := config.Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	s := func(v string) *string { return &v }
	want := config.Default().Reverse
	want.Listen = "127.0.0.1:8080"
	want.TLS = config.ReverseTLS{Listen: ":8443", RedirectHTTP: true, Certificates: []config.CertPair{
		{Cert: "certs/wiki.pem", Key: "certs/wiki.key"},
		{Cert: "/etc/ssl/api.pem", Key: "/etc/ssl/api.key"},
	}}
	want.TrustedProxies = prefixes("10.0.5.0/24", "2001:db8::1/128")
	want.AllowBackends = prefixes("10.0.0.0/8")
	want.Timeouts = config.ReverseTimeouts{ReadHeader: 5 * time.Second, Idle: 120 * time.Second,
		Dial: time.Second, ResponseHeader: 30 * time.Second}
	want.Limits = config.ReverseLimits{MaxHeaderBytes: 32768, MaxBodyBytes: -1, MaxConnections: 10000}
	want.Compression = config.Compression{
		Algorithms: []string{"gzip", "br"},
		Levels:     map[string]int{"gzip": 6, "br": 0, "zstd": 4},
		MinSize:    0,
		Types:      []string{"application/json", "text/*"},
	}
	want.SecurityHeaders = config.SecurityHeaders{
		HSTS:                  s("max-age=63072000; includeSubDomains"),
		ContentTypeOptions:    s(""),
		FrameOptions:          s("DENY"),
		ReferrerPolicy:        s("no-referrer"),
		ContentSecurityPolicy: s("default-src 'self'"),
	}
	want.Routes = []config.Route{
		{
			Name:        "wiki",
			Hosts:       []string{"wiki.corp.example", "*.wiki.corp.example", "192.0.2.10", "2001:db8::10"},
			PathPrefix:  "/wiki",
			StripPrefix: true,
			Headers:     map[string]string{"X-Canary": "1", "Accept": "*"},
			Cookies:     map[string]string{"beta": "*", "lang": "en"},
			Priority:    5,
			Backends: []config.Backend{
				{URL: "http://10.0.0.5:8080", Weight: 1},
				{URL: "https://10.0.0.6:8443", Weight: 2, MaxConns: 100},
			},
			Balance: "hash",
			HashOn:  "header:X-User",
			Health: config.HealthCheck{Path: "/healthz?full=1", Interval: 5 * time.Second, Timeout: time.Second,
				Rise: 1, Fall: 4, ExpectStatus: [2]int{200, 299}, Host: "wiki.internal:8080"},
			Passive: config.Passive{Failures: -1, Cooldown: time.Minute},
			Retries: 0,
			BackendTLS: config.BackendTLS{CAFile: "certs/ca.pem", ServerName: "wiki.internal",
				CertFile: "certs/client.pem", KeyFile: "certs/client.key"},
			AllowClients:          prefixes("10.0.0.0/8"),
			DenyClients:           prefixes("10.66.0.0/16"),
			RateLimit:             config.RateLimit{RequestsPerSecond: 2.5, Burst: 10},
			MaxBodyBytes:          1 << 20,
			Compress:              false,
			SecurityHeaders:       config.SecurityHeaders{FrameOptions: s(""), ContentSecurityPolicy: s("default-src *")},
			ResponseHeaderTimeout: 2 * time.Minute,
		},
		{
			// Defaults: the route's zeros take the reverse-wide values.
			Name:       "api.v2_default",
			PathPrefix: "/",
			Backends:   []config.Backend{{URL: "http://api.internal", Weight: 1}},
			Balance:    "hash",
			HashOn:     "client",
			// A timeout left out is at most half the interval.
			Health: config.HealthCheck{Path: "/", Interval: time.Second, Timeout: 500 * time.Millisecond,
				Rise: 2, Fall: 3, ExpectStatus: [2]int{204, 204}},
			Passive:               config.Passive{Failures: 3, Cooldown: 30 * time.Second},
			Retries:               1,
			RateLimit:             config.RateLimit{RequestsPerSecond: 2.5, Burst: 3},
			MaxBodyBytes:          -1,
			Compress:              true,
			ResponseHeaderTimeout: 30 * time.Second,
		},
	}
	if !reflect.DeepEqual(got.Reverse, want) {
		t.Errorf("Reverse =\n%+v\nwant\n%+v", got.Reverse, want)
		for i := range min(len(got.Reverse.Routes), len(want.Routes)) {
			if !reflect.DeepEqual(got.Reverse.Routes[i], want.Routes[i]) {
				t.Errorf("routes[%d] =\n%+v\nwant\n%+v", i, got.Reverse.Routes[i], want.Routes[i])
			}
		}
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate of parsed config: %v", err)
	}
	// The rest of the file keeps its defaults.
	got.Reverse = config.Default().Reverse
	if !reflect.DeepEqual(got, config.Default()) {
		t.Errorf("reverse changed other sections: %+v", got)
	}
}

func TestParseReverseMinimalRoute(t *testing.T) {
	c, err := config.Parse("r.yaml", []byte(`schema_version: 1
reverse:
  listen: ":8080"
  routes:
    - name: app
      backends: [http://127.0.0.1:3000]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Route{
		Name:                  "app",
		PathPrefix:            "/",
		Backends:              []config.Backend{{URL: "http://127.0.0.1:3000", Weight: 1}},
		Balance:               "round_robin",
		Passive:               config.Passive{Failures: 3, Cooldown: 30 * time.Second},
		Retries:               1,
		MaxBodyBytes:          100 << 20,
		Compress:              true,
		ResponseHeaderTimeout: 60 * time.Second,
	}
	if got := c.Reverse.Routes; len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("routes = %+v\nwant [%+v]", got, want)
	}
	// The global security headers are all set; the route's are not.
	h := c.Reverse.SecurityHeaders
	if h.HSTS == nil || *h.HSTS != "max-age=31536000" || *h.ContentTypeOptions != "nosniff" ||
		*h.FrameOptions != "SAMEORIGIN" || *h.ReferrerPolicy != "strict-origin-when-cross-origin" ||
		h.ContentSecurityPolicy == nil || *h.ContentSecurityPolicy != "" {
		t.Errorf("global security headers = %+v", h)
	}
}

func TestReverseBackendForms(t *testing.T) {
	c, err := config.Parse("r.yaml", []byte(`schema_version: 1
reverse:
  listen: ":8080"
  routes:
    - name: app
      balance: weighted
      backends:
        - http://10.0.0.1:8080
        - "https://[2001:db8::1]:8443/"
        - {url: "http://10.0.0.2", weight: 3}
        - url: https://backend.internal
          max_conns: 7
          weight: 1000
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []config.Backend{
		{URL: "http://10.0.0.1:8080", Weight: 1},
		{URL: "https://[2001:db8::1]:8443/", Weight: 1},
		{URL: "http://10.0.0.2", Weight: 3},
		{URL: "https://backend.internal", Weight: 1000, MaxConns: 7},
	}
	if got := c.Reverse.Routes[0].Backends; !reflect.DeepEqual(got, want) {
		t.Errorf("backends = %+v, want %+v", got, want)
	}
}

func TestReverseAbsentVersusEmpty(t *testing.T) {
	absent, err := config.Parse("a.yaml", []byte("schema_version: 1\nreverse:\n  compression:\n    min_size: 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	def := config.Default().Reverse
	if !reflect.DeepEqual(absent.Reverse.AllowBackends, def.AllowBackends) {
		t.Errorf("absent allow_backends = %v, want the default", absent.Reverse.AllowBackends)
	}
	if got := absent.Reverse.Compression.Algorithms; !reflect.DeepEqual(got, []string{"zstd", "br", "gzip"}) {
		t.Errorf("absent algorithms = %v, want the default", got)
	}

	empty, err := config.Parse("e.yaml", []byte("schema_version: 1\nreverse:\n  allow_backends: []\n  compression: {algorithms: []}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := empty.Reverse.AllowBackends; got == nil || len(got) != 0 {
		t.Errorf("allow_backends: [] = %#v, want an empty list", got)
	}
	if got := empty.Reverse.Compression.Algorithms; got == nil || len(got) != 0 {
		t.Errorf("algorithms: [] = %#v, want an empty list", got)
	}

	// Levels given replace the defaults one by one.
	partial, err := config.Parse("l.yaml", []byte("schema_version: 1\nreverse:\n  compression: {levels: {br: 11}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := partial.Reverse.Compression.Levels, map[string]int{"gzip": 1, "br": 11, "zstd": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("levels = %v, want %v", got, want)
	}

	// A key with no value is ambiguous and refused, as for allow_clients.
	_, err = config.Parse("n.yaml", []byte("schema_version: 1\nreverse:\n  allow_backends:\n"))
	wantProblems(t, err, "n.yaml:3:18: reverse.allow_backends: expected a list, got null (write [] for an empty list)")
}

// routeSrc is a file with a valid route named a whose last line is line 6;
// extra lines (keys of the route) follow from line 7.
func routeSrc(extra string) string {
	return "schema_version: 1\nreverse:\n  listen: ':8080'\n  routes:\n    - name: a\n      backends: [http://10.0.0.1:80]\n" + extra
}

func TestReverseErrors(t *testing.T) {
	// base is a route a without backends, up to line 5.
	base := "schema_version: 1\nreverse:\n  listen: ':8080'\n  routes:\n    - name: a\n"
	backend := func(list string) string { return base + "      backends: " + list + "\n" }
	tests := []struct {
		name string
		src  string
		line int
		want string // a substring of the problem, formatted
	}{
		// Listeners.
		{"bad listen", "schema_version: 1\nreverse:\n  listen: nope\n", 3,
			`reverse.listen: "nope" is not a host:port address`},
		{"bad tls listen", "schema_version: 1\nreverse:\n  tls: {listen: ':https'}\n", 3,
			`reverse.tls.listen: ":https": port must be a number`},
		{"routes without listener", "schema_version: 1\nreverse:\n  routes:\n    - {name: a, backends: [http://h:1]}\n", 4,
			"reverse.routes: needs reverse.listen or reverse.tls.listen"},
		{"redirect without tls", "schema_version: 1\nreverse:\n  listen: ':80'\n  tls:\n    redirect_http: true\n", 5,
			"reverse.tls.redirect_http: needs reverse.tls.listen"},
		{"redirect without plain listener", "schema_version: 1\nreverse:\n  tls:\n    listen: ':443'\n    redirect_http: true\n", 5,
			"reverse.tls.redirect_http: needs reverse.listen"},
		{"tls listen same as listen", "schema_version: 1\nreverse:\n  listen: '127.0.0.1:8080'\n  tls:\n    listen: ':8080'\n", 5,
			`reverse.tls.listen: ":8080" conflicts with reverse.listen "127.0.0.1:8080"`},
		{"listen same as proxy", "schema_version: 1\nreverse:\n  listen: '0.0.0.0:3128'\n", 3,
			`reverse.listen: "0.0.0.0:3128" conflicts with proxy.listen ":3128"`},
		{"listen same as admin", "schema_version: 1\nreverse:\n  listen: '127.0.0.1:9090'\n", 3,
			`reverse.listen: "127.0.0.1:9090" conflicts with admin.listen "127.0.0.1:9090"`},
		{"tls listen same as admin", "schema_version: 1\nadmin:\n  listen: '[::1]:9443'\nreverse:\n  tls:\n    listen: '[::]:9443'\n", 6,
			`reverse.tls.listen: "[::]:9443" conflicts with admin.listen "[::1]:9443"`},
		{"certificate without key", "schema_version: 1\nreverse:\n  tls:\n    listen: ':443'\n    certificates:\n      - {cert: a.pem}\n", 6,
			"reverse.tls.certificates[0].key: a certificate needs a key file"},
		{"certificate with empty cert", "schema_version: 1\nreverse:\n  tls:\n    listen: ':443'\n    certificates:\n      - cert: ''\n        key: a.key\n", 6,
			"reverse.tls.certificates[0].cert: a certificate needs a cert file"},
		{"certificates without tls listen", "schema_version: 1\nreverse:\n  tls:\n    certificates:\n      - {cert: a.pem, key: a.key}\n", 5,
			"reverse.tls.certificates: set, but reverse.tls.listen is empty"},
		{"certificate as string", "schema_version: 1\nreverse:\n  tls:\n    listen: ':443'\n    certificates: [a.pem]\n", 5,
			`reverse.tls.certificates[0]: expected a mapping of keys, got the string "a.pem"`},

		// Reverse-wide settings.
		{"unknown key", "schema_version: 1\nreverse:\n  listn: ':80'\n", 3, `reverse: unknown key "listn" (did you mean "listen"?)`},
		{"bad trusted proxy", "schema_version: 1\nreverse:\n  trusted_proxies: [10.0.0.1/8]\n", 3,
			`reverse.trusted_proxies[0]: "10.0.0.1/8" has host bits set`},
		{"negative timeout", "schema_version: 1\nreverse:\n  timeouts:\n    dial: -1s\n", 4,
			"reverse.timeouts.dial: -1s must not be negative"},
		{"body size", "schema_version: 1\nreverse:\n  limits:\n    max_body_bytes: -2\n", 4,
			"reverse.limits.max_body_bytes: -2 is not a size (0 means the default, -1 unlimited)"},
		{"header size", "schema_version: 1\nreverse:\n  limits:\n    max_header_bytes: -1\n", 4,
			"reverse.limits.max_header_bytes: -1 must not be negative"},
		{"connections", "schema_version: 1\nreverse:\n  limits:\n    max_connections: -5\n", 4,
			"reverse.limits.max_connections: -5 must not be negative"},
		{"unknown algorithm", "schema_version: 1\nreverse:\n  compression:\n    algorithms: [gzip, deflate]\n", 4,
			`reverse.compression.algorithms[1]: "deflate" is not a compression algorithm (zstd, br, gzip)`},
		{"duplicate algorithm", "schema_version: 1\nreverse:\n  compression:\n    algorithms: [gzip, br, gzip]\n", 4,
			`reverse.compression.algorithms[2]: duplicate algorithm "gzip" (also algorithms[0])`},
		{"gzip level", "schema_version: 1\nreverse:\n  compression:\n    levels:\n      gzip: 10\n", 5,
			"reverse.compression.levels.gzip: 10 is not a gzip level (want 1 to 9)"},
		{"br level", "schema_version: 1\nreverse:\n  compression:\n    levels: {br: 12}\n", 4,
			"reverse.compression.levels.br: 12 is not a br level (want 0 to 11)"},
		{"zstd level", "schema_version: 1\nreverse:\n  compression:\n    levels: {zstd: 0}\n", 4,
			"reverse.compression.levels.zstd: 0 is not a zstd level (want 1 to 4)"},
		{"level of unknown algorithm", "schema_version: 1\nreverse:\n  compression:\n    levels: {lz4: 1}\n", 4,
			`reverse.compression.levels.lz4: "lz4" is not a compression algorithm`},
		{"level not an integer", "schema_version: 1\nreverse:\n  compression:\n    levels: {gzip: high}\n", 4,
			`reverse.compression.levels.gzip: expected an integer, got the string "high"`},
		{"levels as list", "schema_version: 1\nreverse:\n  compression:\n    levels: [1]\n", 4,
			"reverse.compression.levels: expected a mapping of algorithms to levels, got a list"},
		{"duplicate level", "schema_version: 1\nreverse:\n  compression:\n    levels:\n      gzip: 1\n      gzip: 2\n", 6,
			`reverse.compression.levels: duplicate key "gzip" (first at line 5)`},
		{"min size", "schema_version: 1\nreverse:\n  compression:\n    min_size: -1\n", 4,
			"reverse.compression.min_size: -1 must not be negative"},
		{"media type without subtype", "schema_version: 1\nreverse:\n  compression:\n    types: [json]\n", 4,
			`reverse.compression.types[0]: "json" is not a media type`},
		{"media type wildcard type", "schema_version: 1\nreverse:\n  compression:\n    types: ['*/*']\n", 4,
			`reverse.compression.types[0]: "*/*" is not a media type`},
		{"media type parameters", "schema_version: 1\nreverse:\n  compression:\n    types: ['text/html; charset=utf-8']\n", 4,
			`"text/html; charset=utf-8" is not a media type`},
		{"duplicate media type", "schema_version: 1\nreverse:\n  compression:\n    types: [text/html, Text/HTML]\n", 4,
			`reverse.compression.types[1]: duplicate media type "text/html" (also types[0])`},
		{"security header control", "schema_version: 1\nreverse:\n  security_headers:\n    hsts: \"max-age=1\\x01\"\n", 4,
			`reverse.security_headers.hsts: "max-age=1\x01" is not a header value`},
		{"security header null", "schema_version: 1\nreverse:\n  security_headers:\n    frame_options:\n", 4,
			`reverse.security_headers.frame_options: expected a string, got null (write "" for an empty string)`},

		// Route names.
		{"route without name", "schema_version: 1\nreverse:\n  listen: ':80'\n  routes:\n    - backends: [http://h]\n", 5,
			"reverse.routes[0].name: a route needs a name"},
		{"bad route name", routeSrc("    - {name: 'a b', hosts: [x.example], backends: [http://h]}\n"), 7,
			`reverse.routes[1].name: "a b" is not a route name`},
		{"duplicate route name", routeSrc("    - {name: a, hosts: [x.example], backends: [http://h]}\n"), 7,
			`reverse.routes[1].name: route "a" is defined twice`},
		{"route null", routeSrc("    -\n"), 7, "reverse.routes[1]: expected a route"},
		{"unknown route key", routeSrc("      host: [x.example]\n"), 7, `reverse.routes[0]: unknown key "host" (did you mean "hosts"?)`},

		// Hosts.
		{"bad host", routeSrc("      hosts: [ok.example, 'bad host']\n"), 7,
			`reverse.routes[0].hosts[1]: "bad host" is not a host name, "*." wildcard name or IP address`},
		{"inner wildcard", routeSrc("      hosts: ['a.*.example']\n"), 7, `"a.*.example" is not a host name`},
		{"bare wildcard", routeSrc("      hosts: ['*']\n"), 7, `"*" is not a host name`},
		{"host with port", routeSrc("      hosts: ['a.example:8080']\n"), 7, `"a.example:8080" is not a host name`},
		{"host with zone", routeSrc("      hosts: ['fe80::1%eth0']\n"), 7, `"fe80::1%eth0" is not a host name`},
		{"duplicate host", routeSrc("      hosts:\n        - A.example\n        - '*.a.example'\n        - a.EXAMPLE\n"), 10,
			`reverse.routes[0].hosts[2]: duplicate host "a.example" (also hosts[0])`},

		// Path prefix, headers, cookies.
		{"relative prefix", routeSrc("      path_prefix: app\n"), 7, `reverse.routes[0].path_prefix: "app" must start with "/"`},
		{"prefix with space", routeSrc("      path_prefix: '/a b'\n"), 7, `"/a b" must not contain '?', '#', spaces or control characters`},
		{"prefix with query", routeSrc("      path_prefix: '/a?b'\n"), 7, `"/a?b" must not contain '?'`},
		{"prefix with fragment", routeSrc("      path_prefix: '/a#b'\n"), 7, `"/a#b" must not contain '?', '#'`},
		{"bad header name", routeSrc("      headers: {'X Canary': '1'}\n"), 7,
			`reverse.routes[0].headers.X Canary: "X Canary" is not a header name`},
		{"empty header value", routeSrc("      headers: {X-Canary: ''}\n"), 7,
			`reverse.routes[0].headers.X-Canary: "" is not a header value to match`},
		{"header value with spaces", routeSrc("      headers: {X-Canary: ' 1'}\n"), 7, `" 1" is not a header value to match`},
		{"header value not a string", routeSrc("      headers: {X-Canary: 1}\n"), 7,
			"reverse.routes[0].headers.X-Canary: expected a string, got the integer 1 (put it in quotes)"},
		{"header names differing in case", routeSrc("      headers:\n        X-Canary: '1'\n        x-canary: '2'\n"), 9,
			`reverse.routes[0].headers.x-canary: header "x-canary" is also given as "X-Canary"`},
		{"headers as list", routeSrc("      headers: [X-Canary]\n"), 7,
			"reverse.routes[0].headers: expected a mapping of header names to values, got a list"},
		{"header key not a string", routeSrc("      headers: {1: x}\n"), 7,
			"reverse.routes[0].headers: keys must be strings, got the integer 1"},
		{"bad cookie name", routeSrc("      cookies: {'a=b': x}\n"), 7, `reverse.routes[0].cookies.a=b: "a=b" is not a cookie name`},
		{"bad cookie value", routeSrc("      cookies: {beta: 'a;b'}\n"), 7, `reverse.routes[0].cookies.beta: "a;b" is not a cookie value to match`},

		// Backends.
		{"no backends key", "schema_version: 1\nreverse:\n  listen: ':80'\n  routes:\n    - name: a\n", 5,
			"reverse.routes[0].backends: a route needs at least one backend"},
		{"empty backends", "schema_version: 1\nreverse:\n  listen: ':80'\n  routes:\n    - name: a\n      backends: []\n", 6,
			"reverse.routes[0].backends: a route needs at least one backend"},
		{"backend without scheme", backend("['10.0.0.1:8080']"), 6,
			`reverse.routes[0].backends[0].url: "10.0.0.1:8080" is not an http:// or https:// URL (write "http://10.0.0.1:8080")`},
		{"backend name without scheme", backend("['app.internal:8080']"), 6,
			`"app.internal:8080" is not an http:// or https:// URL (write "http://app.internal:8080")`},
		{"backend scheme", backend("[ftp://h]"), 6, `reverse.routes[0].backends[0].url: "ftp://h" is not an http:// or https:// URL`},
		{"backend credentials", backend("['http://u:secret@h']"), 6,
			`"http://u:xxxxx@h": credentials in a backend URL are not supported`},
		{"backend path", backend("[http://h/app]"), 6, `"http://h/app": a backend URL cannot have a path`},
		{"backend query", backend("['http://h/?x=1']"), 6, `"http://h/?x=1": a backend URL cannot have a query or fragment`},
		{"backend fragment", backend("['http://h#x']"), 6, `"http://h#x": a backend URL cannot have a query or fragment`},
		{"backend port zero", backend("['http://h:0']"), 6, `"http://h:0": port must be a number from 1 to 65535`},
		{"backend empty port", backend("['http://h:']"), 6, `"http://h:": port must be a number from 1 to 65535`},
		{"backend no host", backend("['http://']"), 6, `"http://" has no host`},
		{"backend bad host", backend("['http://a_b:80']"), 6, `"http://a_b:80": "a_b" is not an IP address or host name`},
		{"backend empty mapping url", backend("[{weight: 2}]"), 6, `reverse.routes[0].backends[0].url: "" is not an http:// or https:// URL`},
		{"backend null", backend("[null]"), 6, "reverse.routes[0].backends[0]: expected a backend URL or {url, weight, max_conns}, got null"},
		{"backend unknown key", base + "      backends:\n        - url: http://h\n          weigth: 2\n", 8,
			`reverse.routes[0].backends[0]: unknown key "weigth" (did you mean "weight"?)`},
		{"duplicate backend", backend("['http://H.internal', 'http://h.internal:80/']"), 6,
			`reverse.routes[0].backends[1].url: duplicate backend "http://h.internal:80/" (also backends[0])`},
		{"weight too high", base + "      backends:\n        - {url: http://h, weight: 1001}\n", 7,
			"reverse.routes[0].backends[0].weight: 1001 is not a weight (want 1 to 1000; 0 means 1)"},
		{"negative weight", base + "      backends:\n        - url: http://h\n          weight: -1\n", 8,
			"reverse.routes[0].backends[0].weight: -1 is not a weight"},
		{"negative max_conns", base + "      backends:\n        - {url: http://h, max_conns: -1}\n", 7,
			"reverse.routes[0].backends[0].max_conns: -1 must not be negative"},

		// Balancing.
		{"bad balance", routeSrc("      balance: random\n"), 7,
			`reverse.routes[0].balance: "random" is not a balance method (round_robin, weighted, least_conn, hash)`},
		{"hash_on without hash", routeSrc("      balance: least_conn\n      hash_on: client\n"), 8,
			"reverse.routes[0].hash_on: only applies with balance: hash"},
		{"hash_on default balance", routeSrc("      hash_on: client\n"), 7, "reverse.routes[0].hash_on: only applies with balance: hash"},
		{"bad hash_on", routeSrc("      balance: hash\n      hash_on: ip\n"), 8,
			`reverse.routes[0].hash_on: "ip" is not client, header:NAME or cookie:NAME`},
		{"hash_on empty header", routeSrc("      balance: hash\n      hash_on: 'header:'\n"), 8, `"header:" is not client`},

		// Health checks.
		{"health without path", routeSrc("      health:\n        interval: 5s\n"), 8,
			"reverse.routes[0].health: health checks need a path"},
		{"health relative path", routeSrc("      health: {path: healthz}\n"), 7,
			`reverse.routes[0].health.path: "healthz" is not a path`},
		{"health interval too short", routeSrc("      health:\n        path: /h\n        interval: 500ms\n"), 9,
			"reverse.routes[0].health.interval: 500ms is too often (at least 1s)"},
		{"health negative interval", routeSrc("      health:\n        path: /h\n        interval: -1s\n"), 9,
			"reverse.routes[0].health.interval: -1s must not be negative"},
		{"health timeout not shorter", routeSrc("      health:\n        path: /h\n        interval: 5s\n        timeout: 5s\n"), 10,
			"reverse.routes[0].health.timeout: 5s is not shorter than the interval 5s"},
		{"health timeout above default interval", routeSrc("      health:\n        path: /h\n        timeout: 11s\n"), 9,
			"reverse.routes[0].health.timeout: 11s is not shorter than the interval 10s"},
		{"health rise", routeSrc("      health: {path: /h, rise: 101}\n"), 7, "reverse.routes[0].health.rise: 101 is not from 1 to 100"},
		{"health fall", routeSrc("      health: {path: /h, fall: -1}\n"), 7, "reverse.routes[0].health.fall: -1 is not from 1 to 100"},
		{"status out of range", routeSrc("      health: {path: /h, expect_status: 600}\n"), 7,
			"reverse.routes[0].health.expect_status: 600-600 is not a range of status codes from 100 to 599"},
		{"status range reversed", routeSrc("      health: {path: /h, expect_status: '300-200'}\n"), 7,
			"reverse.routes[0].health.expect_status: 300-200 is not a range of status codes"},
		{"status not a number", routeSrc("      health: {path: /h, expect_status: ok}\n"), 7,
			`reverse.routes[0].health.expect_status: "ok" is not a status code such as 200 or a range such as "200-399"`},
		{"status list", routeSrc("      health: {path: /h, expect_status: [200]}\n"), 7,
			`reverse.routes[0].health.expect_status: expected a status code such as 200 or a range such as "200-399", got a list`},
		{"health host", routeSrc("      health: {path: /h, host: 'a b'}\n"), 7,
			`reverse.routes[0].health.host: "a b" is not a host name, IP address or host:port`},
		{"passive failures", routeSrc("      passive: {failures: -2}\n"), 7,
			"reverse.routes[0].passive.failures: -2 is not a count (-1 disables passive checks, 0 means 3)"},
		{"passive cooldown", routeSrc("      passive:\n        cooldown: -1s\n"), 8,
			"reverse.routes[0].passive.cooldown: -1s must not be negative"},
		{"retries too many", routeSrc("      retries: 11\n"), 7, "reverse.routes[0].retries: 11 is not from 0 to 10"},
		{"retries negative", routeSrc("      retries: -1\n"), 7, "reverse.routes[0].retries: -1 is not from 0 to 10"},

		// Backend TLS.
		{"backend_tls without https", routeSrc("      backend_tls:\n        server_name: a.internal\n"), 8,
			`reverse.routes[0].backend_tls: set but route "a" has no https backend`},
		{"cert without key", backend("[https://h]") + "      backend_tls: {cert_file: c.pem}\n", 7,
			"reverse.routes[0].backend_tls.cert_file: needs key_file too"},
		{"key without cert", backend("[https://h]") + "      backend_tls:\n        key_file: c.key\n", 8,
			"reverse.routes[0].backend_tls.key_file: needs cert_file too"},
		{"bad server name", backend("[https://h]") + "      backend_tls: {server_name: 'a b'}\n", 7,
			`reverse.routes[0].backend_tls.server_name: "a b" is not a host name or IP address`},

		// Clients, limits, the rest.
		{"bad allow_clients", routeSrc("      allow_clients: [10.0.0.0/33]\n"), 7,
			`reverse.routes[0].allow_clients[0]: "10.0.0.0/33" is not a CIDR or IP address`},
		{"bad deny_clients", routeSrc("      deny_clients: 10.0.0.0/8\n"), 7,
			"reverse.routes[0].deny_clients: expected a list, got the string \"10.0.0.0/8\" (write [10.0.0.0/8] for a list of one)"},
		{"negative rate", routeSrc("      rate_limit: {requests_per_second: -1}\n"), 7,
			"reverse.routes[0].rate_limit.requests_per_second: -1 is not a rate"},
		{"rate not a number", routeSrc("      rate_limit: {requests_per_second: fast}\n"), 7,
			`reverse.routes[0].rate_limit.requests_per_second: expected a number, got the string "fast"`},
		{"rate infinite", routeSrc("      rate_limit: {requests_per_second: .inf}\n"), 7,
			"reverse.routes[0].rate_limit.requests_per_second: expected a finite number, got the number .inf"},
		{"negative burst", routeSrc("      rate_limit: {requests_per_second: 1, burst: -1}\n"), 7,
			"reverse.routes[0].rate_limit.burst: -1 must not be negative"},
		{"burst without rate", routeSrc("      rate_limit:\n        burst: 5\n"), 8,
			"reverse.routes[0].rate_limit.burst: set, but requests_per_second is 0 (no rate limit)"},
		{"route body size", routeSrc("      max_body_bytes: -2\n"), 7,
			"reverse.routes[0].max_body_bytes: -2 is not a size (0 means reverse.limits.max_body_bytes, -1 unlimited)"},
		{"compress not a bool", routeSrc("      compress: 'no'\n"), 7,
			`reverse.routes[0].compress: expected true or false, got the string "no"`},
		{"route security header", routeSrc("      security_headers: {referrer_policy: \"a\\nb\"}\n"), 7,
			`reverse.routes[0].security_headers.referrer_policy: "a\nb" is not a header value`},
		{"route security header unknown", routeSrc("      security_headers: {csp: x}\n"), 7,
			`reverse.routes[0].security_headers: unknown key "csp"`},
		{"route timeout", routeSrc("      response_header_timeout: -5s\n"), 7,
			"reverse.routes[0].response_header_timeout: -5s must not be negative"},

		// Shadowing.
		{"same hosts in another order", base + "      hosts: [a.example, b.example]\n      backends: [http://h]\n" +
			"    - name: b\n      hosts: [B.example, a.example]\n      path_prefix: /\n      backends: [http://h]\n", 8,
			`reverse.routes[1]: route "a" shadows route "b": same hosts, path_prefix, headers, cookies and priority`},
		{"both hostless", routeSrc("    - {name: b, backends: [http://g]}\n"), 7, `reverse.routes[1]: route "a" shadows route "b"`},
		{"same headers in another case", base + "      headers: {x-a: '1'}\n      backends: [http://h]\n" +
			"    - {name: b, headers: {X-A: '1'}, backends: [http://h]}\n", 8, `route "a" shadows route "b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("r.yaml", []byte(tt.src))
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if len(ce.Problems) != 1 {
				t.Fatalf("want one problem, got:\n%v", err)
			}
			p := ce.Problems[0]
			if p.Line != tt.line || p.Column < 1 || !strings.Contains(p.String(), tt.want) {
				t.Errorf("problem %q\nwant line %d and %q", p.String(), tt.line, tt.want)
			}
		})
	}
}

func TestReverseValidRoutes(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"different priority", "    - {name: a, backends: [http://h]}\n    - {name: b, priority: 1, backends: [http://h]}\n"},
		{"different prefix", "    - {name: a, backends: [http://h]}\n    - {name: b, path_prefix: /b, backends: [http://h]}\n"},
		{"different header value", "    - {name: a, headers: {X-A: '1'}, backends: [http://h]}\n    - {name: b, headers: {X-A: '2'}, backends: [http://h]}\n"},
		{"cookie condition", "    - {name: a, backends: [http://h]}\n    - {name: b, cookies: {beta: '*'}, backends: [http://h]}\n"},
		{"overlapping hosts", "    - {name: a, hosts: [a.example], backends: [http://h]}\n    - {name: b, hosts: [a.example, b.example], backends: [http://h]}\n"},
		{"weighted equal weights", "    - {name: a, balance: weighted, backends: [http://h, http://g]}\n"},
		{"hash on cookie", "    - {name: a, balance: hash, hash_on: 'cookie:session', backends: [http://h]}\n"},
		{"same backend over both schemes", "    - {name: a, backends: [http://h, https://h]}\n"},
		{"backend_tls with https", "    - {name: a, backends: [http://h, https://g], backend_tls: {ca_file: ca.pem}}\n"},
		{"empty backend_tls", "    - {name: a, backends: [http://h], backend_tls: {}}\n"},
		{"health off", "    - {name: a, backends: [http://h], health: {path: ''}}\n"},
		{"numeric zero durations", "    - {name: a, backends: [http://h], response_header_timeout: 0}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := "schema_version: 1\nreverse:\n  listen: ':8080'\n  tls: {listen: '[::1]:8443'}\n  routes:\n" + tt.body
			c, err := config.Parse("v.yaml", []byte(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestReverseValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(r *config.Reverse)
		want   []string
	}{
		{"zero route built in code", func(r *config.Reverse) {
			r.Listen = ":8080"
			r.Routes = []config.Route{{Name: "a", Backends: []config.Backend{{URL: "http://h"}}}}
		}, nil},
		{"zeros mean the default", func(r *config.Reverse) {
			r.Timeouts, r.Limits = config.ReverseTimeouts{}, config.ReverseLimits{}
			r.Compression.Levels = nil
			r.SecurityHeaders = config.SecurityHeaders{}
		}, nil},
		{"routes without listener", func(r *config.Reverse) {
			r.Routes = []config.Route{{Name: "a", Backends: []config.Backend{{URL: "http://h"}}}}
		}, []string{"reverse.routes: needs reverse.listen or reverse.tls.listen (no listener would serve the routes)"}},
		{"health defaults", func(r *config.Reverse) {
			r.Listen = ":8080"
			r.Routes = []config.Route{{Name: "a", Backends: []config.Backend{{URL: "http://h"}},
				Health: config.HealthCheck{Path: "/", ExpectStatus: [2]int{0, 200}}}}
		}, []string{"reverse.routes[0].health.expect_status: 0-200 is not a range of status codes from 100 to 599, low to high"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(&c.Reverse)
			wantProblems(t, c.Validate(), tt.want...)
		})
	}
}

func TestSecurityHeadersOver(t *testing.T) {
	s := func(v string) *string { return &v }
	base := config.Default().Reverse.SecurityHeaders
	got := config.SecurityHeaders{FrameOptions: s("DENY"), HSTS: s("")}.Over(base)
	if *got.FrameOptions != "DENY" || *got.HSTS != "" || *got.ContentTypeOptions != "nosniff" ||
		got.ReferrerPolicy != base.ReferrerPolicy || got.ContentSecurityPolicy != base.ContentSecurityPolicy {
		t.Errorf("Over = %+v", got)
	}
}

// TestDefaultYAMLRouteExample checks that the commented route example in
// DefaultYAML is a valid route.
func TestDefaultYAMLRouteExample(t *testing.T) {
	var example []string
	in := false
	for line := range strings.Lines(string(config.DefaultYAML)) {
		switch {
		case strings.HasPrefix(line, "  #   routes:"):
			in = true
		case in && strings.HasPrefix(line, "  #  "):
			example = append(example, "  "+strings.TrimPrefix(line, "  #   "))
		case in:
			in = false
		}
	}
	if len(example) < 20 {
		t.Fatalf("found no route example in default.yaml (%d lines)", len(example))
	}
	src := "schema_version: 1\nreverse:\n  listen: ':8080'\n  routes:\n" + strings.Join(example, "")
	c, err := config.Parse("example.yaml", []byte(src))
	if err != nil {
		t.Fatalf("the route example does not parse:\n%v\n%s", err, src)
	}
	if r := c.Reverse.Routes[0]; r.Name != "wiki" || len(r.Backends) != 2 || r.Health.Path != "/healthz" {
		t.Errorf("route example = %+v", r)
	}
}
