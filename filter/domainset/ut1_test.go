package domainset_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"waygate/filter/domainset"
)

const ut1Dir = "../../../shared/data/ut1"

// ut1Corpus reads every <category>/domains file under ut1Dir: one domain a
// line, blank and '#' lines skipped, lowercased, a leading '.' stripped. The
// category of a line is the index of its folder in sorted order.
func ut1Corpus(tb testing.TB) (*corpus, []uint16) {
	files, _ := filepath.Glob(filepath.Join(ut1Dir, "*", "domains"))
	if len(files) == 0 {
		tb.Skipf("no UT1 lists under %s", ut1Dir)
	}
	slices.Sort(files)
	var buf []byte
	var ends []uint32
	var cats []uint16
	for ci, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(bytes.ToLower(data)))
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			line = bytes.TrimLeft(line, ".")
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			buf = append(buf, line...)
			ends = append(ends, uint32(len(buf)))
			cats = append(cats, uint16(ci))
		}
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
	}
	return &corpus{all: string(buf), ends: ends}, cats
}

func buildUT1(c *corpus, cats []uint16) *domainset.Set {
	b := domainset.NewBuilder(c.n())
	for i := range c.n() {
		b.Add(c.at(i), cats[i], cats[i])
	}
	return b.Build()
}

// TestUT1 checks every UT1 line against the built set.
func TestUT1(t *testing.T) {
	c, cats := ut1Corpus(t)
	s := buildUT1(c, cats)
	distinct := map[string]bool{}
	for i := range c.n() {
		d := c.at(i)
		if len(d) > domainset.MaxDomainLen {
			continue
		}
		distinct[d] = true
		m, ok := s.Longest(d)
		if !ok || m.Entry != d {
			t.Fatalf("Longest(%q) = %v %v", d, m, ok)
		}
		if _, found := slices.BinarySearch(s.Categories(m.Set), cats[i]); !found {
			t.Fatalf("%q: categories %v lack %d", d, s.Categories(m.Set), cats[i])
		}
	}
	if s.Len() != len(distinct) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(distinct))
	}
	t.Logf("UT1: %d lines, %d distinct domains, %d bytes", c.n(), s.Len(), s.Bytes())
}

func BenchmarkUT1(b *testing.B) {
	c, cats := ut1Corpus(b)
	set, perDomain := measureBuild(b, func() *domainset.Set { return buildUT1(c, cats) })
	b.ReportMetric(float64(c.n()), "lines")
	b.ReportMetric(float64(set.Len()), "domains")
	b.ReportMetric(perDomain, "heap-B/domain")
	b.ReportMetric(float64(set.Bytes())/float64(set.Len()), "B/domain")
}
