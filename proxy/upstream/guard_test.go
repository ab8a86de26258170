package upstream_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"waygate/proxy/upstream"
)

var guardClassTests = []struct {
	addr     string
	class    upstream.AddrClass
	embedded string // "" if none
}{
	// IPv4.
	{"8.8.8.8", upstream.Public, ""},
	{"1.1.1.1", upstream.Public, ""},
	{"223.255.255.255", upstream.Public, ""},
	{"100.63.255.255", upstream.Public, ""},
	{"100.128.0.0", upstream.Public, ""},
	{"172.15.255.255", upstream.Public, ""},
	{"172.32.0.0", upstream.Public, ""},
	{"198.17.255.255", upstream.Public, ""},
	{"198.20.0.0", upstream.Public, ""},
	{"192.0.1.1", upstream.Public, ""},
	{"9.255.255.255", upstream.Public, ""},
	{"11.0.0.0", upstream.Public, ""},
	{"0.0.0.0", upstream.Unspecified, ""},
	{"0.1.2.3", upstream.Unspecified, ""},
	{"0.255.255.255", upstream.Unspecified, ""},
	{"127.0.0.1", upstream.Loopback, ""},
	{"127.255.255.254", upstream.Loopback, ""},
	{"10.0.0.1", upstream.Private, ""},
	{"10.255.255.255", upstream.Private, ""},
	{"172.16.0.1", upstream.Private, ""},
	{"172.31.255.255", upstream.Private, ""},
	{"192.168.1.1", upstream.Private, ""},
	{"169.254.169.254", upstream.LinkLocal, ""},
	{"100.64.0.1", upstream.CGNAT, ""},
	{"100.127.255.255", upstream.CGNAT, ""},
	{"224.0.0.1", upstream.Multicast, ""},
	{"239.255.255.250", upstream.Multicast, ""},
	{"255.255.255.255", upstream.Broadcast, ""},
	{"240.0.0.1", upstream.Reserved, ""},
	{"255.255.255.254", upstream.Reserved, ""},
	{"192.0.0.8", upstream.Reserved, ""},
	{"192.0.2.1", upstream.Reserved, ""},
	{"198.51.100.1", upstream.Reserved, ""},
	{"203.0.113.1", upstream.Reserved, ""},
	{"198.18.0.1", upstream.Reserved, ""},
	{"198.19.255.255", upstream.Reserved, ""},
	{"192.88.99.1", upstream.Reserved, ""},
	// IPv4-mapped IPv6: classified as the IPv4 address.
	{"::ffff:8.8.8.8", upstream.Public, ""},
	{"::ffff:127.0.0.1", upstream.Loopback, ""},
	{"::ffff:10.1.2.3", upstream.Private, ""},
	{"::ffff:0.0.0.0", upstream.Unspecified, ""},
	{"::ffff:255.255.255.255", upstream.Broadcast, ""},
	// IPv6.
	{"2606:4700:4700::1111", upstream.Public, ""},
	{"2a00:1450:4001:80b::200e", upstream.Public, ""},
	{"2001:4860:4860::8888", upstream.Public, ""},
	{"2001:1::1", upstream.Public, ""}, // RFC 7723 PCP anycast: globally reachable
	{"::", upstream.Unspecified, ""},
	{"::1", upstream.Loopback, ""},
	{"fc00::1", upstream.Private, ""},
	{"fd12:3456:789a::1", upstream.Private, ""},
	{"fe80::1", upstream.LinkLocal, ""},
	{"fe80::1%eth0", upstream.LinkLocal, ""},
	{"febf:ffff::1", upstream.LinkLocal, ""},
	{"ff02::1", upstream.Multicast, ""},
	{"ff0e::1", upstream.Multicast, ""},
	{"2001:db8::1", upstream.Reserved, ""},
	{"3fff::1", upstream.Reserved, ""},
	{"100::1", upstream.Reserved, ""},
	{"100:0:0:1::1", upstream.Reserved, ""}, // outside 2000::/3
	{"fec0::1", upstream.Reserved, ""},
	{"::7f00:1", upstream.Reserved, ""},  // IPv4-compatible ::127.0.0.1
	{"::808:808", upstream.Reserved, ""}, // IPv4-compatible ::8.8.8.8
	{"::2", upstream.Reserved, ""},       // IPv4-compatible ::0.0.0.2
	{"64:ff9b:1::1", upstream.Reserved, ""},
	{"2001:2::1", upstream.Reserved, ""},
	{"2001:10::1", upstream.Reserved, ""},
	{"2001:20::1", upstream.Reserved, ""},
	{"5f00::1", upstream.Reserved, ""},
	{"4000::1", upstream.Reserved, ""},
	{"1::1", upstream.Reserved, ""},
	{"::ffff:0:808:808", upstream.Reserved, ""}, // SIIT ::ffff:0:0:0/96
	{"2001::1", upstream.Teredo, ""},
	{"2001:0:4136:e378:8000:63bf:3fff:fdd2", upstream.Teredo, ""},
	// NAT64 (RFC 6052) and 6to4 (RFC 3056) with embedded IPv4.
	{"64:ff9b::808:808", upstream.Public, ""},
	{"64:ff9b::8.8.8.8", upstream.Public, ""},
	{"64:ff9b::7f00:1", upstream.Loopback, "127.0.0.1"},
	{"64:ff9b::a00:1", upstream.Private, "10.0.0.1"},
	{"64:ff9b::a9fe:a9fe", upstream.LinkLocal, "169.254.169.254"},
	{"64:ff9b::", upstream.Unspecified, "0.0.0.0"},
	{"64:ff9b::1:0:0:1", upstream.Reserved, ""}, // outside the /96, outside 2000::/3
	{"2002:808:808::1", upstream.Public, ""},
	{"2002:7f00:1::1", upstream.Loopback, "127.0.0.1"},
	{"2002:c0a8:101::", upstream.Private, "192.168.1.1"},
	{"2002:6440:1::1", upstream.CGNAT, "100.64.0.1"},
	{"2002:e000:1::", upstream.Multicast, "224.0.0.1"},
	{"2002:ffff:ffff::", upstream.Broadcast, "255.255.255.255"},
	{"2002:c000:201::", upstream.Reserved, "192.0.2.1"},
}

