package reverse

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSecurityHeadersApply(t *testing.T) {
	def := DefaultSecurityHeaders()
	if def.ContentSecurityPolicy != "" || def.HSTS != "max-age=31536000" || def.ContentTypeOptions != "nosniff" ||
		def.FrameOptions != "SAMEORIGIN" || def.ReferrerPolicy != "strict-origin-when-cross-origin" || def.Override {
		t.Fatalf("defaults: %+v", def)
	}
	custom := def
	custom.FrameOptions = "" // turned off
	custom.ContentSecurityPolicy = "default-src 'self'"
	custom.Extra = map[string]string{"permissions-policy": "camera=()", "X-Off": ""}
	override := custom
	override.Override = true

	for _, c := range []struct {
		name    string
		s       SecurityHeaders
		tls     bool
		backend http.Header
		want    http.Header
	}{
		{"defaults over TLS", def, true, http.Header{}, http.Header{
			"Strict-Transport-Security": {"max-age=31536000"},
			"X-Content-Type-Options":    {"nosniff"},
			"X-Frame-Options":           {"SAMEORIGIN"},
			"Referrer-Policy":           {"strict-origin-when-cross-origin"},
		}},
		{"no HSTS on plain HTTP", def, false, http.Header{}, http.Header{
			"X-Content-Type-Options": {"nosniff"},
			"X-Frame-Options":        {"SAMEORIGIN"},
			"Referrer-Policy":        {"strict-origin-when-cross-origin"},
		}},
		{"backend wins by default", def, true, http.Header{"X-Frame-Options": {"DENY"}, "Strict-Transport-Security": {"max-age=60"}}, http.Header{
			"Strict-Transport-Security": {"max-age=60"},
			"X-Content-Type-Options":    {"nosniff"},
			"X-Frame-Options":           {"DENY"},
			"Referrer-Policy":           {"strict-origin-when-cross-origin"},
		}},
		{"custom: off, CSP, extra", custom, false, http.Header{"Content-Security-Policy": {"backend"}}, http.Header{
			"X-Content-Type-Options":  {"nosniff"},
			"Referrer-Policy":         {"strict-origin-when-cross-origin"},
			"Content-Security-Policy": {"backend"},
			"Permissions-Policy":      {"camera=()"},
		}},
		{"override", override, false, http.Header{"Content-Security-Policy": {"backend"}, "X-Frame-Options": {"DENY"}, "Referrer-Policy": {"a", "b"}}, http.Header{
			"X-Content-Type-Options":  {"nosniff"},
			"Referrer-Policy":         {"strict-origin-when-cross-origin"},
			"Content-Security-Policy": {"default-src 'self'"},
			"Permissions-Policy":      {"camera=()"},
			"X-Frame-Options":         {"DENY"}, // "" never removes
		}},
		{"zero value adds nothing", SecurityHeaders{}, true, http.Header{"A": {"b"}}, http.Header{"A": {"b"}}},
	} {
		h := c.backend.Clone()
		c.s.Apply(h, c.tls)
		if !reflect.DeepEqual(h, c.want) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, h, c.want)
		}
	}
	def.Apply(nil, true) // no panic
}

