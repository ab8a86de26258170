package upstream_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"waygate/proxy/upstream"
)

// TestGuardExempt: an Exempt entry lets through exactly its address and
// port, in any spelling of that address, and nothing near it; entries that
// would stand for more than one destination are ignored; Self wins.
func TestGuardExempt(t *testing.T) {
	ap := netip.MustParseAddrPort
	g := upstream.NewGuard(upstream.GuardConfig{
		Exempt: []netip.AddrPort{
			ap("127.0.0.1:40111"),
			ap("[::ffff:127.0.0.5]:40112"), // mapped: stands for 127.0.0.5
			ap("[fe80::1%eth0]:40113"),     // zone ignored
			ap("127.0.0.1:0"),              // port 0: ignored
			ap("0.0.0.0:40114"),            // unspecified: ignored
			ap("[::]:40114"),               // unspecified: ignored
			ap("224.0.0.1:40115"),          // multicast: ignored
			ap("255.255.255.255:40116"),    // broadcast: ignored
			ap("127.0.0.1:3128"),           // also a listen address: Self wins
		},
		Self: []netip.AddrPort{ap("0.0.0.0:3128")},
	})
	tests := []struct {
		dst   string
		allow bool
		class upstream.AddrClass // when denied
	}{
		{"127.0.0.1:40111", true, 0},
		{"[::ffff:127.0.0.1]:40111", true, 0},
		{"127.0.0.1:40110", false, upstream.Loopback},
		{"127.0.0.1:40112", false, upstream.Loopback},
		{"127.0.0.2:40111", false, upstream.Loopback},
		{"[::1]:40111", false, upstream.Loopback},
		{"[64:ff9b::7f00:1]:40111", false, upstream.Loopback}, // NAT64 spelling is another address
		{"127.0.0.5:40112", true, 0},
		{"[::ffff:127.0.0.5]:40112", true, 0},
		{"[fe80::1]:40113", true, 0},
		{"[fe80::1%lo]:40113", true, 0},
		{"[fe80::2]:40113", false, upstream.LinkLocal},
		{"127.0.0.1:1", false, upstream.Loopback},
		{"0.0.0.0:40114", false, upstream.Unspecified},
		{"[::]:40114", false, upstream.Unspecified},
		{"224.0.0.1:40115", false, upstream.Multicast},
		{"255.255.255.255:40116", false, upstream.Broadcast},
		{"127.0.0.1:3128", false, upstream.SelfAddress},
		{"10.0.0.1:40111", false, upstream.Private},
		{"8.8.8.8:53", true, 0}, // public stays allowed
	}
	for _, tt := range tests {
		t.Run(tt.dst, func(t *testing.T) {
			err := g.Check(ap(tt.dst))
			if tt.allow {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			var de *upstream.DeniedError
			if !errors.As(err, &de) {
				t.Fatalf("allowed (err %v), want denied as %v", err, tt.class)
			}
			if de.Class != tt.class {
				t.Errorf("denied as %v, want %v", de.Class, tt.class)
			}
		})
	}
}

// TestDialerExempt: the dialer lets an IP literal in any numeric spelling
// through to the exempt address, and a name only when every address it
// resolves to passes.
func TestDialerExempt(t *testing.T) {
	d := &upstream.Dialer{
		Guard: upstream.NewGuard(upstream.GuardConfig{Exempt: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:40111")}}),
		Resolver: staticResolver{
			"lab.test":   {netip.MustParseAddr("127.0.0.1")},
			"mixed.test": {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")},
		},
	}
	for _, tt := range []struct {
		host  string
		port  uint16
		allow bool
	}{
		{"127.0.0.1", 40111, true},
		{"127.1", 40111, true},      // short form of the same address
		{"2130706433", 40111, true}, // decimal form of the same address
		{"0x7f000001", 40111, true},
		{"lab.test", 40111, true},
		{"lab.test", 40112, false},
		{"mixed.test", 40111, false}, // 127.0.0.2 is not exempt: the whole name is denied
		{"127.0.0.1", 40112, false},
		{"localhost.invalid", 40111, false},
	} {
		_, err := d.Resolve(context.Background(), tt.host, tt.port)
		if (err == nil) != tt.allow {
			t.Errorf("Resolve(%s, %d) = %v, want allowed %v", tt.host, tt.port, err, tt.allow)
		}
	}
}

// staticResolver answers names from a map; other names do not exist.
type staticResolver map[string][]netip.Addr

func (r staticResolver) LookupNetIP(_ context.Context, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &upstream.LookupError{Host: host, Kind: upstream.LookupNotFound}
}
