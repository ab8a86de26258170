package upstream

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Resolver defaults; see ResolverConfig.
const (
	defaultResolverResolvConf  = "/etc/resolv.conf"
	defaultResolverHostsFile   = "/etc/hosts"
	defaultResolverTimeout     = 2 * time.Second
	defaultResolverAttempts    = 2
	defaultResolverMinTTL      = 5 * time.Second
	defaultResolverMaxTTL      = time.Hour
	defaultResolverNegativeTTL = 30 * time.Second
	defaultResolverMaxEntries  = 10000

	// resolverEDNSSize is the EDNS0 UDP payload size we advertise (the DNS
	// flag day 2020 recommendation, which avoids IP fragmentation).
	resolverEDNSSize = 1232
	// resolverHostsNone is the ResolverConfig.HostsFile value that disables
	// the hosts file.
	resolverHostsNone = "none"
)

// ResolverConfig configures a Resolver. Zero values mean the documented
// defaults; negative durations or counts are rejected by NewResolver.
type ResolverConfig struct {
	// Servers lists the recursive servers as "ip:port" ("[v6]:port" for
	// IPv6); a bare IP means port 53. Host names are not accepted. Empty
	// means the nameserver lines of ResolvConf.
	Servers []string
	// ResolvConf is read only when Servers is empty. Empty means
	// "/etc/resolv.conf". Only its nameserver lines are used: search
	// domains, ndots and options are ignored (the proxy resolves the names
	// it was given, as they are).
	ResolvConf string
	// HostsFile is consulted before DNS and re-read when its modification
	// time or size changes (checked at most every 5s). Empty means
	// "/etc/hosts"; "none" disables it. A missing file is not an error.
	HostsFile string
	// Timeout bounds one query to one server (the TCP retry after a
	// truncated UDP reply gets its own Timeout). Zero means 2s.
	Timeout time.Duration
	// Attempts is the number of rounds over all servers. Zero means 2.
	Attempts int
	// MinTTL is the shortest time a positive answer is cached, whatever its
	// TTL says. Zero means 5s.
	MinTTL time.Duration
	// MaxTTL is the longest time any answer is cached. Zero means 1h.
	MaxTTL time.Duration
	// NegativeTTL is the longest time NXDOMAIN and NODATA answers are
	// cached; a shorter SOA minimum from the reply wins. Zero means 30s.
	NegativeTTL time.Duration
	// MaxEntries bounds the number of cached names. When the cache is full,
	// an insert drops the expired entries among a few picked at random or,
	// if none has expired, the one of them expiring soonest. Zero means
	// 10000.
	MaxEntries int
	// Now is the clock used for cache expiry and hosts-file rechecks. Nil
	// means time.Now; tests inject a fake clock.
	Now func() time.Time
}

// ResolverStats are cumulative counters of a Resolver. Every lookup of a
// name (IP literals aside) counts exactly once in HostsHits, Hits or Misses.
type ResolverStats struct {
	// Hits counts lookups answered from the cache, positive or negative.
	Hits uint64
	// Misses counts lookups the cache could not answer, merged ones
	// included.
	Misses uint64
	// Merged counts misses that joined an identical lookup already in
	// flight instead of sending queries of their own.
	Merged uint64
	// Queries counts DNS messages sent: UDP, TCP retries, and retries to
	// other servers.
	Queries uint64
	// Errors counts exchanges with a server that gave no usable answer:
	// network errors, timeouts, malformed or mismatched replies, and rcodes
	// other than NOERROR and NXDOMAIN.
	Errors uint64
	// HostsHits counts lookups answered from the hosts file.
	HostsHits uint64
}

// LookupErrorKind classifies a LookupError.
type LookupErrorKind int

// Kinds of lookup failure. The zero value is not a valid kind.
const (
	// LookupNotFound: the name does not exist (NXDOMAIN), has neither A nor
	// AAAA records (NODATA), or is not a valid domain name.
	LookupNotFound LookupErrorKind = iota + 1
	// LookupTimeout: every server tried timed out, or the caller's deadline
	// passed.
	LookupTimeout
	// LookupServerFailure: SERVFAIL, REFUSED or another error rcode,
	// network errors, or malformed replies.
	LookupServerFailure
)

