package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// H1Transport is a synchronous HTTP/1.1 client transport for the proxy's hot
// path: plain-http, bodyless, idempotent requests. Unlike net/http.Transport
// it starts no goroutine per connection or per request: the request is
// written and the response header read on the calling goroutine, and the
// response body is read from the connection by whoever reads resp.Body.
// Cancellation is delivered by context.AfterFunc, which moves the
// connection's deadline into the past and so unblocks any read or write.
//
// Requests it does not handle (see handles) go to Fallback unchanged.
//
// Connections are kept alive and reused as RFC 9112 section 9.3 allows;
// idle ones wait in a LIFO pool per "host:port". A single timer closes
// expired idle connections. It is safe for concurrent use.
//
// The zero value is not usable: Dial and Fallback must be set. It does not
// speak to a parent proxy: with one configured, use Fallback alone.
type H1Transport struct {
	// Dial opens connections: the guarded upstream dialer's DialContext.
	// Its errors are returned unchanged. Required.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Fallback carries every request this transport does not: https,
	// requests with a body, upgrades, Expect, trailers and anything unusual.
	// Required.
	Fallback http.RoundTripper
	// MaxIdlePerHost bounds the idle connections kept per host:port; extra
	// ones are closed. Zero means 256.
	MaxIdlePerHost int
	// MaxIdle bounds the idle connections kept in total; while it is
	// reached, connections that finish are closed instead of pooled. Zero
	// means 4096.
	MaxIdle int
	// IdleTimeout is how long a connection may sit idle in the pool: older
	// ones are closed, never reused. Zero means 90s.
	IdleTimeout time.Duration
	// ResponseHeaderTimeout bounds writing the request and reading the
	// response header, informational responses included. Zero means 60s.
	ResponseHeaderTimeout time.Duration
	// OnConn, if not nil, is told which connection carries a request
	// before it is sent (the proxy records the upstream address).
	OnConn func(req *http.Request, c net.Conn)

	mu       sync.Mutex
	idle     map[string][]*h1Conn // per host:port, oldest first, used LIFO
	nIdle    int                  // connections in idle
	closed   bool                 // CloseIdleConnections was called: pool no more
	sweeper  *time.Timer          // closes expired idle connections
	sweeping bool                 // sweeper is armed
}

const (
	// h1MaxHeaderBytes bounds a response header, like net/http.Transport's
	// default MaxResponseHeaderBytes.
	h1MaxHeaderBytes = 10 << 20
	// h1Max1xx bounds the informational responses skipped before the final
	// one.
	h1Max1xx = 10
	// Buffer sizes. The writer only ever holds a request header. The
	// reader holds a response header (a longer one is read in pieces);
	// reads of a body into a buffer at least this large, as the proxies'
	// copy buffers are, bypass it. Each request in flight holds one of
	// each, so they are small: 32 KiB readers cost 2 MiB of heap at 64
	// concurrent requests for no gain in throughput.
	h1ReadBufSize  = 4 << 10
	h1WriteBufSize = 4 << 10
)

var (
	// aLongTimeAgo is a deadline in the past: it makes blocked and future
	// reads and writes on a connection fail at once.
	aLongTimeAgo = time.Unix(1, 0)

	errH1HeaderTooLarge = errors.New("proxy: upstream response header too large")
	errH1Too1xx         = errors.New("proxy: too many 1xx informational responses from upstream")
	errH1Switching      = errors.New("proxy: unexpected 101 Switching Protocols from upstream")
	errH1BodyClosed     = errors.New("http: read on closed response body")
	errH1Stale408       = errors.New("proxy: 408 Request Timeout on a reused upstream connection")

	// Buffers are attached to a connection only while a request is in
	// flight on it, so idle connections hold no buffer memory.
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1ReadBufSize) }}
	h1Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1WriteBufSize) }}
)

// h1Conn is one upstream connection. While a request is in flight on it, it
// belongs to that request (and then to its response body); while idle, to
// the pool. It is never in both places and is closed at most once, by its
// owner.
type h1Conn struct {
	conn   net.Conn
	key    string
	br     *bufio.Reader // nil while idle
	limit  int64         // bytes Read may still return; bounds the header
	idleAt time.Time     // when it entered the pool
}

