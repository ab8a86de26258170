package config

import (
	_ "embed"
	"maps"
	"net/netip"
	"time"
)

// DefaultYAML is the reference configuration file: every key with its default
// value and a comment saying what it does. Parsing it yields exactly Default().
// `waygate` prints it for operators to start from; do not modify it.
//
//go:embed default.yaml
var DefaultYAML []byte

// Defaults of the settings where zero means "the default". They are applied
// by Parse and assumed by Validate.
const (
	defaultMaxConnections          = 10000
	defaultMaxConnectionsPerClient = 512
	defaultMaxTunnels              = 10000
	defaultMaxTunnelsPerClient     = 256
	defaultMaxHeaderBytes          = 65536

	defaultReadHeader     = 10 * time.Second
	defaultIdle           = 120 * time.Second
	defaultTunnelIdle     = 10 * time.Minute
	defaultDial           = 10 * time.Second
	defaultResponseHeader = 60 * time.Second
	defaultShutdown       = 30 * time.Second

	defaultFailuresPerMinute = 10
	defaultDNSTimeout        = 2 * time.Second
	defaultDNSAttempts       = 2

	// The reverse proxy's; it shares the proxy's other limit and timeout
	// defaults.
	defaultReverseDial     = 5 * time.Second
	defaultMaxBodyBytes    = 100 << 20
	defaultMinCompressSize = 1024
	defaultRetries         = 1
	defaultHealthInterval  = 10 * time.Second
	defaultHealthTimeout   = 2 * time.Second
	defaultHealthRise      = 2
	defaultHealthFall      = 3
	defaultPassiveFailures = 3
	defaultPassiveCooldown = 30 * time.Second
)

// defaultCompressionLevels are the levels of the algorithms that
// compression.levels leaves out.
var defaultCompressionLevels = map[string]int{"gzip": 1, "br": 4, "zstd": 1}

// Default returns a new Config holding every default. Each call returns fresh
// slices, so the caller may modify the result. List settings whose default is
// "none" are empty, non-nil slices.
func Default() *Config {
	return &Config{
		SchemaVersion: 1,
		DataDir:       "./data",
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		Proxy: Proxy{
			Listen: ":3128",
			AllowClients: []netip.Prefix{
				netip.MustParsePrefix("127.0.0.0/8"),
				netip.MustParsePrefix("::1/128"),
				netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("172.16.0.0/12"),
				netip.MustParsePrefix("192.168.0.0/16"),
				netip.MustParsePrefix("fc00::/7"),
			},
			AllowDestinations: []netip.Prefix{},
			ConnectPorts:      []uint16{443},
			ForwardedFor:      false,
			Parent:            "",
			ExtraCAFiles:      []string{},
			Auth: Auth{
				Realm:             "Waygate",
				Users:             []User{},
				FailuresPerMinute: defaultFailuresPerMinute,
			},
			Limits: Limits{
				MaxConnections:          defaultMaxConnections,
				MaxConnectionsPerClient: defaultMaxConnectionsPerClient,
				MaxTunnels:              defaultMaxTunnels,
				MaxTunnelsPerClient:     defaultMaxTunnelsPerClient,
				MaxHeaderBytes:          defaultMaxHeaderBytes,
			},
			Timeouts: Timeouts{
				ReadHeader:     defaultReadHeader,
				Idle:           defaultIdle,
				TunnelIdle:     defaultTunnelIdle,
				Dial:           defaultDial,
				ResponseHeader: defaultResponseHeader,
				Shutdown:       defaultShutdown,
			},
			PAC: PAC{
				ProxyAddress:   "",
				DirectDomains:  []string{},
				DirectNetworks: []netip.Prefix{},
			},
		},
		DNS: DNS{
			Servers:     []string{},
			HostsFile:   "/etc/hosts",
			Timeout:     defaultDNSTimeout,
			Attempts:    defaultDNSAttempts,
			MinTTL:      5 * time.Second,
			MaxTTL:      time.Hour,
			NegativeTTL: 30 * time.Second,
		},
		Admin: Admin{
			Listen: "127.0.0.1:9090",
			TLS:    AdminTLS{Certificates: []CertPair{}},
		},
		Reverse: Reverse{
			Listen:         "",
			TLS:            ReverseTLS{Listen: "", Certificates: []CertPair{}},
			TrustedProxies: []netip.Prefix{},
			// What proxy.allow_clients allows, and carrier-grade NAT.
			AllowBackends: []netip.Prefix{
				netip.MustParsePrefix("127.0.0.0/8"),
				netip.MustParsePrefix("::1/128"),
				netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("172.16.0.0/12"),
				netip.MustParsePrefix("192.168.0.0/16"),
				netip.MustParsePrefix("100.64.0.0/10"),
				netip.MustParsePrefix("fc00::/7"),
			},
			Timeouts: ReverseTimeouts{
				ReadHeader:     defaultReadHeader,
				Idle:           defaultIdle,
				Dial:           defaultReverseDial,
				ResponseHeader: defaultResponseHeader,
			},
			Limits: ReverseLimits{
				MaxHeaderBytes: defaultMaxHeaderBytes,
				MaxBodyBytes:   defaultMaxBodyBytes,
				MaxConnections: defaultMaxConnections,
			},
			Compression: Compression{
				Algorithms: []string{"zstd", "br", "gzip"},
				Levels:     maps.Clone(defaultCompressionLevels),
				MinSize:    defaultMinCompressSize,
				Types:      []string{},
			},
			SecurityHeaders: defaultSecurityHeaders(),
			Routes:          []Route{},
		},
		Categories:   []Category{},
		CategoryDirs: []CategoryDir{},
		Groups:       []Group{},
		Rules:        []Rule{},
		Filter: Filter{
			DefaultAction: "allow",
		},
		Audit: Audit{
			Enabled: true,
			Privacy: AuditPrivacy{Query: "keep", ExcludeCategories: []string{}},
		},
	}
}

