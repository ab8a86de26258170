package lists

import (
	"bytes"
	"errors"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"golang.org/x/net/idna"

	"waygate/filter/hostname"
)

// idnaProfile converts IDNs to A-labels: UTS #46 mapping (case folding,
// width mapping), non-transitional, Bidi and ContextJ checks. ASCII rules
// (STD3, hyphens, lengths) are left to hostname.Parse, so that an IDN line
// and an ASCII line are judged alike.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
	idna.CheckJoiners(true),
)

// nameByte marks the bytes of an already canonical host name.
var nameByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'] = true, true
	return t
}()

// fastName reports whether b is a host name that hostname.Parse would
// return unchanged as a name: [a-z0-9_-] labels of 1 to 63 bytes, at most
// 253 bytes, no trailing dot, and a last label that does not start with a
// digit (so it cannot "end in a number" and be read as IPv4).
func fastName(b []byte) bool {
	n := len(b)
	if n == 0 || n > 253 {
		return false
	}
	start := 0
	for i := 0; i < n; i++ {
		c := b[i]
		if nameByte[c] {
			continue
		}
		if c != '.' || i == start || i-start > 63 {
			return false
		}
		start = i + 1
	}
	if start == n || n-start > 63 {
		return false
	}
	c := b[start]
	return c < '0' || c > '9'
}

// fastIPv4 reports whether b is a dotted-quad IPv4 address in canonical
// form (no leading zeros), which hostname.Parse returns unchanged.
func fastIPv4(b []byte) bool {
	parts, v, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || v > 255 || parts == 4 {
				return false
			}
			parts++
			v, digits = 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || (digits == 1 && v == 0) || digits == 3 {
			return false
		}
		v = v*10 + int(c-'0')
		digits++
	}
	return parts == 4
}

func hasNonASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// canonHost canonicalises one host: an IDN is converted to its A-labels,
// then hostname.Parse decides. It returns KindDomain or KindIP and the
// canonical text, or a reason why b is not a host. A single label that
// hostname.Parse reads as an IPv4 number ("12345", "0x7f000001") is
// rejected as too ambiguous for a list.
func canonHost(b []byte) (Kind, string, string) {
	if fastName(b) {
		return KindDomain, string(b), ""
	}
	if fastIPv4(b) {
		return KindIP, string(b), ""
	}
	var s string
	if hasNonASCII(b) {
		a, err := idnaProfile.ToASCII(string(b))
		if err != nil {
			return 0, "", "invalid IDN: " + strings.TrimPrefix(err.Error(), "idna: ")
		}
		s = a
	} else {
		s = string(b)
	}
	name, _, isIP, err := hostname.Parse(s)
	if err != nil {
		if he, ok := errors.AsType[*hostname.Error](err); ok {
			return 0, "", he.Reason
		}
		return 0, "", err.Error()
	}
	if !isIP {
		return KindDomain, name, ""
	}
	if !strings.ContainsAny(strings.TrimSuffix(s, "."), ".:") {
		return 0, "", "single-label numeric name"
	}
	return KindIP, name, ""
}

// domainsLine handles a line of a domains list.
func (p *parser) domainsLine(b []byte) {
	// Fast paths: the bulk of a real list is canonical already.
	if fastName(b) {
		p.add(KindDomain, string(b))
		return
	}
	if fastIPv4(b) {
		p.add(KindIP, string(b))
		return
	}
	switch {
	case b[0] == '#', b[0] == '!':
		return
	case hasPrefix(b, "||"):
		p.adblockRule(b)
		return
	case hasPrefix(b, "@@"):
		p.unsupported()
		return
	case hasPrefixFold(b, "[adblock"):
		return
	}
	b = stripComment(b)
	if indexSpace(b) >= 0 {
		p.hostsLine(b, false)
		return
	}
	p.domainValue(b)
}

// domainValue handles one value of a domains list: a name with an optional
// "*." or "." in front, an IP address or a CIDR prefix.
func (p *parser) domainValue(b []byte) {
	wild := false
	if hasPrefix(b, "*.") {
		b, wild = b[2:], true
	} else if len(b) > 0 && b[0] == '.' {
		b, wild = b[1:], true
	}
	if i := bytes.IndexByte(b, '/'); i >= 0 {
		p.cidr(b[:i], b[i+1:], wild)
		return
	}
	k, s, reason := canonHost(b)
	switch {
	case reason != "":
		p.malformed(reason)
	case wild && k == KindIP:
		p.malformed("wildcard on an IP address")
	default:
		p.add(k, s)
	}
}

