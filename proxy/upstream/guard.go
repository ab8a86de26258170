package upstream

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
)

// AddrClass is the class of a destination address, as far as the
// destination guard is concerned. Every class but Public is denied unless
// exempted by GuardConfig.Allow. The zero value is Invalid.
type AddrClass int

// Address classes. The comments name the ranges; the authoritative list of
// special-purpose ranges is RFC 6890 and the IANA registries it created.
const (
	// Invalid is the zero netip.Addr (and the zero AddrClass). Denied.
	Invalid AddrClass = iota
	// Public is any address not listed below. The only allowed class.
	Public
	// Loopback is 127.0.0.0/8 (RFC 1122) and ::1 (RFC 4291).
	Loopback
	// Private is 10/8, 172.16/12, 192.168/16 (RFC 1918) and unique local
	// fc00::/7 (RFC 4193).
	Private
	// LinkLocal is 169.254/16 (RFC 3927) and fe80::/10 (RFC 4291).
	LinkLocal
	// CGNAT is the shared address space 100.64/10 (RFC 6598).
	CGNAT
	// Multicast is 224/4 (RFC 5771) and ff00::/8 (RFC 4291).
	Multicast
	// Unspecified is all of 0.0.0.0/8 ("this network", RFC 1122, RFC 6890;
	// Linux connects 0.0.0.0 to the local host) and :: (RFC 4291).
	Unspecified
	// Broadcast is 255.255.255.255 (RFC 919, RFC 8190).
	Broadcast
	// Reserved covers ranges that are not globally reachable destinations:
	// 240/4 (RFC 1112), 192.0.0.0/24 (RFC 6890), benchmarking 198.18/15
	// (RFC 2544) and 2001:2::/48 (RFC 5180), documentation 192.0.2/24,
	// 198.51.100/24, 203.0.113/24 (RFC 5737), 2001:db8::/32 (RFC 3849) and
	// 3fff::/20 (RFC 9637), the 6to4 relay anycast 192.88.99/24 (RFC 7526),
	// discard-only 100::/64 (RFC 6666), deprecated site-local fec0::/10
	// (RFC 3879), deprecated IPv4-compatible ::/96 (RFC 4291), local-use
	// NAT64 64:ff9b:1::/48 (RFC 8215), ORCHID 2001:10::/28 (RFC 4843) and
	// 2001:20::/28 (RFC 7343), and every IPv6 address outside the global
	// unicast block 2000::/3 (RFC 4291 section 2.4) not classed above.
	Reserved
	// SelfAddress is one of the gateway's own listen addresses
	// (GuardConfig.Self): dialing it would loop. Classify never returns it.
	SelfAddress
	// Teredo is 2001::/32 (RFC 4380): its embedded IPv4 addresses are
	// obfuscated and it tunnels to arbitrary IPv4 hosts, so it is denied
	// outright.
	Teredo
)

var addrClassNames = [...]string{
	Invalid:     "invalid address",
	Public:      "public address",
	Loopback:    "loopback address",
	Private:     "private address",
	LinkLocal:   "link-local address",
	CGNAT:       "carrier-grade NAT address",
	Multicast:   "multicast address",
	Unspecified: "unspecified address",
	Broadcast:   "broadcast address",
	Reserved:    "reserved address",
	SelfAddress: "gateway's own listen address",
	Teredo:      "Teredo address",
}

// String describes c in words, e.g. "loopback address".
func (c AddrClass) String() string {
	if c >= 0 && int(c) < len(addrClassNames) {
		return addrClassNames[c]
	}
	return "AddrClass(" + strconv.Itoa(int(c)) + ")"
}

// DeniedError is returned by Guard.Check for a destination it refuses.
type DeniedError struct {
	// Addr is the destination as passed to Check.
	Addr netip.AddrPort
	// Class is why it was denied. For a NAT64 or 6to4 address it is the
	// class of the embedded IPv4 address.
	Class AddrClass
	// Embedded is the IPv4 address embedded in a NAT64 (RFC 6052) or 6to4
	// (RFC 3056) destination when that is what was denied; the zero Addr
	// otherwise.
	Embedded netip.Addr
}