func TestSecurityHeadersValidate(t *testing.T) {
	if err := DefaultSecurityHeaders().Validate(); err != nil {
		t.Error(err)
	}
	bad := []SecurityHeaders{
		{Extra: map[string]string{"Bad Name": "x"}},
		{Extra: map[string]string{"X-A": "a\r\nSet-Cookie: x"}},
		{FrameOptions: "a\nb"},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

func TestSecurityHeadersWrap(t *testing.T) {
	h := DefaultSecurityHeaders().Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		_, _ = io.WriteString(w, "hi")
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "https://app.example/", nil) // r.TLS set
	h.ServeHTTP(rec, req)
	res := rec.Result()
	if !rec.Flushed || res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("Strict-Transport-Security") == "" ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" || rec.Body.String() != "hi" {
		t.Errorf("flushed=%v header=%v body=%q", rec.Flushed, res.Header, rec.Body)
	}

	// Explicit WriteHeader after a 1xx: the final response gets them.
	h = SecurityHeaders{FrameOptions: "DENY"}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 404 || rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("code %d header %v", rec.Code, rec.Header())
	}
}

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestClientACL(t *testing.T) {
	acl := NewClientACL(
		mustPrefixes(t, "10.0.0.0/8", "2001:db8::/32", "::ffff:192.168.0.0/112"),
		mustPrefixes(t, "10.1.0.0/16", "2001:db8:bad::/48", "::ffff:10.2.3.4/128"),
	)
	for _, c := range []struct {
		ip   string
		want bool
	}{
		{"10.0.0.1", true},
		{"10.1.2.3", false}, // deny wins
		{"10.2.3.4", false}, // denied by a mapped prefix
		{"::ffff:10.0.0.1", true},
		{"::ffff:10.1.0.1", false},
		{"192.168.5.5", true}, // allowed by a mapped prefix
		{"192.169.0.1", false},
		{"2001:db8::1", true},
		{"2001:db8:bad::1", false},
		{"2001:db9::1", false},
		{"fe80::1%eth0", false},
		{"8.8.8.8", false},
	} {
		if got := acl.Allowed(netip.MustParseAddr(c.ip)); got != c.want {
			t.Errorf("%s: allowed=%v, want %v", c.ip, got, c.want)
		}
	}
	if acl.Allowed(netip.Addr{}) {
		t.Error("invalid address allowed by a restricting ACL")
	}

	open := NewClientACL(nil, mustPrefixes(t, "203.0.113.0/24", "fe80::/10"))
	for ip, want := range map[string]bool{"8.8.8.8": true, "203.0.113.9": false, "::1": true, "fe80::1%eth0": false} {
		if got := open.Allowed(netip.MustParseAddr(ip)); got != want {
			t.Errorf("deny-only %s: %v", ip, got)
		}
	}
	if open.Allowed(netip.Addr{}) {
		t.Error("invalid address allowed past a deny list")
	}

	var nilACL *ClientACL
	if !nilACL.Allowed(netip.MustParseAddr("1.2.3.4")) || !nilACL.Allowed(netip.Addr{}) {
		t.Error("nil ACL refused")
	}
	if empty := NewClientACL(nil, nil); !empty.Allowed(netip.MustParseAddr("1.2.3.4")) || !empty.Allowed(netip.Addr{}) {
		t.Error("empty ACL refused")
	}
	// ::/0 is all of IPv6, not IPv4.
	v6 := NewClientACL(mustPrefixes(t, "::/0"), nil)
	if v6.Allowed(netip.MustParseAddr("1.2.3.4")) || !v6.Allowed(netip.MustParseAddr("2001:db8::1")) {
		t.Error("::/0")
	}
	// An allow list of invalid prefixes allows no one (fails closed).
	if NewClientACL([]netip.Prefix{{}}, nil).Allowed(netip.MustParseAddr("1.2.3.4")) {
		t.Error("invalid allow prefix opened the ACL")
	}
}

func TestClientACLWrap(t *testing.T) {
	acl := NewClientACL(mustPrefixes(t, "192.0.2.0/24"), nil)
	h := acl.Wrap(mustPrefixes(t, "10.0.0.0/8"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []struct {
		remote, xff string
		want        int
	}{
		{"192.0.2.1:1234", "", 200},
		{"198.51.100.1:1234", "", 403},
		{"198.51.100.1:1234", "192.0.2.1", 403}, // untrusted peer: XFF ignored
		{"10.0.0.1:1234", "192.0.2.1", 200},
		{"10.0.0.1:1234", "198.51.100.7", 403},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = c.remote
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s %s: %d, want %d", c.remote, c.xff, rec.Code, c.want)
		}
	}
	var nilACL *ClientACL
	inner := http.NotFoundHandler()
	if got := nilACL.Wrap(nil)(inner); reflect.ValueOf(got).Pointer() != reflect.ValueOf(inner).Pointer() {
		t.Error("nil ACL wrapped the handler")
	}
}

// testClock is an injected clock for the rate limiter.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRateLimiter(t *testing.T) {
	clk := &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewRateLimiter(2, 3, clk.now) // 2/s, bursts of 3
	a := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow(a); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, wait := l.Allow(a)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("after the burst: ok=%v wait=%v, want refused for 500ms", ok, wait)
	}
	clk.advance(200 * time.Millisecond)
	if ok, wait := l.Allow(a); ok || wait != 300*time.Millisecond {
		t.Fatalf("200ms later: ok=%v wait=%v", ok, wait)
	}
	clk.advance(300 * time.Millisecond)
	if ok, _ := l.Allow(a); !ok {
		t.Fatal("refill: refused")
	}
	if ok, _ := l.Allow(a); ok {
		t.Fatal("refill gave more than one token")
	}
	// A long pause refills up to the burst, not beyond.
	clk.advance(time.Hour)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow(a); !ok {
			t.Fatalf("after an hour, request %d refused", i)
		}
	}
	if ok, _ := l.Allow(a); ok {
		t.Fatal("bucket grew past the burst")
	}
	// Clients are isolated; IPv4-mapped IPv6 is the same client.
	if ok, _ := l.Allow(netip.MustParseAddr("::ffff:192.0.2.1")); ok {
		t.Error("mapped address has its own bucket")
	}
	if ok, _ := l.Allow(netip.MustParseAddr("192.0.2.2")); !ok {
		t.Error("another client was refused")
	}
	// IPv6 clients are grouped by /64.
	for i := 0; i < 3; i++ {
		l.Allow(netip.MustParseAddr("2001:db8:1:2::" + strconv.Itoa(i+1)))
	}
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8:1:2:ffff::9")); ok {
		t.Error("same /64 not limited together")
	}
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8:1:3::1")); !ok {
		t.Error("other /64 refused")
	}
	// A clock that goes backwards does not refill or break anything.
	clk.advance(-time.Hour)
	if ok, wait := l.Allow(a); ok || wait <= 0 {
		t.Errorf("clock backwards: ok=%v wait=%v", ok, wait)
	}

	// Burst < 1 means rps rounded up.
	l = NewRateLimiter(2.5, 0, clk.now)
	n := 0
	for ok, _ := l.Allow(a); ok; ok, _ = l.Allow(a) {
		n++
	}
	if n != 3 {
		t.Errorf("default burst: %d", n)
	}
	// Slow rates give long waits.
	l = NewRateLimiter(1.0/60, 1, clk.now)
	l.Allow(a)
	if _, wait := l.Allow(a); wait != time.Minute {
		t.Errorf("1/min: wait %v", wait)
	}
}

