package proxy_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"waygate/audit"
	"waygate/proxy"
)

func TestForwardMethods(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		t.Run(method, func(t *testing.T) {
			req, _ := http.NewRequest(method, e.origin.URL+"/echo", strings.NewReader("payload"))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != method+" payload" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Method"); got != method {
				t.Errorf("X-Method = %q", got)
			}
			if resp.Header.Get("X-Secret-Hop") != "" {
				t.Errorf("header named in the origin's Connection reached the client")
			}
			if v := resp.Header.Get("Via"); v != "1.1 waygate" {
				t.Errorf("response Via = %q", v)
			}
			e.lastSeen()
		})
	}
}

func TestHeaderPolicy(t *testing.T) {
	e := newEnv(t)
	req := "GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: " + e.origin.Listener.Addr().String() + "\r\n" +
		"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nProxy-Connection: keep-alive\r\n" +
		"Keep-Alive: timeout=5\r\nUpgrade: h2c\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n" +
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nX-Keep: yes\r\n\r\n"
	resp, _ := e.raw(req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := e.lastSeen()
	for _, k := range []string{"X-Hop", "Proxy-Connection", "Keep-Alive", "Upgrade", "X-Forwarded-For", "Forwarded", "Proxy-Authorization"} {
		if v := h.Get(k); v != "" {
			t.Errorf("origin got %s: %q", k, v)
		}
	}
	if got := h.Get("Via"); got != "1.1 waygate" {
		t.Errorf("Via = %q, want 1.1 waygate", got)
	}
	if got := h.Get("Te"); got != "trailers" {
		t.Errorf("TE = %q, want trailers kept", got)
	}
	if got := h.Get("X-Keep"); got != "yes" {
		t.Errorf("end-to-end header lost: X-Keep = %q", got)
	}
	if got := h.Get("User-Agent"); got != "" {
		t.Errorf("proxy added User-Agent %q", got)
	}
}

func TestForwardedForOption(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options, _ *env) { o.ForwardedFor = true })
	resp, err := e.client().Get(e.origin.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := e.lastSeen().Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", got)
	}
}

func TestClientNotAllowed(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options, _ *env) {
		o.AllowClients = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	resp, body := e.raw("GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not allowed to use this proxy") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	select {
	case <-e.seen:
		t.Fatal("request from a client outside allow_clients reached the origin")
	default:
	}
	conn, resp := e.connect(e.tls.Listener.Addr().String(), "")
	if conn != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT from a client not allowed: %v", resp.Status)
	}
}

func TestConnectTLSOrigin(t *testing.T) {
	e := newEnv(t)
	resp, err := e.client().Get(e.tls.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from origin" {
		t.Fatalf("body %q", body)
	}
	if st := e.srv.Stats(); st.Tunnels > 1 {
		t.Errorf("tunnels open = %d", st.Tunnels)
	}
}

func TestConnectPortNotAllowed(t *testing.T) {
	e := newEnv(t)
	// The plain origin's port is not in ConnectPorts.
	conn, resp := e.connect(e.origin.Listener.Addr().String(), "")
	if conn != nil {
		t.Fatal("tunnel opened to a port not allowed")
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "not allowed") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if conn, resp := e.connect("127.0.0.1:25", ""); conn != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT to port 25: %v", resp.Status)
	}
}

