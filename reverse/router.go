package reverse

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/idna"
)

// RouteMatch describes when a route applies: all of its conditions must
// hold. The zero RouteMatch matches every request whose path is
// acceptable (see [Router.MatchInfo]).
//
// Among the routes that match, the one with the highest Priority wins;
// ties go to the more specific route: an exact host before a wildcard (a
// longer wildcard before a shorter one) before any host, then the longer
// path prefix, then more header and cookie conditions, and finally the
// route that comes first in the configuration.
type RouteMatch struct {
	// Hosts holds exact names ("wiki.corp.example") and wildcards
	// ("*.corp.example", which matches any name with at least one more
	// label in front of corp.example, at any depth, but not corp.example
	// itself). Names are case-insensitive and a trailing dot is ignored;
	// IDNs are converted to A-labels (punycode) with the idna Lookup
	// profile, so "bücher.example" and "xn--bcher-kva.example" are the
	// same host. Besides letters, digits and '-', ASCII names may contain
	// '_' (common for internal names). IPv4 literals ("10.0.0.5") and
	// bracketed IPv6 literals ("[::1]") are accepted as exact hosts. The
	// request's Host (or, when empty, its URL host) is compared with its
	// port removed. Nil or empty matches any host, including a missing or
	// malformed one; a malformed request host matches no other route.
	Hosts []string
	// PathPrefix is compared with the request's decoded path (r.URL.Path,
	// which is what r.URL.EscapedPath() decodes to) after runs of '/' are
	// collapsed to one. Write it decoded ("/docs/été") or percent-encoded
	// ("/docs/%C3%A9t%C3%A9"); it is decoded when the router is built. It
	// matches at a segment boundary: "/api" matches "/api", "/api/" and
	// "/api/x" but not "/apix"; a prefix that ends in "/" ("/api/")
	// matches as a plain string prefix ("/api/", "/api/x", not "/api").
	// Matching is case-sensitive. "" and "/" match any path.
	PathPrefix string
	// Headers maps a header name to the value its first field line must
	// have, compared exactly (case-sensitive); the value "" or "*" only
	// requires the header to be present. Nil requires nothing.
	Headers map[string]string
	// Cookies maps a cookie name to its required value, with the same
	// rules; the first cookie of that name counts, as with
	// [http.Request.Cookie]. Nil requires nothing.
	Cookies map[string]string
	// Priority orders matching routes, higher first. Zero is the default.
	Priority int
}

// Router is a compiled, immutable set of routes; a nil *Router matches
// nothing. It is safe for concurrent use. Build one with [NewRouter] and
// replace it as a whole when the configuration changes.
type Router[T any] struct {
	routes []*routerRoute[T] // in configuration order
	exact  map[string][]*routerRoute[T]
	wild   map[string][]*routerRoute[T] // keyed by the wildcard's base name
	any    []*routerRoute[T]
}

// RouterResult is what [Router.MatchInfo] found: the payload of the route,
// its index in the slices given to [NewRouter], and its path prefix in
// decoded, canonical form ("" when the route matches any path), ready for
// [StripPrefix].
type RouterResult[T any] struct {
	// Value is the route's payload.
	Value T
	// Index is the route's position in the slices given to NewRouter.
	Index int
	// Prefix is the route's decoded path prefix; "" means any path.
	Prefix string
}

var (
	// ErrBadRequestPath is returned by [Router.MatchInfo] for a request
	// path that the router refuses to route (dot segments, control bytes,
	// not starting with "/"). Answer it with 400 Bad Request.
	ErrBadRequestPath = errors.New("reverse: request path is not acceptable (dot segments, control characters or not absolute)")
	// ErrNoRouteMatch is returned by [Router.MatchInfo] when no route
	// matches the request. Answer it with 404 Not Found (or a default page).
	ErrNoRouteMatch = errors.New("reverse: no route matches the request")
)

// routerRoute is one compiled route.
type routerRoute[T any] struct {
	index    int
	value    T
	priority int
	prefix   string // canonical decoded prefix; "" matches any path
	headers  []routerCond
	cookies  []routerCond
}

// routerCond is one header or cookie condition. Header names are in
// canonical MIME form so that they index http.Header directly.
type routerCond struct {
	name    string
	value   string
	present bool // only presence is required
}

