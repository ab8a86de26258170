package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/html"

	"waygate/cmd/waygate/internal/config"
	"waygate/proxy/upstream"
	"waygate/reverse"
)

// The proxy lab: two live demonstrations, for the web UI's lab page, of
// what a forward proxy and a reverse proxy each show and hide.
//
//	forward: lab client -> the gateway's forward proxy -> built-in echo origin
//	reverse: lab client -> lab reverse listener (TLS)  -> built-in demo app
//
// Everything listens on 127.0.0.1, on ephemeral ports, while the admin UI
// runs. The forward demonstration goes through the real forward proxy,
// whose guard exempts exactly the echo origin's address and port (see
// upstream.GuardConfig.Exempt). The reverse one goes through a real
// reverse.Server with its own self-signed certificate and one route, whose
// requests are audited as kind reverse like every reverse route.

const (
	// labHost is the name the lab's reverse listener serves, and its
	// certificate's name (.test is reserved, RFC 2606: it never resolves).
	labHost = "lab.waygate.test"
	// labRoute names the lab's reverse route in audit events.
	labRoute = "proxy-lab"
	// labTimeout bounds one demonstration, connection to answer.
	labTimeout = 5 * time.Second
	// labMaxRuns is how many demonstrations may run at once; more are
	// answered "busy" in their result.
	labMaxRuns = 4
	// labMaxBody is the most of an answer the lab client reads.
	labMaxBody = 1 << 20
	// labServerHeader marks the answers of the lab's own servers, so that
	// the client can tell them from an answer the gateway made itself
	// (a block page, say). Its value names the server.
	labServerHeader = "X-Waygate-Lab"
	// labForwardPath and labReversePath are the paths the lab asks for.
	labForwardPath = "/lab/forward"
	labReversePath = "/lab/reverse"
)

// labClientAddr is the loopback address the lab client connects from when
// it can, so that the client's address differs from the gateway's
// (127.0.0.1) in what the origin and the app see. Linux routes all of
// 127.0.0.0/8 to the loopback interface; elsewhere binding it may fail,
// and the client then connects from the default address.
var labClientAddr = netip.MustParseAddr("127.0.0.2")

// lab runs the proxy lab's servers and demonstrations. It implements
// webui.Lab. A nil *lab is not used: the UI gets no Lab when the lab could
// not start.
type lab struct {
	log *slog.Logger
	// allowsClient reports whether the running forward proxy config lets
	// a client at the given address in (proxy.allow_clients).
	allowsClient func(netip.Addr) bool

	proxyAddr netip.AddrPort // the forward proxy, as the lab dials it
	echoAddr  netip.AddrPort // the echo origin
	appAddr   netip.AddrPort // the demo app
	revAddr   netip.AddrPort // the lab's reverse listener (TLS)

	echo, app *http.Server
	rev       *reverse.Server
	lns       []net.Listener    // the three listeners, closed at shutdown
	cert      *x509.Certificate // the reverse listener's certificate
	roots     *x509.CertPool    // cert, the only root the lab client trusts

	runs   chan struct{}      // one token per demonstration running
	ctx    context.Context    // canceled by shutdown: ends runs in flight
	cancel context.CancelFunc // cancels ctx
	wg     sync.WaitGroup     // the Serve goroutines
}

// startLab starts the lab's servers for the gateway g (with its forward
// proxy listener open), or returns nil and logs why it could not: the lab
// is a demonstration, and the gateway runs without it.
func (g *gateway) startLab(cfg *config.Config) *lab {
	l, err := newLab(g, cfg)
	if err != nil {
		g.log.Warn("proxy lab not started; the lab page will say it is unavailable", "error", err)
		return nil
	}
	g.log.Info("proxy lab running", "echo_origin", l.echoAddr.String(), "demo_app", l.appAddr.String(),
		"reverse", l.revAddr.String(), "forward_proxy", l.proxyAddr.String())
	return l
}

