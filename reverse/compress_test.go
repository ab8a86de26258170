package reverse

import (
	"bufio"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// compressTestCodings are the codings every round-trip test covers.
var compressTestCodings = []string{codingGzip, codingBrotli, codingZstd}

// compressTestTimeout bounds every wait in these tests.
const compressTestTimeout = 10 * time.Second

// newCompressTestCompressor builds a Compressor from the default config,
// changed by edit if not nil.
func newCompressTestCompressor(t testing.TB, edit func(*CompressConfig)) *Compressor {
	t.Helper()
	cfg := DefaultCompressConfig()
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewCompressor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// compressTestDecode decodes body per Content-Encoding (stdlib gzip, so the
// encoder is checked against an independent decoder).
func compressTestDecode(t testing.TB, coding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "":
		return body
	case codingGzip:
		zr, err := stdgzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip header: %v", err)
		}
		r = zr
	case codingBrotli:
		r = brotli.NewReader(bytes.NewReader(body))
	case codingZstd:
		zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unexpected Content-Encoding %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", coding, err)
	}
	return out
}

// compressTestReader returns a streaming decoder for a response body.
func compressTestReader(t testing.TB, coding string, body io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case codingGzip:
		zr, err := stdgzip.NewReader(body)
		if err != nil {
			t.Fatalf("gzip header: %v", err)
		}
		return zr
	case codingBrotli:
		return brotli.NewReader(body)
	case codingZstd:
		zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	t.Fatalf("unexpected Content-Encoding %q", coding)
	return nil
}

// compressTestRecord serves req through c.Wrap(h) with a ResponseRecorder.
func compressTestRecord(c *Compressor, h http.HandlerFunc, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	c.Wrap(h).ServeHTTP(rec, req)
	return rec
}

// compressTestRequest returns a GET (or method) request with Accept-Encoding
// set unless accept is "-".
func compressTestRequest(method, accept string) *http.Request {
	req := httptest.NewRequest(method, "http://gw.test/x", nil)
	if accept != "-" {
		req.Header.Set("Accept-Encoding", accept)
	}
	return req
}

// compressTestWrite writes body in pieces of size n (all at once if n <= 0).
func compressTestWrite(w io.Writer, body []byte, n int) {
	if n <= 0 {
		n = len(body)
	}
	for len(body) > 0 {
		k := min(n, len(body))
		w.Write(body[:k])
		body = body[k:]
	}
}

// compressTestCheckLength checks the Content-Length of a compressed
// response: the compressed length when the whole output fitted in the
// output buffer, none when it did not.
func compressTestCheckLength(t testing.TB, res *http.Response, n int) {
	t.Helper()
	cl := res.Header.Get("Content-Length")
	switch {
	case n < compressOutputSize-1024 && cl != strconv.Itoa(n):
		t.Errorf("Content-Length %q, want the compressed length %d", cl, n)
	case n > compressOutputSize && cl != "":
		t.Errorf("Content-Length %q on a %d-byte body sent in parts", cl, n)
	}
}

// compressTestClient is a client that never decompresses by itself.
func compressTestClient(ts *httptest.Server) *http.Client {
	c := ts.Client()
	c.Timeout = compressTestTimeout
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr.DisableCompression = true
	}
	return c
}

func TestNewCompressorValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*CompressConfig)
		want string // substring of the error; "" = valid
	}{
		{"default", nil, ""},
		{"zero value", func(c *CompressConfig) { *c = CompressConfig{} }, ""},
		{"case and spaces", func(c *CompressConfig) { c.Algorithms = []string{" GZIP ", "Br"} }, ""},
		{"unknown algorithm", func(c *CompressConfig) { c.Algorithms = []string{"gzip", "deflate"} }, `"deflate"`},
		{"x-gzip is not a config name", func(c *CompressConfig) { c.Algorithms = []string{"x-gzip"} }, `"x-gzip"`},
		{"duplicate", func(c *CompressConfig) { c.Algorithms = []string{"gzip", "zstd", "GZIP"} }, `"GZIP" listed twice`},
		{"level unknown name", func(c *CompressConfig) { c.Levels = map[string]int{"lz4": 1} }, `"lz4"`},
		{"gzip level 0", func(c *CompressConfig) { c.Levels = map[string]int{"gzip": 0} }, "gzip level 0"},
		{"gzip level 10", func(c *CompressConfig) { c.Levels = map[string]int{"gzip": 10} }, "gzip level 10"},
		{"br level 12", func(c *CompressConfig) { c.Levels = map[string]int{"br": 12} }, "br level 12"},
		{"br level -1", func(c *CompressConfig) { c.Levels = map[string]int{"br": -1} }, "br level -1"},
		{"zstd level 5", func(c *CompressConfig) { c.Levels = map[string]int{"zstd": 5} }, "zstd level 5"},
		{"zstd level 0", func(c *CompressConfig) { c.Levels = map[string]int{"zstd": 0} }, "zstd level 0"},
		{"good levels", func(c *CompressConfig) { c.Levels = map[string]int{"gzip": 9, "br": 0, "zstd": 4} }, ""},
		{"level for unused algorithm", func(c *CompressConfig) {
			c.Algorithms = []string{"gzip"}
			c.Levels = map[string]int{"br": 5}
		}, ""},
		{"negative MinSize", func(c *CompressConfig) { c.MinSize = -1 }, "MinSize"},
		{"type without slash", func(c *CompressConfig) { c.ContentTypes = []string{"json"} }, `"json"`},
		{"type with params", func(c *CompressConfig) { c.ContentTypes = []string{"text/html; charset=utf-8"} }, `"text/html; charset=utf-8"`},
		{"type wildcard type only", func(c *CompressConfig) { c.ContentTypes = []string{"*/json"} }, `"*/json"`},
		{"type partial wildcard", func(c *CompressConfig) { c.ContentTypes = []string{"text/ht*"} }, `"text/ht*"`},
		{"type empty suffix", func(c *CompressConfig) { c.ContentTypes = []string{"application/*+"} }, `"application/*+"`},
		{"type empty", func(c *CompressConfig) { c.ContentTypes = []string{""} }, `""`},
		{"type wildcard in type", func(c *CompressConfig) { c.ContentTypes = []string{"te*t/html"} }, `"te*t/html"`},
		{"good types", func(c *CompressConfig) {
			c.ContentTypes = []string{"*/*", "Text/*", "application/*+json", "*/*+xml", "application/json"}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultCompressConfig()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			_, err := NewCompressor(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want one naming %s", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

func TestDefaultCompressConfig(t *testing.T) {
	cfg := DefaultCompressConfig()
	if got := strings.Join(cfg.Algorithms, ","); got != "gzip,zstd,br" {
		t.Errorf("Algorithms = %s", got)
	}
	if cfg.MinSize != 1024 || cfg.Levels["gzip"] != 1 || cfg.Levels["zstd"] != 1 || cfg.Levels["br"] != 3 {
		t.Errorf("MinSize %d, Levels %v", cfg.MinSize, cfg.Levels)
	}
	// Each call returns its own slices.
	cfg.ContentTypes[0] = "changed/x"
	if DefaultCompressConfig().ContentTypes[0] == "changed/x" {
		t.Error("DefaultCompressConfig shares its ContentTypes slice")
	}
}

func TestCompressWrapOff(t *testing.T) {
	h := http.NotFoundHandler()
	var nilC *Compressor
	if got := nilC.Wrap(h); fmt.Sprint(got) != fmt.Sprint(h) {
		t.Error("nil Compressor wrapped the handler")
	}
	c, err := NewCompressor(CompressConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Wrap(h); fmt.Sprint(got) != fmt.Sprint(h) {
		t.Error("Compressor without algorithms wrapped the handler")
	}
}

func TestCompressTypesMatch(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	custom := newCompressTestCompressor(t, func(cfg *CompressConfig) {
		cfg.ContentTypes = []string{"application/json", "*/*+xml", "image/*"}
	})
	all := newCompressTestCompressor(t, func(cfg *CompressConfig) { cfg.ContentTypes = []string{"*/*"} })
	for _, tc := range []struct {
		ct                 string
		def, cust, anytype bool
	}{
		{"text/html", true, false, true},
		{"text/html; charset=utf-8", true, false, true},
		{"TEXT/HTML", true, false, true},
		{"text/plain;charset=UTF-8", true, false, true},
		{"text/css", true, false, true},
		{"text/event-stream", false, false, false},
		{"Text/Event-Stream; charset=utf-8", false, false, false},
		{"application/json", true, true, true},
		{"Application/JSON; charset=utf-8", true, true, true},
		{"application/problem+json", true, false, true},
		{"application/vnd.api+json", true, false, true},
		{"application/javascript", true, false, true},
		{"application/xml", true, false, true},
		{"application/atom+xml", true, true, true},
		{"image/svg+xml", true, true, true},
		{"application/wasm", true, false, true},
		{"image/png", false, true, true},
		{"image/jpeg", false, true, true},
		{"application/octet-stream", false, false, true},
		{"application/zip", false, false, true},
		{"video/mp4", false, false, true},
		{"application/+json", false, false, true},
		{"text/", false, false, false},
		{"/json", false, false, false},
		{"", false, false, false},
		{"garbage", false, false, false},
	} {
		if got := c.types.match(tc.ct); got != tc.def {
			t.Errorf("default match(%q) = %v, want %v", tc.ct, got, tc.def)
		}
		if got := custom.types.match(tc.ct); got != tc.cust {
			t.Errorf("custom match(%q) = %v, want %v", tc.ct, got, tc.cust)
		}
		if got := all.types.match(tc.ct); got != tc.anytype {
			t.Errorf("*/* match(%q) = %v, want %v", tc.ct, got, tc.anytype)
		}
	}
}

// TestCompressRoundTrip compresses with each coding through a recorder, for
// bodies of known and unknown length written in various pieces.
func TestCompressRoundTrip(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	json := compressTestJSON(50 << 10)
	big := compressTestJSON(1 << 20)
	for _, coding := range compressTestCodings {
		for _, tc := range []struct {
			name     string
			body     []byte
			known    bool
			piece    int
			accepted string
		}{
			{"known length", json, true, 32 << 10, coding},
			{"unknown length", json, false, 0, coding},
			{"unknown length small pieces", json, false, 7, coding},
			{"unknown length 1MiB streamed", big, false, 4 << 10, coding},
			{"exactly MinSize unknown", json[:1024], false, 100, coding},
			{"exactly MinSize known", json[:1024], true, 0, coding},
			{"accepted with q", json, true, 0, coding + ";q=0.5, identity;q=0.1"},
		} {
			t.Run(coding+"/"+tc.name, func(t *testing.T) {
				rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					if tc.known {
						w.Header().Set("Content-Length", strconv.Itoa(len(tc.body)))
					}
					compressTestWrite(w, tc.body, tc.piece)
				}, compressTestRequest(http.MethodGet, tc.accepted))
				res := rec.Result()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d", res.StatusCode)
				}
				if got := res.Header.Get("Content-Encoding"); got != coding {
					t.Fatalf("Content-Encoding %q, want %q", got, coding)
				}
				compressTestCheckLength(t, res, rec.Body.Len())
				if got := res.Header.Values("Vary"); len(got) != 1 || got[0] != "Accept-Encoding" {
					t.Errorf("Vary %q", got)
				}
				if rec.Body.Len() >= len(tc.body) {
					t.Errorf("compressed %d bytes into %d", len(tc.body), rec.Body.Len())
				}
				if got := compressTestDecode(t, coding, rec.Body.Bytes()); !bytes.Equal(got, tc.body) {
					t.Fatalf("decoded body differs: %d bytes, want %d", len(got), len(tc.body))
				}
			})
		}
	}
}

// TestCompressLevels checks that every level of every coding produces a
// valid stream.
func TestCompressLevels(t *testing.T) {
	body := compressTestJSON(20 << 10)
	for coding, levels := range map[string][]int{
		codingGzip:   {1, 2, 3, 4, 5, 6, 7, 8, 9},
		codingBrotli: {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
		codingZstd:   {1, 2, 3, 4},
	} {
		for _, level := range levels {
			c := newCompressTestCompressor(t, func(cfg *CompressConfig) { cfg.Levels = map[string]int{coding: level} })
			rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write(body)
			}, compressTestRequest(http.MethodGet, coding))
			if got := rec.Result().Header.Get("Content-Encoding"); got != coding {
				t.Fatalf("%s level %d: Content-Encoding %q", coding, level, got)
			}
			if got := compressTestDecode(t, coding, rec.Body.Bytes()); !bytes.Equal(got, body) {
				t.Fatalf("%s level %d: decoded body differs", coding, level)
			}
		}
	}
}

// TestCompressServerRoundTrip round-trips each coding through a real
// server and client over loopback, on HTTP/1.1 and HTTP/2, with a pooled
// encoder reused across requests.
func TestCompressServerRoundTrip(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	json := compressTestJSON(50 << 10)
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("known") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(len(json)))
		}
		compressTestWrite(w, json, 16<<10)
	}))
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		ts := httptest.NewUnstartedServer(h)
		if proto == "HTTP/2.0" {
			ts.EnableHTTP2 = true
			ts.StartTLS()
		} else {
			ts.Start()
		}
		client := compressTestClient(ts)
		for _, coding := range compressTestCodings {
			for _, known := range []string{"0", "1"} {
				for range 2 {
					req, _ := http.NewRequest(http.MethodGet, ts.URL+"/?known="+known, nil)
					req.Header.Set("Accept-Encoding", coding)
					res, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, err := io.ReadAll(res.Body)
					res.Body.Close()
					if err != nil {
						t.Fatal(err)
					}
					if res.Proto != proto {
						t.Fatalf("proto %s, want %s", res.Proto, proto)
					}
					if got := res.Header.Get("Content-Encoding"); got != coding {
						t.Fatalf("%s %s known=%s: Content-Encoding %q", proto, coding, known, got)
					}
					if res.ContentLength != -1 && res.ContentLength != int64(len(body)) {
						t.Errorf("%s %s: Content-Length %d for %d bytes", proto, coding, res.ContentLength, len(body))
					}
					if got := compressTestDecode(t, coding, body); !bytes.Equal(got, json) {
						t.Fatalf("%s %s known=%s: body differs", proto, coding, known)
					}
				}
			}
		}
		ts.Close()
	}
}