// String returns "not found", "timeout" or "server failure".
func (k LookupErrorKind) String() string {
	switch k {
	case LookupNotFound:
		return "not found"
	case LookupTimeout:
		return "timeout"
	case LookupServerFailure:
		return "server failure"
	}
	return fmt.Sprintf("LookupErrorKind(%d)", int(k))
}

// LookupError is the error Resolver.LookupNetIP returns when a name cannot
// be resolved. Negative answers are cached together with their error, so
// the same *LookupError may be returned to many callers: do not modify it.
type LookupError struct {
	// Host is the name that was looked up (normalised).
	Host string
	// Kind classifies the failure.
	Kind LookupErrorKind
	// Err is the underlying cause, naming the server where there is one. It
	// may be nil.
	Err error
}

// Error returns "lookup HOST: KIND: ERR".
func (e *LookupError) Error() string {
	s := "lookup " + e.Host + ": " + e.Kind.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err.
func (e *LookupError) Unwrap() error { return e.Err }

// Timeout reports whether the lookup failed because servers did not answer
// in time (Kind == LookupTimeout).
func (e *LookupError) Timeout() bool { return e.Kind == LookupTimeout }

var (
	errResolverNXDomain    = errors.New("no such host (NXDOMAIN)")
	errResolverNoData      = errors.New("no A or AAAA records")
	errResolverInvalidName = errors.New("not a valid domain name")
)

// Resolver is a caching DNS stub resolver for the upstream dialer. It
// answers from the hosts file, then from its cache, and otherwise queries
// the configured recursive servers for A and AAAA in parallel. Concurrent
// lookups of the same name share one set of queries.
//
// A Resolver is safe for concurrent use. It starts no background
// goroutines of its own beyond in-flight lookups, so it needs no Close.
type Resolver struct {
	servers     []string
	timeout     time.Duration
	attempts    int
	minTTL      time.Duration
	maxTTL      time.Duration
	negativeTTL time.Duration
	// flightTimeout bounds one shared lookup, which runs detached from the
	// callers' contexts.
	flightTimeout time.Duration
	now           func() time.Time

	hosts *hostsFile // nil when disabled
	cache resolverCache

	udp *dns.Client
	tcp *dns.Client
	// preferred is the index of the server that last answered; queries
	// start there so a dead first server costs one timeout, not one per
	// query.
	preferred atomic.Uint32

	flightMu sync.Mutex
	flights  map[string]*resolverFlight

	misses    atomic.Uint64
	merged    atomic.Uint64
	queries   atomic.Uint64
	queryErrs atomic.Uint64
	hostsHits atomic.Uint64

	// testHookJoined, if set, is called once a cache-missing caller has
	// started (leader) or joined (!leader) a flight.
	testHookJoined func(leader bool)
}

// resolverFlight is one shared lookup. addrs and err are written before
// done is closed and only read after.
type resolverFlight struct {
	done  chan struct{}
	addrs []netip.Addr
	err   error
}

// NewResolver returns a Resolver for cfg. It fails if cfg is invalid, or if
// cfg.Servers is empty and no nameserver can be read from cfg.ResolvConf.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	if cfg.Timeout < 0 || cfg.Attempts < 0 || cfg.MinTTL < 0 || cfg.MaxTTL < 0 ||
		cfg.NegativeTTL < 0 || cfg.MaxEntries < 0 {
		return nil, errors.New("resolver: negative timeout, attempts, TTL or MaxEntries")
	}
	r := &Resolver{
		timeout:     orDefault(cfg.Timeout, defaultResolverTimeout),
		attempts:    orDefault(cfg.Attempts, defaultResolverAttempts),
		minTTL:      orDefault(cfg.MinTTL, defaultResolverMinTTL),
		maxTTL:      orDefault(cfg.MaxTTL, defaultResolverMaxTTL),
		negativeTTL: orDefault(cfg.NegativeTTL, defaultResolverNegativeTTL),
		now:         cfg.Now,
		flights:     make(map[string]*resolverFlight),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.minTTL > r.maxTTL {
		return nil, fmt.Errorf("resolver: MinTTL %v is greater than MaxTTL %v", r.minTTL, r.maxTTL)
	}

	servers, err := resolverServers(cfg.Servers, orDefault(cfg.ResolvConf, defaultResolverResolvConf))
	if err != nil {
		return nil, err
	}
	r.servers = servers
	// Every exchange is bounded by timeout (twice for a TCP retry); this is
	// only a safety net for the whole shared lookup.
	r.flightTimeout = 2 * r.timeout * time.Duration(r.attempts*len(servers))

	r.udp = &dns.Client{Net: "udp", UDPSize: resolverEDNSSize, Timeout: r.timeout}
	r.tcp = &dns.Client{Net: "tcp", Timeout: r.timeout}
	r.cache.init(orDefault(cfg.MaxEntries, defaultResolverMaxEntries))

	if hostsPath := orDefault(cfg.HostsFile, defaultResolverHostsFile); hostsPath != resolverHostsNone {
		r.hosts = newHostsFile(hostsPath, defaultHostsRecheck, r.now())
	}
	return r, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// resolverServers validates configured servers, or reads them from
// resolvConf when there are none.
func resolverServers(configured []string, resolvConf string) ([]string, error) {
	if len(configured) > 0 {
		out := make([]string, 0, len(configured))
		for _, s := range configured {
			if ap, err := netip.ParseAddrPort(s); err == nil {
				out = append(out, ap.String())
				continue
			}
			if ip, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.AddrPortFrom(ip, 53).String())
				continue
			}
			return nil, fmt.Errorf("resolver: server %q is not an ip:port", s)
		}
		return out, nil
	}
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("resolver: no servers configured and reading %s: %w", resolvConf, err)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resolver: no servers configured and no nameserver in %s", resolvConf)
	}
	return out, nil
}