// newLab opens the lab's three listeners and serves them.
func newLab(g *gateway, cfg *config.Config) (_ *lab, err error) {
	l := &lab{log: g.log, runs: make(chan struct{}, labMaxRuns)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.allowsClient = func(a netip.Addr) bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return slices.ContainsFunc(g.cfg.Proxy.AllowClients, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	l.proxyAddr = dialableAddr(g.proxyLn.Addr())
	var lns []net.Listener
	defer func() {
		if err != nil {
			l.cancel()
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	listen := func(what string) (net.Listener, netip.AddrPort, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, netip.AddrPort{}, fmt.Errorf("proxy lab %s: %w", what, err)
		}
		lns = append(lns, ln)
		return ln, ln.Addr().(*net.TCPAddr).AddrPort(), nil
	}
	echoLn, echoAddr, err := listen("echo origin")
	if err != nil {
		return nil, err
	}
	appLn, appAddr, err := listen("demo app")
	if err != nil {
		return nil, err
	}
	revLn, revAddr, err := listen("reverse listener")
	if err != nil {
		return nil, err
	}
	l.echoAddr, l.appAddr, l.revAddr = echoAddr, appAddr, revAddr
	l.lns = lns

	// The lab's reverse proxy: a real reverse.Server with one route to
	// the demo app, TLS on a self-signed certificate kept in
	// data_dir/lab. Its dialer reaches the demo app and no other
	// internal address.
	dir := filepath.Join(cfg.DataDir, "lab")
	self := append(listenerAddrs(g.selfAddrs()), revAddr)
	dialer := &upstream.Dialer{
		Guard:   upstream.NewGuard(upstream.GuardConfig{Exempt: []netip.AddrPort{appAddr}, Self: self}),
		Timeout: labTimeout,
	}
	l.rev, err = reverse.New(reverse.Options{
		Dial:              dialer.DialContext,
		Audit:             g.audit,
		Logger:            g.log,
		DataDir:           dir,
		ReadHeaderTimeout: labTimeout,
		IdleTimeout:       labTimeout,
	}, reverse.Config{
		TLS:       true,
		HTTPSPort: revAddr.Port(),
		Routes: []reverse.Route{{
			Name:            labRoute,
			Match:           reverse.RouteMatch{Hosts: []string{labHost}, PathPrefix: "/"},
			Backends:        []reverse.BackendConfig{{URL: &url.URL{Scheme: "http", Host: appAddr.String()}}},
			SecurityHeaders: securityHeaders(cfg.Reverse.SecurityHeaders),
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("proxy lab reverse proxy: %w", err)
	}
	if l.cert, err = readLabCert(filepath.Join(dir, reverse.SelfSignedCertFile)); err != nil {
		l.rev.Shutdown(l.ctx)
		return nil, err
	}
	l.roots = x509.NewCertPool()
	l.roots.AddCert(l.cert)

	l.echo = labServer("echo origin", g.log)
	l.app = labServer("demo app", g.log)
	serve := func(name string, fn func() error) {
		l.wg.Go(func() {
			if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.log.Warn("proxy lab: server stopped", "server", name, "error", err)
			}
		})
	}
	serve("echo origin", func() error { return l.echo.Serve(echoLn) })
	serve("demo app", func() error { return l.app.Serve(appLn) })
	serve("reverse", func() error { return l.rev.ServeTLS(revLn) })
	return l, nil
}

// readLabCert reads the first certificate of a PEM file.
func readLabCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("proxy lab certificate: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("proxy lab certificate %s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("proxy lab certificate %s: %w", path, err)
	}
	return c, nil
}

// dialableAddr is a listener's address as a local client dials it: an
// unspecified address (":3128", "[::]:3128") becomes 127.0.0.1.
func dialableAddr(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.AddrPortFrom(ip, ap.Port())
}

// exempt lists the destinations the forward proxy's guard lets through
// for the lab: its echo origin, that one address and port. A nil *lab
// exempts nothing.
func (l *lab) exempt() []netip.AddrPort {
	if l == nil {
		return nil
	}
	return []netip.AddrPort{l.echoAddr}
}

// addrs are the lab's gateway-side listen address (its reverse listener),
// which no outbound connection of the gateway may reach. A nil *lab has
// none.
func (l *lab) addrs() []net.Addr {
	if l == nil {
		return nil
	}
	return []net.Addr{net.TCPAddrFromAddrPort(l.revAddr)}
}

// shutdown stops the lab's servers, ending demonstrations in flight, and
// waits for them until ctx is done. A nil *lab does nothing.
func (l *lab) shutdown(ctx context.Context) {
	if l == nil {
		return
	}
	l.cancel()
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{l.echo, l.app} {
		wg.Go(func() {
			if srv.Shutdown(ctx) != nil {
				srv.Close()
			}
		})
	}
	wg.Go(func() { l.rev.Shutdown(ctx) })
	wg.Wait()
	// A server shut down before it began serving leaves its listener open.
	for _, ln := range l.lns {
		ln.Close()
	}
	l.wg.Wait()
}

// close stops the lab at once (the gateway failed to start). A nil *lab
// does nothing.
func (l *lab) close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.shutdown(ctx)
}

// labServer is the echo origin or the demo app: a plain HTTP server that
// answers every request with JSON of what it received.
func labServer(name string, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           labEchoHandler(name),
		ReadHeaderTimeout: labTimeout,
		ReadTimeout:       labTimeout,
		WriteTimeout:      labTimeout,
		IdleTimeout:       labTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// labHeader is one header field (one value of it).
type labHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// labHeaders lists h sorted by name, one entry per value.
func labHeaders(h http.Header) []labHeader {
	out := []labHeader{}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			out = append(out, labHeader{k, v})
		}
	}
	return out
}

// labEcho is what one of the lab's servers saw of a request.
type labEcho struct {
	// Server is "echo origin" or "demo app".
	Server string `json:"server"`
	Method string `json:"method"`
	// Target is the request target as received (the path and query).
	Target string `json:"target"`
	// Host is the Host header (or :authority).
	Host string `json:"host"`
	// Proto is the protocol of the connection, such as "HTTP/1.1".
	Proto string `json:"proto"`
	// RemoteAddr is the address the connection came from.
	RemoteAddr string `json:"remote_addr"`
	// TLS is the TLS version of the connection, or "none".
	TLS string `json:"tls"`
	// Headers are every header field received, by name.
	Headers []labHeader `json:"headers"`
}

// header returns the values of the header name (canonical) in e.
func (e *labEcho) header(name string) []string {
	var out []string
	for _, h := range e.Headers {
		if h.Name == name {
			out = append(out, h.Value)
		}
	}
	return out
}

// labEchoHandler answers with JSON of exactly what it received. It does
// not read the body.
func labEchoHandler(server string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := labEcho{Server: server, Method: r.Method, Target: r.RequestURI, Host: r.Host, Proto: r.Proto,
			RemoteAddr: r.RemoteAddr, TLS: "none", Headers: labHeaders(r.Header)}
		if r.TLS != nil {
			e.TLS = tls.VersionName(r.TLS.Version)
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set(labServerHeader, server)
		json.NewEncoder(w).Encode(e)
	})
}

// labFact is one conclusion a demonstration draws, for the page to show
// beside the raw values.
type labFact struct {
	// Key names the fact, stable for tests and the page.
	Key string `json:"key"`
	// Holds says whether what the fact expects of the kind of proxy was
	// seen (false when the configuration or a failure changed it).
	Holds bool `json:"holds"`
	// Text says what was seen, in a sentence.
	Text string `json:"text"`
}

// labAnswer is an answer the gateway made itself instead of passing the
// request on: a block page, a refused destination, an error page. It is
// read from the page, so it shows what the client was shown.
type labAnswer struct {
	Status int `json:"status"`
	// Title is the page's heading ("Destination not allowed").
	Title string `json:"title"`
	// Message is the page's first paragraph.
	Message string `json:"message,omitempty"`
	// Details are the page's listed facts: rule, category, detail,
	// request ID.
	Details []labHeader `json:"details,omitempty"`
}

// labForwardClient is the forward demonstration's client side.
type labForwardClient struct {
	// Address is the client's own address (its end of the connection).
	Address string `json:"address"`
	// Proxy is the address the client connected to: the forward proxy.
	Proxy string `json:"proxy"`
	// URL is the address the client asked for.
	URL string `json:"url"`
	// RequestLine and Headers are the request as the client sent it on
	// the wire to the proxy.
	RequestLine string      `json:"request_line"`
	Headers     []labHeader `json:"headers"`
	// Status and ResponseHeaders are the answer the client got; zero and
	// empty when it got none.
	Status          int         `json:"status,omitempty"`
	ResponseHeaders []labHeader `json:"response_headers"`
}

// labForward is the result of the forward demonstration. Exactly one of
// Origin (the echo origin answered), Refused (the gateway answered
// itself) and Error (no answer) is set.
type labForward struct {
	OK      bool             `json:"ok"`
	Error   string           `json:"error,omitempty"`
	Refused *labAnswer       `json:"refused,omitempty"`
	Client  labForwardClient `json:"client"`
	Origin  *labEcho         `json:"origin,omitempty"`
	Facts   []labFact        `json:"facts"`
	// Millis is how long the demonstration took.
	Millis int64 `json:"millis"`
}

// labCert describes a certificate.
type labCert struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	SelfSigned  bool      `json:"self_signed"`
	SHA256      string    `json:"sha256"` // of the DER, upper-case hex pairs joined by ':'
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	DNSNames    []string  `json:"dns_names"`
	IPAddresses []string  `json:"ip_addresses"`
}

