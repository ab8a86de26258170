package reverse

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestRoundRobinExactSpread(t *testing.T) {
	r := btRegistry(t, nil)
	p := btPool(t, r, PoolConfig{Backends: btBackends(t, 4)})
	bs := p.Backends()
	count := map[*Backend]int{}
	var prev *Backend
	for i := range 400 {
		b := btPick(t, p)
		if b == prev {
			t.Fatalf("pick %d repeated %s", i, b)
		}
		if want := bs[i%4]; b != want {
			t.Fatalf("pick %d = %s, want %s", i, b, want)
		}
		prev = b
		count[b]++
		b.Done(nil)
	}
	for _, b := range bs {
		if count[b] != 100 {
			t.Errorf("%s picked %d times, want 100", b, count[b])
		}
	}
	// Skipping an unhealthy backend keeps the others exact.
	bs[2].state.healthy.Store(false)
	clear(count)
	for range 300 {
		b := btPick(t, p)
		count[b]++
		b.Done(nil)
	}
	if count[bs[2]] != 0 || count[bs[0]]+count[bs[1]]+count[bs[3]] != 300 {
		t.Errorf("spread with one down = %v", count)
	}
	var total uint64
	for _, s := range p.Status() {
		total += s.Requests
	}
	if total != 700 {
		t.Errorf("requests counted = %d, want 700", total)
	}
}

func TestWeightedSmooth(t *testing.T) {
	r := btRegistry(t, nil)
	p := btPool(t, r, PoolConfig{Balance: "weighted", Backends: []BackendConfig{
		{URL: btURL(t, "http://a:80"), Weight: 5},
		{URL: btURL(t, "http://b:80"), Weight: 1},
		{URL: btURL(t, "http://c:80")}, // 0 means 1
	}})
	// nginx's documented sequence for weights 5, 1, 1.
	var seq strings.Builder
	for range 7 {
		b := btPick(t, p)
		seq.WriteString(b.URL().Hostname())
		b.Done(nil)
	}
	if got := seq.String(); got != "aabacaa" {
		t.Errorf("sequence = %q, want aabacaa", got)
	}
	count := map[string]int{}
	for range 700 {
		b := btPick(t, p)
		count[b.URL().Hostname()]++
		b.Done(nil)
	}
	if count["a"] != 500 || count["b"] != 100 || count["c"] != 100 {
		t.Errorf("spread = %v, want a:500 b:100 c:100", count)
	}
}

func TestWeightedProportional(t *testing.T) {
	r := btRegistry(t, nil)
	weights := []int{1, 2, 3, 4}
	cfg := PoolConfig{Balance: "weighted", Backends: btBackends(t, 4)}
	for i, w := range weights {
		cfg.Backends[i].Weight = w
	}
	p := btPool(t, r, cfg)
	count := map[*Backend]int{}
	for range 1000 {
		b := btPick(t, p)
		count[b]++
		b.Done(nil)
	}
	for i, b := range p.Backends() {
		if want := weights[i] * 100; count[b] != want {
			t.Errorf("%s (weight %d) picked %d, want %d", b, weights[i], count[b], want)
		}
	}
	// Without the heaviest backend the others keep their ratio.
	p.Backends()[3].state.healthy.Store(false)
	clear(count)
	for range 600 {
		b := btPick(t, p)
		count[b]++
		b.Done(nil)
	}
	for i, b := range p.Backends()[:3] {
		if want := weights[i] * 100; count[b] != want {
			t.Errorf("with one down %s picked %d, want %d", b, count[b], want)
		}
	}
}