// Stats returns the resolver's counters. Each counter is read atomically;
// the set is not a consistent snapshot.
func (r *Resolver) Stats() ResolverStats {
	return ResolverStats{
		Hits:      r.cache.hits(),
		Misses:    r.misses.Load(),
		Merged:    r.merged.Load(),
		Queries:   r.queries.Load(),
		Errors:    r.queryErrs.Load(),
		HostsHits: r.hostsHits.Load(),
	}
}

// LookupNetIP returns the IPv6 and IPv4 addresses of host, IPv6 first.
// host should be lowercased without a trailing dot; LookupNetIP normalises
// it again (lowercase, one trailing dot stripped). An IP literal is
// returned parsed, without lookup.
//
// The returned slice is shared with the cache and other callers: it must
// not be modified. On a cache hit LookupNetIP does not allocate.
//
// Errors are *LookupError, except that when ctx is cancelled the error
// wraps context.Canceled (a passed deadline is a LookupTimeout wrapping
// context.DeadlineExceeded). A caller that gives up does not cancel the
// queries other callers are waiting for.
func (r *Resolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if resolverMaybeIP(host) {
		if ip, err := netip.ParseAddr(host); err == nil {
			return []netip.Addr{ip}, nil
		}
	}
	now := r.now()
	if r.hosts != nil {
		if addrs, ok := r.hosts.lookup(host, now); ok {
			r.hostsHits.Add(1)
			return addrs, nil
		}
	}
	if e, ok := r.cache.get(host, now); ok {
		return e.addrs, e.err
	}
	return r.lookupSlow(ctx, host)
}

// resolverMaybeIP reports whether s could be an IP literal, cheaply, so
// that names do not pay for a failed (allocating) netip.ParseAddr.
func resolverMaybeIP(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ':' {
			return true
		}
		if c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (r *Resolver) lookupSlow(ctx context.Context, host string) ([]netip.Addr, error) {
	if _, ok := dns.IsDomainName(host); !ok || host == "" || len(host) > 253 {
		r.misses.Add(1)
		return nil, &LookupError{Host: host, Kind: LookupNotFound, Err: errResolverInvalidName}
	}
	if err := ctx.Err(); err != nil {
		r.misses.Add(1)
		return nil, resolverContextError(host, err)
	}

	r.flightMu.Lock()
	// A flight removes itself only after filling the cache, so checking the
	// cache again under flightMu means no lookup is repeated needlessly.
	if e, ok := r.cache.get(host, r.now()); ok {
		r.flightMu.Unlock()
		return e.addrs, e.err
	}
	r.misses.Add(1)
	f, joined := r.flights[host]
	if !joined {
		f = &resolverFlight{done: make(chan struct{})}
		r.flights[host] = f
		// Clone: host may point into a large request buffer.
		go r.runFlight(context.WithoutCancel(ctx), strings.Clone(host), f)
	}
	r.flightMu.Unlock()
	if joined {
		r.merged.Add(1)
	}
	if hook := r.testHookJoined; hook != nil {
		hook(!joined)
	}

	select {
	case <-f.done:
		return f.addrs, f.err
	case <-ctx.Done():
		select {
		case <-f.done: // finished too: prefer the answer
			return f.addrs, f.err
		default:
			return nil, resolverContextError(host, ctx.Err())
		}
	}
}

func resolverContextError(host string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &LookupError{Host: host, Kind: LookupTimeout, Err: err}
	}
	return fmt.Errorf("lookup %s: %w", host, err)
}

