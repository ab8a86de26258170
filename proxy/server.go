package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"waygate/audit"
	"waygate/filter"
	"waygate/proxy/upstream"
)

// Options are the settings of the forward proxy that a reload may change.
// The zero value of each field means the default named in its comment.
type Options struct {
	// AllowClients lists the networks whose clients may use the proxy. Nil
	// or empty admits nobody.
	AllowClients []netip.Prefix
	// ConnectPorts lists the ports CONNECT may reach. Nil or empty allows
	// no CONNECT at all.
	ConnectPorts []uint16
	// ForwardedFor adds X-Forwarded-For with the client address. False
	// (the default) hides the client from the origin.
	ForwardedFor bool
	// Auth turns on proxy authentication when it has users.
	Auth AuthOptions
	// MaxTunnels and MaxTunnelsPerClient cap concurrent CONNECT tunnels.
	// Zero means 10000 and 256.
	MaxTunnels          int
	MaxTunnelsPerClient int
	// MaxConnections and MaxConnectionsPerClient cap concurrent client
	// connections. Zero means 10000 and 512.
	MaxConnections          int
	MaxConnectionsPerClient int
	// TunnelIdle closes a tunnel that carried no byte either way for this
	// long. Zero means 10 minutes.
	TunnelIdle time.Duration
	// ResponseHeaderTimeout bounds the wait for an origin's response
	// header. Zero means 60s.
	ResponseHeaderTimeout time.Duration
	// PAC configures /proxy.pac and /wpad.dat.
	PAC PACOptions
	// Dialer opens every outbound connection. It must not be nil.
	Dialer *upstream.Dialer
	// TLS is the client TLS configuration for https origins. Nil means
	// system roots, TLS 1.2 at least.
	TLS *tls.Config
	// Parent, if not nil, is an HTTP proxy through which every request and
	// tunnel goes. Destinations are still checked by the guard first.
	Parent *url.URL
	// Filter decides every request before anything is dialed. Nil means
	// no policy: everything the other checks let through is allowed.
	Filter *filter.Engine
	// BlockPage and WarnPage replace the built-in policy pages; they are
	// executed with a PageData. Nil means built-in.
	BlockPage *template.Template
	WarnPage  *template.Template
	// Now is the clock for schedules and warn grants. Nil means time.Now.
	Now func() time.Time
}

// ServerOptions are fixed for the life of a Server (they belong to the
// listening socket).
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading a request header. Zero means 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive client connections. Zero means 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request header; larger ones get 431. Zero
	// means 64 KiB.
	MaxHeaderBytes int
	// Logger receives operational logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the proxy's metrics. Nil means metrics are kept
	// but not exported.
	Metrics *Metrics
	// Audit receives one event per request and per tunnel (when it
	// closes). Nil means audit.Discard.
	Audit audit.Sink
}

// Server is the forward proxy. It serves plain HTTP proxy requests (with
// goproxy), CONNECT tunnels, and the PAC file. Its Options can be swapped
// at run time with Reload without dropping a connection.
type Server struct {
	cur     atomic.Pointer[state]
	gp      *goproxy.ProxyHttpServer
	http    *http.Server
	log     *slog.Logger
	metrics *Metrics
	conns   *connTracker
	tunnels *tunnelTracker
	reqSeq  atomic.Uint64
	idBase  string
	grants  *grants
	audit   audit.Sink

	mu        sync.Mutex
	listeners []net.Listener
}

// New builds a Server. It validates opts like Reload does.
func New(opts Options, sopts ServerOptions) (*Server, error) {
	s := &Server{
		log:     sopts.Logger,
		metrics: sopts.Metrics,
		conns:   newConnTracker(),
		tunnels: newTunnelTracker(),
		idBase:  newIDBase(),
		grants:  newGrants(),
		audit:   sopts.Audit,
	}
	if s.audit == nil {
		s.audit = audit.Discard
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	st, err := s.buildState(opts)
	if err != nil {
		return nil, err
	}
	s.cur.Store(st)
	s.gp = s.newGoproxy()

	rht := sopts.ReadHeaderTimeout
	if rht <= 0 {
		rht = 10 * time.Second
	}
	idle := sopts.IdleTimeout
	if idle <= 0 {
		idle = 120 * time.Second
	}
	mhb := sopts.MaxHeaderBytes
	if mhb <= 0 {
		mhb = 64 << 10
	}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: rht,
		IdleTimeout:       idle,
		MaxHeaderBytes:    mhb,
		ConnContext:       s.connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// The proxy speaks HTTP/1.1 to clients; an empty map turns off h2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	return s, nil
}

// Reload swaps in new options. If they are invalid the running options stay
// and the error says why. Connections and tunnels that are open keep going.
func (s *Server) Reload(opts Options) error {
	st, err := s.buildState(opts)
	if err != nil {
		return err
	}
	old := s.cur.Swap(st)
	// Idle pooled connections were made under the old guard and dialer.
	old.rt.CloseIdleConnections()
	return nil
}

// Serve accepts connections on ln until Shutdown. It returns
// http.ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	tl := &trackedListener{Listener: ln, s: s}
	s.mu.Lock()
	s.listeners = append(s.listeners, tl)
	s.mu.Unlock()
	return s.http.Serve(tl)
}

// Shutdown stops accepting, lets requests in flight and open tunnels finish
// until ctx is done, then closes whatever is left. It returns ctx.Err() if
// anything had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.http.Shutdown(ctx) }()
	tunnelsDone := s.tunnels.wait(ctx)
	httpErr := <-done
	if tunnelsDone != nil || httpErr != nil {
		// Deadline passed: cut tunnels and hijacked connections.
		s.tunnels.closeAll()
		s.conns.closeAll()
		return errors.Join(httpErr, tunnelsDone)
	}
	s.conns.closeAll()
	return nil
}

// Stats is a snapshot of the proxy's open connections and tunnels.
type Stats struct {
	Connections int
	Tunnels     int
}

// Stats returns the current counts.
func (s *Server) Stats() Stats {
	return Stats{Connections: s.conns.count(), Tunnels: s.tunnels.count()}
}

// Handler returns the http.Handler of the proxy, for tests and for
// embedding into a server the caller runs.
func (s *Server) Handler() http.Handler { return s }

func newGoproxyLogger(l *slog.Logger) goproxy.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}

func validateOptions(o *Options) error {
	if o.Dialer == nil {
		return errors.New("proxy: Options.Dialer is nil")
	}
	if o.Parent != nil && (o.Parent.Scheme != "http" || o.Parent.Host == "") {
		return fmt.Errorf("proxy: parent proxy %q: want http://host:port", o.Parent.String())
	}
	return nil
}