func TestClassify(t *testing.T) {
	for _, tt := range guardClassTests {
		a := netip.MustParseAddr(tt.addr)
		class, emb := upstream.ClassifyEmbedded(a)
		var wantEmb netip.Addr
		if tt.embedded != "" {
			wantEmb = netip.MustParseAddr(tt.embedded)
		}
		if class != tt.class || emb != wantEmb {
			t.Errorf("ClassifyEmbedded(%v) = %v, %v; want %v, %v", a, class, emb, tt.class, wantEmb)
		}
		if got := upstream.Classify(a); got != tt.class {
			t.Errorf("Classify(%v) = %v; want %v", a, got, tt.class)
		}
	}
	if got := upstream.Classify(netip.Addr{}); got != upstream.Invalid {
		t.Errorf("Classify(zero) = %v; want Invalid", got)
	}
}

func TestGuardCheckClasses(t *testing.T) {
	for _, g := range []*upstream.Guard{nil, {}, upstream.NewGuard(upstream.GuardConfig{})} {
		for _, tt := range guardClassTests {
			dst := netip.AddrPortFrom(netip.MustParseAddr(tt.addr), 443)
			err := g.Check(dst)
			if tt.class == upstream.Public {
				if err != nil {
					t.Errorf("Check(%v) = %v; want nil", dst, err)
				}
				continue
			}
			var de *upstream.DeniedError
			if !errors.As(err, &de) {
				t.Errorf("Check(%v) = %v; want *DeniedError", dst, err)
				continue
			}
			if de.Addr != dst || de.Class != tt.class || (de.Embedded.IsValid() != (tt.embedded != "")) {
				t.Errorf("Check(%v) = %+v; want class %v embedded %q", dst, *de, tt.class, tt.embedded)
			}
		}
	}
	var g *upstream.Guard
	if err := g.Check(netip.AddrPort{}); err == nil {
		t.Error("Check(zero AddrPort) = nil; want denied")
	}
}