// labReverseClient is the reverse demonstration's client side.
type labReverseClient struct {
	// Address is the client's own address.
	Address string `json:"address"`
	// Connected is the address the client connected to: the gateway.
	Connected string `json:"connected"`
	// URL is the address the client asked for; ServerName the TLS name
	// it asked for and checked the certificate against.
	URL        string `json:"url"`
	ServerName string `json:"server_name"`
	// TLSVersion and ALPN describe the TLS connection; Certificate is the
	// certificate the server presented. Empty when the handshake failed.
	TLSVersion  string   `json:"tls_version,omitempty"`
	ALPN        string   `json:"alpn,omitempty"`
	Certificate *labCert `json:"certificate,omitempty"`
	// Status, Proto and ResponseHeaders are the answer.
	Status          int         `json:"status,omitempty"`
	Proto           string      `json:"proto,omitempty"`
	ResponseHeaders []labHeader `json:"response_headers"`
}

// labReverse is the result of the reverse demonstration. Exactly one of
// App, Refused and Error is set.
type labReverse struct {
	OK      bool             `json:"ok"`
	Error   string           `json:"error,omitempty"`
	Refused *labAnswer       `json:"refused,omitempty"`
	Client  labReverseClient `json:"client"`
	App     *labEcho         `json:"app,omitempty"`
	// AppAddress is where the demo app listens, for the page's diagram:
	// the client never learns it.
	AppAddress string    `json:"app_address"`
	Facts      []labFact `json:"facts"`
	Millis     int64     `json:"millis"`
}