// Read reads from the connection within the current limit. The limit is
// h1MaxHeaderBytes while a response header is read and unbounded after.
func (c *h1Conn) Read(p []byte) (int, error) {
	if c.limit <= 0 {
		return 0, errH1HeaderTooLarge
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.conn.Read(p)
	c.limit -= int64(n)
	return n, err
}

// close closes the connection. recycle says nobody else is reading through
// br, so the buffer can go back to the pool; otherwise br is left alone for
// that reader to recycle.
func (c *h1Conn) close(recycle bool) {
	c.conn.Close()
	if recycle {
		c.recycle()
	}
}

// recycle detaches the read buffer and returns it to the pool.
func (c *h1Conn) recycle() {
	if c.br != nil {
		c.br.Reset(nil)
		h1Readers.Put(c.br)
		c.br = nil
	}
}

// RoundTrip implements http.RoundTripper.
func (t *H1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.Fallback.RoundTrip(req)
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := req.URL.Host
	if req.URL.Port() == "" {
		key = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	// A connection from the pool may have been closed by the server while
	// idle; that shows only when it is used. Every request here is
	// idempotent and bodyless, so it is retried once on a fresh connection
	// (RFC 9112 section 9.3.1).
	for fresh := false; ; fresh = true {
		pc, reused, err := t.getConn(ctx, key, fresh)
		if err != nil {
			return nil, err
		}
		if t.OnConn != nil {
			t.OnConn(req, pc.conn)
		}
		resp, retry, err := t.roundTrip(ctx, pc, req, reused)
		if err == nil {
			return resp, nil
		}
		if !retry || fresh || ctx.Err() != nil {
			return nil, err
		}
	}
}

// handles reports whether req is one for this transport: http, no body,
// an idempotent method (RFC 9110 section 9.2.2), no upgrade, no expectation,
// no trailers, an ASCII host and well-formed header fields. The rest goes to
// Fallback.
func (t *H1Transport) handles(req *http.Request) bool {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
		return false
	}
	if (req.Body != nil && req.Body != http.NoBody) || req.ContentLength != 0 ||
		len(req.TransferEncoding) != 0 || req.Trailer != nil {
		return false
	}
	//lint:ignore SA1019 a request cancelled the old way must still be cancellable: net/http honours Cancel, this path would not.
	if req.Cancel != nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete, http.MethodTrace:
	default:
		return false
	}
	if !isASCII(u.Host) {
		// Would need IDNA for the dial; net/http does that.
		return false
	}
	host := req.Host
	if host == "" {
		host = u.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return false
	}
	h := req.Header
	if _, ok := h["Upgrade"]; ok {
		return false
	}
	if _, ok := h["Expect"]; ok {
		return false
	}
	if _, ok := h["Trailer"]; ok {
		return false
	}
	if HeaderHasToken(h, "Connection", "upgrade") {
		return false
	}
	// As net/http.Transport does: never put a malformed field on the wire.
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// getConn takes the newest idle connection for key, or dials one when there
// is none or fresh is set.
func (t *H1Transport) getConn(ctx context.Context, key string, fresh bool) (*h1Conn, bool, error) {
	if !fresh {
		pc, stale := t.takeIdle(key)
		for _, s := range stale {
			s.close(true)
		}
		if pc != nil {
			return pc, true, nil
		}
	}
	c, err := t.Dial(ctx, "tcp", key)
	if err != nil {
		return nil, false, err
	}
	if c == nil {
		return nil, false, errors.New("proxy: dialer returned no connection")
	}
	return &h1Conn{conn: c, key: key}, false, nil
}

// takeIdle pops the newest idle connection for key. If it has been idle too
// long, so have all older ones: they are all returned as stale instead.
func (t *H1Transport) takeIdle(key string) (pc *h1Conn, stale []*h1Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[key]
	if len(list) == 0 {
		return nil, nil
	}
	n := len(list) - 1
	pc = list[n]
	if time.Since(pc.idleAt) > t.idleTimeout() {
		stale = append([]*h1Conn(nil), list...)
		clear(list)
		t.idle[key] = list[:0]
		t.nIdle -= len(stale)
		return nil, stale
	}
	list[n] = nil
	t.idle[key] = list[:n]
	t.nIdle--
	return pc, nil
}

// roundTrip sends req on pc and reads the response header. On error pc is
// closed, and retry says whether the failure is one of a connection the
// server closed while it was idle.
func (t *H1Transport) roundTrip(ctx context.Context, pc *h1Conn, req *http.Request, reused bool) (resp *http.Response, retry bool, err error) {
	c := pc.conn
	// The deadline covers the write and the header; the cancellation hook
	// is installed after it, so a cancellation is never overwritten.
	c.SetDeadline(time.Now().Add(t.headerTimeout()))
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	}
	fail := func(err error, retry bool) (*http.Response, bool, error) {
		if stop != nil {
			stop()
		}
		pc.close(true)
		if cerr := ctx.Err(); cerr != nil {
			return nil, false, cerr
		}
		return nil, retry, err
	}

	// The request line is origin-form (RFC 9112 section 3.2.1) with Host
	// from req.Host or req.URL.Host; a present but empty User-Agent is
	// left out rather than replaced.
	bw := h1Writers.Get().(*bufio.Writer)
	bw.Reset(c)
	err = writeRequestHead(bw, req)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	h1Writers.Put(bw)
	if err != nil {
		return fail(err, reused)
	}

	if pc.br == nil {
		pc.br = h1Readers.Get().(*bufio.Reader)
		pc.br.Reset(pc)
	}
	pc.limit = h1MaxHeaderBytes
	if _, err := pc.br.Peek(1); err != nil {
		// Nothing of a response arrived: on a reused connection that is the
		// server having closed it while idle (RFC 9112 section 9.6).
		retry := reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.ECONNRESET))
		return fail(h1ReadError(err), retry)
	}
	for n1xx := 0; ; n1xx++ {
		if n1xx > h1Max1xx {
			return fail(errH1Too1xx, false)
		}
		resp, err = http.ReadResponse(pc.br, req)
		if err != nil {
			return fail(h1ReadError(err), false)
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// Nothing here asks for an upgrade.
			return fail(errH1Switching, false)
		}
		// Informational (RFC 9110 section 15.2): has no body; discard it
		// and read on, with a fresh header allowance.
		pc.limit = h1MaxHeaderBytes
	}
	if reused && resp.StatusCode == http.StatusRequestTimeout {
		// Some servers send a 408 on an idle connection before closing
		// it; it was not an answer to this request.
		return fail(errH1Stale408, true)
	}
	pc.limit = math.MaxInt64
	c.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		// The hook may have run before the deadline was cleared.
		return fail(nil, false)
	}

	// RFC 9112 section 9.3: the connection persists unless either side
	// says close; a close-delimited body (section 6.3) sets resp.Close too.
	reuse := !resp.Close && !req.Close && !HeaderHasToken(req.Header, "Connection", "close")
	if resp.Body == http.NoBody || resp.Body == nil {
		// HEAD, 1xx/204/304 or Content-Length: 0 (RFC 9112 section 6.3):
		// the connection is ready for the next request now.
		resp.Body = http.NoBody
		t.release(pc, stop, reuse, true)
	} else {
		resp.Body = &h1Body{t: t, pc: pc, rc: resp.Body, ctx: ctx, stop: stop, reuse: reuse}
	}
	resp.Request = req
	return resp, false, nil
}

