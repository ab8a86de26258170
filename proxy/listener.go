package proxy

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// connTracker counts client connections, in total and per client address,
// and remembers them so that Shutdown can close hijacked ones that
// http.Server no longer sees.
type connTracker struct {
	mu       sync.Mutex
	conns    map[*trackedConn]struct{}
	perAddr  map[netip.Addr]int
	total    int
	shutdown bool
}

func newConnTracker() *connTracker {
	return &connTracker{conns: map[*trackedConn]struct{}{}, perAddr: map[netip.Addr]int{}}
}

// add registers c unless a limit is reached; it says which limit.
func (t *connTracker) add(c *trackedConn, max, perClient int) (ok bool, perClientHit bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shutdown || t.total >= max {
		return false, false
	}
	if t.perAddr[c.client] >= perClient {
		return false, true
	}
	t.total++
	t.perAddr[c.client]++
	t.conns[c] = struct{}{}
	return true, false
}

func (t *connTracker) remove(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; !ok {
		return
	}
	delete(t.conns, c)
	t.total--
	if n := t.perAddr[c.client] - 1; n > 0 {
		t.perAddr[c.client] = n
	} else {
		delete(t.perAddr, c.client)
	}
}

func (t *connTracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// closeAll closes every tracked connection and refuses new ones.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.shutdown = true
	conns := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// trackedListener admits connections within the connection limits of the
// current state and wraps them so their close is counted.
type trackedListener struct {
	net.Listener
	s *Server
}

// Accept returns the next admitted connection. Connections over a limit get
// a short 503 (or 429 for the per-client limit) and are closed here.
func (l *trackedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, t: l.s.conns, client: remoteAddr(c)}
		st := l.s.cur.Load()
		ok, perClient := l.s.conns.add(tc, st.maxConns, st.maxConnsPC)
		if ok {
			l.s.metrics.connsOpen.Inc()
			tc.onClose = l.s.metrics.connsOpen.Dec
			return tc, nil
		}
		l.s.metrics.denied(denyConnLimit)
		msg := overloadResponse
		if perClient {
			msg = perClientResponse
		}
		go refuse(c, msg)
	}
}

// refuse answers a connection over a limit and closes it. The client's
// request is read and dropped for a moment first: closing a socket with
// unread input sends a reset, which can destroy the answer in flight.
func refuse(c net.Conn, msg string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.CopyN(io.Discard, c, 64<<10)
}

var (
	overloadResponse  = rawResponse(503, "Service Unavailable", "The proxy has too many open connections.")
	perClientResponse = rawResponse(429, "Too Many Requests", "Too many open connections from your address.")
)

// rawResponse is a complete HTTP/1.1 response that closes the connection,
// for answering before the HTTP server has the connection.
func rawResponse(code int, reason, text string) string {
	body := text + "\r\n"
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + reason + "\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// trackedConn is a client connection known to the connTracker.
type trackedConn struct {
	net.Conn
	t       *connTracker
	client  netip.Addr
	closed  atomic.Bool
	onClose func()
	// req is the request being served on this connection. HTTP/1.1
	// serves one request at a time per connection, so one slot suffices.
	req *reqState
}

func (c *trackedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.t.remove(c)
		if c.onClose != nil {
			c.onClose()
		}
	}
	return c.Conn.Close()
}

// CloseWrite half-closes the connection, so that net/http can let a
// client read an error response before the connection goes away.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// remoteAddr returns the unmapped client IP of c.
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

type connKey struct{}

func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(*trackedConn)
	if !ok {
		tc = &trackedConn{Conn: c, t: s.conns, client: remoteAddr(c)}
	}
	return context.WithValue(ctx, connKey{}, tc)
}

func connFrom(ctx context.Context) *trackedConn {
	tc, _ := ctx.Value(connKey{}).(*trackedConn)
	return tc
}
