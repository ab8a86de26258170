package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testGuard bounds every wait on another goroutine. It is a hang guard, not
// a timing assertion: nothing in these tests should come close to it.
const testGuard = 20 * time.Second

// testDNSServer is a miekg/dns server on 127.0.0.1 serving UDP and TCP on
// the same port, counting the queries it receives.
type testDNSServer struct {
	Addr string

	udpQueries  atomic.Int64
	tcpQueries  atomic.Int64
	aQueries    atomic.Int64
	aaaaQueries atomic.Int64
	lastReq     atomic.Pointer[dns.Msg]
}

func (s *testDNSServer) queries() int64 { return s.udpQueries.Load() + s.tcpQueries.Load() }

// startTestDNS starts a server answering UDP with udp and TCP with tcp (nil:
// udp). It is shut down when the test ends.
func startTestDNS(t *testing.T, udp, tcp dns.Handler) *testDNSServer {
	t.Helper()
	if tcp == nil {
		tcp = udp
	}
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 { // the random UDP port may be taken for TCP; try another
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatalf("listen tcp on the UDP port: %v", err)
	}
	s := &testDNSServer{Addr: pc.LocalAddr().String()}
	count := func(h dns.Handler, n *atomic.Int64) dns.Handler {
		return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			n.Add(1)
			if len(req.Question) == 1 {
				switch req.Question[0].Qtype {
				case dns.TypeA:
					s.aQueries.Add(1)
				case dns.TypeAAAA:
					s.aaaaQueries.Add(1)
				}
			}
			s.lastReq.Store(req.Copy())
			h.ServeDNS(w, req)
		})
	}
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: count(udp, &s.udpQueries)},
		{Listener: ln, Handler: count(tcp, &s.tcpQueries)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		served := make(chan error, 1)
		go func() { served <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-served:
			t.Fatalf("dns server: %v", err)
		case <-time.After(testGuard):
			t.Fatal("dns server did not start")
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testGuard)
			defer cancel()
			srv.ShutdownContext(ctx)
		})
	}
	return s
}

// testZone is a tiny authoritative server. It answers records of the
// question's type, follows CNAMEs, answers NXDOMAIN for unknown names and
// NODATA for known ones, and puts the zone's SOA records (if any) in the
// authority section of negative answers.
type testZone struct {
	rrs   []dns.RR
	extra []dns.RR // appended to every positive answer
}

func newTestZone(t *testing.T, records ...string) *testZone {
	t.Helper()
	z := &testZone{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad test record %q: %v", s, err)
		}
		z.rrs = append(z.rrs, rr)
	}
	return z
}

func (z *testZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	name, exists := q.Name, false
	for range 8 {
		var next string
		for _, rr := range z.rrs {
			h := rr.Header()
			if h.Rrtype == dns.TypeSOA || !strings.EqualFold(h.Name, name) {
				continue
			}
			exists = true
			if h.Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			} else if c, ok := rr.(*dns.CNAME); ok {
				m.Answer = append(m.Answer, rr)
				next = c.Target
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		for _, rr := range z.rrs {
			if rr.Header().Rrtype == dns.TypeSOA {
				m.Ns = append(m.Ns, rr)
			}
		}
	} else {
		m.Answer = append(m.Answer, z.extra...)
	}
	w.WriteMsg(m)
}

// rcodeHandler answers every query with rcode and nothing else.
func rcodeHandler(rcode int) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(req, rcode)
		w.WriteMsg(m)
	})
}

// blockingHandler waits for release before passing the query to h. Tests
// register release with t.Cleanup after starting the server, so that it
// runs before the server is shut down.
func blockingHandler(h dns.Handler) (dns.Handler, func()) {
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		<-release
		h.ServeDNS(w, req)
	}), releaseOnce
}

// deadUDPServer returns the address of a UDP socket that never reads.
func deadUDPServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestResolver builds a resolver with a fake clock and, unless cfg says
// otherwise, no hosts file.
func newTestResolver(t *testing.T, cfg ResolverConfig) (*Resolver, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	cfg.Now = clock.Now
	if cfg.HostsFile == "" {
		cfg.HostsFile = "none"
	}
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	return r, clock
}

