package filter_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"waygate/filter"
	"waygate/filter/lists"
)

// ut1Dir is the UT1 snapshot beside the checkout; benchmarks that need it
// skip where it is absent.
const ut1Dir = "../../shared/data/ut1"

func ut1Policy(tb testing.TB) *filter.Policy {
	tb.Helper()
	cats, err := lists.ReadSquidGuardDir(ut1Dir)
	if err != nil {
		tb.Skipf("UT1 data not available: %v", err)
	}
	p := &filter.Policy{Version: "ut1"}
	var names []string
	for _, c := range cats {
		fc := filter.Category{Name: c.Name}
		if c.Domains != "" {
			fc.Lists = append(fc.Lists, filter.List{Path: c.Domains, Format: lists.FormatDomains})
		}
		if c.URLs != "" {
			fc.Lists = append(fc.Lists, filter.List{Path: c.URLs, Format: lists.FormatURLs})
		}
		p.Categories = append(p.Categories, fc)
		names = append(names, c.Name)
	}
	// A realistic rule set: a few blocked categories, a warned one, a
	// scheduled one, a group rule; most requests fall through to allow.
	p.Groups = []filter.Group{{Name: "staff", Users: []string{"alice"}}}
	p.Rules = []filter.Rule{
		{Name: "security", Categories: pick(names, "malware", "phishing", "cryptojacking", "ddos", "stalkerware"), Action: filter.ActionBlock},
		{Name: "adult", Categories: pick(names, "adult", "mixed_adult", "lingerie", "dating"), Action: filter.ActionBlock},
		{Name: "gambling", Categories: pick(names, "gambling"), Action: filter.ActionWarn},
		{Name: "social-hours", Categories: pick(names, "social_networks"), Action: filter.ActionBlock,
			Schedules: []filter.Schedule{{Days: []time.Weekday{1, 2, 3, 4, 5}, From: 540, To: 1020}}},
		{Name: "staff-games", Groups: []string{"staff"}, Categories: pick(names, "games"), Action: filter.ActionAllow},
		{Name: "games", Categories: pick(names, "games"), Action: filter.ActionMonitor},
	}
	return p
}

func pick(have []string, want ...string) []string {
	var out []string
	for _, w := range want {
		if slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// BenchmarkCompileUT1 loads all of UT1 (every category's domains and urls)
// into an engine. Target: at most 2 s.
func BenchmarkCompileUT1(b *testing.B) {
	p := ut1Policy(b)
	var e *filter.Engine
	for b.Loop() {
		var err error
		if e, err = filter.Compile(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(e.Stats().Domains), "domains")
	b.ReportMetric(float64(e.Stats().Entries), "entries")
}

// sampleHosts returns request hosts: list domains, subdomains of them, and
// names in no list.
func sampleHosts(tb testing.TB, n int) []string {
	f, err := os.Open(filepath.Join(ut1Dir, "gambling", "domains"))
	if err != nil {
		tb.Skipf("UT1 data not available: %v", err)
	}
	defer f.Close()
	var listed []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			listed = append(listed, l)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	hosts := make([]string, 0, n)
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			hosts = append(hosts, listed[r.IntN(len(listed))])
		case 1:
			hosts = append(hosts, "www.cdn."+listed[r.IntN(len(listed))])
		default:
			hosts = append(hosts, fmt.Sprintf("host%d.example-%d.com", r.IntN(1e6), r.IntN(1e3)))
		}
	}
	return hosts
}

// BenchmarkDecideUT1 decides requests against the whole UT1 policy.
// Targets: no allocation; p99 at most 1 µs (reported as p99-ns, measured
// over batches so the clock's own cost is spread).
func BenchmarkDecideUT1(b *testing.B) {
	e, err := filter.Compile(ut1Policy(b))
	if err != nil {
		b.Fatal(err)
	}
	hosts := sampleHosts(b, 4096)
	reqs := make([]filter.Request, len(hosts))
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for i, h := range hosts {
		reqs[i] = filter.Request{Method: "GET", Host: h, Path: "/index.html", Time: at, User: "bob"}
	}
	const batch = 64
	var samples []float64
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%batch == 0 {
			start := time.Now()
			for j := 0; j < batch; j++ {
				e.Decide(&reqs[(i+j)%len(reqs)])
			}
			samples = append(samples, float64(time.Since(start).Nanoseconds())/batch)
		}
		e.Decide(&reqs[i%len(reqs)])
		i++
	}
	if len(samples) > 10 {
		slices.Sort(samples)
		b.ReportMetric(samples[len(samples)*99/100], "p99-ns")
	}
}

// BenchmarkCompile5M loads UT1 plus generated domains, 5 million in all,
// and reports the time and the memory held per domain. Targets: at most
// 10 s and 50 bytes per domain. Run with -benchtime=1x.
func BenchmarkCompile5M(b *testing.B) {
	p := ut1Policy(b)
	const total = 5_000_000
	base, err := filter.Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	extra := total - base.Stats().Domains
	path := filepath.Join(b.TempDir(), "generated")
	writeGenerated(b, path, extra)
	p.Categories = append(p.Categories, filter.Category{Name: "generated", Lists: []filter.List{{Path: path, Format: lists.FormatDomains}}})
	base = nil

	for b.Loop() {
		before := memNow()
		start := time.Now()
		e, err := filter.Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(start)
		after := memNow()
		n := e.Stats().Domains
		b.ReportMetric(float64(n), "domains")
		b.ReportMetric(elapsed.Seconds(), "load-s")
		b.ReportMetric(float64(after.heap-before.heap)/float64(n), "heap-B/domain")
		b.ReportMetric(float64(after.rss-before.rss)/float64(n), "rss-B/domain")
		runtime.KeepAlive(e)
	}
}

type mem struct{ heap, rss int64 }

// memNow returns live heap and resident set size after a full collection
// with freed memory returned to the system.
func memNow() mem {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := mem{heap: int64(ms.HeapAlloc)}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.rss = kb << 10
			}
		}
	}
	return m
}

// writeGenerated writes n distinct realistic domains, deterministically.
func writeGenerated(tb testing.TB, path string, n int) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(7, 7))
	tlds := []string{"com", "net", "org", "de", "fr", "io", "co.uk", "info"}
	label := func() string {
		b := make([]byte, 5+r.IntN(11))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	for i := 0; i < n; i++ {
		// The counter keeps names distinct; one in five is a subdomain.
		name := label() + strconv.Itoa(i) + "." + tlds[r.IntN(len(tlds))]
		if i%5 == 0 {
			name = label() + "." + name
		}
		w.WriteString(name)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
}
