package reverse

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HashOn selects the key of "hash" balancing. The zero value hashes on the
// client address.
type HashOn struct {
	// Kind is "client" (the client's IP address; "" means the same),
	// "header" (the first value of header Name) or "cookie" (the value of
	// cookie Name). When the header or cookie is missing or empty, the
	// client address is used.
	Kind string
	// Name is the header or cookie name; required for "header" and
	// "cookie", must be empty for "client".
	Name string
}

// PoolConfig is one route's backends and how to balance and health-check
// them.
type PoolConfig struct {
	// Route names the route; required and unique in a configuration. With
	// a backend's URL it identifies the backend state kept across reloads.
	Route string
	// Backends lists the backends; at least one is required and URLs must
	// be distinct (after canonicalisation).
	Backends []BackendConfig
	// Balance is "round_robin" ("" means the same), "weighted",
	// "least_conn" or "hash".
	Balance string
	// Hash selects the key for "hash"; must be zero for other methods.
	Hash HashOn
	// Health configures active health checks; the zero value disables them.
	Health HealthConfig
	// Passive configures passive ejection; the zero value means 3
	// consecutive failures eject for 30s.
	Passive PassiveConfig
	// Transport carries the active health checks (the route's transport to
	// its backends, with its TLS settings and the gateway's dialer). It is
	// required when Health.Path is set and unused otherwise. A change of
	// Transport alone does not restart a backend's checker: the running
	// checker switches to the new one.
	Transport http.RoundTripper
}

// Balancing methods.
const (
	balanceRoundRobin uint8 = iota
	balanceWeighted
	balanceLeastConn
	balanceHash
)

// Hash key sources.
const (
	hashKeyClient uint8 = iota
	hashKeyHeader
	hashKeyCookie
)

// Hash ring sizing: ringPointsPerWeight points per unit of weight, scaled
// down proportionally when the ring would exceed ringMaxPoints.
const (
	ringPointsPerWeight = 128
	ringMaxPoints       = 1 << 17
)

// poolSpec is a validated PoolConfig.
type poolSpec struct {
	route       string
	balance     uint8
	balanceName string
	hashKind    uint8
	hashName    string
	backends    []backendSpec
	healthOn    bool
	health      healthSettings
	transport   http.RoundTripper
	failures    int
	cooldown    time.Duration
}