func mustLookup(t *testing.T, r *Resolver, host string) []netip.Addr {
	t.Helper()
	addrs, err := r.LookupNetIP(context.Background(), host)
	if err != nil {
		t.Fatalf("LookupNetIP(%q): %v", host, err)
	}
	return addrs
}

func wantAddrs(t *testing.T, got []netip.Addr, want ...string) {
	t.Helper()
	var w []netip.Addr
	for _, s := range want {
		w = append(w, netip.MustParseAddr(s))
	}
	if !slices.Equal(got, w) {
		t.Fatalf("got addresses %v, want %v", got, w)
	}
}

func wantLookupError(t *testing.T, err error, kind LookupErrorKind) *LookupError {
	t.Helper()
	var le *LookupError
	if !errors.As(err, &le) {
		t.Fatalf("got error %v (%T), want *LookupError", err, err)
	}
	if le.Kind != kind {
		t.Fatalf("got kind %v (%v), want %v", le.Kind, err, kind)
	}
	if le.Timeout() != (kind == LookupTimeout) {
		t.Fatalf("Timeout() = %v for kind %v", le.Timeout(), kind)
	}
	return le
}

func TestResolverAAndAAAA(t *testing.T) {
	srv := startTestDNS(t, newTestZone(t,
		"www.example.com. 300 IN A 192.0.2.1",
		"www.example.com. 300 IN A 192.0.2.2",
		"www.example.com. 300 IN AAAA 2001:db8::1",
	), nil)
	r, _ := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}})

	got := mustLookup(t, r, "www.example.com")
	wantAddrs(t, got, "2001:db8::1", "192.0.2.1", "192.0.2.2")
	if a, aaaa := srv.aQueries.Load(), srv.aaaaQueries.Load(); a != 1 || aaaa != 1 {
		t.Fatalf("server saw %d A and %d AAAA queries, want 1 and 1", a, aaaa)
	}
	req := srv.lastReq.Load()
	if opt := req.IsEdns0(); opt == nil || opt.UDPSize() != resolverEDNSSize {
		t.Errorf("query EDNS0 = %v, want UDP size %d", opt, resolverEDNSSize)
	}
	if !req.RecursionDesired {
		t.Error("query without RD bit")
	}
	if st := r.Stats(); st != (ResolverStats{Misses: 1, Queries: 2}) {
		t.Fatalf("stats after first lookup: %+v", st)
	}

	// Served from the cache, also for a non-normalised spelling.
	wantAddrs(t, mustLookup(t, r, "www.example.com"), "2001:db8::1", "192.0.2.1", "192.0.2.2")
	wantAddrs(t, mustLookup(t, r, "WWW.Example.COM."), "2001:db8::1", "192.0.2.1", "192.0.2.2")
	if n := srv.queries(); n != 2 {
		t.Fatalf("server saw %d queries after cached lookups, want 2", n)
	}
	if st := r.Stats(); st != (ResolverStats{Hits: 2, Misses: 1, Queries: 2}) {
		t.Fatalf("stats after cached lookups: %+v", st)
	}
}

func TestResolverIPLiteral(t *testing.T) {
	r, _ := newTestResolver(t, ResolverConfig{Servers: []string{deadUDPServer(t)}})
	wantAddrs(t, mustLookup(t, r, "192.0.2.9"), "192.0.2.9")
	wantAddrs(t, mustLookup(t, r, "2001:db8::9"), "2001:db8::9")
	if st := r.Stats(); st != (ResolverStats{}) {
		t.Fatalf("IP literals touched the resolver: %+v", st)
	}
}

