package config

import (
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"
)

// Reverse configures the reverse proxy that fronts internal apps. It is off
// unless Listen or TLS.Listen is set. File paths in it (certificates,
// backend_tls) are not checked here: a relative path is relative to the
// config file's directory and is resolved, and read, by the caller.
type Reverse struct {
	// Listen is the host:port of the plain HTTP listener. Empty (the
	// default) means no plain listener.
	Listen string `yaml:"listen"`
	// TLS configures the HTTPS listener.
	TLS ReverseTLS `yaml:"tls"`
	// TrustedProxies lists the networks whose X-Forwarded-For,
	// X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers are
	// believed. Default none.
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
	// AllowBackends lists the networks that backends may be in besides
	// public addresses: the destination guard's exemptions for backend
	// connections. Default: loopback, the private ranges, 100.64.0.0/10 and
	// fc00::/7. An empty list (written as []) allows public backends only.
	AllowBackends []netip.Prefix `yaml:"allow_backends"`
	// Timeouts of client and backend connections; zero fields mean the
	// default.
	Timeouts ReverseTimeouts `yaml:"timeouts"`
	// Limits on client requests; zero fields mean the default.
	Limits ReverseLimits `yaml:"limits"`
	// Compression of responses. On by default.
	Compression Compression `yaml:"compression"`
	// SecurityHeaders are set on responses unless the backend set them.
	// Parse fills every nil field with its default; a nil field of a
	// Config built in code means the default too.
	SecurityHeaders SecurityHeaders `yaml:"security_headers"`
	// Routes map requests to backends. They need Listen or TLS.Listen.
	Routes []Route `yaml:"routes"`
}

// ReverseTLS configures the HTTPS listener (TLS 1.2 and later, HTTP/2).
type ReverseTLS struct {
	// Listen is the host:port of the HTTPS listener. Empty (the default)
	// means no HTTPS listener.
	Listen string `yaml:"listen"`
	// Certificates are chosen by SNI. Empty (the default) means a
	// self-signed certificate generated into data_dir.
	Certificates []CertPair `yaml:"certificates"`
	// RedirectHTTP makes the plain listener answer every request with a 308
	// redirect to https. Needs Listen and TLS.Listen. Default false.
	RedirectHTTP bool `yaml:"redirect_http"`
}

// CertPair is a certificate chain and its private key, both PEM files. A
// relative path is relative to the config file's directory.
type CertPair struct {
	// Cert is the certificate chain, leaf first. Required.
	Cert string `yaml:"cert"`
	// Key is the certificate's private key. Required.
	Key string `yaml:"key"`
}

// ReverseTimeouts of the reverse proxy. Zero means the default.
type ReverseTimeouts struct {
	// ReadHeader bounds reading a request's header (slowloris). Default 10s.
	ReadHeader time.Duration `yaml:"read_header"`
	// Idle closes a keep-alive client connection idle this long. Default 120s.
	Idle time.Duration `yaml:"idle"`
	// Dial bounds connecting to a backend. Default 5s.
	Dial time.Duration `yaml:"dial"`
	// ResponseHeader bounds the wait for a backend's response header; a
	// route may override it. Default 60s.
	ResponseHeader time.Duration `yaml:"response_header"`
}

// ReverseLimits bound the reverse proxy's resources. Zero means the
// default, never "unlimited".
type ReverseLimits struct {
	// MaxHeaderBytes is the largest request header accepted; larger gets
	// 431. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes is the largest request body accepted; larger gets 413.
	// -1 means unlimited. Default 100 MiB. A route may override it.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxConnections is the cap on concurrent client connections. Default
	// 10000.
	MaxConnections int `yaml:"max_connections"`
}

// Compression configures response compression.
type Compression struct {
	// Algorithms are zstd, br and gzip, each at most once, in the server's
	// order of preference. Default [zstd, br, gzip]; empty (written as [])
	// turns compression off.
	Algorithms []string `yaml:"algorithms"`
	// Levels maps an algorithm to its level: gzip 1-9, br 0-11, zstd 1-4.
	// An algorithm missing from the map has its default level (gzip 1,
	// br 4, zstd 1); a file's levels replace the defaults one by one, and
	// after Parse all three are present.
	Levels map[string]int `yaml:"levels"`
	// MinSize is the smallest response, in bytes, that is compressed.
	// Default 1024; 0 compresses responses of any size.
	MinSize int `yaml:"min_size"`
	// Types are the media types compressed, as "type/subtype" or "type/*";
	// Parse lower-cases them. Empty (the default) means the built-in list.
	Types []string `yaml:"types"`
}

// SecurityHeaders are response headers the gateway sets unless the backend
// set them. A nil field was not given in the file; an empty string turns
// the header off. In Reverse every field has its default after Parse; in a
// Route a nil field means Reverse's value (see Over).
type SecurityHeaders struct {
	// HSTS is Strict-Transport-Security, only sent over TLS. Default
	// "max-age=31536000".
	HSTS *string `yaml:"hsts"`
	// ContentTypeOptions is X-Content-Type-Options. Default "nosniff".
	ContentTypeOptions *string `yaml:"content_type_options"`
	// FrameOptions is X-Frame-Options. Default "SAMEORIGIN".
	FrameOptions *string `yaml:"frame_options"`
	// ReferrerPolicy is Referrer-Policy. Default
	// "strict-origin-when-cross-origin".
	ReferrerPolicy *string `yaml:"referrer_policy"`
	// ContentSecurityPolicy is Content-Security-Policy. Default "" (not
	// sent).
	ContentSecurityPolicy *string `yaml:"content_security_policy"`
}

