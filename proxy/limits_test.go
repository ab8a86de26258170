package proxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"waygate/proxy"
)

// expectClosed reads from c until the peer closes it and fails if the
// read deadline passes first.
func expectClosed(t testing.TB, c net.Conn, r io.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection still open: the proxy did not close it")
	}
}

// get sends a GET for url on c and returns the response with its body.
func get(t testing.TB, c net.Conn, br *bufio.Reader, url string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+url+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestHeaderTooLarge(t *testing.T) {
	e := newEnv(t, withServerOptions(proxy.ServerOptions{MaxHeaderBytes: 1024}))
	// net/http allows 4096 bytes of slack over MaxHeaderBytes.
	resp, _ := e.raw("GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
	select {
	case <-e.seen:
		t.Fatal("oversized request reached the origin")
	default:
	}
	// A header under the limit still works.
	if resp, _ := e.raw("GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: x\r\nX-Small: " + strings.Repeat("a", 512) + "\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("small header: %d", resp.StatusCode)
	}
}

func TestSlowloris(t *testing.T) {
	e := newEnv(t, withServerOptions(proxy.ServerOptions{ReadHeaderTimeout: 200 * time.Millisecond}))
	t.Run("stalled", func(t *testing.T) {
		c := e.dial()
		io.WriteString(c, "GET "+e.origin.URL+"/ HTTP/1.1\r\nHost: x\r\n")
		expectClosed(t, c, c)
	})
	t.Run("trickle", func(t *testing.T) {
		// One header byte at a time never completes the header; the
		// timeout covers the whole header, not each read.
		c := e.dial()
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			io.Copy(io.Discard, c)
		}()
		io.WriteString(c, "GET "+e.origin.URL+"/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		for i := 0; ; i++ {
			if i == 500 {
				t.Fatal("proxy still reading a header trickled for 500 rounds")
			}
			select {
			case <-closed:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := c.Write([]byte{'a'}); err != nil {
				<-closed
				return
			}
		}
	})
	if n := e.srv.Stats().Connections; n > 0 {
		eventually(t, "slow connections to be forgotten", func() bool { return e.srv.Stats().Connections == 0 })
	}
}

func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*proxy.Options)
		status int
	}{
		{"per client", func(o *proxy.Options) { o.MaxConnectionsPerClient = 2 }, http.StatusTooManyRequests},
		{"total", func(o *proxy.Options) { o.MaxConnections = 2 }, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, withMetrics(), func(o *proxy.Options, _ *env) { tt.cfg(o) })
			url := e.origin.URL + "/"
			// Two connections, each used once and then left idle.
			var conns []net.Conn
			for range 2 {
				c := e.dial()
				if resp, _ := get(t, c, bufio.NewReader(c), url); resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				conns = append(conns, c)
			}
			if n := e.srv.Stats().Connections; n != 2 {
				t.Fatalf("Stats().Connections = %d, want 2", n)
			}
			// The third is refused with a status and closed.
			c3 := e.dial()
			br := bufio.NewReader(c3)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("third connection: %v", err)
			}
			io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("third connection: status %d, want %d", resp.StatusCode, tt.status)
			}
			expectClosed(t, c3, br)
			if got := e.metric("waygate_proxy_denied_total", map[string]string{"reason": "connection_limit"}); got != 1 {
				t.Errorf("denied_total{connection_limit} = %v, want 1", got)
			}

			// Closing one makes room.
			conns[0].Close()
			eventually(t, "the closed connection to be forgotten", func() bool { return e.srv.Stats().Connections == 1 })
			c4 := e.dial()
			if resp, body := get(t, c4, bufio.NewReader(c4), url); resp.StatusCode != 200 || body != "hello from origin" {
				t.Fatalf("after a close: %d %q", resp.StatusCode, body)
			}
			// The idle survivor still works.
			if resp, _ := get(t, conns[1], bufio.NewReader(conns[1]), url); resp.StatusCode != 200 {
				t.Fatalf("idle connection: %d", resp.StatusCode)
			}
		})
	}
}

func TestTunnelLimits(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*proxy.Options)
		status int
	}{
		{"per client", func(o *proxy.Options) { o.MaxTunnelsPerClient = 1 }, http.StatusTooManyRequests},
		{"total", func(o *proxy.Options) { o.MaxTunnels = 1 }, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *proxy.Options, _ *env) { tt.cfg(o) })
			target := e.tls.Listener.Addr().String()
			first, resp := e.connect(target, "")
			if first == nil {
				t.Fatalf("first tunnel: %s", resp.Status)
			}
			defer first.Close()
			if n := e.srv.Stats().Tunnels; n != 1 {
				t.Fatalf("Stats().Tunnels = %d, want 1", n)
			}
			second, resp := e.connect(target, "")
			if second != nil {
				second.Close()
				t.Fatal("second tunnel opened over the limit")
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), "Too many tunnels") {
				t.Fatalf("second tunnel: %d %q", resp.StatusCode, body)
			}
			if tt.status == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			// The first tunnel is unaffected.
			tc := e.tlsOver(first, "127.0.0.1")
			if resp, body := tunnelGet(t, tc, "/"); resp.StatusCode != 200 || body != "hello from origin" {
				t.Fatalf("first tunnel: %d %q", resp.StatusCode, body)
			}
			tc.Close()
			eventually(t, "the closed tunnel to be forgotten", func() bool { return e.srv.Stats().Tunnels == 0 })
			third, resp := e.connect(target, "")
			if third == nil {
				t.Fatalf("tunnel after the first closed: %s", resp.Status)
			}
			third.Close()
		})
	}
}