func TestResolverTTL(t *testing.T) {
	tests := []struct {
		name      string
		ttl       string // record TTL
		cfg       ResolverConfig
		cachedFor time.Duration
	}{
		{"record TTL", "60", ResolverConfig{}, 60 * time.Second},
		{"MinTTL floor", "0", ResolverConfig{}, defaultResolverMinTTL},
		{"configured MinTTL", "1", ResolverConfig{MinTTL: 20 * time.Second}, 20 * time.Second},
		{"MaxTTL ceiling", "86400", ResolverConfig{}, defaultResolverMaxTTL},
		{"configured MaxTTL", "86400", ResolverConfig{MaxTTL: 10 * time.Minute}, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startTestDNS(t, newTestZone(t,
				"host.example. "+tt.ttl+" IN A 192.0.2.1",
				"host.example. "+tt.ttl+" IN AAAA 2001:db8::1",
			), nil)
			tt.cfg.Servers = []string{srv.Addr}
			r, clock := newTestResolver(t, tt.cfg)

			mustLookup(t, r, "host.example")
			clock.Advance(tt.cachedFor - time.Second)
			wantAddrs(t, mustLookup(t, r, "host.example"), "2001:db8::1", "192.0.2.1")
			if n := srv.queries(); n != 2 {
				t.Fatalf("re-queried before expiry: %d queries", n)
			}
			clock.Advance(time.Second)
			wantAddrs(t, mustLookup(t, r, "host.example"), "2001:db8::1", "192.0.2.1")
			if n := srv.queries(); n != 4 {
				t.Fatalf("after expiry: %d queries, want 4", n)
			}
			if st := r.Stats(); st.Hits != 1 || st.Misses != 2 {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

func TestResolverNXDOMAIN(t *testing.T) {
	tests := []struct {
		name      string
		records   []string
		cfg       ResolverConfig
		cachedFor time.Duration
		wantErr   error
	}{
		{"no SOA", nil, ResolverConfig{}, defaultResolverNegativeTTL, errResolverNXDomain},
		{"SOA minimum", []string{"example. 3600 IN SOA ns.example. admin.example. 1 7200 900 1209600 10"},
			ResolverConfig{}, 10 * time.Second, errResolverNXDomain},
		{"SOA TTL below minimum", []string{"example. 12 IN SOA ns.example. admin.example. 1 7200 900 1209600 600"},
			ResolverConfig{}, 12 * time.Second, errResolverNXDomain},
		{"SOA above NegativeTTL", []string{"example. 3600 IN SOA ns.example. admin.example. 1 7200 900 1209600 3600"},
			ResolverConfig{NegativeTTL: time.Minute}, time.Minute, errResolverNXDomain},
		{"NODATA", []string{"gone.example. 300 IN TXT \"no addresses\""},
			ResolverConfig{}, defaultResolverNegativeTTL, errResolverNoData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startTestDNS(t, newTestZone(t, tt.records...), nil)
			tt.cfg.Servers = []string{srv.Addr}
			r, clock := newTestResolver(t, tt.cfg)

			addrs, err := r.LookupNetIP(context.Background(), "gone.example")
			le := wantLookupError(t, err, LookupNotFound)
			if addrs != nil || le.Host != "gone.example" || !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, %v; want no addresses and %v", addrs, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), srv.Addr) {
				t.Errorf("error %q does not name the server", err)
			}

			clock.Advance(tt.cachedFor - time.Second)
			_, err2 := r.LookupNetIP(context.Background(), "gone.example")
			if err2 != err {
				t.Fatalf("cached negative answer: got %v, want the cached error %v", err2, err)
			}
			if n := srv.queries(); n != 2 {
				t.Fatalf("re-queried before the negative TTL passed: %d queries", n)
			}
			clock.Advance(time.Second)
			_, err = r.LookupNetIP(context.Background(), "gone.example")
			wantLookupError(t, err, LookupNotFound)
			if n := srv.queries(); n != 4 {
				t.Fatalf("after the negative TTL: %d queries, want 4", n)
			}
		})
	}
}

func TestResolverOneFamilyOnly(t *testing.T) {
	srv := startTestDNS(t, newTestZone(t, "v4.example. 300 IN A 192.0.2.4"), nil)
	r, clock := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}})
	wantAddrs(t, mustLookup(t, r, "v4.example"), "192.0.2.4")
	// The missing AAAA is a negative answer: it limits the entry to the
	// negative TTL so that a new AAAA record is noticed.
	clock.Advance(defaultResolverNegativeTTL - time.Second)
	mustLookup(t, r, "v4.example")
	if n := srv.queries(); n != 2 {
		t.Fatalf("re-queried early: %d queries", n)
	}
	clock.Advance(time.Second)
	mustLookup(t, r, "v4.example")
	if n := srv.queries(); n != 4 {
		t.Fatalf("%d queries, want 4", n)
	}
}

