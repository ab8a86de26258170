package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"waygate/proxy"
	"waygate/proxy/upstream"
)

// TestGuardExemptThroughProxy runs a real forward proxy whose guard
// exempts exactly one loopback origin (as the proxy lab's echo origin is):
// plain HTTP and CONNECT reach that address and port, and nothing else on
// loopback does: not another port, not another loopback address, not the
// proxy's own listener even when the exemption names it.
func TestGuardExemptThroughProxy(t *testing.T) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "exempt origin") })
	origin := httptest.NewServer(hello)
	t.Cleanup(origin.Close)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other loopback server was reached: %s %s", r.Method, r.URL)
	}))
	t.Cleanup(other.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self := netip.MustParseAddrPort(ln.Addr().String())
	originAP := netip.MustParseAddrPort(origin.Listener.Addr().String())
	otherAP := netip.MustParseAddrPort(other.Listener.Addr().String())
	srv, err := proxy.New(proxy.Options{
		AllowClients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		ConnectPorts: []uint16{originAP.Port(), otherAP.Port(), self.Port()},
		Dialer: &upstream.Dialer{
			Guard: upstream.NewGuard(upstream.GuardConfig{
				Exempt: []netip.AddrPort{originAP, self},
				Self:   []netip.AddrPort{self},
			}),
			Timeout: 5 * time.Second,
		},
	}, proxy.ServerOptions{ReadHeaderTimeout: 5 * time.Second})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: self.String()})}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	port := func(ap netip.AddrPort) string { return fmt.Sprint(ap.Port()) }
	tests := []struct {
		name   string
		target string
		status int
		body   string // a part of the answer
	}{
		{"exempt origin", "http://" + originAP.String() + "/", 200, "exempt origin"},
		{"exempt origin, short spelling", "http://127.1:" + port(originAP) + "/", 200, "exempt origin"},
		{"another loopback port", "http://" + otherAP.String() + "/", 403, "loopback address"},
		{"another loopback address, same port", "http://127.0.0.2:" + port(originAP) + "/", 403, "loopback address"},
		{"IPv6 loopback, same port", "http://[::1]:" + port(originAP) + "/", 403, "loopback address"},
		{"the proxy itself", "http://" + self.String() + "/", 403, "own listen address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Get(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.body) {
				t.Fatalf("got %d %q, want %d with %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}

	// CONNECT takes the same guard.
	for _, tt := range []struct {
		target string
		status int
	}{
		{originAP.String(), 200},
		{otherAP.String(), 403},
		{self.String(), 403},
	} {
		t.Run("CONNECT "+tt.target, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", self.String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", tt.target, tt.target)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("CONNECT %s: %d, want %d", tt.target, resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				return
			}
			// Through the tunnel to the exempt origin.
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tt.target)
			r2, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r2.Body)
			r2.Body.Close()
			if string(b) != "exempt origin" {
				t.Fatalf("through the tunnel: %d %q", r2.StatusCode, b)
			}
		})
	}
}