// TestCompressMinSize covers the MinSize decision with known and unknown
// lengths, including a non-default MinSize.
func TestCompressMinSize(t *testing.T) {
	body := compressTestText(8 << 10)
	for _, tc := range []struct {
		name     string
		minSize  int
		size     int
		known    bool
		piece    int
		compress bool
	}{
		{"known below", 0, 1023, true, 0, false},
		{"known at", 0, 1024, true, 0, true},
		{"known zero", 0, 0, true, 0, false},
		{"unknown below", 0, 1023, false, 0, false},
		{"unknown below in pieces", 0, 1023, false, 10, false},
		{"unknown at", 0, 1024, false, 0, true},
		{"unknown above in pieces", 0, 5000, false, 333, true},
		{"unknown empty", 0, 0, false, 0, false},
		{"custom known below", 4096, 4095, true, 0, false},
		{"custom unknown below", 4096, 4000, false, 1000, false},
		{"custom unknown above", 4096, 4097, false, 1000, true},
		{"tiny MinSize", 1, 1, false, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCompressTestCompressor(t, func(cfg *CompressConfig) { cfg.MinSize = tc.minSize })
			want := body[:tc.size]
			rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				if tc.known {
					w.Header().Set("Content-Length", strconv.Itoa(tc.size))
				}
				compressTestWrite(w, want, tc.piece)
			}, compressTestRequest(http.MethodGet, "gzip"))
			res := rec.Result()
			coding := res.Header.Get("Content-Encoding")
			if (coding == "gzip") != tc.compress {
				t.Fatalf("Content-Encoding %q, want compressed=%v", coding, tc.compress)
			}
			if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("Vary %q", res.Header.Get("Vary"))
			}
			if !tc.compress && tc.known && res.Header.Get("Content-Length") != strconv.Itoa(tc.size) {
				t.Errorf("Content-Length %q", res.Header.Get("Content-Length"))
			}
			if got := compressTestDecode(t, coding, rec.Body.Bytes()); !bytes.Equal(got, want) {
				t.Fatalf("body differs: %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// TestCompressSkips covers the responses and requests left uncompressed.
func TestCompressSkips(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(10 << 10)
	preEncoded := func() []byte {
		var b bytes.Buffer
		zw := stdgzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		return b.Bytes()
	}()
	type resp struct {
		status int
		header map[string]string
		body   []byte
	}
	for _, tc := range []struct {
		name   string
		method string
		accept string
		reqHdr map[string]string
		resp   resp
		vary   bool // want Vary: Accept-Encoding
	}{
		{"already gzip", "GET", "gzip, br", nil,
			resp{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, preEncoded}, false},
		{"already br, client wants zstd", "GET", "zstd", nil,
			resp{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "br"}, body}, false},
		{"range request", "GET", "gzip", map[string]string{"Range": "bytes=0-99"},
			resp{206, map[string]string{"Content-Type": "application/json", "Content-Range": "bytes 0-99/10240"}, body[:100]}, false},
		{"range request answered in full", "GET", "gzip", map[string]string{"Range": "bytes=0-99"},
			resp{200, map[string]string{"Content-Type": "application/json"}, body}, true},
		{"206 without range request", "GET", "gzip", nil,
			resp{206, map[string]string{"Content-Type": "application/json", "Content-Range": "bytes 0-99/10240"}, body[:100]}, false},
		{"content-range on 200", "GET", "gzip", nil,
			resp{200, map[string]string{"Content-Type": "application/json", "Content-Range": "bytes */10240"}, body}, false},
		{"event stream", "GET", "gzip", nil,
			resp{200, map[string]string{"Content-Type": "text/event-stream"}, body}, false},
		{"no-transform", "GET", "gzip", nil,
			resp{200, map[string]string{"Content-Type": "application/json", "Cache-Control": "public, No-Transform, max-age=60"}, body}, false},
		{"content digest", "GET", "gzip", nil,
			resp{200, map[string]string{"Content-Type": "application/json", "Content-Digest": "sha-256=:x:"}, body}, false},
		{"type not listed", "GET", "gzip", nil,
			resp{200, map[string]string{"Content-Type": "image/png"}, body}, false},
		{"empty content type", "GET", "gzip", nil,
			resp{200, map[string]string{"Content-Type": ""}, body}, false},
		{"HEAD", "HEAD", "gzip", nil,
			resp{200, map[string]string{"Content-Type": "application/json", "Content-Length": "10240"}, nil}, true},
		{"client accepts none", "GET", "deflate", nil,
			resp{200, map[string]string{"Content-Type": "application/json"}, body}, true},
		{"no Accept-Encoding", "GET", "-", nil,
			resp{200, map[string]string{"Content-Type": "application/json"}, body}, true},
		{"identity;q=0 is not 406", "GET", "identity;q=0", nil,
			resp{200, map[string]string{"Content-Type": "application/json"}, body}, true},
		{"*;q=0 is not 406", "GET", "*;q=0", nil,
			resp{200, map[string]string{"Content-Type": "application/json"}, body}, true},
		{"204", "GET", "gzip", nil,
			resp{204, map[string]string{"Content-Type": "application/json"}, nil}, false},
		{"304", "GET", "gzip", nil,
			resp{304, map[string]string{"Content-Type": "application/json", "ETag": `"v1"`}, nil}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := compressTestRequest(tc.method, tc.accept)
			for k, v := range tc.reqHdr {
				req.Header.Set(k, v)
			}
			rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.resp.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.resp.status)
				compressTestWrite(w, tc.resp.body, 1000)
			}, req)
			res := rec.Result()
			if res.StatusCode != tc.resp.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.resp.status)
			}
			if got, want := res.Header.Get("Content-Encoding"), tc.resp.header["Content-Encoding"]; got != want {
				t.Errorf("Content-Encoding %q, want %q", got, want)
			}
			if !bytes.Equal(rec.Body.Bytes(), tc.resp.body) {
				t.Errorf("body changed: %d bytes, want %d", rec.Body.Len(), len(tc.resp.body))
			}
			for _, k := range []string{"Content-Length", "ETag", "Content-Range"} {
				if got, want := res.Header.Get(k), tc.resp.header[k]; got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}
			if got := strings.Contains(res.Header.Get("Vary"), "Accept-Encoding"); got != tc.vary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", res.Header.Get("Vary"), tc.vary)
			}
		})
	}
}