func TestResolverPartialFailure(t *testing.T) {
	zone := newTestZone(t, "half.example. 300 IN A 192.0.2.5")
	srv := startTestDNS(t, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if req.Question[0].Qtype == dns.TypeAAAA {
			rcodeHandler(dns.RcodeServerFailure).ServeDNS(w, req)
			return
		}
		zone.ServeDNS(w, req)
	}), nil)
	r, clock := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}, Attempts: 1})
	wantAddrs(t, mustLookup(t, r, "half.example"), "192.0.2.5")
	if st := r.Stats(); st.Errors != 1 {
		t.Fatalf("stats: %+v, want 1 error", st)
	}
	// Cached, but only for MinTTL.
	clock.Advance(defaultResolverMinTTL - time.Second)
	mustLookup(t, r, "half.example")
	if n := srv.queries(); n != 2 {
		t.Fatalf("re-queried early: %d queries", n)
	}
	clock.Advance(time.Second)
	mustLookup(t, r, "half.example")
	if n := srv.queries(); n != 4 {
		t.Fatalf("%d queries, want 4", n)
	}
}

func TestResolverCNAMEChain(t *testing.T) {
	zone := newTestZone(t,
		"www.example.com. 300 IN CNAME a.example.net.",
		"a.example.net. 60 IN CNAME B.example.org.",
		"b.example.org. 300 IN A 192.0.2.7",
		"b.example.org. 300 IN AAAA 2001:db8::7",
	)
	// Records not owned by the end of the chain must be ignored.
	for _, s := range []string{"evil.example. 300 IN A 198.51.100.66", "evil.example. 300 IN AAAA 2001:db8::666"} {
		rr, _ := dns.NewRR(s)
		zone.extra = append(zone.extra, rr)
	}
	srv := startTestDNS(t, zone, nil)
	r, clock := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}})

	wantAddrs(t, mustLookup(t, r, "www.example.com"), "2001:db8::7", "192.0.2.7")
	// The CNAME's TTL (60s) bounds the entry.
	clock.Advance(59 * time.Second)
	mustLookup(t, r, "www.example.com")
	if n := srv.queries(); n != 2 {
		t.Fatalf("re-queried early: %d queries", n)
	}
	clock.Advance(time.Second)
	mustLookup(t, r, "www.example.com")
	if n := srv.queries(); n != 4 {
		t.Fatalf("%d queries, want 4", n)
	}
}

func TestResolverCNAMEToNothing(t *testing.T) {
	srv := startTestDNS(t, newTestZone(t, "alias.example. 300 IN CNAME nowhere.example."), nil)
	r, _ := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}})
	_, err := r.LookupNetIP(context.Background(), "alias.example")
	wantLookupError(t, err, LookupNotFound)
}

func TestResolverTruncatedRetriesOverTCP(t *testing.T) {
	truncated := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Truncated = true
		w.WriteMsg(m)
	})
	srv := startTestDNS(t, truncated, newTestZone(t,
		"big.example. 300 IN A 192.0.2.8",
		"big.example. 300 IN AAAA 2001:db8::8",
	))
	r, _ := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}})

	wantAddrs(t, mustLookup(t, r, "big.example"), "2001:db8::8", "192.0.2.8")
	if u, tc := srv.udpQueries.Load(), srv.tcpQueries.Load(); u != 2 || tc != 2 {
		t.Fatalf("server saw %d UDP and %d TCP queries, want 2 and 2", u, tc)
	}
	if st := r.Stats(); st.Queries != 4 || st.Errors != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestResolverSkipsDeadServer(t *testing.T) {
	srv := startTestDNS(t, newTestZone(t,
		"a.example. 300 IN A 192.0.2.1",
		"b.example. 300 IN A 192.0.2.2",
	), nil)
	r, _ := newTestResolver(t, ResolverConfig{
		Servers:  []string{deadUDPServer(t), srv.Addr},
		Timeout:  200 * time.Millisecond,
		Attempts: 1,
	})

	wantAddrs(t, mustLookup(t, r, "a.example"), "192.0.2.1")
	if st := r.Stats(); st.Errors != 2 || st.Queries != 4 {
		t.Fatalf("stats: %+v, want 2 timeouts and 4 queries", st)
	}
	// The server that answered is tried first from now on.
	wantAddrs(t, mustLookup(t, r, "b.example"), "192.0.2.2")
	if st := r.Stats(); st.Errors != 2 || st.Queries != 6 {
		t.Fatalf("stats: %+v, want no new errors", st)
	}
}

