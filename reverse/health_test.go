package reverse

import (
	"errors"
	"io"
	"log/slog"
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
)

// htServer is a backend whose health endpoint answers a settable status, or
// when gated, one status sent on codes per request.
type htServer struct {
	*httptest.Server
	gated  bool
	codes  chan int
	status atomic.Int32
	hits   atomic.Int64

	mu      sync.Mutex
	hosts   []string
	uris    []string
	agents  []string
	methods []string
}

func newHTServer(t *testing.T, gated bool) *htServer {
	s := &htServer{gated: gated, codes: make(chan int)}
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *htServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	s.hosts = append(s.hosts, r.Host)
	s.uris = append(s.uris, r.RequestURI)
	s.agents = append(s.agents, r.UserAgent())
	s.methods = append(s.methods, r.Method)
	s.mu.Unlock()
	if s.gated {
		select {
		case code := <-s.codes:
			w.WriteHeader(code)
		case <-r.Context().Done():
		}
		return
	}
	w.WriteHeader(int(s.status.Load()))
}

func (s *htServer) backend(t *testing.T) BackendConfig {
	return BackendConfig{URL: btURL(t, s.URL)}
}

// htTransport returns a fresh transport, closed at the end of the test.
func htTransport(t *testing.T) *http.Transport {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// htWait polls cond until it holds or a 5s deadline passes.
func htWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// htChecker returns the running checker of b (nil if none).
func htChecker(r *Registry, b *Backend) *healthChecker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return b.state.checker
}

func htProbes(r *Registry, b *Backend) uint64 {
	if c := htChecker(r, b); c != nil {
		return c.probes.Load()
	}
	return 0
}

func htConfig(t *testing.T, route string, hc HealthConfig, srvs ...*htServer) PoolConfig {
	pc := PoolConfig{Route: route, Health: hc, Transport: htTransport(t)}
	for _, s := range srvs {
		pc.Backends = append(pc.Backends, s.backend(t))
	}
	return pc
}

func TestHealthFallAndRise(t *testing.T) {
	srv := newHTServer(t, true)
	r := btRegistry(t, nil)
	p := btPool(t, r, htConfig(t, "app", HealthConfig{Path: "/healthz", Interval: 10 * time.Millisecond, Timeout: 5 * time.Second, Rise: 2, Fall: 3}, srv))
	b := p.Backends()[0]
	steps := []struct {
		code    int
		healthy bool
	}{
		{200, true},
		{500, true}, {500, true}, {500, false}, // Fall = 3
		{200, false}, {200, true}, // Rise = 2
		{503, true}, {200, true}, {503, true}, {503, true}, {200, true}, // failures not consecutive
	}
	for i, st := range steps {
		srv.codes <- st.code
		htWait(t, "check", func() bool { return htProbes(r, b) == uint64(i+1) })
		s := p.Status()[0]
		if s.Healthy != st.healthy || s.LastCheckOK != (st.code == 200) || s.LastCheck.IsZero() || !s.HealthCheck {
			t.Fatalf("step %d (status %d): status %+v, want healthy=%v", i, st.code, s, st.healthy)
		}
		if st.code != 200 && !strings.Contains(s.LastCheckError, "status") {
			t.Errorf("step %d: LastCheckError = %q", i, s.LastCheckError)
		}
		if !st.healthy {
			_, err := p.Pick(nil, netip.Addr{}, nil)
			if !errors.Is(err, ErrNoBackend) || errors.Is(err, ErrBackendsBusy) {
				t.Fatalf("step %d: Pick on a down backend = %v, want ErrNoBackend", i, err)
			}
		} else {
			btPick(t, p).Done(nil)
		}
	}
}

