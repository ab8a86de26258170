package reverse

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// compressRefQValue is RFC 9110's qvalue grammar.
var compressRefQValue = regexp.MustCompile(`^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$`)

// compressRefNegotiate is a straightforward (allocating) restatement of
// negotiateEncoding's documented rules, to check the fast parser against.
func compressRefNegotiate(values, offers []string) int {
	q := make(map[string]int) // coding (lower-case, x-gzip folded) -> lowest q
	note := func(name string, w int) {
		if old, ok := q[name]; !ok || w < old {
			q[name] = w
		}
	}
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			parts := strings.Split(elem, ";")
			name := strings.Trim(parts[0], " \t")
			if !isEncodingToken(name) {
				continue
			}
			name = strings.ToLower(name)
			w, ok := 1000, true
			for _, p := range parts[1:] {
				k, val, found := strings.Cut(p, "=")
				if !found || !strings.EqualFold(strings.Trim(k, " \t"), "q") {
					continue
				}
				val = strings.Trim(val, " \t")
				if !compressRefQValue.MatchString(val) {
					ok = false
					break
				}
				f, _ := strconv.ParseFloat(strings.TrimSuffix(val, "."), 64)
				w = int(f*1000 + 0.5)
			}
			if !ok {
				continue
			}
			if name == "x-gzip" {
				name = "gzip"
			}
			note(name, w)
		}
	}
	best, bestQ := -1, 0
	for i, o := range offers {
		w, ok := q[o]
		if !ok {
			if w, ok = q["*"]; !ok {
				continue
			}
		}
		if w > bestQ {
			best, bestQ = i, w
		}
	}
	if id, ok := q["identity"]; ok && best >= 0 && id > bestQ {
		return -1
	}
	return best
}

// FuzzAcceptEncoding checks that negotiateEncoding never panics, only ever
// picks one of the offered codings (or none), and agrees with the simple
// reference implementation. A newline in the input splits it into several
// header lines.
func FuzzAcceptEncoding(f *testing.F) {
	for _, seed := range []string{
		"", "gzip", "gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1",
		"identity;q=0", "*;q=0", "*;q=0, identity", "x-gzip", "GZIP;Q=0.5",
		"gzip;q=0.0001", "gzip;q=1.5", ",,;;==", "gzip;q=0\nbr", " \t*\t;\tq=0.999",
		"zstd;q=0.1, gzip;q=0.1, *;q=0.5", "identity, gzip;q=0.5", "gz\x00ip, br;q",
	} {
		f.Add(seed)
	}
	offerSets := [][]string{
		{codingZstd, codingGzip, codingBrotli},
		{codingGzip},
		{codingBrotli, codingGzip},
		nil,
	}
	f.Fuzz(func(t *testing.T, header string) {
		values := strings.Split(header, "\n")
		for _, offers := range offerSets {
			got := negotiateEncoding(values, offers)
			if got < -1 || got >= len(offers) {
				t.Fatalf("negotiateEncoding(%q, %q) = %d: not an offer", values, offers, got)
			}
			if want := compressRefNegotiate(values, offers); got != want {
				t.Fatalf("negotiateEncoding(%q, %q) = %d, reference says %d", values, offers, got, want)
			}
		}
	})
}
