package reverse

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"waygate/audit"
	"waygate/proxy/upstream"
)

// reqState is what one request carries through the pipeline, for the audit
// event written when it ends.
type reqState struct {
	id      string
	start   time.Time
	route   *route
	peer    netip.Addr // the direct peer
	client  netip.Addr // the client, after trusted proxies
	chain   []string   // trusted incoming X-Forwarded-For entries
	backend string     // host:port of the last backend tried
	tried   []*Backend
	triedA  [2]*Backend
	bytesIn int64
	cause   upstream.Cause
	err     error
	denied  string // why the gateway answered itself: no_route, client, rate_limit, ...
	tls     bool   // the request came over TLS
	// trustedPeer: the peer is a trusted proxy, so its X-Forwarded-* and
	// Forwarded headers are believed.
	trustedPeer bool
	peerStr     string       // peer as text, made once
	w           statusWriter // the response writer the handlers get
}

type stateKey struct{}

func stateOf(ctx context.Context) *reqState {
	rs, _ := ctx.Value(stateKey{}).(*reqState)
	if rs == nil {
		rs = &reqState{}
	}
	return rs
}

// ServeHTTP is the reverse proxy's request pipeline: admission checks,
// routing, the route's protections, then the route's chain (compression,
// forwarding). One audit event is recorded for every request, whatever
// path it takes, in the deferred finish.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	rs := &reqState{id: s.newID(), start: s.now()}
	rs.tried = rs.triedA[:0]
	rw := &rs.w // one allocation for both
	rw.ResponseWriter, rw.rs = w, rs
	defer s.finish(rw, r, rs)
	rs.peer = peerAddr(r)
	rs.peerStr = rs.peer.String()
	rs.client = rs.peer
	rs.tls = r.TLS != nil

	if st.redirect && r.TLS == nil {
		s.redirect(rw, r, st)
		return
	}
	if msg := malformed(r); msg != "" {
		rs.denied = "bad_request"
		s.writePage(rw, r, rs, http.StatusBadRequest, "Bad request", msg)
		return
	}
	m, err := st.router.MatchInfo(r)
	if errors.Is(err, ErrBadRequestPath) {
		rs.denied = "bad_request"
		s.writePage(rw, r, rs, http.StatusBadRequest, "Bad request", "The path of the request is not valid (dot segments or control characters).")
		return
	}
	if err != nil {
		rs.denied = "no_route"
		s.writePage(rw, r, rs, http.StatusNotFound, "Not found", "No application is served at this address.")
		return
	}
	rt := m.Value
	rs.route = rt
	rs.client, rs.chain = ClientAddr(r, st.trusted)
	rs.trustedPeer = protectContains(st.trusted, rs.peer) // as ClientAddr decides
	if !rt.acl.Allowed(rs.client) {
		rs.denied = "client"
		s.writePage(rw, r, rs, http.StatusForbidden, "Forbidden", "Your address may not use this application.")
		return
	}
	if ok, wait := rt.limiter.Allow(rs.client); !ok {
		rs.denied = "rate_limit"
		rw.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds(wait)))
		s.writePage(rw, r, rs, http.StatusTooManyRequests, "Too many requests", "Too many requests from your address; try again shortly.")
		return
	}
	if LimitBody(rw, r, rt.maxBody) {
		rs.denied = "body_too_large"
		s.writePage(rw, r, rs, http.StatusRequestEntityTooLarge, "Request too large", "The request body is larger than this application accepts.")
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingReader{ReadCloser: r.Body, n: &rs.bytesIn}
	}
	stripUpgrade(r)
	rt.requests.Add(1)
	rt.inFlight.Add(1)
	defer rt.inFlight.Add(-1)
	rt.handler.ServeHTTP(rw, r)
}

// finish records the request's audit event and metrics. It runs deferred,
// so a panic (http.ErrAbortHandler from a failed body copy, or a bug) still
// records the request; the panic is passed on for net/http to handle.
func (s *Server) finish(rw *statusWriter, r *http.Request, rs *reqState) {
	p := recover()
	status := rw.status
	if status == 0 {
		status = http.StatusOK
		if p != nil {
			status = http.StatusInternalServerError
		}
	}
	if p != nil {
		if r.Context().Err() != nil {
			status = statusClientClosed
		}
		if rs.err == nil {
			rs.err = errors.New("response aborted")
			if err, ok := p.(error); ok && err != http.ErrAbortHandler {
				rs.err = err
			}
		}
	}
	if p != nil && p != http.ErrAbortHandler {
		s.log.Error("reverse: panic serving request", "request_id", rs.id, "panic", p)
	}
	d := s.now().Sub(rs.start)
	s.record(rs, rw, r, status, d)
	s.metrics.observe(rs, status, rw.bytes, d)
	if p != nil {
		panic(http.ErrAbortHandler)
	}
}

