package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// handleConnect opens a tunnel: the port must be allowed, the destination
// passes the guard (in the dialer), and only then is the client told 200.
// Dial failures are answered with a status and a reason before any byte is
// tunnelled.
func (s *Server) handleConnect(rw *responseRecorder, r *http.Request, rs *reqState) {
	st := rs.st
	host, portStr, err := net.SplitHostPort(r.Host)
	port, perr := strconv.ParseUint(portStr, 10, 16)
	if err != nil || host == "" || perr != nil || port == 0 {
		rs.denied = denyBadRequest
		s.writePage(rw, r, rs, http.StatusBadRequest, "Invalid address",
			"CONNECT needs host:port with a valid port.", "")
		return
	}
	if !st.connectPortAllowed(uint16(port)) {
		rs.denied = denyPort
		s.log.Info("CONNECT port not allowed", "client", rs.client, "target", r.Host, "request_id", rs.id)
		s.writePage(rw, r, rs, http.StatusForbidden, "Port not allowed",
			"Tunnels to port "+portStr+" are not allowed through this proxy.", "")
		return
	}
	if !s.decide(rw, r, rs, host, uint16(port)) {
		return
	}
	t := &tunnel{client: rs.client, start: rs.start, id: rs.id, target: r.Host}
	switch s.tunnels.add(t, st.maxTunnels, st.maxTunnelsPC) {
	case tunnelLimitTotal:
		rs.denied = denyTunnelLimit
		s.writePage(rw, r, rs, http.StatusServiceUnavailable, "Too many tunnels",
			"The proxy has too many open tunnels; try again shortly.", "")
		return
	case tunnelLimitClient:
		rs.denied = denyTunnelLimit
		rw.Header().Set("Retry-After", "5")
		s.writePage(rw, r, rs, http.StatusTooManyRequests, "Too many tunnels",
			"Your address has too many open tunnels through this proxy.", "")
		return
	}
	// The tunnel leaves the tracker in finish, after its audit event is
	// recorded, so that a shutdown that waits for tunnels also waits for
	// their events.
	rs.tunnel = t

	upstreamConn, err := s.dialTunnel(r.Context(), st, host, uint16(port))
	if err != nil {
		s.writeUpstreamError(rw, r, rs, err)
		return
	}
	defer upstreamConn.Close()
	rs.upstream = upstreamConn.RemoteAddr().String()

	clientConn, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err != nil {
		rs.err = err
		return
	}
	defer clientConn.Close()
	// The server may have left its header-read deadline on the connection.
	clientConn.SetDeadline(time.Time{})
	t.setConns(clientConn, upstreamConn)
	rw.status = http.StatusOK
	s.metrics.tunnelsOpen.Inc()
	defer s.metrics.tunnelsOpen.Dec()

	if _, err := io.WriteString(clientConn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		rs.err = err
		return
	}
	// Bytes the client sent right behind the CONNECT header (a TLS
	// ClientHello, say) are already in the server's read buffer.
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		if _, err := upstreamConn.Write(early); err != nil {
			rs.err = err
			return
		}
		t.up.Add(int64(n))
	}
	t.splice(st.tunnelIdle)
	rs.bytesUp = t.up.Load()
	rw.bytes = t.down.Load()
}

// dialTunnel connects to the tunnel's destination, directly through the
// guarded dialer or through the parent proxy after the guard has passed the
// destination.
func (s *Server) dialTunnel(ctx context.Context, st *state, host string, port uint16) (net.Conn, error) {
	if st.opts.Parent == nil {
		return st.opts.Dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if _, err := st.opts.Dialer.Resolve(ctx, host, port); err != nil {
		return nil, err
	}
	return connectViaParent(ctx, st.opts.Parent, net.JoinHostPort(host, strconv.Itoa(int(port))))
}

// tunnel is one open CONNECT tunnel.
type tunnel struct {
	id     string
	client netip.Addr
	target string
	start  time.Time

	mu         sync.Mutex
	clientConn net.Conn
	originConn net.Conn
	closed     bool

	up   atomic.Int64 // client to origin
	down atomic.Int64 // origin to client
	// active is when bytes were last seen moving either way (UnixNano).
	active atomic.Int64
}

func (t *tunnel) setConns(client, origin net.Conn) {
	t.mu.Lock()
	t.clientConn, t.originConn = client, origin
	closed := t.closed
	t.mu.Unlock()
	if closed {
		client.Close()
		origin.Close()
	}
}

// close cuts the tunnel from outside (shutdown past its deadline).
func (t *tunnel) close() {
	t.mu.Lock()
	t.closed = true
	c, o := t.clientConn, t.originConn
	t.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if o != nil {
		o.Close()
	}
}

// splice copies both ways until both directions end, an error occurs, or
// nothing moves in either direction for idle. On Linux a TCP-to-TCP copy
// uses splice(2), so bytes never enter user space.
func (t *tunnel) splice(idle time.Duration) {
	t.active.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		t.pipe(t.originConn, t.clientConn, &t.up, idle)
	}()
	t.pipe(t.clientConn, t.originConn, &t.down, idle)
	wg.Done()
	wg.Wait()
}