func TestCompressVary(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(4 << 10)
	for _, tc := range []struct {
		name   string
		vary   []string
		accept string
		want   []string
	}{
		{"none", nil, "gzip", []string{"Accept-Encoding"}},
		{"merge", []string{"Origin"}, "gzip", []string{"Origin, Accept-Encoding"}},
		{"merge lines", []string{"Origin", "Cookie"}, "gzip", []string{"Origin, Cookie, Accept-Encoding"}},
		{"present", []string{"Origin, accept-encoding"}, "gzip", []string{"Origin, accept-encoding"}},
		{"present own line", []string{"Origin", "Accept-Encoding"}, "gzip", []string{"Origin", "Accept-Encoding"}},
		{"star", []string{"*"}, "gzip", []string{"*"}},
		{"blank", []string{" "}, "gzip", []string{"Accept-Encoding"}},
		{"merge, not compressed", []string{"Origin"}, "deflate", []string{"Origin, Accept-Encoding"}},
		{"present, not compressed", []string{"Accept-Encoding"}, "-", []string{"Accept-Encoding"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				for _, v := range tc.vary {
					w.Header().Add("Vary", v)
				}
				w.Write(body)
			}, compressTestRequest(http.MethodGet, tc.accept))
			if got := rec.Result().Header.Values("Vary"); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("Vary %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCompressETag(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(4 << 10)
	for _, tc := range []struct{ accept, etag, want string }{
		{"gzip", `"abc"`, `"abc-gzip"`},
		{"br", `"abc"`, `"abc-br"`},
		{"zstd", `"abc"`, `"abc-zstd"`},
		{"gzip", `""`, `"-gzip"`},
		{"gzip", `W/"abc"`, `W/"abc"`},
		{"gzip", `abc`, `abc`},
		{"deflate", `"abc"`, `"abc"`},
	} {
		rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", tc.etag)
			w.Write(body)
		}, compressTestRequest(http.MethodGet, tc.accept))
		if got := rec.Result().Header.Get("ETag"); got != tc.want {
			t.Errorf("Accept-Encoding %s, ETag %s: got %s, want %s", tc.accept, tc.etag, got, tc.want)
		}
	}
}

