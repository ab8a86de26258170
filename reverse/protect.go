package reverse

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// SecurityHeaders are response headers added to a route's responses. The
// zero value adds nothing. An empty field means "do not send"; it never
// removes a header that the backend sent.
//
// By default a header is set only when the backend's response does not
// already have it (the backend knows its pages best, for example a CSP
// with the right script sources); Override makes the configured value
// replace the backend's.
type SecurityHeaders struct {
	// HSTS is the Strict-Transport-Security value, such as
	// "max-age=31536000; includeSubDomains". It is sent only on responses
	// to requests that came over TLS (browsers ignore it on plain HTTP).
	HSTS string
	// ContentTypeOptions is X-Content-Type-Options, normally "nosniff".
	ContentTypeOptions string
	// FrameOptions is X-Frame-Options, such as "SAMEORIGIN" or "DENY".
	FrameOptions string
	// ReferrerPolicy is Referrer-Policy.
	ReferrerPolicy string
	// ContentSecurityPolicy is Content-Security-Policy.
	ContentSecurityPolicy string
	// Extra maps further header names to values, under the same rules.
	// Nil adds none.
	Extra map[string]string
	// Override replaces headers that the backend set. False (the
	// default) leaves them alone.
	Override bool
}

// DefaultSecurityHeaders returns the recommended set: HSTS for one year,
// nosniff, SAMEORIGIN framing and the strict-origin-when-cross-origin
// referrer policy. It sets no Content-Security-Policy, since a policy
// that does not fit an application breaks it.
func DefaultSecurityHeaders() SecurityHeaders {
	return SecurityHeaders{
		HSTS:               "max-age=31536000",
		ContentTypeOptions: "nosniff",
		FrameOptions:       "SAMEORIGIN",
		ReferrerPolicy:     "strict-origin-when-cross-origin",
	}
}

// Validate reports a header name or value that cannot be sent.
func (s SecurityHeaders) Validate() error {
	var err error
	s.each(true, func(name, value string) {
		if err != nil {
			return
		}
		if !httpguts.ValidHeaderFieldName(name) {
			err = fmt.Errorf("reverse: security header %q: not a valid header name", name)
		} else if !httpguts.ValidHeaderFieldValue(value) {
			err = fmt.Errorf("reverse: security header %q: value %q is not a valid header value", name, value)
		}
	})
	return err
}

// each calls fn for every header to send (non-empty values); HSTS only
// when tls is true.
func (s SecurityHeaders) each(tls bool, fn func(name, value string)) {
	if tls && s.HSTS != "" {
		fn("Strict-Transport-Security", s.HSTS)
	}
	if s.ContentTypeOptions != "" {
		fn("X-Content-Type-Options", s.ContentTypeOptions)
	}
	if s.FrameOptions != "" {
		fn("X-Frame-Options", s.FrameOptions)
	}
	if s.ReferrerPolicy != "" {
		fn("Referrer-Policy", s.ReferrerPolicy)
	}
	if s.ContentSecurityPolicy != "" {
		fn("Content-Security-Policy", s.ContentSecurityPolicy)
	}
	for name, value := range s.Extra {
		if value != "" {
			fn(name, value)
		}
	}
}

// Apply sets the headers on a response header map h (for example in a
// ReverseProxy ModifyResponse hook). tls tells whether the client's
// request came over TLS, which HSTS requires. A nil h is left alone.
func (s SecurityHeaders) Apply(h http.Header, tls bool) {
	if h == nil {
		return
	}
	s.each(tls, func(name, value string) {
		name = textproto.CanonicalMIMEHeaderKey(name)
		if !s.Override && len(h[name]) > 0 {
			return
		}
		h[name] = []string{value}
	})
}

// securityHeaderSet is a SecurityHeaders compiled for the request path:
// canonical names, and one-element value slices shared by every response
// (safe: a later append to such a header copies, as cap == len).
type securityHeaderSet struct {
	override bool
	always   []securityHeaderValue
	tlsOnly  []securityHeaderValue
}

type securityHeaderValue struct {
	name string
	vals []string
}

// compile returns s ready for apply.
func (s SecurityHeaders) compile() securityHeaderSet {
	set := securityHeaderSet{override: s.Override}
	plain := map[string]bool{}
	s.each(false, func(name, value string) {
		name = textproto.CanonicalMIMEHeaderKey(name)
		plain[name] = true
		set.always = append(set.always, securityHeaderValue{name, []string{value}})
	})
	s.each(true, func(name, value string) {
		name = textproto.CanonicalMIMEHeaderKey(name)
		if !plain[name] {
			set.tlsOnly = append(set.tlsOnly, securityHeaderValue{name, []string{value}})
		}
	})
	return set
}