func TestLeastConn(t *testing.T) {
	r := btRegistry(t, nil)
	p := btPool(t, r, PoolConfig{Balance: "least_conn", Backends: btBackends(t, 3)})
	bs := p.Backends()
	// Hold 2 slots on bs[0] and 1 on bs[1] (via tried), then the idle
	// bs[2] must win every time.
	hold := []*Backend{btPick(t, p, bs[1], bs[2]), btPick(t, p, bs[1], bs[2]), btPick(t, p, bs[0], bs[2])}
	for range 20 {
		b := btPick(t, p)
		if b != bs[2] {
			t.Fatalf("least_conn picked %s, want idle %s", b, bs[2])
		}
		b.Done(nil)
	}
	// Uneven load from a stream of overlapping requests: the held-up
	// backends get nothing until they drain.
	held := btPick(t, p) // bs[2] now 1: bs[1] and bs[2] tie at 1
	count := map[*Backend]int{}
	for range 100 {
		b := btPick(t, p)
		count[b]++
		b.Done(nil)
	}
	if count[bs[0]] != 0 || count[bs[1]] != 50 || count[bs[2]] != 50 {
		t.Errorf("ties at 1 in flight: picks = %v, want bs[1] and bs[2] 50 each", count)
	}
	held.Done(nil)
	for _, b := range hold {
		b.Done(nil)
	}
	// All idle: ties rotate over every backend.
	clear(count)
	var prev *Backend
	for range 300 {
		b := btPick(t, p)
		if b == prev {
			t.Fatalf("idle tie picked %s twice in a row", b)
		}
		prev = b
		count[b]++
		b.Done(nil)
	}
	for _, b := range bs {
		if count[b] != 100 {
			t.Errorf("idle ties: %s picked %d, want 100", b, count[b])
		}
	}
}

func TestLeastConnWeighted(t *testing.T) {
	r := btRegistry(t, nil)
	p := btPool(t, r, PoolConfig{Balance: "least_conn", Backends: []BackendConfig{
		{URL: btURL(t, "http://big:80"), Weight: 3},
		{URL: btURL(t, "http://small:80")},
	}})
	var held []*Backend
	count := map[string]int{}
	for range 8 {
		b := btPick(t, p)
		held = append(held, b)
		count[b.URL().Hostname()]++
	}
	if count["big"] != 6 || count["small"] != 2 {
		t.Errorf("8 concurrent slots = %v, want big:6 small:2", count)
	}
	for _, b := range held {
		b.Done(nil)
	}
}

