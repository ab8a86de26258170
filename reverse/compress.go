package reverse

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Response compression.
//
// Measured on the 2-core AMD EPYC development machine: one 50 KB JSON API
// response through Wrap (BenchmarkCompress; other levels with the same
// body), CPU per response and compressed/original size:
//
//	coding  level          CPU       ratio
//	gzip    1 (default)    ~66 µs    0.177
//	gzip    5              ~125 µs   0.160
//	zstd    1 (default)    ~96 µs    0.166
//	zstd    2              ~115 µs   0.159
//	br      1              ~160 µs   0.176
//	br      3 (default)    ~345 µs   0.159
//	br      4              ~560 µs   0.155
//
// Behind httputil.ReverseProxy on loopback (wrk, 64 connections,
// "Accept-Encoding: gzip", the peer benchmark's 50 KB /json50k), gzip
// level 1 took the proxy from ~80 to ~170 µs of CPU per request, against
// ~185 µs for nginx (gzip_comp_level 1, zlib) and ~130 µs for HAProxy
// (libslz) in the same runs, with smaller output than both (9.7 KB, against
// 9.9 KB and 13.0 KB). klauspost/compress's StatelessCompression mode was
// slower than level 1, and HuffmanOnly saved ~20 µs per request but
// tripled the output (ratio 0.58). zstd level 1 cost ~70 µs more per
// request than gzip level 1 for 8% less output. The brotli encoder
// (andybalholm/brotli) is the slowest; below level 2 its ratio is no better
// than gzip level 1, so its default is 3.

// Default compression settings; see CompressConfig and DefaultCompressConfig.
const (
	defaultCompressMinSize = 1024
	defaultGzipLevel       = 1 // klauspost/compress level 1 (fastest LZ77 + dynamic Huffman)
	defaultBrotliLevel     = 3
	defaultZstdLevel       = 1 // zstd.SpeedFastest

	// zstdWindowSize caps the zstd window (the default is 4-8 MiB): each
	// pooled encoder holds about window+128 KiB of history, so 256 KiB
	// keeps one under 1 MiB. HTTP decoders must accept up to 8 MiB.
	zstdWindowSize = 256 << 10
	// brotliWindowBits caps the brotli window likewise (2^18 = 256 KiB);
	// at quality 3 the default (22) costs about 17 MiB per encoder.
	brotliWindowBits = 18
	// compressSniffLen is how much body http.DetectContentType looks at.
	compressSniffLen = 512
)

// defaultCompressTypes is the ContentTypes list used when the configured one
// is empty: text, and the application/image/font types that are not already
// compressed.
var defaultCompressTypes = []string{
	"text/*",
	"application/json",
	"application/*+json",
	"application/x-ndjson",
	"application/javascript",
	"application/x-javascript",
	"application/ecmascript",
	"application/xml",
	"application/*+xml",
	"application/yaml",
	"application/x-yaml",
	"application/toml",
	"application/graphql",
	"application/wasm",
	"application/vnd.ms-fontobject",
	"application/x-font-ttf",
	"font/ttf",
	"font/otf",
	"image/svg+xml",
	"image/bmp",
	"image/x-icon",
	"image/vnd.microsoft.icon",
}

// CompressConfig configures response compression for a Compressor.
//
// The zero value is valid but compresses nothing (no Algorithms); start from
// DefaultCompressConfig to get a useful configuration.
type CompressConfig struct {
	// Algorithms are the content codings the gateway may use, in server
	// preference order: "zstd", "br" and "gzip" (case-insensitive, each at
	// most once). When a client accepts several with the same q-value, the
	// earlier one here is used. Nil or empty turns compression off: Wrap then
	// returns the handler unchanged.
	Algorithms []string

	// Levels sets the compression level per algorithm name: "gzip" 1-9
	// (klauspost/compress levels), "br" 0-11 (brotli quality), "zstd" 1-4
	// (zstd.SpeedFastest, SpeedDefault, SpeedBetterCompression,
	// SpeedBestCompression). A nil map or a missing name means the fast
	// default: gzip 1, br 3, zstd 1. Names not listed in Algorithms are
	// allowed (and unused); unknown names are an error.
	Levels map[string]int

	// MinSize is the smallest body, in bytes, worth compressing. A response
	// whose Content-Length is known and below MinSize is sent as is. When
	// the length is unknown, up to MinSize bytes are buffered before
	// deciding; a body that ends sooner is sent as is, and a Flush before
	// then commits to compressing (the response is a stream). Zero means
	// the default, 1024; negative is an error. Each response in flight may
	// hold a buffer of max(MinSize, 512) bytes.
	MinSize int

	// ContentTypes lists the response media types that are compressed
	// (parameters such as charset are ignored, matching is
	// case-insensitive). An entry is a media type ("application/json"),
	// a type with any subtype ("text/*"), a structured-syntax suffix within
	// a type ("application/*+json") or within any type ("*/*+xml"), or "*/*"
	// for every type. text/event-stream is never compressed, whatever this
	// says. Nil or empty means the default list: text/*, JSON, JavaScript,
	// XML, YAML, TOML, GraphQL, WebAssembly, SVG, and the uncompressed
	// font and icon formats (see defaultCompressTypes).
	ContentTypes []string
}

