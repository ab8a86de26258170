package reverse

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// btClock is an injectable clock for passive-ejection tests.
type btClock struct {
	mu sync.Mutex
	t  time.Time
}

func newBTClock() *btClock { return &btClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *btClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *btClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func btURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// btBackends returns n backends http://10.0.0.i:8080.
func btBackends(t testing.TB, n int) []BackendConfig {
	out := make([]BackendConfig, n)
	for i := range out {
		out[i] = BackendConfig{URL: btURL(t, fmt.Sprintf("http://10.0.0.%d:8080", i+1))}
	}
	return out
}

func btRegistry(t testing.TB, clk *btClock) *Registry {
	opts := RegistryOptions{}
	if clk != nil {
		opts.Now = clk.Now
	}
	r := NewRegistry(opts)
	t.Cleanup(r.Close)
	return r
}

// btPool builds and activates one pool.
func btPool(t testing.TB, r *Registry, pc PoolConfig) *Pool {
	t.Helper()
	if pc.Route == "" {
		pc.Route = "app"
	}
	ps, err := r.Build([]PoolConfig{pc})
	if err != nil {
		t.Fatal(err)
	}
	r.Activate(ps)
	return ps.Pool(pc.Route)
}

func btPick(t testing.TB, p *Pool, tried ...*Backend) *Backend {
	t.Helper()
	b, err := p.Pick(nil, netip.Addr{}, tried)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	return b
}

func btStatus(t testing.TB, p *Pool, b *Backend) BackendStatus {
	t.Helper()
	for _, s := range p.Status() {
		if s.URL == b.URL().String() {
			return s
		}
	}
	t.Fatalf("no status for %s", b.URL())
	return BackendStatus{}
}

func TestBuildErrors(t *testing.T) {
	tr := http.DefaultTransport
	good := func() PoolConfig {
		return PoolConfig{Route: "shop", Backends: []BackendConfig{{URL: btURL(t, "http://10.0.0.1:8080")}}}
	}
	cases := []struct {
		name   string
		mutate func(*PoolConfig)
		want   []string
	}{
		{"bad scheme", func(c *PoolConfig) { c.Backends[0].URL = btURL(t, "ftp://10.0.0.1:21") }, []string{`route "shop"`, "backend 1", "ftp://10.0.0.1:21", "scheme"}},
		{"path in URL", func(c *PoolConfig) { c.Backends[0].URL = btURL(t, "http://10.0.0.1:8080/app") }, []string{`route "shop"`, "backend 1", "/app", "path"}},
		{"query in URL", func(c *PoolConfig) { c.Backends[0].URL = btURL(t, "http://10.0.0.1:8080/?a=1") }, []string{`route "shop"`, "query"}},
		{"user info", func(c *PoolConfig) { c.Backends[0].URL = btURL(t, "http://u:p@10.0.0.1:8080") }, []string{`route "shop"`, "user info"}},
		{"no host", func(c *PoolConfig) { c.Backends[0].URL = btURL(t, "http:///x") }, []string{`route "shop"`, "backend 1"}},
		{"bad port", func(c *PoolConfig) { c.Backends[0].URL = &url.URL{Scheme: "http", Host: "10.0.0.1:99999"} }, []string{`route "shop"`, "port"}},
		{"nil URL", func(c *PoolConfig) { c.Backends[0].URL = nil }, []string{`route "shop"`, "backend 1", "missing"}},
		{"negative weight", func(c *PoolConfig) {
			c.Backends = append(c.Backends, BackendConfig{URL: btURL(t, "http://10.0.0.2:8080"), Weight: -1})
		}, []string{`route "shop"`, "backend 2", "10.0.0.2:8080", "negative weight"}},
		{"huge weight", func(c *PoolConfig) { c.Backends[0].Weight = 1 << 20 }, []string{`route "shop"`, "weight"}},
		{"negative max conns", func(c *PoolConfig) { c.Backends[0].MaxConns = -2 }, []string{`route "shop"`, "max_conns"}},
		{"duplicate backend", func(c *PoolConfig) {
			c.Backends = append(c.Backends, BackendConfig{URL: btURL(t, "HTTP://10.0.0.1:8080/")})
		}, []string{`route "shop"`, "backend 2", "same backend as backend 1"}},
		{"duplicate backend default port", func(c *PoolConfig) {
			c.Backends = []BackendConfig{{URL: btURL(t, "https://App.example")}, {URL: btURL(t, "https://app.example:443")}}
		}, []string{`route "shop"`, "same backend"}},
		{"no backends", func(c *PoolConfig) { c.Backends = nil }, []string{`route "shop"`, "no backends"}},
		{"unknown balance", func(c *PoolConfig) { c.Balance = "random" }, []string{`route "shop"`, `unknown balance "random"`}},
		{"unknown hash kind", func(c *PoolConfig) { c.Balance = "hash"; c.Hash = HashOn{Kind: "query", Name: "q"} }, []string{`route "shop"`, `hash kind "query"`}},
		{"hash header without name", func(c *PoolConfig) { c.Balance = "hash"; c.Hash = HashOn{Kind: "header"} }, []string{`route "shop"`, "header name"}},
		{"hash cookie bad name", func(c *PoolConfig) { c.Balance = "hash"; c.Hash = HashOn{Kind: "cookie", Name: "a b"} }, []string{`route "shop"`, "cookie name"}},
		{"hash settings without hash", func(c *PoolConfig) { c.Hash = HashOn{Kind: "header", Name: "X-User"} }, []string{`route "shop"`, "hash settings"}},
		{"health without transport", func(c *PoolConfig) { c.Health.Path = "/healthz" }, []string{`route "shop"`, "transport"}},
		{"health path", func(c *PoolConfig) { c.Health.Path = "healthz"; c.Transport = tr }, []string{`route "shop"`, "start with"}},
		{"health status range", func(c *PoolConfig) {
			c.Health = HealthConfig{Path: "/h", ExpectStatus: [2]int{300, 200}}
			c.Transport = tr
		}, []string{`route "shop"`, "status range"}},
		{"health negative interval", func(c *PoolConfig) {
			c.Health = HealthConfig{Path: "/h", Interval: -time.Second}
			c.Transport = tr
		}, []string{`route "shop"`, "interval"}},
		{"health negative timeout", func(c *PoolConfig) {
			c.Health = HealthConfig{Path: "/h", Timeout: -time.Second}
			c.Transport = tr
		}, []string{`route "shop"`, "timeout"}},
		{"health negative fall", func(c *PoolConfig) { c.Health = HealthConfig{Path: "/h", Fall: -1}; c.Transport = tr }, []string{`route "shop"`, "fall"}},
		{"health bad host", func(c *PoolConfig) { c.Health = HealthConfig{Path: "/h", Host: "a b"}; c.Transport = tr }, []string{`route "shop"`, "Host"}},
		{"negative cooldown", func(c *PoolConfig) { c.Passive.Cooldown = -time.Second }, []string{`route "shop"`, "cooldown"}},
		{"empty route", func(c *PoolConfig) { c.Route = "" }, []string{"empty name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := btRegistry(t, nil)
			pc := good()
			tc.mutate(&pc)
			ps, err := r.Build([]PoolConfig{pc})
			if err == nil {
				t.Fatalf("Build succeeded, want error")
			}
			if ps != nil {
				t.Errorf("Build returned a PoolSet with its error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBuildReportsEveryRouteAndChangesNothing(t *testing.T) {
	r := btRegistry(t, nil)
	p := btPool(t, r, PoolConfig{Route: "ok", Backends: btBackends(t, 2)})
	b := btPick(t, p)
	b.Done(errors.New("boom"))

	_, err := r.Build([]PoolConfig{
		{Route: "ok", Backends: btBackends(t, 1)},
		{Route: "a", Backends: []BackendConfig{{URL: btURL(t, "gopher://x:70")}}},
		{Route: "b", Backends: btBackends(t, 1), Balance: "fastest"},
		{Route: "ok", Backends: btBackends(t, 1)},
	})
	if err == nil {
		t.Fatal("Build succeeded")
	}
	for _, w := range []string{`route "a"`, `route "b"`, `route "ok": defined more than once`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	r.mu.Lock()
	n := len(r.states)
	r.mu.Unlock()
	if n != 2 {
		t.Errorf("registry holds %d states after a failed Build, want 2", n)
	}
	if s := btStatus(t, p, b); s.Failures != 1 || s.Requests != 1 {
		t.Errorf("status after failed Build = %+v", s)
	}
}

func TestBuildNormalisesBackends(t *testing.T) {
	r := btRegistry(t, nil)
	p := btPool(t, r, PoolConfig{Backends: []BackendConfig{
		{URL: btURL(t, "HTTP://Example.COM:80/")},
		{URL: btURL(t, "https://[::1]:8443"), Weight: 3, MaxConns: 7},
	}})
	bs := p.Backends()
	if got := bs[0].URL().String(); got != "http://Example.COM:80" {
		t.Errorf("URL = %q (path dropped, host kept as configured)", got)
	}
	if bs[0].Weight() != 1 || bs[1].Weight() != 3 || bs[1].MaxConns() != 7 || bs[0].MaxConns() != 0 {
		t.Errorf("weights/max conns = %d %d %d %d", bs[0].Weight(), bs[1].Weight(), bs[0].MaxConns(), bs[1].MaxConns())
	}
	if bs[0].state.key.url != "http://example.com" || bs[1].state.key.url != "https://[::1]:8443" {
		t.Errorf("keys = %q, %q", bs[0].state.key.url, bs[1].state.key.url)
	}
	if p.Route() != "app" || p.Balance() != "round_robin" || bs[0].Route() != "app" {
		t.Errorf("route/balance = %q %q", p.Route(), p.Balance())
	}
}

func TestMaxConnsAndBusy(t *testing.T) {
	r := btRegistry(t, nil)
	cfg := PoolConfig{Route: "api", Backends: btBackends(t, 2)}
	cfg.Backends[0].MaxConns = 1
	cfg.Backends[1].MaxConns = 2
	p := btPool(t, r, cfg)
	var held []*Backend
	for range 3 {
		held = append(held, btPick(t, p))
	}
	count := map[*Backend]int{}
	for _, b := range held {
		count[b]++
	}
	bs := p.Backends()
	if count[bs[0]] != 1 || count[bs[1]] != 2 {
		t.Fatalf("slots held = %d, %d; want 1, 2", count[bs[0]], count[bs[1]])
	}
	_, err := p.Pick(nil, netip.Addr{}, nil)
	if !errors.Is(err, ErrBackendsBusy) || !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Pick at cap = %v, want ErrBackendsBusy (and ErrNoBackend)", err)
	}
	if !strings.Contains(err.Error(), `route "api"`) {
		t.Errorf("error %q does not name the route", err)
	}
	if s := btStatus(t, p, bs[1]); s.InFlight != 2 || s.MaxConns != 2 {
		t.Errorf("status = %+v", s)
	}
	held[0].Done(nil)
	again := btPick(t, p)
	if again != held[0] {
		t.Errorf("after a release Pick = %s, want %s", again, held[0])
	}
	again.Done(nil)
	for _, b := range held[1:] {
		b.Done(nil)
	}
	for _, s := range p.Status() {
		if s.InFlight != 0 {
			t.Errorf("in flight after release: %+v", s)
		}
	}
}

func TestMaxConnsConcurrent(t *testing.T) {
	r := btRegistry(t, nil)
	cfg := PoolConfig{Backends: btBackends(t, 3), Balance: "least_conn"}
	for i := range cfg.Backends {
		cfg.Backends[i].MaxConns = 2
	}
	p := btPool(t, r, cfg)
	var mu sync.Mutex
	inflight := map[*Backend]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 500 {
				b, err := p.Pick(nil, netip.Addr{}, nil)
				if err != nil {
					if !errors.Is(err, ErrBackendsBusy) {
						t.Errorf("Pick: %v", err)
					}
					continue
				}
				mu.Lock()
				inflight[b]++
				if inflight[b] > 2 {
					t.Errorf("%s has %d in flight, cap 2", b, inflight[b])
				}
				mu.Unlock()
				mu.Lock()
				inflight[b]--
				mu.Unlock()
				b.Done(nil)
			}
		})
	}
	wg.Wait()
	for _, s := range p.Status() {
		if s.InFlight != 0 {
			t.Errorf("leaked slots: %+v", s)
		}
	}
}

func TestTriedExclusion(t *testing.T) {
	for _, bal := range []string{"round_robin", "weighted", "least_conn", "hash"} {
		t.Run(bal, func(t *testing.T) {
			r := btRegistry(t, nil)
			p := btPool(t, r, PoolConfig{Backends: btBackends(t, 3), Balance: bal})
			bs := p.Backends()
			client := netip.MustParseAddr("192.0.2.7")
			for range 10 {
				b, err := p.Pick(nil, client, []*Backend{bs[0], bs[2]})
				if err != nil || b != bs[1] {
					t.Fatalf("Pick with two tried = %v, %v; want %s", b, err, bs[1])
				}
				b.Done(nil)
			}
			seen := map[*Backend]bool{}
			var tried []*Backend
			for range 3 {
				b, err := p.Pick(nil, client, tried)
				if err != nil {
					t.Fatal(err)
				}
				if seen[b] {
					t.Fatalf("picked %s twice in one request", b)
				}
				seen[b] = true
				tried = append(tried, b)
				b.Done(errors.New("fail"))
			}
			_, err := p.Pick(nil, client, tried)
			if !errors.Is(err, ErrNoBackend) || errors.Is(err, ErrBackendsBusy) {
				t.Fatalf("Pick with all tried = %v, want ErrNoBackend", err)
			}
		})
	}
}

func TestTriedAcrossReload(t *testing.T) {
	// A request that started before a reload passes Backends of the old
	// pool; they still count as tried in the new one.
	r := btRegistry(t, nil)
	old := btPool(t, r, PoolConfig{Backends: btBackends(t, 2)})
	b := btPick(t, old)
	b.Done(nil)
	nw := btPool(t, r, PoolConfig{Backends: btBackends(t, 2)})
	for range 4 {
		got := btPick(t, nw, b)
		if got.URL().String() == b.URL().String() {
			t.Fatalf("picked tried backend %s from the new pool", got)
		}
		got.Done(nil)
	}
}

func TestPassiveEjectionAndCooldown(t *testing.T) {
	clk := newBTClock()
	r := btRegistry(t, clk)
	p := btPool(t, r, PoolConfig{Backends: btBackends(t, 2), Passive: PassiveConfig{Failures: 3, Cooldown: 10 * time.Second}})
	bs := p.Backends()
	a, b := bs[0], bs[1]

	// Failures interrupted by a success do not eject.
	for _, err := range []error{errors.New("e1"), errors.New("e2"), nil, errors.New("e3"), errors.New("e4")} {
		btPick(t, p, b)
		a.Done(err)
	}
	if s := btStatus(t, p, a); s.Ejected || s.ConsecutiveFailures != 2 || s.Failures != 4 || s.LastError != "e4" || !s.LastErrorAt.Equal(clk.Now()) {
		t.Fatalf("status = %+v", s)
	}
	btPick(t, p, b)
	a.Done(errors.New("e5"))
	s := btStatus(t, p, a)
	if !s.Ejected || !s.EjectedUntil.Equal(clk.Now().Add(10*time.Second)) {
		t.Fatalf("after 3 consecutive failures status = %+v, want ejected for 10s", s)
	}
	for range 6 {
		got := btPick(t, p)
		if got != b {
			t.Fatalf("picked ejected backend %s", got)
		}
		got.Done(nil)
	}
	clk.Advance(9 * time.Second)
	if got := btPick(t, p); got != b {
		t.Fatalf("picked %s before the cooldown ended", got)
	} else {
		got.Done(nil)
	}
	clk.Advance(time.Second)
	seen := map[*Backend]int{}
	for range 4 {
		got := btPick(t, p)
		seen[got]++
		got.Done(nil)
	}
	if seen[a] != 2 || seen[b] != 2 {
		t.Fatalf("after the cooldown picks = %v, want both backends twice", seen)
	}
	if s := btStatus(t, p, a); s.Ejected {
		t.Fatalf("still ejected after cooldown: %+v", s)
	}
}

func TestPassiveProbationAfterCooldown(t *testing.T) {
	clk := newBTClock()
	r := btRegistry(t, clk)
	p := btPool(t, r, PoolConfig{Backends: btBackends(t, 2), Passive: PassiveConfig{Failures: 2, Cooldown: time.Minute}})
	a := p.Backends()[0]
	for range 2 {
		btPick(t, p, p.Backends()[1])
		a.Done(errors.New("down"))
	}
	clk.Advance(time.Minute)
	if s := btStatus(t, p, a); s.Ejected {
		t.Fatal("still ejected")
	}
	// Back on probation: the first failure ejects again.
	btPick(t, p, p.Backends()[1])
	a.Done(errors.New("still down"))
	if s := btStatus(t, p, a); !s.Ejected {
		t.Fatalf("one failure after the cooldown did not eject again: %+v", s)
	}
	// A success resets the run; the ejection itself runs its course.
	clk.Advance(time.Minute)
	btPick(t, p, p.Backends()[1])
	a.Done(nil)
	btPick(t, p, p.Backends()[1])
	a.Done(errors.New("blip"))
	if s := btStatus(t, p, a); s.Ejected {
		t.Fatalf("one failure after a success ejected: %+v", s)
	}
}

func TestPassiveDisabled(t *testing.T) {
	r := btRegistry(t, newBTClock())
	p := btPool(t, r, PoolConfig{Backends: btBackends(t, 1), Passive: PassiveConfig{Failures: -1}})
	for range 20 {
		b := btPick(t, p)
		b.Done(errors.New("nope"))
	}
	if s := p.Status()[0]; s.Ejected || s.Failures != 20 || s.Requests != 20 {
		t.Fatalf("status = %+v", s)
	}
}

func TestAllPassivelyEjectedFallsBackToOldest(t *testing.T) {
	clk := newBTClock()
	r := btRegistry(t, clk)
	p := btPool(t, r, PoolConfig{Route: "web", Backends: btBackends(t, 3), Passive: PassiveConfig{Failures: 1, Cooldown: time.Minute}})
	bs := p.Backends()
	// Eject in the order 1, 0, 2.
	for _, i := range []int{1, 0, 2} {
		btPick(t, p, bs[(i+1)%3], bs[(i+2)%3])
		bs[i].Done(errors.New("x"))
		clk.Advance(time.Second)
	}
	for _, s := range p.Status() {
		if !s.Ejected {
			t.Fatalf("not ejected: %+v", s)
		}
	}
	got := btPick(t, p)
	if got != bs[1] {
		t.Fatalf("fallback picked %s, want the one ejected longest ago %s", got, bs[1])
	}
	// It fails again: its ejection restarts, so the next fallback is bs[0].
	got.Done(errors.New("again"))
	if got = btPick(t, p); got != bs[0] {
		t.Fatalf("second fallback picked %s, want %s", got, bs[0])
	}
	// It works: it stays ejected until its cooldown but remains the oldest.
	got.Done(nil)
	if got = btPick(t, p); got != bs[0] {
		t.Fatalf("third fallback picked %s, want %s", got, bs[0])
	}
	got.Done(nil)
	// Tried backends are still skipped.
	if got = btPick(t, p, bs[0]); got != bs[2] {
		t.Fatalf("fallback with tried picked %s, want %s", got, bs[2])
	}
	got.Done(nil)

	// Actively down backends are never a fallback.
	bs[0].state.healthy.Store(false)
	bs[2].state.healthy.Store(false)
	if got = btPick(t, p); got != bs[1] {
		t.Fatalf("fallback picked %s, want %s", got, bs[1])
	}
	got.Done(nil)
	bs[1].state.healthy.Store(false)
	_, err := p.Pick(nil, netip.Addr{}, nil)
	if !errors.Is(err, ErrNoBackend) || errors.Is(err, ErrBackendsBusy) || !strings.Contains(err.Error(), `route "web"`) {
		t.Fatalf("all down: Pick = %v, want ErrNoBackend naming the route", err)
	}
}

func TestAllActivelyDown(t *testing.T) {
	for _, bal := range []string{"round_robin", "weighted", "least_conn", "hash"} {
		r := btRegistry(t, nil)
		p := btPool(t, r, PoolConfig{Backends: btBackends(t, 3), Balance: bal})
		for _, b := range p.Backends() {
			b.state.healthy.Store(false)
		}
		if _, err := p.Pick(nil, netip.Addr{}, nil); !errors.Is(err, ErrNoBackend) || errors.Is(err, ErrBackendsBusy) {
			t.Errorf("%s: Pick = %v, want ErrNoBackend", bal, err)
		}
		p.Backends()[2].state.healthy.Store(true)
		for range 5 {
			if b := btPick(t, p); b != p.Backends()[2] {
				t.Errorf("%s: picked down backend %s", bal, b)
			} else {
				b.Done(nil)
			}
		}
	}
}

func TestEjectedAndFullIsBusy(t *testing.T) {
	r := btRegistry(t, newBTClock())
	cfg := PoolConfig{Backends: btBackends(t, 2), Passive: PassiveConfig{Failures: 1}}
	cfg.Backends[0].MaxConns = 1
	cfg.Backends[1].MaxConns = 1
	p := btPool(t, r, cfg)
	bs := p.Backends()
	btPick(t, p, bs[1])
	bs[0].Done(errors.New("x")) // bs[0] ejected
	held := btPick(t, p)        // bs[1] full
	if held != bs[1] {
		t.Fatalf("picked %s", held)
	}
	// The healthy backend is only full: the caller is told "busy" rather
	// than being sent to the ejected one.
	if _, err := p.Pick(nil, netip.Addr{}, nil); !errors.Is(err, ErrBackendsBusy) {
		t.Fatalf("Pick = %v, want ErrBackendsBusy", err)
	}
	// Once it is tried too, the ejected backend is the fallback.
	fb := btPick(t, p, bs[1])
	if fb != bs[0] {
		t.Fatalf("fallback %s", fb)
	}
	if _, err := p.Pick(nil, netip.Addr{}, nil); !errors.Is(err, ErrBackendsBusy) {
		t.Fatalf("Pick = %v, want ErrBackendsBusy", err)
	}
	fb.Done(nil)
	held.Done(nil)
}

func TestDoneWithoutPickDoesNotUnderflow(t *testing.T) {
	r := btRegistry(t, nil)
	p := btPool(t, r, PoolConfig{Backends: btBackends(t, 1)})
	b := p.Backends()[0]
	b.Done(nil)
	if s := p.Status()[0]; s.InFlight != 0 {
		t.Fatalf("in flight = %d", s.InFlight)
	}
	b = btPick(t, p)
	if s := p.Status()[0]; s.InFlight != 1 || s.Requests != 1 {
		t.Fatalf("status = %+v", s)
	}
	b.Done(errors.New(strings.Repeat("é", 1000)))
	if s := p.Status()[0]; len(s.LastError) > backendLastErrorMaxLength+4 || !strings.HasSuffix(s.LastError, "…") {
		t.Fatalf("last error not bounded: %d bytes", len(s.LastError))
	}
}

func TestStateCarriedAcrossRebuild(t *testing.T) {
	clk := newBTClock()
	r := btRegistry(t, clk)
	cfg := func(urls ...string) PoolConfig {
		pc := PoolConfig{Route: "app", Passive: PassiveConfig{Failures: 2, Cooldown: time.Minute}}
		for _, u := range urls {
			pc.Backends = append(pc.Backends, BackendConfig{URL: btURL(t, u)})
		}
		return pc
	}
	p1 := btPool(t, r, cfg("http://a:1", "http://b:1"))
	a1 := p1.Backends()[0]
	held := btPick(t, p1, p1.Backends()[1]) // a1 in flight across the reload
	for range 2 {
		btPick(t, p1, p1.Backends()[1])
		a1.Done(errors.New("bad"))
	}

	// Same route and backend (spelled differently), plus a new one; b gone.
	p2 := btPool(t, r, cfg("HTTP://A:1/", "http://c:1"))
	a2 := p2.Backends()[0]
	if a2 == a1 || a2.state != a1.state {
		t.Fatal("backend state not shared across the rebuild")
	}
	s := btStatus(t, p2, a2)
	if !s.Ejected || s.Requests != 3 || s.Failures != 2 || s.InFlight != 1 || s.LastError != "bad" {
		t.Fatalf("carried status = %+v", s)
	}
	held.Done(nil) // released through the old Backend
	if s := btStatus(t, p2, a2); s.InFlight != 0 {
		t.Fatalf("in flight after release via old pool = %d", s.InFlight)
	}
	r.mu.Lock()
	_, hasB := r.states[backendKey{"app", "http://b:1"}]
	r.mu.Unlock()
	if hasB {
		t.Error("state of a removed backend kept")
	}

	// The same URL under another route is another backend.
	ps, err := r.Build([]PoolConfig{cfg("http://a:1"), func() PoolConfig { c := cfg("http://a:1"); c.Route = "other"; return c }()})
	if err != nil {
		t.Fatal(err)
	}
	if ps.Pool("other").Backends()[0].state == a1.state || ps.Pool("app").Backends()[0].state != a1.state {
		t.Error("state keyed wrongly by route")
	}
	if ps.Pool("missing") != nil || (*PoolSet)(nil).Pool("app") != nil || len(ps.Pools()) != 2 {
		t.Error("PoolSet lookups")
	}

	// A removed backend that comes back starts afresh.
	btPool(t, r, cfg("http://c:1"))
	p4 := btPool(t, r, cfg("http://a:1"))
	if s := p4.Status()[0]; s.Requests != 0 || s.Failures != 0 || s.Ejected {
		t.Fatalf("re-added backend kept old state: %+v", s)
	}
}

func TestBuildWithoutActivateSharesState(t *testing.T) {
	r := btRegistry(t, nil)
	ps1, err := r.Build([]PoolConfig{{Route: "x", Backends: btBackends(t, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ps2, err := r.Build([]PoolConfig{{Route: "x", Backends: btBackends(t, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if ps1.Pool("x").Backends()[0].state != ps2.Pool("x").Backends()[0].state {
		t.Fatal("two Builds before Activate made two states for one backend")
	}
	r.Activate(ps2)
	r.Activate(ps2)
	r.Activate(nil)
	r.mu.Lock()
	n := len(r.states)
	r.mu.Unlock()
	if n != 0 {
		t.Fatalf("Activate(nil) left %d states", n)
	}
}

func TestActivateForeignPoolSetPanics(t *testing.T) {
	r1, r2 := btRegistry(t, nil), btRegistry(t, nil)
	ps, err := r1.Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	r2.Activate(ps)
}