// begin bounds a demonstration: it takes a run token (false when
// labMaxRuns are running) and returns a context that ends after
// labTimeout or at shutdown, and the func that ends the demonstration:
// it writes the milliseconds it took to *millis and gives the token
// back.
func (l *lab) begin(ctx context.Context, millis *int64) (context.Context, func(), bool) {
	select {
	case l.runs <- struct{}{}:
	default:
		return nil, nil, false
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, labTimeout)
	stop := context.AfterFunc(l.ctx, cancel)
	return ctx, func() {
		*millis = time.Since(start).Milliseconds()
		stop()
		cancel()
		<-l.runs
	}, true
}

// labBusy is the error of a demonstration refused for load.
const labBusy = "too many demonstrations are running at once; try again in a moment"

// labExchange is what the lab client's one request of a demonstration
// gave.
type labExchange struct {
	// conn is the connection the client used: its address and the
	// request head it wrote.
	conn *labConn
	// resp is the answer, with its body already read into body (at most
	// labMaxBody); nil when no answer came.
	resp *http.Response
	body []byte
	// err says why no answer came, or why its body could not be read;
	// nil when it could.
	err error
}

// labGet makes the lab client's GET of target through tr, whose connections
// all go to addr (from the local address from, see labDial) and are
// recorded in the exchange's conn; the rest of tr (a forward proxy, TLS)
// is the caller's. The request says it is the lab's and asks for JSON.
func labGet(ctx context.Context, tr *http.Transport, addr netip.AddrPort, from netip.Addr, target string) labExchange {
	x := labExchange{conn: &labConn{}}
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := labDial(ctx, addr, from)
		if err != nil {
			return nil, err
		}
		x.conn.set(c)
		return x.conn, nil
	}
	tr.DisableKeepAlives = true
	tr.ResponseHeaderTimeout = labTimeout
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		x.err = err
		return x
	}
	req.Header.Set("User-Agent", "Waygate-proxy-lab/1")
	req.Header.Set("Accept", "application/json")
	if x.resp, x.err = tr.RoundTrip(req); x.err != nil {
		return x
	}
	defer x.resp.Body.Close()
	x.body, x.err = io.ReadAll(io.LimitReader(x.resp.Body, labMaxBody))
	return x
}

