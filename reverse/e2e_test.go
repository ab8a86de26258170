package reverse

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"waygate/audit"
	"waygate/proxy/upstream"
)

// eventLog collects audit events in memory.
type eventLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (l *eventLog) Record(e *audit.Event) {
	l.mu.Lock()
	l.events = append(l.events, *e)
	l.mu.Unlock()
}

func (l *eventLog) all() []audit.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]audit.Event(nil), l.events...)
}

// testEnv is a running reverse proxy on loopback.
type testEnv struct {
	srv    *Server
	url    string // plain listener
	tlsURL string // TLS listener, if any
	events *eventLog
}

// loopbackDial is the gateway's guarded dialer with loopback allowed, as
// reverse.allow_backends does by default.
func loopbackDial() DialFunc {
	d := &upstream.Dialer{Guard: upstream.NewGuard(upstream.GuardConfig{
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	})}
	return d.DialContext
}

func startEnv(t *testing.T, cfg Config, opts Options) *testEnv {
	t.Helper()
	e := &testEnv{events: &eventLog{}}
	if opts.Dial == nil {
		opts.Dial = loopbackDial()
	}
	opts.Audit = e.events
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	srv, err := New(opts, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	go srv.ServePlain(ln)
	if cfg.TLS {
		tln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.tlsURL = "https://" + tln.Addr().String()
		go srv.ServeTLS(tln)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return e
}

// named is a backend that answers with its name and what it saw.
func named(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Seen-Path", r.URL.Path)
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Proto", r.Header.Get("X-Forwarded-Proto"))
		w.Header().Set("X-Seen-XFHost", r.Header.Get("X-Forwarded-Host"))
		w.Header().Set("X-Seen-Forwarded", r.Header.Get("Forwarded"))
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Upgrade", r.Header.Get("Upgrade"))
		w.Header().Set("X-Seen-Secret", r.Header.Get("X-Secret"))
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

func backendsOf(ss ...*httptest.Server) []BackendConfig {
	var out []BackendConfig
	for _, s := range ss {
		u, _ := url.Parse(s.URL)
		out = append(out, BackendConfig{URL: u})
	}
	return out
}

var client = &http.Client{
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64},
	Timeout:   10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

type reqOpt func(*http.Request)

func withHost(h string) reqOpt { return func(r *http.Request) { r.Host = h } }
func withHeader(k, v string) reqOpt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func get(t *testing.T, c *http.Client, u string, opts ...reqOpt) (*http.Response, string) {
	t.Helper()
	return do(t, c, http.MethodGet, u, nil, opts...)
}

func do(t *testing.T, c *http.Client, method, u string, body io.Reader, opts ...reqOpt) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return resp, string(b)
}

func TestRouting(t *testing.T) {
	wiki, api, beta, canary, any, wild := named(t, "wiki"), named(t, "api"), named(t, "beta"), named(t, "canary"), named(t, "any"), named(t, "wild")
	cfg := Config{Routes: []Route{
		{Name: "wiki", Match: RouteMatch{Hosts: []string{"wiki.corp.example"}}, Backends: backendsOf(wiki)},
		{Name: "api", Match: RouteMatch{Hosts: []string{"wiki.corp.example"}, PathPrefix: "/api"}, StripPrefix: true, Backends: backendsOf(api)},
		{Name: "beta", Match: RouteMatch{Hosts: []string{"wiki.corp.example"}, Headers: map[string]string{"X-Beta": "1"}}, Backends: backendsOf(beta)},
		{Name: "canary", Match: RouteMatch{Hosts: []string{"wiki.corp.example"}, Cookies: map[string]string{"canary": "yes"}, Priority: 10}, Backends: backendsOf(canary)},
		{Name: "wild", Match: RouteMatch{Hosts: []string{"*.apps.example"}}, Backends: backendsOf(wild)},
		{Name: "any", Match: RouteMatch{PathPrefix: "/public"}, Backends: backendsOf(any)},
	}}
	e := startEnv(t, cfg, Options{})
	tests := []struct {
		name, path, host string
		opts             []reqOpt
		want             string
		wantStatus       int
		wantPath         string
	}{
		{"exact host", "/page", "wiki.corp.example", nil, "wiki", 200, "/page"},
		{"host case and port", "/", "WIKI.corp.example:80", nil, "wiki", 200, "/"},
		{"path prefix stripped", "/api/v1/x", "wiki.corp.example", nil, "api", 200, "/v1/x"},
		{"prefix alone", "/api", "wiki.corp.example", nil, "api", 200, "/"},
		{"prefix at segment boundary", "/apix", "wiki.corp.example", nil, "wiki", 200, "/apix"},
		{"header", "/", "wiki.corp.example", []reqOpt{withHeader("X-Beta", "1")}, "beta", 200, "/"},
		{"header other value", "/", "wiki.corp.example", []reqOpt{withHeader("X-Beta", "2")}, "wiki", 200, "/"},
		{"cookie with priority", "/api/x", "wiki.corp.example", []reqOpt{withHeader("Cookie", "a=b; canary=yes")}, "canary", 200, "/api/x"},
		{"wildcard", "/", "x.apps.example", nil, "wild", 200, "/"},
		{"wildcard deep", "/", "a.b.apps.example", nil, "wild", 200, "/"},
		{"wildcard not apex", "/", "apps.example", nil, "", 404, ""},
		{"hostless route", "/public/a", "other.example", nil, "any", 200, "/public/a"},
		{"no route", "/", "other.example", nil, "", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, client, e.url+tc.path, append(tc.opts, withHost(tc.host))...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus != 200 {
				if !strings.Contains(body, "Not found") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
					t.Errorf("404 page = %q", body)
				}
				return
			}
			if body != tc.want {
				t.Errorf("served by %q, want %q", body, tc.want)
			}
			if got := resp.Header.Get("X-Seen-Path"); got != tc.wantPath {
				t.Errorf("backend saw path %q, want %q", got, tc.wantPath)
			}
		})
	}
}