// effectiveLimits returns l with every zero replaced by its default. A
// per-client limit left at zero defaults to the smaller of its usual default
// and the effective total, so that lowering only the total stays valid.
func effectiveLimits(l Limits) Limits {
	orDefault := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	perClient := func(v *int, d, total int) {
		if *v == 0 {
			*v = min(d, total)
		}
	}
	orDefault(&l.MaxConnections, defaultMaxConnections)
	orDefault(&l.MaxTunnels, defaultMaxTunnels)
	orDefault(&l.MaxHeaderBytes, defaultMaxHeaderBytes)
	// A negative total is invalid anyway; do not let it leak into the
	// per-client default.
	perClient(&l.MaxConnectionsPerClient, defaultMaxConnectionsPerClient, max(l.MaxConnections, 1))
	perClient(&l.MaxTunnelsPerClient, defaultMaxTunnelsPerClient, max(l.MaxTunnels, 1))
	return l
}

// applyDefaults replaces the zeros that mean "the default" with the default
// and normalises values that have a canonical form (DNS servers become
// "ip:port", direct domains lower case). Values that are invalid are left
// alone for Validate to report.
func (c *Config) applyDefaults() {
	c.Proxy.Limits = effectiveLimits(c.Proxy.Limits)

	t := &c.Proxy.Timeouts
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&t.ReadHeader, defaultReadHeader},
		{&t.Idle, defaultIdle},
		{&t.TunnelIdle, defaultTunnelIdle},
		{&t.Dial, defaultDial},
		{&t.ResponseHeader, defaultResponseHeader},
		{&t.Shutdown, defaultShutdown},
		{&c.DNS.Timeout, defaultDNSTimeout},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.DNS.Attempts == 0 {
		c.DNS.Attempts = defaultDNSAttempts
	}
	if c.Proxy.Auth.FailuresPerMinute == 0 {
		c.Proxy.Auth.FailuresPerMinute = defaultFailuresPerMinute
	}
	for i, s := range c.DNS.Servers {
		if ap, err := parseDNSServer(s); err == nil {
			c.DNS.Servers[i] = ap.String()
		}
	}
	for i, d := range c.Proxy.PAC.DirectDomains {
		if validDomainPattern(d) {
			c.Proxy.PAC.DirectDomains[i] = toLowerASCII(d)
		}
	}
	c.Reverse.applyDefaults()
}
