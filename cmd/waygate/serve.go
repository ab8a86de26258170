package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"waygate/audit"
	auditsqlite "waygate/audit/sqlite"
	"waygate/cmd/waygate/internal/config"
	"waygate/filter"
	"waygate/proxy"
	"waygate/proxy/upstream"
	"waygate/reverse"
)

func cmdServe(args []string, stderr io.Writer) int {
	path, err := configFlag("serve", args, stderr)
	if err != nil {
		return 2
	}
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	g, err := newGateway(path, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "waygate:", err)
		return 1
	}
	if err := g.run(); err != nil {
		g.log.Error("exiting", "error", err)
		return 1
	}
	return 0
}

// gateway owns the process: listeners, the running proxy, reloads and
// shutdown.
type gateway struct {
	path string
	log  *slog.Logger
	reg  *prometheus.Registry

	mu       sync.Mutex // serialises reloads
	cfg      *config.Config
	resolver *upstream.Resolver

	proxy      *proxy.Server
	proxyLn    net.Listener
	admin      *http.Server
	adminLn    net.Listener
	adminTLS   *adminTLS // the admin listener's certificates; nil when it serves plain HTTP
	audit      audit.Sink
	auditStore *auditsqlite.Store // nil with the audit trail off
	watcher    *watcher           // nil without a config file
	dialer     *upstream.Dialer   // of the running config, for list refreshes
	reloads    chan string        // reload requests from list refreshes
	files      []string           // list files of the running policy
	rev        reverseModule      // the reverse proxy; off without listeners
	adminStore *auditsqlite.AdminStore
	events     *audit.Broadcaster            // the live event stream; records to the audit sink
	engine     atomic.Pointer[filter.Engine] // the running policy, for the UI's explain
	lab        *lab                          // the proxy lab; nil without the admin UI or when it failed to start
	// stamps are the watched files as the running configuration was
	// loaded from them (see filesChanged); nil without a watcher.
	stamps map[string]fileStamp
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newGateway(path string, cfg *config.Config, logw io.Writer) (*gateway, error) {
	g := &gateway{path: path, cfg: cfg, log: newLogger(cfg.Log, logw), reg: prometheus.NewRegistry(), reloads: make(chan string, 1)}
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	resolver, err := newResolver(cfg.DNS)
	if err != nil {
		return nil, err
	}
	g.audit, g.auditStore, err = openAudit(cfg, g)
	if err != nil {
		return nil, err
	}
	// Every producer records through the broadcaster, which feeds the
	// web UI's live stream.
	g.events = audit.NewBroadcaster(g.audit)
	g.audit = g.events
	g.resolver = resolver
	g.registerResolverMetrics()

	g.proxyLn, err = net.Listen("tcp", cfg.Proxy.Listen)
	if err != nil {
		return nil, fmt.Errorf("proxy listener: %w", err)
	}
	if cfg.Admin.Listen != "" {
		g.adminLn, err = net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			g.proxyLn.Close()
			return nil, fmt.Errorf("admin listener: %w", err)
		}
		if cfg.Admin.TLS.Enabled {
			if g.adminTLS, err = newAdminTLS(cfg, path, g.adminLn.Addr()); err != nil {
				g.closeListeners()
				return nil, err
			}
		}
		g.lab = g.startLab(cfg)
		ui, err := g.newAdminUI(cfg, logw)
		if err != nil {
			g.closeListeners()
			return nil, err
		}
		// No WriteTimeout: the live event stream stays open.
		g.admin = &http.Server{Handler: g.adminHandler(ui.Handler()), ReadHeaderTimeout: 10 * time.Second}
		if g.adminTLS != nil {
			g.admin.TLSConfig = g.adminTLS.tlsConfig()
		}
		g.admin.RegisterOnShutdown(ui.CloseStreams)
	}
	if err := g.rev.listen(&cfg.Reverse); err != nil {
		g.closeListeners()
		return nil, err
	}
	opts, err := g.proxyOptions(cfg, resolver)
	if err != nil {
		g.closeListeners()
		return nil, err
	}
	g.files, g.dialer = opts.Filter.Files(), opts.Dialer
	g.engine.Store(opts.Filter)
	g.proxy, err = proxy.New(opts, proxy.ServerOptions{
		ReadHeaderTimeout: cfg.Proxy.Timeouts.ReadHeader,
		IdleTimeout:       cfg.Proxy.Timeouts.Idle,
		MaxHeaderBytes:    cfg.Proxy.Limits.MaxHeaderBytes,
		Logger:            g.log,
		Metrics:           proxy.NewMetrics(g.reg),
		Audit:             g.audit,
	})
	if err != nil {
		g.closeListeners()
		return nil, err
	}
	if err := g.startReverse(cfg, resolver); err != nil {
		g.closeListeners()
		return nil, err
	}
	return g, nil
}

