package reverse

import "testing"

func TestNegotiateEncoding(t *testing.T) {
	all := []string{codingZstd, codingGzip, codingBrotli}
	gzipOnly := []string{codingGzip}
	brFirst := []string{codingBrotli, codingGzip}
	for _, tc := range []struct {
		name   string
		values []string
		offers []string
		want   string // "" = uncompressed
	}{
		{"no header", nil, all, ""},
		{"empty value", []string{""}, all, ""},
		{"blank value", []string{" \t "}, all, ""},
		{"gzip", []string{"gzip"}, all, "gzip"},
		{"upper case", []string{"GZIP"}, all, "gzip"},
		{"mixed case", []string{"Br"}, all, "br"},
		{"x-gzip", []string{"x-gzip"}, all, "gzip"},
		{"X-Gzip", []string{"X-Gzip"}, gzipOnly, "gzip"},
		{"browser: server order", []string{"gzip, deflate, br, zstd"}, all, "zstd"},
		{"browser without zstd", []string{"gzip, deflate, br"}, all, "gzip"},
		{"browser, br first", []string{"gzip, deflate, br, zstd"}, brFirst, "br"},
		{"q picks", []string{"br;q=1.0, gzip;q=0.8"}, all, "br"},
		{"q beats order", []string{"zstd;q=0.5, gzip;q=0.6"}, all, "gzip"},
		{"tie goes to server order", []string{"br;q=0.3, gzip;q=0.3"}, all, "gzip"},
		{"q=0 excludes", []string{"gzip;q=0"}, all, ""},
		{"q=0.000 excludes", []string{"gzip;q=0.000, br;q=0."}, all, ""},
		{"smallest q", []string{"gzip;q=0.001"}, all, "gzip"},
		{"q=1.000", []string{"gzip;q=1.000"}, all, "gzip"},
		{"star", []string{"*"}, all, "zstd"},
		{"star with q", []string{"*;q=0.5"}, gzipOnly, "gzip"},
		{"star zero", []string{"*;q=0"}, all, ""},
		{"star zero but gzip", []string{"*;q=0, gzip"}, all, "gzip"},
		{"gzip zero, star", []string{"gzip;q=0, *"}, gzipOnly, ""},
		{"gzip zero, star covers others", []string{"gzip;q=0, *"}, all, "zstd"},
		{"star lower than listed", []string{"zstd;q=0.1, gzip;q=0.1, *;q=0.5"}, all, "br"},
		{"unsupported only", []string{"deflate, compress"}, all, ""},
		{"identity only", []string{"identity"}, all, ""},
		{"identity;q=0 alone", []string{"identity;q=0"}, all, ""},
		{"identity;q=0 with gzip", []string{"identity;q=0, gzip"}, all, "gzip"},
		{"identity;q=0, *;q=0", []string{"identity;q=0, *;q=0"}, all, ""},
		{"identity preferred", []string{"identity, gzip;q=0.5"}, all, ""},
		{"identity tie", []string{"identity, gzip"}, all, "gzip"},
		{"identity lower", []string{"identity;q=0.5, gzip"}, all, "gzip"},
		{"identity beats star", []string{"*;q=0.5, identity;q=0.6"}, all, ""},
		{"whitespace", []string{"  gzip  ;  q=0.5  ,\tbr\t"}, all, "br"},
		{"space around =", []string{"br;q = 0.2, gzip; q= 0.4"}, all, "gzip"},
		{"param case", []string{"gzip;Q=0.5, br;q=0.4"}, all, "gzip"},
		{"unknown param ignored", []string{"gzip;level=9"}, all, "gzip"},
		{"empty params", []string{"gzip;;"}, all, "gzip"},
		{"param without value ignored", []string{"gzip;q"}, all, "gzip"},
		{"empty elements", []string{",,, gzip ,,"}, all, "gzip"},
		{"malformed q ignored", []string{"gzip;q=abc"}, all, ""},
		{"empty q ignored", []string{"gzip;q="}, all, ""},
		{"q above 1 ignored", []string{"gzip;q=1.5"}, all, ""},
		{"q=2 ignored", []string{"gzip;q=2"}, all, ""},
		{"too many decimals ignored", []string{"gzip;q=0.0001"}, all, ""},
		{"negative q ignored", []string{"gzip;q=-1"}, all, ""},
		{"malformed element skipped", []string{"gzip;q=x, br"}, all, "br"},
		{"bad token skipped", []string{"gz ip, br"}, all, "br"},
		{"quoted token skipped", []string{`"gzip"`}, all, ""},
		{"semicolon first", []string{";q=1"}, all, ""},
		{"duplicate takes lowest", []string{"gzip, gzip;q=0"}, all, ""},
		{"duplicate lower q kept", []string{"gzip;q=0.5, gzip, br;q=0.6"}, all, "br"},
		{"x-gzip alias duplicate", []string{"x-gzip;q=0, gzip"}, all, ""},
		{"several lines", []string{"gzip;q=0.5", "br"}, all, "br"},
		{"several lines with zero", []string{"gzip", "gzip;q=0"}, gzipOnly, ""},
		{"gzip offered only", []string{"br, zstd"}, gzipOnly, ""},
		{"no offers", []string{"gzip"}, nil, ""},
		{"non-ASCII", []string{"gzïp, gzip"}, all, "gzip"},
		{"NUL", []string{"gzip\x00, br"}, all, "br"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := negotiateEncoding(tc.values, tc.offers)
			got := ""
			if i >= 0 {
				got = tc.offers[i]
			}
			if got != tc.want {
				t.Errorf("negotiateEncoding(%q, %q) = %q, want %q", tc.values, tc.offers, got, tc.want)
			}
		})
	}
}

func TestParseEncodingQValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1000, true},
		{"0.", 0, true},
		{"1.", 1000, true},
		{"0.5", 500, true},
		{"0.05", 50, true},
		{"0.123", 123, true},
		{"1.0", 1000, true},
		{"1.000", 1000, true},
		{"1.001", 0, false},
		{"0.1234", 0, false},
		{"", 0, false},
		{".5", 0, false},
		{"2", 0, false},
		{"0,5", 0, false},
		{"0.5x", 0, false},
		{"01", 0, false},
		{"1e0", 0, false},
	} {
		got, ok := parseEncodingQValue(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseEncodingQValue(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCompressHeaderHasToken(t *testing.T) {
	for _, tc := range []struct {
		values []string
		token  string
		want   bool
	}{
		{nil, "no-transform", false},
		{[]string{"no-transform"}, "no-transform", true},
		{[]string{"public, max-age=60, No-Transform"}, "no-transform", true},
		{[]string{"public", "no-transform"}, "no-transform", true},
		{[]string{"public, no-transformer"}, "no-transform", false},
		{[]string{`private="no-transform"`}, "no-transform", false},
		{[]string{"Origin, accept-encoding"}, "Accept-Encoding", true},
		{[]string{"Origin,Accept-Encoding-X"}, "Accept-Encoding", false},
	} {
		if got := compressHeaderHasToken(tc.values, tc.token); got != tc.want {
			t.Errorf("compressHeaderHasToken(%q, %q) = %v, want %v", tc.values, tc.token, got, tc.want)
		}
	}
}