func TestDeniedErrorMessage(t *testing.T) {
	tests := []struct{ dst, want string }{
		{"127.0.0.1:80", "destination 127.0.0.1:80 denied: loopback address"},
		{"[64:ff9b::7f00:1]:80", "destination [64:ff9b::7f00:1]:80 denied: loopback address (embedded IPv4 127.0.0.1)"},
		{"[2002:a00:1::]:443", "destination [2002:a00:1::]:443 denied: private address (embedded IPv4 10.0.0.1)"},
		{"[::ffff:169.254.169.254]:80", "destination [::ffff:169.254.169.254]:80 denied: link-local address"},
		{"[2001::1]:80", "destination [2001::1]:80 denied: Teredo address"},
		{"100.64.0.1:80", "destination 100.64.0.1:80 denied: carrier-grade NAT address"},
	}
	for _, tt := range tests {
		err := (*upstream.Guard)(nil).Check(netip.MustParseAddrPort(tt.dst))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Check(%s) = %v; want %q", tt.dst, err, tt.want)
		}
	}
	g := upstream.NewGuard(upstream.GuardConfig{Self: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:3128")}})
	err := g.Check(netip.MustParseAddrPort("127.0.0.1:3128"))
	if want := "destination 127.0.0.1:3128 denied: gateway's own listen address"; err == nil || err.Error() != want {
		t.Errorf("Check(self) = %v; want %q", err, want)
	}
}

func TestAddrClassString(t *testing.T) {
	seen := map[string]bool{}
	for c := upstream.Invalid; c <= upstream.Teredo; c++ {
		s := c.String()
		if s == "" || seen[s] {
			t.Errorf("AddrClass(%d).String() = %q: empty or duplicate", int(c), s)
		}
		seen[s] = true
	}
	if got := upstream.AddrClass(99).String(); got != "AddrClass(99)" {
		t.Errorf("AddrClass(99).String() = %q", got)
	}
}

func TestGuardAllowAndSelf(t *testing.T) {
	pfx := netip.MustParsePrefix
	ap := netip.MustParseAddrPort
	tests := []struct {
		name  string
		cfg   upstream.GuardConfig
		dst   string
		class upstream.AddrClass // Public: allowed
	}{
		{"allow host", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.1/32")}}, "127.0.0.1:80", upstream.Public},
		{"allow host, mapped dst", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.1/32")}}, "[::ffff:127.0.0.1]:80", upstream.Public},
		{"allow host, other host", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.1/32")}}, "127.0.0.2:80", upstream.Loopback},
		{"allow unmasked prefix", upstream.GuardConfig{Allow: []netip.Prefix{pfx("10.1.2.3/16")}}, "10.1.200.1:80", upstream.Public},
		{"allow prefix, outside", upstream.GuardConfig{Allow: []netip.Prefix{pfx("10.1.0.0/16")}}, "10.2.0.1:80", upstream.Private},
		{"allow mapped prefix", upstream.GuardConfig{Allow: []netip.Prefix{pfx("::ffff:192.168.1.0/120")}}, "192.168.1.7:80", upstream.Public},
		{"allow mapped prefix, mapped dst", upstream.GuardConfig{Allow: []netip.Prefix{pfx("::ffff:192.168.1.0/120")}}, "[::ffff:192.168.1.7]:80", upstream.Public},
		{"allow mapped prefix, outside", upstream.GuardConfig{Allow: []netip.Prefix{pfx("::ffff:192.168.1.0/120")}}, "192.168.2.7:80", upstream.Private},
		{"allow ::/0 covers IPv4", upstream.GuardConfig{Allow: []netip.Prefix{pfx("::/0")}}, "10.0.0.1:80", upstream.Public},
		{"allow ULA", upstream.GuardConfig{Allow: []netip.Prefix{pfx("fd00::/8")}}, "[fd00::5]:80", upstream.Public},
		{"allow link-local, zoned dst", upstream.GuardConfig{Allow: []netip.Prefix{pfx("fe80::/10")}}, "[fe80::1%eth0]:80", upstream.Public},
		{"allow IPv4 does not cover NAT64", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}}, "[64:ff9b::7f00:1]:80", upstream.Loopback},
		{"allow NAT64 literal", upstream.GuardConfig{Allow: []netip.Prefix{pfx("64:ff9b::7f00:1/128")}}, "[64:ff9b::7f00:1]:80", upstream.Public},
		{"allow Teredo", upstream.GuardConfig{Allow: []netip.Prefix{pfx("2001::/32")}}, "[2001::1]:80", upstream.Public},
		{"invalid allow ignored", upstream.GuardConfig{Allow: []netip.Prefix{{}}}, "10.0.0.1:80", upstream.Private},

		{"self specific", upstream.GuardConfig{Self: []netip.AddrPort{ap("127.0.0.1:3128")}}, "127.0.0.1:3128", upstream.SelfAddress},
		{"self beats allow", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}, Self: []netip.AddrPort{ap("127.0.0.1:3128")}}, "127.0.0.1:3128", upstream.SelfAddress},
		{"self beats allow, mapped dst", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}, Self: []netip.AddrPort{ap("127.0.0.1:3128")}}, "[::ffff:127.0.0.1]:3128", upstream.SelfAddress},
		{"self other port allowed", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}, Self: []netip.AddrPort{ap("127.0.0.1:3128")}}, "127.0.0.1:80", upstream.Public},
		{"self other addr allowed", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}, Self: []netip.AddrPort{ap("127.0.0.1:3128")}}, "127.0.0.2:3128", upstream.Public},
		{"self other port not allowed", upstream.GuardConfig{Self: []netip.AddrPort{ap("127.0.0.1:3128")}}, "127.0.0.1:80", upstream.Loopback},
		{"self mapped listen", upstream.GuardConfig{Self: []netip.AddrPort{ap("[::ffff:10.9.9.9]:8080")}}, "10.9.9.9:8080", upstream.SelfAddress},
		{"self public listen", upstream.GuardConfig{Self: []netip.AddrPort{ap("203.0.114.5:443")}}, "203.0.114.5:443", upstream.SelfAddress},
		{"self public listen, other port", upstream.GuardConfig{Self: []netip.AddrPort{ap("203.0.114.5:443")}}, "203.0.114.5:80", upstream.Public},
		{"self port 0 any port", upstream.GuardConfig{Self: []netip.AddrPort{ap("203.0.114.5:0")}}, "203.0.114.5:80", upstream.SelfAddress},
		{"self v6", upstream.GuardConfig{Allow: []netip.Prefix{pfx("::1/128")}, Self: []netip.AddrPort{ap("[::1]:3128")}}, "[::1]:3128", upstream.SelfAddress},
		{"self v6 zone", upstream.GuardConfig{Self: []netip.AddrPort{ap("[fe80::1%eth0]:3128")}}, "[fe80::1%lo]:3128", upstream.SelfAddress},
		{"self unspecified v4, loopback", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}, Self: []netip.AddrPort{ap("0.0.0.0:3128")}}, "127.0.0.1:3128", upstream.SelfAddress},
		{"self unspecified v4, 127/8", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}, Self: []netip.AddrPort{ap("0.0.0.0:3128")}}, "127.3.2.1:3128", upstream.SelfAddress},
		{"self unspecified v4, ::1", upstream.GuardConfig{Allow: []netip.Prefix{pfx("::1/128")}, Self: []netip.AddrPort{ap("0.0.0.0:3128")}}, "[::1]:3128", upstream.SelfAddress},
		{"self unspecified v4, 0.0.0.0", upstream.GuardConfig{Self: []netip.AddrPort{ap("0.0.0.0:3128")}}, "0.0.0.0:3128", upstream.SelfAddress},
		{"self unspecified v4, other port", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}, Self: []netip.AddrPort{ap("0.0.0.0:3128")}}, "127.0.0.1:80", upstream.Public},
		{"self unspecified v6, loopback", upstream.GuardConfig{Allow: []netip.Prefix{pfx("127.0.0.0/8")}, Self: []netip.AddrPort{ap("[::]:3128")}}, "127.0.0.1:3128", upstream.SelfAddress},
		{"self unspecified, public dst", upstream.GuardConfig{Self: []netip.AddrPort{ap("[::]:3128")}}, "8.8.8.8:3128", upstream.Public},
		{"self invalid ignored", upstream.GuardConfig{Self: []netip.AddrPort{{}}}, "8.8.8.8:0", upstream.Public},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := upstream.NewGuard(tt.cfg)
			dst := ap(tt.dst)
			err := g.Check(dst)
			if tt.class == upstream.Public {
				if err != nil {
					t.Fatalf("Check(%v) = %v; want nil", dst, err)
				}
				return
			}
			var de *upstream.DeniedError
			if !errors.As(err, &de) || de.Class != tt.class || de.Addr != dst {
				t.Fatalf("Check(%v) = %v; want denied as %v", dst, err, tt.class)
			}
		})
	}
}