// startReverse creates the reverse proxy when it has a listener.
func (g *gateway) startReverse(cfg *config.Config, resolver *upstream.Resolver) error {
	if g.rev.plainLn == nil && g.rev.tlsLn == nil {
		return nil
	}
	g.rev.dialer.Store(reverseDialer(cfg, resolver, listenerAddrs(g.selfAddrs())))
	rcfg, err := reverseConfig(cfg, g.path, g.rev.tlsPort())
	if err != nil {
		return err
	}
	g.rev.srv, err = reverse.New(reverse.Options{
		Dial:              g.rev.dial,
		Audit:             g.audit,
		Logger:            g.log,
		Metrics:           reverse.NewMetrics(g.reg),
		DataDir:           cfg.DataDir,
		ReadHeaderTimeout: cfg.Reverse.Timeouts.ReadHeader,
		IdleTimeout:       cfg.Reverse.Timeouts.Idle,
		MaxHeaderBytes:    cfg.Reverse.Limits.MaxHeaderBytes,
		MaxConnections:    cfg.Reverse.Limits.MaxConnections,
	}, rcfg)
	return err
}

// selfAddrs are the gateway's own listen addresses, which no outbound
// connection may reach.
func (g *gateway) selfAddrs() []net.Addr {
	self := []net.Addr{g.proxyLn.Addr()}
	if g.adminLn != nil {
		self = append(self, g.adminLn.Addr())
	}
	self = append(self, g.lab.addrs()...)
	return append(self, g.rev.addrs()...)
}

func (g *gateway) closeListeners() {
	if g.adminStore != nil {
		g.adminStore.Close()
	}
	g.rev.close()
	g.lab.close()
	g.proxyLn.Close()
	if g.adminLn != nil {
		g.adminLn.Close()
	}
	if g.auditStore != nil {
		g.auditStore.Close()
	}
}

// proxyOptions builds the proxy's options for cfg with the addresses the
// listeners really have (the config may say port 0). Remote lists without
// a copy are downloaded first, through the new dialer.
func (g *gateway) proxyOptions(cfg *config.Config, resolver *upstream.Resolver) (proxy.Options, error) {
	self := g.selfAddrs()
	d := newDialer(cfg, resolver, listenerAddrs(self), g.lab.exempt()...)
	g.fetchMissing(cfg, d)
	opts, err := buildProxyOptions(cfg, g.path, d, cachedCopies(cfg), false)
	opts.PAC.ListenPort = uint16(g.proxyLn.Addr().(*net.TCPAddr).Port)
	return opts, err
}

// watchFiles points the watcher at the config file, the running
// policy's list files and the certificate files of the reverse proxy and
// the admin listener, and stamps them. The caller holds g.mu.
func (g *gateway) watchFiles() {
	if g.watcher == nil {
		return
	}
	files := append([]string{g.path}, g.files...)
	if g.rev.srv != nil {
		files = append(files, g.rev.srv.CertFiles()...)
	}
	files = append(files, g.adminTLS.files()...)
	g.watcher.set(files)
	g.stamps = stampFiles(files)
}

