package domainset_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"waygate/filter/domainset"
)

type add struct {
	domain   string
	cat, src uint16
}

type want struct {
	entry string
	cats  []uint16
	src   uint16
}

func build(adds []add) *domainset.Set {
	b := domainset.NewBuilder(len(adds))
	for _, a := range adds {
		b.Add(a.domain, a.cat, a.src)
	}
	return b.Build()
}

func all(s *domainset.Set, host string) []want {
	var got []want
	s.Each(host, func(m domainset.Match) bool {
		got = append(got, want{m.Entry, s.Categories(m.Set), m.Source})
		return true
	})
	return got
}

func TestMatch(t *testing.T) {
	adds := []add{
		{"example.com", 1, 10},
		{"a.b.example.com", 2, 11},
		{"b.example.com", 3, 12},
		{"dup.org", 5, 20},
		{"dup.org", 4, 21},
		{"dup.org", 5, 22},
		{"other.org", 4, 23},
		{"other.org", 5, 24},
		{"single.org", 4, 25},
		{"com", 7, 30},
		{"x", 8, 31},
	}
	s := build(adds)
	if got := s.Len(); got != 8 {
		t.Fatalf("Len = %d, want 8", got)
	}
	tests := []struct {
		host string
		want []want
	}{
		{"example.com", []want{{"example.com", []uint16{1}, 10}, {"com", []uint16{7}, 30}}},
		{"www.example.com", []want{{"example.com", []uint16{1}, 10}, {"com", []uint16{7}, 30}}},
		{"z.a.b.example.com", []want{
			{"a.b.example.com", []uint16{2}, 11},
			{"b.example.com", []uint16{3}, 12},
			{"example.com", []uint16{1}, 10},
			{"com", []uint16{7}, 30},
		}},
		{"notexample.com", []want{{"com", []uint16{7}, 30}}},
		{"example.comx", nil},
		{"xexample.org", nil},
		{"com", []want{{"com", []uint16{7}, 30}}},
		{"org", nil},
		{"x", []want{{"x", []uint16{8}, 31}}},
		{"y.x", []want{{"x", []uint16{8}, 31}}},
		{"dup.org", []want{{"dup.org", []uint16{4, 5}, 20}}},
		{"w.other.org", []want{{"other.org", []uint16{4, 5}, 23}}},
		{"single.org", []want{{"single.org", []uint16{4}, 25}}},
		{"", nil},
		{".", nil},
		{"..com", []want{{"com", []uint16{7}, 30}}},
		{"example.com.", nil},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got := all(s, tt.host)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Each(%q) = %v, want %v", tt.host, got, tt.want)
			}
			m, ok := s.Longest(tt.host)
			if ok != (len(tt.want) > 0) {
				t.Fatalf("Longest(%q) ok = %v", tt.host, ok)
			}
			if ok {
				w := tt.want[0]
				if m.Entry != w.entry || m.Source != w.src || !slices.Equal(s.Categories(m.Set), w.cats) {
					t.Fatalf("Longest(%q) = %+v, want %v", tt.host, m, w)
				}
			}
		})
	}
	// Identical category sets share one ID; different sets do not.
	d, _ := s.Longest("dup.org")
	o, _ := s.Longest("other.org")
	g, _ := s.Longest("single.org")
	if d.Set != o.Set || d.Set == g.Set {
		t.Fatalf("set IDs: dup %d other %d single %d", d.Set, o.Set, g.Set)
	}
}

func TestEachStop(t *testing.T) {
	s := build([]add{{"a.b.c", 1, 1}, {"b.c", 2, 2}, {"c", 3, 3}})
	var got []string
	s.Each("x.a.b.c", func(m domainset.Match) bool {
		got = append(got, m.Entry)
		return len(got) < 2
	})
	if !slices.Equal(got, []string{"a.b.c", "b.c"}) {
		t.Fatalf("got %v", got)
	}
}

func TestAddRejects(t *testing.T) {
	b := domainset.NewBuilder(0)
	long := strings.Repeat("a", 249) + ".com" // 253 bytes
	tests := []struct {
		domain string
		ok     bool
	}{
		{"", false},
		{long, true},
		{"a" + long, false},
		{"ok.com", true},
	}
	for _, tt := range tests {
		if got := b.Add(tt.domain, 1, 1); got != tt.ok {
			t.Errorf("Add(len %d) = %v, want %v", len(tt.domain), got, tt.ok)
		}
	}
	s := b.Build()
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
	if m, ok := s.Longest("www." + long); !ok || m.Entry != long {
		t.Fatalf("Longest of 253-byte entry: %v %v", m, ok)
	}
}

func TestEmptyAndNil(t *testing.T) {
	for name, s := range map[string]*domainset.Set{
		"empty": domainset.NewBuilder(10).Build(),
		"nil":   nil,
	} {
		t.Run(name, func(t *testing.T) {
			if s.Len() != 0 {
				t.Fatalf("Len = %d", s.Len())
			}
			if _, ok := s.Longest("example.com"); ok {
				t.Fatal("Longest matched")
			}
			s.Each("a.example.com", func(domainset.Match) bool {
				t.Fatal("Each called fn")
				return true
			})
			if c := s.Categories(0); c != nil {
				t.Fatalf("Categories(0) = %v", c)
			}
			_ = s.Bytes()
		})
	}
}