// Over returns base with every header h gives (non-nil) replaced by h's
// value: route.SecurityHeaders.Over(reverse.SecurityHeaders) is what the
// route sends.
func (h SecurityHeaders) Over(base SecurityHeaders) SecurityHeaders {
	pick := func(over, b *string) *string {
		if over != nil {
			return over
		}
		return b
	}
	return SecurityHeaders{
		HSTS:                  pick(h.HSTS, base.HSTS),
		ContentTypeOptions:    pick(h.ContentTypeOptions, base.ContentTypeOptions),
		FrameOptions:          pick(h.FrameOptions, base.FrameOptions),
		ReferrerPolicy:        pick(h.ReferrerPolicy, base.ReferrerPolicy),
		ContentSecurityPolicy: pick(h.ContentSecurityPolicy, base.ContentSecurityPolicy),
	}
}

// Route sends the requests it matches to its backends. A request matches
// when its host is one of Hosts (any host if Hosts is empty), its path
// starts with PathPrefix and it has the Headers and Cookies listed; routes
// with a higher Priority are tried first.
//
// Parse fills the zeros that mean a default. Retries and Compress are
// different: Parse sets them to 1 and true when the file leaves them out,
// so in a Route built in code their zero values mean no retries and no
// compression.
type Route struct {
	// Name is required and unique among routes: letters, digits, '_', '.'
	// and '-'.
	Name string `yaml:"name"`
	// Hosts are host names, leftmost-wildcard names ("*.example.com") and
	// IP literals (without brackets). Parse lower-cases them. Empty means
	// any host.
	Hosts []string `yaml:"hosts"`
	// PathPrefix starts with "/". Empty means "/".
	PathPrefix string `yaml:"path_prefix"`
	// StripPrefix removes PathPrefix from the path before forwarding.
	// Default false.
	StripPrefix bool `yaml:"strip_prefix"`
	// Headers maps a header name to the value it must have; "*" means the
	// header only has to be present. Parse canonicalizes the names
	// (x-canary becomes X-Canary). Empty means no condition.
	Headers map[string]string `yaml:"headers"`
	// Cookies maps a cookie name to the value it must have; "*" means the
	// cookie only has to be present. Empty means no condition.
	Cookies map[string]string `yaml:"cookies"`
	// Priority orders routes: higher first. Default 0.
	Priority int `yaml:"priority"`
	// Backends are at least one. In the file each is a URL string or a
	// mapping {url, weight, max_conns}.
	Backends []Backend `yaml:"backends"`
	// Balance is round_robin, weighted, least_conn or hash. Empty means
	// round_robin.
	Balance string `yaml:"balance"`
	// HashOn is what balance hash hashes: client (the client address),
	// header:NAME or cookie:NAME. Only with balance hash; empty means
	// client.
	HashOn string `yaml:"hash_on"`
	// Health configures active health checks. Off when Health.Path is
	// empty.
	Health HealthCheck `yaml:"health"`
	// Passive ejects a backend after consecutive failures.
	Passive Passive `yaml:"passive"`
	// Retries is how many further attempts a request gets on another
	// backend: after connection failures, and after 502, 503 and 504 for
	// idempotent methods. 0 to 10; Parse sets 1 when the key is absent.
	Retries int `yaml:"retries"`
	// BackendTLS configures connections to https backends.
	BackendTLS BackendTLS `yaml:"backend_tls"`
	// AllowClients lists the client networks the route serves. Empty means
	// every client (unlike proxy.allow_clients).
	AllowClients []netip.Prefix `yaml:"allow_clients"`
	// DenyClients lists client networks refused; deny wins over allow.
	// Empty means none.
	DenyClients []netip.Prefix `yaml:"deny_clients"`
	// RateLimit limits requests per client address.
	RateLimit RateLimit `yaml:"rate_limit"`
	// MaxBodyBytes is the largest request body accepted; -1 means
	// unlimited. Zero means reverse.limits.max_body_bytes (Parse fills it
	// in).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Compress enables response compression for the route, as configured
	// in reverse.compression. Parse sets true when the key is absent.
	Compress bool `yaml:"compress"`
	// SecurityHeaders given here override reverse.security_headers for
	// this route, key by key; nil fields keep the global value.
	SecurityHeaders SecurityHeaders `yaml:"security_headers"`
	// ResponseHeaderTimeout bounds the wait for a backend's response
	// header. Zero means reverse.timeouts.response_header (Parse fills it
	// in).
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
}

// Backend is one backend of a route.
type Backend struct {
	// URL is http:// or https://, a host and an optional port; no user
	// info, path, query or fragment.
	URL string `yaml:"url"`
	// Weight is used by balance weighted, 1 to 1000. Zero means 1.
	Weight int `yaml:"weight"`
	// MaxConns caps concurrent connections to the backend. Zero means no
	// cap.
	MaxConns int `yaml:"max_conns"`
}

// HealthCheck configures a route's active health checks: each backend is
// asked for Path every Interval. With an empty Path checks are off and the
// other fields must be zero. Zero fields mean the default; Parse fills them
// in when checks are on.
type HealthCheck struct {
	// Path is requested, starting with "/"; it may have a query.
	Path string `yaml:"path"`
	// Interval between checks, at least 1s. Default 10s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one check, shorter than Interval. Default 2s, or half the
	// interval if that is shorter.
	Timeout time.Duration `yaml:"timeout"`
	// Rise is how many consecutive successes bring a backend back, 1 to
	// 100. Default 2.
	Rise int `yaml:"rise"`
	// Fall is how many consecutive failures take a backend out, 1 to 100.
	// Default 3.
	Fall int `yaml:"fall"`
	// ExpectStatus is the inclusive range of healthy status codes, written
	// "200-399" or "204" in the file. Zero means 200-399.
	ExpectStatus [2]int `yaml:"expect_status"`
	// Host is the Host header of checks, a host name or host:port. Empty
	// means the backend URL's host.
	Host string `yaml:"host"`
}

