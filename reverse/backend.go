package reverse

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNoBackend is returned (wrapped with the route name) by Pool.Pick when no
// backend of the route can take the attempt: every backend is down by active
// health checks, already tried for this request, or at its MaxConns cap.
// The proxy normally answers 503 Service Unavailable (or 502 with the last
// backend error when some backend was tried).
var ErrNoBackend = errors.New("no backend available")

// ErrBackendsBusy is returned (wrapped with the route name) by Pool.Pick when
// backends are up but every one that could be used is at its MaxConns cap.
// It wraps ErrNoBackend, so errors.Is(err, ErrNoBackend) holds for it too;
// test for ErrBackendsBusy first to show a "too busy" page.
var ErrBackendsBusy = fmt.Errorf("%w: all backends are at their connection limit", ErrNoBackend)

// Limits and defaults of backend and passive health settings.
const (
	backendMaxWeight          = 10000
	backendDefaultFailures    = 3
	backendDefaultCooldown    = 30 * time.Second
	backendLastErrorMaxLength = 512
)

// BackendConfig is one backend of a route.
type BackendConfig struct {
	// URL is the backend's base URL: scheme http or https and a host with
	// an optional port (the scheme's default port when absent). The path
	// must be empty or "/"; user info, query and fragment are refused. It
	// must not be nil. Build copies it; later changes have no effect.
	URL *url.URL
	// Weight is the backend's share for "weighted" balancing, its number of
	// points on the "hash" ring, and a divisor of its load for "least_conn".
	// Zero means 1; negative or above 10000 is an error. "round_robin"
	// ignores it.
	Weight int
	// MaxConns caps concurrent requests (attempts between Pick and Done) to
	// this backend across all pools sharing its state. Zero means no cap;
	// negative is an error.
	MaxConns int
}

// PassiveConfig configures passive health: ejecting a backend after requests
// to it fail. The zero value means 3 failures and a 30s cooldown.
type PassiveConfig struct {
	// Failures is the number of consecutive failed attempts (Done with a
	// non-nil error) that ejects a backend. Zero means 3; negative disables
	// passive ejection (failures are still counted and shown).
	Failures int
	// Cooldown is how long an ejected backend stays out after its last
	// failure. Zero means 30s; negative is an error.
	Cooldown time.Duration
}

// Backend is one backend of a Pool as compiled by Registry.Build. Its
// health, counters and in-flight count live in state that the Registry
// carries across reloads, so a Backend of an old PoolSet and the Backend of
// the same route and URL in a new PoolSet share them. All methods are safe
// for concurrent use.
type Backend struct {
	pool     *Pool
	state    *backendState
	url      *url.URL
	weight   int
	maxConns int64
}

// backendKey identifies a backend's carried state: route name and canonical
// URL (lower-case scheme and host, default port removed).
type backendKey struct {
	route string
	url   string
}

// backendState is the part of a backend that survives reloads.
type backendState struct {
	key backendKey
	log *slog.Logger

	healthy      atomic.Bool  // active health: false once checks failed Fall times
	inflight     atomic.Int64 // slots taken by Pick and not yet released by Done
	requests     atomic.Uint64
	failures     atomic.Uint64
	consecFails  atomic.Int64 // consecutive failed attempts (passive)
	ejectedUntil atomic.Int64 // UnixNano; 0 means not ejected
	ejectedAt    atomic.Int64 // UnixNano of the failure that (re)started the ejection

	mu           sync.Mutex
	lastErr      string
	lastErrAt    time.Time
	lastCheck    time.Time
	lastCheckOK  bool
	lastCheckErr string
	everChecked  bool

	// checker is the running active health checker; guarded by Registry.mu.
	checker *healthChecker
}

func newBackendState(key backendKey, log *slog.Logger) *backendState {
	st := &backendState{key: key, log: log.With("route", key.route, "backend", key.url)}
	st.healthy.Store(true)
	return st
}

// setHealthy records the active health of the backend and logs a change.
func (st *backendState) setHealthy(up bool, reason string) {
	if st.healthy.Swap(up) == up {
		return
	}
	if up {
		st.log.Info("backend up", "reason", reason)
	} else {
		st.log.Warn("backend down", "reason", reason)
	}
}

// URL returns the backend's base URL (scheme and host, empty path). The
// returned URL is shared: callers must not modify it.
func (b *Backend) URL() *url.URL { return b.url }

// Route returns the name of the route the backend belongs to.
func (b *Backend) Route() string { return b.state.key.route }

// Weight returns the backend's effective weight (1 when configured as 0).
func (b *Backend) Weight() int { return b.weight }

// MaxConns returns the backend's concurrency cap; 0 means no cap.
func (b *Backend) MaxConns() int { return int(b.maxConns) }