func TestResolverSkipsFailingServer(t *testing.T) {
	for _, rcode := range []int{dns.RcodeServerFailure, dns.RcodeRefused} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) {
			bad := startTestDNS(t, rcodeHandler(rcode), nil)
			good := startTestDNS(t, newTestZone(t, "a.example. 300 IN A 192.0.2.1"), nil)
			r, _ := newTestResolver(t, ResolverConfig{Servers: []string{bad.Addr, good.Addr}, Attempts: 1})
			wantAddrs(t, mustLookup(t, r, "a.example"), "192.0.2.1")
			if n := bad.queries(); n != 2 {
				t.Fatalf("failing server saw %d queries, want 2", n)
			}
		})
	}
}

func TestResolverAllServersDead(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		r, _ := newTestResolver(t, ResolverConfig{
			Servers:  []string{deadUDPServer(t), deadUDPServer(t)},
			Timeout:  100 * time.Millisecond,
			Attempts: 2,
		})
		for i := 1; i <= 2; i++ { // not cached: the second lookup queries again
			_, err := r.LookupNetIP(context.Background(), "dead.example")
			wantLookupError(t, err, LookupTimeout)
			if st := r.Stats(); st.Queries != uint64(8*i) || st.Hits != 0 {
				t.Fatalf("lookup %d: stats %+v, want %d queries and no hits", i, st, 8*i)
			}
		}
	})
	t.Run("servfail", func(t *testing.T) {
		a := startTestDNS(t, rcodeHandler(dns.RcodeServerFailure), nil)
		b := startTestDNS(t, rcodeHandler(dns.RcodeServerFailure), nil)
		r, _ := newTestResolver(t, ResolverConfig{Servers: []string{a.Addr, b.Addr}})
		for i := 1; i <= 2; i++ {
			_, err := r.LookupNetIP(context.Background(), "broken.example")
			wantLookupError(t, err, LookupServerFailure)
			if !strings.Contains(err.Error(), "SERVFAIL") {
				t.Errorf("error %q does not say SERVFAIL", err)
			}
			// 2 types x 2 servers x 2 attempts per lookup.
			if n := a.queries() + b.queries(); n != int64(8*i) {
				t.Fatalf("lookup %d: %d queries, want %d", i, n, 8*i)
			}
		}
	})
	t.Run("closed port", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := pc.LocalAddr().String()
		pc.Close()
		r, _ := newTestResolver(t, ResolverConfig{
			Servers: []string{closed}, Timeout: 100 * time.Millisecond, Attempts: 1,
		})
		_, err = r.LookupNetIP(context.Background(), "dead.example")
		var le *LookupError
		if !errors.As(err, &le) || (le.Kind != LookupServerFailure && le.Kind != LookupTimeout) {
			t.Fatalf("got %v, want a server failure or timeout", err)
		}
		if !strings.Contains(err.Error(), "querying "+closed+" for dead.example") {
			t.Errorf("error %q lacks context", err)
		}
	})
}