func TestRateLimiterNil(t *testing.T) {
	for _, rps := range []float64{0, -1, float64Inf()} {
		if l := NewRateLimiter(rps, 1, nil); l != nil {
			t.Errorf("rps %v: limiter %v", rps, l)
		}
	}
	var l *RateLimiter
	if ok, wait := l.Allow(netip.MustParseAddr("1.2.3.4")); !ok || wait != 0 {
		t.Error("nil limiter refused")
	}
	if l.Len() != 0 {
		t.Error("nil Len")
	}
	// A real clock works (nil now).
	if ok, _ := NewRateLimiter(1, 1, nil).Allow(netip.Addr{}); !ok {
		t.Error("time.Now limiter refused its first request")
	}
}

func float64Inf() float64 {
	v, _ := strconv.ParseFloat("+Inf", 64)
	return v
}

// TestRateLimiterBounded: a flood of distinct clients cannot grow memory
// past the cap, and refilled buckets are swept.
func TestRateLimiterBounded(t *testing.T) {
	clk := &testClock{t: time.Unix(1e9, 0)}
	l := NewRateLimiter(10, 10, clk.now)
	for i := 0; i < 200_000; i++ {
		var b [16]byte
		b[0], b[1] = 0x20, 0x01
		b[4], b[5], b[6], b[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i) // a distinct /64 each
		if ok, _ := l.Allow(netip.AddrFrom16(b)); !ok {
			t.Fatalf("new client %d refused", i)
		}
	}
	if n := l.Len(); n > RateLimiterMaxClients || n < RateLimiterMaxClients/2 {
		t.Fatalf("tracked %d clients, cap %d", n, RateLimiterMaxClients)
	}
	// Everyone has refilled after the sweep interval: new traffic sweeps.
	clk.advance(2 * time.Minute)
	for i := 0; i < 1000; i++ {
		l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if n := l.Len(); n != 1000 {
		t.Errorf("after the sweep: %d clients tracked, want 1000", n)
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	clk := &testClock{t: time.Unix(1e9, 0)}
	l := NewRateLimiter(1, 5, clk.now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if ok, _ := l.Allow(netip.MustParseAddr("192.0.2.7")); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
				l.Allow(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
			}
		}()
	}
	wg.Wait()
	if allowed != 5 {
		t.Errorf("%d requests allowed from one client with a frozen clock, want the burst of 5", allowed)
	}
}

func TestRateLimiterWrap(t *testing.T) {
	clk := &testClock{t: time.Unix(1e9, 0)}
	l := NewRateLimiter(0.5, 1, clk.now)
	h := l.Wrap(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "192.0.2.1:5555"
		req.Header.Set("X-Forwarded-For", "1.1.1.1") // untrusted: ignored
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do(); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	rec := do()
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("code %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 1, -time.Second: 1, time.Millisecond: 1, time.Second: 1,
		time.Second + 1: 2, 1500 * time.Millisecond: 2, time.Minute: 60,
		time.Duration(1<<62) + 1: 1<<31 - 1,
	} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
	rec := httptest.NewRecorder()
	WriteTooManyRequests(rec, 2500*time.Millisecond)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "3" || !strings.Contains(rec.Body.String(), "Too many") {
		t.Errorf("%d %v %q", rec.Code, rec.Header(), rec.Body)
	}
}

// TestLimitBody runs a real server: a declared length over the limit is
// refused unread, a chunked body over it fails while being read.
func TestLimitBody(t *testing.T) {
	const limit = 10
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if LimitBody(w, r, limit) {
			http.Error(w, "declared too large", http.StatusRequestEntityTooLarge)
			return
		}
		b, err := io.ReadAll(r.Body)
		if IsBodyTooLarge(err) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = io.WriteString(w, strconv.Itoa(len(b)))
	}))
	defer srv.Close()

	post := func(body string, chunked bool) (int, string) {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL, rd)
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.ContentLength = -1
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if chunked != (len(resp.Request.TransferEncoding) > 0 || req.ContentLength == -1) {
			t.Fatalf("chunked=%v but request had TE %v", chunked, req.TransferEncoding)
		}
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, c := range []struct {
		body    string
		chunked bool
		code    int
		text    string
	}{
		{"0123456789", false, 200, "10"},
		{"0123456789X", false, 413, "declared too large"},
		{"short", true, 200, "5"},
		{"0123456789", true, 200, "10"},
		{strings.Repeat("x", 1000), true, 413, "too large"},
	} {
		code, text := post(c.body, c.chunked)
		if code != c.code || text != c.text {
			t.Errorf("%d bytes chunked=%v: %d %q, want %d %q", len(c.body), c.chunked, code, text, c.code, c.text)
		}
	}

	// No limit, and requests without a body.
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("abc"))
	if LimitBody(httptest.NewRecorder(), req, 0) || LimitBody(httptest.NewRecorder(), req, -1) {
		t.Error("no limit refused")
	}
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	if LimitBody(httptest.NewRecorder(), req, 1) || req.Body != http.NoBody {
		t.Error("bodiless request changed")
	}
	if LimitBody(httptest.NewRecorder(), nil, 1) || IsBodyTooLarge(io.EOF) || IsBodyTooLarge(nil) {
		t.Error("nil cases")
	}
}

