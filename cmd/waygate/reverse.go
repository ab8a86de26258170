package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"

	"waygate/cmd/waygate/internal/config"
	"waygate/proxy/upstream"
	"waygate/reverse"
)

// reverseModule is the running reverse proxy with its listeners. The zero
// value (no listeners, no server) means the module is off.
type reverseModule struct {
	srv     *reverse.Server
	plainLn net.Listener
	tlsLn   net.Listener
	// dialer is the backend dialer of the running config; reloads swap it
	// (allow_backends, the resolver and the dial timeout may change).
	dialer atomic.Pointer[upstream.Dialer]
}

// listenReverse opens the reverse listeners cfg names.
func (m *reverseModule) listen(cfg *config.Reverse) error {
	var err error
	if cfg.Listen != "" {
		if m.plainLn, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("reverse listener: %w", err)
		}
	}
	if cfg.TLS.Listen != "" {
		if m.tlsLn, err = net.Listen("tcp", cfg.TLS.Listen); err != nil {
			m.close()
			return fmt.Errorf("reverse tls listener: %w", err)
		}
	}
	return nil
}

func (m *reverseModule) addrs() []net.Addr {
	var out []net.Addr
	for _, ln := range []net.Listener{m.plainLn, m.tlsLn} {
		if ln != nil {
			out = append(out, ln.Addr())
		}
	}
	return out
}

func (m *reverseModule) close() {
	for _, ln := range []net.Listener{m.plainLn, m.tlsLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

func (m *reverseModule) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return m.dialer.Load().DialContext(ctx, network, addr)
}

// tlsPort is the TLS listener's port, or 0 without one.
func (m *reverseModule) tlsPort() uint16 {
	if m.tlsLn == nil {
		return 0
	}
	return uint16(m.tlsLn.Addr().(*net.TCPAddr).Port)
}

// reverseDialer is the guarded dialer for backends: public addresses and
// the allow_backends networks, never the gateway's own listeners.
func reverseDialer(cfg *config.Config, resolver *upstream.Resolver, self []netip.AddrPort) *upstream.Dialer {
	d := &upstream.Dialer{
		Guard:   upstream.NewGuard(upstream.GuardConfig{Allow: cfg.Reverse.AllowBackends, Self: self}),
		Timeout: cfg.Reverse.Timeouts.Dial,
	}
	if resolver != nil {
		d.Resolver = resolver
	}
	return d
}

// reverseConfig turns the config file's reverse section into the module's
// configuration. Certificate and CA paths are relative to the config
// file's folder.
func reverseConfig(cfg *config.Config, configPath string, tlsPort uint16) (reverse.Config, error) {
	rc := cfg.Reverse
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(baseDir(configPath), p)
	}
	out := reverse.Config{
		TLS:                   rc.TLS.Listen != "",
		RedirectHTTP:          rc.TLS.RedirectHTTP,
		HTTPSPort:             tlsPort,
		TrustedProxies:        rc.TrustedProxies,
		ResponseHeaderTimeout: rc.Timeouts.ResponseHeader,
		MaxBodyBytes:          rc.Limits.MaxBodyBytes,
		Compression: reverse.CompressConfig{
			Algorithms: rc.Compression.Algorithms, Levels: rc.Compression.Levels,
			MinSize: rc.Compression.MinSize, ContentTypes: rc.Compression.Types,
		},
	}
	for _, c := range rc.TLS.Certificates {
		out.Certificates = append(out.Certificates, reverse.CertPair{CertFile: path(c.Cert), KeyFile: path(c.Key)})
	}
	for _, r := range rc.Routes {
		route := reverse.Route{
			Name: r.Name,
			Match: reverse.RouteMatch{
				Hosts: r.Hosts, PathPrefix: r.PathPrefix, Headers: r.Headers, Cookies: r.Cookies, Priority: r.Priority,
			},
			StripPrefix: r.StripPrefix,
			Balance:     r.Balance,
			Health: reverse.HealthConfig{
				Path: r.Health.Path, Interval: r.Health.Interval, Timeout: r.Health.Timeout,
				Rise: r.Health.Rise, Fall: r.Health.Fall, ExpectStatus: r.Health.ExpectStatus, Host: r.Health.Host,
			},
			Passive: reverse.PassiveConfig{Failures: r.Passive.Failures, Cooldown: r.Passive.Cooldown},
			Retries: r.Retries,
			BackendTLS: reverse.BackendTLS{
				CAFile: path(r.BackendTLS.CAFile), ServerName: r.BackendTLS.ServerName,
				CertFile: path(r.BackendTLS.CertFile), KeyFile: path(r.BackendTLS.KeyFile),
			},
			AllowClients:          r.AllowClients,
			DenyClients:           r.DenyClients,
			RateLimit:             r.RateLimit.RequestsPerSecond,
			RateBurst:             r.RateLimit.Burst,
			MaxBodyBytes:          r.MaxBodyBytes,
			Compress:              r.Compress,
			SecurityHeaders:       securityHeaders(r.SecurityHeaders.Over(rc.SecurityHeaders)),
			ResponseHeaderTimeout: r.ResponseHeaderTimeout,
		}
		if kind, name, ok := strings.Cut(r.HashOn, ":"); ok {
			route.Hash = reverse.HashOn{Kind: kind, Name: name}
		} else if r.HashOn != "" {
			route.Hash = reverse.HashOn{Kind: r.HashOn}
		}
		for _, b := range r.Backends {
			u, err := url.Parse(b.URL)
			if err != nil {
				return reverse.Config{}, fmt.Errorf("reverse route %q: backend %q: %w", r.Name, b.URL, err)
			}
			route.Backends = append(route.Backends, reverse.BackendConfig{URL: u, Weight: b.Weight, MaxConns: b.MaxConns})
		}
		out.Routes = append(out.Routes, route)
	}
	return out, nil
}

func securityHeaders(h config.SecurityHeaders) reverse.SecurityHeaders {
	v := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return reverse.SecurityHeaders{
		HSTS: v(h.HSTS), ContentTypeOptions: v(h.ContentTypeOptions), FrameOptions: v(h.FrameOptions),
		ReferrerPolicy: v(h.ReferrerPolicy), ContentSecurityPolicy: v(h.ContentSecurityPolicy),
	}
}