// Passive configures passive health checking: a backend whose requests
// fail Failures times in a row is ejected for Cooldown.
type Passive struct {
	// Failures is the count that ejects; -1 disables passive checks. Zero
	// means 3.
	Failures int `yaml:"failures"`
	// Cooldown is how long an ejected backend stays out. Zero means 30s.
	Cooldown time.Duration `yaml:"cooldown"`
}

// BackendTLS configures TLS to a route's https backends. Paths relative to
// the config file's directory are resolved, and the files read, by the
// caller.
type BackendTLS struct {
	// CAFile is a PEM CA bundle trusted for the backends. Empty means the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the SNI and verification name. Empty means the backend
	// URL's host.
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are a client certificate for mutual TLS, both or
	// neither. Empty means none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// RateLimit limits the requests of one client address to a route.
type RateLimit struct {
	// RequestsPerSecond is the sustained rate. Zero means no limit.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// Burst is how many requests may come at once. Zero means
	// ceil(RequestsPerSecond).
	Burst int `yaml:"burst"`
}

// Decoders for the reverse section. Values are checked in reverseProblems;
// these only decode.

func (d *decoder) reverse(r *Reverse) func(string, *yaml.Node) {
	return d.section([]field{
		{"listen", d.str(&r.Listen)},
		{"tls", d.section([]field{
			{"listen", d.str(&r.TLS.Listen)},
			{"certificates", d.certPairs(&r.TLS.Certificates)},
			{"redirect_http", d.boolean(&r.TLS.RedirectHTTP)},
		})},
		{"trusted_proxies", d.prefixes(&r.TrustedProxies)},
		{"allow_backends", d.prefixes(&r.AllowBackends)},
		{"timeouts", d.section([]field{
			{"read_header", d.duration(&r.Timeouts.ReadHeader)},
			{"idle", d.duration(&r.Timeouts.Idle)},
			{"dial", d.duration(&r.Timeouts.Dial)},
			{"response_header", d.duration(&r.Timeouts.ResponseHeader)},
		})},
		{"limits", d.section([]field{
			{"max_header_bytes", d.intField(&r.Limits.MaxHeaderBytes)},
			{"max_body_bytes", d.int64Field(&r.Limits.MaxBodyBytes)},
			{"max_connections", d.intField(&r.Limits.MaxConnections)},
		})},
		{"compression", d.section([]field{
			{"algorithms", d.strings(&r.Compression.Algorithms)},
			{"levels", d.levels(&r.Compression.Levels)},
			{"min_size", d.intField(&r.Compression.MinSize)},
			{"types", d.strings(&r.Compression.Types)},
		})},
		{"security_headers", d.securityHeaders(&r.SecurityHeaders)},
		{"routes", d.routes(&r.Routes)},
	})
}

func (d *decoder) certPairs(dst *[]CertPair) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (CertPair, bool) {
			var c CertPair
			ok := d.element(p, e, "a certificate {cert, key}", []field{
				{"cert", d.str(&c.Cert)},
				{"key", d.str(&c.Key)},
			})
			return c, ok
		})
	}
}

func (d *decoder) securityHeaders(h *SecurityHeaders) func(string, *yaml.Node) {
	return d.section([]field{
		{"hsts", d.strPtr(&h.HSTS)},
		{"content_type_options", d.strPtr(&h.ContentTypeOptions)},
		{"frame_options", d.strPtr(&h.FrameOptions)},
		{"referrer_policy", d.strPtr(&h.ReferrerPolicy)},
		{"content_security_policy", d.strPtr(&h.ContentSecurityPolicy)},
	})
}

func (d *decoder) routes(dst *[]Route) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (Route, bool) {
			// Retries and Compress keep these when the key is absent; the
			// other zeros are filled in by applyDefaults.
			r := Route{Retries: defaultRetries, Compress: true}
			h := &r.Health
			ok := d.element(p, e, "a route (name, hosts, path_prefix, backends, ...)", []field{
				{"name", d.str(&r.Name)},
				{"hosts", d.strings(&r.Hosts)},
				{"path_prefix", d.str(&r.PathPrefix)},
				{"strip_prefix", d.boolean(&r.StripPrefix)},
				{"headers", d.stringMap(&r.Headers, "header names to values")},
				{"cookies", d.stringMap(&r.Cookies, "cookie names to values")},
				{"priority", d.intField(&r.Priority)},
				{"backends", d.backends(&r.Backends)},
				{"balance", d.str(&r.Balance)},
				{"hash_on", d.str(&r.HashOn)},
				{"health", d.section([]field{
					{"path", d.str(&h.Path)},
					{"interval", d.duration(&h.Interval)},
					{"timeout", d.duration(&h.Timeout)},
					{"rise", d.intField(&h.Rise)},
					{"fall", d.intField(&h.Fall)},
					{"expect_status", d.statusRange(&h.ExpectStatus)},
					{"host", d.str(&h.Host)},
				})},
				{"passive", d.section([]field{
					{"failures", d.intField(&r.Passive.Failures)},
					{"cooldown", d.duration(&r.Passive.Cooldown)},
				})},
				{"retries", d.intField(&r.Retries)},
				{"backend_tls", d.section([]field{
					{"ca_file", d.str(&r.BackendTLS.CAFile)},
					{"server_name", d.str(&r.BackendTLS.ServerName)},
					{"cert_file", d.str(&r.BackendTLS.CertFile)},
					{"key_file", d.str(&r.BackendTLS.KeyFile)},
				})},
				{"allow_clients", d.prefixes(&r.AllowClients)},
				{"deny_clients", d.prefixes(&r.DenyClients)},
				{"rate_limit", d.section([]field{
					{"requests_per_second", d.number(&r.RateLimit.RequestsPerSecond)},
					{"burst", d.intField(&r.RateLimit.Burst)},
				})},
				{"max_body_bytes", d.int64Field(&r.MaxBodyBytes)},
				{"compress", d.boolean(&r.Compress)},
				{"security_headers", d.securityHeaders(&r.SecurityHeaders)},
				{"response_header_timeout", d.duration(&r.ResponseHeaderTimeout)},
			})
			return r, ok
		})
	}
}