// runFlight resolves host for every caller of f, caches the result, and
// releases the callers.
func (r *Resolver) runFlight(ctx context.Context, host string, f *resolverFlight) {
	ctx, cancel := context.WithTimeout(ctx, r.flightTimeout)
	defer cancel()
	addrs, ttl, err := r.resolve(ctx, host)
	if ttl > 0 {
		now := r.now()
		r.cache.put(host, resolverEntry{addrs: addrs, err: err, expires: now.Add(ttl)}, now)
	}
	f.addrs, f.err = addrs, err
	r.flightMu.Lock()
	delete(r.flights, host)
	r.flightMu.Unlock()
	close(f.done)
}

// resolverStatus is the outcome of one query type.
type resolverStatus int

const (
	resolverOK       resolverStatus = iota // answer with addresses
	resolverNXDomain                       // name does not exist
	resolverNoData                         // name exists, no records of the type
	resolverFailed                         // no usable answer from any server
)

// resolverAnswer is the outcome of querying one type (A or AAAA).
type resolverAnswer struct {
	status resolverStatus
	addrs  []netip.Addr
	// ttl is the clamped positive TTL (resolverOK) or the negative TTL
	// (resolverNXDomain, resolverNoData).
	ttl time.Duration
	// err describes a negative answer or the last failure.
	err error
	// timeout is set for resolverFailed when every failure was a timeout.
	timeout bool
}

// resolve queries A and AAAA for host in parallel and combines them. A
// zero ttl means the result must not be cached.
func (r *Resolver) resolve(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	fqdn := dns.Fqdn(host)
	var v6 resolverAnswer
	var wg sync.WaitGroup
	wg.Go(func() { v6 = r.query(ctx, host, fqdn, dns.TypeAAAA) })
	v4 := r.query(ctx, host, fqdn, dns.TypeA)
	wg.Wait()
	return r.combine(host, v6, v4)
}

func (r *Resolver) combine(host string, v6, v4 resolverAnswer) ([]netip.Addr, time.Duration, error) {
	both := [2]resolverAnswer{v6, v4}
	if n := len(v6.addrs) + len(v4.addrs); n > 0 {
		addrs := make([]netip.Addr, 0, n)
		addrs = append(addrs, v6.addrs...)
		addrs = append(addrs, v4.addrs...)
		// A negative answer for the other type limits the entry too, so
		// that a new AAAA (or A) record is seen after the negative TTL; a
		// failed type limits it to MinTTL so the failure is retried soon.
		ttl := r.maxTTL
		for _, a := range both {
			if a.status == resolverFailed {
				ttl = min(ttl, r.minTTL)
			} else {
				ttl = min(ttl, a.ttl)
			}
		}
		return addrs, ttl, nil
	}
	if v6.status == resolverFailed || v4.status == resolverFailed {
		kind := LookupTimeout
		var errs []error
		for _, a := range both {
			if a.status == resolverFailed {
				errs = append(errs, a.err)
				if !a.timeout {
					kind = LookupServerFailure
				}
			}
		}
		return nil, 0, &LookupError{Host: host, Kind: kind, Err: errors.Join(errs...)}
	}
	// Both negative. NXDOMAIN is the more telling reason.
	cause := v4
	if v6.status == resolverNXDomain {
		cause = v6
	}
	return nil, min(v6.ttl, v4.ttl), &LookupError{Host: host, Kind: LookupNotFound, Err: cause.err}
}