// echo reads the exchange's answer as the echo of the lab server that
// names itself server in labServerHeader. An answer without that name is
// one the gateway made itself (a block page, say): refused describes it.
// Without a readable answer, errText says why, naming peer, what the
// client talked to. Exactly one of the three is set.
func (x labExchange) echo(server, peer string) (e *labEcho, refused *labAnswer, errText string) {
	if x.err != nil {
		return nil, nil, labErrorText(x.err, peer)
	}
	if x.resp.Header.Get(labServerHeader) != server {
		return nil, labPageAnswer(x.resp, x.body), ""
	}
	e = &labEcho{}
	if err := json.Unmarshal(x.body, e); err != nil {
		return nil, nil, "the " + server + "'s answer could not be read: " + err.Error()
	}
	return e, nil, ""
}

// RunForward makes a real request through the gateway's forward proxy to
// the echo origin and reports both sides. Failures are in the result; the
// error is always nil.
func (l *lab) RunForward(ctx context.Context) (any, error) {
	res := &labForward{Facts: []labFact{}}
	res.Client.Proxy = l.proxyAddr.String()
	res.Client.URL = "http://" + l.echoAddr.String() + labForwardPath
	res.Client.Headers, res.Client.ResponseHeaders = []labHeader{}, []labHeader{}
	ctx, done, ok := l.begin(ctx, &res.Millis)
	if !ok {
		res.Error = labBusy
		return res, nil
	}
	defer done()

	// From 127.0.0.2 only when the proxy lets that address in: an admin
	// who allows 127.0.0.1 alone still gets a working lab.
	from := netip.Addr{}
	if l.proxyAddr.Addr().Is4() && l.proxyAddr.Addr().IsLoopback() && l.allowsClient(labClientAddr) {
		from = labClientAddr
	}
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: l.proxyAddr.String()})}
	x := labGet(ctx, tr, l.proxyAddr, from, res.Client.URL)
	res.Client.Address = x.conn.local()
	res.Client.RequestLine, res.Client.Headers = x.conn.request()
	if x.resp != nil {
		res.Client.Status = x.resp.StatusCode
		res.Client.ResponseHeaders = labHeaders(x.resp.Header)
	}
	res.Origin, res.Refused, res.Error = x.echo("echo origin", "the forward proxy at "+l.proxyAddr.String())
	if res.Origin != nil {
		res.OK = true
		res.Facts = forwardFacts(res)
	}
	return res, nil
}

// forwardFacts draws the forward demonstration's conclusions.
func forwardFacts(res *labForward) []labFact {
	e := res.Origin
	client := addrHost(res.Client.Address)
	var facts []labFact
	peer := addrHost(e.RemoteAddr)
	facts = append(facts, labFact{Key: "origin_peer_is_proxy", Holds: e.RemoteAddr != res.Client.Address,
		Text: fmt.Sprintf("The origin's connection came from %s, the gateway; the client is at %s.", e.RemoteAddr, res.Client.Address)})
	if peer == client {
		facts[0].Text = fmt.Sprintf("The origin's connection came from %s, the gateway; the client is at %s (the same host, another connection).",
			e.RemoteAddr, res.Client.Address)
	}
	if via := e.header("Via"); len(via) > 0 {
		facts = append(facts, labFact{Key: "via", Holds: true,
			Text: "The origin saw Via: " + strings.Join(via, ", ") + ": it can tell a proxy carried the request, not for whom."})
	} else {
		facts = append(facts, labFact{Key: "via", Text: "The origin saw no Via header."})
	}
	var leaks []string
	for _, h := range e.Headers {
		if client != "" && strings.Contains(h.Value, client) || h.Name == "X-Forwarded-For" || h.Name == "Forwarded" {
			leaks = append(leaks, h.Name)
		}
	}
	if len(leaks) == 0 {
		facts = append(facts, labFact{Key: "client_address_hidden", Holds: true,
			Text: "No header the origin saw carries the client's address (" + client + "): no X-Forwarded-For, no Forwarded."})
	} else {
		facts = append(facts, labFact{Key: "client_address_hidden",
			Text: "The origin saw the client's address in " + strings.Join(slices.Compact(leaks), ", ") +
				" (proxy.forwarded_for is on)."})
	}
	return facts
}