// backends decodes backends written as URLs or as {url, weight, max_conns}
// mappings.
func (d *decoder) backends(dst *[]Backend) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (Backend, bool) {
			var b Backend
			if r := resolve(e); r.Kind == yaml.ScalarNode && !isNull(r) {
				s, ok := d.stringValue(p, e, false)
				b.URL = s
				return b, ok
			}
			ok := d.element(p, e, "a backend URL or {url, weight, max_conns}", []field{
				{"url", d.str(&b.URL)},
				{"weight", d.intField(&b.Weight)},
				{"max_conns", d.intField(&b.MaxConns)},
			})
			return b, ok
		})
	}
}

// strPtr decodes a string into a new *string, so that a key given as ""
// differs from a key left out.
func (d *decoder) strPtr(dst **string) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		if s, ok := d.stringValue(path, n, false); ok {
			*dst = &s
		}
	}
}

// number decodes a YAML integer or a finite floating-point number.
func (d *decoder) number(dst *float64) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		s, ok := d.scalar(path, n, "a number", "")
		if !ok {
			return
		}
		var v float64
		if tag := s.ShortTag(); tag != "!!int" && tag != "!!float" || s.Decode(&v) != nil {
			d.errorf(s, path, "expected a number, got %s", describe(s))
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			d.errorf(s, path, "expected a finite number, got %s", describe(s))
			return
		}
		*dst = v
	}
}

// statusRange decodes a status code (204 or "204") or an inclusive range
// ("200-399"). The codes themselves are checked in reverseProblems.
func (d *decoder) statusRange(dst *[2]int) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		const want = `a status code such as 200 or a range such as "200-399"`
		s, ok := d.scalar(path, n, want, "")
		if !ok {
			return
		}
		if tag := s.ShortTag(); tag != "!!int" && tag != "!!str" {
			d.errorf(s, path, "expected %s, got %s", want, describe(s))
			return
		}
		r, ok := parseStatusRange(s.Value)
		if !ok {
			d.errorf(s, path, "%q is not %s", abbrev(s.Value), want)
			return
		}
		*dst = r
	}
}

// parseStatusRange parses "204" or "200-399": decimal numbers of at most
// three digits.
func parseStatusRange(s string) ([2]int, bool) {
	num := func(s string) (int, bool) {
		s = strings.TrimSpace(s)
		if s == "" || len(s) > 3 || strings.Trim(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, ok := num(lo)
	if !ok {
		return [2]int{}, false
	}
	if !isRange {
		return [2]int{a, a}, true
	}
	b, ok := num(hi)
	return [2]int{a, b}, ok
}

// levels decodes compression levels into *dst, keeping the entries the file
// does not give.
func (d *decoder) levels(dst *map[string]int) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		d.dict(path, n, "algorithms to levels", func(k *yaml.Node, p string, v *yaml.Node) {
			key := k.Value
			var level int
			if d.integer(p, v, &level) {
				if *dst == nil {
					*dst = make(map[string]int)
				}
				(*dst)[key] = level
			}
		})
	}
}

// stringMap decodes a mapping of names to strings; what describes it for
// messages.
func (d *decoder) stringMap(dst *map[string]string, what string) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		m := make(map[string]string)
		if d.dict(path, n, what, func(k *yaml.Node, p string, v *yaml.Node) {
			key := k.Value
			if s, ok := d.stringValue(p, v, false); ok {
				m[key] = s
			}
		}) {
			*dst = m
		}
	}
}

