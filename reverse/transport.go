package reverse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"waygate/proxy/upstream"
)

// DialFunc opens a TCP connection to a backend. The gateway passes its one
// guarded dialer (upstream.Dialer.DialContext).
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// transportKey identifies backend transports that can share connections:
// same TLS settings, same response header timeout.
type transportKey struct {
	tls     BackendTLS
	timeout time.Duration
}

// transportCache keeps one *http.Transport per transportKey across reloads,
// so that a reload keeps the idle backend connections.
type transportCache struct {
	dial DialFunc
	mu   sync.Mutex
	m    map[transportKey]*upstream.H1Transport
	used map[transportKey]bool // keys used by the state being built
}

func newTransportCache(dial DialFunc) *transportCache {
	return &transportCache{dial: dial, m: make(map[transportKey]*upstream.H1Transport)}
}

// get returns the transport for a route, building it on first use. The
// files of t are read every time a route needs a new transport; an
// unchanged route reuses its transport.
//
// The transport is the synchronous HTTP/1.1 one for plain bodyless
// requests (most of them; no goroutines per connection), with net/http's
// for the rest: https backends, bodies, upgrades.
func (c *transportCache) get(t BackendTLS, timeout time.Duration) (*upstream.H1Transport, error) {
	k := transportKey{t, timeout}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used != nil {
		c.used[k] = true
	}
	if tr, ok := c.m[k]; ok {
		return tr, nil
	}
	tlsCfg, err := backendTLSConfig(t)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		// Never from the environment: backends are reached directly.
		Proxy:       nil,
		DialContext: c.dial,
		// The client's Accept-Encoding goes to the backend as sent; the
		// transport must not add gzip and decode bodies on its own.
		DisableCompression:    true,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}
	h1 := &upstream.H1Transport{
		Dial:                  c.dial,
		Fallback:              tr,
		MaxIdlePerHost:        tr.MaxIdleConnsPerHost,
		MaxIdle:               tr.MaxIdleConns,
		IdleTimeout:           tr.IdleConnTimeout,
		ResponseHeaderTimeout: timeout,
	}
	c.m[k] = h1
	return h1, nil
}

// begin starts recording which transports a new state uses.
func (c *transportCache) begin() {
	c.mu.Lock()
	c.used = make(map[transportKey]bool)
	c.mu.Unlock()
}

// commit drops the transports the new state does not use, closing their
// idle connections. Requests in flight on them finish normally.
func (c *transportCache) commit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, tr := range c.m {
		if !c.used[k] {
			tr.CloseIdleConnections() // also retires its pool and the fallback's
			delete(c.m, k)
		}
	}
	c.used = nil
}

// abort forgets a failed build's bookkeeping; transports it created stay
// cached for the next attempt.
func (c *transportCache) abort() {
	c.mu.Lock()
	c.used = nil
	c.mu.Unlock()
}

func (c *transportCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tr := range c.m {
		tr.CloseIdleConnections() // also retires its pool and the fallback's
	}
}

