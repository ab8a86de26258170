package hostname

import (
	"net/netip"
	"strconv"
	"strings"
)

// Limits on host names (RFC 1035 section 2.3.4, RFC 2181 section 11). The
// 253 counts the textual name without its optional trailing dot.
const (
	maxHostNameLen  = 253
	maxHostLabelLen = 63
)

// Error is returned by Parse for a host that cannot be dialed
// as written. Host is the input (cut to 256 bytes); Reason says what is wrong
// in words, e.g. "invalid IPv4 address" or "label longer than 63 bytes".
type Error struct {
	Host   string
	Reason string
}

// Error returns `invalid host "Host": Reason`.
func (e *Error) Error() string {
	return "invalid host " + strconv.Quote(e.Host) + ": " + e.Reason
}

func hostErr(host, reason string) error {
	const maxShown = 256
	if len(host) > maxShown {
		host = host[:maxShown] + "..."
	}
	return &Error{Host: host, Reason: reason}
}

// Parse normalises the host part of a URL or CONNECT target (without a
// port) for dialing and for policy decisions. Errors are *Error.
//
// If host is an IP literal, Parse returns isIP=true, the address, and
// name set to the address's canonical text (ip.String(), no brackets). IPv4
// literals are recognised in every spelling the WHATWG URL host parser and
// glibc inet_aton accept: dotted decimal ("127.0.0.1"), the short forms a.b
// (b is 24 bits) and a.b.c (c is 16 bits), a single 32-bit number
// ("2130706433"), and hexadecimal ("0x7f") or octal ("0177") parts, mixed
// freely. Every part but the last must be at most 255 and the last must fit
// in the bits left. IPv6 literals may be bracketed or bare; IPv4-mapped
// literals (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2) are returned unmapped
// as the IPv4 address, so that policy sees one spelling. Other IPv6
// addresses (NAT64, 6to4, ...) are returned as they are; the Guard looks
// inside them. IPv6 zones ("fe80::1%eth0") are rejected: an outbound proxy
// has no business picking an interface.
//
// Otherwise host is a name: it is lowercased and ONE trailing dot is
// removed. The result must be non-empty, at most 253 bytes, made of
// non-empty labels of at most 63 bytes, using only [a-z0-9-_.]. Non-ASCII
// input is rejected: converting an IDN to its A-label ("xn--...") is the
// caller's job.
//
// Following the WHATWG "ends in a number" rule, a host whose last label is
// all decimal digits, or is "0x"/"0X" followed only by hex digits, is an IPv4
// literal or nothing: if it does not parse, Parse fails with "invalid
// IPv4 address" rather than returning a name, so "1.2.3.4.5", "1.2.3.256",
// "0x1g.1" and "example.08" are errors. A last label that merely looks
// numeric but is not a valid number in any base ("example.0x1g",
// "example.1e5") is a name, as in WHATWG; no resolver reads it as an address.
//
// Parse is idempotent: for a nil error, Parse(name) returns the same
// result again.
func Parse(host string) (name string, ip netip.Addr, isIP bool, err error) {
	if host == "" {
		return "", netip.Addr{}, false, hostErr(host, "empty host")
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return "", netip.Addr{}, false, hostErr(host, "non-ASCII host (convert IDNs to A-labels first)")
		}
	}
	if host[0] == '[' {
		if len(host) < 2 || host[len(host)-1] != ']' {
			return "", netip.Addr{}, false, hostErr(host, "unbalanced brackets")
		}
		inner := host[1 : len(host)-1]
		if !strings.Contains(inner, ":") {
			return "", netip.Addr{}, false, hostErr(host, "brackets around something other than an IPv6 address")
		}
		return parseHostIPv6(host, inner)
	}
	if strings.Contains(host, ":") {
		return parseHostIPv6(host, host)
	}

	s := strings.TrimSuffix(asciiLower(host), ".")
	if s == "" {
		return "", netip.Addr{}, false, hostErr(host, "empty host")
	}
	for i := 0; i < len(s); i++ {
		if !hostNameByte(s[i]) {
			return "", netip.Addr{}, false, hostErr(host, "invalid character "+strconv.QuoteRune(rune(s[i])))
		}
	}
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return "", netip.Addr{}, false, hostErr(host, "empty label")
	}
	if hostEndsInNumber(s) {
		a, ok := parseHostIPv4(s)
		if !ok {
			return "", netip.Addr{}, false, hostErr(host, "invalid IPv4 address")
		}
		return a.String(), a, true, nil
	}
	if len(s) > maxHostNameLen {
		return "", netip.Addr{}, false, hostErr(host, "name longer than 253 bytes")
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) > maxHostLabelLen {
			return "", netip.Addr{}, false, hostErr(host, "label longer than 63 bytes")
		}
	}
	return s, netip.Addr{}, false, nil
}

// parseHostIPv6 parses the IPv6 literal s (host without brackets).
func parseHostIPv6(host, s string) (string, netip.Addr, bool, error) {
	if strings.Contains(s, "%") {
		return "", netip.Addr{}, false, hostErr(host, "IPv6 zone not allowed")
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return "", netip.Addr{}, false, hostErr(host, "invalid IPv6 address")
	}
	a = a.Unmap()
	return a.String(), a, true, nil
}

// asciiLower lowercases ASCII letters, without allocating when s is
// already lower case.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// hostNameByte reports whether c may appear in a lowercased host name.
func hostNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// hostEndsInNumber is the WHATWG URL "ends in a number checker" for a
// lowercased host without trailing dot: the last label is all decimal
// digits, or parses as a WHATWG IPv4 number (which, given the digits case,
// means "0x" followed by hex digits only, including none).
func hostEndsInNumber(s string) bool {
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last == "" {
		return false
	}
	allDigits := true
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			allDigits = false
			break
		}
	}
	if allDigits {
		return true
	}
	_, ok := parseHostIPv4Number(last)
	return ok
}

// parseHostIPv4Number is the WHATWG "IPv4 number parser" for a lowercased
// part: "0x" prefix means hex, another leading "0" means octal, else
// decimal. Values above 2^32 saturate at 2^32 (always out of range).
func parseHostIPv4Number(p string) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(p) >= 2 && p[0] == '0' && p[1] == 'x':
		p, base = p[2:], 16
	case len(p) >= 2 && p[0] == '0':
		p, base = p[1:], 8
	}
	const limit = 1 << 32
	var n uint64
	for i := 0; i < len(p); i++ {
		c := p[i]
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		if n < limit {
			n = n*base + d
			if n > limit {
				n = limit
			}
		}
	}
	return n, true
}

// parseHostIPv4 is the WHATWG "IPv4 parser" (inet_aton semantics) for a
// lowercased host without trailing dot.
func parseHostIPv4(s string) (netip.Addr, bool) {
	var nums [4]uint64
	n := 0
	for part := range strings.SplitSeq(s, ".") {
		if n == len(nums) {
			return netip.Addr{}, false
		}
		v, ok := parseHostIPv4Number(part)
		if !ok {
			return netip.Addr{}, false
		}
		nums[n] = v
		n++
	}
	var v uint64
	for i := 0; i < n-1; i++ {
		if nums[i] > 255 {
			return netip.Addr{}, false
		}
		v |= nums[i] << (8 * (3 - i))
	}
	last := nums[n-1]
	if last >= 1<<(8*(5-n)) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}