// routerRanked is a route with its host rank within one host bucket.
type routerRanked[T any] struct {
	r    *routerRoute[T]
	rank int
}

// Host ranks: exact beats any wildcard, a wildcard ranks by its number of
// labels, any host ranks lowest.
const (
	routerRankAny   = 0
	routerRankExact = 1 << 20
)

// NewRouter compiles routes; payloads[i] is the value returned when
// routes[i] matches, so both slices must have the same length. Nil or
// empty slices give a router that matches nothing. Errors name the route
// (numbered from 1 in configuration order) and the offending host, path
// prefix, header or cookie.
func NewRouter[T any](routes []RouteMatch, payloads []T) (*Router[T], error) {
	if len(routes) != len(payloads) {
		return nil, fmt.Errorf("reverse: router: %d routes but %d payloads", len(routes), len(payloads))
	}
	rt := &Router[T]{
		exact: map[string][]*routerRoute[T]{},
		wild:  map[string][]*routerRoute[T]{},
	}
	// For each route, the host keys it declares.
	type hostKeys struct{ exact, wild []string }
	keys := make([]hostKeys, len(routes))
	for i, m := range routes {
		cr := &routerRoute[T]{index: i, value: payloads[i], priority: m.Priority}
		for _, h := range m.Hosts {
			key, wildcard, err := routerConfigHost(h)
			if err != nil {
				return nil, fmt.Errorf("reverse: route %d: host %q: %w", i+1, h, err)
			}
			if wildcard {
				keys[i].wild = append(keys[i].wild, key)
				rt.wild[key] = nil
			} else {
				keys[i].exact = append(keys[i].exact, key)
				rt.exact[key] = nil
			}
		}
		p, err := routerConfigPrefix(m.PathPrefix)
		if err != nil {
			return nil, fmt.Errorf("reverse: route %d: path prefix %q: %w", i+1, m.PathPrefix, err)
		}
		cr.prefix = p
		for name, v := range m.Headers {
			if !httpguts.ValidHeaderFieldName(name) {
				return nil, fmt.Errorf("reverse: route %d: header %q: not a valid header name", i+1, name)
			}
			c := textproto.CanonicalMIMEHeaderKey(name)
			if c == "Host" {
				return nil, fmt.Errorf("reverse: route %d: header %q: match the host with Hosts, not a header condition", i+1, name)
			}
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("reverse: route %d: header %q: value %q is not a valid header value", i+1, name, v)
			}
			cr.headers = append(cr.headers, routerCond{name: c, value: v, present: v == "" || v == "*"})
		}
		for name, v := range m.Cookies {
			if name == "" {
				return nil, fmt.Errorf("reverse: route %d: empty cookie name", i+1)
			}
			if !httpguts.ValidHeaderFieldName(name) {
				return nil, fmt.Errorf("reverse: route %d: cookie %q: not a valid cookie name", i+1, name)
			}
			if val, quoted, ok := routerCookieValue(v); (!ok || quoted || val != v) && v != "*" {
				return nil, fmt.Errorf("reverse: route %d: cookie %q: value %q cannot occur in a Cookie header", i+1, name, v)
			}
			cr.cookies = append(cr.cookies, routerCond{name: name, value: v, present: v == "" || v == "*"})
		}
		// Map iteration order is random: keep conditions in a stable order.
		sort.Slice(cr.headers, func(a, b int) bool { return cr.headers[a].name < cr.headers[b].name })
		sort.Slice(cr.cookies, func(a, b int) bool { return cr.cookies[a].name < cr.cookies[b].name })
		rt.routes = append(rt.routes, cr)
	}

	// candidates collects, for a request host whose exact key is host (or
	// "" for none) and whose matching wildcard bases are the strict label
	// suffixes of base, every route that can match, with its best rank.
	candidates := func(host, base string) []*routerRoute[T] {
		best := make(map[int]int) // route index -> best rank
		for i, k := range keys {
			rank := -1
			for _, e := range k.exact {
				if host != "" && e == host {
					rank = routerRankExact
				}
			}
			for _, w := range k.wild {
				if routerWildcardCovers(w, base) {
					if r := 1 + strings.Count(w, ".") + 1; r > rank {
						rank = r
					}
				}
			}
			if len(k.exact) == 0 && len(k.wild) == 0 {
				rank = routerRankAny
			}
			if rank >= 0 {
				best[i] = rank
			}
		}
		list := make([]routerRanked[T], 0, len(best))
		for i, rank := range best {
			list = append(list, routerRanked[T]{r: rt.routes[i], rank: rank})
		}
		sort.Slice(list, func(a, b int) bool { return routerBefore(list[a].r, list[a].rank, list[b].r, list[b].rank) })
		out := make([]*routerRoute[T], len(list))
		for i := range list {
			out[i] = list[i].r
		}
		return out
	}
	for h := range rt.exact {
		rt.exact[h] = candidates(h, h)
	}
	for w := range rt.wild {
		// A request host under the wildcard *.w has w as a strict suffix,
		// and so every wildcard base that is a suffix of w as well.
		rt.wild[w] = candidates("", "x."+w)
	}
	rt.any = candidates("", "")
	return rt, nil
}