// apply is Apply for a compiled set.
func (set *securityHeaderSet) apply(h http.Header, tls bool) {
	for _, v := range set.always {
		if set.override || len(h[v.name]) == 0 {
			h[v.name] = v.vals
		}
	}
	if tls {
		for _, v := range set.tlsOnly {
			if set.override || len(h[v.name]) == 0 {
				h[v.name] = v.vals
			}
		}
	}
}

// Wrap returns next with the headers applied to every response it writes
// (for responses the gateway makes itself, such as error pages). They are
// applied when the final status is written, so next may still set its own
// first; the ResponseWriter keeps Flush and Unwrap (for
// http.ResponseController).
func (s SecurityHeaders) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&securityHeadersWriter{ResponseWriter: w, s: &s, tls: r.TLS != nil}, r)
	})
}

type securityHeadersWriter struct {
	http.ResponseWriter
	s    *SecurityHeaders
	tls  bool
	done bool
}

func (w *securityHeadersWriter) apply() {
	if !w.done {
		w.done = true
		w.s.Apply(w.ResponseWriter.Header(), w.tls)
	}
}

func (w *securityHeadersWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.apply()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *securityHeadersWriter) Write(b []byte) (int, error) {
	w.apply()
	return w.ResponseWriter.Write(b)
}