func TestResolverMergesConcurrentLookups(t *testing.T) {
	const callers = 50
	blocked, release := blockingHandler(newTestZone(t,
		"busy.example. 300 IN A 192.0.2.1",
		"busy.example. 300 IN AAAA 2001:db8::1",
	))
	srv := startTestDNS(t, blocked, nil)
	t.Cleanup(release)
	r, _ := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}, Timeout: time.Minute, Attempts: 1})
	joined := make(chan bool, callers)
	r.testHookJoined = func(leader bool) { joined <- leader }

	type result struct {
		addrs []netip.Addr
		err   error
	}
	results := make(chan result, callers)
	for range callers {
		go func() {
			addrs, err := r.LookupNetIP(context.Background(), "busy.example")
			results <- result{addrs, err}
		}()
	}
	leaders := 0
	for range callers {
		select {
		case leader := <-joined:
			if leader {
				leaders++
			}
		case <-time.After(testGuard):
			t.Fatal("callers did not all reach the in-flight lookup")
		}
	}
	release()
	for range callers {
		select {
		case res := <-results:
			if res.err != nil {
				t.Fatal(res.err)
			}
			wantAddrs(t, res.addrs, "2001:db8::1", "192.0.2.1")
		case <-time.After(testGuard):
			t.Fatal("lookups did not finish")
		}
	}
	if a, aaaa := srv.aQueries.Load(), srv.aaaaQueries.Load(); a != 1 || aaaa != 1 {
		t.Fatalf("server saw %d A and %d AAAA queries, want 1 and 1", a, aaaa)
	}
	if st := r.Stats(); leaders != 1 || st.Merged != callers-1 || st.Misses != callers || st.Queries != 2 {
		t.Fatalf("leaders=%d stats=%+v; want 1 leader, %d merged", leaders, st, callers-1)
	}
}

func TestResolverContextCancel(t *testing.T) {
	blocked, release := blockingHandler(newTestZone(t, "slow.example. 300 IN A 192.0.2.1"))
	srv := startTestDNS(t, blocked, nil)
	t.Cleanup(release)
	// A minute-long timeout: only cancellation can end the first caller.
	r, _ := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}, Timeout: time.Minute, Attempts: 1})
	joined := make(chan bool, 2)
	r.testHookJoined = func(leader bool) { joined <- leader }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelled := make(chan error, 1)
	go func() {
		_, err := r.LookupNetIP(ctx, "slow.example")
		cancelled <- err
	}()
	patient := make(chan []netip.Addr, 1)
	go func() {
		addrs, err := r.LookupNetIP(context.Background(), "slow.example")
		if err != nil {
			t.Error(err)
		}
		patient <- addrs
	}()
	for range 2 {
		select {
		case <-joined:
		case <-time.After(testGuard):
			t.Fatal("lookups did not start")
		}
	}

	cancel()
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(testGuard):
		t.Fatal("cancelled lookup did not return")
	}

	// The shared lookup goes on for the other caller.
	release()
	select {
	case addrs := <-patient:
		wantAddrs(t, addrs, "192.0.2.1")
	case <-time.After(testGuard):
		t.Fatal("shared lookup did not finish")
	}

	r.testHookJoined = nil
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		before := r.Stats().Queries
		_, err := r.LookupNetIP(ctx, "other.example")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if r.Stats().Queries != before {
			t.Fatal("a cancelled lookup sent queries")
		}
	})
	t.Run("deadline passed", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
		defer cancel()
		_, err := r.LookupNetIP(ctx, "other.example")
		wantLookupError(t, err, LookupTimeout)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want it to wrap context.DeadlineExceeded", err)
		}
	})
}

func TestResolverInvalidName(t *testing.T) {
	r, _ := newTestResolver(t, ResolverConfig{Servers: []string{deadUDPServer(t)}})
	for _, host := range []string{"", "a..b", strings.Repeat("a", 64) + ".example"} {
		_, err := r.LookupNetIP(context.Background(), host)
		wantLookupError(t, err, LookupNotFound)
	}
	if st := r.Stats(); st.Queries != 0 {
		t.Fatalf("invalid names were queried: %+v", st)
	}
}

func TestResolverCacheEviction(t *testing.T) {
	srv := startTestDNS(t, newTestZone(t,
		"short.example. 10 IN A 192.0.2.1",
		"long.example. 300 IN A 192.0.2.2",
		"third.example. 300 IN A 192.0.2.3",
		"fourth.example. 300 IN A 192.0.2.4",
	), nil)
	r, clock := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}, MaxEntries: 2, MinTTL: time.Second})
	if len(r.cache.shards) != 1 || r.cache.perShard != 2 {
		t.Fatalf("cache has %d shards of %d", len(r.cache.shards), r.cache.perShard)
	}
	cached := func() int {
		s := &r.cache.shards[0]
		s.mu.RLock()
		defer s.mu.RUnlock()
		return len(s.m)
	}
	mustLookup(t, r, "short.example")
	mustLookup(t, r, "long.example")
	clock.Advance(10 * time.Second) // short.example has expired

	mustLookup(t, r, "third.example") // evicts the expired entry
	queries := srv.queries()
	mustLookup(t, r, "long.example")
	if srv.queries() != queries || cached() != 2 {
		t.Fatalf("long.example was evicted instead of the expired entry (%d cached)", cached())
	}
	mustLookup(t, r, "fourth.example") // nothing expired: something goes
	if n := cached(); n != 2 {
		t.Fatalf("%d entries cached, want at most 2", n)
	}
}