func countBackends(t *testing.T, e *testEnv, n int, opts ...reqOpt) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		resp, body := get(t, client, e.url+"/", opts...)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		got[body]++
	}
	return got
}

func TestRoundRobinSpread(t *testing.T) {
	a, b, c := named(t, "a"), named(t, "b"), named(t, "c")
	e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(a, b, c)}}}, Options{})
	got := countBackends(t, e, 30)
	if got["a"] != 10 || got["b"] != 10 || got["c"] != 10 {
		t.Errorf("spread = %v, want 10 each", got)
	}
}

func TestWeightedSpread(t *testing.T) {
	a, b := named(t, "a"), named(t, "b")
	bs := backendsOf(a, b)
	bs[0].Weight, bs[1].Weight = 3, 1
	e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: bs, Balance: "weighted"}}}, Options{})
	got := countBackends(t, e, 40)
	if got["a"] != 30 || got["b"] != 10 {
		t.Errorf("spread = %v, want a:30 b:10", got)
	}
}

func TestLeastConnUnderUnevenLoad(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "slow")
	}))
	defer slow.Close()
	defer close(release)
	fast := named(t, "fast")
	e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(slow, fast), Balance: "least_conn"}}}, Options{})

	// Two long requests: least_conn sends one to each backend (ties
	// rotate), the slow one holds its slot.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(e.url + "/slow")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the slow backend")
	}
	// The fast backend finished its /slow at once; the slow one holds one.
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.Status().Routes[0].InFlight != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := countBackends(t, e, 20)
	if got["fast"] != 20 {
		t.Errorf("with the slow backend busy, spread = %v, want all on fast", got)
	}
	release <- struct{}{}
	wg.Wait()
}