// TestCompressConditional checks that the ETag suffix is removed from
// If-None-Match and If-Match on the way to the handler (not from If-Range),
// that the caller's request is not modified, and that a 304 gets the
// suffix back.
func TestCompressConditional(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(4 << 10)
	var seen http.Header
	h := func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Del("Content-Type")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(body)
	}
	for _, tc := range []struct {
		name          string
		accept        string
		header, value string
		seenValue     string
		status        int
		etag          string
		vary          bool
	}{
		{"If-None-Match gzip", "gzip", "If-None-Match", `"v1-gzip"`, `"v1"`, 304, `"v1-gzip"`, true},
		{"If-None-Match list", "br", "If-None-Match", `"v0-br", W/"v1-br"`, `"v0", W/"v1"`, 200, `"v1-br"`, true},
		{"If-None-Match other coding", "gzip", "If-None-Match", `"v1-br"`, `"v1-br"`, 200, `"v1-gzip"`, true},
		{"If-None-Match plain", "gzip", "If-None-Match", `"v1"`, `"v1"`, 304, `"v1"`, false},
		{"If-None-Match star", "gzip", "If-None-Match", `*`, `*`, 200, `"v1-gzip"`, true},
		{"If-Match", "zstd", "If-Match", `"v1-zstd"`, `"v1"`, 200, `"v1-zstd"`, true},
		{"If-Range untouched", "gzip", "If-Range", `"v1-gzip"`, `"v1-gzip"`, 200, `"v1-gzip"`, true},
		{"no coding, no strip", "identity", "If-None-Match", `"v1-gzip"`, `"v1-gzip"`, 200, `"v1"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := compressTestRequest(http.MethodGet, tc.accept)
			req.Header.Set(tc.header, tc.value)
			rec := compressTestRecord(c, h, req)
			if got := seen.Get(tc.header); got != tc.seenValue {
				t.Errorf("handler saw %s %s, want %s", tc.header, got, tc.seenValue)
			}
			if got := req.Header.Get(tc.header); got != tc.value {
				t.Errorf("caller's request changed: %s %s", tc.header, got)
			}
			res := rec.Result()
			if res.StatusCode != tc.status {
				t.Errorf("status %d, want %d", res.StatusCode, tc.status)
			}
			if got := res.Header.Get("ETag"); got != tc.etag {
				t.Errorf("ETag %s, want %s", got, tc.etag)
			}
			if got := res.Header.Get("Vary") == "Accept-Encoding"; got != tc.vary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", res.Header.Get("Vary"), tc.vary)
			}
		})
	}
}

// TestCompressSniff checks responses without a Content-Type.
func TestCompressSniff(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	html := []byte("<!DOCTYPE html><html><body>" + strings.Repeat("<p>hello, world</p>", 300) + "</body></html>")
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 4000)...)
	for _, tc := range []struct {
		name   string
		body   []byte
		known  bool
		piece  int
		coding string
		ctype  string
	}{
		{"html", html, false, 0, "gzip", "text/html; charset=utf-8"},
		{"html known length", html, true, 0, "gzip", "text/html; charset=utf-8"},
		{"html in small pieces", html, true, 50, "gzip", "text/html; charset=utf-8"},
		{"png", png, false, 0, "", "image/png"},
		{"png known length", png, true, 100, "", "image/png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
				if tc.known {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.body)))
				}
				compressTestWrite(w, tc.body, tc.piece)
			}, compressTestRequest(http.MethodGet, "gzip"))
			res := rec.Result()
			if got := res.Header.Get("Content-Encoding"); got != tc.coding {
				t.Errorf("Content-Encoding %q, want %q", got, tc.coding)
			}
			if got := res.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := compressTestDecode(t, tc.coding, rec.Body.Bytes()); !bytes.Equal(got, tc.body) {
				t.Error("body differs")
			}
		})
	}
}

// TestCompressEmptyBodies checks that a compressed response with no body
// bytes is still a valid stream for every coding, and that a handler
// writing nothing at all gets net/http's default response.
func TestCompressEmptyBodies(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	for _, coding := range compressTestCodings {
		rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "5000") // a lie: nothing follows
			w.WriteHeader(http.StatusOK)
		}, compressTestRequest(http.MethodGet, coding))
		if got := rec.Result().Header.Get("Content-Encoding"); got != coding {
			t.Fatalf("Content-Encoding %q, want %s", got, coding)
		}
		if got := compressTestDecode(t, coding, rec.Body.Bytes()); len(got) != 0 {
			t.Fatalf("%s: decoded %q", coding, got)
		}
	}
	rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {}, compressTestRequest(http.MethodGet, "gzip"))
	if res := rec.Result(); res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "" || rec.Body.Len() != 0 {
		t.Errorf("empty handler: %d %q %q", res.StatusCode, res.Header.Get("Content-Encoding"), rec.Body.String())
	}
}

// TestCompressEventStreamFlush checks over a real connection that an event
// stream is neither compressed nor held back: each event reaches the client
// before the handler writes the next.
func TestCompressEventStreamFlush(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	next := make(chan struct{})
	ts := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), compressTestTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip, br, zstd")
	res, err := compressTestClient(ts).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if got := res.Header.Get("Content-Encoding"); got != "" {
		t.Fatalf("event stream compressed: %q", got)
	}
	br := bufio.NewReader(res.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		select {
		case next <- struct{}{}:
		case <-ctx.Done():
			t.Fatal("handler gone")
		}
	}
}

// TestCompressStreamingFlush checks over a real connection that Flush
// pushes compressed bytes out: the client decodes each chunk before the
// handler writes the next one.
func TestCompressStreamingFlush(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	const chunks = 3
	chunk := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"seq":%d,"pad":"%s"}`+"\n", i, strings.Repeat("x", 100)))
	}
	for _, coding := range compressTestCodings {
		t.Run(coding, func(t *testing.T) {
			next := make(chan struct{})
			ts := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-ndjson")
				rc := http.NewResponseController(w)
				for i := range chunks {
					w.Write(chunk(i))
					if err := rc.Flush(); err != nil {
						t.Errorf("flush: %v", err)
						return
					}
					select {
					case <-next:
					case <-r.Context().Done():
						return
					}
				}
			})))
			defer ts.Close()
			ctx, cancel := context.WithTimeout(context.Background(), compressTestTimeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
			req.Header.Set("Accept-Encoding", coding)
			res, err := compressTestClient(ts).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Encoding"); got != coding {
				t.Fatalf("Content-Encoding %q (a flushed stream below MinSize is compressed)", got)
			}
			zr := compressTestReader(t, coding, res.Body)
			for i := range chunks {
				want := chunk(i)
				got := make([]byte, len(want))
				if _, err := io.ReadFull(zr, got); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("chunk %d: %q %v", i, got, err)
				}
				select {
				case next <- struct{}{}:
				case <-ctx.Done():
					t.Fatal("handler gone")
				}
			}
			if rest, err := io.ReadAll(zr); err != nil || len(rest) != 0 {
				t.Fatalf("after the chunks: %q %v", rest, err)
			}
		})
	}
}