func (w *securityHeadersWriter) Flush() {
	w.apply()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *securityHeadersWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ClientACL decides which client addresses may use a route. A nil
// *ClientACL allows everyone.
type ClientACL struct {
	allow, deny []netip.Prefix
	restrict    bool // an allow list was given
}

// NewClientACL builds an ACL: an address in any deny prefix is refused
// (deny wins); otherwise, when allow is non-empty, only addresses in one
// of its prefixes are allowed; an empty allow list allows all. IPv4-mapped
// IPv6 prefixes (::ffff:10.0.0.0/104) are treated as the IPv4 prefixes
// they stand for; other IPv6 prefixes never match IPv4 clients (::/0 is
// "all of IPv6"). Invalid (zero) prefixes match nothing, and an allow
// list made only of them allows no one.
func NewClientACL(allow, deny []netip.Prefix) *ClientACL {
	a := &ClientACL{restrict: len(allow) > 0}
	for _, p := range allow {
		if p = protectPrefix(p); p.IsValid() {
			a.allow = append(a.allow, p)
		}
	}
	for _, p := range deny {
		if p = protectPrefix(p); p.IsValid() {
			a.deny = append(a.deny, p)
		}
	}
	return a
}

// protectPrefix masks p and turns an IPv4-mapped prefix into IPv4.
func protectPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return netip.Prefix{}
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return p.Masked()
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// protectAddr is the form in which client addresses are compared:
// IPv4-mapped IPv6 unmapped, zone dropped (a zoned address never matches
// a prefix).
func protectAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// protectContains reports whether a is in one of ps, which may hold
// IPv4-mapped prefixes.
func protectContains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Allowed reports whether ip may pass. IPv4-mapped IPv6 addresses are
// unmapped first and zones ignored. An invalid (zero) address passes only
// an ACL without rules; a nil *ClientACL allows every address.
func (a *ClientACL) Allowed(ip netip.Addr) bool {
	if a == nil {
		return true
	}
	ip = protectAddr(ip)
	if !ip.IsValid() {
		return !a.restrict && len(a.deny) == 0
	}
	for _, p := range a.deny {
		if p.Contains(ip) {
			return false
		}
	}
	if !a.restrict {
		return true
	}
	for _, p := range a.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Wrap returns a middleware that answers 403 Forbidden to clients the
// ACL refuses; the client address is found with [ClientAddr] and trusted.
// A nil *ClientACL gives a middleware that passes everything.
func (a *ClientACL) Wrap(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if a == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if client, _ := ClientAddr(r, trusted); !a.Allowed(client) {
				http.Error(w, "Forbidden", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RateLimiterMaxClients is the most client addresses a [RateLimiter]
// tracks at once. Past it, a new client evicts the least recently seen of
// a small random sample of tracked ones, so memory stays bounded even
// under a flood of distinct (IPv6) addresses.
const RateLimiterMaxClients = 100_000

// rateShardCount spreads clients over independently locked maps.
const rateShardCount = 32

// RateLimiter is a token bucket per client address: each client may make
// burst requests at once and rps per second on average. IPv6 clients
// are keyed by their /64 (one subscriber's network), IPv4-mapped IPv6 as
// IPv4; invalid addresses share one bucket. Memory is bounded by
// [RateLimiterMaxClients]: buckets that have refilled are dropped by a
// sweep run lazily during Allow (no goroutine, nothing to close). Safe
// for concurrent use; a nil *RateLimiter allows everything.
type RateLimiter struct {
	rate     float64 // tokens per nanosecond
	burst    float64
	now      func() time.Time
	start    time.Time
	idle     int64 // nanoseconds for an empty bucket to refill
	sweepGap int64 // nanoseconds between sweeps of one shard
	perShard int
	seed     maphash.Seed
	shards   [rateShardCount]rateShard
}

type rateShard struct {
	mu        sync.Mutex
	buckets   map[rateKey]rateBucket
	lastSweep int64
	_         [40]byte // keep shards on separate cache lines
}

type rateKey [16]byte

type rateBucket struct {
	tokens float64
	last   int64 // nanoseconds since RateLimiter.start
}

// NewRateLimiter returns a limiter allowing rps requests per second per
// client with bursts of burst. rps <= 0 (or NaN, or +Inf) means no limit
// and returns nil. burst < 1 means rps rounded up (at least 1). now is the
// clock; nil means time.Now.
func NewRateLimiter(rps float64, burst int, now func() time.Time) *RateLimiter {
	if !(rps > 0) || math.IsInf(rps, 1) {
		return nil
	}
	if burst < 1 {
		burst = int(math.Min(math.Ceil(rps), math.MaxInt32))
	}
	if now == nil {
		now = time.Now
	}
	l := &RateLimiter{
		rate:     rps / 1e9,
		burst:    float64(burst),
		now:      now,
		start:    now(),
		perShard: RateLimiterMaxClients / rateShardCount,
		seed:     maphash.MakeSeed(),
	}
	l.idle = int64(math.Min(float64(burst)/l.rate, math.MaxInt64/2))
	l.sweepGap = max(l.idle, int64(time.Minute))
	for i := range l.shards {
		l.shards[i].buckets = make(map[rateKey]rateBucket)
	}
	return l
}

// rateKeyOf is the bucket key of a client address.
func rateKeyOf(ip netip.Addr) rateKey {
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return rateKey(ip.As16()) // ::ffff:a.b.c.d
	case ip.Is6():
		k := rateKey(ip.As16())
		clear(k[8:]) // the /64
		return k
	}
	var k rateKey
	for i := range k {
		k[i] = 0xff // ff.. is multicast: no client has it
	}
	return k
}

// Allow takes one token from ip's bucket. When there is none it returns
// false and how long until there is one. A nil *RateLimiter returns true.
func (l *RateLimiter) Allow(ip netip.Addr) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	key := rateKeyOf(ip)
	now := int64(l.now().Sub(l.start))
	sh := &l.shards[maphash.Comparable(l.seed, key)%rateShardCount]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now-sh.lastSweep >= l.sweepGap || now < sh.lastSweep {
		l.sweep(sh, now)
	}
	b, found := sh.buckets[key]
	if !found {
		if len(sh.buckets) >= l.perShard {
			l.evict(sh)
		}
		b = rateBucket{tokens: l.burst, last: now}
	} else if elapsed := now - b.last; elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+float64(elapsed)*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		sh.buckets[key] = b
		return true, 0
	}
	sh.buckets[key] = b
	wait := math.Ceil((1 - b.tokens) / l.rate)
	return false, time.Duration(math.Min(wait, math.MaxInt64/2))
}

// sweep drops the buckets that have refilled: they are the same as none.
func (l *RateLimiter) sweep(sh *rateShard, now int64) {
	sh.lastSweep = now
	for k, b := range sh.buckets {
		if now-b.last >= l.idle {
			delete(sh.buckets, k)
		}
	}
}

// evict drops the least recently used of a few buckets (map iteration
// starts at a random place).
func (l *RateLimiter) evict(sh *rateShard) {
	var victim rateKey
	oldest, n := int64(math.MaxInt64), 0
	for k, b := range sh.buckets {
		if b.last < oldest {
			victim, oldest = k, b.last
		}
		if n++; n == 8 {
			break
		}
	}
	delete(sh.buckets, victim)
}

// Len returns the number of clients tracked (0 for a nil *RateLimiter).
func (l *RateLimiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}

// Wrap returns a middleware that answers 429 (see [WriteTooManyRequests])
// to clients over the limit; the client address is found with
// [ClientAddr] and trusted. A nil *RateLimiter gives a middleware that
// passes everything.
func (l *RateLimiter) Wrap(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if l == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			client, _ := ClientAddr(r, trusted)
			if ok, wait := l.Allow(client); !ok {
				WriteTooManyRequests(w, wait)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RetryAfterSeconds converts a wait into the whole seconds of a
// Retry-After header: rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	if d <= time.Second {
		return 1
	}
	s := (d + time.Second - 1) / time.Second
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s)
}

// WriteTooManyRequests answers 429 Too Many Requests with a Retry-After
// of [RetryAfterSeconds](retryAfter) and a short plain-text body.
func WriteTooManyRequests(w http.ResponseWriter, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(RetryAfterSeconds(retryAfter)))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte("Too many requests; try again later.\n"))
}

