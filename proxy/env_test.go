package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"waygate/proxy"
	"waygate/proxy/upstream"
	"waygate/proxy/upstream/dnstest"
)

// env is a running forward proxy on loopback with a real DNS server behind
// it and an origin to talk to.
type env struct {
	t        testing.TB
	srv      *proxy.Server
	addr     string // proxy host:port
	proxyURL *url.URL
	dns      *dnstest.Server
	opts     proxy.Options
	resolver *upstream.Resolver
	// origin is a plain HTTP origin on 127.0.0.1; tls an HTTPS one.
	origin *httptest.Server
	tls    *httptest.Server
	// seen receives the request headers every origin handler got.
	seen chan http.Header
	// mux serves both origins; tests may add handlers with handle.
	mux *http.ServeMux
	// sopts are the proxy's ServerOptions; configs may change them.
	sopts proxy.ServerOptions
	// reg is the metrics registry when withMetrics is used.
	reg *prometheus.Registry
}

// envConfig adjusts the proxy options before the proxy starts.
type envConfig func(*proxy.Options, *env)

// originMux serves the test origins' endpoints.
func (e *env) originMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		select {
		case e.seen <- r.Header.Clone():
		default:
		}
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "must-not-reach-client")
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, r.Method+" "+string(body))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case e.seen <- r.Header.Clone():
		default:
		}
		io.WriteString(w, "hello from origin")
	})
	return mux
}

// newEnv starts DNS, origins and the proxy. By default loopback clients
// are allowed, 127.0.0.1 is an allowed destination, and CONNECT may reach
// the TLS origin's port.
func newEnv(t testing.TB, configs ...envConfig) *env {
	t.Helper()
	e := &env{t: t, seen: make(chan http.Header, 16)}
	e.mux = e.originMux()
	e.origin = httptest.NewServer(e.mux)
	t.Cleanup(e.origin.Close)
	e.tls = httptest.NewTLSServer(e.mux)
	t.Cleanup(e.tls.Close)

	e.dns = dnstest.Start(t, map[string][]string{
		"origin.test":   {"127.0.0.1"},
		"internal.test": {"10.1.2.3"},
		"mixed.test":    {"127.0.0.1", "192.168.7.7"},
	})
	r, err := upstream.NewResolver(upstream.ResolverConfig{Servers: []string{e.dns.Addr}, HostsFile: "none"})
	if err != nil {
		t.Fatal(err)
	}
	e.resolver = r
	pool := x509.NewCertPool()
	pool.AddCert(e.tls.Certificate())
	e.opts = proxy.Options{
		AllowClients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		ConnectPorts: []uint16{portOf(t, e.tls.URL)},
		Dialer: &upstream.Dialer{
			Resolver: r,
			Guard:    upstream.NewGuard(upstream.GuardConfig{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}),
			Timeout:  5 * time.Second,
		},
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}
	for _, c := range configs {
		c(&e.opts, e)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if e.sopts.ReadHeaderTimeout == 0 {
		e.sopts.ReadHeaderTimeout = 5 * time.Second
	}
	e.srv, err = proxy.New(e.opts, e.sopts)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	go e.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Shutdown(ctx)
	})
	e.addr = ln.Addr().String()
	e.proxyURL = &url.URL{Scheme: "http", Host: e.addr}
	return e
}

// withGuard replaces the destination guard's allow list.
func withGuard(allow ...string) envConfig {
	return func(o *proxy.Options, _ *env) {
		var ps []netip.Prefix
		for _, a := range allow {
			ps = append(ps, netip.MustParsePrefix(a))
		}
		d := *o.Dialer
		d.Guard = upstream.NewGuard(upstream.GuardConfig{Allow: ps})
		o.Dialer = &d
	}
}

// withServerOptions sets the proxy's ServerOptions (a zero
// ReadHeaderTimeout still means the harness default of 5s).
func withServerOptions(so proxy.ServerOptions) envConfig {
	return func(_ *proxy.Options, e *env) {
		m := e.sopts.Metrics
		e.sopts = so
		if so.Metrics == nil {
			e.sopts.Metrics = m
		}
	}
}

// withMetrics exports the proxy's metrics to a fresh registry in e.reg.
func withMetrics() envConfig {
	return func(_ *proxy.Options, e *env) {
		e.reg = prometheus.NewRegistry()
		e.sopts.Metrics = proxy.NewMetrics(e.reg)
	}
}

// handle adds a handler to both origins. ServeMux allows registration
// while serving.
func (e *env) handle(pattern string, h http.Handler) {
	e.mux.Handle(pattern, h)
}

// metric returns the value of the counter or gauge name with exactly the
// given labels, or -1 when there is no such series.
func (e *env) metric(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// eventually polls cond until it holds or a generous deadline passes, for
// state that changes asynchronously (a connection closing on the server
// side). It fails the test at the deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dial opens a raw connection to the proxy, closed at the end of the test,
// with a deadline so that no read can hang the test.
func (e *env) dial() net.Conn {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	e.t.Cleanup(func() { c.Close() })
	return c
}

func portOf(t testing.TB, rawURL string) uint16 {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return uint16(p)
}

// client returns an HTTP client that uses the proxy and trusts the TLS
// origin.
func (e *env) client() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.tls.Certificate())
	tr := &http.Transport{
		Proxy:           http.ProxyURL(e.proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// raw sends a request written by hand to the proxy and returns the
// response with its body read.
func (e *env) raw(req string) (*http.Response, string) {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatalf("reading response to %q: %v", firstLine(req), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// originHost returns the origin's host:port with 127.0.0.1 replaced by
// host.
func originHostAs(originURL, host string) string {
	u, _ := url.Parse(originURL)
	return net.JoinHostPort(host, u.Port())
}

// lastSeen returns the headers of the last request an origin saw.
func (e *env) lastSeen() http.Header {
	e.t.Helper()
	select {
	case h := <-e.seen:
		return h
	case <-time.After(10 * time.Second):
		e.t.Fatal("origin saw no request")
		return nil
	}
}

// connect opens a CONNECT tunnel to target and returns the raw connection
// after the proxy's 200, or the non-200 response.
func (e *env) connect(target string, extraHeaders string) (net.Conn, *http.Response) {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n"+extraHeaders+"\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		e.t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		c.Close()
		return nil, resp
	}
	c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		e.t.Fatalf("proxy sent %d bytes after the CONNECT 200", br.Buffered())
	}
	return c, resp
}

// tlsOver runs a TLS client handshake with the TLS origin over c.
func (e *env) tlsOver(c net.Conn, serverName string) *tls.Conn {
	e.t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(e.tls.Certificate())
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: serverName})
	if err := tc.Handshake(); err != nil {
		e.t.Fatalf("TLS through tunnel: %v", err)
	}
	return tc
}