// String returns the route and URL, for logs.
func (b *Backend) String() string { return b.state.key.route + " " + b.url.String() }

// acquire takes an in-flight slot if the backend is under its cap.
func (b *Backend) acquire() bool {
	st := b.state
	if b.maxConns <= 0 {
		st.inflight.Add(1)
		return true
	}
	for {
		n := st.inflight.Load()
		if n >= b.maxConns {
			return false
		}
		if st.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// hasSlot reports whether the backend is under its cap right now.
func (b *Backend) hasSlot() bool {
	return b.maxConns <= 0 || b.state.inflight.Load() < b.maxConns
}

// Done releases the slot taken by the Pick that returned b and reports the
// attempt's outcome for passive health. It must be called exactly once per
// successful Pick. A nil err is a success: it resets the consecutive-failure
// count (an ongoing ejection still runs to the end of its cooldown). A
// non-nil err is a failure: it is counted, kept as the last error with the
// time, and the PassiveConfig.Failures-th consecutive failure ejects the
// backend for Cooldown. While ejected, or after the cooldown until the next
// success, every further failure restarts the cooldown. Callers should pass
// nil, not an error, when the client went away (context.Canceled caused by
// the client) since that says nothing about the backend.
func (b *Backend) Done(err error) {
	st := b.state
	for {
		n := st.inflight.Load()
		if n <= 0 {
			st.log.Error("Backend.Done called without a matching Pick")
			break
		}
		if st.inflight.CompareAndSwap(n, n-1) {
			break
		}
	}
	if err == nil {
		if st.consecFails.Load() != 0 {
			st.consecFails.Store(0)
		}
		return
	}
	p := b.pool
	now := p.reg.now()
	msg := err.Error()
	if len(msg) > backendLastErrorMaxLength {
		msg = strings.ToValidUTF8(msg[:backendLastErrorMaxLength], "") + "…"
	}
	st.failures.Add(1)

	st.mu.Lock()
	st.lastErr, st.lastErrAt = msg, now
	n := st.consecFails.Add(1)
	ejected := false
	if p.passiveFailures > 0 && n >= int64(p.passiveFailures) {
		ns := now.UnixNano()
		until := st.ejectedUntil.Load()
		ejected = until == 0 || ns >= until
		st.ejectedAt.Store(ns)
		st.ejectedUntil.Store(ns + int64(p.passiveCooldown))
	}
	st.mu.Unlock()

	if ejected {
		st.log.Warn("backend ejected", "consecutive_failures", n,
			"cooldown", p.passiveCooldown.String(), "error", msg)
	}
}

// ejectedNow reports whether the backend is passively ejected at time now
// (UnixNano). An ejection whose cooldown has passed is cleared and logged.
func (st *backendState) ejectedNow(now int64) bool {
	until := st.ejectedUntil.Load()
	if until == 0 {
		return false
	}
	if now < until {
		return true
	}
	if st.ejectedUntil.CompareAndSwap(until, 0) {
		st.log.Info("backend ejection ended", "reason", "cooldown elapsed")
	}
	return false
}

// BackendStatus is a snapshot of one backend for status pages and metrics.
// Times are zero when the event never happened.
type BackendStatus struct {
	// Route and URL identify the backend.
	Route string `json:"route"`
	URL   string `json:"url"`
	// Healthy is the active health-check verdict; always true when the
	// route has no active checks.
	Healthy bool `json:"healthy"`
	// Ejected is true while the backend is passively ejected (until
	// EjectedUntil).
	Ejected      bool      `json:"ejected"`
	EjectedUntil time.Time `json:"ejected_until"`
	// InFlight is the number of attempts between Pick and Done.
	InFlight int `json:"in_flight"`
	// MaxConns is the cap on InFlight; 0 means no cap.
	MaxConns int `json:"max_conns"`
	// Weight is the effective weight (never 0).
	Weight int `json:"weight"`
	// Requests counts attempts picked; Failures counts attempts reported
	// failed; both since the backend first appeared (they survive reloads).
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
	// ConsecutiveFailures is the current run of failed attempts.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastError and LastErrorAt are the last failed attempt's error.
	LastError   string    `json:"last_error"`
	LastErrorAt time.Time `json:"last_error_at"`
	// HealthCheck tells whether active checks are configured; LastCheck,
	// LastCheckOK and LastCheckError describe the last one completed.
	HealthCheck    bool      `json:"health_check"`
	LastCheck      time.Time `json:"last_check"`
	LastCheckOK    bool      `json:"last_check_ok"`
	LastCheckError string    `json:"last_check_error"`
}

// Status returns a snapshot of the pool's backends in configuration order.
func (p *Pool) Status() []BackendStatus {
	now := p.reg.now()
	out := make([]BackendStatus, len(p.backends))
	for i, b := range p.backends {
		st := b.state
		s := BackendStatus{
			Route:               st.key.route,
			URL:                 b.url.String(),
			Healthy:             st.healthy.Load(),
			InFlight:            int(st.inflight.Load()),
			MaxConns:            int(b.maxConns),
			Weight:              b.weight,
			Requests:            st.requests.Load(),
			Failures:            st.failures.Load(),
			ConsecutiveFailures: int(st.consecFails.Load()),
			HealthCheck:         p.healthOn,
		}
		if until := st.ejectedUntil.Load(); until != 0 && now.UnixNano() < until {
			s.Ejected = true
			s.EjectedUntil = time.Unix(0, until)
		}
		st.mu.Lock()
		s.LastError, s.LastErrorAt = st.lastErr, st.lastErrAt
		s.LastCheck, s.LastCheckOK, s.LastCheckError = st.lastCheck, st.lastCheckOK, st.lastCheckErr
		st.mu.Unlock()
		out[i] = s
	}
	return out
}

// RegistryOptions configures a Registry. The zero value is usable.
type RegistryOptions struct {
	// Now is the clock for passive ejection and status times. Nil means
	// time.Now.
	Now func() time.Time
	// Logger receives backend state changes (up, down, ejected). Nil
	// discards them.
	Logger *slog.Logger
}

// Registry owns backend state across reloads: health, passive-failure
// counters, in-flight counts, last errors and the active health checkers.
// The zero value is not usable; use NewRegistry. It is safe for concurrent
// use.
type Registry struct {
	now func() time.Time
	log *slog.Logger

	mu     sync.Mutex
	states map[backendKey]*backendState
	closed bool
	wg     sync.WaitGroup
}

// NewRegistry returns an empty Registry.
func NewRegistry(opts RegistryOptions) *Registry {
	r := &Registry{now: opts.Now, log: opts.Logger, states: make(map[backendKey]*backendState)}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// PoolSet is the compiled pools of one complete configuration, returned by
// Registry.Build. It is immutable and safe for concurrent use.
type PoolSet struct {
	reg   *Registry
	pools map[string]*Pool
	order []*Pool
}

// Pool returns the pool of the named route, or nil if there is none (or ps
// is nil).
func (ps *PoolSet) Pool(route string) *Pool {
	if ps == nil {
		return nil
	}
	return ps.pools[route]
}

// Pools returns the pools in configuration order. Nil ps has none.
func (ps *PoolSet) Pools() []*Pool {
	if ps == nil {
		return nil
	}
	return append([]*Pool(nil), ps.order...)
}

// Build compiles the pools of a complete new configuration, one per
// PoolConfig. It changes no running state: backends whose route and URL
// already exist share their state (health, counters, in-flight count) with
// the new pools, but health checkers are only started, kept or stopped by
// Activate. On an invalid configuration Build returns every problem found
// (each naming the route and backend) joined in one error, and no PoolSet.
// A nil or empty cfgs gives an empty PoolSet.
func (r *Registry) Build(cfgs []PoolConfig) (*PoolSet, error) {
	var errs []error
	specs := make([]*poolSpec, 0, len(cfgs))
	seen := make(map[string]bool, len(cfgs))
	for i := range cfgs {
		spec, err := compilePoolSpec(&cfgs[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[spec.route] {
			errs = append(errs, fmt.Errorf("route %q: defined more than once", spec.route))
			continue
		}
		seen[spec.route] = true
		specs = append(specs, spec)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	ps := &PoolSet{reg: r, pools: make(map[string]*Pool, len(specs)), order: make([]*Pool, 0, len(specs))}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, spec := range specs {
		p := newPool(r, spec)
		for i := range spec.backends {
			bs := &spec.backends[i]
			st := r.states[bs.key]
			if st == nil {
				// Registered now so that a second Build before Activate
				// shares it; Activate prunes states no active set uses.
				st = newBackendState(bs.key, r.log)
				r.states[bs.key] = st
			}
			p.backends[i] = &Backend{pool: p, state: st, url: bs.url, weight: bs.weight, maxConns: int64(bs.maxConns)}
		}
		p.finish()
		ps.pools[spec.route] = p
		ps.order = append(ps.order, p)
	}
	return ps, nil
}

// Activate makes ps the running configuration: it starts active health
// checkers for backends that are new or whose health settings changed,
// keeps running ones (with their counts) for unchanged backends, updating
// the transport they use, stops the checkers of backends no longer present
// (waiting for them to exit) and forgets those backends' state. A backend
// whose route no longer has active checks is marked healthy. ps must come
// from r.Build; nil means an empty configuration (everything stops).
// Activating the most recent PoolSet is the intended use; activating the
// same one twice is harmless. After Close, Activate starts no checkers.
func (r *Registry) Activate(ps *PoolSet) {
	if ps != nil && ps.reg != r {
		panic("reverse: Registry.Activate with a PoolSet built by another Registry")
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	want := make(map[*backendState]*Backend)
	if ps != nil {
		for _, p := range ps.order {
			for _, b := range p.backends {
				want[b.state] = b
			}
		}
	}
	var stopping, starting []*healthChecker
	var enable []*backendState
	for key, st := range r.states {
		if _, ok := want[st]; ok {
			continue
		}
		if st.checker != nil {
			st.checker.cancel()
			stopping = append(stopping, st.checker)
			st.checker = nil
		}
		delete(r.states, key)
	}
	for st, b := range want {
		r.states[st.key] = st
		p := b.pool
		if !p.healthOn || r.closed {
			if st.checker != nil {
				st.checker.cancel()
				stopping = append(stopping, st.checker)
				st.checker = nil
			}
			if !p.healthOn {
				enable = append(enable, st)
			}
			continue
		}
		if c := st.checker; c != nil && c.settings == p.health {
			c.transport.Store(&healthTransport{rt: p.transport})
			continue
		}
		if st.checker != nil {
			st.checker.cancel()
			stopping = append(stopping, st.checker)
		}
		st.checker = newHealthChecker(r, st, b)
		starting = append(starting, st.checker)
	}
	for _, c := range stopping {
		<-c.done
	}
	for _, st := range enable {
		st.setHealthy(true, "active health checks disabled")
	}
	for _, c := range starting {
		r.wg.Add(1)
		go c.run()
	}
}

// Close stops every health checker and waits for them to exit. Pools stay
// usable (health frozen, passive ejection still works); a later Activate
// starts no checkers. Close is idempotent.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	for _, st := range r.states {
		if st.checker != nil {
			st.checker.cancel()
			st.checker = nil
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// backendSpec is a validated BackendConfig.
type backendSpec struct {
	key      backendKey
	url      *url.URL
	weight   int
	maxConns int
}

// compileBackendSpec validates one backend of route.
func compileBackendSpec(route string, i int, bc *BackendConfig) (backendSpec, error) {
	fail := func(format string, args ...any) (backendSpec, error) {
		name := "<nil>"
		if bc.URL != nil {
			name = bc.URL.Redacted()
		}
		return backendSpec{}, fmt.Errorf("route %q: backend %d (%s): %s", route, i+1, name, fmt.Sprintf(format, args...))
	}
	u := bc.URL
	if u == nil {
		return fail("URL is missing")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return fail("scheme %q not supported (want http or https)", u.Scheme)
	case u.Opaque != "":
		return fail("URL must be scheme://host[:port]")
	case u.User != nil:
		return fail("user info in a backend URL is not supported")
	case u.Path != "" && u.Path != "/":
		return fail("path %q not allowed: a backend URL's path must be empty or \"/\"", u.Path)
	case u.RawQuery != "" || u.ForceQuery:
		return fail("query not allowed in a backend URL")
	case u.Fragment != "":
		return fail("fragment not allowed in a backend URL")
	case u.Hostname() == "":
		return fail("host is missing")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fail("invalid port %q", port)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fail("empty port")
	}
	if bc.Weight < 0 {
		return fail("negative weight %d", bc.Weight)
	}
	if bc.Weight > backendMaxWeight {
		return fail("weight %d above the maximum %d", bc.Weight, backendMaxWeight)
	}
	if bc.MaxConns < 0 {
		return fail("negative max_conns %d", bc.MaxConns)
	}
	w := bc.Weight
	if w == 0 {
		w = 1
	}
	clean := &url.URL{Scheme: scheme, Host: u.Host}
	return backendSpec{
		key:      backendKey{route: route, url: backendCanonicalURL(scheme, u)},
		url:      clean,
		weight:   w,
		maxConns: bc.MaxConns,
	}, nil
}

// backendCanonicalURL is scheme://host[:port] with the host lower-cased and
// the scheme's default port dropped, so equivalent spellings share state.
func backendCanonicalURL(scheme string, u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// compilePassive applies the defaults of PassiveConfig.
func compilePassive(route string, pc PassiveConfig) (failures int, cooldown time.Duration, err error) {
	failures, cooldown = pc.Failures, pc.Cooldown
	if failures == 0 {
		failures = backendDefaultFailures
	}
	if cooldown < 0 {
		return 0, 0, fmt.Errorf("route %q: passive health: negative cooldown %s", route, cooldown)
	}
	if cooldown == 0 {
		cooldown = backendDefaultCooldown
	}
	return failures, cooldown, nil
}

// backendHTTPHeaderName is the canonical form of a header name, or "" if it
// is not a valid token.
func backendHTTPHeaderName(name string) string {
	if name == "" {
		return ""
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return ""
		}
	}
	return http.CanonicalHeaderKey(name)
}