// LimitBody enforces a request body limit of max bytes; max <= 0 means
// no limit. When the declared Content-Length is over max it returns true
// without touching the body: answer 413 Request Entity Too Large without
// reading it. Otherwise it wraps r.Body in http.MaxBytesReader and returns
// false. A body without a length (chunked) that turns out to be larger
// fails while it is being read or forwarded with an error wrapping
// *http.MaxBytesError (see [IsBodyTooLarge]), which the caller answers
// with 413; the server then closes the connection.
func LimitBody(w http.ResponseWriter, r *http.Request, max int64) (tooLarge bool) {
	if max <= 0 || r == nil {
		return false
	}
	if r.ContentLength > max {
		return true
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, max)
	}
	return false
}

// IsBodyTooLarge reports whether err comes from a body limit set by
// [LimitBody] (or any http.MaxBytesReader).
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// ClientAddr finds the client's address. It starts from the direct peer
// (r.RemoteAddr). Only when the peer is in trusted (a proxy in front of
// the gateway) is X-Forwarded-For believed: its entries (all header
// lines, in order) are walked from the right, each taken as the client
// while the address before it was trusted, so the walk stops at the first
// untrusted address: the real client, as the last trusted proxy saw it.
// An entry that is not an address ("unknown", empty, garbage) ends the
// walk, leaving the last address found as the client. Entries may carry a
// port ("1.2.3.4:5", "[::1]:5"). Addresses are unmapped and zones dropped.
// The walk stops after 64 trusted hops.
//
// forwardedFor is the part of the incoming chain worth keeping: the
// client and the trusted hops after it, normalized, nil when the peer is
// not trusted. A proxy appends the peer to it for its own
// X-Forwarded-For. Entries left of the client could have been made up by
// the client and are dropped. client is invalid when RemoteAddr is not an
// address (nil trusted means no peer is trusted).
func ClientAddr(r *http.Request, trusted []netip.Prefix) (client netip.Addr, forwardedFor []string) {
	if r == nil {
		return netip.Addr{}, nil
	}
	peer, ok := protectParseHop(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, nil
	}
	client = peer
	if len(trusted) == 0 || !protectContains(trusted, peer) {
		return client, nil
	}
	lines := r.Header["X-Forwarded-For"]
	var kept []netip.Addr
walk:
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for len(kept) < protectMaxHops {
			entry := rest
			j := strings.LastIndexByte(rest, ',')
			if j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			}
			a, ok := protectParseHop(strings.Trim(entry, " \t"))
			if !ok {
				break walk
			}
			client = a
			kept = append(kept, a)
			if !protectContains(trusted, a) {
				break walk
			}
			if j < 0 {
				continue walk // on to the line before
			}
		}
		break
	}
	if len(kept) == 0 {
		return client, nil
	}
	forwardedFor = make([]string, len(kept))
	for i, a := range kept {
		forwardedFor[len(kept)-1-i] = a.String()
	}
	return client, forwardedFor
}

// protectMaxHops bounds the X-Forwarded-For walk: after that many
// trusted hops the last one is taken as the client.
const protectMaxHops = 64

// protectParseHop parses one address as found in RemoteAddr or an
// X-Forwarded-For entry: "addr", "addr:port", "[v6]" or "[v6]:port".
func protectParseHop(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return protectAddr(ap.Addr()), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return protectAddr(a), true
}
