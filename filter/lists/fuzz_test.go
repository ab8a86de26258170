package lists_test

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"waygate/filter/hostname"
	"waygate/filter/lists"
)

var fuzzSeeds = []string{
	"example.com\n.example.com\n*.example.com\nexample.com.\nExample.COM # c\n",
	"\ufeff# header\r\nbücher.example\r\n127.1\r\n10.0.0.0/8\r\n::ffff:10.0.0.0/104\r\n",
	"0.0.0.0 a.example b.example\n127.0.0.1 localhost\n::1 ip6-localhost\n:: x.example\n",
	"[Adblock Plus 2.0]\n! c\n||example.com^\n||x.example^$third-party\n@@||y.example^\n##.ad\n",
	"http://Example.com:8080/A?b=C#frag\n[::1]/x\nexample.com?q\n",
	"(^|\\.)example\\.com/\n((a|b)\n[[:alpha:]]+\n",
	"a..b\n1.2.3.256\n2130706433\n*.1.2.3.4\nexample.com/path\nxn--bcher-kva.example\n",
	"\xff\xfe.example\nа\u200db.example\n" + strings.Repeat("a", 70) + ".x\n",
}

// parseFuzz parses data, checks the invariants every format shares and
// returns the entries.
func parseFuzz(t *testing.T, f lists.Format, data string) []lists.Entry {
	var got []lists.Entry
	st, err := lists.Parse(strings.NewReader(data), "fuzz", f, func(e lists.Entry) { got = append(got, e) })
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if st.Entries != len(got) {
		t.Fatalf("Entries = %d, emitted %d", st.Entries, len(got))
	}
	if want := min(st.Malformed, lists.MaxProblems); len(st.Problems) != want {
		t.Fatalf("%d problems for %d malformed", len(st.Problems), st.Malformed)
	}
	for _, p := range st.Problems {
		if len(p.Text) > 200 || p.Reason == "" || p.Line < 1 || p.Line > st.Lines {
			t.Fatalf("bad problem %+v", p)
		}
	}
	last := 0
	for _, e := range got {
		if e.Value == "" {
			t.Fatalf("empty value: %+v", e)
		}
		if e.Line < last || e.Line < 1 || e.Line > st.Lines {
			t.Fatalf("bad line number: %+v (lines %d)", e, st.Lines)
		}
		last = e.Line
	}
	return got
}

// reparse parses line alone and returns its single entry; it fails t if
// the line does not give exactly one entry.
func reparse(t *testing.T, f lists.Format, line string) lists.Entry {
	t.Helper()
	var got []lists.Entry
	st, err := lists.Parse(strings.NewReader(line), "re", f, func(e lists.Entry) { got = append(got, e) })
	if err != nil || len(got) != 1 || st.Malformed != 0 {
		t.Fatalf("re-parsing %q as %v: %v, %v, %+v", line, f, got, err, st)
	}
	return got[0]
}

// checkHostValue checks that a domain or IP entry is what hostname.Parse
// makes of it, and that it reads back the same from a domains list.
func checkHostValue(t *testing.T, e lists.Entry) {
	t.Helper()
	switch e.Kind {
	case lists.KindDomain:
		name, _, isIP, err := hostname.Parse(e.Value)
		if err != nil || isIP || name != e.Value {
			t.Fatalf("domain %q: hostname.Parse = %q, %v, %v", e.Value, name, isIP, err)
		}
	case lists.KindIP:
		a, err := netip.ParseAddr(e.Value)
		if err != nil || a.String() != e.Value || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("ip %q not canonical: %v", e.Value, err)
		}
	case lists.KindCIDR:
		p, err := netip.ParsePrefix(e.Value)
		if err != nil || p.Masked().String() != e.Value {
			t.Fatalf("cidr %q not canonical: %v", e.Value, err)
		}
	default:
		t.Fatalf("unexpected kind %v", e.Kind)
	}
	if r := reparse(t, lists.FormatDomains, e.Value); r.Kind != e.Kind || r.Value != e.Value {
		t.Fatalf("not idempotent: %q gave %v %q", e.Value, r.Kind, r.Value)
	}
}

func FuzzParseDomains(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, e := range parseFuzz(t, lists.FormatDomains, data) {
			checkHostValue(t, e)
		}
	})
}

func FuzzParseHosts(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, e := range parseFuzz(t, lists.FormatHosts, data) {
			if e.Kind != lists.KindDomain && e.Kind != lists.KindIP {
				t.Fatalf("hosts gave %v", e)
			}
			checkHostValue(t, e)
			if r := reparse(t, lists.FormatHosts, "0.0.0.0 "+e.Value); r.Kind != e.Kind || r.Value != e.Value {
				t.Fatalf("not idempotent as hosts line: %q gave %v %q", e.Value, r.Kind, r.Value)
			}
		}
	})
}

func FuzzParseAdblock(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, e := range parseFuzz(t, lists.FormatAdblock, data) {
			if e.Kind != lists.KindDomain && e.Kind != lists.KindIP {
				t.Fatalf("adblock gave %v", e)
			}
			checkHostValue(t, e)
			if e.Kind == lists.KindDomain {
				if r := reparse(t, lists.FormatAdblock, "||"+e.Value+"^"); r.Value != e.Value {
					t.Fatalf("not idempotent as adblock rule: %q gave %q", e.Value, r.Value)
				}
			}
		}
	})
}

func FuzzParseURLs(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, e := range parseFuzz(t, lists.FormatURLs, data) {
			if e.Kind != lists.KindURL {
				t.Fatalf("urls gave %v", e)
			}
			host, _, ok := strings.Cut(e.Value, "/")
			if !ok || strings.ContainsAny(e.Value, "# \t\r\n\v\fABCDEFGHIJKLMNOPQRSTUVWXYZ") {
				t.Fatalf("bad URL value %q", e.Value)
			}
			if name, _, _, err := hostname.Parse(host); err != nil || (name != host && "["+name+"]" != host) {
				t.Fatalf("URL %q: host not canonical: %q, %v", e.Value, name, err)
			}
			if r := reparse(t, lists.FormatURLs, e.Value); r.Value != e.Value {
				t.Fatalf("not idempotent: %q gave %q", e.Value, r.Value)
			}
		}
	})
}

func FuzzParseExpressions(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, e := range parseFuzz(t, lists.FormatExpressions, data) {
			if e.Kind != lists.KindExpression || strings.Trim(e.Value, " \t\r\n\v\f") != e.Value {
				t.Fatalf("expressions gave %v", e)
			}
			if _, err := regexp.Compile(e.Value); err != nil {
				t.Fatalf("emitted invalid regexp %q: %v", e.Value, err)
			}
		}
	})
}