// DefaultCompressConfig returns the recommended configuration: gzip, then
// zstd, then brotli; levels gzip 1, zstd 1 (SpeedFastest), br 3; MinSize
// 1024; the default content types. Each call returns new slices and map.
//
// Why gzip first: the gateway is CPU-bound, and at the fast levels it can
// afford the other codings buy little. On a 50 KB JSON response, zstd
// fastest costs about 1.7x the CPU of gzip level 1 for 6-8% less output,
// and brotli 3 about 5x for 10-12% less (see the table at the top of
// compress.go). So a browser sending "gzip, deflate, br, zstd" gets gzip;
// zstd and br are used when a client prefers them by q-value or does not
// accept gzip. Put "zstd" first to trade gateway CPU for bandwidth; drop
// "br" if clients asking only for br should not cost that much CPU.
func DefaultCompressConfig() CompressConfig {
	return CompressConfig{
		Algorithms: []string{codingGzip, codingZstd, codingBrotli},
		Levels: map[string]int{
			codingGzip:   defaultGzipLevel,
			codingBrotli: defaultBrotliLevel,
			codingZstd:   defaultZstdLevel,
		},
		MinSize:      defaultCompressMinSize,
		ContentTypes: slices.Clone(defaultCompressTypes),
	}
}

// Compressor compresses HTTP responses according to a CompressConfig. It is
// safe for concurrent use; encoders and buffers are pooled and shared by all
// handlers it wraps. A nil *Compressor compresses nothing.
//
// Memory: each response being compressed holds a pooled encoder (about
// 0.8 MiB for gzip, 0.5-1 MiB for zstd and 1-1.5 MiB for brotli at the
// default levels, with the windows capped at 256 KiB) and a 32 KiB output
// buffer; the pools keep about as many as there are responses in flight.
type Compressor struct {
	codings []*compressCoding // server preference order
	offers  []string          // codings[i].name, for negotiateEncoding
	minSize int
	bufSize int // capacity of a compressWriter's sniffing buffer
	types   compressTypes
	writers sync.Pool // *compressWriter
}