// btHashAssign maps keys (as header values) to backend hosts.
func btHashAssign(t *testing.T, p *Pool, keys []string) []string {
	t.Helper()
	out := make([]string, len(keys))
	req, _ := http.NewRequest("GET", "http://x/", nil)
	for i, k := range keys {
		req.Header.Set("X-User", k)
		b, err := p.Pick(req, netip.Addr{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b.URL().Host
		b.Done(nil)
	}
	return out
}

func btHashConfig(t *testing.T, n int) PoolConfig {
	return PoolConfig{Balance: "hash", Hash: HashOn{Kind: "header", Name: "x-user"}, Backends: btBackends(t, n)}
}

func TestHashStableAndBalanced(t *testing.T) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	r1 := btRegistry(t, nil)
	a := btHashAssign(t, btPool(t, r1, btHashConfig(t, 10)), keys)
	// A separate registry (as another process would) maps identically,
	// and so does the same pool asked again.
	r2 := btRegistry(t, nil)
	p2 := btPool(t, r2, btHashConfig(t, 10))
	b := btHashAssign(t, p2, keys)
	c := btHashAssign(t, p2, keys)
	per := map[string]int{}
	for i := range keys {
		if a[i] != b[i] || b[i] != c[i] {
			t.Fatalf("key %q mapped to %s, %s, %s", keys[i], a[i], b[i], c[i])
		}
		per[a[i]]++
	}
	if len(per) != 10 {
		t.Fatalf("keys reached %d of 10 backends", len(per))
	}
	for host, n := range per {
		if n < 600 || n > 1400 {
			t.Errorf("%s got %d of 10000 keys, want 1000±400", host, n)
		}
	}
}

func TestHashPinnedValues(t *testing.T) {
	// The ring must be identical across processes and versions: pin the
	// hash function.
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"", 0xefd01f60ba992926},
		{"user-1", 0x41a2fca5c68401c5},
		{"http://10.0.0.1:8080#0", 0x59db03eb71775c5e},
	} {
		if got := ringHashString(tc.in); got != tc.want {
			t.Errorf("ringHashString(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
		if got := ringHashBytes([]byte(tc.in)); got != ringHashString(tc.in) {
			t.Errorf("ringHashBytes(%q) differs", tc.in)
		}
	}
	if ringHashAddr(netip.MustParseAddr("192.0.2.1")) != ringHashAddr(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Error("IPv4 and IPv4-mapped IPv6 hash differently")
	}
}

func TestHashRemovalMovesOneNth(t *testing.T) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("session-%d", i)
	}
	r := btRegistry(t, nil)
	full := btHashConfig(t, 10)
	before := btHashAssign(t, btPool(t, r, full), keys)
	removed := full.Backends[4].URL.Host
	less := full
	less.Backends = append(append([]BackendConfig(nil), full.Backends[:4]...), full.Backends[5:]...)
	after := btHashAssign(t, btPool(t, r, less), keys)

	moved := 0
	for i := range keys {
		switch {
		case before[i] == removed && after[i] == removed:
			t.Fatalf("key %q still on removed backend", keys[i])
		case before[i] != removed && after[i] != before[i]:
			t.Fatalf("key %q moved from %s to %s though its backend stayed", keys[i], before[i], after[i])
		case before[i] != after[i]:
			moved++
		}
	}
	frac := float64(moved) / float64(len(keys))
	if frac == 0 || frac >= 0.15 {
		t.Errorf("removing 1 of 10 backends moved %.3f of keys, want about 0.1", frac)
	}
	t.Logf("moved fraction %.4f", frac)

	// An unhealthy backend behaves like a removed one: its keys go to the
	// next backend on the ring, exactly where removal would send them.
	p := btPool(t, r, full)
	p.Backends()[4].state.healthy.Store(false)
	down := btHashAssign(t, p, keys)
	for i := range keys {
		if down[i] != after[i] {
			t.Fatalf("key %q: with backend down on %s, with it removed on %s", keys[i], down[i], after[i])
		}
	}
	// So does a full one, and a tried one.
	p.Backends()[4].state.healthy.Store(true)
	req, _ := http.NewRequest("GET", "http://x/", nil)
	for i, k := range keys[:500] {
		req.Header.Set("X-User", k)
		b, err := p.Pick(req, netip.Addr{}, []*Backend{p.Backends()[4]})
		if err != nil {
			t.Fatal(err)
		}
		if b.URL().Host != after[i] {
			t.Fatalf("key %q with backend tried on %s, want %s", k, b.URL().Host, after[i])
		}
		b.Done(nil)
	}
}

func TestHashWeighted(t *testing.T) {
	r := btRegistry(t, nil)
	cfg := PoolConfig{Balance: "hash", Backends: btBackends(t, 2)}
	cfg.Backends[0].Weight = 3
	p := btPool(t, r, cfg)
	count := map[*Backend]int{}
	for i := range 20000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b, err := p.Pick(nil, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		count[b]++
		b.Done(nil)
	}
	ratio := float64(count[p.Backends()[0]]) / float64(count[p.Backends()[1]])
	if math.Abs(ratio-3) > 0.6 {
		t.Errorf("weight 3:1 gave %v (ratio %.2f)", count, ratio)
	}
}