// TestGuardSelfInterfaces checks that an unspecified listen address covers
// every address of every local interface, in both spellings.
func TestGuardSelfInterfaces(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip("no interface addresses:", err)
	}
	all := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	g := upstream.NewGuard(upstream.GuardConfig{Allow: all, Self: []netip.AddrPort{netip.MustParseAddrPort("[::]:3128")}})
	for _, ia := range addrs {
		ipn, ok := ia.(*net.IPNet)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		for _, v := range []netip.Addr{a, netip.AddrFrom16(a.As16())} {
			var de *upstream.DeniedError
			if err := g.Check(netip.AddrPortFrom(v, 3128)); !errors.As(err, &de) || de.Class != upstream.SelfAddress {
				t.Errorf("Check(%v:3128) = %v; want self address", v, err)
			}
			if err := g.Check(netip.AddrPortFrom(v, 3129)); err != nil {
				t.Errorf("Check(%v:3129) = %v; want allowed", v, err)
			}
		}
	}
}

func TestGuardCheckNoAllocs(t *testing.T) {
	g := guardBenchGuard()
	for _, s := range []string{"8.8.8.8:443", "[2606:4700:4700::1111]:443", "[::ffff:8.8.8.8]:443", "10.1.2.3:80", "[64:ff9b::808:808]:443"} {
		dst := netip.MustParseAddrPort(s)
		if n := testing.AllocsPerRun(100, func() {
			if g.Check(dst) != nil {
				panic("denied")
			}
		}); n != 0 {
			t.Errorf("Check(%v): %v allocs; want 0", dst, n)
		}
	}
}