// writeRequestHead writes the head of req, a request handles accepted, as
// req.Write would: the request line in origin form, Host (without an IPv6
// zone), User-Agent unless present and empty (Go's default when absent),
// Connection: close when req.Close, then the other fields. Unlike
// req.Write it does not sort the fields (their order carries no meaning
// between different names, RFC 9110 section 5.3) and allocates nothing
// beyond what URL.RequestURI does.
func writeRequestHead(w *bufio.Writer, req *http.Request) error {
	ruri := req.URL.RequestURI()
	for i := 0; i < len(ruri); i++ {
		if b := ruri[i]; b < ' ' || b == 0x7f {
			return errors.New("net/http: can't write control character in Request.URL")
		}
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(ruri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(removeZone(host))
	w.WriteString("\r\n")
	h := req.Header
	ua := "Go-http-client/1.1"
	if v, ok := h["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = textproto.TrimString(v[0])
		}
	}
	if ua != "" {
		w.WriteString("User-Agent: ")
		w.WriteString(ua)
		w.WriteString("\r\n")
	}
	if req.Close && !HeaderHasToken(h, "Connection", "close") {
		w.WriteString("Connection: close\r\n")
	}
	for k, vv := range h {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vv {
			// handles checked that no value holds CR or LF.
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(textproto.TrimString(v))
			w.WriteString("\r\n")
		}
	}
	_, err := w.WriteString("\r\n")
	return err
}

// removeZone removes the IPv6 zone from a host ("[fe80::1%en0]:80"
// becomes "[fe80::1]:80"), as net/http does before sending Host.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// h1ReadError describes a failure to read a response header. Deadline
// errors stay net.Errors with Timeout() true.
func h1ReadError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("proxy: timeout awaiting upstream response header: %w", err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("proxy: upstream closed the connection before the response: %w", err)
	}
	return err
}

// release ends pc's use by one request: it goes back to the pool when reuse
// holds and nothing else is pending on it, and is closed otherwise. recycle
// says nobody else is reading from pc.
func (t *H1Transport) release(pc *h1Conn, stop func() bool, reuse, recycle bool) {
	if stop != nil && !stop() {
		// The cancellation hook ran or is running: the deadline is in the
		// past.
		reuse = false
	}
	if !reuse || !recycle || pc.br.Buffered() != 0 {
		// Buffered bytes would be something the server sent unasked.
		pc.close(recycle)
		return
	}
	pc.recycle()
	t.putIdle(pc)
}

