package reverse

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// compressTestWords is vocabulary for the generated bodies.
var compressTestWords = strings.Fields(`lorem ipsum dolor sit amet consectetur
adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna
aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi
aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate
velit esse cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non
proident sunt culpa qui officia deserunt mollit anim id est laborum`)

// compressTestJSON returns a deterministic JSON API response (a page of
// user records, JSON:API style) of about size bytes.
func compressTestJSON(size int) []byte {
	r := rand.New(rand.NewPCG(7, 11))
	statuses := []string{"active", "pending", "suspended", "deleted"}
	roles := []string{"admin", "editor", "viewer", "owner", "billing"}
	countries := []string{"US", "DE", "FR", "JP", "BR", "IN", "GB", "CA"}
	w := func() string { return compressTestWords[r.IntN(len(compressTestWords))] }
	var b bytes.Buffer
	b.WriteString(`{"data":[`)
	for i := 0; b.Len() < size-450; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"type":"user","attributes":{"username":"%s_%s%d",`+
			`"display_name":"%s %s","email":"%s.%s%d@example.com","status":"%s","role":"%s",`+
			`"country":"%s","created_at":"2024-%02d-%02dT%02d:%02d:%02d.000Z","last_login":null,`+
			`"verified":%t,"follower_count":%d,"bio":"%s %s %s %s."},`+
			`"links":{"self":"https://api.example.com/v1/users/%d"}}`,
			100000+i, w(), w(), r.IntN(100), w(), w(), w(), w(), r.IntN(1000),
			statuses[r.IntN(len(statuses))], roles[r.IntN(len(roles))], countries[r.IntN(len(countries))],
			1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60),
			r.IntN(2) == 0, r.IntN(5000), w(), w(), w(), w(), 100000+i)
	}
	b.WriteString(`],"meta":{"page":1,"per_page":100}}`)
	return b.Bytes()
}

// compressTestText returns deterministic prose of exactly size bytes.
func compressTestText(size int) []byte {
	r := rand.New(rand.NewPCG(3, 5))
	var b bytes.Buffer
	for b.Len() < size {
		b.WriteString(compressTestWords[r.IntN(len(compressTestWords))])
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:size]
}

// compressBenchWriter is a minimal http.ResponseWriter that counts and
// discards the body, so the benchmark measures the middleware alone.
type compressBenchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *compressBenchWriter) Header() http.Header         { return w.h }
func (w *compressBenchWriter) WriteHeader(code int)        { w.status = code }
func (w *compressBenchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *compressBenchWriter) Flush()                      {}

// compressBenchCPU returns the CPU time (user+system) this process has used,
// from /proc/self/stat; ok is false where that does not exist. On a shared
// machine it is a steadier measure than ns/op, which counts waiting for a
// core too.
func compressBenchCPU() (cpu time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * (time.Second / 100), true // USER_HZ is 100
}

// BenchmarkCompress measures one compressed response through Wrap per
// algorithm (default levels) for a 50 KB JSON body and a 1 KiB text body,
// written like httputil.ReverseProxy writes a backend body (32 KiB pieces,
// Content-Length known). "identity" is the middleware's cost when the
// client accepts no coding. Metrics: ratio is compressed/original size;
// cpu-ns/op is process CPU time per response (Linux only), which includes
// the GC.
func BenchmarkCompress(b *testing.B) {
	bodies := []struct {
		name, ctype string
		body        []byte
	}{
		{"json50k", "application/json", compressTestJSON(50 * 1024)},
		{"text1k", "text/plain; charset=utf-8", compressTestText(1024)},
	}
	c, err := NewCompressor(DefaultCompressConfig())
	if err != nil {
		b.Fatal(err)
	}
	for _, bd := range bodies {
		length := strconv.Itoa(len(bd.body))
		h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hdr := w.Header()
			hdr["Content-Type"] = []string{bd.ctype}
			hdr["Content-Length"] = []string{length}
			for p := bd.body; len(p) > 0; {
				n := min(len(p), 32<<10)
				w.Write(p[:n])
				p = p[n:]
			}
		}))
		for _, alg := range []string{codingGzip, codingZstd, codingBrotli, "identity"} {
			b.Run(bd.name+"/"+alg, func(b *testing.B) {
				req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
				req.Header.Set("Accept-Encoding", alg)
				w := &compressBenchWriter{h: make(http.Header)}
				b.SetBytes(int64(len(bd.body)))
				b.ReportAllocs()
				cpu0, cpuOK := compressBenchCPU()
				for b.Loop() {
					clear(w.h)
					w.n = 0
					h.ServeHTTP(w, req)
				}
				if cpu1, ok := compressBenchCPU(); ok && cpuOK {
					b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
				}
				if got := w.h.Get("Content-Encoding"); alg != "identity" && got != alg {
					b.Fatalf("Content-Encoding %q, want %q", got, alg)
				}
				b.ReportMetric(float64(w.n)/float64(len(bd.body)), "ratio")
			})
		}
	}
}

// BenchmarkNegotiateEncoding measures Accept-Encoding parsing for typical
// browser and tool headers.
func BenchmarkNegotiateEncoding(b *testing.B) {
	offers := []string{codingZstd, codingGzip, codingBrotli}
	for _, v := range []string{"gzip", "gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8, *;q=0.1"} {
		b.Run(v, func(b *testing.B) {
			values := []string{v}
			b.ReportAllocs()
			for b.Loop() {
				if negotiateEncoding(values, offers) < 0 {
					b.Fatal("no coding")
				}
			}
		})
	}
}