func TestResolverCacheShards(t *testing.T) {
	c := &resolverCache{}
	c.init(defaultResolverMaxEntries)
	if n := len(c.shards) * c.perShard; len(c.shards) != 32 || n > defaultResolverMaxEntries {
		t.Fatalf("%d shards of %d", len(c.shards), c.perShard)
	}
}

func TestNewResolverConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := write("resolv.conf", "# test\nsearch example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\n")
	r, err := NewResolver(ResolverConfig{ResolvConf: conf, HostsFile: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.53:53", "[2001:db8::53]:53"}; !slices.Equal(r.servers, want) {
		t.Fatalf("servers from resolv.conf = %v, want %v", r.servers, want)
	}
	if r.timeout != defaultResolverTimeout || r.attempts != defaultResolverAttempts || r.minTTL != defaultResolverMinTTL ||
		r.maxTTL != defaultResolverMaxTTL || r.negativeTTL != defaultResolverNegativeTTL || r.hosts != nil {
		t.Fatalf("defaults not applied: %+v", r)
	}

	r, err = NewResolver(ResolverConfig{Servers: []string{"192.0.2.1", "[2001:db8::1]:5353", "127.0.0.1:53"}, HostsFile: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"192.0.2.1:53", "[2001:db8::1]:5353", "127.0.0.1:53"}; !slices.Equal(r.servers, want) {
		t.Fatalf("servers = %v, want %v", r.servers, want)
	}

	for name, cfg := range map[string]ResolverConfig{
		"empty resolv.conf":   {ResolvConf: write("empty.conf", "# nothing\n")},
		"missing resolv.conf": {ResolvConf: filepath.Join(dir, "missing.conf")},
		"host name server":    {Servers: []string{"dns.example:53"}},
		"negative timeout":    {Servers: []string{"192.0.2.1"}, Timeout: -1},
		"MinTTL above MaxTTL": {Servers: []string{"192.0.2.1"}, MinTTL: time.Hour, MaxTTL: time.Minute},
	} {
		cfg.HostsFile = "none"
		if _, err := NewResolver(cfg); err == nil {
			t.Errorf("%s: NewResolver succeeded", name)
		}
	}
}

func TestResolverLookupErrorKind(t *testing.T) {
	for k, want := range map[LookupErrorKind]string{
		LookupNotFound: "not found", LookupTimeout: "timeout", LookupServerFailure: "server failure", 0: "LookupErrorKind(0)",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(k), got, want)
		}
	}
	err := &LookupError{Host: "x.example", Kind: LookupServerFailure, Err: errors.New("boom")}
	if got := err.Error(); got != "lookup x.example: server failure: boom" {
		t.Errorf("Error() = %q", got)
	}
	if fmt.Sprint(errors.Unwrap(err)) != "boom" {
		t.Error("Unwrap")
	}
}

// primedResolver returns a resolver with "cached.example" in its cache.
func primedResolver(tb testing.TB) *Resolver {
	r, err := NewResolver(ResolverConfig{Servers: []string{"127.0.0.1:1"}, HostsFile: "none"})
	if err != nil {
		tb.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")}
	r.cache.put("cached.example", resolverEntry{addrs: addrs, expires: time.Now().Add(time.Hour)}, time.Now())
	return r
}

func TestResolverCacheHitAllocs(t *testing.T) {
	r := primedResolver(t)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.LookupNetIP(ctx, "cached.example"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("cache hit allocates %v times", allocs)
	}
}

func BenchmarkResolverCacheHit(b *testing.B) {
	r := primedResolver(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.LookupNetIP(ctx, "cached.example"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolverCacheHitParallel(b *testing.B) {
	r := primedResolver(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.LookupNetIP(ctx, "cached.example"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