// backendTLSConfig builds the client TLS configuration for https backends.
func backendTLSConfig(t BackendTLS) (*tls.Config, error) {
	cfg, err := upstream.TLSConfig(nil)
	if err != nil {
		return nil, err
	}
	cfg.ServerName = t.ServerName
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("backend_tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("backend_tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("backend_tls client certificate %s: %w", t.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// errBackendStatus marks a backend answer that counts as a failure for
// passive health checks (502, 503, 504).
type errBackendStatus int

func (e errBackendStatus) Error() string { return fmt.Sprintf("backend answered %d", int(e)) }

// balancedTransport is a route's RoundTripper: it picks a backend from the
// pool for each attempt, retries on another backend when that is safe, and
// releases the backend when the response body is closed.
type balancedTransport struct {
	srv   *Server
	route *route
	next  http.RoundTripper
}

func (t *balancedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req, stateOf(req.Context()))
}

// roundTrip is RoundTrip with the request's state at hand.
func (t *balancedTransport) roundTrip(req *http.Request, rs *reqState) (*http.Response, error) {
	rt := t.route
	var body *replayBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &replayBody{rc: req.Body}
		req.Body = body
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		b, err := rt.pool.Pick(req, rs.client, rs.tried)
		if err != nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, err
		}
		rs.tried = append(rs.tried, b)
		u := b.URL()
		rs.backend = u.Host
		out := req
		if attempt > 0 {
			// The transport may still hold the earlier attempt's request.
			r2 := *req
			u2 := *req.URL
			r2.URL = &u2
			out = &r2
		}
		out.URL.Scheme, out.URL.Host = u.Scheme, u.Host
		resp, err := t.next.RoundTrip(out)
		more := attempt < rt.cfg.Retries
		if err != nil {
			b.Done(err)
			lastErr = err
			if more && req.Context().Err() == nil && connectFailed(err) && body.unread() {
				continue
			}
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if more && idempotent(req) && body.unread() && req.Context().Err() == nil {
				drain(resp.Body)
				b.Done(errBackendStatus(resp.StatusCode))
				lastErr = nil
				continue
			}
			resp.Body = doneBody(resp.Body, b, errBackendStatus(resp.StatusCode))
		default:
			resp.Body = doneBody(resp.Body, b, nil)
			if rw, ok := resp.Body.(*releasingRWBody); ok && resp.StatusCode == http.StatusSwitchingProtocols {
				rw.upgraded = &t.srv.upgraded
				t.srv.upgraded.Store(rw, struct{}{})
			}
		}
		return resp, nil
	}
}

// connectFailed reports whether err means the request never reached the
// backend: the connection could not be made.
func connectFailed(err error) bool {
	var de *upstream.DialError
	if errors.As(err, &de) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// idempotent reports whether a request may be sent again (RFC 9110 §9.2.2).
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// drain reads a little of a discarded response so its connection can be
// reused, then closes it.
func drain(rc io.ReadCloser) {
	io.CopyN(io.Discard, rc, 64<<10)
	rc.Close()
}

// replayBody lets a request body be sent to another backend after a
// connection failure: it never closes the client's body (the server does
// that) and remembers whether any of it was read. A nil *replayBody is a
// request without a body.
type replayBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *replayBody) Close() error { return nil }

// unread reports whether the body can still be sent whole.
func (b *replayBody) unread() bool { return b == nil || !b.read.Load() }

// releasingBody calls the backend's Done once, when the response body is
// closed, so the backend's slot stays taken while the body streams.
type releasingBody struct {
	io.ReadCloser
	b    *Backend
	once atomic.Bool
	mu   sync.Mutex // guards err: Close may come from another goroutine
	err  error      // the failure to report, if any
}

func (r *releasingBody) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	return n, err
}

func (r *releasingBody) Close() error {
	err := r.ReadCloser.Close()
	if r.once.CompareAndSwap(false, true) {
		r.mu.Lock()
		failure := r.err
		r.mu.Unlock()
		r.b.Done(failure)
	}
	return err
}

// releasingRWBody is releasingBody for switched protocols (WebSocket),
// whose body is also written to.
type releasingRWBody struct {
	releasingBody
	w        io.Writer
	upgraded *sync.Map // where the open upgrade is tracked; nil if not
}

func (r *releasingRWBody) Close() error {
	if r.upgraded != nil {
		r.upgraded.Delete(r)
	}
	return r.releasingBody.Close()
}

func (r *releasingRWBody) Write(p []byte) (int, error) { return r.w.Write(p) }

// Read does not count read errors as backend failures: an upgraded
// connection ends with one whichever side closes it.
func (r *releasingRWBody) Read(p []byte) (int, error) { return r.ReadCloser.Read(p) }

func doneBody(rc io.ReadCloser, b *Backend, failure error) io.ReadCloser {
	if rw, ok := rc.(io.ReadWriteCloser); ok {
		return &releasingRWBody{releasingBody: releasingBody{ReadCloser: rc, b: b, err: failure}, w: rw}
	}
	return &releasingBody{ReadCloser: rc, b: b, err: failure}
}