// cidr handles "addr/bits" in a domains list.
func (p *parser) cidr(addr, bits []byte, wild bool) {
	k, s, reason := canonHost(addr)
	switch {
	case reason == "" && k != KindIP, reason != "" && !looksNumeric(addr):
		p.malformed("path in a domains list")
		return
	case reason != "":
		p.malformed(reason)
		return
	case wild:
		p.malformed("wildcard on a CIDR prefix")
		return
	}
	n, ok := prefixLen(bits)
	a, _ := netip.ParseAddr(s)
	if ok && a.Is4() && bytes.IndexByte(addr, ':') >= 0 {
		// IPv4-mapped IPv6 prefix; hostname.Parse unmapped the address.
		n -= 96
	}
	if !ok || n < 0 {
		p.malformed("invalid prefix length")
		return
	}
	pfx, err := a.Prefix(n)
	if err != nil {
		p.malformed("invalid prefix length")
		return
	}
	p.add(KindCIDR, pfx.String())
}

// looksNumeric reports whether b could be meant as an IP address.
func looksNumeric(b []byte) bool {
	for _, c := range b {
		if c == ':' || c == '[' || c == ']' {
			continue
		}
		if !('0' <= c && c <= '9' || c == '.' || c == 'x' || c == 'X' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// prefixLen parses a decimal prefix length without sign or leading zeros.
func prefixLen(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 3 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// localNames are names that hosts files map to local addresses; they are
// not list entries.
var localNames = map[string]bool{
	"localhost":               true,
	"localhost.localdomain":   true,
	"localhost4":              true,
	"localhost4.localdomain4": true,
	"localhost6":              true,
	"localhost6.localdomain6": true,
	"local":                   true,
	"localdomain":             true,
	"broadcasthost":           true,
	"ip6-localhost":           true,
	"ip6-loopback":            true,
	"ip6-localnet":            true,
	"ip6-mcastprefix":         true,
	"ip6-allnodes":            true,
	"ip6-allrouters":          true,
	"ip6-allhosts":            true,
}

var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// isHostsAddr reports whether b is the address field of a hosts line.
func isHostsAddr(b []byte) bool {
	if string(b) == "0.0.0.0" || string(b) == "127.0.0.1" {
		return true
	}
	_, err := netip.ParseAddr(string(b))
	return err == nil
}

func (p *parser) hostsFileLine(b []byte) {
	if b[0] == '#' {
		return
	}
	p.hostsLine(stripComment(b), true)
}

// hostsLine handles "address name [name...]". strict is set for hosts files,
// where every line must be like that; in a domains list a line with white
// space that does not start with an address is malformed as such.
func (p *parser) hostsLine(b []byte, strict bool) {
	i := indexSpace(b)
	addr := b
	if i >= 0 {
		addr = b[:i]
	}
	if !isHostsAddr(addr) {
		if strict {
			p.malformed("hosts line does not start with an IP address")
		} else {
			p.malformed("white space in value")
		}
		return
	}
	names, bad := 0, ""
	rest := b[len(addr):]
	for {
		for len(rest) > 0 && isSpace(rest[0]) {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			break
		}
		j := indexSpace(rest)
		if j < 0 {
			j = len(rest)
		}
		f := rest[:j]
		rest = rest[j:]
		names++
		if localNames[string(f)] {
			continue
		}
		k, s, reason := canonHost(f)
		switch {
		case reason != "":
			if bad == "" {
				bad = reason
			}
			continue
		case k == KindDomain && localNames[s]:
			continue
		case k == KindIP:
			a, _ := netip.ParseAddr(s)
			if a.IsUnspecified() || a.IsLoopback() || a == broadcast4 {
				continue
			}
		}
		p.add(k, s)
	}
	switch {
	case names == 0:
		p.malformed("hosts line without a name")
	case bad != "":
		p.malformed(bad)
	}
}

// urlLine handles a line of a squidGuard urls file.
func (p *parser) urlLine(b []byte) {
	if b[0] == '#' {
		return
	}
	if i := bytes.IndexByte(b, '#'); i >= 0 {
		b = trimRight(b[:i])
	}
	switch {
	case hasPrefixFold(b, "http://"):
		b = b[len("http://"):]
	case hasPrefixFold(b, "https://"):
		b = b[len("https://"):]
	default:
		if i := bytes.Index(b, []byte("://")); i >= 0 && !bytes.ContainsAny(b[:i], "/?") {
			p.malformed("unsupported scheme")
			return
		}
	}
	end := len(b)
	for i, c := range b {
		if c <= ' ' || c == 0x7f {
			p.malformed("white space or control character in URL")
			return
		}
		if (c == '/' || c == '?') && end == len(b) {
			end = i
		}
	}
	host, path := b[:end], b[end:]
	host, ok := stripPort(host)
	if !ok {
		p.malformed("invalid port")
		return
	}
	buf := p.buf[:0]
	if fastName(host) || fastIPv4(host) {
		buf = append(buf, host...)
	} else {
		_, s, reason := canonHost(host)
		if reason != "" {
			p.malformed(reason)
			return
		}
		if strings.IndexByte(s, ':') >= 0 {
			buf = append(buf, '[')
			buf = append(buf, s...)
			buf = append(buf, ']')
		} else {
			buf = append(buf, s...)
		}
	}
	if len(path) == 0 || path[0] != '/' {
		buf = append(buf, '/')
	}
	for _, c := range path {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	p.buf = buf
	p.add(KindURL, string(buf))
}

// stripPort removes a ":port" from a URL host; ok is false if the port is
// not a number from 1 to 65535.
func stripPort(h []byte) (host []byte, ok bool) {
	var port []byte
	switch {
	case len(h) > 0 && h[0] == '[':
		j := bytes.IndexByte(h, ']')
		if j < 0 || j+1 == len(h) {
			return h, true // hostname.Parse judges the brackets
		}
		if h[j+1] != ':' {
			return h, false
		}
		h, port = h[:j+1], h[j+2:]
	case bytes.Count(h, []byte(":")) == 1:
		j := bytes.IndexByte(h, ':')
		h, port = h[:j], h[j+1:]
	default:
		return h, true
	}
	if len(port) == 0 || len(port) > 5 {
		return h, false
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return h, false
		}
		n = n*10 + int(c-'0')
	}
	return h, n >= 1 && n <= 65535
}

// expressionLine handles a line of a squidGuard expressions file.
func (p *parser) expressionLine(b []byte) {
	if b[0] == '#' {
		return
	}
	s := string(b)
	if _, err := regexp.Compile(s); err != nil {
		reason := err.Error()
		if se, ok := errors.AsType[*syntax.Error](err); ok {
			reason = string(se.Code)
			if se.Expr != "" && len(se.Expr) <= 40 {
				reason += " " + strconv.Quote(se.Expr)
			}
		}
		p.malformed("invalid regular expression: " + reason)
		return
	}
	p.add(KindExpression, s)
}

// adblockLine handles a line of an Adblock-style list.
func (p *parser) adblockLine(b []byte) {
	switch {
	case b[0] == '!':
		return // comment
	case b[0] == '[' && b[len(b)-1] == ']':
		return // "[Adblock Plus 2.0]"
	case hasPrefix(b, "||"):
		p.adblockRule(b)
		return
	case b[0] == '#' && !isCosmetic(b):
		return // "# comment", as some lists have
	}
	p.unsupported()
}

// isCosmetic reports whether b, which starts with "#", is a generic
// cosmetic rule ("##.ad", "#@#.ad", "#?#...", "#$#...", "#%#...").
func isCosmetic(b []byte) bool {
	if hasPrefix(b, "#@#") || hasPrefix(b, "#?#") || hasPrefix(b, "#$#") || hasPrefix(b, "#%#") {
		return true
	}
	return len(b) > 2 && b[1] == '#' && b[2] != '#' && !isSpace(b[2])
}

// adblockRule handles a line starting with "||". Only "||name^" is usable.
func (p *parser) adblockRule(b []byte) {
	rest := b[2:]
	i := bytes.IndexByte(rest, '^')
	if i < 0 || i+1 != len(rest) {
		p.unsupported() // no "^", options, or more pattern after it
		return
	}
	name := rest[:i]
	for _, c := range name {
		if c < 0x80 && !nameByte[c] && c != '.' && !('A' <= c && c <= 'Z') {
			p.unsupported() // wildcards, paths, ports: not a plain name
			return
		}
	}
	k, s, reason := canonHost(name)
	if reason != "" {
		p.malformed(reason)
		return
	}
	p.add(k, s)
}