// NewCompressor validates cfg and returns a Compressor. It returns an error
// naming the offending value for an unknown or repeated algorithm, an
// unknown algorithm name or out-of-range level in Levels, a negative
// MinSize, or a malformed ContentTypes entry.
func NewCompressor(cfg CompressConfig) (*Compressor, error) {
	levels := map[string]int{
		codingGzip:   defaultGzipLevel,
		codingBrotli: defaultBrotliLevel,
		codingZstd:   defaultZstdLevel,
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Levels)) {
		level := cfg.Levels[name]
		key := strings.ToLower(strings.TrimSpace(name))
		if _, known := levels[key]; !known {
			return nil, fmt.Errorf("reverse: compress: level for unknown algorithm %q (want zstd, br or gzip)", name)
		}
		if lo, hi := compressLevelRange(key); level < lo || level > hi {
			return nil, fmt.Errorf("reverse: compress: %s level %d out of range %d-%d", key, level, lo, hi)
		}
		levels[key] = level
	}
	if cfg.MinSize < 0 {
		return nil, fmt.Errorf("reverse: compress: negative MinSize %d", cfg.MinSize)
	}
	c := &Compressor{minSize: cfg.MinSize}
	if c.minSize == 0 {
		c.minSize = defaultCompressMinSize
	}
	c.bufSize = max(c.minSize, compressSniffLen)
	for _, name := range cfg.Algorithms {
		key := strings.ToLower(strings.TrimSpace(name))
		if _, known := levels[key]; !known {
			return nil, fmt.Errorf("reverse: compress: unknown algorithm %q (want zstd, br or gzip)", name)
		}
		if slices.Contains(c.offers, key) {
			return nil, fmt.Errorf("reverse: compress: algorithm %q listed twice", name)
		}
		cc, err := newCompressCoding(key, levels[key])
		if err != nil {
			return nil, err
		}
		c.codings = append(c.codings, cc)
		c.offers = append(c.offers, key)
	}
	types := cfg.ContentTypes
	if len(types) == 0 {
		types = defaultCompressTypes
	}
	for _, t := range types {
		if err := c.types.add(t); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// compressLevelRange returns the valid levels for a coding.
func compressLevelRange(coding string) (lo, hi int) {
	switch coding {
	case codingGzip:
		return gzip.BestSpeed, gzip.BestCompression
	case codingBrotli:
		return brotli.BestSpeed, brotli.BestCompression
	default:
		return int(zstd.SpeedFastest), int(zstd.SpeedBestCompression)
	}
}

// Wrap returns a handler that serves next and compresses its responses when
// the request accepts one of the configured codings and the response
// qualifies. With no algorithms configured (or a nil Compressor) it returns
// next itself.
//
// A response is sent unchanged when: the request is HEAD or has a Range
// header; the status is 1xx, 101, 204, 206 or 304; it already has a
// Content-Encoding other than identity, a Content-Range or a Content-Digest
// (which would no longer match); its Cache-Control says no-transform; its
// type is text/event-stream or not in ContentTypes; its body is smaller than
// MinSize; or the handler hijacks the connection. A client that accepts none
// of the codings (even with "identity;q=0" or "*;q=0") gets the body
// uncompressed, never 406. A response without a Content-Type is
// compressed only if the type sniffed from its first bytes
// (http.DetectContentType, as net/http would) qualifies; the sniffed type
// is then set explicitly.
//
// A compressed response gets Content-Encoding and loses Accept-Ranges (byte
// ranges of the encoded body are not offered). Its Content-Length, if any,
// is removed; when the whole compressed body fits in the 32 KiB output
// buffer (a typical 50-150 KB text body does) and there are no trailers,
// the compressed length is set instead, so the response is sent in one
// write without chunked encoding. A strong ETag gets the coding as a suffix ("abc" becomes "abc-gzip") so
// the encoded and plain representations have different validators; weak
// ETags are left as they are, since the two representations are
// semantically equivalent. Every response whose type qualifies carries
// "Vary: Accept-Encoding", merged into any Vary already present, whether
// or not this request got it compressed, so caches keep the variants
// apart.
//
// Conditional requests: when the request's If-None-Match or If-Match
// contains an entity-tag with the suffix of the coding negotiated now, the
// suffix is removed (on a copy of the request) so that the backend, which
// knows only its own ETag, can match it; a 304 answering such a request
// gets the suffix back on its ETag. If-Range is left alone, so a range
// request never splices the plain representation onto an encoded one.
//
// The ResponseWriter passed to next implements http.Flusher (flushing the
// encoder too, so streamed responses stream), http.Hijacker (for protocol
// upgrades), and Unwrap for http.ResponseController. Trailers pass through.
func (c *Compressor) Wrap(next http.Handler) http.Handler {
	if c == nil || len(c.codings) == 0 {
		return next
	}
	return &compressHandler{c: c, next: next}
}

// compressHandler is the http.Handler returned by Compressor.Wrap.
type compressHandler struct {
	c    *Compressor
	next http.Handler
}

func (h *compressHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	c := h.c
	var coding *compressCoding
	if ae := r.Header["Accept-Encoding"]; len(ae) > 0 {
		if i := negotiateEncoding(ae, c.offers); i >= 0 {
			coding = c.codings[i]
		}
	}
	allowed := coding != nil && r.Method != http.MethodHead && len(r.Header["Range"]) == 0
	stripped := false
	if allowed {
		r, stripped = coding.stripConditionals(r)
	}

	w, _ := c.writers.Get().(*compressWriter)
	if w == nil {
		w = new(compressWriter)
	}
	w.c = c
	w.rw = rw
	w.coding = coding
	w.allowed = allowed
	w.strippedINM = stripped

	completed := false
	defer func() {
		// next panicked (ReverseProxy does, with http.ErrAbortHandler, when
		// the client leaves mid-body): the response must not be completed
		// (net/http aborts it), but a stateful encoder goes back, or its
		// busy slot would stay taken; the writer is left to the GC.
		if !completed && w.state == compressActive {
			w.coding.put(w.enc)
		}
	}()
	h.next.ServeHTTP(w, r)
	completed = true
	w.finish()
	// Keep only the buffers; drop every reference to this response.
	*w = compressWriter{buf: w.buf[:0], out: compressOutput{buf: w.out.buf[:0]}}
	c.writers.Put(w)
}

// compressState is where a compressWriter is in its response.
type compressState uint8

const (
	compressIdle      compressState = iota // no final status yet
	compressBuffering                      // eligible; holding body bytes until the decision
	compressPass                           // sending the body unchanged
	compressActive                         // sending the body through enc
	compressHijacked                       // the handler took the connection
)

// compressWriter is the http.ResponseWriter a Compressor hands to the
// wrapped handler. WriteHeader is held back (as net/http itself holds the
// header until the first flush) until the writer knows whether to compress.
type compressWriter struct {
	c           *Compressor
	rw          http.ResponseWriter
	coding      *compressCoding // negotiated coding, nil if none
	allowed     bool            // coding != nil and the request may be compressed
	strippedINM bool            // If-None-Match had coding's suffix removed
	sniff       bool            // no Content-Type: sniff it from the body
	state       compressState
	status      int    // final status, once known
	explicit    bool   // the handler called WriteHeader with status
	need        int    // bytes to buffer before deciding
	buf         []byte // buffered body, cap c.bufSize
	enc         compressEncoder
	out         compressOutput // enc writes here
}

var (
	_ http.ResponseWriter = (*compressWriter)(nil)
	_ http.Flusher        = (*compressWriter)(nil)
	_ http.Hijacker       = (*compressWriter)(nil)
)

// Header returns the underlying writer's header map.
func (w *compressWriter) Header() http.Header { return w.rw.Header() }

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *compressWriter) Unwrap() http.ResponseWriter { return w.rw }