// tunnelGet sends a GET over an established tunnel (plain or TLS) and
// returns the response with its body read.
func tunnelGet(t testing.TB, c net.Conn, path string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatalf("writing to the tunnel: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading from the tunnel: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body from the tunnel: %v", err)
	}
	return resp, string(body)
}

func TestTunnelIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	e := newEnv(t, func(o *proxy.Options, _ *env) { o.TunnelIdle = idle })
	target := e.tls.Listener.Addr().String()

	t.Run("idle", func(t *testing.T) {
		c, resp := e.connect(target, "")
		if c == nil {
			t.Fatalf("CONNECT: %s", resp.Status)
		}
		defer c.Close()
		expectClosed(t, c, c)
		eventually(t, "the idle tunnel to be forgotten", func() bool { return e.srv.Stats().Tunnels == 0 })
	})

	t.Run("ping-pong", func(t *testing.T) {
		c, resp := e.connect(target, "")
		if c == nil {
			t.Fatalf("CONNECT: %s", resp.Status)
		}
		defer c.Close()
		tc := e.tlsOver(c, "127.0.0.1")
		start := time.Now()
		// At least 10 round trips 50ms apart and more than three idle
		// periods in all; bounded at 100.
		for i := 0; i < 100 && (i < 10 || time.Since(start) < 3*idle); i++ {
			if resp, body := tunnelGet(t, tc, "/"); resp.StatusCode != 200 || body != "hello from origin" {
				t.Fatalf("round trip %d: %d %q", i, resp.StatusCode, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n := e.srv.Stats().Tunnels; n != 1 {
			t.Errorf("Stats().Tunnels = %d, want 1", n)
		}
	})

	t.Run("one-way stream", func(t *testing.T) {
		// Bytes flow only from the origin (the TLS client sends nothing
		// while it reads the body): that is traffic, not idleness.
		const chunks = 30
		e.handle("/drip", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			for i := range chunks {
				io.WriteString(w, strconv.Itoa(i%10))
				w.(http.Flusher).Flush()
				select {
				case <-time.After(50 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		}))
		c, resp := e.connect(target, "")
		if c == nil {
			t.Fatalf("CONNECT: %s", resp.Status)
		}
		defer c.Close()
		tc := e.tlsOver(c, "127.0.0.1")
		tc.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(tc, "GET /drip HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || len(body) != chunks {
			t.Fatalf("stream cut after %d of %d bytes: %v", len(body), chunks, err)
		}
	})
}

func TestTunnelBytesMetric(t *testing.T) {
	e := newEnv(t, withMetrics())
	const size = 1 << 20
	e.handle("/bytes", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(make([]byte, size))
	}))
	c, resp := e.connect(e.tls.Listener.Addr().String(), "")
	if c == nil {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	tc := e.tlsOver(c, "127.0.0.1")
	resp, body := tunnelGet(t, tc, "/bytes")
	if resp.StatusCode != 200 || len(body) != size {
		t.Fatalf("got %d, %d bytes", resp.StatusCode, len(body))
	}
	if got := e.metric("waygate_proxy_tunnels_open", nil); got != 1 {
		t.Errorf("tunnels_open = %v with a tunnel open", got)
	}
	tc.Close()
	down := map[string]string{"kind": "connect", "direction": "down"}
	eventually(t, "tunnel bytes in the metrics", func() bool { return e.metric("waygate_proxy_bytes_total", down) >= size })
	if got := e.metric("waygate_proxy_bytes_total", map[string]string{"kind": "connect", "direction": "up"}); got <= 0 {
		t.Errorf("bytes_total{connect,up} = %v", got)
	}
	if got := e.metric("waygate_proxy_requests_total", map[string]string{"kind": "connect", "code": "2xx"}); got != 1 {
		t.Errorf("requests_total{connect,2xx} = %v, want 1", got)
	}
	if got := e.metric("waygate_proxy_tunnels_open", nil); got != 0 {
		t.Errorf("tunnels_open = %v after the tunnel closed", got)
	}
}

func TestClientGoneIs499(t *testing.T) {
	e := newEnv(t, withMetrics())
	started := make(chan struct{}, 1)
	canceled := make(chan struct{}, 1)
	e.handle("/hang", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	}))
	c := e.dial()
	io.WriteString(c, "GET "+e.origin.URL+"/hang HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("request did not reach the origin")
	}
	c.Close()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the origin request was not canceled after the client went away")
	}
	http4xx := map[string]string{"kind": "http", "code": "4xx"}
	eventually(t, "the request to be recorded", func() bool { return e.metric("waygate_proxy_requests_total", http4xx) == 1 })
	if got := e.metric("waygate_proxy_upstream_errors_total", map[string]string{"cause": "canceled"}); got != 1 {
		t.Errorf("upstream_errors_total{canceled} = %v, want 1", got)
	}
	for _, code := range []string{"2xx", "5xx"} {
		if got := e.metric("waygate_proxy_requests_total", map[string]string{"kind": "http", "code": code}); got != 0 {
			t.Errorf("requests_total{http,%s} = %v, want 0", code, got)
		}
	}
}

func TestResponseHeaderTimeoutPage(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options, _ *env) { o.ResponseHeaderTimeout = 200 * time.Millisecond })
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.handle("/silent", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	resp, body := e.raw("GET " + e.origin.URL + "/silent HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "did not answer in time") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
}
