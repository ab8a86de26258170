package lists_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"waygate/filter/lists"
)

// parseAll parses in and returns the entries and stats; it fails t on a
// read error.
func parseAll(t testing.TB, f lists.Format, in string) ([]lists.Entry, lists.Stats) {
	t.Helper()
	var got []lists.Entry
	st, err := lists.Parse(strings.NewReader(in), "test", f, func(e lists.Entry) { got = append(got, e) })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if st.Entries != len(got) {
		t.Fatalf("Stats.Entries = %d, emitted %d", st.Entries, len(got))
	}
	return got, st
}

const (
	D = lists.KindDomain
	U = lists.KindURL
	E = lists.KindExpression
	I = lists.KindIP
	C = lists.KindCIDR
)

type ent struct {
	Kind  lists.Kind
	Value string
}

// lineCase is one line of input and what it must give: entries, or a
// malformed reason, or an unsupported count.
type lineCase struct {
	in          string
	want        []ent
	reason      string // non-empty: the line is malformed with this reason
	unsupported int
}

func runLineCases(t *testing.T, f lists.Format, cases []lineCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(strconv.Quote(tc.in), func(t *testing.T) {
			got, st := parseAll(t, f, tc.in+"\n")
			var gotEnts []ent
			for _, e := range got {
				gotEnts = append(gotEnts, ent{e.Kind, e.Value})
				if e.Line != 1 {
					t.Errorf("entry %v: Line = %d, want 1", e, e.Line)
				}
			}
			if !slices.Equal(gotEnts, tc.want) {
				t.Errorf("entries = %v, want %v", gotEnts, tc.want)
			}
			if tc.reason != "" {
				if st.Malformed != 1 || len(st.Problems) != 1 {
					t.Fatalf("Malformed = %d, Problems = %v; want one problem %q", st.Malformed, st.Problems, tc.reason)
				}
				p := st.Problems[0]
				if p.Reason != tc.reason || p.Line != 1 || p.Source != "test" || p.Text != cut200(strings.TrimSpace(tc.in)) {
					t.Errorf("problem = %+v, want reason %q on line 1", p, tc.reason)
				}
			} else if st.Malformed != 0 {
				t.Errorf("unexpected problems %v", st.Problems)
			}
			if st.Unsupported != tc.unsupported {
				t.Errorf("Unsupported = %d, want %d", st.Unsupported, tc.unsupported)
			}
			if st.Lines != 1 {
				t.Errorf("Lines = %d, want 1", st.Lines)
			}
		})
	}
}

func cut200(s string) string { return s[:min(len(s), 200)] }

func one(k lists.Kind, v string) []ent { return []ent{{k, v}} }

