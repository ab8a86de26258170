package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/elazarl/goproxy"

	"waygate/filter"
	"waygate/proxy/upstream"
)

// reqState is the per-request record that every step of the pipeline fills
// in and that finish turns into metrics and the log line.
type reqState struct {
	id     string
	kind   string // "http" or "connect"
	start  time.Time
	st     *state
	client netip.Addr
	user   string
	cause  upstream.Cause
	err    error
	denied denyReason
	// decision is the policy's decision, nil when there is no policy or
	// the request did not get that far.
	decision *filter.Decision
	// bytesUp counts request (or client-to-origin tunnel) bytes.
	bytesUp int64
	// upstream is the address dialed, when known.
	upstream string
	// tunnel is the CONNECT tunnel this request opened, if any.
	tunnel *tunnel
}

// ServeHTTP runs one request through the pipeline: admission, local pages,
// authentication, CONNECT or HTTP forwarding. The metrics and log line are
// written in a defer so that no path skips them.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := s.cur.Load()
	tc := connFrom(r.Context())
	rs := &reqState{id: s.newID(), kind: "http", start: time.Now(), st: st, client: tc.client}
	rw := &responseRecorder{ResponseWriter: w}
	defer s.finish(rs, rw, r)

	if !st.clientAllowed(rs.client) {
		rs.denied = denyClient
		s.log.Info("client not allowed", "client", rs.client, "method", r.Method, "host", r.Host, "request_id", rs.id)
		s.writePage(rw, r, rs, http.StatusForbidden, "Access denied",
			"Your address ("+rs.client.String()+") is not allowed to use this proxy.", "")
		return
	}
	if r.Method != http.MethodConnect && !r.URL.IsAbs() {
		s.serveLocal(rw, r, rs)
		return
	}
	if st.auth != nil && !s.authenticate(rw, r, rs) {
		return
	}
	if r.Method == http.MethodConnect {
		rs.kind = "connect"
		s.handleConnect(rw, r, rs)
		return
	}
	s.handleHTTP(rw, r, rs, tc)
}

// handleHTTP forwards an absolute-form request through goproxy.
func (s *Server) handleHTTP(rw *responseRecorder, r *http.Request, rs *reqState, tc *trackedConn) {
	st := rs.st
	if r.URL.Scheme != "http" && r.URL.Scheme != "https" {
		rs.denied = denyBadRequest
		s.writePage(rw, r, rs, http.StatusBadRequest, "Unsupported protocol",
			"This proxy carries http and https only, not "+r.URL.Scheme+".", "")
		return
	}
	if isCheckHost(r.URL.Host) { // the proxy's own answer; see check.go
		s.serveCheck(rw, r, rs)
		return
	}
	host, port, err := targetOf(r.URL.Host, r.URL.Scheme)
	if err != nil {
		rs.denied = denyBadRequest
		s.writePage(rw, r, rs, http.StatusBadRequest, "Invalid address", "The address in the request is not valid: "+err.Error(), "")
		return
	}
	if !safePort(port) {
		rs.denied = denyPort
		s.writePage(rw, r, rs, http.StatusForbidden, "Port not allowed",
			"Requests to port "+strconv.Itoa(int(port))+" are not allowed through this proxy.", "")
		return
	}
	if st.filter != nil && r.URL.Path == continuePath {
		s.serveContinue(rw, r, rs)
		return
	}
	if !s.decide(rw, r, rs, host, port) {
		return
	}
	if st.opts.Parent != nil {
		// The parent dials for us: check the destination here, fail closed.
		if _, err := st.opts.Dialer.Resolve(r.Context(), host, port); err != nil {
			s.writeUpstreamError(rw, r, rs, err)
			return
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, n: &rs.bytesUp}
	}
	prepareOutbound(r, rs.client, st.opts.ForwardedFor)
	tc.req = rs
	s.gp.ServeHTTP(rw, r)
	tc.req = nil
	if rw.hijacked != nil {
		// An upgraded (WebSocket) connection: goproxy relays until one side
		// ends, then returns without closing the client's side.
		rw.hijacked.Close()
	}
}

// targetOf splits a request's host[:port] and fills in the scheme's port.
func targetOf(hostport, scheme string) (string, uint16, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		host, portStr = hostport, ""
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	if host == "" {
		return "", 0, errors.New("no host")
	}
	if portStr == "" {
		if scheme == "https" {
			return host, 443, nil
		}
		return host, 80, nil
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || p == 0 {
		return "", 0, errors.New("invalid port " + strconv.Quote(portStr))
	}
	return host, uint16(p), nil
}

// safePort reports whether plain HTTP may be forwarded to port. It is
// Squid's Safe_ports list: well-known web ports and everything above 1024,
// so that the proxy cannot be used to talk HTTP to mail or other services
// on low ports (cross-protocol attacks).
func safePort(p uint16) bool {
	switch p {
	case 80, 21, 443, 70, 210, 280, 488, 591, 777:
		return true
	}
	return p > 1024
}

// hopHeaders are removed from every forwarded message (RFC 9110 section
// 7.6.1), plus the legacy Proxy-Connection and Keep-Alive.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// viaValue is our Via entry: the protocol and a pseudonym, no software
// version (RFC 9110 section 7.6.3).
const viaValue = "1.1 waygate"

// removeHopHeaders deletes hop-by-hop headers and the headers named in
// Connection. A WebSocket upgrade keeps "Connection: Upgrade" and
// "Upgrade: websocket"; any other upgrade (h2c among them) is dropped.
// "TE: trailers" is kept on requests.
func removeHopHeaders(h http.Header, request bool) {
	ws := isWebSocketUpgrade(h)
	for _, v := range h["Connection"] {
		for sf := range strings.SplitSeq(v, ",") {
			if sf = textproto.TrimString(sf); sf != "" && !(ws && strings.EqualFold(sf, "upgrade")) {
				h.Del(sf)
			}
		}
	}
	te := request && strings.EqualFold(strings.TrimSpace(h.Get("Te")), "trailers")
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			h.Del(k)
		}
	}
	if ws {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{"websocket"}
	}
	if te {
		h["Te"] = []string{"trailers"}
	}
}