// Values of the reverse section.
var (
	balances          = []string{"round_robin", "weighted", "least_conn", "hash"}
	compressionLevels = map[string][2]int{"gzip": {1, 9}, "br": {0, 11}, "zstd": {1, 4}}
	routeName         = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// reverseProblems checks the reverse section.
func (c *Config) reverseProblems(k *checker) {
	r := &c.Reverse
	k.reverseListeners(c)
	for i, cp := range r.TLS.Certificates {
		p := fmt.Sprintf("reverse.tls.certificates[%d]", i)
		if cp.Cert == "" {
			k.add(p+".cert", "a certificate needs a cert file (and a key file)")
		}
		if cp.Key == "" {
			k.add(p+".key", "a certificate needs a key file (and a cert file)")
		}
	}
	if len(r.TLS.Certificates) > 0 && r.TLS.Listen == "" {
		k.add("reverse.tls.certificates", "set, but reverse.tls.listen is empty (HTTPS is off)")
	}
	k.prefixes("reverse.trusted_proxies", r.TrustedProxies)
	k.prefixes("reverse.allow_backends", r.AllowBackends)
	k.durations([]namedDuration{
		{"reverse.timeouts.read_header", r.Timeouts.ReadHeader},
		{"reverse.timeouts.idle", r.Timeouts.Idle},
		{"reverse.timeouts.dial", r.Timeouts.Dial},
		{"reverse.timeouts.response_header", r.Timeouts.ResponseHeader},
	})
	if n := r.Limits.MaxHeaderBytes; n < 0 {
		k.add("reverse.limits.max_header_bytes", "%d must not be negative (0 means the default)", n)
	}
	if n := r.Limits.MaxBodyBytes; n < -1 {
		k.add("reverse.limits.max_body_bytes", "%d is not a size (0 means the default, -1 unlimited)", n)
	}
	if n := r.Limits.MaxConnections; n < 0 {
		k.add("reverse.limits.max_connections", "%d must not be negative (0 means the default)", n)
	}
	k.compression(&r.Compression)
	k.securityHeaders("reverse.security_headers", r.SecurityHeaders)

	names := make(map[string]bool, len(r.Routes))
	for i := range r.Routes {
		rt := &r.Routes[i]
		p := fmt.Sprintf("reverse.routes[%d]", i)
		switch {
		case rt.Name == "":
			k.add(p+".name", "a route needs a name")
		case !routeName.MatchString(rt.Name):
			k.add(p+".name", "%q is not a route name (letters, digits, '_', '.' and '-')", rt.Name)
		case names[rt.Name]:
			k.add(p+".name", "route %q is defined twice", rt.Name)
		}
		names[rt.Name] = true
		k.route(p, rt)
		for j := range i {
			if sameMatch(&r.Routes[j], rt) {
				k.add(p, "route %q shadows route %q: same hosts, path_prefix, headers, cookies and priority",
					r.Routes[j].Name, rt.Name)
				break
			}
		}
	}
}

// reverseListeners checks the reverse listen addresses: each valid, and
// none the same as another listener's.
func (k *checker) reverseListeners(c *Config) {
	r := &c.Reverse
	others := []struct{ path, addr string }{
		{"proxy.listen", c.Proxy.Listen},
		{"admin.listen", c.Admin.Listen},
	}
	for _, l := range []struct{ path, addr string }{
		{"reverse.listen", r.Listen},
		{"reverse.tls.listen", r.TLS.Listen},
	} {
		if l.addr == "" {
			continue
		}
		if err := checkListen(l.addr); err != nil {
			k.add(l.path, "%v", err)
			continue
		}
		for _, o := range others {
			if sameListener(l.addr, o.addr) {
				k.add(l.path, "%q conflicts with %s %q", l.addr, o.path, o.addr)
				break
			}
		}
		others = append(others, l)
	}
	if len(r.Routes) > 0 && r.Listen == "" && r.TLS.Listen == "" {
		k.add("reverse.routes", "needs reverse.listen or reverse.tls.listen (no listener would serve the routes)")
	}
	if r.TLS.RedirectHTTP {
		switch {
		case r.TLS.Listen == "":
			k.add("reverse.tls.redirect_http", "needs reverse.tls.listen (the HTTPS listener to redirect to)")
		case r.Listen == "":
			k.add("reverse.tls.redirect_http", "needs reverse.listen (the plain listener that redirects)")
		}
	}
}

// sameListener reports whether the listen addresses a and b claim the same
// port on a common address: the same port (not 0) and the same host, or an
// empty or unspecified host (all interfaces) on either side. Invalid
// addresses never conflict; they are reported by themselves.
func sameListener(a, b string) bool {
	ha, pa, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	hb, pb, err := net.SplitHostPort(b)
	if err != nil || pa == "0" || !validPort(pa) || !validPort(pb) {
		return false
	}
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na != nb {
		return false
	}
	ip := func(h string) (netip.Addr, bool) {
		a, err := netip.ParseAddr(h)
		return a.Unmap(), err == nil
	}
	aa, ipA := ip(ha)
	ab, ipB := ip(hb)
	switch {
	case ha == "" || hb == "" || ipA && aa.IsUnspecified() && aa.Is6() || ipB && ab.IsUnspecified() && ab.Is6():
		// All interfaces, IPv4 and IPv6.
		return true
	case ipA && aa.IsUnspecified():
		// 0.0.0.0: every IPv4 address, and a host name may resolve to one.
		return !ipB || ab.Is4()
	case ipB && ab.IsUnspecified():
		return !ipA || aa.Is4()
	case ipA && ipB:
		return aa == ab
	}
	return strings.EqualFold(ha, hb)
}

func (k *checker) compression(c *Compression) {
	seen := make(map[string]int, len(c.Algorithms))
	for i, a := range c.Algorithms {
		p := fmt.Sprintf("reverse.compression.algorithms[%d]", i)
		if _, ok := compressionLevels[a]; !ok {
			k.add(p, "%q is not a compression algorithm (zstd, br, gzip)", a)
			continue
		}
		if j, dup := seen[a]; dup {
			k.add(p, "duplicate algorithm %q (also algorithms[%d])", a, j)
			continue
		}
		seen[a] = i
	}
	for _, a := range slices.Sorted(maps.Keys(c.Levels)) {
		p := joinPath("reverse.compression.levels", a)
		lv := c.Levels[a]
		r, ok := compressionLevels[a]
		switch {
		case !ok:
			k.add(p, "%q is not a compression algorithm (zstd, br, gzip)", a)
		case lv < r[0] || lv > r[1]:
			k.add(p, "%d is not a %s level (want %d to %d)", lv, a, r[0], r[1])
		}
	}
	if c.MinSize < 0 {
		k.add("reverse.compression.min_size", "%d must not be negative", c.MinSize)
	}
	types := make(map[string]int, len(c.Types))
	for i, t := range c.Types {
		p := fmt.Sprintf("reverse.compression.types[%d]", i)
		if !validMediaRange(t) {
			k.add(p, `%q is not a media type such as "application/json" or "text/*"`, t)
			continue
		}
		lt := toLowerASCII(t)
		if j, dup := types[lt]; dup {
			k.add(p, "duplicate media type %q (also types[%d])", t, j)
			continue
		}
		types[lt] = i
	}
}

// validMediaRange reports whether s is "type/subtype" or "type/*", without
// parameters.
func validMediaRange(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || !httpguts.ValidHeaderFieldName(typ) || strings.Contains(typ, "*") {
		return false
	}
	return sub == "*" || httpguts.ValidHeaderFieldName(sub) && !strings.Contains(sub, "*")
}

func (k *checker) securityHeaders(path string, h SecurityHeaders) {
	for _, v := range []struct {
		key string
		v   *string
	}{
		{"hsts", h.HSTS},
		{"content_type_options", h.ContentTypeOptions},
		{"frame_options", h.FrameOptions},
		{"referrer_policy", h.ReferrerPolicy},
		{"content_security_policy", h.ContentSecurityPolicy},
	} {
		if v.v != nil && !httpguts.ValidHeaderFieldValue(*v.v) {
			k.add(path+"."+v.key, "%q is not a header value (no control characters)", *v.v)
		}
	}
}

// route checks one route, except its name and shadowing.
func (k *checker) route(p string, rt *Route) {
	hosts := make(map[string]int, len(rt.Hosts))
	for j, h := range rt.Hosts {
		hp := fmt.Sprintf("%s.hosts[%d]", p, j)
		if !validRouteHost(h) {
			k.add(hp, `%q is not a host name, "*." wildcard name or IP address`, h)
			continue
		}
		lh := canonicalRouteHost(h)
		if i, dup := hosts[lh]; dup {
			k.add(hp, "duplicate host %q (also hosts[%d])", h, i)
			continue
		}
		hosts[lh] = j
	}
	switch pp := rt.PathPrefix; {
	case pp == "":
	case !strings.HasPrefix(pp, "/"):
		k.add(p+".path_prefix", `%q must start with "/"`, pp)
	case strings.ContainsAny(pp, "?# \t") || hasControl(pp):
		k.add(p+".path_prefix", "%q must not contain '?', '#', spaces or control characters", pp)
	}
	canon := make(map[string]string, len(rt.Headers))
	for _, name := range slices.Sorted(maps.Keys(rt.Headers)) {
		hp := joinPath(p+".headers", name)
		if !httpguts.ValidHeaderFieldName(name) {
			k.add(hp, "%q is not a header name", name)
		} else if cn := textproto.CanonicalMIMEHeaderKey(name); canon[cn] != "" {
			k.add(hp, "header %q is also given as %q (header names ignore case)", name, canon[cn])
		} else {
			canon[cn] = name
		}
		k.matchValue(hp, "header", rt.Headers[name], httpguts.ValidHeaderFieldValue)
	}
	for _, name := range slices.Sorted(maps.Keys(rt.Cookies)) {
		cp := joinPath(p+".cookies", name)
		if !httpguts.ValidHeaderFieldName(name) {
			k.add(cp, "%q is not a cookie name", name)
		}
		k.matchValue(cp, "cookie", rt.Cookies[name], validCookieValue)
	}

	if len(rt.Backends) == 0 {
		k.add(p+".backends", "a route needs at least one backend")
	}
	urls := make(map[string]int, len(rt.Backends))
	https, urlsValid := false, true
	for j, b := range rt.Backends {
		bp := fmt.Sprintf("%s.backends[%d]", p, j)
		u, err := parseBackendURL(b.URL)
		if err != nil {
			k.add(bp+".url", "%v", err)
			urlsValid = false
		} else {
			https = https || u.Scheme == "https"
			key := backendKey(u)
			if i, dup := urls[key]; dup {
				k.add(bp+".url", "duplicate backend %q (also backends[%d])", u.Redacted(), i)
			} else {
				urls[key] = j
			}
		}
		if b.Weight < 0 || b.Weight > 1000 {
			k.add(bp+".weight", "%d is not a weight (want 1 to 1000; 0 means 1)", b.Weight)
		}
		if b.MaxConns < 0 {
			k.add(bp+".max_conns", "%d must not be negative (0 means no cap)", b.MaxConns)
		}
	}
	switch {
	case rt.Balance == "" || slices.Contains(balances, rt.Balance):
	default:
		k.add(p+".balance", "%q is not a balance method (round_robin, weighted, least_conn, hash)", rt.Balance)
	}
	if rt.HashOn != "" {
		if rt.Balance != "hash" {
			k.add(p+".hash_on", "only applies with balance: hash")
		} else if !validHashOn(rt.HashOn) {
			k.add(p+".hash_on", "%q is not client, header:NAME or cookie:NAME", rt.HashOn)
		}
	}
	k.health(p+".health", rt.Health)
	if f := rt.Passive.Failures; f < -1 {
		k.add(p+".passive.failures", "%d is not a count (-1 disables passive checks, 0 means 3)", f)
	}
	k.durations([]namedDuration{
		{p + ".passive.cooldown", rt.Passive.Cooldown},
		{p + ".response_header_timeout", rt.ResponseHeaderTimeout},
	})
	if rt.Retries < 0 || rt.Retries > 10 {
		k.add(p+".retries", "%d is not from 0 to 10", rt.Retries)
	}
	t := rt.BackendTLS
	if t != (BackendTLS{}) && !https && urlsValid && len(rt.Backends) > 0 {
		k.add(p+".backend_tls", "set but route %q has no https backend", rt.Name)
	}
	if t.ServerName != "" && !validHost(t.ServerName) {
		k.add(p+".backend_tls.server_name", "%q is not a host name or IP address", t.ServerName)
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		k.add(p+".backend_tls.cert_file", "needs key_file too")
	case t.CertFile == "" && t.KeyFile != "":
		k.add(p+".backend_tls.key_file", "needs cert_file too")
	}
	k.prefixes(p+".allow_clients", rt.AllowClients)
	k.prefixes(p+".deny_clients", rt.DenyClients)
	rl := rt.RateLimit
	if v := rl.RequestsPerSecond; v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		k.add(p+".rate_limit.requests_per_second", "%v is not a rate (0 or more; 0 means no limit)", v)
	}
	switch {
	case rl.Burst < 0:
		k.add(p+".rate_limit.burst", "%d must not be negative", rl.Burst)
	case rl.Burst > 0 && rl.RequestsPerSecond == 0:
		k.add(p+".rate_limit.burst", "set, but requests_per_second is 0 (no rate limit)")
	}
	if rt.MaxBodyBytes < -1 {
		k.add(p+".max_body_bytes", "%d is not a size (0 means reverse.limits.max_body_bytes, -1 unlimited)", rt.MaxBodyBytes)
	}
	k.securityHeaders(p+".security_headers", rt.SecurityHeaders)
}