// compilePoolSpec validates a PoolConfig and applies its defaults.
func compilePoolSpec(pc *PoolConfig) (*poolSpec, error) {
	route := pc.Route
	if route == "" {
		return nil, errors.New("route with an empty name")
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("route %q: %s", route, fmt.Sprintf(format, args...)))
	}
	spec := &poolSpec{route: route, balanceName: pc.Balance}
	switch pc.Balance {
	case "", "round_robin":
		spec.balance, spec.balanceName = balanceRoundRobin, "round_robin"
	case "weighted":
		spec.balance = balanceWeighted
	case "least_conn":
		spec.balance = balanceLeastConn
	case "hash":
		spec.balance = balanceHash
	default:
		bad("unknown balance %q (want round_robin, weighted, least_conn or hash)", pc.Balance)
	}
	if spec.balance == balanceHash {
		switch pc.Hash.Kind {
		case "", "client":
			spec.hashKind = hashKeyClient
			if pc.Hash.Name != "" {
				bad("hash on client takes no name (got %q)", pc.Hash.Name)
			}
		case "header":
			spec.hashKind = hashKeyHeader
			spec.hashName = backendHTTPHeaderName(pc.Hash.Name)
			if spec.hashName == "" {
				bad("hash on header needs a valid header name (got %q)", pc.Hash.Name)
			}
		case "cookie":
			spec.hashKind = hashKeyCookie
			spec.hashName = pc.Hash.Name
			if !hashValidCookieName(spec.hashName) {
				bad("hash on cookie needs a valid cookie name (got %q)", pc.Hash.Name)
			}
		default:
			bad("unknown hash kind %q (want client, header or cookie)", pc.Hash.Kind)
		}
	} else if pc.Hash != (HashOn{}) {
		bad("hash settings given but balance is %q, not \"hash\"", spec.balanceName)
	}

	if len(pc.Backends) == 0 {
		bad("no backends")
	}
	seen := make(map[string]int, len(pc.Backends))
	for i := range pc.Backends {
		bs, err := compileBackendSpec(route, i, &pc.Backends[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if j, dup := seen[bs.key.url]; dup {
			bad("backend %d (%s): same backend as backend %d", i+1, bs.url, j+1)
			continue
		}
		seen[bs.key.url] = i
		spec.backends = append(spec.backends, bs)
	}

	var err error
	if spec.healthOn, spec.health, err = compileHealth(route, pc.Health, pc.Transport); err != nil {
		errs = append(errs, err)
	}
	spec.transport = pc.Transport
	if spec.failures, spec.cooldown, err = compilePassive(route, pc.Passive); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return spec, nil
}

// hashValidCookieName reports whether name is a cookie-name token.
func hashValidCookieName(name string) bool {
	return backendHTTPHeaderName(name) != ""
}

// Pool is the compiled backends of one route and the balancing state. It is
// created by Registry.Build and safe for concurrent use.
//
// Choice when no backend is eligible: backends down by active health checks
// are never used, so if every backend not yet tried is actively down, Pick
// returns ErrNoBackend (the proxy answers 503). Passive ejection is softer:
// when every backend that is actively up (and not tried) is passively
// ejected, Pick uses the one ejected longest ago, as nginx does, so that a
// burst of errors cannot take a whole route out for the cooldown.
type Pool struct {
	reg         *Registry
	route       string
	balance     uint8
	balanceName string
	backends    []*Backend

	rr atomic.Uint64 // rotation for round_robin and least_conn ties

	swrrMu  sync.Mutex
	swrrCur []int64 // smooth weighted round robin current weights

	hashKind uint8
	hashName string
	ring     []ringPoint

	healthOn        bool
	health          healthSettings
	transport       http.RoundTripper
	passiveFailures int
	passiveCooldown time.Duration

	errNone error
	errBusy error
}

// ringPoint is one virtual node of the hash ring.
type ringPoint struct {
	hash  uint64
	index int32
}

func newPool(r *Registry, spec *poolSpec) *Pool {
	return &Pool{
		reg:             r,
		route:           spec.route,
		balance:         spec.balance,
		balanceName:     spec.balanceName,
		backends:        make([]*Backend, len(spec.backends)),
		hashKind:        spec.hashKind,
		hashName:        spec.hashName,
		healthOn:        spec.healthOn,
		health:          spec.health,
		transport:       spec.transport,
		passiveFailures: spec.failures,
		passiveCooldown: spec.cooldown,
		errNone:         fmt.Errorf("route %q: %w", spec.route, ErrNoBackend),
		errBusy:         fmt.Errorf("route %q: %w", spec.route, ErrBackendsBusy),
	}
}

// finish builds the balancing structures once backends are set.
func (p *Pool) finish() {
	switch p.balance {
	case balanceWeighted:
		p.swrrCur = make([]int64, len(p.backends))
	case balanceHash:
		p.ring = ringBuild(p.backends)
	}
}

// ringBuild places ringPointsPerWeight×weight points per backend, each at
// the hash of the backend's canonical URL and the point number, so that a
// backend's points do not depend on the other backends: removing one of N
// backends moves only the keys it held (about 1/N).
func ringBuild(backends []*Backend) []ringPoint {
	total := 0
	for _, b := range backends {
		total += ringPointsPerWeight * b.weight
	}
	ring := make([]ringPoint, 0, min(total, ringMaxPoints+len(backends)))
	buf := make([]byte, 0, 64)
	for i, b := range backends {
		n := ringPointsPerWeight * b.weight
		if total > ringMaxPoints {
			n = max(1, n*ringMaxPoints/total)
		}
		for v := 0; v < n; v++ {
			buf = append(buf[:0], b.state.key.url...)
			buf = append(buf, '#')
			buf = strconv.AppendInt(buf, int64(v), 10)
			ring = append(ring, ringPoint{hash: ringHashBytes(buf), index: int32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b ringPoint) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.index, b.index))
	})
	return ring
}

// FNV-1a 64-bit, followed by a murmur3 finalizer so that similar keys (IP
// addresses differing in one byte) spread over the whole ring. Stable
// across processes and platforms.
const (
	ringFNVOffset = 14695981039346656037
	ringFNVPrime  = 1099511628211
)

func ringHashMix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func ringHashString(s string) uint64 {
	h := uint64(ringFNVOffset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= ringFNVPrime
	}
	return ringHashMix(h)
}

func ringHashBytes(s []byte) uint64 {
	h := uint64(ringFNVOffset)
	for _, c := range s {
		h ^= uint64(c)
		h *= ringFNVPrime
	}
	return ringHashMix(h)
}