func TestDomainsLines(t *testing.T) {
	runLineCases(t, lists.FormatDomains, []lineCase{
		// Names and their spellings.
		{in: "example.com", want: one(D, "example.com")},
		{in: "Example.COM", want: one(D, "example.com")},
		{in: ".example.com", want: one(D, "example.com")},
		{in: "*.example.com", want: one(D, "example.com")},
		{in: "example.com.", want: one(D, "example.com")},
		{in: "*.Example.com.", want: one(D, "example.com")},
		{in: " \texample.com \t", want: one(D, "example.com")},
		{in: "example.com # a comment", want: one(D, "example.com")},
		{in: "example.com\t#comment", want: one(D, "example.com")},
		{in: "_dmarc.blog_x.example.com", want: one(D, "_dmarc.blog_x.example.com")},
		{in: "bücher.example", want: one(D, "xn--bcher-kva.example")},
		{in: "BÜCHER.Example", want: one(D, "xn--bcher-kva.example")},
		{in: "*.bücher.example.", want: one(D, "xn--bcher-kva.example")},
		{in: "xn--bcher-kva.example", want: one(D, "xn--bcher-kva.example")},
		{in: "例え.テスト", want: one(D, "xn--r8jz45g.xn--zckzah")},
		{in: "com", want: one(D, "com")}, // single labels are allowed (TLD blocking)
		{in: "localhost", want: one(D, "localhost")},
		{in: "example.0x1g", want: one(D, "example.0x1g")},
		{in: strings.Repeat("a", 63) + ".example", want: one(D, strings.Repeat("a", 63)+".example")},
		// IP addresses, every spelling hostname.Parse knows.
		{in: "127.0.0.1", want: one(I, "127.0.0.1")},
		{in: "127.1", want: one(I, "127.0.0.1")},
		{in: "0x7f.1", want: one(I, "127.0.0.1")},
		{in: "0177.0.0.1", want: one(I, "127.0.0.1")},
		{in: "010.0.0.1", want: one(I, "8.0.0.1")},
		{in: "1.2.3.4.", want: one(I, "1.2.3.4")},
		{in: "::1", want: one(I, "::1")},
		{in: "[2001:DB8::1]", want: one(I, "2001:db8::1")},
		{in: "::ffff:1.2.3.4", want: one(I, "1.2.3.4")},
		// CIDR prefixes.
		{in: "10.0.0.0/8", want: one(C, "10.0.0.0/8")},
		{in: "10.1.2.3/8", want: one(C, "10.0.0.0/8")},
		{in: "10.1/16", want: one(C, "10.0.0.0/16")},
		{in: "1.2.3.4/32", want: one(C, "1.2.3.4/32")},
		{in: "0.0.0.0/0", want: one(C, "0.0.0.0/0")},
		{in: "2001:DB8::1/32", want: one(C, "2001:db8::/32")},
		{in: "::ffff:10.0.0.0/104", want: one(C, "10.0.0.0/8")},
		// Hosts and Adblock lines in a domains list.
		{in: "0.0.0.0 example.com", want: one(D, "example.com")},
		{in: "127.0.0.1\ta.example b.example # c", want: []ent{{D, "a.example"}, {D, "b.example"}}},
		{in: "127.0.0.1 localhost"},
		{in: "||example.com^", want: one(D, "example.com")},
		{in: "||example.com^$third-party", unsupported: 1},
		{in: "@@||example.com^", unsupported: 1},
		{in: "! adblock comment"},
		{in: "[Adblock Plus 2.0]"},
		{in: "# comment"},
		// Malformed.
		{in: "a..b", reason: "empty label"},
		{in: "..example.com", reason: "empty label"},
		{in: "*.", reason: "empty host"},
		{in: ".", reason: "empty host"},
		{in: "*", reason: `invalid character '*'`},
		{in: "*example.com", reason: `invalid character '*'`},
		{in: "exa!mple.com", reason: `invalid character '!'`},
		{in: "example.com#frag", reason: `invalid character '#'`},
		{in: "exa mple.com", reason: "white space in value"},
		{in: strings.Repeat("a", 64) + ".example", reason: "label longer than 63 bytes"},
		{in: strings.Repeat("abcdefghi.", 26) + "com", reason: "name longer than 253 bytes"},
		{in: "1.2.3.256", reason: "invalid IPv4 address"},
		{in: "1.2.3.4.5", reason: "invalid IPv4 address"},
		{in: "example.08", reason: "invalid IPv4 address"},
		{in: "2130706433", reason: "single-label numeric name"},
		{in: "0x7f000001", reason: "single-label numeric name"},
		{in: "fe80::1%eth0", reason: "IPv6 zone not allowed"},
		{in: "*.1.2.3.4", reason: "wildcard on an IP address"},
		{in: ".10.0.0.0/8", reason: "wildcard on a CIDR prefix"},
		{in: "10.0.0.0/33", reason: "invalid prefix length"},
		{in: "10.0.0.0/08", reason: "invalid prefix length"},
		{in: "10.0.0.0/", reason: "invalid prefix length"},
		{in: "::ffff:10.0.0.0/95", reason: "invalid prefix length"},
		{in: "example.com/path", reason: "path in a domains list"},
		{in: "bad..name/path", reason: "path in a domains list"},
		{in: "1.2.3.999/8", reason: "invalid IPv4 address"},
		{in: "a\u200db.example", reason: "invalid IDN: invalid label \"a\\u200db\""},
		{in: "bücher..example", reason: "empty label"},
	})
}