// fileStamp is what tells a watched file's versions apart: its size and
// modification time; the zero fileStamp stands for a missing file.
type fileStamp struct {
	size  int64
	mtime int64 // Unix nanoseconds
}

// stampFiles returns the stamps of paths.
func stampFiles(paths []string) map[string]fileStamp {
	out := make(map[string]fileStamp, len(paths))
	for _, p := range paths {
		var st fileStamp
		if fi, err := os.Stat(p); err == nil {
			st = fileStamp{fi.Size(), fi.ModTime().UnixNano()}
		}
		out[p] = st
	}
	return out
}

// filesChanged reports whether a watched file differs from what the
// running configuration was loaded from. A change the gateway made and
// applied itself (a save from the web UI, which reloads at once) is no
// change by the time the watcher reports it, so it is not applied twice.
func (g *gateway) filesChanged() bool {
	g.mu.Lock()
	stamps := g.stamps // never modified: watchFiles replaces it
	g.mu.Unlock()
	if stamps == nil {
		return true
	}
	for p, st := range stamps {
		if now := stampFiles([]string{p})[p]; now != st {
			return true
		}
	}
	return false
}

// listenerAddrs converts bound listener addresses for the guard.
func listenerAddrs(addrs []net.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range addrs {
		if ta, ok := a.(*net.TCPAddr); ok {
			ap := ta.AddrPort()
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return out
}

func newResolver(c config.DNS) (*upstream.Resolver, error) {
	return upstream.NewResolver(upstream.ResolverConfig{
		Servers:     c.Servers,
		HostsFile:   c.HostsFile,
		Timeout:     c.Timeout,
		Attempts:    c.Attempts,
		MinTTL:      c.MinTTL,
		MaxTTL:      c.MaxTTL,
		NegativeTTL: c.NegativeTTL,
	})
}

// newDialer builds the guarded dialer of cfg. self lists the gateway's own
// listen addresses, which the guard never dials; exempt the exact
// destinations it lets through anyway (the proxy lab's echo origin). A nil
// resolver is allowed for validation only.
func newDialer(cfg *config.Config, resolver *upstream.Resolver, self []netip.AddrPort, exempt ...netip.AddrPort) *upstream.Dialer {
	d := &upstream.Dialer{
		Guard:   upstream.NewGuard(upstream.GuardConfig{Allow: cfg.Proxy.AllowDestinations, Self: self, Exempt: exempt}),
		Timeout: cfg.Proxy.Timeouts.Dial,
	}
	if resolver != nil {
		d.Resolver = resolver
	}
	return d
}

// buildProxyOptions turns the config into the proxy's runtime options,
// policy engine included. configPath (empty for the embedded defaults)
// anchors relative paths; remote gives the copies of remote lists, and
// skipMissing leaves out those without one instead of failing.
func buildProxyOptions(cfg *config.Config, configPath string, dialer *upstream.Dialer, remote remoteCopy, skipMissing bool) (proxy.Options, error) {
	p := cfg.Proxy
	engine, err := policyEngine(cfg, configPath, remote, skipMissing)
	if err != nil {
		return proxy.Options{}, err
	}
	blockPage, err := pageTemplate(cfg.Filter.BlockPage, configPath)
	if err != nil {
		return proxy.Options{}, fmt.Errorf("filter.block_page: %w", err)
	}
	warnPage, err := pageTemplate(cfg.Filter.WarnPage, configPath)
	if err != nil {
		return proxy.Options{}, fmt.Errorf("filter.warn_page: %w", err)
	}
	tlsCfg, err := upstream.TLSConfig(p.ExtraCAFiles)
	if err != nil {
		return proxy.Options{}, fmt.Errorf("proxy.extra_ca_files: %w", err)
	}
	var parent *url.URL
	if p.Parent != "" {
		if parent, err = url.Parse(p.Parent); err != nil {
			return proxy.Options{}, fmt.Errorf("proxy.parent: %w", err)
		}
	}
	var users map[string]string
	if len(p.Auth.Users) > 0 {
		users = make(map[string]string, len(p.Auth.Users))
		for _, u := range p.Auth.Users {
			users[u.Name] = u.PasswordHash
		}
	}
	return proxy.Options{
		AllowClients: p.AllowClients,
		ConnectPorts: p.ConnectPorts,
		ForwardedFor: p.ForwardedFor,
		Auth: proxy.AuthOptions{
			Realm: p.Auth.Realm, Users: users, FailuresPerMinute: p.Auth.FailuresPerMinute,
		},
		MaxTunnels:              p.Limits.MaxTunnels,
		MaxTunnelsPerClient:     p.Limits.MaxTunnelsPerClient,
		MaxConnections:          p.Limits.MaxConnections,
		MaxConnectionsPerClient: p.Limits.MaxConnectionsPerClient,
		TunnelIdle:              p.Timeouts.TunnelIdle,
		ResponseHeaderTimeout:   p.Timeouts.ResponseHeader,
		PAC: proxy.PACOptions{
			ProxyAddress:   p.PAC.ProxyAddress,
			DirectDomains:  p.PAC.DirectDomains,
			DirectNetworks: p.PAC.DirectNetworks,
		},
		Dialer:    dialer,
		TLS:       tlsCfg,
		Parent:    parent,
		Filter:    engine,
		BlockPage: blockPage,
		WarnPage:  warnPage,
	}, nil
}

func (g *gateway) registerResolverMetrics() {
	stat := func(name, help string, get func(upstream.ResolverStats) uint64) {
		g.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			g.mu.Lock()
			r := g.resolver
			g.mu.Unlock()
			return float64(get(r.Stats()))
		}))
	}
	stat("waygate_dns_cache_hits_total", "Lookups answered from the resolver cache.", func(s upstream.ResolverStats) uint64 { return s.Hits })
	stat("waygate_dns_cache_misses_total", "Lookups that needed DNS queries.", func(s upstream.ResolverStats) uint64 { return s.Misses })
	stat("waygate_dns_merged_total", "Lookups merged into one already in flight.", func(s upstream.ResolverStats) uint64 { return s.Merged })
	stat("waygate_dns_queries_total", "DNS queries sent.", func(s upstream.ResolverStats) uint64 { return s.Queries })
	stat("waygate_dns_errors_total", "Lookups that failed.", func(s upstream.ResolverStats) uint64 { return s.Errors })
	stat("waygate_dns_hosts_hits_total", "Lookups answered from the hosts file.", func(s upstream.ResolverStats) uint64 { return s.HostsHits })
}