// ringHashAddr hashes an IP address (IPv4-mapped IPv6 as IPv4). The invalid
// address hashes to a fixed point.
func ringHashAddr(a netip.Addr) uint64 {
	if !a.IsValid() {
		return ringHashBytes(nil)
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return ringHashBytes(b[:])
	}
	b := a.As16()
	return ringHashBytes(b[:])
}

// Route returns the route name.
func (p *Pool) Route() string { return p.route }

// Balance returns the balancing method ("round_robin", "weighted",
// "least_conn" or "hash").
func (p *Pool) Balance() string { return p.balanceName }

// Backends returns the backends in configuration order. The slice is a copy;
// the Backends are shared.
func (p *Pool) Backends() []*Backend { return append([]*Backend(nil), p.backends...) }

// pickClock reads the Registry clock at most once per Pick, and only when a
// backend has an ejection to check.
type pickClock struct {
	now func() time.Time
	ns  int64
	set bool
}

func (c *pickClock) get() int64 {
	if !c.set {
		c.ns, c.set = c.now().UnixNano(), true
	}
	return c.ns
}

// Pick chooses a backend for one attempt of request r from client, skipping
// the backends in tried (those already attempted for this request; nil
// means none). r is only read for "hash" on a header or cookie and may be
// nil; client is only used by "hash" and may be the zero Addr (all such
// requests then hash alike).
//
// A backend is eligible when it is up by active checks, not passively
// ejected, not in tried and under its MaxConns. On success the backend's
// in-flight slot is taken; the caller must call Done on it exactly once.
// When no backend is eligible, Pick falls back as described on Pool, and
// otherwise returns an error wrapping ErrBackendsBusy (some usable backend
// is only at its cap) or ErrNoBackend, naming the route.
func (p *Pool) Pick(r *http.Request, client netip.Addr, tried []*Backend) (*Backend, error) {
	clk := pickClock{now: p.reg.now}
	var b *Backend
	switch p.balance {
	case balanceRoundRobin:
		b = p.pickRoundRobin(tried, &clk)
	case balanceWeighted:
		b = p.pickWeighted(tried, &clk)
	case balanceLeastConn:
		b = p.pickLeastConn(tried, &clk)
	case balanceHash:
		b = p.pickHash(p.hashKey(r, client), tried, &clk)
	}
	if b == nil {
		var err error
		if b, err = p.pickFallback(tried, &clk); err != nil {
			return nil, err
		}
	}
	b.state.requests.Add(1)
	return b, nil
}

// usable reports whether b is up, not ejected and not tried (its slot is
// checked separately).
func (p *Pool) usable(b *Backend, tried []*Backend, clk *pickClock) bool {
	st := b.state
	if !st.healthy.Load() {
		return false
	}
	if st.ejectedUntil.Load() != 0 && st.ejectedNow(clk.get()) {
		return false
	}
	return len(tried) == 0 || !backendWasTried(st, tried)
}

func backendWasTried(st *backendState, tried []*Backend) bool {
	for _, t := range tried {
		if t != nil && t.state == st {
			return true
		}
	}
	return false
}

// pickRoundRobin takes the next eligible backend after a rotating start.
func (p *Pool) pickRoundRobin(tried []*Backend, clk *pickClock) *Backend {
	n := uint64(len(p.backends))
	start := p.rr.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		b := p.backends[(start+i)%n]
		if p.usable(b, tried, clk) && b.acquire() {
			return b
		}
	}
	return nil
}

// pickWeighted is nginx's smooth weighted round robin over the eligible
// backends: each adds its weight to its current value, the largest current
// wins and has the total subtracted. Over sum(weights) picks each backend
// is chosen exactly weight times, interleaved.
func (p *Pool) pickWeighted(tried []*Backend, clk *pickClock) *Backend {
	p.swrrMu.Lock()
	defer p.swrrMu.Unlock()
	for range p.backends {
		best := -1
		var total int64
		for i, b := range p.backends {
			if !p.usable(b, tried, clk) || !b.hasSlot() {
				continue
			}
			w := int64(b.weight)
			p.swrrCur[i] += w
			total += w
			if best < 0 || p.swrrCur[i] > p.swrrCur[best] {
				best = i
			}
		}
		if best < 0 {
			return nil
		}
		p.swrrCur[best] -= total
		if b := p.backends[best]; b.acquire() {
			return b
		}
		// Lost a race for its last slot (another pool sharing the state);
		// choose again: it now has no slot.
	}
	return nil
}

