package filter

import (
	"net/netip"
	"strings"

	"golang.org/x/net/idna"

	"waygate/filter/hostname"
)

// NormalizeHost turns a host as received (any case, trailing dot,
// brackets, Unicode, any numeric IPv4 spelling) into the one spelling that
// lists and rules are compiled to: lower-case ASCII (IDNA punycode) without
// a trailing dot, or the canonical text of an IP address. A host that is
// already canonical is returned without allocating.
func NormalizeHost(host string) (name string, ip netip.Addr, isIP bool, err error) {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			// Internationalized name (RFC 5891): map and convert to
			// punycode, as browsers do before they resolve it.
			a, err := idna.Lookup.ToASCII(host)
			if err != nil {
				return "", netip.Addr{}, false, &hostname.Error{Host: host, Reason: "invalid internationalized name"}
			}
			host = a
			break
		}
	}
	return hostname.Parse(host)
}

// NormalizePath puts a URL path into the form paths are matched in, so
// that no spelling of a path escapes a "host/path" entry:
//   - percent-encoded unreserved characters are decoded (RFC 3986 section
//     6.2.2.2), so "%2e%2e" and "%41" are ".." and "a";
//   - dot segments are removed (RFC 3986 section 5.2.4);
//   - runs of slashes become one, as most servers treat them;
//   - everything is lower case (list matching is case-insensitive, like
//     squidGuard's), other escapes included;
//   - the result starts with "/".
//
// A path that is already in that form is returned without allocating.
func NormalizePath(p string) string {
	if pathIsNormal(p) {
		return p
	}
	var b strings.Builder
	b.Grow(len(p) + 1)
	if len(p) == 0 || p[0] != '/' {
		b.WriteByte('/')
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(d) {
				c = d
				i += 2
			} else {
				b.WriteByte('%')
				b.WriteByte(lower(p[i+1]))
				b.WriteByte(lower(p[i+2]))
				i += 2
				continue
			}
		}
		b.WriteByte(lower(c))
	}
	return removeDotSegments(b.String())
}

// pathIsNormal reports whether NormalizePath would return p unchanged.
func pathIsNormal(p string) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%' || ('A' <= c && c <= 'Z'):
			return false
		case c == '/' && i+1 < len(p):
			if n := p[i+1]; n == '/' || n == '.' {
				return false
			}
		}
	}
	return true
}

// removeDotSegments resolves "." and ".." segments and collapses repeated
// slashes in an absolute path.
func removeDotSegments(p string) string {
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "", ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 && !(len(out) == 1 && out[0] == "") {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// isUnreserved reports RFC 3986 unreserved characters.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
