package filter_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"waygate/filter"
	"waygate/filter/lists"
)

func writeList(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testPolicy is a small policy that exercises every kind of entry and
// condition.
func testPolicy(t testing.TB) *filter.Policy {
	dir := t.TempDir()
	adult := writeList(t, dir, "adult/domains", "# adult\nadult.example\ncasino.example\nbücher.example\nbad line!\n")
	news := writeList(t, dir, "news/urls", "news.example/sports\nnews.example/World/Cup\n")
	nets := writeList(t, dir, "nets/domains", "10.9.0.0/16\n192.0.2.7\n")
	ads := writeList(t, dir, "ads.txt", "||ads.example^\n0.0.0.0 tracker.example\n")
	berlin := mustLoc(t, "Europe/Berlin")
	return &filter.Policy{
		Version: "v1",
		Categories: []filter.Category{
			{Name: "gambling", Domains: []string{"casino.example", "WWW.Lottery.Example."}},
			{Name: "adult", Lists: []filter.List{{Path: adult, Format: lists.FormatDomains}}},
			{Name: "news", Lists: []filter.List{{Path: news, Format: lists.FormatURLs}}},
			{Name: "internal", Lists: []filter.List{{Path: nets, Format: lists.FormatDomains, Source: "nets-list"}}},
			{Name: "ads", Lists: []filter.List{{Path: ads, Format: lists.FormatDomains}}},
			{Name: "social", Domains: []string{"social.example"}},
		},
		Groups: []filter.Group{
			{Name: "staff", Clients: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Users: []string{"alice"}},
			{Name: "guests", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.50.0/24")}},
		},
		Rules: []filter.Rule{
			{Name: "no-gambling", Categories: []string{"gambling"}, Action: filter.ActionBlock},
			{Name: "staff-adult-warn", Groups: []string{"staff"}, Categories: []string{"adult"}, Action: filter.ActionWarn, WarnFor: 30 * time.Minute},
			{Name: "adult", Categories: []string{"adult"}, Action: filter.ActionBlock},
			{Name: "news-monitor", Categories: []string{"news"}, Action: filter.ActionMonitor},
			{Name: "no-internal", Categories: []string{"internal"}, Action: filter.ActionBlock},
			{Name: "ads", Categories: []string{"ads"}, Action: filter.ActionBlock},
			{Name: "social-office-hours", Categories: []string{"social"}, Action: filter.ActionBlock,
				Schedules: []filter.Schedule{{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
					From: 9 * 60, To: 17 * 60, Location: berlin}}},
			{Name: "guests-no-post", Groups: []string{"guests"}, Methods: []string{"POST"}, Action: filter.ActionBlock},
			{Name: "no-8080", Ports: []uint16{8080}, Action: filter.ActionBlock},
			{Name: "rule-own-domains", Domains: []string{"evil.example"}, URLs: []string{"good.example/evil"}, Action: filter.ActionBlock},
		},
		Default: filter.ActionAllow,
	}
}

func compile(t testing.TB) *filter.Engine {
	t.Helper()
	e, err := filter.Compile(testPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDecide(t *testing.T) {
	e := compile(t)
	monday10 := time.Date(2026, 11, 30, 10, 0, 0, 0, mustLoc(t, "Europe/Berlin"))
	saturday := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	staff := netip.MustParseAddr("10.1.2.3")
	other := netip.MustParseAddr("10.2.0.1")
	tests := []struct {
		name   string
		req    filter.Request
		action filter.Action
		rule   string
		entry  string
	}{
		{"blocked domain", filter.Request{Host: "casino.example", Path: "/"}, filter.ActionBlock, "no-gambling", "casino.example"},
		{"subdomain", filter.Request{Host: "www.casino.example", Path: "/"}, filter.ActionBlock, "no-gambling", "casino.example"},
		{"upper case and trailing dot", filter.Request{Host: "WWW.CASINO.EXAMPLE.", Path: "/"}, filter.ActionBlock, "no-gambling", "casino.example"},
		{"label boundary", filter.Request{Host: "notcasino.example", Path: "/"}, filter.ActionAllow, "", ""},
		{"inline entry normalized", filter.Request{Host: "www.lottery.example", Path: "/"}, filter.ActionBlock, "no-gambling", "www.lottery.example"},
		{"IDN in list, Unicode request", filter.Request{Host: "BÜCHER.example", Path: "/"}, filter.ActionBlock, "adult", "xn--bcher-kva.example"},
		{"IDN in list, punycode request", filter.Request{Host: "xn--bcher-kva.example", Path: "/"}, filter.ActionBlock, "adult", "xn--bcher-kva.example"},
		{"url prefix", filter.Request{Host: "news.example", Path: "/sports/today"}, filter.ActionMonitor, "news-monitor", "news.example/sports"},
		{"url prefix, case", filter.Request{Host: "news.example", Path: "/SPORTS"}, filter.ActionMonitor, "news-monitor", "news.example/sports"},
		{"url prefix, dot segments", filter.Request{Host: "news.example", Path: "/x/../sports"}, filter.ActionMonitor, "news-monitor", "news.example/sports"},
		{"url prefix, percent-encoded", filter.Request{Host: "news.example", Path: "/%73ports"}, filter.ActionMonitor, "news-monitor", "news.example/sports"},
		{"url prefix, encoded dots", filter.Request{Host: "news.example", Path: "/a/%2e%2E/sports"}, filter.ActionMonitor, "news-monitor", "news.example/sports"},
		{"url prefix, double slash", filter.Request{Host: "news.example", Path: "//world//cup"}, filter.ActionMonitor, "news-monitor", "news.example/world/cup"},
		{"url prefix, subdomain", filter.Request{Host: "www.news.example", Path: "/sports"}, filter.ActionMonitor, "news-monitor", "news.example/sports"},
		{"url other path", filter.Request{Host: "news.example", Path: "/weather"}, filter.ActionAllow, "", ""},
		{"CONNECT ignores paths", filter.Request{Method: "CONNECT", Host: "news.example", Port: 443}, filter.ActionAllow, "", ""},
		{"CIDR entry", filter.Request{Host: "10.9.200.1", Path: "/"}, filter.ActionBlock, "no-internal", "10.9.0.0/16"},
		{"CIDR entry, hex spelling", filter.Request{Host: "0x0a.9.200.1", Path: "/"}, filter.ActionBlock, "no-internal", "10.9.0.0/16"},
		{"IP entry, decimal spelling", filter.Request{Host: "3221225991", Path: "/"}, filter.ActionBlock, "no-internal", "192.0.2.7"},
		{"IP entry, mapped IPv6", filter.Request{Host: "[::ffff:192.0.2.7]", Path: "/"}, filter.ActionBlock, "no-internal", "192.0.2.7"},
		{"adblock list", filter.Request{Host: "cdn.ads.example", Path: "/"}, filter.ActionBlock, "ads", "ads.example"},
		{"hosts list", filter.Request{Host: "tracker.example", Path: "/"}, filter.ActionBlock, "ads", "tracker.example"},
		{"group by client", filter.Request{Client: staff, Host: "adult.example", Path: "/"}, filter.ActionWarn, "staff-adult-warn", "adult.example"},
		{"group by user", filter.Request{Client: other, User: "alice", Host: "adult.example", Path: "/"}, filter.ActionWarn, "staff-adult-warn", "adult.example"},
		{"not in group", filter.Request{Client: other, User: "bob", Host: "adult.example", Path: "/"}, filter.ActionBlock, "adult", "adult.example"},
		{"schedule inside", filter.Request{Host: "social.example", Path: "/", Time: monday10}, filter.ActionBlock, "social-office-hours", "social.example"},
		{"schedule outside", filter.Request{Host: "social.example", Path: "/", Time: saturday}, filter.ActionAllow, "", "social.example"},
		{"method and group", filter.Request{Client: netip.MustParseAddr("192.168.50.9"), Method: "POST", Host: "x.example", Path: "/"}, filter.ActionBlock, "guests-no-post", ""},
		{"method, other group", filter.Request{Client: other, Method: "POST", Host: "x.example", Path: "/"}, filter.ActionAllow, "", ""},
		{"port", filter.Request{Host: "x.example", Port: 8080, Path: "/"}, filter.ActionBlock, "no-8080", ""},
		{"rule's own domain", filter.Request{Host: "a.evil.example", Path: "/"}, filter.ActionBlock, "rule-own-domains", "evil.example"},
		{"rule's own url", filter.Request{Host: "good.example", Path: "/evil/x"}, filter.ActionBlock, "rule-own-domains", "good.example/evil"},
		{"rule's own url, other path", filter.Request{Host: "good.example", Path: "/fine"}, filter.ActionAllow, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Method == "" {
				tt.req.Method = "GET"
			}
			if tt.req.Time.IsZero() {
				tt.req.Time = saturday
			}
			d := e.Decide(&tt.req)
			if d.Action != tt.action || d.Rule != tt.rule || d.Entry != tt.entry {
				t.Fatalf("got %v rule %q entry %q (reason %v, categories %v), want %v rule %q entry %q",
					d.Action, d.Rule, d.Entry, d.Reason, d.Categories, tt.action, tt.rule, tt.entry)
			}
			if d.PolicyVersion != "v1" {
				t.Errorf("policy version %q", d.PolicyVersion)
			}
			if tt.rule == "" && d.Reason != filter.ReasonDefault || tt.rule != "" && d.Reason != filter.ReasonRule {
				t.Errorf("reason %v", d.Reason)
			}
		})
	}
}

func TestDecisionExplains(t *testing.T) {
	e := compile(t)
	// casino.example is in gambling (inline) and adult (a list file).
	d := e.Decide(&filter.Request{Method: "GET", Host: "www.casino.example", Path: "/"})
	if !slices.Equal(d.Categories, []string{"adult", "gambling"}) {
		t.Errorf("categories %v, want both", d.Categories)
	}
	if d.Category != "gambling" || d.Source != "inline" || d.Host != "www.casino.example" {
		t.Errorf("category %q source %q host %q", d.Category, d.Source, d.Host)
	}
	d = e.Decide(&filter.Request{Method: "GET", Host: "adult.example", Path: "/"})
	if !strings.HasSuffix(d.Source, filepath.Join("adult", "domains")) {
		t.Errorf("source %q does not name the list file", d.Source)
	}
	d = e.Decide(&filter.Request{Method: "GET", Host: "10.9.0.1", Path: "/"})
	if d.Source != "nets-list" {
		t.Errorf("source %q, want the list's configured name", d.Source)
	}
	d = e.Decide(&filter.Request{Client: netip.MustParseAddr("10.1.0.1"), Method: "GET", Host: "adult.example", Path: "/"})
	if d.WarnFor != 30*time.Minute {
		t.Errorf("warn for %v", d.WarnFor)
	}
	st := e.Stats()
	if st.Malformed != 1 || len(st.Problems) != 1 || st.Problems[0].Line != 5 {
		t.Errorf("malformed lines: %+v", st)
	}
}

func TestDecideInvalidHostFailsClosed(t *testing.T) {
	e := compile(t)
	for _, h := range []string{"", "bad host", "a..b", "1.2.3.4.5", "exa_mple.com\x00"} {
		d := e.Decide(&filter.Request{Method: "GET", Host: h, Path: "/"})
		if d.Action != filter.ActionBlock || d.Reason != filter.ReasonInvalidTarget {
			t.Errorf("%q: %v %v, want block invalid_target", h, d.Action, d.Reason)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for name, mutate := range map[string]func(*filter.Policy){
		"unknown category":   func(p *filter.Policy) { p.Rules[0].Categories = []string{"nope"} },
		"unknown group":      func(p *filter.Policy) { p.Rules[1].Groups = []string{"nope"} },
		"duplicate category": func(p *filter.Policy) { p.Categories = append(p.Categories, p.Categories[0]) },
		"duplicate rule":     func(p *filter.Policy) { p.Rules = append(p.Rules, p.Rules[0]) },
		"missing list":       func(p *filter.Policy) { p.Categories[1].Lists[0].Path = "/nonexistent/list" },
	} {
		t.Run(name, func(t *testing.T) {
			p := testPolicy(t)
			mutate(p)
			if _, err := filter.Compile(p); err == nil {
				t.Fatal("compiled")
			}
		})
	}
}

func TestNilEngineAllows(t *testing.T) {
	var e *filter.Engine
	if d := e.Decide(&filter.Request{Host: "x.example"}); d.Action != filter.ActionAllow {
		t.Fatal(d.Action)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	e := compile(t)
	reqs := []filter.Request{
		{Method: "GET", Host: "www.casino.example", Path: "/index.html", Time: time.Unix(0, 0)},
		{Method: "GET", Host: "allowed.example", Path: "/a/b", Time: time.Unix(0, 0)},
		{Method: "CONNECT", Host: "adult.example", Port: 443, Time: time.Unix(0, 0)},
	}
	for _, r := range reqs {
		if n := testing.AllocsPerRun(100, func() { e.Decide(&r) }); n != 0 {
			t.Errorf("%s %s: %v allocations per decision", r.Method, r.Host, n)
		}
	}
}

func TestNormalize(t *testing.T) {
	hosts := map[string]string{
		"Example.COM.":       "example.com",
		"bücher.example":     "xn--bcher-kva.example",
		"0x7f.1":             "127.0.0.1",
		"2130706433":         "127.0.0.1",
		"[::ffff:127.0.0.1]": "127.0.0.1",
		"[2001:DB8::1]":      "2001:db8::1",
	}
	for in, want := range hosts {
		if got, _, _, err := filter.NormalizeHost(in); err != nil || got != want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	paths := map[string]string{
		"":                 "/",
		"/":                "/",
		"a/b":              "/a/b",
		"/A/B":             "/a/b",
		"/a/./b":           "/a/b",
		"/a/../b":          "/b",
		"/../../b":         "/b",
		"/a/%2e%2e/b":      "/b",
		"/%41%7e":          "/a~",
		"/caf%C3%A9":       "/caf%c3%a9",
		"//a///b//":        "/a/b/",
		"/a/b/..":          "/a/",
		"/a%2Fb":           "/a%2fb",
		"/already/normal/": "/already/normal/",
	}
	for in, want := range paths {
		if got := filter.NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2E/x", "//a//b", "/A%41", "%", "/%zz", "/a/."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		n := filter.NormalizePath(p)
		if !strings.HasPrefix(n, "/") {
			t.Fatalf("%q -> %q does not start with /", p, n)
		}
		if again := filter.NormalizePath(n); again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q", p, n, again)
		}
	})
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"example.com", "EXAMPLE.com.", "bücher.example", "0x7f.1", "[::1]", "a..b", "xn--bcher-kva.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		n, ip, isIP, err := filter.NormalizeHost(h)
		if err != nil {
			return
		}
		if isIP != ip.IsValid() {
			t.Fatalf("%q: isIP %v with ip %v", h, isIP, ip)
		}
		if again, _, _, err := filter.NormalizeHost(n); err != nil || again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", h, n, again, err)
		}
	})
}

func TestDecideConcurrent(t *testing.T) {
	e := compile(t)
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 500; i++ {
				d := e.Decide(&filter.Request{Method: "GET", Host: "www.casino.example", Path: "/x", Time: time.Unix(0, 0)})
				if d.Action != filter.ActionBlock {
					t.Errorf("concurrent decision %v", d.Action)
					return
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}