// RunReverse makes a real TLS request to the lab's reverse listener and
// reports what the client saw and what the demo app saw. Failures are in
// the result; the error is always nil.
func (l *lab) RunReverse(ctx context.Context) (any, error) {
	res := &labReverse{Facts: []labFact{}, AppAddress: l.appAddr.String()}
	res.Client.URL = "https://" + labHost + labReversePath
	res.Client.ServerName = labHost
	res.Client.Connected = l.revAddr.String()
	res.Client.ResponseHeaders = []labHeader{}
	ctx, done, ok := l.begin(ctx, &res.Millis)
	if !ok {
		res.Error = labBusy
		return res, nil
	}
	defer done()

	// lab.waygate.test does not resolve: labGet points the client at the
	// lab listener, as a hosts-file entry or DNS would. The client trusts
	// the lab's own certificate and nothing else, and checks it for
	// lab.waygate.test as any browser would.
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: l.roots, ServerName: labHost, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: labTimeout,
	}
	x := labGet(ctx, tr, l.revAddr, labClientAddr, res.Client.URL)
	res.Client.Address = x.conn.local()
	if resp := x.resp; resp != nil {
		res.Client.Status, res.Client.Proto = resp.StatusCode, resp.Proto
		res.Client.ResponseHeaders = labHeaders(resp.Header)
		if resp.TLS != nil {
			res.Client.TLSVersion = tls.VersionName(resp.TLS.Version)
			res.Client.ALPN = resp.TLS.NegotiatedProtocol
			if len(resp.TLS.PeerCertificates) > 0 {
				res.Client.Certificate = describeCert(resp.TLS.PeerCertificates[0])
			}
		}
	}
	res.App, res.Refused, res.Error = x.echo("demo app", "the gateway's lab listener at "+l.revAddr.String())
	if res.App != nil {
		res.OK = true
		res.Facts = l.reverseFacts(res)
	}
	return res, nil
}

// reverseFacts draws the reverse demonstration's conclusions.
func (l *lab) reverseFacts(res *labReverse) []labFact {
	e := res.App
	client := addrHost(res.Client.Address)
	facts := []labFact{{Key: "client_sees_gateway", Holds: res.Client.Connected == l.revAddr.String(),
		Text: "The client connected to the gateway at " + res.Client.Connected + " and never learns the app's address (" +
			l.appAddr.String() + ")."}}
	if c := res.Client.Certificate; c != nil && c.SHA256 == certFingerprint(l.cert) {
		facts = append(facts, labFact{Key: "gateway_certificate", Holds: true,
			Text: "The certificate the client checked is the gateway's (" + c.Subject + ", for " + labHost +
				"); the app has none: it speaks plain HTTP."})
	} else {
		facts = append(facts, labFact{Key: "gateway_certificate", Text: "The client was not shown the gateway's certificate."})
	}
	xff := strings.Join(e.header("X-Forwarded-For"), ", ")
	facts = append(facts, labFact{Key: "x_forwarded_for", Holds: client != "" && strings.Contains(xff, client),
		Text: "The app's connection came from " + e.RemoteAddr + ", the gateway; it learns the client's address only from X-Forwarded-For: " +
			orNone(xff) + "."})
	proto := strings.Join(e.header("X-Forwarded-Proto"), ", ")
	facts = append(facts, labFact{Key: "forwarded_proto", Holds: proto == "https" && e.TLS == "none",
		Text: "The client used HTTPS (X-Forwarded-Proto: " + orNone(proto) + "), but the app's own connection has TLS: " + e.TLS +
			": the gateway terminated TLS."})
	return facts
}