// adminHandler serves health and metrics (without a login, for probes
// and scrapers on the admin listener) and the web UI. Over HTTPS every
// answer, health and metrics too, carries Strict-Transport-Security.
func (g *gateway) adminHandler(ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", ui)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{}))
	if g.adminTLS == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", adminHSTS)
		mux.ServeHTTP(w, r)
	})
}

// run serves until SIGTERM or SIGINT, reloading on SIGHUP and on changes
// to the config file.
func (g *gateway) run() error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	var fileEvents <-chan struct{}
	if g.path != "" {
		w, err := newWatcher(g.log)
		if err != nil {
			g.log.Warn("config file not watched; reload with SIGHUP", "error", err)
		} else {
			defer w.close()
			g.mu.Lock() // a save from the web UI may reload already
			g.watcher = w
			g.watchFiles()
			g.mu.Unlock()
			fileEvents = w.events
		}
	}

	// Signals and the watcher are set up before the listening lines are
	// logged, so that whoever waits for those lines can rely on both.
	if g.path != "" {
		done := make(chan struct{})
		defer close(done)
		go g.refreshLists(done, g.reloads)
	}

	errc := make(chan error, 4)
	go func() { errc <- g.proxy.Serve(g.proxyLn) }()
	g.log.Info("forward proxy listening", "addr", g.proxyLn.Addr().String(), "config", g.configName())
	if g.admin != nil {
		scheme := "http"
		if g.adminTLS != nil {
			scheme = "https"
			go func() { errc <- g.admin.ServeTLS(g.adminLn, "", "") }()
			if exp := g.adminTLS.expired(); len(exp) > 0 {
				g.log.Warn("admin tls: serving certificates that are not valid now", "certificates", exp)
			}
		} else {
			go func() { errc <- g.admin.Serve(g.adminLn) }()
		}
		g.log.Info("admin listening", "addr", g.adminLn.Addr().String(), "url", scheme+"://"+g.adminLn.Addr().String()+"/")
	}
	if g.rev.plainLn != nil {
		go func() { errc <- g.rev.srv.ServePlain(g.rev.plainLn) }()
		g.log.Info("reverse proxy listening", "addr", g.rev.plainLn.Addr().String(), "routes", len(g.cfg.Reverse.Routes))
	}
	if g.rev.tlsLn != nil {
		go func() { errc <- g.rev.srv.ServeTLS(g.rev.tlsLn) }()
		g.log.Info("reverse proxy listening (TLS)", "addr", g.rev.tlsLn.Addr().String(), "routes", len(g.cfg.Reverse.Routes))
	}
	g.adminEvent("start", g.configName(), nil)

	for {
		select {
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				continue
			}
			return err
		case <-fileEvents:
			if !g.filesChanged() {
				g.log.Debug("watched files unchanged since the last load; no reload")
				continue
			}
			g.reload("file changed")
		case why := <-g.reloads:
			g.reload(why)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				g.reload("SIGHUP")
				continue
			}
			return g.shutdown(sig)
		}
	}
}