// matchValue checks the value a header or cookie must have.
func (k *checker) matchValue(path, what, v string, valid func(string) bool) {
	if v == "" || strings.TrimSpace(v) != v || !valid(v) {
		k.add(path, `%q is not a %s value to match (not empty, no control characters or surrounding spaces; "*" means any value)`, v, what)
	}
}

func (k *checker) health(p string, h HealthCheck) {
	if h.Path == "" {
		if h != (HealthCheck{}) {
			k.add(p, "health checks need a path (without one they are off)")
		}
		return
	}
	if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, "# \t") || hasControl(h.Path) {
		k.add(p+".path", `%q is not a path (starting with "/", no '#', spaces or control characters)`, h.Path)
	}
	switch {
	case h.Interval < 0:
		k.add(p+".interval", "%v must not be negative", h.Interval)
	case h.Interval > 0 && h.Interval < time.Second:
		k.add(p+".interval", "%v is too often (at least 1s)", h.Interval)
	}
	e := effectiveHealth(h)
	switch {
	case h.Timeout < 0:
		k.add(p+".timeout", "%v must not be negative", h.Timeout)
	case h.Interval >= 0 && e.Timeout >= e.Interval:
		k.add(p+".timeout", "%v is not shorter than the interval %v", e.Timeout, e.Interval)
	}
	if h.Rise < 0 || h.Rise > 100 {
		k.add(p+".rise", "%d is not from 1 to 100", h.Rise)
	}
	if h.Fall < 0 || h.Fall > 100 {
		k.add(p+".fall", "%d is not from 1 to 100", h.Fall)
	}
	if s := h.ExpectStatus; s != ([2]int{}) && (s[0] < 100 || s[1] > 599 || s[0] > s[1]) {
		k.add(p+".expect_status", "%d-%d is not a range of status codes from 100 to 599, low to high", s[0], s[1])
	}
	if h.Host != "" && !validHost(h.Host) && checkHostPort(h.Host, true) != nil {
		k.add(p+".host", "%q is not a host name, IP address or host:port", h.Host)
	}
}

