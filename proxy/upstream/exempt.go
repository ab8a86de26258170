package upstream

import "net/netip"

// exemptSet is GuardConfig.Exempt, normalised: exact destinations (an
// unmapped address without zone, and a non-zero port) that the guard lets
// through whatever their address class. It is a plain list: it holds the
// gateway's own built-in servers, a handful at most. The nil set exempts
// nothing.
type exemptSet []netip.AddrPort

// newExemptSet normalises in. An entry that does not name exactly one
// address and one port is dropped, so that no spelling of "everything"
// slips in: port 0 (which Self reads as "every port"), the invalid and
// the unspecified address (which Self reads as "every local address", and
// which Linux connects to the local host), broadcast and multicast.
func newExemptSet(in []netip.AddrPort) exemptSet {
	var out exemptSet
	for _, ap := range in {
		a := ap.Addr().Unmap().WithZone("")
		if ap.Port() == 0 || !a.IsValid() || a.IsUnspecified() || a.IsMulticast() ||
			a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			continue
		}
		e := netip.AddrPortFrom(a, ap.Port())
		dup := false
		for _, have := range out {
			dup = dup || have == e
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

// has reports whether a (unmapped, without zone) on port is exempt.
func (s exemptSet) has(a netip.Addr, port uint16) bool {
	for _, e := range s {
		if e.Port() == port && e.Addr() == a {
			return true
		}
	}
	return false
}
