package reverse

import (
	"net/netip"
	"time"
)

// Config is everything about the reverse proxy that a reload may change.
// Server.Apply compiles it into an immutable state and swaps it in.
type Config struct {
	// TLS says that a TLS listener serves this configuration, so its
	// certificates are loaded (or generated). False means none are.
	TLS bool
	// Certificates of the TLS listener, chosen by SNI. Empty means a
	// self-signed certificate for the route host names, generated into
	// Options.DataDir.
	Certificates []CertPair
	// RedirectHTTP makes the plain listener answer every request with a
	// permanent redirect (308) to HTTPSPort.
	RedirectHTTP bool
	// HTTPSPort is the TLS listener's port, used in redirects. Zero means
	// 443 (no port written).
	HTTPSPort uint16
	// TrustedProxies are the peers whose X-Forwarded-For, -Proto, -Host
	// and Forwarded headers are believed. Nil means none: those headers
	// are replaced with what the gateway saw itself.
	TrustedProxies []netip.Prefix
	// ResponseHeaderTimeout bounds the wait for a backend's response
	// header, for routes that set none. Zero means 60s.
	ResponseHeaderTimeout time.Duration
	// MaxBodyBytes is the largest request body accepted (413 above it),
	// for routes that set none. Zero or negative means unlimited.
	MaxBodyBytes int64
	// Compression configures response compression for routes that compress.
	// A config with no Algorithms turns compression off.
	Compression CompressConfig
	// Routes in any order: the router orders them by priority and
	// specificity. Names must be unique.
	Routes []Route
}

// Route is one compiled route's settings.
type Route struct {
	// Name identifies the route in audit events, metrics and status, and
	// keys the state of its backends across reloads. Required, unique.
	Name string
	// Match says which requests the route takes.
	Match RouteMatch
	// StripPrefix removes Match.PathPrefix from the path before forwarding.
	StripPrefix bool
	// Backends are the servers requests are balanced over. At least one.
	Backends []BackendConfig
	// Balance, Hash, Health and Passive configure the pool (see PoolConfig).
	Balance string
	Hash    HashOn
	Health  HealthConfig
	Passive PassiveConfig
	// Retries is how many further backends are tried after a connection
	// failure, or after a 502, 503 or 504 answer to an idempotent request.
	// Zero means no retry.
	Retries int
	// BackendTLS configures TLS to https backends.
	BackendTLS BackendTLS
	// AllowClients and DenyClients restrict who may use the route; deny
	// wins. Nil AllowClients means everyone.
	AllowClients, DenyClients []netip.Prefix
	// RateLimit is the sustained requests per second one client address
	// (IPv6: its /64) may make, with bursts of RateBurst. Zero means no
	// limit.
	RateLimit float64
	RateBurst int
	// MaxBodyBytes overrides Config.MaxBodyBytes when non-zero; negative
	// means unlimited.
	MaxBodyBytes int64
	// Compress turns response compression on for the route.
	Compress bool
	// SecurityHeaders are set on the route's responses unless the backend
	// set them. Empty fields are not sent.
	SecurityHeaders SecurityHeaders
	// ResponseHeaderTimeout overrides Config.ResponseHeaderTimeout when
	// non-zero.
	ResponseHeaderTimeout time.Duration
}

// BackendTLS configures connections to https backends. The zero value
// verifies backends against the system roots with the backend URL's host as
// server name and presents no client certificate.
type BackendTLS struct {
	// CAFile is a PEM bundle of CAs trusted instead of the system roots.
	// Empty means the system roots.
	CAFile string
	// ServerName is sent as SNI and verified against the certificate.
	// Empty means the backend URL's host.
	ServerName string
	// CertFile and KeyFile are a client certificate for mutual TLS. Both
	// empty means none.
	CertFile, KeyFile string
}