// validRouteHost reports whether s is a host name, "*." and a host name, or
// an IP address without a zone.
func validRouteHost(s string) bool {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Zone() == ""
	}
	return validHostname(strings.TrimPrefix(s, "*."))
}

// canonicalRouteHost lower-cases a valid route host; IP addresses take their
// canonical form.
func canonicalRouteHost(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return toLowerASCII(s)
}

// validCookieValue reports whether s has only the bytes net/http allows in
// a cookie value.
func validCookieValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

func validHashOn(s string) bool {
	if s == "client" {
		return true
	}
	kind, name, ok := strings.Cut(s, ":")
	return ok && (kind == "header" || kind == "cookie") && httpguts.ValidHeaderFieldName(name)
}

// parseBackendURL parses and checks a backend URL: http or https, a host,
// an optional port, nothing else.
func parseBackendURL(s string) (*url.URL, error) {
	const want = "is not an http:// or https:// URL"
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		if s != "" && !strings.Contains(s, "://") {
			return nil, fmt.Errorf("%q %s (write \"http://%s\")", abbrev(s), want, abbrev(s))
		}
		return nil, fmt.Errorf("%q %s", abbrev(s), want)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: credentials in a backend URL are not supported", u.Redacted())
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q %s", s, want)
	case u.Host == "":
		return nil, fmt.Errorf("%q has no host", s)
	case u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("%q: a backend URL cannot have a path (requests keep theirs)", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return nil, fmt.Errorf("%q: a backend URL cannot have a query or fragment", s)
	case strings.HasSuffix(u.Host, ":") || u.Port() != "" && !validPort(u.Port()):
		return nil, fmt.Errorf("%q: port must be a number from 1 to 65535", s)
	case !validHost(u.Hostname()):
		return nil, fmt.Errorf("%q: %q is not an IP address or host name", s, u.Hostname())
	}
	return u, nil
}

