package proxy

import (
	"context"
	"crypto/tls"
	"html/template"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"time"

	"waygate/filter"
	"waygate/proxy/upstream"
)

// state is one immutable generation of the proxy's options, compiled for the
// hot path. Reload builds a new one and swaps the pointer.
type state struct {
	opts         Options
	allowClients []netip.Prefix
	connectPorts [65536 / 64]uint64 // bitset
	auth         *authenticator     // nil when authentication is off
	transport    *http.Transport    // every request the fast path does not take
	rt           roundTripper       // the transport requests go to
	tunnelIdle   time.Duration
	maxTunnels   int
	maxTunnelsPC int
	maxConns     int
	maxConnsPC   int
	filter       *filter.Engine
	blockPage    *template.Template
	warnPage     *template.Template
	now          func() time.Time
}

func (s *Server) buildState(o Options) (*state, error) {
	if err := validateOptions(&o); err != nil {
		return nil, err
	}
	st := &state{
		opts:         o,
		allowClients: o.AllowClients,
		tunnelIdle:   orDuration(o.TunnelIdle, 10*time.Minute),
		maxTunnels:   orInt(o.MaxTunnels, 10000),
		maxTunnelsPC: orInt(o.MaxTunnelsPerClient, 256),
		maxConns:     orInt(o.MaxConnections, 10000),
		maxConnsPC:   orInt(o.MaxConnectionsPerClient, 512),
		filter:       o.Filter,
		blockPage:    o.BlockPage,
		warnPage:     o.WarnPage,
		now:          o.Now,
	}
	if st.blockPage == nil {
		st.blockPage = blockTemplate
	}
	if st.warnPage == nil {
		st.warnPage = warnTemplate
	}
	if st.now == nil {
		st.now = time.Now
	}
	for _, p := range o.ConnectPorts {
		st.connectPorts[p/64] |= 1 << (p % 64)
	}
	if len(o.Auth.Users) > 0 {
		a, err := newAuthenticator(o.Auth)
		if err != nil {
			return nil, err
		}
		st.auth = a
	}
	tlsCfg := o.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	dialer := o.Dialer
	st.transport = &http.Transport{
		// Never from the environment: HTTP_PROXY must not redirect traffic.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsCfg.Clone(),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: orDuration(o.ResponseHeaderTimeout, 60*time.Second),
		// The client's Accept-Encoding is forwarded as is; the transport
		// must not add its own and decode behind the client's back.
		DisableCompression: true,
		WriteBufferSize:    32 << 10,
		ReadBufferSize:     32 << 10,
	}
	traced := upstreamTracer{st.transport}
	st.rt = traced
	if o.Parent == nil {
		// Plain bodyless requests (the bulk of forward traffic) take the
		// synchronous HTTP/1.1 path; the rest go to net/http's transport.
		st.rt = &upstream.H1Transport{
			Dial:                  dialer.DialContext,
			Fallback:              traced,
			MaxIdlePerHost:        st.transport.MaxIdleConnsPerHost,
			MaxIdle:               st.transport.MaxIdleConns,
			IdleTimeout:           st.transport.IdleConnTimeout,
			ResponseHeaderTimeout: st.transport.ResponseHeaderTimeout,
			OnConn:                recordUpstream,
		}
	}
	if o.Parent != nil {
		// The parent is a trusted hop named in the config: it is dialed
		// directly, and destinations are checked by the guard in the
		// handler before the request is handed to the parent.
		parent := o.Parent
		st.transport.Proxy = func(*http.Request) (*url.URL, error) { return parent, nil }
		st.transport.DialContext = dialParent
	}
	return st, nil
}

// roundTripper is what a generation forwards requests with; both
// *http.Transport and *upstream.H1Transport are one.
type roundTripper interface {
	RoundTrip(*http.Request) (*http.Response, error)
	CloseIdleConnections()
}

func (st *state) clientAllowed(a netip.Addr) bool {
	for _, p := range st.allowClients {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (st *state) connectPortAllowed(p uint16) bool {
	return st.connectPorts[p/64]&(1<<(p%64)) != 0
}

// dialParent connects to the configured parent proxy.
func dialParent(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	d.Timeout = 10 * time.Second
	return d.DialContext(ctx, network, addr)
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// upstreamTracer is net/http's transport reporting the connection each
// request goes out on to recordUpstream, as upstream.H1Transport does with OnConn.
type upstreamTracer struct{ *http.Transport }

func (t upstreamTracer) RoundTrip(r *http.Request) (*http.Response, error) {
	if connFrom(r.Context()) == nil {
		return t.Transport.RoundTrip(r)
	}
	// GotConn runs on this goroutine, before RoundTrip returns.
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { recordUpstream(r, info.Conn) }}
	return t.Transport.RoundTrip(r.WithContext(httptrace.WithClientTrace(r.Context(), trace)))
}

// recordUpstream notes the address a request is sent to, for its audit
// event.
func recordUpstream(r *http.Request, c net.Conn) {
	if tc := connFrom(r.Context()); tc != nil && tc.req != nil {
		tc.req.upstream = c.RemoteAddr().String()
	}
}