// routerWildcardCovers reports whether the wildcard "*.base" matches the
// name host: base must be a strict label suffix of host.
func routerWildcardCovers(base, host string) bool {
	return len(host) > len(base)+1 && strings.HasSuffix(host, base) && host[len(host)-len(base)-1] == '.'
}

// routerBefore is the route order: higher priority, then better host
// rank, then longer path prefix, then more conditions, then config order.
func routerBefore[T any](a *routerRoute[T], ra int, b *routerRoute[T], rb int) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if ra != rb {
		return ra > rb
	}
	if len(a.prefix) != len(b.prefix) {
		return len(a.prefix) > len(b.prefix)
	}
	if ca, cb := len(a.headers)+len(a.cookies), len(b.headers)+len(b.cookies); ca != cb {
		return ca > cb
	}
	return a.index < b.index
}

// Match returns the payload of the route that req matches. It returns
// false when no route matches and for requests that [Router.MatchInfo]
// rejects with [ErrBadRequestPath]; use MatchInfo to tell the two apart.
// A nil *Router matches nothing.
func (rt *Router[T]) Match(req *http.Request) (T, bool) {
	res, err := rt.MatchInfo(req)
	return res.Value, err == nil
}

// MatchInfo finds the route for req. It returns [ErrNoRouteMatch] when no
// route matches (always, for a nil *Router) and [ErrBadRequestPath] when
// the path is refused before routing.
//
// Path handling (decided so that no path can reach a route other than the
// one a backend will serve it as):
//   - The router looks at r.URL.Path, the fully decoded path. An encoded
//     slash (%2F) therefore separates segments like "/", and encoded
//     letters match their plain forms ("/%61dmin" is "/admin"). A backend
//     that does not decode %2F sees a longer single segment, which is
//     still inside the matched prefix.
//   - Runs of "/" are collapsed for matching ("//admin" is routed as
//     "/admin"); the request is forwarded unchanged.
//   - Requests are refused (ErrBadRequestPath, answer 400) when the path
//     has a dot segment, "." or "..", however it was written: plain,
//     percent-encoded (%2E), delimited by "\" or an encoded slash, with a
//     ";parameter" suffix ("/..;/", which Java servers strip), or
//     double-encoded (a decoded "%2e"). Browsers resolve dot segments
//     before sending, so only crafted requests have them. Paths with
//     control bytes (including an encoded NUL or line break) and paths not
//     starting with "/" (such as "*") are refused too. An empty path is
//     treated as "/".
//
// Matching allocates nothing for a plain host and path.
func (rt *Router[T]) MatchInfo(req *http.Request) (RouterResult[T], error) {
	var zero RouterResult[T]
	if rt == nil || req == nil || req.URL == nil {
		return zero, ErrNoRouteMatch
	}
	path, ok := routerRoutingPath(req.URL.Path)
	if !ok {
		return zero, ErrBadRequestPath
	}
	hostHeader := req.Host
	if hostHeader == "" {
		hostHeader = req.URL.Host
	}
	list := rt.any
	if host, isIP, ok := routerRequestHost(hostHeader); ok {
		if l, found := rt.exact[host]; found {
			list = l
		} else if !isIP && len(rt.wild) > 0 {
			for i := strings.IndexByte(host, '.'); i >= 0; {
				if l, found := rt.wild[host[i+1:]]; found {
					list = l
					break
				}
				j := strings.IndexByte(host[i+1:], '.')
				if j < 0 {
					break
				}
				i += 1 + j
			}
		}
	}
	for _, r := range list {
		if r.prefix != "" && !routerHasPrefix(path, r.prefix) {
			continue
		}
		if !routerHeadersMatch(req.Header, r.headers) || !routerCookiesMatch(req.Header, r.cookies) {
			continue
		}
		return RouterResult[T]{Value: r.value, Index: r.index, Prefix: r.prefix}, nil
	}
	return zero, ErrNoRouteMatch
}