// Error returns e.g. "destination 127.0.0.1:80 denied: loopback address" or
// "destination [64:ff9b::7f00:1]:80 denied: loopback address (embedded IPv4
// 127.0.0.1)".
func (e *DeniedError) Error() string {
	s := "destination " + e.Addr.String() + " denied: " + e.Class.String()
	if e.Embedded.IsValid() {
		s += " (embedded IPv4 " + e.Embedded.String() + ")"
	}
	return s
}

// GuardConfig configures NewGuard. The zero value denies every non-public
// address and knows no listen addresses.
type GuardConfig struct {
	// Allow lists destinations exempt from the address-class checks (the
	// proxy.allow_destinations setting). IPv4 prefixes also match the
	// IPv4-mapped IPv6 spelling of their addresses and IPv4-mapped IPv6
	// prefixes (::ffff:10.0.0.0/104) match the plain IPv4 spelling. Allow
	// never exempts SelfAddress. Nil means no exemptions; invalid prefixes
	// are ignored.
	Allow []netip.Prefix
	// Self lists the gateway's own listen addresses, which are always
	// denied on their port, even if allowed. An unspecified address
	// (0.0.0.0 or ::, either family) stands for every address of every local
	// interface (read once, in NewGuard), all of 127.0.0.0/8, ::1 and the
	// unspecified addresses themselves. Port 0 matches every port. Nil means
	// none.
	Self []netip.AddrPort
	// Exempt lists exact destinations, address and port, allowed whatever
	// their class: the gateway's own built-in servers on loopback (the
	// proxy lab's echo origin). Each entry lets through that one address
	// on that one port, never a range or another port; entries with port
	// 0 or an invalid, unspecified, broadcast or multicast address are
	// ignored. Exempt never exempts SelfAddress. Nil means none (see
	// exempt.go).
	Exempt []netip.AddrPort
}

// guardSelf is one normalised GuardConfig.Self entry.
type guardSelf struct {
	prefix netip.Prefix // unmapped, no zone
	port   uint16       // 0: any port
}

// Guard decides which destination addresses the gateway may dial: the
// SSRF defence. Every address a name resolves to, and every IP literal, must
// pass Check before it is dialed.
//
// A Guard is immutable and safe for concurrent use. The zero Guard and a nil
// *Guard are valid: they apply the default rules (every non-Public class is
// denied) with no Allow exemptions and no Self addresses.
type Guard struct {
	allow  []netip.Prefix // masked; IPv4-mapped prefixes also as IPv4
	self   []guardSelf
	exempt exemptSet // GuardConfig.Exempt, normalised
}

// guardInterfaceAddrs lists the local interface addresses; a variable for
// tests.
var guardInterfaceAddrs = net.InterfaceAddrs

// NewGuard returns a Guard for cfg. If any Self address is unspecified it
// reads the local interface addresses once, now; an error reading them
// leaves loopback and the unspecified address as the only self addresses.
func NewGuard(cfg GuardConfig) *Guard {
	g := &Guard{exempt: newExemptSet(cfg.Exempt)}
	for _, p := range cfg.Allow {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		g.allow = append(g.allow, p)
		a := p.Addr()
		switch {
		case a.Is4In6() && p.Bits() >= 96:
			g.allow = append(g.allow, netip.PrefixFrom(a.Unmap(), p.Bits()-96))
		case a.Is6() && p.Bits() < 96 && p.Contains(netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff})):
			// The prefix holds all of ::ffff:0:0/96, so every IPv4 address.
			g.allow = append(g.allow, netip.PrefixFrom(netip.IPv4Unspecified(), 0))
		}
	}

	var ifaces []netip.Addr
	haveIfaces := false
	for _, ap := range cfg.Self {
		a := ap.Addr().Unmap().WithZone("")
		if !a.IsValid() {
			continue
		}
		port := ap.Port()
		if !a.IsUnspecified() {
			g.self = append(g.self, guardSelf{netip.PrefixFrom(a, a.BitLen()), port})
			continue
		}
		if !haveIfaces {
			haveIfaces = true
			ifaces = localInterfaceAddrs()
		}
		g.self = append(g.self,
			guardSelf{netip.PrefixFrom(netip.IPv4Unspecified(), 32), port},
			guardSelf{netip.PrefixFrom(netip.IPv6Unspecified(), 128), port},
			guardSelf{netip.MustParsePrefix("127.0.0.0/8"), port},
			guardSelf{netip.PrefixFrom(netip.IPv6Loopback(), 128), port},
		)
		for _, ia := range ifaces {
			g.self = append(g.self, guardSelf{netip.PrefixFrom(ia, ia.BitLen()), port})
		}
	}
	return g
}

