package filter_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"waygate/filter"
	"waygate/filter/domainset"
	"waygate/filter/lists"
)

// counts is the part of a CategoryStats a test compares.
type counts struct {
	domains, urls, ips, networks, expressions, entries, malformed int
}

func countsOf(cs filter.CategoryStats) counts {
	return counts{cs.Domains, cs.URLs, cs.IPs, cs.Networks, cs.Expressions, cs.Entries, cs.Malformed}
}

// source is the part of a SourceStats a test compares.
type source struct {
	name, file         string // file: the base name of Path
	format             lists.Format
	entries, malformed int
	problemLines       []int
}

func sourcesOf(cs filter.CategoryStats) []source {
	var out []source
	for _, s := range cs.Sources {
		src := source{name: s.Source, format: s.Format, entries: s.Entries, malformed: s.Malformed}
		if s.Path != "" {
			src.file = filepath.Base(s.Path)
		}
		for _, p := range s.Problems {
			src.problemLines = append(src.problemLines, p.Line)
		}
		out = append(out, src)
	}
	return out
}

func TestCategoryStats(t *testing.T) {
	e := compile(t)
	got := e.CategoryStats()
	tests := []struct {
		name    string
		counts  counts
		sources []source
	}{
		{"gambling", counts{domains: 2, entries: 2},
			[]source{{name: "inline", format: lists.FormatDomains, entries: 2}}},
		{"adult", counts{domains: 3, entries: 3, malformed: 1},
			[]source{{name: "*", file: "domains", format: lists.FormatDomains, entries: 3, malformed: 1, problemLines: []int{5}}}},
		{"news", counts{urls: 2, entries: 2},
			[]source{{name: "*", file: "urls", format: lists.FormatURLs, entries: 2}}},
		{"internal", counts{ips: 1, networks: 1, entries: 2},
			[]source{{name: "nets-list", file: "domains", format: lists.FormatDomains, entries: 2}}},
		{"ads", counts{domains: 2, entries: 2},
			[]source{{name: "*", file: "ads.txt", format: lists.FormatDomains, entries: 2}}},
		{"social", counts{domains: 1, entries: 1},
			[]source{{name: "inline", format: lists.FormatDomains, entries: 1}}},
	}
	// The rule's own domains and URLs (rule-own-domains) are no category.
	if len(got) != len(tests) {
		t.Fatalf("%d categories, want %d: %+v", len(got), len(tests), got)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := got[i]
			if cs.Name != tt.name {
				t.Fatalf("category %d is %q, want %q (policy order)", i, cs.Name, tt.name)
			}
			if c := countsOf(cs); c != tt.counts {
				t.Errorf("counts %+v, want %+v", c, tt.counts)
			}
			srcs := sourcesOf(cs)
			for j := range tt.sources {
				// A list without a configured name is named by its path.
				if tt.sources[j].name == "*" && j < len(cs.Sources) {
					tt.sources[j].name = cs.Sources[j].Path
				}
			}
			if !slices.EqualFunc(srcs, tt.sources, func(a, b source) bool {
				return a.name == b.name && a.file == b.file && a.format == b.format && a.entries == b.entries &&
					a.malformed == b.malformed && slices.Equal(a.problemLines, b.problemLines)
			}) {
				t.Errorf("sources %+v, want %+v", srcs, tt.sources)
			}
		})
	}
}