func isWebSocketUpgrade(h http.Header) bool {
	return upstream.HeaderHasToken(h, "Connection", "upgrade") && upstream.HeaderHasToken(h, "Upgrade", "websocket")
}

// prepareOutbound applies the header policy to a request about to leave:
// hop-by-hop headers out, Via in, X-Forwarded-For only when asked for.
func prepareOutbound(r *http.Request, client netip.Addr, forwardedFor bool) {
	h := r.Header
	removeHopHeaders(h, true)
	h.Del("X-Forwarded-For")
	h.Del("Forwarded")
	if forwardedFor {
		h["X-Forwarded-For"] = []string{client.String()}
	}
	h["Via"] = append(h["Via"], viaValue)
	// Userinfo in an http(s) URI is deprecated (RFC 9110 section 4.2.4);
	// net/http would turn it into an Authorization header for the origin.
	r.URL.User = nil
	if _, ok := h["User-Agent"]; !ok {
		// Present but empty: net/http then sends no User-Agent instead of
		// its own.
		h["User-Agent"] = nil
	}
	r.RequestURI = ""
}

// newGoproxy sets goproxy up as the HTTP forwarding engine: our transport
// per request, our error pages, our response header policy.
func (s *Server) newGoproxy() *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = newGoproxyLogger(s.log)
	gp.KeepAcceptEncoding = true
	// goproxy's own transport and CONNECT dialer are never used: every
	// request gets the state's transport below, and CONNECT is handled
	// before goproxy. Make any use fail loudly instead of dialing around
	// the guard.
	gp.Tr = &http.Transport{Proxy: nil, DialContext: refuseDial}
	gp.ConnectDial = nil
	gp.OnRequest().DoFunc(func(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		rs := connFrom(r.Context()).req
		ctx.UserData = rs
		ctx.RoundTripper = rs.st
		return r, nil
	})
	gp.OnResponse().DoFunc(func(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
		rs, _ := ctx.UserData.(*reqState)
		if rs == nil {
			return resp
		}
		if resp == nil {
			return s.upstreamErrorResponse(ctx.Req, rs, ctx.Error)
		}
		switchingWS := resp.StatusCode == http.StatusSwitchingProtocols && isWebSocketUpgrade(resp.Header)
		if !switchingWS {
			removeHopHeaders(resp.Header, false)
		}
		resp.Header["Via"] = append(resp.Header["Via"], viaValue)
		return resp
	})
	return gp
}

// RoundTrip makes state a goproxy.RoundTripper: the transport of the
// generation the request started under.
func (st *state) RoundTrip(r *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
	return st.rt.RoundTrip(r)
}

var errUnexpectedDial = errors.New("proxy: internal dial outside the upstream dialer")

func refuseDial(context.Context, string, string) (net.Conn, error) {
	return nil, errUnexpectedDial
}

// finish records the outcome of a request.
func (s *Server) finish(rs *reqState, rw *responseRecorder, r *http.Request) {
	status := rw.status
	if rs.cause == upstream.CauseCanceled {
		status = 499
	} else if status == 0 {
		status = http.StatusOK
	}
	d := time.Since(rs.start)
	s.metrics.observe(rs.kind, status, d, rs.bytesUp, rw.bytes)
	if rs.err != nil {
		s.metrics.upstreamError(rs.cause)
	}
	if rs.denied != denyNone {
		s.metrics.denied(rs.denied)
	}
	if rs.decision != nil {
		s.metrics.decision(rs.decision.Action)
	}
	s.record(rs, rw, r, status, d)
	if rs.tunnel != nil {
		s.tunnels.remove(rs.tunnel)
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.Debug("request", "request_id", rs.id, "kind", rs.kind, "client", rs.client, "user", rs.user,
			"method", r.Method, "url", r.URL.String(), "status", status, "bytes_in", rs.bytesUp,
			"bytes_out", rw.bytes, "duration", d, "cause", rs.cause.String(), "error", rs.err)
	}
}

// newIDBase returns a random per-process prefix for request IDs.
func newIDBase() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newID returns a request ID unique within this process and unlikely to
// repeat across restarts.
func (s *Server) newID() string {
	return s.idBase + "-" + strconv.FormatUint(s.reqSeq.Add(1), 36)
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n *int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	*b.n += int64(n)
	return n, err
}

// responseRecorder remembers the status and counts the body bytes written
// to the client, and passes Flush, Hijack and ReadFrom through so that
// streaming, upgrades and sendfile keep working.
type responseRecorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked net.Conn
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *responseRecorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

func (w *responseRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = c
	}
	return c, brw, err
}

func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