// routerHasPrefix is the segment-boundary prefix match of a canonical
// path against a canonical, non-empty prefix.
func routerHasPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}

func routerHeadersMatch(h http.Header, conds []routerCond) bool {
	for _, c := range conds {
		v := h[c.name]
		if len(v) == 0 {
			return false
		}
		if !c.present && v[0] != c.value {
			return false
		}
	}
	return true
}

func routerCookiesMatch(h http.Header, conds []routerCond) bool {
	if len(conds) == 0 {
		return true
	}
	lines := h["Cookie"]
	for _, c := range conds {
		v, ok := routerCookie(lines, c.name)
		if !ok || (!c.present && v != c.value) {
			return false
		}
	}
	return true
}

// routerMaxCookies mirrors net/http's default limit: a request with more
// cookies than this has none as far as http.Request.Cookie is concerned.
const routerMaxCookies = 3000

// routerCookie returns the value of the first cookie called name in the
// Cookie header lines, parsed exactly as http.Request.Cookie does (same
// trimming, token names, quote stripping and value bytes) but without
// allocating.
func routerCookie(lines []string, name string) (string, bool) {
	if len(lines) == 0 {
		return "", false
	}
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > routerMaxCookies {
		return "", false
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		var part string
		for len(line) > 0 {
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			k = textproto.TrimString(k)
			if k != name || !httpguts.ValidHeaderFieldName(k) {
				continue
			}
			if val, _, ok := routerCookieValue(v); ok {
				return val, true
			}
		}
	}
	return "", false
}

// routerCookieValue strips the double quotes of a cookie value and checks
// its bytes, like net/http's parseCookieValue.
func routerCookieValue(raw string) (value string, quoted, ok bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
		quoted = true
	}
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		if b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", quoted, false
		}
	}
	return raw, quoted, true
}

// routerRoutingPath checks a decoded request path and returns the form
// that prefixes are matched against (runs of '/' collapsed). It allocates
// only when the path has "//".
func routerRoutingPath(p string) (string, bool) {
	if p == "" {
		return "/", true
	}
	if p[0] != '/' {
		return "", false
	}
	double := false
	start := 0 // start of the current segment
	for i := 0; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c < 0x20 || c == 0x7f {
				return "", false
			}
			if c != '/' && c != '\\' {
				continue
			}
			if c == '/' && i > 0 && p[i-1] == '/' {
				double = true
			}
		}
		if routerDotSegment(p[start:i]) {
			return "", false
		}
		start = i + 1
	}
	if !double {
		return p, true
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String(), true
}

// routerDotSegment reports whether a decoded path segment would act as
// "." or ".." for some backend: plainly, after a ";parameter" is cut off,
// or after one more round of percent-decoding.
func routerDotSegment(s string) bool {
	if s == "" {
		return false
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	switch len(s) {
	case 1, 2:
		return s == "." || s == ".."
	case 3, 4, 6:
		// Double-encoded dots: "%2e", ".%2e", "%2e.", "%2e%2e".
		l := strings.ToLower(s)
		return l == "%2e" || l == ".%2e" || l == "%2e." || l == "%2e%2e"
	}
	return false
}

// routerConfigPrefix validates and canonicalizes a configured path prefix:
// "" for any path, otherwise a decoded path starting with "/" without
// "//", dot segments, control bytes, '?' or '#'.
func routerConfigPrefix(p string) (string, error) {
	if p == "" || p == "/" {
		return "", nil
	}
	if p[0] != '/' {
		return "", errors.New("must start with \"/\"")
	}
	if strings.ContainsAny(p, "?#") {
		return "", errors.New("must not contain '?' or '#'")
	}
	d, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("bad percent-encoding: %w", err)
	}
	if strings.Contains(d, "//") {
		return "", errors.New("must not contain \"//\"")
	}
	if _, ok := routerRoutingPath(d); !ok {
		return "", errors.New("must not contain dot segments or control characters")
	}
	return d, nil
}

