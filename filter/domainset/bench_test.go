package domainset_test

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"waygate/filter/domainset"
)

// corpus is a list of domains stored in one string.
type corpus struct {
	all  string
	ends []uint32
}

func (c *corpus) n() int { return len(c.ends) }

func (c *corpus) at(i int) string {
	start := uint32(0)
	if i > 0 {
		start = c.ends[i-1]
	}
	return c.all[start:c.ends[i]]
}

var benchTLDs = []string{"com", "net", "org", "de", "fr", "io", "info", "co.uk", "nl", "ru", "pl", "it"}

func appendLabel(buf []byte, rng *rand.Rand) []byte {
	n := 5 + rng.IntN(11)
	for range n {
		buf = append(buf, byte('a'+rng.IntN(26)))
	}
	return buf
}

// genDomains deterministically generates n distinct domains: 1–3 random
// labels of 5–15 letters plus a TLD, with about 20% being subdomains (1–2
// extra labels) of an earlier generated registrable domain.
func genDomains(n int, seed uint64) *corpus {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	buf := make([]byte, 0, n*26)
	ends := make([]uint32, 0, n)
	seen := make(map[uint64]struct{}, n)
	var parents [][2]uint32
	for len(ends) < n {
		start := len(buf)
		parent := false
		if len(parents) > 0 && rng.IntN(5) == 0 {
			for k := 1 + rng.IntN(2); k > 0; k-- {
				buf = appendLabel(buf, rng)
				buf = append(buf, '.')
			}
			p := parents[rng.IntN(len(parents))]
			buf = append(buf, buf[p[0]:p[1]]...)
		} else {
			k := 1 + rng.IntN(3)
			parent = k == 1
			for ; k > 0; k-- {
				buf = appendLabel(buf, rng)
				buf = append(buf, '.')
			}
			buf = append(buf, benchTLDs[rng.IntN(len(benchTLDs))]...)
		}
		h := uint64(14695981039346656037) // FNV-1a, deterministic dedup
		for _, c := range buf[start:] {
			h = (h ^ uint64(c)) * 1099511628211
		}
		if _, dup := seen[h]; dup {
			buf = buf[:start]
			continue
		}
		seen[h] = struct{}{}
		if parent {
			parents = append(parents, [2]uint32{uint32(start), uint32(len(buf))})
		}
		ends = append(ends, uint32(len(buf)))
	}
	return &corpus{all: string(buf), ends: ends}
}

const benchN = 5_000_000

var (
	corpusOnce sync.Once
	corpus5M   *corpus
	setOnce    sync.Once
	set5M      *domainset.Set
	queries    []string
)

func getCorpus() *corpus {
	corpusOnce.Do(func() { corpus5M = genDomains(benchN, 42) })
	return corpus5M
}

func category(i int) uint16 { return uint16(i*7919) % 69 }

func buildCorpus(c *corpus) *domainset.Set {
	b := domainset.NewBuilder(c.n())
	for i := range c.n() {
		b.Add(c.at(i), category(i), uint16(i%5))
	}
	return b.Build()
}

// getSet returns the 5M set and 1<<20 queries: 30% exact entries, 30%
// subdomains of entries, 40% misses (random names under common TLDs).
func getSet() (*domainset.Set, []string) {
	setOnce.Do(func() {
		c := getCorpus()
		set5M = buildCorpus(c)
		// The queries are slices of one string, so that reading them is
		// sequential: a real host would be in cache when it is looked up.
		rng := rand.New(rand.NewPCG(7, 7))
		var buf []byte
		ends := make([]int, 1<<20)
		for i := range ends {
			e := c.at(rng.IntN(c.n()))
			switch r := rng.IntN(10); {
			case r < 3:
				buf = append(buf, e...)
			case r < 6:
				buf = append(buf, "www."...)
				if r == 5 {
					buf = append(buf, "img.cdn."...)
				}
				buf = append(buf, e...)
			default:
				buf = append(buf, "www."...)
				buf = appendLabel(buf, rng)
				buf = append(buf, '.')
				buf = append(buf, benchTLDs[rng.IntN(len(benchTLDs))]...)
			}
			ends[i] = len(buf)
		}
		all := string(buf)
		queries = make([]string, len(ends))
		start := 0
		for i, end := range ends {
			queries[i] = all[start:end]
			start = end
		}
	})
	return set5M, queries
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// measureBuild runs build b.N times, timing only the builds, and returns
// the last set and the heap it holds per domain.
func measureBuild(b *testing.B, build func() *domainset.Set) (*domainset.Set, float64) {
	var set *domainset.Set
	var perDomain float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		set = nil
		before := heapInuse()
		b.StartTimer()
		set = build()
		b.StopTimer()
		perDomain = float64(int64(heapInuse())-int64(before)) / float64(set.Len())
		b.StartTimer()
	}
	b.StopTimer()
	return set, perDomain
}

func BenchmarkBuild5M(b *testing.B) {
	c := getCorpus()
	set, perDomain := measureBuild(b, func() *domainset.Set { return buildCorpus(c) })
	if set.Len() != c.n() {
		b.Fatalf("Len = %d, want %d", set.Len(), c.n())
	}
	b.ReportMetric(perDomain, "heap-B/domain")
	b.ReportMetric(float64(set.Bytes())/float64(set.Len()), "B/domain")
	b.ReportMetric(float64(c.n())*float64(b.N)/b.Elapsed().Seconds(), "domains/s")
}

var sink int

// reportLatency times 1000 batches of 100 lookups and reports the 50th and
// 99th percentile of the per-lookup average of a batch.
func reportLatency(b *testing.B, qs []string, lookup func(string) int) {
	const batches, per = 1000, 100
	lat := make([]float64, batches)
	rng := rand.New(rand.NewPCG(3, 3))
	s := 0
	for i := range lat {
		base := rng.IntN(len(qs) - per)
		t0 := time.Now()
		for _, q := range qs[base : base+per] {
			s += lookup(q)
		}
		lat[i] = float64(time.Since(t0).Nanoseconds()) / per
	}
	sink += s
	slices.Sort(lat)
	b.ReportMetric(lat[batches/2], "p50-ns")
	b.ReportMetric(lat[batches*99/100], "p99-ns")
}

func BenchmarkLongest(b *testing.B) {
	set, qs := getSet()
	longest := func(q string) int {
		m, ok := set.Longest(q)
		if ok {
			return len(m.Entry)
		}
		return 0
	}
	b.ReportAllocs()
	b.ResetTimer()
	s := 0
	for i := 0; i < b.N; i++ {
		s += longest(qs[i&(len(qs)-1)])
	}
	b.StopTimer()
	sink += s
	reportLatency(b, qs, longest)
}

func BenchmarkEach(b *testing.B) {
	set, qs := getSet()
	n := 0
	fn := func(m domainset.Match) bool { n += len(m.Entry) + int(m.Set); return true }
	each := func(q string) int { set.Each(q, fn); return 0 }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		each(qs[i&(len(qs)-1)])
	}
	b.StopTimer()
	sink += n
	reportLatency(b, qs, each)
}