// TestCategoryStatsDuplicates: a domain in two sources of a category
// counts once in the category and in each source; inline problems give the
// entry's position; every kind is counted.
func TestCategoryStatsDuplicates(t *testing.T) {
	dir := t.TempDir()
	list := writeList(t, dir, "mixed", "dup.example\nonly-file.example\nDUP.example.\n192.0.2.1\n192.0.2.1\n10.0.0.0/8\n")
	exprs := writeList(t, dir, "expressions", "(casino|poker)\n[bad\nlotto\n")
	urls := writeList(t, dir, "urls", "a.example/x\na.example/x\nb.example/y\n")
	p := &filter.Policy{
		Categories: []filter.Category{
			{
				Name:    "mixed",
				Domains: []string{"dup.example", "bad..example", "inline-only.example", "192.0.2.1"},
				URLs:    []string{"c.example/z", "", "d.example/"},
				Lists: []filter.List{
					{Path: list, Format: lists.FormatDomains},
					{Path: exprs, Format: lists.FormatExpressions, Source: "exprs"},
					{Path: urls, Format: lists.FormatURLs},
				},
			},
			{Name: "other", Domains: []string{"dup.example"}},
			{Name: "empty"},
		},
		Rules: []filter.Rule{{Name: "r", Categories: []string{"mixed"}, Action: filter.ActionBlock}},
	}
	e, err := filter.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := e.CategoryStats()
	if len(got) != 3 || got[0].Name != "mixed" || got[1].Name != "other" || got[2].Name != "empty" {
		t.Fatalf("categories %+v", got)
	}
	// dup, inline-only, only-file; 192.0.2.1 once; 10/8; 2 of 3
	// expressions; 2 inline URLs + 3 from the file (one twice).
	want := counts{domains: 3, ips: 1, networks: 1, expressions: 2, urls: 5, entries: 12, malformed: 2}
	if c := countsOf(got[0]); c != want {
		t.Errorf("mixed: %+v, want %+v", c, want)
	}
	wantSources := []source{
		{name: "inline", format: lists.FormatDomains, entries: 3, malformed: 1, problemLines: []int{2}},
		{name: "inline", format: lists.FormatURLs, entries: 2},
		{name: list, file: "mixed", format: lists.FormatDomains, entries: 6},
		{name: "exprs", file: "expressions", format: lists.FormatExpressions, entries: 2, malformed: 1, problemLines: []int{2}},
		{name: urls, file: "urls", format: lists.FormatURLs, entries: 3},
	}
	if srcs := sourcesOf(got[0]); !slices.EqualFunc(srcs, wantSources, func(a, b source) bool {
		return a.name == b.name && a.file == b.file && a.format == b.format && a.entries == b.entries &&
			a.malformed == b.malformed && slices.Equal(a.problemLines, b.problemLines)
	}) {
		t.Errorf("sources\n%+v\nwant\n%+v", srcs, wantSources)
	}
	if p := got[0].Sources[0].Problems; len(p) != 1 || p[0].Text != "bad..example" {
		t.Errorf("inline problem %+v", p)
	}
	// dup.example is in both categories: each counts it.
	if c := countsOf(got[1]); c != (counts{domains: 1, entries: 1}) {
		t.Errorf("other: %+v", c)
	}
	if c := countsOf(got[2]); c != (counts{}) || got[2].Sources != nil {
		t.Errorf("empty: %+v", got[2])
	}
	// The engine-wide totals agree.
	if st := e.Stats(); st.Domains != 3 || st.Malformed != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestCategoryStatsAgainstMap compares the distinct domain counts with a
// map, for random domains spread over categories and sources.
func TestCategoryStatsAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const cats = 12
	p := &filter.Policy{}
	want := make([]map[string]bool, cats)
	for c := range cats {
		fc := filter.Category{Name: fmt.Sprintf("c%d", c)}
		want[c] = map[string]bool{}
		for range rng.IntN(300) {
			d := fmt.Sprintf("d%d.example", rng.IntN(400))
			fc.Domains = append(fc.Domains, d)
			want[c][d] = true
		}
		p.Categories = append(p.Categories, fc)
	}
	e, err := filter.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	got := e.CategoryStats()
	for c := range cats {
		if got[c].Domains != len(want[c]) || got[c].Entries != len(want[c]) {
			t.Errorf("c%d: %d domains, %d entries, want %d", c, got[c].Domains, got[c].Entries, len(want[c]))
		}
		if len(p.Categories[c].Domains) > 0 && got[c].Sources[0].Entries != len(p.Categories[c].Domains) {
			t.Errorf("c%d: inline source gave %d, want every one of %d", c, got[c].Sources[0].Entries, len(p.Categories[c].Domains))
		}
	}
}

func TestCategoryStatsNilEngine(t *testing.T) {
	var e *filter.Engine
	if got := e.CategoryStats(); got != nil {
		t.Fatalf("%+v", got)
	}
}

// TestSetSizes checks the per-set domain counts with 2-byte and 4-byte
// set IDs.
func TestSetSizes(t *testing.T) {
	for _, n := range []int{1, 1000, 70000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := domainset.NewBuilder(0)
			for i := range n {
				d := fmt.Sprintf("d%d.example", i)
				b.Add(d, uint16(i/300), 1)
				b.Add(d, uint16(300+i%300), 2)
				b.Add(d, uint16(i/300), 3) // a duplicate changes nothing
			}
			s := b.Build()
			sizes := s.SetSizes()
			if len(sizes) != s.NumSets() {
				t.Fatalf("%d sizes for %d sets", len(sizes), s.NumSets())
			}
			total := 0
			for id, k := range sizes {
				total += k
				if k != 1 && len(s.Categories(uint32(id))) == 2 {
					// Every pair of categories names exactly one domain.
					t.Errorf("set %d (%v): %d domains", id, s.Categories(uint32(id)), k)
				}
			}
			if total != n || total != s.Len() {
				t.Errorf("sizes add up to %d, want %d", total, n)
			}
		})
	}
	var empty *domainset.Set
	if empty.SetSizes() != nil || domainset.NewBuilder(0).Build().SetSizes() != nil {
		t.Error("an empty set has sizes")
	}
}