func TestConsistentHashStableWhenBackendRemoved(t *testing.T) {
	var servers []*httptest.Server
	for i := range 5 {
		servers = append(servers, named(t, fmt.Sprintf("b%d", i)))
	}
	route := func(ss []*httptest.Server) Config {
		return Config{Routes: []Route{{Name: "r", Backends: backendsOf(ss...), Balance: "hash", Hash: HashOn{Kind: "header", Name: "X-User"}}}}
	}
	e := startEnv(t, route(servers), Options{})
	const keys = 300
	before := make([]string, keys)
	for i := range keys {
		_, body := get(t, client, e.url+"/", withHeader("X-User", fmt.Sprintf("user-%d", i)))
		before[i] = body
	}
	// Same key, same backend.
	for i := range 20 {
		if _, body := get(t, client, e.url+"/", withHeader("X-User", fmt.Sprintf("user-%d", i))); body != before[i] {
			t.Fatalf("key %d moved from %s to %s without a change", i, before[i], body)
		}
	}
	if err := e.srv.Apply(route(append(servers[:2:2], servers[3:]...))); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for i := range keys {
		_, body := get(t, client, e.url+"/", withHeader("X-User", fmt.Sprintf("user-%d", i)))
		if body == "b2" {
			t.Fatalf("key %d still on the removed backend", i)
		}
		if before[i] != "b2" && body != before[i] {
			t.Errorf("key %d moved from %s to %s though its backend stayed", i, before[i], body)
		}
		if body != before[i] {
			moved++
		}
	}
	// About 1/5 of the keys were on b2.
	if frac := float64(moved) / keys; frac > 0.35 || frac < 0.05 {
		t.Errorf("%.2f of keys moved, want about 0.2", frac)
	}
}

// restartable is a backend that can be killed and brought back on the same
// address.
type restartable struct {
	addr    string
	handler http.Handler
	mu      sync.Mutex
	srv     *http.Server
}

func newRestartable(t *testing.T, h http.Handler) *restartable {
	r := &restartable{handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.kill)
	return r
}

func (r *restartable) serve(ln net.Listener) {
	r.mu.Lock()
	r.srv = &http.Server{Handler: r.handler}
	srv := r.srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

func (r *restartable) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		r.srv.Close()
		r.srv = nil
	}
}

func (r *restartable) restart(t *testing.T) {
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("relisten on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

func (r *restartable) backend() BackendConfig {
	return BackendConfig{URL: &url.URL{Scheme: "http", Host: r.addr}}
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func backendHealthy(e *testEnv, addr string) bool {
	for _, b := range e.srv.Status().Routes[0].Backends {
		if strings.Contains(b.URL, addr) {
			return b.Healthy && !b.Ejected
		}
	}
	return false
}

func TestKilledBackendEjectedByHealthCheckAndBack(t *testing.T) {
	mk := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	a, b := newRestartable(t, mk("a")), newRestartable(t, mk("b"))
	cfg := Config{Routes: []Route{{
		Name: "r", Backends: []BackendConfig{a.backend(), b.backend()},
		Health:  HealthConfig{Path: "/health", Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1},
		Passive: PassiveConfig{Failures: -1},
	}}}
	e := startEnv(t, cfg, Options{})
	waitFor(t, "both healthy", func() bool { return backendHealthy(e, a.addr) && backendHealthy(e, b.addr) })
	if got := countBackends(t, e, 10); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("spread = %v", got)
	}
	b.kill()
	waitFor(t, "b ejected", func() bool { return !backendHealthy(e, b.addr) })
	if got := countBackends(t, e, 10); got["a"] != 10 {
		t.Fatalf("with b down, spread = %v, want all on a", got)
	}
	b.restart(t)
	waitFor(t, "b back", func() bool { return backendHealthy(e, b.addr) })
	if got := countBackends(t, e, 10); got["b"] == 0 {
		t.Fatalf("b back but unused: %v", got)
	}
}

func TestRetries(t *testing.T) {
	var badHits atomic.Int32
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "bad")
	}))
	defer bad.Close()
	good := named(t, "good")
	// A dead address: listen, note the port, close.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()

	t.Run("502 retried for GET, not for POST", func(t *testing.T) {
		e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(bad, good), Retries: 1, Passive: PassiveConfig{Failures: -1}}}}, Options{})
		for range 4 {
			resp, body := get(t, client, e.url+"/")
			if resp.StatusCode != 200 || body != "good" {
				t.Fatalf("GET: %d %q, want 200 from good", resp.StatusCode, body)
			}
		}
		statuses := map[int]int{}
		for range 4 {
			resp, _ := do(t, client, http.MethodPost, e.url+"/", strings.NewReader("payload"))
			statuses[resp.StatusCode]++
		}
		if statuses[502] != 2 || statuses[200] != 2 {
			t.Errorf("POST statuses = %v, want two 502 (not retried) and two 200", statuses)
		}
	})
	t.Run("connection failure retried for POST with its body", func(t *testing.T) {
		var got atomic.Value
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got.Store(string(b))
			io.WriteString(w, "ok")
		}))
		defer echo.Close()
		bs := append([]BackendConfig{{URL: &url.URL{Scheme: "http", Host: dead}}}, backendsOf(echo)...)
		e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: bs, Retries: 1, Passive: PassiveConfig{Failures: -1}}}}, Options{})
		for range 4 {
			resp, body := do(t, client, http.MethodPost, e.url+"/", strings.NewReader("payload"))
			if resp.StatusCode != 200 || body != "ok" || got.Load() != "payload" {
				t.Fatalf("POST: %d %q, backend got %v", resp.StatusCode, body, got.Load())
			}
		}
	})
	t.Run("no retries: 502 page names the cause", func(t *testing.T) {
		e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: []BackendConfig{{URL: &url.URL{Scheme: "http", Host: dead}}}}}}, Options{})
		resp, body := get(t, client, e.url+"/")
		if resp.StatusCode != 502 || !strings.Contains(body, "refused") {
			t.Fatalf("status %d body %q, want 502 naming refused", resp.StatusCode, body)
		}
	})
}

