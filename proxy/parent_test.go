package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"waygate/proxy"
)

// TestParentProxy chains two gateways: the child sends everything through
// the parent, and still applies its own destination guard first.
func TestParentProxy(t *testing.T) {
	parent := newEnv(t)
	child := newEnv(t, func(o *proxy.Options, _ *env) {
		o.Parent = parent.proxyURL
		// The parent must be allowed to CONNECT to the child's TLS origin.
		o.ConnectPorts = append(o.ConnectPorts, portOf(t, parent.tls.URL))
	})
	// The parent's origins are the targets; its guard allows 127.0.0.1 and
	// its CONNECT ports include its TLS origin.
	resp, err := child.client().Get(parent.origin.URL + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "GET " {
		t.Fatalf("HTTP through the parent: %d %q", resp.StatusCode, body)
	}
	via := parent.lastSeen().Values("Via")
	if got := strings.Join(via, ", "); strings.Count(got, "1.1 waygate") != 2 {
		t.Errorf("Via at the origin = %q, want both gateways", got)
	}

	conn, r := child.connect(parent.tls.Listener.Addr().String(), "")
	if conn == nil {
		t.Fatalf("CONNECT through the parent: %v", r.Status)
	}
	tc := parent.tlsOver(conn, "127.0.0.1")
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(tc)
	tc.Close()
	if !strings.Contains(string(b), "hello from origin") {
		t.Fatalf("tunnel through the parent: %q", b)
	}

	// The child's guard is applied before the parent is asked.
	resp2, body2 := child.raw("GET http://10.9.9.9/ HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp2.StatusCode != http.StatusForbidden || !strings.Contains(body2, "Destination not allowed") {
		t.Fatalf("denied destination via parent: %d", resp2.StatusCode)
	}
}