func guardBenchGuard() *upstream.Guard {
	return upstream.NewGuard(upstream.GuardConfig{
		Allow: []netip.Prefix{
			netip.MustParsePrefix("10.1.0.0/16"),
			netip.MustParsePrefix("::ffff:192.168.1.0/120"),
			netip.MustParsePrefix("fd00::/8"),
		},
		Self: []netip.AddrPort{
			netip.MustParseAddrPort("127.0.0.1:3128"),
			netip.MustParseAddrPort("[::1]:3128"),
			netip.MustParseAddrPort("192.0.2.10:8080"),
		},
	})
}

func BenchmarkGuardCheck(b *testing.B) {
	g := guardBenchGuard()
	for _, bc := range []struct{ name, dst string }{
		{"public4", "8.8.8.8:443"},
		{"public6", "[2606:4700:4700::1111]:443"},
		{"denied4", "127.0.0.1:80"},
	} {
		dst := netip.MustParseAddrPort(bc.dst)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = g.Check(dst)
			}
		})
	}
}

func FuzzGuardCheck(f *testing.F) {
	f.Add([]byte{15: 1}, uint16(80))
	f.Add([]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}, uint16(3128))
	f.Add([]byte{0, 0x64, 0xff, 0x9b, 12: 10, 15: 1}, uint16(443))
	f.Add([]byte{0x20, 0x02, 192, 168, 1, 1}, uint16(443))
	f.Add([]byte{0x20, 0x01, 15: 1}, uint16(443))
	f.Add([]byte{10: 0xff, 11: 0xff, 12: 10, 13: 1, 14: 2, 15: 3}, uint16(80))
	f.Add([]byte{10: 0xff, 11: 0xff, 12: 10, 13: 9, 14: 9, 15: 9}, uint16(8080))
	g := upstream.NewGuard(upstream.GuardConfig{
		Allow: []netip.Prefix{
			netip.MustParsePrefix("10.1.0.0/16"),
			netip.MustParsePrefix("::ffff:192.168.1.0/120"),
			netip.MustParsePrefix("fd00::/8"),
			netip.MustParsePrefix("127.0.0.0/8"),
		},
		Self: []netip.AddrPort{
			netip.MustParseAddrPort("127.0.0.1:3128"),
			netip.MustParseAddrPort("[::ffff:10.9.9.9]:8080"),
			netip.MustParseAddrPort("[::]:9999"),
		},
	})
	guards := []*upstream.Guard{nil, g}
	f.Fuzz(func(t *testing.T, raw []byte, port uint16) {
		var b [16]byte
		copy(b[:], raw)
		a16 := netip.AddrFrom16(b)
		a4 := netip.AddrFrom4([4]byte(b[12:]))
		for _, g := range guards {
			for _, a := range []netip.Addr{a16, a4} {
				u, m := a.Unmap(), netip.AddrFrom16(a.As16())
				eu := g.Check(netip.AddrPortFrom(u, port))
				em := g.Check(netip.AddrPortFrom(m, port))
				if (eu == nil) != (em == nil) {
					t.Fatalf("Check(%v) = %v but Check(%v) = %v", u, eu, m, em)
				}
				var du, dm *upstream.DeniedError
				if eu != nil && (!errors.As(eu, &du) || !errors.As(em, &dm) || du.Class != dm.Class || du.Class == upstream.Public) {
					t.Fatalf("Check(%v) = %v; Check(%v) = %v", u, eu, m, em)
				}
				if c := upstream.Classify(u); c != upstream.Classify(m) || c == upstream.Invalid || c == upstream.SelfAddress {
					t.Fatalf("Classify(%v) = %v; Classify(%v) = %v", u, c, m, upstream.Classify(m))
				}
				if g == nil && (eu == nil) != (upstream.Classify(u) == upstream.Public) {
					t.Fatalf("nil Guard: Check(%v) = %v but class %v", u, eu, upstream.Classify(u))
				}
			}
		}
	})
}