func TestHostsLines(t *testing.T) {
	runLineCases(t, lists.FormatHosts, []lineCase{
		{in: "0.0.0.0 example.com", want: one(D, "example.com")},
		{in: "127.0.0.1 Example.COM.", want: one(D, "example.com")},
		{in: ":: example.com", want: one(D, "example.com")},
		{in: "::1\texample.com", want: one(D, "example.com")},
		{in: "0.0.0.0 a.example\tb.example  c.example", want: []ent{{D, "a.example"}, {D, "b.example"}, {D, "c.example"}}},
		{in: "0.0.0.0 example.com # tracker", want: one(D, "example.com")},
		{in: "0.0.0.0 bücher.example", want: one(D, "xn--bcher-kva.example")},
		{in: "0.0.0.0 1.2.3.4", want: one(I, "1.2.3.4")},
		{in: "0.0.0.0 myrouter", want: one(D, "myrouter")},
		// Local names and addresses are skipped silently.
		{in: "127.0.0.1 localhost"},
		{in: "127.0.0.1 LOCALHOST localhost.localdomain local"},
		{in: "255.255.255.255 broadcasthost"},
		{in: "::1 localhost ip6-localhost ip6-loopback"},
		{in: "fe00::0 ip6-localnet"},
		{in: "ff02::1 ip6-allnodes"},
		{in: "0.0.0.0 0.0.0.0"},
		{in: "0.0.0.0 127.0.0.1 ::"},
		{in: "# 0.0.0.0 commented.example"},
		// Malformed.
		{in: "example.com", reason: "hosts line does not start with an IP address"},
		{in: "example.com 0.0.0.0", reason: "hosts line does not start with an IP address"},
		{in: "0.0.0.0", reason: "hosts line without a name"},
		{in: "0.0.0.0 # nothing", reason: "hosts line without a name"},
		{in: "0.0.0.0 a..b good.example", want: one(D, "good.example"), reason: "empty label"},
		{in: "0.0.0.0 *.example.com", reason: `invalid character '*'`},
	})
}

func TestURLsLines(t *testing.T) {
	runLineCases(t, lists.FormatURLs, []lineCase{
		{in: "example.com/path", want: one(U, "example.com/path")},
		{in: "Example.COM/Path/File.HTML", want: one(U, "example.com/path/file.html")},
		{in: "http://example.com/a", want: one(U, "example.com/a")},
		{in: "HTTPS://example.com/a", want: one(U, "example.com/a")},
		{in: "example.com", want: one(U, "example.com/")},
		{in: "example.com/", want: one(U, "example.com/")},
		{in: "www.example.com/a", want: one(U, "www.example.com/a")},
		{in: "example.com/a#frag", want: one(U, "example.com/a")},
		{in: "danskporn.dk/#p2", want: one(U, "danskporn.dk/")},
		{in: "example.com/a # comment", want: one(U, "example.com/a")},
		{in: "example.com?q=1", want: one(U, "example.com/?q=1")},
		{in: "example.com/a?B=1&c=D", want: one(U, "example.com/a?b=1&c=d")},
		{in: "example.com/~user/%7E", want: one(U, "example.com/~user/%7e")},
		{in: "example.com:8080/a", want: one(U, "example.com/a")},
		{in: "example.com/r?u=http://x", want: one(U, "example.com/r?u=http://x")},
		{in: "example.com?u=http://x", want: one(U, "example.com/?u=http://x")},
		{in: "129.105.212.34/~abutz", want: one(U, "129.105.212.34/~abutz")},
		{in: "127.1/x", want: one(U, "127.0.0.1/x")},
		{in: "[::1]/x", want: one(U, "[::1]/x")},
		{in: "[::1]:8080/x", want: one(U, "[::1]/x")},
		{in: "bücher.example/Ä", want: one(U, "xn--bcher-kva.example/Ä")},
		{in: "# comment"},
		// Malformed.
		{in: "ftp://example.com/a", reason: "unsupported scheme"},
		{in: "example.com:99999/a", reason: "invalid port"},
		{in: "example.com:/a", reason: "invalid port"},
		{in: "example.com/a b", reason: "white space or control character in URL"},
		{in: "a..b/x", reason: "empty label"},
		{in: "/path", reason: "empty host"},
		{in: "http://", reason: "empty host"},
		{in: "user@example.com/x", reason: `invalid character '@'`},
		{in: "*.example.com/x", reason: `invalid character '*'`},
		{in: "2130706433/x", reason: "single-label numeric name"},
	})
}