func TestDestinationGuard(t *testing.T) {
	port := func(e *env) string { return e.origin.URL[strings.LastIndex(e.origin.URL, ":"):] }
	hosts := []string{"127.0.0.2", "[::ffff:127.0.0.1]", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "internal.test", "mixed.test"}
	t.Run("denied", func(t *testing.T) {
		e := newEnv(t, withGuard())
		for _, h := range hosts {
			resp, body := e.raw("GET http://" + h + port(e) + "/ HTTP/1.1\r\nHost: " + h + "\r\n\r\n")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Destination not allowed") {
				t.Errorf("%s: got %d, want 403 destination page; body %q", h, resp.StatusCode, body)
			}
		}
		select {
		case <-e.seen:
			t.Fatal("a denied destination reached the origin")
		default:
		}
	})
	t.Run("allowed", func(t *testing.T) {
		e := newEnv(t, withGuard("127.0.0.0/8"))
		for _, h := range []string{"[::ffff:127.0.0.1]", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "origin.test"} {
			resp, body := e.raw("GET http://" + h + port(e) + "/ HTTP/1.1\r\nHost: " + h + "\r\n\r\n")
			if resp.StatusCode != http.StatusOK || body != "hello from origin" {
				t.Errorf("%s: got %d %q", h, resp.StatusCode, body)
			}
		}
	})
	t.Run("connect", func(t *testing.T) {
		e := newEnv(t, withGuard())
		target := originHostAs(e.tls.URL, "127.0.0.1")
		conn, resp := e.connect(target, "")
		if conn != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("CONNECT to a loopback destination: %v", resp.Status)
		}
	})
}

func TestSelfSignedOriginRefused(t *testing.T) {
	// The proxy does its own TLS for absolute-form https requests; with the
	// system roots only, the test origin's certificate must fail.
	e := newEnv(t, func(o *proxy.Options, _ *env) { o.TLS = nil })
	resp, body := e.raw("GET " + e.tls.URL + "/ HTTP/1.1\r\nHost: " + e.tls.Listener.Addr().String() + "\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Secure connection failed") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if strings.Contains(body, "x509:") && !strings.Contains(body, "certificate") {
		t.Errorf("page shows a raw Go error: %q", body)
	}
}

func TestUpstreamErrorPages(t *testing.T) {
	e := newEnv(t, withGuard("127.0.0.0/8"))
	// A port that was listening and is closed now: connection refused.
	closed := newEnv(t, withGuard("127.0.0.0/8"))
	closed.origin.Close()
	dead := closed.origin.Listener.Addr().String()
	tests := []struct {
		name, url string
		status    int
		text      string
	}{
		{"refused", "http://" + dead + "/", http.StatusBadGateway, "refused the connection"},
		{"nxdomain", "http://nosuch.test/", http.StatusBadGateway, "does not exist"},
		{"bad scheme", "ftp://origin.test/", http.StatusBadRequest, "Unsupported protocol"},
		{"unsafe port", "http://origin.test:25/", http.StatusForbidden, "Port not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.raw("GET " + tt.url + " HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.text) {
				t.Fatalf("got %d, want %d with %q; body %q", resp.StatusCode, tt.status, tt.text, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestProxyAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *proxy.Options, _ *env) {
		o.Auth = proxy.AuthOptions{Realm: "Corp", Users: map[string]string{"alice": string(hash)}, FailuresPerMinute: 3}
	})
	get := "GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: x\r\n"
	basic := func(u, p string) string {
		return "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) + "\r\n"
	}

	resp, _ := e.raw(get + "\r\n")
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("no credentials: %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Proxy-Authenticate"); !strings.Contains(got, `Basic realm="Corp"`) {
		t.Errorf("Proxy-Authenticate = %q", got)
	}

	resp, _ = e.raw(get + basic("alice", "s3cret") + "\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("good credentials: %d", resp.StatusCode)
	}
	if got := e.lastSeen().Get("Proxy-Authorization"); got != "" {
		t.Errorf("Proxy-Authorization reached the origin: %q", got)
	}

	if conn, resp := e.connect(e.tls.Listener.Addr().String(), ""); conn != nil || resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("CONNECT without credentials: %v", resp.Status)
	}
	conn, _ := e.connect(e.tls.Listener.Addr().String(), basic("alice", "s3cret"))
	if conn == nil {
		t.Fatal("CONNECT with credentials refused")
	}
	conn.Close()

	// Wrong passwords: 407 until the per-client budget is spent, then 429.
	var statuses []int
	for range 5 {
		resp, _ := e.raw(get + basic("alice", "wrong") + "\r\n")
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != http.StatusProxyAuthRequired || statuses[len(statuses)-1] != http.StatusTooManyRequests {
		t.Fatalf("wrong-password statuses %v, want 407s then 429", statuses)
	}
	// Unknown user is answered like a wrong password.
	if resp, _ := e.raw(get + basic("mallory", "x") + "\r\n"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("throttled client, unknown user: %d", resp.StatusCode)
	}
}

func TestPAC(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options, _ *env) {
		o.PAC = proxy.PACOptions{
			ListenPort:     3128,
			DirectDomains:  []string{"corp.example"},
			DirectNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		}
	})
	for _, path := range []string{"/proxy.pac", "/wpad.dat"} {
		resp, body := e.raw("GET " + path + " HTTP/1.1\r\nHost: gw.corp.example:3128\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ns-proxy-autoconfig" {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		for _, want := range []string{
			"function FindProxyForURL(url, host)",
			`dnsDomainIs(host, ".corp.example")`,
			`isInNet(host, "10.0.0.0", "255.0.0.0")`,
			`return "PROXY gw.corp.example:3128";`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: missing %q in\n%s", path, want, body)
			}
		}
	}
	// A hostile Host header must not end up in the script.
	_, body := e.raw("GET /proxy.pac HTTP/1.1\r\nHost: \"+alert(1)+\"\r\n\r\n")
	if strings.Contains(body, "alert") {
		t.Errorf("Host header injected into the PAC file:\n%s", body)
	}
	resp, _ := e.raw("GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown local path: %d", resp.StatusCode)
	}
}