func TestTimeoutAndClientGone(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(slow), ResponseHeaderTimeout: 100 * time.Millisecond}}}, Options{})
	resp, body := get(t, client, e.url+"/")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d (%s), want 504", resp.StatusCode, body)
	}

	e2 := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(slow)}}}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e2.url+"/gone", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "request in flight", func() bool { return e2.srv.Status().Routes[0].InFlight == 1 })
	cancel()
	<-done
	waitFor(t, "499 recorded", func() bool {
		for _, ev := range e2.events.all() {
			if ev.Path == "/gone" {
				return ev.Status == 499 && ev.Error == "canceled"
			}
		}
		return false
	})
}

func TestTLSTerminationAndSecurityHeaders(t *testing.T) {
	ca := newCertTestCA(t)
	now := time.Now()
	pair, _ := ca.issue(t, t.TempDir(), "wiki", now.Add(-time.Hour), now.Add(time.Hour), "wiki.corp.example")
	app := named(t, "app")
	cfg := Config{
		TLS:          true,
		Certificates: []CertPair{pair},
		Routes: []Route{{Name: "wiki", Match: RouteMatch{Hosts: []string{"wiki.corp.example"}}, Backends: backendsOf(app),
			SecurityHeaders: DefaultSecurityHeaders()}},
	}
	e := startEnv(t, cfg, Options{})
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: ca.pool, ServerName: "wiki.corp.example"},
	}}
	resp, body := get(t, tlsClient, e.tlsURL+"/x", withHost("wiki.corp.example"))
	if resp.StatusCode != 200 || body != "app" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	if got := resp.Header.Get("X-Seen-Proto"); got != "https" {
		t.Errorf("backend saw X-Forwarded-Proto %q, want https", got)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
		resp.Header.Get("X-Frame-Options") == "" || resp.Header.Get("Referrer-Policy") == "" {
		t.Errorf("security headers missing over TLS: %v", resp.Header)
	}
	// Plain HTTP: no HSTS.
	resp, _ = get(t, client, e.url+"/", withHost("wiki.corp.example"))
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("nosniff missing over plain HTTP")
	}
	// TLS 1.1 is refused.
	old := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.pool, ServerName: "wiki.corp.example", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10,
	}}}
	if resp, err := old.Get(e.tlsURL + "/"); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1 handshake accepted")
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	app := named(t, "app")
	e := startEnv(t, Config{TLS: true, RedirectHTTP: true, HTTPSPort: 8443, Routes: []Route{{Name: "r", Backends: backendsOf(app)}}}, Options{})
	resp, _ := get(t, client, e.url+"/a/b?c=d", withHost("wiki.corp.example"))
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://wiki.corp.example:8443/a/b?c=d" {
		t.Fatalf("status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The self-signed certificate was generated for the TLS listener.
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, body := get(t, insecure, e.tlsURL+"/")
	if resp.StatusCode != 200 || body != "app" {
		t.Fatalf("TLS with self-signed certificate: %d %q", resp.StatusCode, body)
	}
}