func TestHashKeySources(t *testing.T) {
	r := btRegistry(t, nil)
	client1 := netip.MustParseAddr("198.51.100.1")
	// Find two clients that land on different backends.
	pClient := btPool(t, r, PoolConfig{Route: "c", Balance: "hash", Backends: btBackends(t, 5)})
	pick := func(p *Pool, req *http.Request, a netip.Addr) *Backend {
		t.Helper()
		b, err := p.Pick(req, a, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Done(nil)
		return b
	}
	var client2 netip.Addr
	for i := 2; i < 250; i++ {
		a := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		if pick(pClient, nil, a) != pick(pClient, nil, client1) {
			client2 = a
			break
		}
	}
	if !client2.IsValid() {
		t.Fatal("all clients hash to one backend")
	}
	first := pick(pClient, nil, client1)
	for range 10 {
		if pick(pClient, nil, client1) != first {
			t.Fatal("client hash unstable")
		}
	}
	if pick(pClient, nil, client1) != pick(pClient, nil, netip.AddrFrom16(client1.As16())) {
		t.Error("IPv4-mapped client maps elsewhere")
	}

	for _, kind := range []string{"header", "cookie"} {
		t.Run(kind, func(t *testing.T) {
			p := btPool(t, r, PoolConfig{Route: kind, Balance: "hash", Hash: HashOn{Kind: kind, Name: "sid"}, Backends: btBackends(t, 5)})
			newReq := func(v string) *http.Request {
				req, _ := http.NewRequest("GET", "http://x/", nil)
				if v != "" {
					if kind == "header" {
						req.Header.Set("Sid", v)
					} else {
						req.Header.Add("Cookie", "theme=dark; sid="+v+"; other=1")
					}
				}
				return req
			}
			// Same key from different clients: same backend. Different
			// keys reach more than one backend.
			seen := map[*Backend]bool{}
			for i := range 50 {
				v := fmt.Sprintf("key-%d", i)
				b1 := pick(p, newReq(v), client1)
				b2 := pick(p, newReq(v), client2)
				if b1 != b2 {
					t.Fatalf("key %q from two clients went to %s and %s", v, b1, b2)
				}
				seen[b1] = true
			}
			if len(seen) < 3 {
				t.Errorf("50 keys reached only %d backends", len(seen))
			}
			// Missing key: the client address decides, like "client".
			for _, req := range []*http.Request{newReq(""), nil} {
				if pick(p, req, client1).URL().Host != pick(pClient, nil, client1).URL().Host ||
					pick(p, req, client2).URL().Host != pick(pClient, nil, client2).URL().Host {
					t.Error("missing key does not fall back to the client address")
				}
			}
		})
	}

	// Cookie parsing details.
	h := http.Header{"Cookie": {"a=1; sid2=x", ` sid="quoted" ; b=2`}}
	if v := hashCookieValue(h, "sid"); v != "quoted" {
		t.Errorf("cookie value = %q", v)
	}
	if v := hashCookieValue(h, "sid2"); v != "x" {
		t.Errorf("cookie value = %q", v)
	}
	if v := hashCookieValue(h, "none"); v != "" {
		t.Errorf("cookie value = %q", v)
	}
}

// pickCases are the balancing methods TestPickAllocations and
// BenchmarkPick run Pick with (a request with X-User and a sid cookie).
var pickCases = []struct {
	name string
	cfg  PoolConfig
}{
	{"round_robin", PoolConfig{}},
	{"weighted", PoolConfig{Balance: "weighted"}},
	{"least_conn", PoolConfig{Balance: "least_conn"}},
	{"hash_client", PoolConfig{Balance: "hash"}},
	{"hash_header", PoolConfig{Balance: "hash", Hash: HashOn{Kind: "header", Name: "X-User"}}},
	{"hash_cookie", PoolConfig{Balance: "hash", Hash: HashOn{Kind: "cookie", Name: "sid"}}},
}

func TestPickAllocations(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.Header.Set("X-User", "alice")
	req.Header.Set("Cookie", "a=b; sid=123")
	client := netip.MustParseAddr("192.0.2.10")
	for _, tc := range pickCases {
		r := btRegistry(t, nil)
		tc.cfg.Backends = btBackends(t, 4)
		p := btPool(t, r, tc.cfg)
		tried := []*Backend{p.Backends()[1]}
		allocs := testing.AllocsPerRun(200, func() {
			b, err := p.Pick(req, client, tried)
			if err != nil {
				t.Fatal(err)
			}
			b.Done(nil)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Pick", tc.name, allocs)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://x/", nil)
	req.Header.Set("X-User", "alice")
	req.Header.Set("Cookie", "theme=dark; sid=1234567890")
	client := netip.MustParseAddr("192.0.2.10")
	for _, tc := range pickCases {
		r := btRegistry(b, nil)
		tc.cfg.Backends = btBackends(b, 4)
		for i := range tc.cfg.Backends {
			tc.cfg.Backends[i].Weight = i + 1
		}
		p := btPool(b, r, tc.cfg)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				be, err := p.Pick(req, client, nil)
				if err != nil {
					b.Fatal(err)
				}
				be.Done(nil)
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					be, err := p.Pick(req, client, nil)
					if err != nil {
						b.Error(err)
						return
					}
					be.Done(nil)
				}
			})
		})
	}
}
