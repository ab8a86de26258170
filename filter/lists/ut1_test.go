package lists_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"waygate/filter/lists"
)

// ut1Dir is the UT1 snapshot shared by the test machines; it is not part of
// the repository.
const ut1Dir = "../../../shared/data/ut1"

func ut1Categories(tb testing.TB) []lists.Category {
	tb.Helper()
	if _, err := os.Stat(ut1Dir); err != nil {
		tb.Skipf("UT1 data not available: %v", err)
	}
	cats, err := lists.ReadSquidGuardDir(ut1Dir)
	if err != nil {
		tb.Fatal(err)
	}
	return cats
}

func TestUT1Categories(t *testing.T) {
	cats := ut1Categories(t)
	if len(cats) != 69 {
		t.Errorf("%d categories, want 69", len(cats))
	}
	byName := map[string]lists.Category{}
	for _, c := range cats {
		byName[c.Name] = c
	}
	adult, ok := byName["adult"]
	if !ok || adult.Domains != "" || adult.URLs == "" || len(adult.Usage) == 0 || adult.Usage[0] != "black" {
		t.Errorf("adult = %+v", adult)
	}
	if c := byName["blog"]; len(c.Usage) != 1 || c.Usage[0] != "black" { // its usage file has a comment
		t.Errorf("blog usage = %q", c.Usage)
	}
}

func TestUT1ParseAll(t *testing.T) {
	cats := ut1Categories(t)
	type total struct {
		files int
		st    lists.Stats
		kinds map[lists.Kind]int
	}
	totals := map[lists.Format]*total{}
	start := time.Now()
	for _, c := range cats {
		for _, fl := range []struct {
			path string
			f    lists.Format
		}{{c.Domains, lists.FormatDomains}, {c.URLs, lists.FormatURLs}, {c.Expressions, lists.FormatExpressions}} {
			if fl.path == "" {
				continue
			}
			tot := totals[fl.f]
			if tot == nil {
				tot = &total{kinds: map[lists.Kind]int{}}
				totals[fl.f] = tot
			}
			st, err := lists.ParseFile(fl.path, fl.f, func(e lists.Entry) {
				if e.Value == "" {
					t.Errorf("%s:%d: empty value", fl.path, e.Line)
				}
				tot.kinds[e.Kind]++
			})
			if err != nil {
				t.Fatal(err)
			}
			tot.files++
			tot.st.Lines += st.Lines
			tot.st.Entries += st.Entries
			tot.st.Malformed += st.Malformed
			tot.st.Unsupported += st.Unsupported
			for _, p := range st.Problems {
				if len(tot.st.Problems) < 10 {
					tot.st.Problems = append(tot.st.Problems, p)
				}
			}
		}
	}
	elapsed := time.Since(start)
	for _, f := range []lists.Format{lists.FormatDomains, lists.FormatURLs, lists.FormatExpressions} {
		tot := totals[f]
		if tot == nil {
			t.Fatalf("no %v files", f)
		}
		t.Logf("%-11v files=%d lines=%d entries=%d malformed=%d unsupported=%d kinds=%v",
			f, tot.files, tot.st.Lines, tot.st.Entries, tot.st.Malformed, tot.st.Unsupported, tot.kinds)
		for _, p := range tot.st.Problems {
			t.Logf("  %v", p)
		}
	}
	t.Logf("parsed all of UT1 in %v (with -race if enabled)", elapsed)

	d, u := totals[lists.FormatDomains], totals[lists.FormatURLs]
	if d.st.Entries < 600000 {
		t.Errorf("domains entries = %d, want > 600000", d.st.Entries)
	}
	if d.st.Malformed > d.st.Lines/1000 {
		t.Errorf("domains malformed = %d of %d lines", d.st.Malformed, d.st.Lines)
	}
	if u.st.Entries < 40000 || u.st.Malformed > u.st.Lines/1000 {
		t.Errorf("urls: %d entries, %d malformed of %d lines", u.st.Entries, u.st.Malformed, u.st.Lines)
	}
	if d.kinds[lists.KindIP] == 0 || d.kinds[lists.KindDomain] == 0 {
		t.Errorf("domains kinds = %v", d.kinds)
	}
}

// loadUT1 reads every file of the given format into memory, so that the
// benchmarks measure parsing rather than the disk.
func loadUT1(b *testing.B, f lists.Format) (files [][]byte, lines int) {
	for _, c := range ut1Categories(b) {
		path := c.Domains
		if f == lists.FormatURLs {
			path = c.URLs
		}
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, data)
		lines += bytes.Count(data, []byte{'\n'})
	}
	return files, lines
}

func benchmarkUT1(b *testing.B, formats ...lists.Format) {
	var files [][]byte
	var fileFormats []lists.Format
	lines, size := 0, 0
	for _, f := range formats {
		fs, n := loadUT1(b, f)
		for _, data := range fs {
			files = append(files, data)
			fileFormats = append(fileFormats, f)
			size += len(data)
		}
		lines += n
	}
	var sink int
	emit := func(e lists.Entry) { sink += len(e.Value) }
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i, data := range files {
			if _, err := lists.Parse(bytes.NewReader(data), "ut1", fileFormats[i], emit); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/all")
	_ = sink
}

// BenchmarkParseUT1Domains parses every UT1 domains file (from memory).
func BenchmarkParseUT1Domains(b *testing.B) { benchmarkUT1(b, lists.FormatDomains) }

// BenchmarkParseUT1All parses every UT1 domains and urls file (from memory).
func BenchmarkParseUT1All(b *testing.B) { benchmarkUT1(b, lists.FormatDomains, lists.FormatURLs) }