func TestBackendTLSPrivateCAAndMTLS(t *testing.T) {
	ca := newCertTestCA(t)
	dir, now := t.TempDir(), time.Now()
	serverFiles, _ := ca.issue(t, dir, "backend", now.Add(-time.Hour), now.Add(time.Hour), "app.internal")
	serverPair, err := tls.LoadX509KeyPair(serverFiles.CertFile, serverFiles.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	clientFiles, _ := ca.issue(t, dir, "gateway", now.Add(-time.Hour), now.Add(time.Hour), "gateway")
	clientCert, clientKey, caFile := clientFiles.CertFile, clientFiles.KeyFile, ca.file(t, dir)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure:"+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool}
	backend.StartTLS()
	defer backend.Close()

	route := Route{Name: "r", Backends: backendsOf(backend), BackendTLS: BackendTLS{
		CAFile: caFile, ServerName: "app.internal", CertFile: clientCert, KeyFile: clientKey,
	}}
	e := startEnv(t, Config{Routes: []Route{route}}, Options{})
	resp, body := get(t, client, e.url+"/")
	if resp.StatusCode != 200 || body != "secure:gateway" {
		t.Fatalf("mTLS: %d %q", resp.StatusCode, body)
	}
	// Without the client certificate, or without the CA: 502, cause tls.
	for name, bt := range map[string]BackendTLS{
		"no client cert": {CAFile: caFile, ServerName: "app.internal"},
		"unknown CA":     {ServerName: "app.internal", CertFile: clientCert, KeyFile: clientKey},
		"wrong name":     {CAFile: caFile, ServerName: "other.internal", CertFile: clientCert, KeyFile: clientKey},
	} {
		route.BackendTLS = bt
		if err := e.srv.Apply(Config{Routes: []Route{route}}); err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, client, e.url+"/")
		if resp.StatusCode != 502 {
			t.Errorf("%s: status %d %q, want 502", name, resp.StatusCode, body)
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	app := named(t, "app")
	route := Route{Name: "r", Backends: backendsOf(app)}
	t.Run("untrusted peer", func(t *testing.T) {
		e := startEnv(t, Config{Routes: []Route{route}}, Options{})
		resp, _ := get(t, client, e.url+"/", withHost("app.example"),
			withHeader("X-Forwarded-For", "6.6.6.6"), withHeader("X-Forwarded-Proto", "https"),
			withHeader("X-Forwarded-Host", "evil.example"), withHeader("Forwarded", "for=6.6.6.6"),
			withHeader("Connection", "X-Secret"), withHeader("X-Secret", "hop"))
		h := resp.Header
		if h.Get("X-Seen-XFF") != "127.0.0.1" || h.Get("X-Seen-Proto") != "http" || h.Get("X-Seen-XFHost") != "app.example" {
			t.Errorf("backend saw XFF %q proto %q host %q", h.Get("X-Seen-XFF"), h.Get("X-Seen-Proto"), h.Get("X-Seen-XFHost"))
		}
		if got := h.Get("X-Seen-Forwarded"); got != `for=127.0.0.1;host="app.example";proto=http` {
			t.Errorf("Forwarded = %q", got)
		}
		if h.Get("X-Seen-Secret") != "" {
			t.Error("a header named in Connection reached the backend")
		}
		if h.Get("X-Seen-Host") != "app.example" {
			t.Errorf("backend saw Host %q", h.Get("X-Seen-Host"))
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		e := startEnv(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Routes: []Route{route}}, Options{})
		resp, _ := get(t, client, e.url+"/", withHost("app.example"),
			withHeader("X-Forwarded-For", "203.0.113.7"), withHeader("X-Forwarded-Proto", "https"),
			withHeader("Forwarded", "for=203.0.113.7"))
		h := resp.Header
		if h.Get("X-Seen-XFF") != "203.0.113.7, 127.0.0.1" || h.Get("X-Seen-Proto") != "https" {
			t.Errorf("backend saw XFF %q proto %q", h.Get("X-Seen-XFF"), h.Get("X-Seen-Proto"))
		}
		if got := h.Get("X-Seen-Forwarded"); got != `for=203.0.113.7, for=127.0.0.1;host="app.example";proto=http` {
			t.Errorf("Forwarded = %q", got)
		}
		waitFor(t, "event", func() bool { return len(e.events.all()) == 1 })
		if ev := e.events.all()[0]; ev.Client != "203.0.113.7" {
			t.Errorf("audit client %q, want the address behind the trusted proxy", ev.Client)
		}
	})
	t.Run("h2c upgrade stripped", func(t *testing.T) {
		e := startEnv(t, Config{Routes: []Route{route}}, Options{})
		resp, _ := get(t, client, e.url+"/", withHeader("Connection", "Upgrade, HTTP2-Settings"),
			withHeader("Upgrade", "h2c"), withHeader("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"))
		if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Upgrade") != "" {
			t.Errorf("status %d, backend saw Upgrade %q", resp.StatusCode, resp.Header.Get("X-Seen-Upgrade"))
		}
	})
}

func TestWebSocketEcho(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		// Echo lines: enough to show bytes flow both ways.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo:" + line)
			brw.Flush()
		}
	}))
	defer backend.Close()
	e := startEnv(t, Config{Routes: []Route{{Name: "ws", Backends: backendsOf(backend)}}}, Options{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /socket HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for i := range 3 {
		fmt.Fprintf(conn, "msg %d\n", i)
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("echo:msg %d\n", i) {
			t.Fatalf("echo %d: %q %v", i, line, err)
		}
	}
	// A reload keeps the socket open.
	if err := e.srv.Apply(Config{Routes: []Route{{Name: "ws", Backends: backendsOf(backend), Retries: 2}}}); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "after reload\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo:after reload\n" {
		t.Fatalf("after reload: %q %v", line, err)
	}
}

func TestServerSentEventsOneByOne(t *testing.T) {
	next := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer backend.Close()
	e := startEnv(t, Config{Compression: DefaultCompressConfig(), Routes: []Route{{Name: "sse", Backends: backendsOf(backend), Compress: true}}}, Options{})
	req, _ := http.NewRequest(http.MethodGet, e.url+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("event stream compressed: %q", resp.Header.Get("Content-Encoding"))
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		// The backend waits for us before sending the next event, so each
		// event must arrive on its own.
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{}
	}
}

func TestTrailersKept(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc123")
	}))
	defer backend.Close()
	e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(backend)}}}, Options{})
	resp, body := get(t, client, e.url+"/")
	if body != "body" || resp.Trailer.Get("X-Checksum") != "abc123" {
		t.Errorf("body %q trailer %v", body, resp.Trailer)
	}
}