// StripPathPrefix removes the matched prefix from a decoded path, keeping
// a leading "/": with prefix "/app", "/app/x" becomes "/x" and "/app"
// becomes "/". The prefix is compared segment by segment as the router
// does (a trailing "/" on it does not matter, runs of "/" in path count as
// one); when path does not start with prefix, or prefix is "" or "/",
// path is returned unchanged. What follows the prefix is kept as is.
func StripPathPrefix(path, prefix string) string {
	rest, ok := routerStripSegments(path, prefix)
	if !ok {
		return path
	}
	return rest
}

// StripPrefix removes the matched prefix from u.Path as [StripPathPrefix]
// does, and keeps u.RawPath consistent with it: the same segments are
// removed from the escaped form, where an encoded slash (%2F) separates
// segments as it does in u.Path, so an escaped remainder such as "/a%2Fb"
// survives. prefix may be the route's [RouteMatch.PathPrefix] as
// configured (decoded or percent-encoded) or its [RouterResult.Prefix]. A
// nil u, a prefix that u.Path does not start with, and the prefixes "" and
// "/" leave u unchanged.
func StripPrefix(u *url.URL, prefix string) {
	if u == nil {
		return
	}
	raw := u.RawPath
	if raw != "" && u.EscapedPath() != raw {
		raw = "" // stale RawPath: url.URL ignores it too
	}
	newPath, ok := routerStripSegments(u.Path, prefix)
	if !ok && strings.IndexByte(prefix, '%') >= 0 {
		// A configured prefix written percent-encoded.
		if d, err := url.PathUnescape(prefix); err == nil {
			prefix = d
			newPath, ok = routerStripSegments(u.Path, prefix)
		}
	}
	if !ok {
		return
	}
	u.Path = newPath
	if raw == "" {
		u.RawPath = ""
		return
	}
	newRaw, ok := routerStripRaw(raw, routerCountSegments(prefix))
	if !ok {
		u.RawPath = ""
		return
	}
	if dec, err := url.PathUnescape(newRaw); err != nil || dec != newPath {
		u.RawPath = ""
		return
	}
	u.RawPath = newRaw
	if u.EscapedPath() != newRaw {
		u.RawPath = ""
	}
}

// routerCountSegments counts the non-empty "/"-separated segments of p.
func routerCountSegments(p string) int {
	n := 0
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			n++
		}
	}
	return n
}

// routerStripSegments removes the segments of prefix from the start of
// the decoded path p, skipping runs of '/'. It reports false when p does
// not start with them, or when prefix has none.
func routerStripSegments(p, prefix string) (string, bool) {
	if routerCountSegments(prefix) == 0 {
		return p, false
	}
	rest := p
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "" {
			continue
		}
		rest = strings.TrimLeft(rest, "/")
		if !strings.HasPrefix(rest, seg) || (len(rest) > len(seg) && rest[len(seg)] != '/') {
			return p, false
		}
		rest = rest[len(seg):]
	}
	if rest == "" {
		return "/", true
	}
	return rest, true
}

// routerStripRaw removes n segments from an escaped path, where both '/'
// and %2F separate segments. The remainder starts with "/" (an encoded
// separator right after the prefix becomes a plain one).
func routerStripRaw(raw string, n int) (string, bool) {
	sep := func(s string) int { // length of a separator at the start of s
		if strings.HasPrefix(s, "/") {
			return 1
		}
		if len(s) >= 3 && s[0] == '%' && s[1] == '2' && (s[2] == 'F' || s[2] == 'f') {
			return 3
		}
		return 0
	}
	rest := raw
	for ; n > 0; n-- {
		for l := sep(rest); l > 0; l = sep(rest) {
			rest = rest[l:]
		}
		if rest == "" {
			return "", false
		}
		for rest != "" && sep(rest) == 0 {
			rest = rest[1:]
		}
	}
	if rest == "" {
		return "/", true
	}
	if l := sep(rest); l == 3 {
		rest = "/" + rest[3:]
	}
	return rest, true
}