// backendKey identifies a backend: scheme, lower-case host and port, the
// scheme's default port if none is given.
func backendKey(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host := toLowerASCII(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	}
	return u.Scheme + "://" + net.JoinHostPort(host, port)
}

// sameMatch reports whether routes a and b match exactly the same requests
// with the same priority, so that one of them can never be chosen.
func sameMatch(a, b *Route) bool {
	if a.Priority != b.Priority || orRoot(a.PathPrefix) != orRoot(b.PathPrefix) ||
		!maps.Equal(a.Cookies, b.Cookies) {
		return false
	}
	hostSet := func(r *Route) []string {
		s := make([]string, len(r.Hosts))
		for i, h := range r.Hosts {
			s[i] = canonicalRouteHost(h)
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	headers := func(r *Route) map[string]string {
		m := make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			m[textproto.CanonicalMIMEHeaderKey(k)] = v
		}
		return m
	}
	return slices.Equal(hostSet(a), hostSet(b)) && maps.Equal(headers(a), headers(b))
}

func orRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// effectiveHealth returns h with every zero replaced by its default. A
// timeout left at zero is at most half the interval, so that a short
// interval alone stays valid.
func effectiveHealth(h HealthCheck) HealthCheck {
	if h.Interval == 0 {
		h.Interval = defaultHealthInterval
	}
	if h.Timeout == 0 && h.Interval > 0 {
		h.Timeout = min(defaultHealthTimeout, h.Interval/2)
	}
	if h.Rise == 0 {
		h.Rise = defaultHealthRise
	}
	if h.Fall == 0 {
		h.Fall = defaultHealthFall
	}
	if h.ExpectStatus == ([2]int{}) {
		h.ExpectStatus = [2]int{200, 399}
	}
	return h
}

// applyDefaults fills the reverse section's zeros that mean a default and
// normalises hosts, header names and media types. Invalid values are left
// alone for reverseProblems to report.
func (r *Reverse) applyDefaults() {
	t := &r.Timeouts
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&t.ReadHeader, defaultReadHeader},
		{&t.Idle, defaultIdle},
		{&t.Dial, defaultReverseDial},
		{&t.ResponseHeader, defaultResponseHeader},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	l := &r.Limits
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = defaultMaxBodyBytes
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = defaultMaxConnections
	}
	c := &r.Compression
	if c.Levels == nil {
		c.Levels = make(map[string]int, len(defaultCompressionLevels))
	}
	for a, lv := range defaultCompressionLevels {
		if _, ok := c.Levels[a]; !ok {
			c.Levels[a] = lv
		}
	}
	for i, typ := range c.Types {
		if validMediaRange(typ) {
			c.Types[i] = toLowerASCII(typ)
		}
	}
	r.SecurityHeaders = r.SecurityHeaders.Over(defaultSecurityHeaders())

	for i := range r.Routes {
		rt := &r.Routes[i]
		for j, h := range rt.Hosts {
			if validRouteHost(h) {
				rt.Hosts[j] = canonicalRouteHost(h)
			}
		}
		if rt.PathPrefix == "" {
			rt.PathPrefix = "/"
		}
		canonicalHeaderNames(rt.Headers)
		for j := range rt.Backends {
			if rt.Backends[j].Weight == 0 {
				rt.Backends[j].Weight = 1
			}
		}
		if rt.Balance == "" {
			rt.Balance = "round_robin"
		}
		if rt.Balance == "hash" && rt.HashOn == "" {
			rt.HashOn = "client"
		}
		if rt.Health.Path != "" {
			rt.Health = effectiveHealth(rt.Health)
		}
		if rt.Passive.Failures == 0 {
			rt.Passive.Failures = defaultPassiveFailures
		}
		if rt.Passive.Cooldown == 0 {
			rt.Passive.Cooldown = defaultPassiveCooldown
		}
		if rl := &rt.RateLimit; rl.Burst == 0 && rl.RequestsPerSecond > 0 && rl.RequestsPerSecond <= math.MaxInt32 {
			rl.Burst = int(math.Ceil(rl.RequestsPerSecond))
		}
		if rt.MaxBodyBytes == 0 && l.MaxBodyBytes >= -1 {
			rt.MaxBodyBytes = l.MaxBodyBytes
		}
		if rt.ResponseHeaderTimeout == 0 && t.ResponseHeader > 0 {
			rt.ResponseHeaderTimeout = t.ResponseHeader
		}
	}
}

// canonicalHeaderNames rewrites the keys of m in canonical form
// (x-canary → X-Canary), unless a name is invalid or two names would
// become one.
func canonicalHeaderNames(m map[string]string) {
	canon := make(map[string]string, len(m))
	for name, v := range m {
		cn := textproto.CanonicalMIMEHeaderKey(name)
		if _, dup := canon[cn]; dup || !httpguts.ValidHeaderFieldName(name) {
			return
		}
		canon[cn] = v
	}
	clear(m)
	maps.Copy(m, canon)
}

// defaultSecurityHeaders returns the default security headers, every field
// set, in fresh strings.
func defaultSecurityHeaders() SecurityHeaders {
	s := func(v string) *string { return &v }
	return SecurityHeaders{
		HSTS:                  s("max-age=31536000"),
		ContentTypeOptions:    s("nosniff"),
		FrameOptions:          s("SAMEORIGIN"),
		ReferrerPolicy:        s("strict-origin-when-cross-origin"),
		ContentSecurityPolicy: s(""),
	}
}