// statusClientClosed is recorded when the client went away before the
// answer was complete (nginx's 499).
const statusClientClosed = 499

// record writes the request's audit event.
func (s *Server) record(rs *reqState, rw *statusWriter, r *http.Request, status int, d time.Duration) {
	e := &audit.Event{
		Time:      rs.start,
		Duration:  d,
		Kind:      audit.KindReverse,
		RequestID: rs.id,
		Client:    rs.peerStr,
		Method:    r.Method,
		Scheme:    "http",
		Path:      r.URL.Path,
		Query:     r.URL.RawQuery,
		Status:    status,
		BytesIn:   rs.bytesIn,
		BytesOut:  rw.bytes,
		Upstream:  rs.backend,
		UserAgent: r.UserAgent(),
		Reason:    rs.denied,
	}
	if rs.client != rs.peer {
		e.Client = rs.client.String()
	}
	if r.TLS != nil {
		e.Scheme = "https"
	}
	e.Host, e.Port = hostPort(r.Host, r.TLS != nil)
	if rs.route != nil {
		e.Rule = rs.route.cfg.Name
	}
	if rs.denied != "" {
		e.Action = "deny"
	} else {
		e.Action = "allow"
		e.ContentType = rw.Header().Get("Content-Type")
	}
	if rs.err != nil {
		e.Error = rs.cause.String()
	}
	s.audit.Record(e)
}

// hostPort splits a Host header into a lower-case name and a port, filling
// in the scheme's default.
func hostPort(h string, tls bool) (string, uint16) {
	port := uint16(80)
	if tls {
		port = 443
	}
	host, p, err := net.SplitHostPort(h)
	if err != nil {
		return strings.ToLower(strings.TrimSuffix(h, ".")), port
	}
	if n, err := strconv.ParseUint(p, 10, 16); err == nil {
		port = uint16(n)
	}
	return strings.ToLower(strings.TrimSuffix(host, ".")), port
}

// malformed returns why a request cannot be forwarded, or "". net/http has
// already refused conflicting framing (Content-Length with
// Transfer-Encoding), bad header syntax and oversized headers.
func malformed(r *http.Request) string {
	switch {
	case r.Method == http.MethodConnect:
		return "CONNECT is not served here: this is a reverse proxy."
	case r.URL.Path == "" || r.URL.Path[0] != '/' || r.RequestURI == "*":
		return "The request target must be a path."
	case r.URL.IsAbs() && !strings.EqualFold(r.URL.Host, r.Host):
		return "The request target names a different host than the Host header."
	case r.Host == "":
		return "The request has no Host header."
	case strings.ContainsAny(r.Host, " /\\@?#"):
		return "The Host header is not a host name."
	}
	return ""
}

// stripUpgrade removes every protocol upgrade but WebSocket from r, so an
// h2c upgrade (or any other) can never be tunnelled past routing to a
// backend: the request goes on as a plain HTTP/1.1 request.
func stripUpgrade(r *http.Request) {
	up := r.Header.Get("Upgrade")
	if up == "" {
		return
	}
	if strings.EqualFold(strings.TrimSpace(up), "websocket") && upstream.HeaderHasToken(r.Header, "Connection", "upgrade") {
		return
	}
	r.Header.Del("Upgrade")
	r.Header.Del("HTTP2-Settings")
	var keep []string
	for _, v := range r.Header.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, "upgrade") && !strings.EqualFold(tok, "http2-settings") {
				keep = append(keep, tok)
			}
		}
	}
	if len(keep) == 0 {
		r.Header.Del("Connection")
	} else {
		r.Header["Connection"] = []string{strings.Join(keep, ", ")}
	}
}

// peerAddr is the address of the connection's other end.
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// rewrite turns the incoming request into the one sent to a backend. The
// backend's scheme and host are filled in per attempt by the route's
// transport. ReverseProxy has already removed hop-by-hop headers, the
// headers named in Connection, and X-Forwarded-For/-Host/-Proto.
func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	rs := stateOf(pr.In.Context())
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = rt.cfg.Name
	if rt.cfg.StripPrefix {
		StripPrefix(out.URL, rt.cfg.Match.PathPrefix)
	}
	// Keep the client's Host: apps build their links from it.
	out.Host = pr.In.Host
	setForwarded(out.Header, pr.In, rs)
}

