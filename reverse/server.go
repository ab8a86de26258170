package reverse

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"waygate/audit"
)

// Options are the parts of a Server fixed for its lifetime.
type Options struct {
	// Dial opens backend connections: the gateway's guarded dialer.
	// Required.
	Dial DialFunc
	// Audit receives one event per request. Nil means audit.Discard.
	Audit audit.Sink
	// Logger receives operational logs. Nil means none.
	Logger *slog.Logger
	// Metrics are updated per request. Nil means unregistered metrics.
	Metrics *Metrics
	// DataDir is where a self-signed certificate is kept for a TLS listener
	// without certificates. Empty means the working directory.
	DataDir string
	// ReadHeaderTimeout bounds reading a request header (slowloris). Zero
	// means 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Zero means
	// 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request header; larger ones get 431. Zero
	// means 64 KiB.
	MaxHeaderBytes int
	// MaxConnections caps concurrent client connections per listener;
	// beyond it new connections wait to be accepted. Zero means no cap.
	MaxConnections int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Server is the reverse proxy. Its configuration is swapped atomically by
// Apply; its listeners (ServePlain, ServeTLS) stay open across reloads.
type Server struct {
	opts       Options
	log        *slog.Logger
	audit      audit.Sink
	metrics    *Metrics
	now        func() time.Time
	registry   *Registry
	transports *transportCache

	applyMu sync.Mutex // serializes Apply
	state   atomic.Pointer[state]

	idBase string
	seq    atomic.Uint64

	srvMu   sync.Mutex
	servers []*http.Server
	closed  bool
	// upgraded tracks the backend side of switched-protocol (WebSocket)
	// connections, which http.Server.Shutdown cannot see; closing it ends
	// the relay and closes the client side too.
	upgraded sync.Map // *releasingRWBody -> struct{}
}

// state is one compiled configuration.
type state struct {
	cfg       Config
	router    *Router[*route]
	routes    []*route
	pools     *PoolSet
	certs     *CertStore
	trusted   []netip.Prefix
	redirect  bool
	httpsPort uint16
}

// route is one compiled route.
type route struct {
	cfg     Route
	pool    *Pool
	acl     *ClientACL
	limiter *RateLimiter
	maxBody int64
	// security is cfg.SecurityHeaders, compiled.
	security securityHeaderSet
	handler  http.Handler // compression (if on) around dispatch
	// proxy and transport forward requests; dispatch picks the fast path
	// or proxy.
	proxy     *httputil.ReverseProxy
	transport *balancedTransport
	requests  atomic.Uint64
	inFlight  atomic.Int64
	metrics   *routeMetrics

	errMu     sync.Mutex
	lastErr   string
	lastErrAt time.Time
	errors    uint64
}

func (rt *route) noteError(now time.Time, err error) {
	rt.errMu.Lock()
	rt.lastErr, rt.lastErrAt = err.Error(), now
	rt.errors++
	rt.errMu.Unlock()
}

// New returns a Server running cfg. It does not listen: pass listeners to
// ServePlain and ServeTLS.
func New(opts Options, cfg Config) (*Server, error) {
	if opts.Dial == nil {
		return nil, errors.New("reverse: Options.Dial is required")
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		audit:      opts.Audit,
		metrics:    opts.Metrics,
		now:        opts.Now,
		transports: newTransportCache(opts.Dial),
	}
	if s.log == nil {
		s.log = discardLogger()
	}
	if s.audit == nil {
		s.audit = audit.Discard
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var b [4]byte
	rand.Read(b[:])
	s.idBase = "r" + hex.EncodeToString(b[:])
	s.registry = NewRegistry(RegistryOptions{Now: s.now, Logger: s.log})
	if err := s.Apply(cfg); err != nil {
		s.registry.Close()
		return nil, err
	}
	return s, nil
}

// Apply compiles cfg and swaps it in. Requests already routed finish on the
// routes they started with; backend health and counters carry over for
// backends that stay. On error nothing changes.
func (s *Server) Apply(cfg Config) error {
	p, err := s.Prepare(cfg)
	if err != nil {
		return err
	}
	s.Commit(p)
	return nil
}

// Prepared is a compiled configuration not yet running; see Prepare.
type Prepared struct{ st *state }

// Prepare compiles cfg without changing what runs, so that a caller can
// check a whole new gateway configuration before switching any part of
// it. Follow it with Commit or Discard before the next Prepare.
func (s *Server) Prepare(cfg Config) (*Prepared, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	st, err := s.build(cfg)
	if err != nil {
		return nil, err
	}
	return &Prepared{st}, nil
}

// Commit swaps a prepared configuration in.
func (s *Server) Commit(p *Prepared) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.metrics.routes(p.st.routes)
	s.registry.Activate(p.st.pools)
	s.transports.commit()
	if old := s.state.Swap(p.st); old != nil {
		s.log.Info("reverse: routes reloaded", "routes", len(p.st.routes))
	}
}

// Discard drops a prepared configuration.
func (s *Server) Discard(p *Prepared) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.transports.abort()
}