// WriteHeader records the status and decides, from the headers alone when
// possible, whether to compress. Informational (1xx) statuses are sent at
// once; 101 Switching Protocols turns the writer into a pass-through.
func (w *compressWriter) WriteHeader(code int) {
	if w.state != compressIdle {
		if w.state == compressPass {
			w.rw.WriteHeader(code) // let net/http report the superfluous call
		}
		return
	}
	if code < 100 || code > 999 || (code < 200 && code != http.StatusSwitchingProtocols) {
		w.rw.WriteHeader(code) // 1xx, or invalid (net/http panics)
		return
	}
	w.status = code
	w.explicit = true
	if code == http.StatusSwitchingProtocols {
		w.pass()
		return
	}
	w.decideFromHeader()
}

// implicitOK is the 200 a Write or Flush before WriteHeader implies.
func (w *compressWriter) implicitOK() {
	w.status = http.StatusOK
	w.decideFromHeader()
}

// decideFromHeader is WriteHeader's decision: pass through, compress
// now (known length, known type), or buffer body bytes first.
func (w *compressWriter) decideFromHeader() {
	h := w.rw.Header()
	ctValues, hasType := h["Content-Type"]
	eligible := w.status >= 200 && w.status != http.StatusNoContent &&
		w.status != http.StatusPartialContent && w.status != http.StatusNotModified &&
		!compressHasContentCoding(h["Content-Encoding"]) &&
		len(h["Content-Range"]) == 0 && len(h["Content-Digest"]) == 0 &&
		!compressHeaderHasToken(h["Cache-Control"], "no-transform")
	if eligible && hasType {
		ct := ""
		if len(ctValues) > 0 {
			ct = ctValues[0]
		}
		eligible = w.c.types.match(ct)
	}
	switch {
	case !eligible:
		if w.status == http.StatusNotModified && w.strippedINM {
			// The client's cached copy is our encoded representation:
			// give the 304 that copy's validator and variance.
			w.coding.suffixETag(h)
			compressAddVary(h)
		}
		w.pass()
		return
	case !w.allowed:
		if hasType {
			compressAddVary(h)
		}
		w.pass()
		return
	}
	cl := int64(-1)
	if v := h["Content-Length"]; len(v) == 1 {
		if n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64); err == nil && n >= 0 {
			cl = n
		}
	}
	if cl >= 0 && cl < int64(w.c.minSize) {
		if hasType {
			compressAddVary(h)
		}
		w.pass()
		return
	}
	w.sniff = !hasType
	w.need = 0
	if cl < 0 {
		w.need = w.c.minSize
	}
	if w.sniff {
		w.need = max(w.need, compressSniffLen)
	}
	if w.need == 0 {
		w.startCompress()
		return
	}
	w.state = compressBuffering
	if cap(w.buf) < w.c.bufSize {
		w.buf = make([]byte, 0, w.c.bufSize)
	}
}