// localInterfaceAddrs returns the addresses of the local interfaces,
// unmapped and without zones.
func localInterfaceAddrs() []netip.Addr {
	addrs, err := guardInterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		default:
			continue
		}
		if na, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, na.Unmap())
		}
	}
	return out
}

// Check reports whether dst may be dialed: nil if allowed, else a
// *DeniedError. The rules, in order:
//
//  1. A destination equal to one of the gateway's own listen addresses
//     (GuardConfig.Self, address and port) is denied as SelfAddress, even
//     if Allow lists it.
//  2. A destination listed in Exempt (the same address and port) is
//     allowed.
//  3. An address in an Allow prefix is allowed.
//  4. An address whose class (see ClassifyEmbedded) is not Public is
//     denied.
//
// IPv4-mapped IPv6 addresses are treated exactly as their IPv4 address and
// zones are ignored. Check does not allocate when it allows. A nil *Guard
// applies rule 4 only.
func (g *Guard) Check(dst netip.AddrPort) error {
	a := dst.Addr().Unmap().WithZone("")
	if g != nil {
		port := dst.Port()
		for i := range g.self {
			s := &g.self[i]
			if (s.port == 0 || s.port == port) && s.prefix.Contains(a) {
				return &DeniedError{Addr: dst, Class: SelfAddress}
			}
		}
		if g.exempt.has(a, port) {
			return nil
		}
		for _, p := range g.allow {
			if p.Contains(a) {
				return nil
			}
		}
	}
	class, embedded := ClassifyEmbedded(a)
	if class == Public {
		return nil
	}
	return &DeniedError{Addr: dst, Class: class, Embedded: embedded}
}

// Classify returns the class of a, ignoring Allow and Self: the first
// result of ClassifyEmbedded.
func Classify(a netip.Addr) AddrClass {
	c, _ := ClassifyEmbedded(a)
	return c
}

// ClassifyEmbedded returns the class of a, ignoring Allow and Self. An
// IPv4-mapped IPv6 address (::ffff:0:0/96, RFC 4291) is classified as its
// IPv4 address. For a NAT64 address (64:ff9b::/96, RFC 6052) or a 6to4
// address (2002::/16, RFC 3056) whose embedded IPv4 address is not Public,
// it returns the embedded address's class and the embedded address; with a
// Public embedded address the result is Public. In every other case
// embedded is the zero Addr. The zone of a is ignored; the zero Addr is
// Invalid.
func ClassifyEmbedded(a netip.Addr) (class AddrClass, embedded netip.Addr) {
	if !a.IsValid() {
		return Invalid, netip.Addr{}
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return guardClassify4(binary.BigEndian.Uint32(b[:])), netip.Addr{}
	}
	b := a.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	switch {
	case hi == 0 && lo == 0:
		return Unspecified, netip.Addr{} // ::/128, RFC 4291
	case hi == 0 && lo == 1:
		return Loopback, netip.Addr{} // ::1/128, RFC 4291
	case hi == 0 && lo>>32 == 0:
		return Reserved, netip.Addr{} // IPv4-compatible ::/96, deprecated by RFC 4291
	case hi == 0x0064_ff9b_0000_0000 && lo>>32 == 0:
		return guardEmbedded4(uint32(lo)) // NAT64 well-known prefix 64:ff9b::/96, RFC 6052
	case hi>>16 == 0x0064_ff9b_0001:
		return Reserved, netip.Addr{} // local-use NAT64 64:ff9b:1::/48, RFC 8215
	case hi == 0x0100_0000_0000_0000:
		return Reserved, netip.Addr{} // discard-only 100::/64, RFC 6666
	case hi>>56 == 0xff:
		return Multicast, netip.Addr{} // ff00::/8, RFC 4291
	case hi>>54 == 0xfe80>>6:
		return LinkLocal, netip.Addr{} // fe80::/10, RFC 4291
	case hi>>54 == 0xfec0>>6:
		return Reserved, netip.Addr{} // site-local fec0::/10, deprecated by RFC 3879
	case hi>>57 == 0xfc>>1:
		return Private, netip.Addr{} // unique local fc00::/7, RFC 4193
	case hi>>61 != 1:
		return Reserved, netip.Addr{} // outside global unicast 2000::/3, RFC 4291 section 2.4
	case hi>>32 == 0x2001_0000:
		return Teredo, netip.Addr{} // 2001::/32, RFC 4380
	case hi>>16 == 0x2001_0002_0000:
		return Reserved, netip.Addr{} // benchmarking 2001:2::/48, RFC 5180
	case hi>>36 == 0x2001_001, hi>>36 == 0x2001_002:
		return Reserved, netip.Addr{} // ORCHID 2001:10::/28 (RFC 4843), ORCHIDv2 2001:20::/28 (RFC 7343)
	case hi>>32 == 0x2001_0db8:
		return Reserved, netip.Addr{} // documentation 2001:db8::/32, RFC 3849
	case hi>>48 == 0x2002:
		return guardEmbedded4(uint32(hi >> 16)) // 6to4 2002::/16, RFC 3056
	case hi>>44 == 0x3fff0:
		return Reserved, netip.Addr{} // documentation 3fff::/20, RFC 9637
	}
	return Public, netip.Addr{}
}