func TestClientAddr(t *testing.T) {
	trusted := mustPrefixes(t, "10.0.0.0/8", "2001:db8:ffff::/48", "::ffff:172.16.0.0/108")
	for _, c := range []struct {
		name   string
		remote string
		xff    []string
		client string
		chain  []string
	}{
		{"untrusted peer, no header", "203.0.113.5:4000", nil, "203.0.113.5", nil},
		{"untrusted peer spoofs", "203.0.113.5:4000", []string{"10.0.0.1, 1.2.3.4"}, "203.0.113.5", nil},
		{"trusted peer, no header", "10.0.0.2:4000", nil, "10.0.0.2", nil},
		{"trusted peer, client", "10.0.0.2:4000", []string{"198.51.100.7"}, "198.51.100.7", []string{"198.51.100.7"}},
		{"client spoofs left of the real entry", "10.0.0.2:4000", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7", []string{"198.51.100.7"}},
		{"chain of trusted proxies", "10.0.0.2:1", []string{"1.1.1.1, 198.51.100.7, 10.9.9.9, 10.8.8.8"}, "198.51.100.7", []string{"198.51.100.7", "10.9.9.9", "10.8.8.8"}},
		{"several header lines", "10.0.0.2:1", []string{"6.6.6.6, 198.51.100.7", "10.9.9.9"}, "198.51.100.7", []string{"198.51.100.7", "10.9.9.9"}},
		{"untrusted in the last line", "10.0.0.2:1", []string{"6.6.6.6", "198.51.100.7"}, "198.51.100.7", []string{"198.51.100.7"}},
		{"garbage stops the walk", "10.0.0.2:1", []string{"198.51.100.7, garbage, 10.9.9.9"}, "10.9.9.9", []string{"10.9.9.9"}},
		{"garbage right away", "10.0.0.2:1", []string{"198.51.100.7, unknown"}, "10.0.0.2", nil},
		{"empty entry", "10.0.0.2:1", []string{"198.51.100.7,,10.9.9.9"}, "10.9.9.9", []string{"10.9.9.9"}},
		{"trailing comma", "10.0.0.2:1", []string{"198.51.100.7,"}, "10.0.0.2", nil},
		{"empty line", "10.0.0.2:1", []string{""}, "10.0.0.2", nil},
		{"all trusted", "10.0.0.2:1", []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1", []string{"10.1.1.1", "10.2.2.2"}},
		{"ports and brackets", "10.0.0.2:1", []string{"[2001:db8::7]:443, 10.3.3.3:8080"}, "2001:db8::7", []string{"2001:db8::7", "10.3.3.3"}},
		{"bracketed without port", "10.0.0.2:1", []string{" [2001:db8::8] "}, "2001:db8::8", []string{"2001:db8::8"}},
		{"IPv6 peer and tabs", "[2001:db8:ffff::1]:443", []string{"\t198.51.100.9\t"}, "198.51.100.9", []string{"198.51.100.9"}},
		{"mapped addresses", "[::ffff:10.0.0.2]:1", []string{"::ffff:198.51.100.7, 172.16.0.9"}, "198.51.100.7", []string{"198.51.100.7", "172.16.0.9"}},
		{"zone dropped", "10.0.0.2:1", []string{"fe80::1%eth0"}, "fe80::1", []string{"fe80::1"}},
		{"peer without port", "10.0.0.2", []string{"198.51.100.7"}, "198.51.100.7", []string{"198.51.100.7"}},
		{"peer not an address", "@", []string{"198.51.100.7"}, "invalid IP", nil},
		{"injected CRLF-ish", "10.0.0.2:1", []string{"198.51.100.7\r\nX: y"}, "10.0.0.2", nil},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = c.remote
		if c.xff != nil {
			req.Header["X-Forwarded-For"] = c.xff
		}
		client, chain := ClientAddr(req, trusted)
		if client.String() != c.client || !reflect.DeepEqual(chain, c.chain) {
			t.Errorf("%s: %v %q, want %s %q", c.name, client, chain, c.client, c.chain)
		}
	}
	// No trusted proxies: XFF is never read.
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.2:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	if client, chain := ClientAddr(req, nil); client.String() != "10.0.0.2" || chain != nil {
		t.Errorf("nil trusted: %v %v", client, chain)
	}
	if client, _ := ClientAddr(nil, nil); client.IsValid() {
		t.Error("nil request")
	}
	// The walk is bounded.
	long := strings.TrimSuffix(strings.Repeat("10.1.1.1, ", 1000), ", ")
	req.Header.Set("X-Forwarded-For", long)
	if _, chain := ClientAddr(req, trusted); len(chain) != protectMaxHops {
		t.Errorf("long chain kept %d entries", len(chain))
	}
}

func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.2:1", "6.6.6.6, 198.51.100.7", "10.9.9.9")
	f.Add("10.0.0.2:1", "[2001:db8::7]:443, garbage", "")
	f.Add("[::ffff:10.0.0.2]:9", "fe80::1%eth0,,", "10.1.1.1:80")
	f.Add("203.0.113.1:5", "1.2.3.4", "")
	trusted := mustPrefixes(f, "10.0.0.0/8", "2001:db8::/32")
	f.Fuzz(func(t *testing.T, remote, line1, line2 string) {
		req := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for _, l := range []string{line1, line2} {
			if l != "" {
				req.Header.Add("X-Forwarded-For", l)
			}
		}
		client, chain := ClientAddr(req, trusted)
		peer, peerOK := protectParseHop(remote)
		if !peerOK {
			if client.IsValid() || chain != nil {
				t.Fatalf("bad RemoteAddr %q gave %v %v", remote, client, chain)
			}
			return
		}
		// Every address in the header, as ClientAddr would normalize it.
		inHeader := map[netip.Addr]bool{}
		for _, l := range req.Header.Values("X-Forwarded-For") {
			for _, e := range strings.Split(l, ",") {
				if a, ok := protectParseHop(strings.Trim(e, " \t")); ok {
					inHeader[a] = true
				}
			}
		}
		if client != peer && !inHeader[client] {
			t.Fatalf("client %v is neither the peer %v nor in the header %q", client, peer, req.Header.Values("X-Forwarded-For"))
		}
		if !protectContains(trusted, peer) && (client != peer || chain != nil) {
			t.Fatalf("untrusted peer %v: client %v chain %v", peer, client, chain)
		}
		for i, s := range chain {
			a, err := netip.ParseAddr(s)
			if err != nil || !inHeader[a] {
				t.Fatalf("chain entry %q not from the header", s)
			}
			if i == 0 && a != client {
				t.Fatalf("chain %v does not start with the client %v", chain, client)
			}
			if i > 0 && !protectContains(trusted, a) {
				t.Fatalf("chain %v has an untrusted hop after the client", chain)
			}
		}
	})
}