// TestCompressHijack checks that a handler can hijack the connection
// through the wrapper, directly and through http.ResponseController.
func TestCompressHijack(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	for _, via := range []string{"Hijacker", "ResponseController"} {
		t.Run(via, func(t *testing.T) {
			ts := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				var conn net.Conn
				var brw *bufio.ReadWriter
				var err error
				if via == "Hijacker" {
					conn, brw, err = w.(http.Hijacker).Hijack()
				} else {
					conn, brw, err = http.NewResponseController(w).Hijack()
				}
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				defer conn.Close()
				brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
				brw.Flush()
				line, _ := brw.ReadString('\n')
				brw.WriteString("echo: " + line)
				brw.Flush()
			})))
			defer ts.Close()
			conn, err := net.DialTimeout("tcp", ts.Listener.Addr().String(), compressTestTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(compressTestTimeout))
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Content-Encoding") != "" {
				t.Fatalf("status %d, Content-Encoding %q", res.StatusCode, res.Header.Get("Content-Encoding"))
			}
			fmt.Fprintf(conn, "ping\n")
			if line, err := br.ReadString('\n'); err != nil || line != "echo: ping\n" {
				t.Fatalf("read %q %v", line, err)
			}
		})
	}
}

// TestCompressUpgradeThroughProxy runs a protocol upgrade (as WebSocket
// does) through Wrap around httputil.ReverseProxy.
func TestCompressUpgradeThroughProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("backend hijack: %v", err)
			return
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	c := newCompressTestCompressor(t, nil)
	front := httptest.NewServer(c.Wrap(httputil.NewSingleHostReverseProxy(u)))
	defer front.Close()

	// No Client.Timeout: it would wrap the 101 body and hide its Write.
	ctx, cancel := context.WithTimeout(context.Background(), compressTestTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	rw, ok := res.Body.(io.ReadWriter)
	if !ok {
		t.Fatalf("101 body %T is not writable", res.Body)
	}
	io.WriteString(rw, "ping\n")
	if line, err := bufio.NewReader(rw).ReadString('\n'); err != nil || line != "echo: ping\n" {
		t.Fatalf("read %q %v", line, err)
	}
}