func TestCompressionEndToEnd(t *testing.T) {
	json := strings.Repeat(`{"id":12345,"name":"waygate","tags":["a","b","c"]},`, 200)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, json)
	}))
	defer backend.Close()
	e := startEnv(t, Config{Compression: DefaultCompressConfig(), Routes: []Route{{Name: "r", Backends: backendsOf(backend), Compress: true}}}, Options{})
	tr := &http.Transport{DisableCompression: true}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, tc := range []struct{ accept, want string }{
		{"gzip", "gzip"},
		{"br", "br"},
		{"zstd", "zstd"},
		{"gzip;q=0.5, br;q=0.9", "br"},
		{"identity", ""},
		{"", ""},
	} {
		resp, body := get(t, c, e.url+"/", withHeader("Accept-Encoding", tc.accept))
		if got := resp.Header.Get("Content-Encoding"); got != tc.want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", tc.accept, got, tc.want)
			continue
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: Vary = %q", tc.accept, resp.Header.Get("Vary"))
		}
		if tc.want == "" && body != json {
			t.Errorf("Accept-Encoding %q: body changed", tc.accept)
		}
		if tc.want != "" && (len(body) >= len(json) || resp.Header.Get("Content-Length") != "" && resp.ContentLength == int64(len(json))) {
			t.Errorf("Accept-Encoding %q: %d bytes, not compressed", tc.accept, len(body))
		}
	}
}