// routerHostProfile converts IDNs to A-labels (the Lookup profile of
// RFC 5891 section 5).
var routerHostProfile = idna.Lookup

// routerConfigHost validates and normalizes a configured host: it returns
// the lookup key (for a wildcard, its base name without "*.").
func routerConfigHost(h string) (key string, wildcard bool, err error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", false, errors.New("empty host name")
	}
	if strings.HasPrefix(h, "[") {
		if !strings.HasSuffix(h, "]") {
			return "", false, errors.New("IPv6 literal must be written as [address] without a port")
		}
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false, errors.New("not an IPv6 address")
		}
		return "[" + a.String() + "]", false, nil
	}
	if strings.HasPrefix(h, "*.") {
		wildcard = true
		h = h[2:]
	}
	if strings.Contains(h, "*") {
		return "", false, errors.New("a wildcard is allowed only as the whole leftmost label, as in \"*.corp.example\"")
	}
	if strings.ContainsRune(h, ':') {
		return "", false, errors.New("host names take no port (IPv6 literals go in brackets)")
	}
	name, isIP, ok := routerNormalizeName(h)
	if !ok {
		return "", false, errors.New("not a valid host name")
	}
	if isIP && wildcard {
		return "", false, errors.New("a wildcard needs a domain name, not an address")
	}
	if !isIP {
		// The idna Lookup profile checks IDN rules and punycode labels.
		if _, err := routerHostProfile.ToASCII(strings.ReplaceAll(name, "_", "a")); err != nil {
			return "", false, err
		}
	}
	return name, wildcard, nil
}

// routerRequestHost normalizes a request's Host for lookup: port removed,
// lower case, trailing dot removed, IDN converted to A-labels, bracketed
// IPv6 in canonical form. ok is false for a host that no host-specific
// route can match (malformed). It does not allocate for a lower-case
// ASCII name or IPv4 address, with or without a port.
func routerRequestHost(h string) (key string, isIP, ok bool) {
	if h == "" {
		return "", false, false
	}
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false, false
		}
		if rest := h[end+1:]; rest != "" && (rest[0] != ':' || !routerDigits(rest[1:])) {
			return "", false, false
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false, false
		}
		return "[" + a.String() + "]", true, true
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if strings.IndexByte(h[:i], ':') >= 0 || !routerDigits(h[i+1:]) {
			return "", false, false
		}
		h = h[:i]
	}
	return routerNormalizeName(h)
}

func routerDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// routerNameByte marks the bytes allowed in a normalized name.
var routerNameByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'], t['.'] = true, true, true
	return t
}()

// routerNormalizeName normalizes a host name without port: one trailing
// dot removed, non-ASCII converted with the idna Lookup profile, ASCII
// lower-cased; then labels of 1 to 63 bytes of [a-z0-9_-] not starting or
// ending with '-', at most 253 bytes. A name whose last label is numeric
// must be a canonical IPv4 address (isIP). It allocates only when it has
// to change the name.
func routerNormalizeName(h string) (name string, isIP, ok bool) {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return "", false, false
	}
	lower := true
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 0x80 {
			a, err := routerHostProfile.ToASCII(h)
			if err != nil {
				return "", false, false
			}
			h = strings.TrimSuffix(a, ".")
			lower = true
			break
		}
		if 'A' <= c && c <= 'Z' {
			lower = false
		}
	}
	if !lower {
		h = strings.ToLower(h)
	}
	if len(h) == 0 || len(h) > 253 {
		return "", false, false
	}
	start := 0
	for i := 0; i <= len(h); i++ {
		if i < len(h) && h[i] != '.' {
			if !routerNameByte[h[i]] {
				return "", false, false
			}
			continue
		}
		l := i - start
		if l == 0 || l > 63 || h[start] == '-' || h[i-1] == '-' {
			return "", false, false
		}
		start = i + 1
	}
	if last := h[strings.LastIndexByte(h, '.')+1:]; routerDigits(last) {
		// ParseAddr accepts only dotted-decimal IPv4 without leading
		// zeros, so a parsed address is already in canonical form.
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() {
			return "", false, false
		}
		return h, true, true
	}
	return h, false, true
}