func TestLongHosts(t *testing.T) {
	s := build([]add{{"example.com", 1, 1}, {"com", 2, 2}})
	tests := []struct {
		name string
		host string
		want []string
	}{
		{"10k-byte label", strings.Repeat("a", 10000) + ".example.com", []string{"example.com", "com"}},
		{"5000 labels", strings.Repeat("a.", 5000) + "example.com", []string{"example.com", "com"}},
		{"long miss", strings.Repeat("ab.", 3000) + "org", nil},
		{"tld", "com", []string{"com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			s.Each(tt.host, func(m domainset.Match) bool {
				got = append(got, m.Entry)
				return true
			})
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestManySets exercises more than 65536 distinct category sets (4-byte set
// IDs).
func TestManySets(t *testing.T) {
	b := domainset.NewBuilder(0)
	const n = 70000
	for i := range n {
		d := fmt.Sprintf("d%d.example", i)
		b.Add(d, uint16(i/300), uint16(i))
		b.Add(d, uint16(300+i%300), 9)
	}
	s := b.Build()
	if s.Len() != n {
		t.Fatalf("Len = %d", s.Len())
	}
	for i := 0; i < n; i += 997 {
		m, ok := s.Longest(fmt.Sprintf("w.d%d.example", i))
		want := []uint16{uint16(i / 300), uint16(300 + i%300)}
		if !ok || m.Source != uint16(i) || !slices.Equal(s.Categories(m.Set), want) {
			t.Fatalf("d%d: %+v %v cats %v", i, m, ok, s.Categories(m.Set))
		}
	}
}

type refEntry struct {
	cats []uint16
	src  uint16
}

func refEach(ref map[string]*refEntry, host string) []want {
	var out []want
	for i := 0; i < len(host); {
		d := host[i:]
		if e, ok := ref[d]; ok {
			out = append(out, want{d, e.cats, e.src})
		}
		j := strings.IndexByte(d, '.')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return out
}

func TestRandomAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	labels := []string{"a", "b", "c", "ab", "xyz", "com", "www"}
	name := func(max int) string {
		k := 1 + rng.IntN(max)
		parts := make([]string, k)
		for i := range parts {
			parts[i] = labels[rng.IntN(len(labels))]
		}
		return strings.Join(parts, ".")
	}
	for round := range 5 {
		ref := map[string]*refEntry{}
		b := domainset.NewBuilder(100)
		for range 300 + round*700 {
			d := name(4)
			c, src := uint16(rng.IntN(12)), uint16(rng.IntN(1000))
			b.Add(d, c, src)
			e := ref[d]
			if e == nil {
				e = &refEntry{src: src}
				ref[d] = e
			}
			if i, found := slices.BinarySearch(e.cats, c); !found {
				e.cats = slices.Insert(e.cats, i, c)
			}
		}
		s := b.Build()
		if s.Len() != len(ref) {
			t.Fatalf("round %d: Len = %d, want %d", round, s.Len(), len(ref))
		}
		for range 3000 {
			h := name(6)
			w := refEach(ref, h)
			got := all(s, h)
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Fatalf("round %d: Each(%q) = %v, want %v", round, h, got, w)
			}
			m, ok := s.Longest(h)
			if ok != (len(w) > 0) || ok && m.Entry != w[0].entry {
				t.Fatalf("round %d: Longest(%q) = %v %v, want %v", round, h, m, ok, w)
			}
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	s := build([]add{{"example.com", 1, 1}, {"b.example.com", 2, 2}, {"com", 3, 3}})
	hosts := []string{"a.b.example.com", "example.com", "miss.org", strings.Repeat("x.", 200) + "example.com"}
	n := 0
	fn := func(m domainset.Match) bool { n += len(m.Entry); return true }
	for _, h := range hosts {
		if a := testing.AllocsPerRun(200, func() { s.Longest(h) }); a != 0 {
			t.Errorf("Longest(%q): %v allocs", h, a)
		}
		if a := testing.AllocsPerRun(200, func() { s.Each(h, fn) }); a != 0 {
			t.Errorf("Each(%q): %v allocs", h, a)
		}
	}
}

func TestCategoriesOutOfRange(t *testing.T) {
	s := build([]add{{"a.com", 1, 1}})
	if c := s.Categories(1); c != nil {
		t.Fatalf("Categories(1) = %v", c)
	}
	if c := s.Categories(^uint32(0)); c != nil {
		t.Fatalf("Categories(max) = %v", c)
	}
}

func TestConcurrent(t *testing.T) {
	b := domainset.NewBuilder(0)
	for i := range 1000 {
		b.Add(fmt.Sprintf("d%d.example.com", i), uint16(i%7), uint16(i))
	}
	b.Add("example.com", 9, 9)
	s := b.Build()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				h := fmt.Sprintf("w.d%d.example.com", (i*7+g)%1200)
				n := 0
				s.Each(h, func(domainset.Match) bool { n++; return true })
				want := 1
				if (i*7+g)%1200 < 1000 {
					want = 2
				}
				if n != want {
					t.Errorf("Each(%q): %d matches, want %d", h, n, want)
					return
				}
				if _, ok := s.Longest(h); !ok {
					t.Errorf("Longest(%q): no match", h)
					return
				}
			}
		})
	}
	wg.Wait()
}