func TestLimits(t *testing.T) {
	app := named(t, "app")
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg := Config{MaxBodyBytes: 1000, Routes: []Route{{Name: "r", Backends: backendsOf(app), RateLimit: 1, RateBurst: 3}}}
	e := startEnv(t, cfg, Options{Now: clock})
	for i := range 3 {
		if resp, _ := get(t, client, e.url+"/"); resp.StatusCode != 200 {
			t.Fatalf("request %d within burst: %d", i, resp.StatusCode)
		}
	}
	resp, body := get(t, client, e.url+"/")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d Retry-After %q (%s)", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if resp, _ := get(t, client, e.url+"/"); resp.StatusCode != 200 {
		t.Fatalf("after refill: %d", resp.StatusCode)
	}

	e2 := startEnv(t, Config{MaxBodyBytes: 1000, Routes: []Route{{Name: "r", Backends: backendsOf(app)}}}, Options{})
	resp, _ = do(t, client, http.MethodPost, e2.url+"/", strings.NewReader(strings.Repeat("x", 2000)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("Content-Length over the limit: %d", resp.StatusCode)
	}
	// Chunked: no Content-Length, the limit is found while forwarding.
	resp, _ = do(t, client, http.MethodPost, e2.url+"/", io.MultiReader(strings.NewReader(strings.Repeat("x", 2000))))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the limit: %d", resp.StatusCode)
	}
	resp, _ = do(t, client, http.MethodPost, e2.url+"/", strings.NewReader("small"))
	if resp.StatusCode != 200 {
		t.Errorf("small body: %d", resp.StatusCode)
	}
}

func TestSlowClientsDoNotStopOthers(t *testing.T) {
	app := named(t, "app")
	e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(app)}}}, Options{ReadHeaderTimeout: 30 * time.Second})
	addr := strings.TrimPrefix(e.url, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// Half a request header, never finished.
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.example\r\nX-Slow: ")
		conns = append(conns, c)
	}
	for range 5 {
		if resp, body := get(t, client, e.url+"/"); resp.StatusCode != 200 || body != "app" {
			t.Fatalf("normal client: %d %q", resp.StatusCode, body)
		}
	}
}

func TestMalformedRequestsRejected(t *testing.T) {
	var hits atomic.Int32
	var ambiguous atomic.Bool
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/framing" {
			// Both headers reached us: net/http applied Transfer-Encoding
			// and removed Content-Length (RFC 9112 §6.3), so what the
			// backend gets must be chunked alone.
			if len(r.Header.Values("Content-Length")) > 0 && len(r.TransferEncoding) > 0 {
				ambiguous.Store(true)
			}
			return
		}
		hits.Add(1)
	}))
	defer backend.Close()
	e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(backend)}}}, Options{})
	addr := strings.TrimPrefix(e.url, "http://")
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET ../../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /public/../admin HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /public/%2e%2e/admin HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		// 501 is net/http's answer to a transfer coding it does not know.
		if resp.StatusCode < 400 || resp.StatusCode >= 500 && resp.StatusCode != 501 {
			t.Errorf("%q: status %d, want 4xx or 501", raw, resp.StatusCode)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("backend saw %d malformed requests", n)
	}
	// Content-Length with Transfer-Encoding: forwarded with one framing.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /framing HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CL+TE request: %v %v", resp, err)
	}
	if ambiguous.Load() {
		t.Error("the backend got both Content-Length and Transfer-Encoding")
	}
}