// putIdle pools pc, or closes it when the pool is full or closed.
func (t *H1Transport) putIdle(pc *h1Conn) {
	pc.idleAt = time.Now()
	d := t.idleTimeout()
	t.mu.Lock()
	list := t.idle[pc.key]
	if t.closed || len(list) >= orInt(t.MaxIdlePerHost, 256) || t.nIdle >= orInt(t.MaxIdle, 4096) {
		t.mu.Unlock()
		pc.close(true)
		return
	}
	if t.idle == nil {
		t.idle = make(map[string][]*h1Conn)
	}
	t.idle[pc.key] = append(list, pc)
	t.nIdle++
	if !t.sweeping {
		t.sweeping = true
		if t.sweeper == nil {
			t.sweeper = time.AfterFunc(d, t.sweep)
		} else {
			t.sweeper.Reset(d)
		}
	}
	t.mu.Unlock()
}

// sweep closes idle connections past IdleTimeout, drops empty pool entries,
// and rearms itself while anything is left.
func (t *H1Transport) sweep() {
	d := t.idleTimeout()
	now := time.Now()
	var stale []*h1Conn
	t.mu.Lock()
	for key, list := range t.idle {
		i := 0
		for i < len(list) && now.Sub(list[i].idleAt) > d {
			i++
		}
		if i > 0 {
			stale = append(stale, list[:i]...)
			n := copy(list, list[i:])
			clear(list[n:])
			list = list[:n]
			t.nIdle -= i
			t.idle[key] = list
		}
		if len(list) == 0 {
			delete(t.idle, key)
		}
	}
	t.sweeping = len(t.idle) > 0 && !t.closed
	if t.sweeping {
		t.sweeper.Reset(d)
	}
	t.mu.Unlock()
	for _, pc := range stale {
		pc.close(true)
	}
}

// CloseIdleConnections closes the pooled connections and stops pooling:
// connections of requests still in flight are closed when they finish. It
// is for a transport being retired (Server.Reload); requests made after it
// still work, each on a new connection. Fallback's idle connections are
// closed too, if it has a CloseIdleConnections method.
func (t *H1Transport) CloseIdleConnections() {
	t.mu.Lock()
	t.closed = true
	var all []*h1Conn
	for _, list := range t.idle {
		all = append(all, list...)
	}
	t.idle = nil
	t.nIdle = 0
	if t.sweeper != nil {
		t.sweeper.Stop()
	}
	t.sweeping = false
	t.mu.Unlock()
	for _, pc := range all {
		pc.close(true)
	}
	if ci, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func (t *H1Transport) idleTimeout() time.Duration {
	return orDuration(t.IdleTimeout, 90*time.Second)
}

func (t *H1Transport) headerTimeout() time.Duration {
	return orDuration(t.ResponseHeaderTimeout, 60*time.Second)
}

// h1Body is a response body read straight from the connection. At a clean
// EOF the connection goes back to the pool (when the response allows);
// Close before EOF, a read error or a cancellation closes it. Close may be
// called while a Read is blocked, and unblocks it.
type h1Body struct {
	t     *H1Transport
	pc    *h1Conn
	rc    io.ReadCloser // from http.ReadResponse; never Closed: that drains
	ctx   context.Context
	stop  func() bool // cancellation hook's stop; nil without one
	reuse bool        // the connection may persist after this response

	mu      sync.Mutex
	reading bool  // a Read is using pc
	done    bool  // pc has been released or is being released
	err     error // what Read returns once done
}

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.done {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.reading = true
	b.mu.Unlock()

	n, err := b.rc.Read(p)

	b.mu.Lock()
	b.reading = false
	if b.done {
		// Closed while this Read was blocked: Close closed the connection
		// but left the buffer to us.
		b.mu.Unlock()
		b.pc.recycle()
		return n, errH1BodyClosed
	}
	if err == nil {
		b.mu.Unlock()
		return n, nil
	}
	b.done = true
	if err == io.EOF {
		b.err = io.EOF
		b.mu.Unlock()
		b.t.release(b.pc, b.stop, b.reuse, true)
		return n, io.EOF
	}
	if cerr := b.ctx.Err(); cerr != nil {
		err = cerr
	}
	b.err = err
	b.mu.Unlock()
	b.t.release(b.pc, b.stop, false, true)
	return n, err
}

// Close closes the connection unless the body was read to its end: what is
// left of the body is not drained.
func (b *h1Body) Close() error {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return nil
	}
	b.done = true
	b.err = errH1BodyClosed
	reading := b.reading
	b.mu.Unlock()
	// With a Read in flight only the connection is closed here, which
	// unblocks it; that Read hands the buffer back.
	b.t.release(b.pc, b.stop, false, !reading)
	return nil
}