func (s *Server) build(cfg Config) (_ *state, err error) {
	s.transports.begin()
	defer func() {
		if err != nil {
			s.transports.abort()
		}
	}()
	old := s.state.Load()
	st := &state{cfg: cfg, trusted: cfg.TrustedProxies, redirect: cfg.RedirectHTTP, httpsPort: cfg.HTTPSPort}

	var compressor *Compressor
	if len(cfg.Compression.Algorithms) > 0 {
		if compressor, err = NewCompressor(cfg.Compression); err != nil {
			return nil, fmt.Errorf("reverse compression: %w", err)
		}
	}
	pools := make([]PoolConfig, 0, len(cfg.Routes))
	matches := make([]RouteMatch, 0, len(cfg.Routes))
	seen := make(map[string]bool, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := cfg.Routes[i]
		if rc.Name == "" {
			return nil, fmt.Errorf("reverse route %d: no name", i+1)
		}
		if seen[rc.Name] {
			return nil, fmt.Errorf("reverse route %q: name used twice", rc.Name)
		}
		seen[rc.Name] = true
		timeout := rc.ResponseHeaderTimeout
		if timeout == 0 {
			timeout = cfg.ResponseHeaderTimeout
		}
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		tr, err := s.transports.get(rc.BackendTLS, timeout)
		if err != nil {
			return nil, fmt.Errorf("reverse route %q: %w", rc.Name, err)
		}
		rt := &route{cfg: rc, acl: NewClientACL(rc.AllowClients, rc.DenyClients), maxBody: cfg.MaxBodyBytes,
			security: rc.SecurityHeaders.compile()}
		if rc.MaxBodyBytes != 0 {
			rt.maxBody = rc.MaxBodyBytes
		}
		if rt.maxBody < 0 {
			rt.maxBody = 0
		}
		rt.limiter = s.limiterFor(old, rc)
		rt.transport = &balancedTransport{srv: s, route: rt, next: tr}
		rp := &httputil.ReverseProxy{
			Rewrite:        rt.rewrite,
			Transport:      rt.transport,
			ModifyResponse: rt.modifyResponse,
			ErrorHandler:   s.errorHandler,
			BufferPool:     bufferPool,
			ErrorLog:       log.New(discardWriter{}, "", 0),
		}
		rt.proxy = rp
		rt.handler = dispatch{rt: rt, s: s}
		if rc.Compress && compressor != nil {
			rt.handler = compressor.Wrap(rt.handler)
		}
		pools = append(pools, PoolConfig{
			Route: rc.Name, Backends: rc.Backends, Balance: rc.Balance, Hash: rc.Hash,
			Health: rc.Health, Passive: rc.Passive, Transport: tr,
		})
		matches = append(matches, rc.Match)
		st.routes = append(st.routes, rt)
	}
	if st.router, err = NewRouter(matches, st.routes); err != nil {
		return nil, fmt.Errorf("reverse routes: %w", err)
	}
	if st.pools, err = s.registry.Build(pools); err != nil {
		return nil, fmt.Errorf("reverse: %w", err)
	}
	for _, rt := range st.routes {
		rt.pool = st.pools.Pool(rt.cfg.Name)
	}
	if st.certs, err = s.certStore(old, cfg); err != nil {
		return nil, err
	}
	return st, nil
}

// limiterFor keeps a route's rate-limit buckets across a reload that does
// not change the limit.
func (s *Server) limiterFor(old *state, rc Route) *RateLimiter {
	if rc.RateLimit <= 0 {
		return nil
	}
	if old != nil {
		for _, o := range old.routes {
			if o.cfg.Name == rc.Name && o.cfg.RateLimit == rc.RateLimit && o.cfg.RateBurst == rc.RateBurst && o.limiter != nil {
				return o.limiter
			}
		}
	}
	return NewRateLimiter(rc.RateLimit, rc.RateBurst, s.now)
}