// setForwarded sets X-Forwarded-For, -Proto, -Host and Forwarded on h, the
// header of the request forwarded for in: what the gateway saw, extended
// with what the client's proxy said only when that proxy is trusted.
func setForwarded(h http.Header, in *http.Request, rs *reqState) {
	trusted := rs.trustedPeer
	tls := in.TLS != nil
	proto := "http"
	if tls {
		proto = "https"
	}
	host := in.Host
	if trusted {
		if v := in.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			proto = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	xff := rs.peerStr
	if len(rs.chain) > 0 {
		xff = strings.Join(rs.chain, ", ") + ", " + rs.peerStr
	}
	// RFC 7239: append our hop to a trusted list, else start a new one.
	var buf [128]byte
	fwd := buf[:0]
	if prev := in.Header.Values("Forwarded"); trusted && len(prev) > 0 {
		for _, p := range prev {
			fwd = append(fwd, p...)
			fwd = append(fwd, ", "...)
		}
	}
	fwd = appendForwardedElement(fwd, rs.peer, in.Host, tls)
	// One backing array for the four values: this runs on every request.
	vals := [...]string{xff, proto, host, string(fwd)}
	h["X-Forwarded-For"] = vals[0:1:1]
	h["X-Forwarded-Proto"] = vals[1:2:2]
	h["X-Forwarded-Host"] = vals[2:3:3]
	h["Forwarded"] = vals[3:4:4]
}

// appendForwardedElement appends one RFC 7239 Forwarded element for this
// hop to b.
func appendForwardedElement(b []byte, peer netip.Addr, host string, tls bool) []byte {
	b = append(b, "for="...)
	if peer.Is6() {
		b = append(b, `"[`...)
		b = peer.AppendTo(b)
		b = append(b, `]"`...)
	} else {
		b = peer.AppendTo(b)
	}
	b = append(b, ";host="...)
	b = strconv.AppendQuote(b, host)
	if tls {
		return append(b, ";proto=https"...)
	}
	return append(b, ";proto=http"...)
}

// modifyResponse adds the route's security headers to a backend response.
func (rt *route) modifyResponse(resp *http.Response) error {
	tls := false
	if resp.Request != nil {
		tls = stateOf(resp.Request.Context()).tls
	}
	rt.security.apply(resp.Header, tls)
	return nil
}

// errorHandler answers a request whose forwarding failed: 499 (nothing
// written) when the client left, 503 when no backend is available, 413 for
// a body over the limit, 504 for timeouts, 502 for everything else.
func (s *Server) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	s.handleError(w, r, stateOf(r.Context()), err)
}

// handleError is errorHandler with the request's state at hand.
func (s *Server) handleError(w http.ResponseWriter, r *http.Request, rs *reqState, err error) {
	rs.err = err
	rs.cause = upstream.CauseOf(err)
	if r.Context().Err() != nil {
		rs.cause = upstream.CauseCanceled
		if sw, ok := w.(*statusWriter); ok {
			sw.status = statusClientClosed
		} else {
			w.WriteHeader(statusClientClosed)
		}
		return
	}
	if rs.route != nil {
		rs.route.noteError(s.now(), err)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.writePage(w, r, rs, http.StatusRequestEntityTooLarge, "Request too large", "The request body is larger than this application accepts.")
	case errors.Is(err, ErrBackendsBusy):
		s.writePage(w, r, rs, http.StatusServiceUnavailable, "Service busy", "Every server of this application is at its connection limit; try again shortly.")
	case errors.Is(err, ErrNoBackend):
		s.writePage(w, r, rs, http.StatusServiceUnavailable, "Service unavailable", "No server of this application is available right now.")
	case rs.cause == upstream.CauseTimeout:
		s.writePage(w, r, rs, http.StatusGatewayTimeout, "Gateway timeout", "The application did not answer in time.")
	default:
		s.writePage(w, r, rs, http.StatusBadGateway, "Bad gateway", "The application could not be reached ("+rs.cause.String()+").")
	}
	s.log.Warn("reverse: backend request failed", "request_id", rs.id, "route", routeName(rs.route),
		"backend", rs.backend, "cause", rs.cause.String(), "error", err)
}

func routeName(rt *route) string {
	if rt == nil {
		return ""
	}
	return rt.cfg.Name
}

// redirect answers a plain-HTTP request with 308 to its https address.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, st *state) {
	host, _ := hostPort(r.Host, false)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if st.httpsPort != 0 && st.httpsPort != 443 {
		host += ":" + strconv.Itoa(int(st.httpsPort))
	}
	target := "https://" + host + r.URL.RequestURI()
	if r.URL.IsAbs() {
		u := *r.URL
		u.Scheme, u.Host = "", ""
		target = "https://" + host + u.RequestURI()
	}
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusPermanentRedirect)
}

// statusWriter records the status and counts the body bytes sent. It
// passes Flush, Hijack and ResponseController through.
type statusWriter struct {
	http.ResponseWriter
	rs     *reqState // the request's state, for the handlers below
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingReader counts the bytes read from a request body.
type countingReader struct {
	io.ReadCloser
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	*c.n += int64(n)
	return n, err
}

var bufferPool = &proxyBufferPool{}

// proxyBufferPool lends ReverseProxy its copy buffers.
type proxyBufferPool struct{ p sync.Pool }

func (b *proxyBufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *proxyBufferPool) Put(p []byte) { b.p.Put(&p) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