// orNone is s, or "(none)" for the empty string.
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// addrHost is the address part of "host:port", or s when it has no port.
func addrHost(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

// describeCert summarises c for the page.
func describeCert(c *x509.Certificate) *labCert {
	out := &labCert{Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		// Signed by its own key (CheckSignatureFrom would also want a CA).
		SelfSigned: bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil,
		SHA256:     certFingerprint(c), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		DNSNames: c.DNSNames, IPAddresses: []string{}}
	if out.DNSNames == nil {
		out.DNSNames = []string{}
	}
	for _, ip := range c.IPAddresses {
		out.IPAddresses = append(out.IPAddresses, ip.String())
	}
	return out
}

// certFingerprint is the SHA-256 of c's DER as upper-case hex pairs
// joined by ':', as browsers show it.
func certFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// labDial connects to to, from the local address from when it is valid
// and can be bound there, else from the default address.
func labDial(ctx context.Context, to netip.AddrPort, from netip.Addr) (net.Conn, error) {
	d := net.Dialer{Timeout: labTimeout}
	if from.IsValid() {
		bound := d
		bound.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
		c, err := bound.DialContext(ctx, "tcp", to.String())
		if err == nil || !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return c, err
		}
	}
	return d.DialContext(ctx, "tcp", to.String())
}

// labConn records the start of what the client writes (the request
// head), for the page's "what the client sent".
type labConn struct {
	net.Conn
	mu   sync.Mutex
	head []byte
}

// set makes c the connection (dialed by the transport's goroutine).
func (c *labConn) set(conn net.Conn) {
	c.mu.Lock()
	c.Conn = conn
	c.mu.Unlock()
}

func (c *labConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if room := 32<<10 - len(c.head); room > 0 {
		c.head = append(c.head, p[:min(room, len(p))]...)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// local is the client's end of the connection, or "" before one was made.
func (c *labConn) local() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Conn == nil {
		return ""
	}
	return c.Conn.LocalAddr().String()
}

// request parses the recorded request head.
func (c *labConn) request() (string, []labHeader) {
	c.mu.Lock()
	head := bytes.Clone(c.head)
	c.mu.Unlock()
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return "", []labHeader{}
	}
	h := r.Header.Clone()
	h.Set("Host", r.Host)
	return r.Method + " " + r.RequestURI + " " + r.Proto, labHeaders(h)
}

// labErrorText says in words why the lab client got no answer from what.
func labErrorText(err error, what string) string {
	switch upstream.CauseOf(err) {
	case upstream.CauseTimeout:
		return what + " did not answer within " + labTimeout.String() + "."
	case upstream.CauseCanceled:
		return "The demonstration was stopped: the gateway is shutting down or the page went away."
	case upstream.CauseRefused:
		return what + " refused the connection."
	case upstream.CauseReset:
		return what + " closed the connection before answering."
	case upstream.CauseTLS:
		return "The TLS handshake with " + what + " failed: " + tlsReason(err) + "."
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return what + " closed the connection before answering."
	}
	return "The request to " + what + " failed (" + upstream.CauseOf(err).String() + ")."
}

// tlsReason is the part of a TLS error a person can act on.
func tlsReason(err error) string {
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &hostErr):
		return "the certificate is not valid for " + hostErr.Host
	case errors.As(err, &authErr):
		return "the certificate is not the one the lab trusts"
	case errors.As(err, &invalid):
		return "the certificate is not valid (" + invalid.Detail + ")"
	}
	return "no common protocol or cipher"
}

// labPageAnswer reads an answer the gateway made itself: the heading,
// first paragraph and listed facts of its HTML page, or the start of the
// text of any other answer.
func labPageAnswer(resp *http.Response, body []byte) *labAnswer {
	a := &labAnswer{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/html" {
		a.Message = strings.TrimSpace(clipText(string(body), 300))
		return a
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return a
	}
	var dt string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "h1":
				if t := nodeText(n); t != "" {
					// The error pages put the status before the title.
					a.Title = strings.TrimSpace(strings.TrimPrefix(t, strconv.Itoa(resp.StatusCode)))
				}
				return
			case "p":
				if a.Message == "" {
					a.Message = nodeText(n)
				} else {
					a.Details = append(a.Details, labHeader{"Note", nodeText(n)})
				}
				return
			case "dt":
				dt = nodeText(n)
				return
			case "dd":
				if dt != "" {
					a.Details = append(a.Details, labHeader{dt, nodeText(n)})
					dt = ""
				}
				return
			case "style", "script", "head":
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return a
}

// nodeText is the text inside n, with runs of white space made one space.
func nodeText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return clipText(strings.Join(strings.Fields(b.String()), " "), 500)
}

// clipText shortens s to at most n bytes on a character boundary.
func clipText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n] + "…"
}