func (g *gateway) configName() string {
	if g.path == "" {
		return "(embedded defaults)"
	}
	return g.path
}

// reload builds the new state off to the side and swaps it in; on any error
// the running state stays.
func (g *gateway) reload(why string) {
	if g.path == "" {
		g.log.Info("reload requested; running on embedded defaults, nothing to reload", "trigger", why)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	cfg, err := config.Load(g.path)
	if err != nil {
		g.log.Error("reload failed; keeping the running config", "trigger", why, "error", err)
		g.adminEvent("reload", why, err)
		return
	}
	resolver := g.resolver
	if !reflect.DeepEqual(cfg.DNS, g.cfg.DNS) {
		if resolver, err = newResolver(cfg.DNS); err != nil {
			g.log.Error("reload failed; keeping the running config", "trigger", why, "error", err)
			return
		}
	}
	opts, err := g.proxyOptions(cfg, resolver)
	var rev *reverse.Prepared
	var revDialer *upstream.Dialer
	if err == nil && g.rev.srv != nil {
		revDialer = reverseDialer(cfg, resolver, listenerAddrs(g.selfAddrs()))
		var rcfg reverse.Config
		if rcfg, err = reverseConfig(cfg, g.path, g.rev.tlsPort()); err == nil {
			rev, err = g.rev.srv.Prepare(rcfg)
		}
	}
	// The admin certificates (also re-read from unchanged files, for
	// renewals); what they cannot load fails the reload like the rest.
	var adminCommit func()
	if err == nil && g.adminTLS != nil {
		adminCommit, err = g.adminTLS.prepare(cfg, g.path)
		if err != nil && rev != nil {
			g.rev.srv.Discard(rev)
		}
	}
	if err == nil {
		err = g.proxy.Reload(opts)
		if err != nil && rev != nil {
			g.rev.srv.Discard(rev)
		}
	}
	if err == nil && rev != nil {
		g.rev.dialer.Store(revDialer)
		g.rev.srv.Commit(rev)
	}
	if err == nil && adminCommit != nil {
		adminCommit()
		if exp := g.adminTLS.expired(); len(exp) > 0 {
			g.log.Warn("admin tls: serving certificates that are not valid now", "certificates", exp)
		}
	}
	if err != nil {
		g.log.Error("reload failed; keeping the running config", "trigger", why, "error", err)
		g.adminEvent("reload", why, err)
		return
	}
	if cfg.Proxy.Listen != g.cfg.Proxy.Listen || cfg.Admin.Listen != g.cfg.Admin.Listen || cfg.Admin.TLS.Enabled != g.cfg.Admin.TLS.Enabled ||
		cfg.Proxy.Timeouts.ReadHeader != g.cfg.Proxy.Timeouts.ReadHeader ||
		cfg.Proxy.Timeouts.Idle != g.cfg.Proxy.Timeouts.Idle ||
		cfg.Proxy.Limits.MaxHeaderBytes != g.cfg.Proxy.Limits.MaxHeaderBytes ||
		cfg.Log != g.cfg.Log || cfg.DataDir != g.cfg.DataDir || !reflect.DeepEqual(cfg.Audit, g.cfg.Audit) ||
		cfg.Reverse.Listen != g.cfg.Reverse.Listen || cfg.Reverse.TLS.Listen != g.cfg.Reverse.TLS.Listen ||
		cfg.Reverse.Timeouts.ReadHeader != g.cfg.Reverse.Timeouts.ReadHeader || cfg.Reverse.Timeouts.Idle != g.cfg.Reverse.Timeouts.Idle ||
		cfg.Reverse.Limits.MaxHeaderBytes != g.cfg.Reverse.Limits.MaxHeaderBytes {
		g.log.Warn("listen addresses, admin.tls.enabled, header/idle timeouts, max_header_bytes, log, data_dir and audit take effect at the next restart")
	}
	g.cfg, g.resolver, g.files, g.dialer = cfg, resolver, opts.Filter.Files(), opts.Dialer
	g.engine.Store(opts.Filter)
	g.watchFiles()
	g.log.Info("config reloaded", "trigger", why, "config", g.path, "policy", opts.Filter.Version())
	g.adminEvent("reload", why+"; policy "+opts.Filter.Version(), nil)
}

// shutdown drains requests and tunnels up to the configured deadline.
func (g *gateway) shutdown(sig os.Signal) error {
	g.mu.Lock()
	timeout := g.cfg.Proxy.Timeouts.Shutdown
	g.mu.Unlock()
	g.log.Info("shutting down", "signal", sig.String(), "deadline", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	if g.admin != nil {
		wg.Go(func() { g.admin.Shutdown(ctx) })
	}
	if g.rev.srv != nil {
		wg.Go(func() {
			if err := g.rev.srv.Shutdown(ctx); err != nil {
				g.log.Warn("reverse proxy: shutdown deadline passed", "error", err)
			}
		})
	}
	wg.Go(func() { g.lab.shutdown(ctx) })
	err := g.proxy.Shutdown(ctx)
	wg.Wait()
	if g.adminStore != nil {
		g.adminStore.Close() // before the audit store, whose database it may share
	}
	if g.auditStore != nil {
		g.adminEvent("shutdown", sig.String(), nil)
		if cerr := g.auditStore.Close(); cerr != nil {
			g.log.Error("closing the audit trail", "error", cerr)
		}
	}
	if err != nil {
		g.log.Warn("shutdown deadline passed; remaining connections were closed", "error", err)
	}
	g.log.Info("stopped")
	return nil
}

// adminEvent records an action of the gateway's administration (reloads,
// start, shutdown) in the audit trail.
func (g *gateway) adminEvent(action, detail string, err error) {
	e := &audit.Event{Time: time.Now(), Kind: audit.KindAdmin, User: "system", Method: action, Detail: detail}
	if err != nil {
		e.Error = err.Error()
	}
	g.audit.Record(e)
}