// query asks the servers for one record type of fqdn: in order starting at
// the preferred server, for r.attempts rounds, moving on after a failure.
func (r *Resolver) query(ctx context.Context, host, fqdn string, qtype uint16) resolverAnswer {
	m := new(dns.Msg)
	m.SetQuestion(fqdn, qtype) // sets RD
	m.SetEdns0(resolverEDNSSize, false)

	n := len(r.servers)
	start := int(r.preferred.Load()) % n
	var lastErr error
	allTimeouts := true
	for round := 0; round < r.attempts; round++ {
		for i := 0; i < n; i++ {
			if err := ctx.Err(); err != nil {
				if lastErr == nil {
					lastErr = fmt.Errorf("querying for %s %s: %w", host, dns.TypeToString[qtype], err)
				}
				return resolverAnswer{status: resolverFailed, err: lastErr,
					timeout: allTimeouts && errors.Is(err, context.DeadlineExceeded)}
			}
			idx := (start + i) % n
			server := r.servers[idx]
			m.Id = dns.Id()
			resp, err := r.exchange(ctx, server, m)
			if err == nil {
				err = resolverCheckReply(m, resp)
			}
			if err == nil {
				r.preferred.Store(uint32(idx))
				return r.parseReply(host, fqdn, qtype, server, resp)
			}
			r.queryErrs.Add(1)
			allTimeouts = allTimeouts && resolverIsTimeout(err)
			lastErr = fmt.Errorf("querying %s for %s %s: %w", server, host, dns.TypeToString[qtype], err)
		}
	}
	return resolverAnswer{status: resolverFailed, err: lastErr, timeout: allTimeouts}
}

// exchange sends m to server over UDP and, if the reply is truncated,
// again over TCP. Each exchange is bounded by r.timeout.
func (r *Resolver) exchange(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error) {
	qctx, cancel := context.WithTimeout(ctx, r.timeout)
	r.queries.Add(1)
	resp, _, err := r.udp.ExchangeContext(qctx, m, server)
	cancel()
	// A truncated reply may fail to unpack; its header is still good.
	if resp == nil || resp.Id != m.Id || !resp.Truncated {
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
	qctx, cancel = context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.queries.Add(1)
	resp, _, err = r.tcp.ExchangeContext(qctx, m, server)
	if err != nil {
		return nil, fmt.Errorf("over TCP after truncated UDP reply: %w", err)
	}
	return resp, nil
}

// resolverCheckReply rejects replies that are not usable answers to req.
// The message ID was already checked by the client.
func resolverCheckReply(req, resp *dns.Msg) error {
	if !resp.Response {
		return errors.New("reply without QR bit")
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		if s, ok := dns.RcodeToString[resp.Rcode]; ok {
			return fmt.Errorf("server replied %s", s)
		}
		return fmt.Errorf("server replied rcode %d", resp.Rcode)
	}
	q := req.Question[0]
	if len(resp.Question) != 1 || resp.Question[0].Qtype != q.Qtype ||
		resp.Question[0].Qclass != q.Qclass || !strings.EqualFold(resp.Question[0].Name, q.Name) {
		return errors.New("reply question does not match the query")
	}
	return nil
}

// resolverIsTimeout reports whether err is a timeout.
func resolverIsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parseReply turns a NOERROR or NXDOMAIN reply into an answer, following
// the CNAME chain from fqdn inside the answer section and keeping only the
// records of qtype owned by the end of the chain.
func (r *Resolver) parseReply(host, fqdn string, qtype uint16, server string, resp *dns.Msg) resolverAnswer {
	if resp.Rcode == dns.RcodeNameError {
		return resolverAnswer{status: resolverNXDomain, ttl: r.negativeTTLOf(resp),
			err: fmt.Errorf("querying %s for %s: %w", server, host, errResolverNXDomain)}
	}
	target := fqdn
	minTTL := ^uint32(0)
	// Each step consumes a distinct CNAME, so len(Answer) steps suffice and
	// a loop in the chain ends.
	for range resp.Answer {
		next := ""
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CNAME); ok && c.Hdr.Class == dns.ClassINET && strings.EqualFold(c.Hdr.Name, target) {
				next = c.Target
				minTTL = min(minTTL, c.Hdr.Ttl)
				break
			}
		}
		if next == "" {
			break
		}
		target = next
	}

	var addrs []netip.Addr
	addrTTL := ^uint32(0)
	for _, rr := range resp.Answer {
		h := rr.Header()
		if h.Rrtype != qtype || h.Class != dns.ClassINET || !strings.EqualFold(h.Name, target) {
			continue
		}
		var ip netip.Addr
		var ok bool
		switch rr := rr.(type) {
		case *dns.A:
			ip, ok = netip.AddrFromSlice(rr.A)
			ip = ip.Unmap()
		case *dns.AAAA:
			ip, ok = netip.AddrFromSlice(rr.AAAA)
		}
		if !ok || !ip.IsValid() {
			continue
		}
		addrTTL = min(addrTTL, h.Ttl)
		if !resolverContains(addrs, ip) {
			addrs = append(addrs, ip)
		}
	}
	if len(addrs) == 0 {
		return resolverAnswer{status: resolverNoData, ttl: r.negativeTTLOf(resp),
			err: fmt.Errorf("querying %s for %s %s: %w", server, host, dns.TypeToString[qtype], errResolverNoData)}
	}
	ttl := time.Duration(min(minTTL, addrTTL)) * time.Second
	return resolverAnswer{status: resolverOK, addrs: addrs, ttl: min(max(ttl, r.minTTL), r.maxTTL)}
}