// TestCompressHijackStates checks Hijack in the writer's other states.
func TestCompressHijackStates(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(4 << 10)
	// A recorder cannot be hijacked: the error comes back, no panic.
	compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := w.(http.Hijacker).Hijack(); err == nil {
			t.Error("hijacked a ResponseRecorder")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
		if _, _, err := w.(http.Hijacker).Hijack(); err == nil {
			t.Error("hijacked a response being compressed")
		}
	}, compressTestRequest(http.MethodGet, "gzip"))
	// Hijacking while body bytes are held for the MinSize decision hands
	// them (and the status) to net/http first, as an unwrapped handler
	// would have; the hijack itself must work.
	ts := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hey\n"))
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		brw.Flush()
		conn.Close()
	})))
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	if res, err := compressTestClient(ts).Do(req); err == nil {
		res.Body.Close()
	}
}

// TestCompressTrailers checks that declared and TrailerPrefix trailers
// survive compression over a real connection.
func TestCompressTrailers(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(20 << 10)
	ts := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusOK)
		compressTestWrite(w, body, 4096)
		w.Header().Set("X-Checksum", "abc123")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})))
	defer ts.Close()
	for _, coding := range compressTestCodings {
		req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
		req.Header.Set("Accept-Encoding", coding)
		res, err := compressTestClient(ts).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Header.Get("Content-Encoding"); got != coding {
			t.Fatalf("Content-Encoding %q", got)
		}
		if got := compressTestDecode(t, coding, raw); !bytes.Equal(got, body) {
			t.Fatalf("%s: body differs", coding)
		}
		if res.Trailer.Get("X-Checksum") != "abc123" || res.Trailer.Get("X-Late") != "late" {
			t.Errorf("%s: trailers %v", coding, res.Trailer)
		}
	}
}

// TestCompressResponseController checks the deadline and flush methods
// through http.ResponseController (Unwrap and FlushError).
func TestCompressResponseController(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(4 << 10)
	ts := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(compressTestTimeout)); err != nil {
			t.Errorf("SetWriteDeadline: %v", err)
		}
		if err := rc.SetReadDeadline(time.Now().Add(compressTestTimeout)); err != nil {
			t.Errorf("SetReadDeadline: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok || u.Unwrap() == nil {
			t.Error("no Unwrap")
		}
	})))
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := compressTestClient(ts).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if got := compressTestDecode(t, res.Header.Get("Content-Encoding"), raw); !bytes.Equal(got, body) {
		t.Fatal("body differs")
	}
}