func TestHealthNewBackendDownOnFirstFailure(t *testing.T) {
	srv := newHTServer(t, true)
	r := btRegistry(t, nil)
	p := btPool(t, r, htConfig(t, "app", HealthConfig{Path: "/healthz", Interval: 10 * time.Millisecond, Timeout: 5 * time.Second}, srv))
	b := p.Backends()[0]
	if !p.Status()[0].Healthy {
		t.Fatal("new backend not optimistically healthy before its first check")
	}
	srv.codes <- 503
	htWait(t, "first check", func() bool { return htProbes(r, b) == 1 })
	if p.Status()[0].Healthy {
		t.Fatal("new backend still up after its first check failed")
	}
}

func TestHealthServerClosedAndBack(t *testing.T) {
	srv := newHTServer(t, false)
	r := btRegistry(t, nil)
	p := btPool(t, r, htConfig(t, "app", HealthConfig{Path: "/healthz", Interval: 10 * time.Millisecond, Timeout: time.Second, Fall: 2, Rise: 2}, srv))
	htWait(t, "a passing check", func() bool { s := p.Status()[0]; return s.LastCheckOK })
	addr := srv.Listener.Addr().String()
	srv.Close()
	htWait(t, "backend down", func() bool { return !p.Status()[0].Healthy })
	if s := p.Status()[0]; s.LastCheckOK || s.LastCheckError == "" {
		t.Fatalf("status after server closed = %+v", s)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", addr, err)
	}
	srv2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv2.Listener.Close()
	srv2.Listener = ln
	srv2.Start()
	defer srv2.Close()
	htWait(t, "backend up again", func() bool { return p.Status()[0].Healthy })
}

func TestHealthExpectStatus(t *testing.T) {
	for _, tc := range []struct {
		expect [2]int
		code   int
		ok     bool
	}{
		{[2]int{}, 200, true},
		{[2]int{}, 302, true},
		{[2]int{}, 399, true},
		{[2]int{}, 404, false},
		{[2]int{}, 500, false},
		{[2]int{204, 0}, 204, true},
		{[2]int{204, 0}, 200, false},
		{[2]int{200, 299}, 302, false},
		{[2]int{500, 503}, 503, true},
	} {
		srv := newHTServer(t, false)
		srv.status.Store(int32(tc.code))
		r := btRegistry(t, nil)
		p := btPool(t, r, htConfig(t, "app", HealthConfig{Path: "/h", ExpectStatus: tc.expect, Interval: time.Hour}, srv))
		htWait(t, "first check", func() bool { return !p.Status()[0].LastCheck.IsZero() })
		if s := p.Status()[0]; s.LastCheckOK != tc.ok || s.Healthy != tc.ok {
			t.Errorf("expect %v, status %d: %+v, want ok=%v", tc.expect, tc.code, s, tc.ok)
		}
		r.Close()
	}
}

// htCountingTransport counts round trips through the route's transport.
type htCountingTransport struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *htCountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func TestHealthRequest(t *testing.T) {
	srv := newHTServer(t, false)
	r := btRegistry(t, nil)
	ct := &htCountingTransport{rt: htTransport(t)}
	pc := htConfig(t, "app", HealthConfig{Path: "/healthz?full=1", Host: "app.internal", Interval: time.Hour}, srv)
	pc.Transport = ct
	btPool(t, r, pc)
	htWait(t, "a check", func() bool { return srv.hits.Load() == 1 })

	srv2 := newHTServer(t, false)
	btPool(t, r, htConfig(t, "other", HealthConfig{Path: "/", Interval: time.Hour}, srv2))
	htWait(t, "a check", func() bool { return srv2.hits.Load() == 1 })

	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv2.mu.Lock()
	defer srv2.mu.Unlock()
	if srv.hosts[0] != "app.internal" || srv.uris[0] != "/healthz?full=1" || srv.methods[0] != "GET" || srv.agents[0] != healthUserAgent {
		t.Errorf("check request: host %q uri %q method %q agent %q", srv.hosts[0], srv.uris[0], srv.methods[0], srv.agents[0])
	}
	if ct.n.Load() != 1 {
		t.Errorf("route transport used %d times, want 1", ct.n.Load())
	}
	u, _ := url.Parse(srv2.URL)
	if srv2.hosts[0] != u.Host {
		t.Errorf("default Host = %q, want %q", srv2.hosts[0], u.Host)
	}
}