func resolverContains(addrs []netip.Addr, ip netip.Addr) bool {
	for _, a := range addrs {
		if a == ip {
			return true
		}
	}
	return false
}

// negativeTTLOf returns how long a negative reply may be cached: the SOA
// TTL or minimum from the authority section, whichever is lower (RFC 2308
// section 5), clamped to [min(MinTTL, NegativeTTL), NegativeTTL]; without a
// SOA, NegativeTTL.
func (r *Resolver) negativeTTLOf(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			return min(max(ttl, min(r.minTTL, r.negativeTTL)), r.negativeTTL)
		}
	}
	return r.negativeTTL
}

// resolverEntry is a cached result: addresses, or a *LookupError for a
// negative answer.
type resolverEntry struct {
	addrs   []netip.Addr
	err     error
	expires time.Time
}

// resolverCache is a map sharded by name hash, each shard behind its own
// RWMutex, so hits from many goroutines rarely share a lock.
type resolverCache struct {
	seed     maphash.Seed
	shards   []resolverShard
	mask     uint64
	perShard int
}

type resolverShard struct {
	mu   sync.RWMutex
	m    map[string]resolverEntry
	hits atomic.Uint64
	_    [64]byte // keep neighbouring shards' hot words off one cache line
}

// init sizes the cache for at most maxEntries names: up to 32 shards, each
// holding at least 128 names (a small cache gets fewer shards).
func (c *resolverCache) init(maxEntries int) {
	n := 1
	for n < 32 && maxEntries/(2*n) >= 128 {
		n *= 2
	}
	c.seed = maphash.MakeSeed()
	c.shards = make([]resolverShard, n)
	c.mask = uint64(n - 1)
	c.perShard = max(maxEntries/n, 1)
	for i := range c.shards {
		c.shards[i].m = make(map[string]resolverEntry)
	}
}

func (c *resolverCache) shard(host string) *resolverShard {
	return &c.shards[maphash.String(c.seed, host)&c.mask]
}

// get returns the unexpired entry for host, counting a hit.
func (c *resolverCache) get(host string, now time.Time) (resolverEntry, bool) {
	s := c.shard(host)
	s.mu.RLock()
	e, ok := s.m[host]
	s.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return resolverEntry{}, false
	}
	s.hits.Add(1)
	return e, true
}

// put stores e for host, evicting if the shard is full.
func (c *resolverCache) put(host string, e resolverEntry, now time.Time) {
	s := c.shard(host)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[host]; !ok && len(s.m) >= c.perShard {
		s.evictLocked(now)
	}
	s.m[host] = e
}

// evictLocked makes room for one entry in constant time: it visits up to
// 32 entries in (randomly started) map order and drops those that have
// expired or, if none has, the one expiring soonest.
func (s *resolverShard) evictLocked(now time.Time) {
	const sample = 32
	var (
		victim   string
		earliest time.Time
		seen     int
		dropped  bool
	)
	for k, e := range s.m {
		if !now.Before(e.expires) {
			delete(s.m, k)
			dropped = true
		} else if victim == "" || e.expires.Before(earliest) {
			victim, earliest = k, e.expires
		}
		if seen++; seen == sample {
			break
		}
	}
	if !dropped && victim != "" {
		delete(s.m, victim)
	}
}

func (c *resolverCache) hits() uint64 {
	var n uint64
	for i := range c.shards {
		n += c.shards[i].hits.Load()
	}
	return n
}