// TestCompressInformational checks that 1xx responses pass straight through
// ahead of a compressed final response.
func TestCompressInformational(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(4 << 10)
	ts := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})))
	defer ts.Close()
	var got1xx []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got1xx = append(got1xx, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, ts.URL, nil)
	req.Header.Set("Accept-Encoding", "zstd")
	res, err := compressTestClient(ts).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if len(got1xx) != 1 || got1xx[0] != http.StatusEarlyHints {
		t.Errorf("1xx responses %v", got1xx)
	}
	if res.Header.Get("Content-Encoding") != "zstd" || !bytes.Equal(compressTestDecode(t, "zstd", raw), body) {
		t.Errorf("final response: %q", res.Header.Get("Content-Encoding"))
	}
}

// TestCompressConcurrent runs many requests at once through one Compressor
// (meaningful under -race: the pools are shared).
func TestCompressConcurrent(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	bodies := [][]byte{compressTestJSON(3 << 10), compressTestJSON(40 << 10), compressTestText(900)}
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("b"))
		w.Header().Set("Content-Type", "application/json")
		compressTestWrite(w, bodies[i], 1000)
	}))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				b := (g + i) % len(bodies)
				coding := compressTestCodings[(g+i/3)%len(compressTestCodings)]
				req := httptest.NewRequest(http.MethodGet, "/?b="+strconv.Itoa(b), nil)
				req.Header.Set("Accept-Encoding", coding)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				got := compressTestDecode(t, rec.Result().Header.Get("Content-Encoding"), rec.Body.Bytes())
				if !bytes.Equal(got, bodies[b]) {
					t.Errorf("goroutine %d request %d (%s): body differs", g, i, coding)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestCompressPanicRecovers checks that a handler panic does not poison the
// pools: later responses are still correct.
func TestCompressPanicRecovers(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(8 << 10)
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body[:2000])
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		w.Write(body[2000:])
	}))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), compressTestRequestPath("/panic", "gzip"))
	}()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, compressTestRequestPath("/", "gzip"))
	if !bytes.Equal(compressTestDecode(t, "gzip", rec.Body.Bytes()), body) {
		t.Error("body differs after a panic")
	}
}

// compressTestRequestPath is compressTestRequest for a path.
func compressTestRequestPath(path, accept string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://gw.test"+path, nil)
	req.Header.Set("Accept-Encoding", accept)
	return req
}

// TestCompressReverseProxy runs Wrap around httputil.ReverseProxy, as the
// gateway does: backends with and without Content-Length (the proxy flushes
// after every write for the latter), and a conditional request answered
// with 304 by the backend.
func TestCompressReverseProxy(t *testing.T) {
	big := compressTestJSON(200 << 10)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"big1"`)
		if r.Header.Get("If-None-Match") == `"big1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.URL.Path == "/known" {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		}
		compressTestWrite(w, big, 8<<10) // no Content-Length: chunked
	}))
	defer backend.Close()
	u, _ := url.Parse(backend.URL)
	c := newCompressTestCompressor(t, nil)
	front := httptest.NewServer(c.Wrap(httputil.NewSingleHostReverseProxy(u)))
	defer front.Close()
	client := compressTestClient(front)
	get := func(path, accept, inm string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, front.URL+path, nil)
		req.Header.Set("Accept-Encoding", accept)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}
	for _, coding := range compressTestCodings {
		for _, path := range []string{"/known", "/chunked"} {
			res, body := get(path, coding, "")
			if got := res.Header.Get("Content-Encoding"); got != coding {
				t.Fatalf("%s %s: Content-Encoding %q", coding, path, got)
			}
			if got := compressTestDecode(t, coding, body); !bytes.Equal(got, big) {
				t.Fatalf("%s %s: body differs", coding, path)
			}
			etag := res.Header.Get("ETag")
			if etag != `"big1-`+coding+`"` {
				t.Fatalf("%s %s: ETag %s", coding, path, etag)
			}
			res, body = get(path, coding, etag)
			if res.StatusCode != http.StatusNotModified || len(body) != 0 || res.Header.Get("ETag") != etag {
				t.Fatalf("%s %s: revalidation: %d, ETag %s, %d bytes", coding, path, res.StatusCode, res.Header.Get("ETag"), len(body))
			}
		}
	}
}

// TestCompressIdentityEncoding checks that "Content-Encoding: identity" is
// not treated as already encoded.
func TestCompressIdentityEncoding(t *testing.T) {
	c := newCompressTestCompressor(t, nil)
	body := compressTestJSON(4 << 10)
	rec := compressTestRecord(c, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "identity")
		w.Write(body)
	}, compressTestRequest(http.MethodGet, "gzip"))
	if got := rec.Result().Header.Values("Content-Encoding"); len(got) != 1 || got[0] != "gzip" {
		t.Fatalf("Content-Encoding %q", got)
	}
	if !bytes.Equal(compressTestDecode(t, "gzip", rec.Body.Bytes()), body) {
		t.Fatal("body differs")
	}
}