func TestReloadUnderLoad(t *testing.T) {
	a, b, c := named(t, "a"), named(t, "b"), named(t, "c")
	configs := []Config{
		{Routes: []Route{{Name: "r", Backends: backendsOf(a, b)}}},
		{Routes: []Route{{Name: "r", Backends: backendsOf(b, c), Balance: "least_conn"}, {Name: "x", Match: RouteMatch{PathPrefix: "/x"}, Backends: backendsOf(a)}}},
		{Routes: []Route{{Name: "r", Backends: backendsOf(c, a), Balance: "hash"}}},
	}
	e := startEnv(t, configs[0], Options{})
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(e.url + "/")
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
			}
		}()
	}
	for i := range 30 {
		if err := e.srv.Apply(configs[(i+1)%len(configs)]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during reloads", n, total.Load())
	}
	// A broken config is refused and the old one keeps serving.
	if err := e.srv.Apply(Config{Routes: []Route{{Name: "r"}}}); err == nil {
		t.Error("a route without backends was accepted")
	}
	if resp, _ := get(t, client, e.url+"/"); resp.StatusCode != 200 {
		t.Errorf("after a failed reload: %d", resp.StatusCode)
	}
}

func TestAuditEvents(t *testing.T) {
	app := named(t, "app")
	e := startEnv(t, Config{Routes: []Route{{Name: "wiki", Match: RouteMatch{Hosts: []string{"wiki.example"}}, Backends: backendsOf(app)}}}, Options{})
	const n = 25
	for i := range n {
		get(t, client, fmt.Sprintf("%s/page/%d?q=%d", e.url, i, i), withHost("wiki.example"), withHeader("User-Agent", "test-agent"))
	}
	get(t, client, e.url+"/", withHost("nowhere.example"))
	waitFor(t, "events", func() bool { return len(e.events.all()) == n+1 })
	u, _ := url.Parse(app.URL)
	for i, ev := range e.events.all()[:n] {
		want := fmt.Sprintf("/page/%d", i)
		if ev.Kind != audit.KindReverse || ev.Rule != "wiki" || ev.Upstream != u.Host || ev.Status != 200 ||
			ev.BytesOut != 3 || ev.Path != want || ev.Query != fmt.Sprintf("q=%d", i) || ev.Host != "wiki.example" ||
			ev.Client != "127.0.0.1" || ev.UserAgent != "test-agent" || ev.Action != "allow" || ev.RequestID == "" || ev.Duration <= 0 {
			t.Errorf("event %d = %+v", i, ev)
		}
	}
	if ev := e.events.all()[n]; ev.Status != 404 || ev.Reason != "no_route" || ev.Action != "deny" {
		t.Errorf("unrouted event = %+v", ev)
	}
}

func TestStatus(t *testing.T) {
	a, b := named(t, "a"), named(t, "b")
	e := startEnv(t, Config{Routes: []Route{{Name: "wiki", Match: RouteMatch{Hosts: []string{"wiki.example"}, PathPrefix: "/"}, Backends: backendsOf(a, b)}}}, Options{})
	for range 4 {
		get(t, client, e.url+"/", withHost("wiki.example"))
	}
	st := e.srv.Status()
	if len(st.Routes) != 1 {
		t.Fatalf("routes = %+v", st.Routes)
	}
	r := st.Routes[0]
	if r.Name != "wiki" || r.Requests != 4 || r.Balance != "round_robin" || len(r.Backends) != 2 {
		t.Errorf("route status = %+v", r)
	}
	for _, bs := range r.Backends {
		if !bs.Healthy || bs.Requests != 2 {
			t.Errorf("backend status = %+v", bs)
		}
	}
}

// A backend that dies mid-body must not produce a response the client
// takes for complete, on either forwarding path.
func TestBackendFailsMidBody(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "only the start")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer backend.Close()
	e := startEnv(t, Config{Routes: []Route{{Name: "r", Backends: backendsOf(backend)}}}, Options{})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, e.url+"/"+method, strings.NewReader(""))
		if method == http.MethodPost {
			req.Body = io.NopCloser(strings.NewReader("x")) // a body: the ReverseProxy path
		}
		resp, err := client.Do(req)
		if err != nil {
			continue // refused outright: fine
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("%s: the truncated body was read as complete", method)
		}
	}
	waitFor(t, "events", func() bool { return len(e.events.all()) == 2 })
	for _, ev := range e.events.all() {
		if ev.Error == "" {
			t.Errorf("event %s %s: no error recorded", ev.Method, ev.Path)
		}
	}
}