func TestHealthEndlessBodyAndTimeout(t *testing.T) {
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	stuck := newHTServer(t, true) // never answers
	r := btRegistry(t, nil)
	hc := HealthConfig{Path: "/", Interval: 10 * time.Millisecond, Timeout: 300 * time.Millisecond}
	pc := PoolConfig{Route: "app", Health: hc, Transport: htTransport(t), Backends: []BackendConfig{
		{URL: btURL(t, endless.URL)}, stuck.backend(t),
	}}
	p := btPool(t, r, pc)
	bs := p.Backends()
	htWait(t, "checks", func() bool { return htProbes(r, bs[0]) >= 3 && htProbes(r, bs[1]) >= 1 })
	st := p.Status()
	if !st[0].Healthy || !st[0].LastCheckOK {
		t.Errorf("endless body: %+v (the body must be read only up to a bound)", st[0])
	}
	if st[1].Healthy || st[1].LastCheckOK || !strings.Contains(st[1].LastCheckError, "deadline") {
		t.Errorf("stuck backend: %+v", st[1])
	}
}

func TestHealthStateCarriedAcrossRebuild(t *testing.T) {
	srv := newHTServer(t, false)
	srv.status.Store(500)
	other := newHTServer(t, false)
	r := btRegistry(t, nil)
	hc := HealthConfig{Path: "/healthz", Interval: time.Hour}
	p1 := btPool(t, r, htConfig(t, "app", hc, srv))
	b1 := p1.Backends()[0]
	htWait(t, "backend down", func() bool { return !p1.Status()[0].Healthy })
	c1 := htChecker(r, b1)
	btPool(t, r, htConfig(t, "app", hc, srv)) // an identical reload

	// Same backend and health settings, a new transport and a new backend.
	p2 := btPool(t, r, htConfig(t, "app", hc, srv, other))
	b2 := p2.Backends()[0]
	if htChecker(r, b2) != c1 {
		t.Fatal("checker restarted by a rebuild that did not change the health settings")
	}
	htWait(t, "new backend's first check", func() bool { return other.hits.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("health endpoint got %d requests; an unchanged checker must not check again at once", n)
	}
	if s := p2.Status()[0]; s.Healthy || s.LastCheckOK || s.LastCheck.IsZero() {
		t.Fatalf("health state not carried: %+v", s)
	}
	if htChecker(r, b2).transport.Load().rt != p2.transport {
		t.Error("kept checker does not use the new transport")
	}

	// Changed settings restart the checker (an immediate check on the new
	// path) but keep the verdict until Rise checks pass.
	hc.Path = "/ready"
	p3 := btPool(t, r, htConfig(t, "app", hc, srv, other))
	b3 := p3.Backends()[0]
	if c := htChecker(r, b3); c == c1 || c == nil {
		t.Fatal("checker not restarted after the health settings changed")
	}
	htWait(t, "check on the new path", func() bool { return srv.hits.Load() == 2 })
	srv.mu.Lock()
	uri := srv.uris[1]
	srv.mu.Unlock()
	if uri != "/ready" {
		t.Errorf("restarted checker requested %q", uri)
	}
	htWait(t, "second check recorded", func() bool { return htProbes(r, b3) == 1 })
	if p3.Status()[0].Healthy {
		t.Error("restarted checker forgot the backend was down")
	}
	select {
	case <-c1.done:
	default:
		t.Error("old checker still running")
	}
}

func TestHealthRemovedBackendCheckerStops(t *testing.T) {
	keep, gone := newHTServer(t, false), newHTServer(t, false)
	r := btRegistry(t, nil)
	hc := HealthConfig{Path: "/healthz", Interval: 10 * time.Millisecond}
	btPool(t, r, htConfig(t, "app", hc, keep, gone))
	htWait(t, "checks on both", func() bool { return keep.hits.Load() >= 3 && gone.hits.Load() >= 3 })

	btPool(t, r, htConfig(t, "app", hc, keep))
	n := gone.hits.Load()
	k := keep.hits.Load()
	htWait(t, "the kept backend's checks", func() bool { return keep.hits.Load() >= k+5 })
	// At most one check already on the wire when Activate returned.
	if m := gone.hits.Load(); m > n+1 {
		t.Fatalf("removed backend checked %d more times after Activate", m-n)
	}
	m := gone.hits.Load()
	time.Sleep(50 * time.Millisecond)
	if gone.hits.Load() != m {
		t.Fatal("removed backend still being checked")
	}
}

func TestHealthDisabledByReload(t *testing.T) {
	srv := newHTServer(t, false)
	srv.status.Store(500)
	r := btRegistry(t, nil)
	p := btPool(t, r, htConfig(t, "app", HealthConfig{Path: "/h", Interval: 10 * time.Millisecond}, srv))
	htWait(t, "backend down", func() bool { return !p.Status()[0].Healthy })
	c := htChecker(r, p.Backends()[0])

	p2 := btPool(t, r, htConfig(t, "app", HealthConfig{}, srv))
	if s := p2.Status()[0]; !s.Healthy || s.HealthCheck {
		t.Fatalf("without active checks the backend must be up: %+v", s)
	}
	if htChecker(r, p2.Backends()[0]) != nil {
		t.Fatal("checker still registered")
	}
	select {
	case <-c.done:
	default:
		t.Fatal("checker still running after Activate returned")
	}
	btPick(t, p2).Done(nil)
}

func TestHealthCloseStopsCheckers(t *testing.T) {
	srv := newHTServer(t, false)
	r := NewRegistry(RegistryOptions{})
	hc := HealthConfig{Path: "/h", Interval: 10 * time.Millisecond}
	p := btPool(t, r, htConfig(t, "app", hc, srv))
	htWait(t, "checks", func() bool { return srv.hits.Load() >= 2 })
	c := htChecker(r, p.Backends()[0])
	r.Close()
	r.Close()
	select {
	case <-c.done:
	default:
		t.Fatal("checker running after Close")
	}
	n := srv.hits.Load()
	// Activate after Close starts nothing; pools still work.
	p2 := btPool(t, r, htConfig(t, "app", hc, srv))
	time.Sleep(50 * time.Millisecond)
	// At most one check already on the wire when Close returned.
	if srv.hits.Load() > n+1 || htChecker(r, p2.Backends()[0]) != nil {
		t.Fatal("checks after Close")
	}
	btPick(t, p2).Done(nil)
}

func TestHealthJitter(t *testing.T) {
	for range 1000 {
		d := healthJitter(10 * time.Second)
		if d < 9*time.Second || d > 11*time.Second {
			t.Fatalf("jitter %s outside 10s±10%%", d)
		}
	}
	if d := healthJitter(1); d != 1 {
		t.Fatalf("jitter of 1ns = %s", d)
	}
}

func TestHealthLogsStateChanges(t *testing.T) {
	srv := newHTServer(t, true)
	var buf htSyncBuffer
	r := NewRegistry(RegistryOptions{Logger: htLogger(&buf)})
	t.Cleanup(r.Close)
	p := btPool(t, r, htConfig(t, "shop", HealthConfig{Path: "/h", Interval: 10 * time.Millisecond, Timeout: 5 * time.Second, Rise: 1}, srv))
	b := p.Backends()[0]
	srv.codes <- 500
	htWait(t, "check", func() bool { return htProbes(r, b) == 1 })
	srv.codes <- 200
	htWait(t, "check", func() bool { return htProbes(r, b) == 2 })
	out := buf.String()
	for _, w := range []string{`msg="backend down"`, `msg="backend up"`, "route=shop", "backend=" + srv.URL, "status 500"} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %q:\n%s", w, out)
		}
	}
}

// htSyncBuffer collects log output from checker goroutines.
type htSyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *htSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *htSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func htLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