// certStore loads the TLS listener's certificates; an unchanged set is
// reloaded from its files (picking up renewed certificates) instead.
func (s *Server) certStore(old *state, cfg Config) (*CertStore, error) {
	if !cfg.TLS {
		return nil, nil
	}
	if old != nil && old.certs != nil && sameCertConfig(old.cfg, cfg) {
		if err := old.certs.Reload(); err != nil {
			return nil, fmt.Errorf("reverse tls certificates: %w", err)
		}
		return old.certs, nil
	}
	cs, err := NewCertStore(cfg.Certificates, s.opts.DataDir, routeHosts(cfg))
	if err != nil {
		return nil, fmt.Errorf("reverse tls certificates: %w", err)
	}
	return cs, nil
}

func sameCertConfig(a, b Config) bool {
	if len(a.Certificates) != len(b.Certificates) {
		return false
	}
	for i := range a.Certificates {
		if a.Certificates[i] != b.Certificates[i] {
			return false
		}
	}
	if len(a.Certificates) > 0 {
		return true
	}
	// Self-signed: the names covered depend on the routes' hosts.
	return slices.Equal(routeHosts(a), routeHosts(b))
}

func routeHosts(c Config) []string {
	var hosts []string
	for _, r := range c.Routes {
		hosts = append(hosts, r.Match.Hosts...)
	}
	return hosts
}

// CertFiles lists the certificate and key files of the TLS listener, to be
// watched for changes (then call Apply again with the same Config).
func (s *Server) CertFiles() []string {
	st := s.state.Load()
	if st == nil || st.certs == nil {
		return nil
	}
	return st.certs.Files()
}

// httpServer returns a configured http.Server for one listener.
func (s *Server) httpServer() *http.Server {
	rh := s.opts.ReadHeaderTimeout
	if rh == 0 {
		rh = 10 * time.Second
	}
	idle := s.opts.IdleTimeout
	if idle == 0 {
		idle = 120 * time.Second
	}
	mh := s.opts.MaxHeaderBytes
	if mh == 0 {
		mh = 64 << 10
	}
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: rh,
		IdleTimeout:       idle,
		MaxHeaderBytes:    mh,
		ErrorLog:          log.New(discardWriter{}, "", 0),
	}
}

// limit applies Options.MaxConnections to ln.
func (s *Server) limit(ln net.Listener) net.Listener {
	if s.opts.MaxConnections > 0 {
		return netutil.LimitListener(ln, s.opts.MaxConnections)
	}
	return ln
}

func (s *Server) track(srv *http.Server) error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.closed {
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, srv)
	return nil
}

// ServePlain serves plain HTTP on ln until Shutdown. It returns
// http.ErrServerClosed after Shutdown.
func (s *Server) ServePlain(ln net.Listener) error {
	srv := s.httpServer()
	if err := s.track(srv); err != nil {
		return err
	}
	return srv.Serve(s.limit(ln))
}

// ServeTLS serves HTTPS (HTTP/2 and HTTP/1.1) on ln with the certificates
// of the current configuration, chosen by SNI.
func (s *Server) ServeTLS(ln net.Listener) error {
	srv := s.httpServer()
	st := s.state.Load()
	if st.certs == nil {
		return errors.New("reverse: no certificates for the TLS listener")
	}
	cfg := st.certs.TLSConfig()
	// The certificates follow reloads.
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return s.state.Load().certs.GetCertificate(hello)
	}
	srv.TLSConfig = cfg
	if err := s.track(srv); err != nil {
		return err
	}
	return srv.ServeTLS(s.limit(ln), "", "")
}

// Shutdown stops the listeners, waits for requests in flight until ctx
// ends, then closes upgraded (WebSocket) connections and stops health
// checks.
func (s *Server) Shutdown(ctx context.Context) error {
	s.srvMu.Lock()
	s.closed = true
	servers := s.servers
	s.srvMu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	s.upgraded.Range(func(k, _ any) bool {
		k.(*releasingRWBody).Close()
		return true
	})
	s.registry.Close()
	s.transports.closeAll()
	return errors.Join(errs...)
}

// newID returns a request ID unique within this process.
func (s *Server) newID() string {
	return s.idBase + "-" + strconv.FormatUint(s.seq.Add(1), 36)
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