func TestExpressionsLines(t *testing.T) {
	runLineCases(t, lists.FormatExpressions, []lineCase{
		{in: `(^|\.)example\.com/`, want: one(E, `(^|\.)example\.com/`)},
		{in: `.*/ymsgr*\.exe`, want: one(E, `.*/ymsgr*\.exe`)},
		{in: `[[:alpha:]]+porn`, want: one(E, `[[:alpha:]]+porn`)},
		{in: `  (/banner/|/sponsor/)  `, want: one(E, `(/banner/|/sponsor/)`)},
		{in: "# comment"},
		{in: `((a|b)`, reason: "invalid regular expression: missing closing ) \"((a|b)\""},
		{in: `a{2,1}`, reason: "invalid regular expression: invalid repeat count \"{2,1}\""},
		{in: `(?<=a)b`, reason: "invalid regular expression: invalid named capture \"(?<=a)b\""},
	})
}

func TestAdblockLines(t *testing.T) {
	runLineCases(t, lists.FormatAdblock, []lineCase{
		{in: "[Adblock Plus 2.0]"},
		{in: "! Title: test list"},
		{in: "# comment"},
		{in: "||example.com^", want: one(D, "example.com")},
		{in: "||Example.COM^", want: one(D, "example.com")},
		{in: "||bücher.example^", want: one(D, "xn--bcher-kva.example")},
		{in: "||1.2.3.4^", want: one(I, "1.2.3.4")},
		// Unsupported syntax.
		{in: "||example.com^$third-party", unsupported: 1},
		{in: "||example.com^$important", unsupported: 1},
		{in: "||example.com^|", unsupported: 1},
		{in: "||example.com", unsupported: 1},
		{in: "||example.com/ads^", unsupported: 1},
		{in: "||ads*.example.com^", unsupported: 1},
		{in: "@@||example.com^", unsupported: 1},
		{in: "example.com##.ad", unsupported: 1},
		{in: "##.banner", unsupported: 1},
		{in: "#@#.banner", unsupported: 1},
		{in: "/banner/*", unsupported: 1},
		{in: "example.com", unsupported: 1},
		// Malformed.
		{in: "||a..b^", reason: "empty label"},
		{in: "||^", reason: "empty host"},
		{in: "||1.2.3.256^", reason: "invalid IPv4 address"},
	})
}