func TestUserinfoNotForwarded(t *testing.T) {
	e := newEnv(t)
	u := strings.Replace(e.origin.URL, "http://", "http://user:secret@", 1)
	resp, _ := e.raw("GET " + u + "/ HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.lastSeen().Get("Authorization"); got != "" {
		t.Errorf("userinfo became Authorization %q at the origin", got)
	}
}

func TestOpenTunnelsListed(t *testing.T) {
	e := newEnv(t)
	if n := len(e.srv.Tunnels()); n != 0 {
		t.Fatalf("%d tunnels before any", n)
	}
	target := e.tls.Listener.Addr().String()
	conn, _ := e.connect(target, "")
	if conn == nil {
		t.Fatal("CONNECT refused")
	}
	tc := e.tlsOver(conn, "127.0.0.1")
	ts := e.srv.Tunnels()
	if len(ts) != 1 || ts[0].Target != target || ts[0].Client.String() != "127.0.0.1" || ts[0].RequestID == "" {
		t.Fatalf("open tunnels: %+v", ts)
	}
	tc.Close()
	eventually(t, "the closed tunnel leaves the list", func() bool { return len(e.srv.Tunnels()) == 0 })
}

// eventSink keeps the audit events a test proxy records.
type eventSink struct {
	mu     sync.Mutex
	events []audit.Event
}

func (s *eventSink) Record(e *audit.Event) {
	s.mu.Lock()
	s.events = append(s.events, *e)
	s.mu.Unlock()
}

func (s *eventSink) byPath(path string) (audit.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.Path == path {
			return e, true
		}
	}
	return audit.Event{}, false
}

// TestAuditUpstreamAddress checks that the address dialed is recorded both
// for requests on the synchronous HTTP/1.1 path and for those net/http's
// transport carries (bodies, https).
func TestAuditUpstreamAddress(t *testing.T) {
	sink := &eventSink{}
	e := newEnv(t, func(_ *proxy.Options, e *env) { e.sopts.Audit = sink })
	c := e.client()
	origin := e.origin.Listener.Addr().String()
	for _, tc := range []struct {
		method, path string
		body         io.Reader
	}{
		{http.MethodGet, "/echo?get", nil},
		{http.MethodPost, "/echo/post", strings.NewReader("payload")},
	} {
		req, _ := http.NewRequest(tc.method, e.origin.URL+tc.path, tc.body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for _, path := range []string{"/echo", "/echo/post"} {
		var ev audit.Event
		deadline := time.Now().Add(5 * time.Second)
		for {
			var ok bool
			if ev, ok = sink.byPath(path); ok || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if ev.Upstream != origin {
			t.Errorf("%s: upstream %q, want %q", path, ev.Upstream, origin)
		}
	}
}