// compressHasContentCoding reports whether a Content-Encoding field names a coding
// other than identity.
func compressHasContentCoding(values []string) bool {
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			elem = trimEncodingOWS(elem)
			if elem != "" && !strings.EqualFold(elem, "identity") {
				return true
			}
		}
	}
	return false
}

// pass switches to pass-through, sending the held status if the handler
// set one explicitly (an implicit 200 is left to the first Write, so the
// underlying writer behaves exactly as without the wrapper, e.g. when
// sniffing the Content-Type).
func (w *compressWriter) pass() {
	w.state = compressPass
	if w.explicit {
		w.rw.WriteHeader(w.status)
	}
}

// startCompress rewrites the headers for the negotiated coding and readies
// the encoder. The status is sent with the first output (see
// compressOutput).
func (w *compressWriter) startCompress() {
	h := w.rw.Header()
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	h["Content-Encoding"] = []string{w.coding.name}
	w.coding.suffixETag(h)
	compressAddVary(h)
	w.out.rw = w.rw
	w.out.status = w.status
	w.out.sent = false
	w.enc = w.coding.get(&w.out)
	w.state = compressActive
}

// decide ends buffering: data is the body so far (possibly all of it, when
// final). A flush commits to compressing, since the response is a stream.
func (w *compressWriter) decide(data []byte, final bool) {
	h := w.rw.Header()
	if w.sniff {
		if len(data) == 0 {
			w.pass() // nothing to sniff a type from: leave it to net/http
			return
		}
		ct := http.DetectContentType(data)
		if !w.c.types.match(ct) {
			w.pass() // net/http will sniff the same type
			return
		}
		h["Content-Type"] = []string{ct}
	}
	if final && len(data) < w.c.minSize {
		compressAddVary(h)
		w.pass()
		return
	}
	w.startCompress()
}

// Write compresses, buffers or passes p through, depending on the decision.
func (w *compressWriter) Write(p []byte) (int, error) {
	if w.state == compressIdle {
		w.implicitOK()
	}
	switch w.state {
	case compressActive:
		return w.enc.Write(p)
	case compressBuffering:
		return w.bufferWrite(p)
	case compressHijacked:
		return 0, http.ErrHijacked
	}
	return w.rw.Write(p)
}