// pipe copies src to dst and counts into n. The read deadline on src is
// moved forward in windows of a quarter of idle. A copy reports the bytes
// it moved only when its window ends, so the other direction's progress is
// known up to one window late; the tunnel ends when no bytes were reported
// either way for idle.
func (t *tunnel) pipe(dst, src net.Conn, n *atomic.Int64, idle time.Duration) {
	rawDst, rawSrc := rawConn(dst), rawConn(src)
	window := max(idle/4, time.Millisecond)
	for {
		rawSrc.SetReadDeadline(time.Now().Add(window))
		w, err := copyConn(rawDst, rawSrc)
		n.Add(w)
		now := time.Now()
		if w > 0 {
			t.active.Store(now.UnixNano())
		}
		if err == nil {
			// EOF from src: pass the half-close on and let the other
			// direction finish.
			if cw, ok := rawDst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && now.Sub(time.Unix(0, t.active.Load())) < idle {
			continue
		}
		// Idle, reset, or closed: end both directions.
		dst.Close()
		src.Close()
		return
	}
}

// rawConn returns the connection under our tracking wrapper, so that the
// copy can use the TCP fast paths (splice, half-close). Closing still goes
// through the wrapper.
func rawConn(c net.Conn) net.Conn {
	if tc, ok := c.(*trackedConn); ok {
		return tc.Conn
	}
	return c
}

// copyConn copies until EOF (nil error) or an error. *net.TCPConn's
// ReadFrom uses splice(2) when src is a TCP connection too.
func copyConn(dst, src net.Conn) (int64, error) {
	if rf, ok := dst.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(dst, src)
}

type tunnelLimit int

const (
	tunnelOK tunnelLimit = iota
	tunnelLimitTotal
	tunnelLimitClient
)

// tunnelTracker knows every open tunnel, so that limits hold and shutdown
// and reload can see them.
type tunnelTracker struct {
	mu      sync.Mutex
	all     map[*tunnel]struct{}
	perAddr map[netip.Addr]int
	idle    chan struct{} // closed when all is empty, nil otherwise
}

func newTunnelTracker() *tunnelTracker {
	return &tunnelTracker{all: map[*tunnel]struct{}{}, perAddr: map[netip.Addr]int{}}
}

func (tt *tunnelTracker) add(t *tunnel, max, perClient int) tunnelLimit {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if len(tt.all) >= max {
		return tunnelLimitTotal
	}
	if tt.perAddr[t.client] >= perClient {
		return tunnelLimitClient
	}
	tt.all[t] = struct{}{}
	tt.perAddr[t.client]++
	return tunnelOK
}

func (tt *tunnelTracker) remove(t *tunnel) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	delete(tt.all, t)
	if n := tt.perAddr[t.client] - 1; n > 0 {
		tt.perAddr[t.client] = n
	} else {
		delete(tt.perAddr, t.client)
	}
	if len(tt.all) == 0 && tt.idle != nil {
		close(tt.idle)
		tt.idle = nil
	}
}

func (tt *tunnelTracker) count() int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return len(tt.all)
}

// wait blocks until no tunnel is open or ctx is done.
func (tt *tunnelTracker) wait(ctx context.Context) error {
	tt.mu.Lock()
	if len(tt.all) == 0 {
		tt.mu.Unlock()
		return nil
	}
	if tt.idle == nil {
		tt.idle = make(chan struct{})
	}
	ch := tt.idle
	tt.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (tt *tunnelTracker) closeAll() {
	tt.mu.Lock()
	ts := make([]*tunnel, 0, len(tt.all))
	for t := range tt.all {
		ts = append(ts, t)
	}
	tt.mu.Unlock()
	for _, t := range ts {
		t.close()
	}
}

// TunnelInfo describes an open CONNECT tunnel, for showing tunnels that
// have no audit event yet (it is written when they close).
type TunnelInfo struct {
	RequestID string
	Client    netip.Addr
	Target    string
	Opened    time.Time
	// BytesUp and BytesDown are counted so far; a direction's count is
	// brought up to date at least every quarter of the idle timeout.
	BytesUp, BytesDown int64
}

// Tunnels lists the open tunnels, oldest first.
func (s *Server) Tunnels() []TunnelInfo {
	s.tunnels.mu.Lock()
	out := make([]TunnelInfo, 0, len(s.tunnels.all))
	for t := range s.tunnels.all {
		out = append(out, TunnelInfo{RequestID: t.id, Client: t.client, Target: t.target, Opened: t.start,
			BytesUp: t.up.Load(), BytesDown: t.down.Load()})
	}
	s.tunnels.mu.Unlock()
	slices.SortFunc(out, func(a, b TunnelInfo) int { return a.Opened.Compare(b.Opened) })
	return out
}