// guardEmbedded4 classifies an IPv4 address embedded in an IPv6 one.
func guardEmbedded4(v uint32) (AddrClass, netip.Addr) {
	c := guardClassify4(v)
	if c == Public {
		return Public, netip.Addr{}
	}
	return c, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// guardClassify4 classifies the IPv4 address v (RFC 6890 and the registry).
func guardClassify4(v uint32) AddrClass {
	switch {
	case v == 0xffff_ffff:
		return Broadcast // 255.255.255.255/32, RFC 919, RFC 8190
	case v>>24 == 0:
		return Unspecified // "this network" 0.0.0.0/8, RFC 1122 section 3.2.1.3
	case v>>24 == 10:
		return Private // 10.0.0.0/8, RFC 1918
	case v&0xffc0_0000 == 0x6440_0000:
		return CGNAT // 100.64.0.0/10, RFC 6598
	case v>>24 == 127:
		return Loopback // 127.0.0.0/8, RFC 1122
	case v&0xffff_0000 == 0xa9fe_0000:
		return LinkLocal // 169.254.0.0/16, RFC 3927
	case v&0xfff0_0000 == 0xac10_0000:
		return Private // 172.16.0.0/12, RFC 1918
	case v&0xffff_ff00 == 0xc000_0000:
		return Reserved // IETF protocol assignments 192.0.0.0/24, RFC 6890
	case v&0xffff_ff00 == 0xc000_0200:
		return Reserved // TEST-NET-1 192.0.2.0/24, RFC 5737
	case v&0xffff_ff00 == 0xc058_6300:
		return Reserved // 6to4 relay anycast 192.88.99.0/24, deprecated by RFC 7526
	case v&0xffff_0000 == 0xc0a8_0000:
		return Private // 192.168.0.0/16, RFC 1918
	case v&0xfffe_0000 == 0xc612_0000:
		return Reserved // benchmarking 198.18.0.0/15, RFC 2544
	case v&0xffff_ff00 == 0xc633_6400:
		return Reserved // TEST-NET-2 198.51.100.0/24, RFC 5737
	case v&0xffff_ff00 == 0xcb00_7100:
		return Reserved // TEST-NET-3 203.0.113.0/24, RFC 5737
	case v>>28 == 0xe:
		return Multicast // 224.0.0.0/4, RFC 5771
	case v>>28 == 0xf:
		return Reserved // 240.0.0.0/4, RFC 1112 section 4
	}
	return Public
}