// bufferWrite holds p until need bytes have arrived, then decides and
// writes what was held and the rest of p.
func (w *compressWriter) bufferWrite(p []byte) (int, error) {
	if len(w.buf)+len(p) < w.need {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if len(w.buf) == 0 {
		w.decide(p, false)
		return w.writeDecided(p)
	}
	n := w.need - len(w.buf)
	w.buf = append(w.buf, p[:n]...)
	w.decide(w.buf, false)
	if err := w.flushBuffer(); err != nil {
		return 0, err
	}
	m, err := w.writeDecided(p[n:])
	return n + m, err
}

// writeDecided writes p once the writer has left the buffering state.
func (w *compressWriter) writeDecided(p []byte) (int, error) {
	if w.state == compressActive {
		return w.enc.Write(p)
	}
	return w.rw.Write(p)
}

// flushBuffer writes out the buffered bytes after the decision.
func (w *compressWriter) flushBuffer() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.writeDecided(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Flush implements http.Flusher: it sends the headers, everything written so
// far (through the encoder's flush), and flushes the underlying writer.
func (w *compressWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush returning the error; http.ResponseController uses it.
func (w *compressWriter) FlushError() error {
	switch w.state {
	case compressHijacked:
		return http.ErrHijacked
	case compressIdle:
		w.implicitOK()
	}
	if w.state == compressBuffering {
		w.decide(w.buf, false)
		if err := w.flushBuffer(); err != nil {
			return err
		}
	}
	if w.state == compressActive {
		if err := w.enc.Flush(); err != nil {
			return err
		}
		if err := w.out.flush(); err != nil {
			return err
		}
	}
	return compressFlushUnderlying(w.rw)
}

// compressFlushUnderlying flushes rw the way http.ResponseController does,
// without allocating one.
func compressFlushUnderlying(rw http.ResponseWriter) error {
	for {
		switch t := rw.(type) {
		case interface{ FlushError() error }:
			return t.FlushError()
		case http.Flusher:
			t.Flush()
			return nil
		case interface{ Unwrap() http.ResponseWriter }:
			rw = t.Unwrap()
		default:
			return fmt.Errorf("reverse: compress: flush: %w", http.ErrNotSupported)
		}
	}
}

// errCompressHijack is returned by Hijack once compressed output has begun.
var errCompressHijack = errors.New("reverse: compress: cannot hijack a compressed response")

// Hijack implements http.Hijacker by delegating to the underlying writer
// (through Unwrap if needed). Body bytes still held are sent uncompressed
// first; a response already being compressed cannot be hijacked.
func (w *compressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	switch w.state {
	case compressActive:
		return nil, nil, errCompressHijack
	case compressHijacked:
		return nil, nil, http.ErrHijacked
	case compressBuffering:
		w.pass()
		if err := w.flushBuffer(); err != nil {
			return nil, nil, err
		}
	}
	conn, brw, err := http.NewResponseController(w.rw).Hijack()
	if err == nil {
		w.state = compressHijacked
	}
	return conn, brw, err
}

// finish completes the response after the handler returns.
func (w *compressWriter) finish() {
	if w.state == compressIdle {
		// Nothing written: net/http will send 200 with no body. Decide
		// anyway, so Vary is set as for any other small body.
		w.implicitOK()
	}
	if w.state == compressBuffering {
		w.decide(w.buf, true)
		if err := w.flushBuffer(); err != nil {
			if w.state == compressActive {
				w.coding.put(w.enc) // Reset makes it reusable
			}
			return
		}
	}
	if w.state == compressActive {
		if w.enc.Close() == nil { // a write error means the client is gone
			_ = w.out.finish()
		}
		w.coding.put(w.enc)
	}
}

// compressOutputSize is the encoder output buffer. The encoders emit a few
// hundred bytes at a time, and each ResponseWriter.Write has a fixed cost
// (and becomes its own HTTP/1.1 chunk); a response whose compressed form
// fits is sent in one Write with a Content-Length, without chunking. 32 KiB
// holds a typical 100-200 KB JSON or HTML body compressed. The buffer grows
// to what the responses need: a pooled writer that has only seen 10 KB
// outputs holds 16 KiB, not 32.
const compressOutputSize = 32 << 10

// compressOutput collects encoder output for the ResponseWriter and sends
// the status before the first byte.
type compressOutput struct {
	rw     http.ResponseWriter
	buf    []byte
	status int
	sent   bool // status sent
}

func (o *compressOutput) Write(p []byte) (int, error) {
	if len(o.buf)+len(p) > compressOutputSize {
		if err := o.flush(); err != nil {
			return 0, err
		}
		if len(p) >= compressOutputSize {
			return o.rw.Write(p)
		}
	}
	if n := len(o.buf) + len(p); n > cap(o.buf) {
		// Double, but never past compressOutputSize (append could).
		b := make([]byte, len(o.buf), min(max(2*cap(o.buf), n, 4<<10), compressOutputSize))
		copy(b, o.buf)
		o.buf = b
	}
	o.buf = append(o.buf, p...)
	return len(p), nil
}

// flush sends the status if not yet sent, and what is buffered.
func (o *compressOutput) flush() error {
	if !o.sent {
		o.sent = true
		o.rw.WriteHeader(o.status)
	}
	if len(o.buf) == 0 {
		return nil
	}
	_, err := o.rw.Write(o.buf)
	o.buf = o.buf[:0]
	return err
}

// finish flushes the end of the stream. If nothing was sent yet, the whole
// compressed body is in buf, so its length is known and set, unless the
// response has trailers (which need chunking).
func (o *compressOutput) finish() error {
	if !o.sent {
		h := o.rw.Header()
		if _, ok := h["Trailer"]; !ok && !compressHasTrailerKey(h) {
			h["Content-Length"] = []string{strconv.Itoa(len(o.buf))}
		}
	}
	return o.flush()
}

// compressHasTrailerKey reports whether h has an http.TrailerPrefix key.
func compressHasTrailerKey(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// compressAddVary adds Accept-Encoding to the Vary field unless it, or
// "*", is there already. Several Vary lines are merged into one.
func compressAddVary(h http.Header) {
	vary := h["Vary"]
	switch {
	case len(vary) == 0:
		h["Vary"] = []string{"Accept-Encoding"}
	case compressHeaderHasToken(vary, "Accept-Encoding") || compressHeaderHasToken(vary, "*"):
	default:
		joined := trimEncodingOWS(strings.Join(vary, ", "))
		if joined == "" {
			h["Vary"] = []string{"Accept-Encoding"}
			return
		}
		h["Vary"] = []string{joined + ", Accept-Encoding"}
	}
}

// compressEncoder is the streaming interface shared by the gzip, zstd and
// brotli writers.
type compressEncoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// compressCoding is one configured content coding with its encoder pool.
type compressCoding struct {
	name       string // content-coding token, lower-case
	etagSuffix string // `-<name>"`: replaces the closing quote of a strong ETag
	pool       sync.Pool
	// A stateful encoder holds its tables and history (a gzip level 1 one
	// about 800 KiB) for as long as its response streams, waits for the
	// backend included. At most maxBusy are out at once; beyond that, gzip
	// responses get a stateless encoder (stateless holds nothing between
	// writes: a little less compression, almost no memory), so that a
	// burst of concurrent responses cannot grow the heap by 800 KiB each.
	// Compression is CPU-bound: more encoders at work than a few per core
	// buy no throughput. With 64 clients fetching 50 KB of JSON on 2
	// cores, 2 per core instead of 4 gave the same requests per second and
	// bytes per response, and 4 MiB less peak RSS.
	busy      atomic.Int32
	maxBusy   int32
	stateless sync.Pool // gzip only: StatelessCompression writers
}

// statelessEncoder marks an encoder from compressCoding.stateless.
type statelessEncoder struct{ *gzip.Writer }

// newCompressCoding returns the coding with a pool of encoders at level. It
// builds one encoder up front to catch bad options.
func newCompressCoding(name string, level int) (*compressCoding, error) {
	cc := &compressCoding{name: name, etagSuffix: "-" + name + `"`, maxBusy: int32(2 * runtime.GOMAXPROCS(0))}
	var newEnc func() (compressEncoder, error)
	switch name {
	case codingGzip:
		newEnc = func() (compressEncoder, error) { return gzip.NewWriterLevel(nil, level) }
	case codingBrotli:
		newEnc = func() (compressEncoder, error) {
			return brotli.NewWriterOptions(nil, brotli.WriterOptions{Quality: level, LGWin: brotliWindowBits}), nil
		}
	case codingZstd:
		newEnc = func() (compressEncoder, error) {
			return zstd.NewWriter(nil,
				zstd.WithEncoderLevel(zstd.EncoderLevel(level)),
				zstd.WithEncoderConcurrency(1), // no goroutines per response
				zstd.WithWindowSize(zstdWindowSize),
				zstd.WithLowerEncoderMem(true),
				zstd.WithZeroFrames(true)) // an empty body is still a valid frame
		}
	}
	first, err := newEnc()
	if err != nil {
		return nil, fmt.Errorf("reverse: compress: %s level %d: %w", name, level, err)
	}
	cc.pool.New = func() any {
		e, err := newEnc()
		if err != nil {
			panic(err) // cannot happen: the same options worked above
		}
		return e
	}
	cc.pool.Put(first)
	if name == codingGzip {
		cc.stateless.New = func() any {
			w, _ := gzip.NewWriterLevel(nil, gzip.StatelessCompression) // a valid level
			return w
		}
	}
	return cc, nil
}

// get returns a pooled encoder writing to dst.
func (cc *compressCoding) get(dst io.Writer) compressEncoder {
	var e compressEncoder
	if cc.busy.Add(1) > cc.maxBusy && cc.stateless.New != nil {
		cc.busy.Add(-1)
		e = statelessEncoder{cc.stateless.Get().(*gzip.Writer)}
	} else {
		e = cc.pool.Get().(compressEncoder)
	}
	e.Reset(dst)
	return e
}

// put returns an encoder to its pool, dropping its reference to the
// response.
func (cc *compressCoding) put(e compressEncoder) {
	e.Reset(nil)
	if se, ok := e.(statelessEncoder); ok {
		cc.stateless.Put(se.Writer)
		return
	}
	cc.busy.Add(-1)
	cc.pool.Put(e)
}

// suffixETag appends the coding to a strong ETag: "abc" -> "abc-gzip".
// Weak, missing, repeated or malformed ETags are left alone.
func (cc *compressCoding) suffixETag(h http.Header) {
	v := h["Etag"]
	if len(v) != 1 {
		return
	}
	tag := v[0]
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return
	}
	h["Etag"] = []string{tag[:len(tag)-1] + cc.etagSuffix}
}

// stripConditionals removes this coding's ETag suffix from If-None-Match
// and If-Match. The request is copied (with its own header) only when there
// is something to strip. stripped reports whether If-None-Match changed.
func (cc *compressCoding) stripConditionals(r *http.Request) (out *http.Request, stripped bool) {
	inm := compressValuesContain(r.Header["If-None-Match"], cc.etagSuffix)
	im := compressValuesContain(r.Header["If-Match"], cc.etagSuffix)
	if !inm && !im {
		return r, false
	}
	out = r.WithContext(r.Context())
	out.Header = r.Header.Clone()
	for _, key := range [...]string{"If-None-Match", "If-Match"} {
		vals := out.Header[key]
		for i, v := range vals {
			vals[i] = strings.ReplaceAll(v, cc.etagSuffix, `"`)
		}
	}
	return out, inm
}

// compressValuesContain reports whether any value contains sub.
func compressValuesContain(values []string, sub string) bool {
	for _, v := range values {
		if strings.Contains(v, sub) {
			return true
		}
	}
	return false
}

// compressTypes is the compiled ContentTypes list.
type compressTypes struct {
	all      bool                // "*/*"
	exact    map[string]struct{} // "application/json"
	prefixes []string            // "text/" from "text/*"
	suffixes []compressTypeSuffix
}

// compressTypeSuffix is "type/*+suffix" (typ "type/") or "*/*+suffix"
// (typ ""); suffix includes the "+".
type compressTypeSuffix struct{ typ, suffix string }

// add compiles one ContentTypes entry.
func (t *compressTypes) add(entry string) error {
	s := strings.ToLower(strings.TrimSpace(entry))
	typ, sub, ok := strings.Cut(s, "/")
	bad := func(why string) error {
		return fmt.Errorf("reverse: compress: bad content type %q: %s", entry, why)
	}
	if !ok || !isEncodingToken(typ) || !isEncodingToken(sub) {
		return bad(`want "type/subtype", "type/*", "type/*+suffix" or "*/*"`)
	}
	starType := typ == "*"
	if !starType && strings.Contains(typ, "*") {
		return bad("wildcard inside the type")
	}
	switch {
	case sub == "*":
		if starType {
			t.all = true
		} else {
			t.prefixes = append(t.prefixes, typ+"/")
		}
	case strings.HasPrefix(sub, "*+"):
		suffix := sub[1:]
		if len(suffix) < 2 || strings.Contains(suffix, "*") {
			return bad("bad structured-syntax suffix")
		}
		p := compressTypeSuffix{suffix: suffix}
		if !starType {
			p.typ = typ + "/"
		}
		t.suffixes = append(t.suffixes, p)
	case starType || strings.Contains(sub, "*"):
		return bad("wildcard must be the whole subtype or precede a +suffix")
	default:
		if t.exact == nil {
			t.exact = make(map[string]struct{})
		}
		t.exact[s] = struct{}{}
	}
	return nil
}

// match reports whether a Content-Type value (parameters allowed) is to be
// compressed. text/event-stream never is.
func (t *compressTypes) match(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = trimEncodingOWS(mt)
	slash := strings.IndexByte(mt, '/')
	if slash <= 0 || slash == len(mt)-1 {
		return false
	}
	if strings.EqualFold(mt, "text/event-stream") {
		return false
	}
	if t.all {
		return true
	}
	if len(t.exact) > 0 {
		key := mt
		if compressHasUpper(key) {
			key = strings.ToLower(key)
		}
		if _, ok := t.exact[key]; ok {
			return true
		}
	}
	for _, p := range t.prefixes {
		if len(mt) > len(p) && strings.EqualFold(mt[:len(p)], p) {
			return true
		}
	}
	for _, p := range t.suffixes {
		if len(mt) > len(p.typ)+len(p.suffix) &&
			strings.EqualFold(mt[:len(p.typ)], p.typ) &&
			strings.EqualFold(mt[len(mt)-len(p.suffix):], p.suffix) &&
			(p.typ != "" || len(mt)-len(p.suffix) > slash+1) {
			return true
		}
	}
	return false
}

// compressHasUpper reports whether s has an ASCII upper-case letter.
func compressHasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
