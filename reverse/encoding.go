package reverse

import "strings"

// Accept-Encoding negotiation (RFC 9110 §12.5.3) for the response
// compressor. The parser works on the raw field values without allocating:
// it runs once per proxied request.

// Content-coding names the compressor implements.
const (
	codingGzip   = "gzip"
	codingBrotli = "br"
	codingZstd   = "zstd"
)

// maxEncodingOffers bounds how many server codings negotiateEncoding
// considers; the compressor has three, each listed at most once.
const maxEncodingOffers = 8

// negotiateEncoding chooses the content coding for a response from the
// request's Accept-Encoding field values (all lines of the field, as in
// http.Header) and the codings the server offers, lower-case, in server
// preference order. It returns the index of the chosen offer, or -1 when
// the response should be sent without a content coding.
//
// Rules:
//   - Codings and parameter names are case-insensitive; "x-gzip" is gzip.
//   - A missing q-value means q=1; q=0 means "not acceptable".
//   - "*" gives its q-value to every offer the field does not name.
//     An offer that is neither named nor covered by "*" is not acceptable.
//   - A coding listed more than once (or as both gzip and x-gzip) takes its
//     lowest q-value, so a q=0 anywhere rules it out.
//   - The acceptable offer with the highest q-value wins; ties go to the
//     earlier offer (the server's preference).
//   - If the field names "identity" with a q-value higher than the winner's,
//     the client prefers the uncompressed body and -1 is returned.
//   - Malformed elements (bad token, bad q-value) are skipped; other
//     parameters are ignored.
//
// No acceptable coding, including "identity;q=0" or "*;q=0" with nothing
// acceptable left, yields -1: the caller sends the body uncompressed rather
// than 406 Not Acceptable, which is what every common server does.
// Values are not trusted: any input is handled without panicking.
func negotiateEncoding(values []string, offers []string) int {
	if len(offers) > maxEncodingOffers {
		offers = offers[:maxEncodingOffers]
	}
	// Weights are in thousandths (qvalue has at most three decimals);
	// -1 means the field did not mention it.
	var q [maxEncodingOffers]int
	for i := range offers {
		q[i] = -1
	}
	starQ, identityQ := -1, -1
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			name, weight, ok := parseEncodingElement(elem)
			if !ok {
				continue
			}
			switch {
			case name == "*":
				starQ = lowerEncodingWeight(starQ, weight)
			case strings.EqualFold(name, "identity"):
				identityQ = lowerEncodingWeight(identityQ, weight)
			default:
				for i, offer := range offers {
					if encodingNameMatches(name, offer) {
						q[i] = lowerEncodingWeight(q[i], weight)
					}
				}
			}
		}
	}
	best, bestQ := -1, 0
	for i := range offers {
		w := q[i]
		if w < 0 {
			w = starQ
		}
		if w > bestQ {
			best, bestQ = i, w
		}
	}
	if best >= 0 && identityQ > bestQ {
		return -1
	}
	return best
}

// lowerEncodingWeight merges a repeated mention of a coding: the lowest q wins.
func lowerEncodingWeight(old, w int) int {
	if old < 0 || w < old {
		return w
	}
	return old
}

// encodingNameMatches reports whether the client's coding token names the
// server's (lower-case) coding.
func encodingNameMatches(token, offer string) bool {
	if strings.EqualFold(token, offer) {
		return true
	}
	return offer == codingGzip && strings.EqualFold(token, "x-gzip")
}

// parseEncodingElement parses one list element of Accept-Encoding:
// token *( OWS ";" OWS name "=" value ). It returns the coding token and
// its weight in thousandths; ok is false for an empty or malformed element.
func parseEncodingElement(elem string) (name string, weight int, ok bool) {
	elem = trimEncodingOWS(elem)
	if elem == "" {
		return "", 0, false
	}
	name, params, more := strings.Cut(elem, ";")
	name = trimEncodingOWS(name)
	if !isEncodingToken(name) {
		return "", 0, false
	}
	weight = 1000
	for more {
		var p string
		p, params, more = strings.Cut(params, ";")
		key, val, hasVal := strings.Cut(p, "=")
		if !hasVal || !strings.EqualFold(trimEncodingOWS(key), "q") {
			continue // an unknown or empty parameter: ignored
		}
		w, valid := parseEncodingQValue(trimEncodingOWS(val))
		if !valid {
			return "", 0, false
		}
		weight = w
	}
	return name, weight, true
}

// parseEncodingQValue parses an RFC 9110 qvalue ("0", "0.5", "1.000", ...) into
// thousandths.
func parseEncodingQValue(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	var base int
	switch s[0] {
	case '0':
	case '1':
		base = 1000
	default:
		return 0, false
	}
	if len(s) == 1 {
		return base, true
	}
	if s[1] != '.' || len(s) > 5 {
		return 0, false
	}
	frac, mult := 0, 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		frac += int(c-'0') * mult
		mult /= 10
	}
	if base == 1000 && frac != 0 {
		return 0, false
	}
	return base + frac, true
}

// trimEncodingOWS trims optional whitespace (SP and HTAB) from both ends.
func trimEncodingOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isEncodingToken reports whether s is a non-empty RFC 9110 token.
func isEncodingToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isEncodingTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// isEncodingTokenChar reports whether c is an RFC 9110 tchar.
func isEncodingTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// compressHeaderHasToken reports whether any line of a comma-separated header field
// contains the token (case-insensitive), ignoring parameters such as
// "max-age=60" in Cache-Control.
func compressHeaderHasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			elem, _, _ = strings.Cut(elem, "=")
			if strings.EqualFold(trimEncodingOWS(elem), token) {
				return true
			}
		}
	}
	return false
}