// pickLeastConn takes the eligible backend with the fewest in-flight
// attempts per unit of weight. Ties are broken round-robin: the backends
// tied for the least load take turns, so equally loaded backends share the
// traffic evenly instead of the first one taking it all.
func (p *Pool) pickLeastConn(tried []*Backend, clk *pickClock) *Backend {
	for range p.backends {
		var best *Backend
		var bestLoad int64
		ties := 0
		for _, b := range p.backends {
			load, ok := p.leastConnLoad(b, tried, clk)
			if !ok {
				continue
			}
			if best == nil {
				best, bestLoad, ties = b, load, 1
				continue
			}
			switch l, r := load*int64(best.weight), bestLoad*int64(b.weight); {
			case l < r:
				best, bestLoad, ties = b, load, 1
			case l == r:
				ties++
			}
		}
		if best == nil {
			return nil
		}
		if ties > 1 {
			k := (p.rr.Add(1) - 1) % uint64(ties)
			lw := bestLoad
			w := int64(best.weight)
			for _, b := range p.backends {
				load, ok := p.leastConnLoad(b, tried, clk)
				if !ok || load*w != lw*int64(b.weight) {
					continue
				}
				if k == 0 {
					best = b
					break
				}
				k--
			}
		}
		if best.acquire() {
			return best
		}
		// Lost a race for its last slot; choose again.
	}
	return nil
}

// leastConnLoad returns b's in-flight count if b is eligible.
func (p *Pool) leastConnLoad(b *Backend, tried []*Backend, clk *pickClock) (int64, bool) {
	if !p.usable(b, tried, clk) {
		return 0, false
	}
	load := b.state.inflight.Load()
	if b.maxConns > 0 && load >= b.maxConns {
		return 0, false
	}
	return load, true
}

// hashKey computes the ring position of a request.
func (p *Pool) hashKey(r *http.Request, client netip.Addr) uint64 {
	if r != nil {
		switch p.hashKind {
		case hashKeyHeader:
			if v := r.Header[p.hashName]; len(v) > 0 && v[0] != "" {
				return ringHashString(v[0])
			}
		case hashKeyCookie:
			if v := hashCookieValue(r.Header, p.hashName); v != "" {
				return ringHashString(v)
			}
		}
	}
	return ringHashAddr(client)
}

// hashCookieValue returns the value of the first cookie called name in the
// Cookie headers, unquoted, without allocating.
func hashCookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// pickHash walks the ring clockwise from the key's position to the first
// eligible backend, so keys of an unusable backend go to the next distinct
// backend on the ring and the others keep theirs.
func (p *Pool) pickHash(key uint64, tried []*Backend, clk *pickClock) *Backend {
	ring := p.ring
	n := len(p.backends)
	start, _ := slices.BinarySearchFunc(ring, key, func(pt ringPoint, k uint64) int { return cmp.Compare(pt.hash, k) })
	var seen uint64 // backends already considered, when n <= 64
	distinct := 0
	for j := range ring {
		pt := ring[(start+j)%len(ring)]
		if n <= 64 {
			bit := uint64(1) << uint(pt.index)
			if seen&bit != 0 {
				continue
			}
			seen |= bit
			distinct++
		}
		b := p.backends[pt.index]
		if p.usable(b, tried, clk) && b.acquire() {
			return b
		}
		if n <= 64 && distinct == n {
			break
		}
	}
	return nil
}

// pickFallback runs when no backend is eligible. See Pool for the policy.
func (p *Pool) pickFallback(tried []*Backend, clk *pickClock) (*Backend, error) {
	busy := false
	var oldest *Backend
	var oldestAt int64
	for _, b := range p.backends {
		st := b.state
		if !st.healthy.Load() || backendWasTried(st, tried) {
			continue
		}
		if st.ejectedUntil.Load() == 0 || !st.ejectedNow(clk.get()) {
			// Up, not ejected, not tried: it was only full.
			busy = true
			continue
		}
		if !b.hasSlot() {
			continue
		}
		if at := st.ejectedAt.Load(); oldest == nil || at < oldestAt {
			oldest, oldestAt = b, at
		}
	}
	if busy {
		return nil, p.errBusy
	}
	if oldest != nil {
		if oldest.acquire() {
			return oldest, nil
		}
		return nil, p.errBusy
	}
	// Ejected backends all full counts as busy too.
	for _, b := range p.backends {
		st := b.state
		if st.healthy.Load() && !backendWasTried(st, tried) {
			return nil, p.errBusy
		}
	}
	return nil, p.errNone
}