func TestLineNumbersCommentsBOMCRLF(t *testing.T) {
	in := "\ufeff# header\r\n" +
		"\r\n" +
		"example.com\r\n" +
		"   \r\n" +
		"bad..example\r\n" +
		"Second.Example # why\r\n" +
		"\ufeffnot-a-bom-here.example\r\n" +
		"last.example" // no final newline
	got, st := parseAll(t, lists.FormatDomains, in)
	want := []lists.Entry{
		{Kind: D, Value: "example.com", Line: 3},
		{Kind: D, Value: "second.example", Line: 6},
		// U+FEFF inside the file is an IDN ignorable, mapped away.
		{Kind: D, Value: "not-a-bom-here.example", Line: 7},
		{Kind: D, Value: "last.example", Line: 8},
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
	if st.Lines != 8 || st.Malformed != 1 || st.Problems[0].Line != 5 {
		t.Errorf("stats = %+v", st)
	}
	if s := st.Problems[0].String(); s != "test:5: empty label: bad..example" {
		t.Errorf("Problem.String() = %q", s)
	}

	// A BOM alone on the first line, and a BOM before a URL.
	got, st = parseAll(t, lists.FormatURLs, "\ufeffExample.com/X\r\n")
	if len(got) != 1 || got[0].Value != "example.com/x" || st.Malformed != 0 {
		t.Errorf("URLs with BOM: %v %+v", got, st)
	}
	_, st = parseAll(t, lists.FormatDomains, "\ufeff\n")
	if st.Lines != 1 || st.Entries != 0 || st.Malformed != 0 {
		t.Errorf("BOM-only file: %+v", st)
	}
}

func TestOverlongLine(t *testing.T) {
	long := strings.Repeat("x", lists.MaxLineLen+10)
	in := "a.example\n" + long + "\nb.example\n" + strings.Repeat("y.", lists.MaxLineLen) + "\nc.example\n" + long
	got, st := parseAll(t, lists.FormatDomains, in)
	want := []lists.Entry{
		{Kind: D, Value: "a.example", Line: 1},
		{Kind: D, Value: "b.example", Line: 3},
		{Kind: D, Value: "c.example", Line: 5},
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
	if st.Lines != 6 || st.Malformed != 3 || len(st.Problems) != 3 {
		t.Fatalf("stats = %+v", st)
	}
	for i, line := range []int{2, 4, 6} {
		p := st.Problems[i]
		if p.Line != line || !strings.HasPrefix(p.Reason, "line longer than") || len(p.Text) != 200 {
			t.Errorf("problem %d = line %d, %q, text %d bytes", i, p.Line, p.Reason, len(p.Text))
		}
	}

	// A line of exactly MaxLineLen bytes is read (and is a bad name).
	_, st = parseAll(t, lists.FormatDomains, strings.Repeat("x", lists.MaxLineLen)+"\r\nok.example\n")
	if st.Entries != 1 || st.Malformed != 1 || st.Problems[0].Reason != "name longer than 253 bytes" {
		t.Errorf("MaxLineLen line: %+v", st)
	}
}

func TestProblemsCapped(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 25; i++ {
		sb.WriteString("bad..name\ngood.example\n")
	}
	sb.WriteString("||x^$third-party\n")
	_, st := parseAll(t, lists.FormatDomains, sb.String())
	if st.Malformed != 25 || len(st.Problems) != lists.MaxProblems || st.Entries != 25 || st.Unsupported != 1 {
		t.Fatalf("stats: Malformed %d, Problems %d, Entries %d, Unsupported %d",
			st.Malformed, len(st.Problems), st.Entries, st.Unsupported)
	}
	if st.Problems[19].Line != 39 {
		t.Errorf("last problem line = %d, want 39", st.Problems[19].Line)
	}
}

func TestProblemTextCut(t *testing.T) {
	// 199 ASCII bytes then "ü" (2 bytes): the cut must not split the rune.
	line := strings.Repeat("a", 199) + "ü" + strings.Repeat("b", 300)
	_, st := parseAll(t, lists.FormatDomains, line+"\n")
	if len(st.Problems) != 1 {
		t.Fatalf("problems = %v", st.Problems)
	}
	if txt := st.Problems[0].Text; txt != strings.Repeat("a", 199) {
		t.Errorf("Text = %q (%d bytes)", txt, len(txt))
	}
}

func TestParseErrors(t *testing.T) {
	boom := errors.New("boom")
	var n int
	st, err := lists.Parse(io.MultiReader(strings.NewReader("a.example\nb.exa"), iotest.ErrReader(boom)),
		"src", lists.FormatDomains, func(lists.Entry) { n++ })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "src") {
		t.Errorf("err = %v, want boom naming src", err)
	}
	if n != 2 || st.Entries != 2 { // the partial line before the error is still used
		t.Errorf("entries before the error: %d, %+v", n, st)
	}

	if _, err := lists.Parse(strings.NewReader("x"), "src", 0, nil); err == nil {
		t.Error("Parse with the zero Format: no error")
	}

	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := lists.ParseFile(missing, lists.FormatDomains, nil); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ParseFile(missing) = %v", err)
	}
}

func TestParseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "domains")
	if err := os.WriteFile(path, []byte("a.example\nbad..x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := lists.ParseFile(path, lists.FormatDomains, nil) // nil emit: count only
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 1 || st.Lines != 2 || st.Malformed != 1 || st.Problems[0].Source != path {
		t.Errorf("stats = %+v", st)
	}
}

func TestKindFormatString(t *testing.T) {
	for k, want := range map[lists.Kind]string{D: "domain", U: "url", E: "expression", I: "ip", C: "cidr", 0: "Kind(0)"} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), want)
		}
	}
	for f, want := range map[lists.Format]string{lists.FormatDomains: "domains", lists.FormatURLs: "urls",
		lists.FormatExpressions: "expressions", lists.FormatHosts: "hosts", lists.FormatAdblock: "adblock", 9: "Format(9)"} {
		if f.String() != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, f.String(), want)
		}
	}
}
