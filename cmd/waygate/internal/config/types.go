package config

import (
	"net/netip"
	"time"
)

// Config is the whole configuration file. The zero value is not useful: use
// Default, Load or Parse, which fill every field that the file leaves out with
// its default.
type Config struct {
	// SchemaVersion must be 1.
	SchemaVersion int `yaml:"schema_version"`
	// DataDir holds the SQLite database, the CA and cache files. Default
	// "./data"; a relative path is relative to the working directory.
	DataDir string `yaml:"data_dir"`
	Log     Log    `yaml:"log"`
	Proxy   Proxy  `yaml:"proxy"`
	DNS     DNS    `yaml:"dns"`
	Admin   Admin  `yaml:"admin"`
	// Reverse configures the reverse proxy. Off by default.
	Reverse Reverse `yaml:"reverse"`
	// Categories are named lists of domains, URLs and networks.
	Categories []Category `yaml:"categories"`
	// CategoryDirs are squidGuard/UT1 folders: every subfolder with a
	// domains, urls or expressions file is a category of that name.
	CategoryDirs []CategoryDir `yaml:"category_dirs"`
	// Groups name sets of client networks and proxy users for rules.
	Groups []Group `yaml:"groups"`
	// Rules decide requests; the first that matches wins.
	Rules []Rule `yaml:"rules"`
	// Filter holds the policy settings that are not rules.
	Filter Filter `yaml:"filter"`
	// Audit configures the audit trail.
	Audit Audit `yaml:"audit"`
}

// Audit configures the audit trail in data_dir/audit.db.
type Audit struct {
	// Enabled records every request, tunnel and admin action. Default true.
	Enabled bool `yaml:"enabled"`
	// QueueSize is how many events wait in memory for the writer; when it
	// is full, producers wait briefly, then events go to the spool file.
	// Zero means 65536.
	QueueSize int `yaml:"queue_size"`
	// MaxAge removes events older than this. Zero keeps them forever.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes bounds the database size; the oldest events go first. Zero
	// means no bound.
	MaxBytes int64 `yaml:"max_bytes"`
	// Privacy rules applied before anything is stored.
	Privacy AuditPrivacy `yaml:"privacy"`
}

// AuditPrivacy configures pseudonymization and omissions.
type AuditPrivacy struct {
	// HashUsers and HashClients store keyed hashes instead of user names
	// and client addresses.
	HashUsers   bool `yaml:"hash_users"`
	HashClients bool `yaml:"hash_clients"`
	// Query is keep, drop or hash. Default keep.
	Query string `yaml:"query"`
	// ExcludeCategories are never recorded.
	ExcludeCategories []string `yaml:"exclude_categories"`
	// KeyFile holds the pseudonym key. Empty means data_dir/audit.key,
	// created with a random key on first use. Keep it secret: with it,
	// pseudonyms can be matched to names.
	KeyFile string `yaml:"key_file"`
}

// Category is one named category. Entries come inline and from files.
type Category struct {
	// Name is unique over categories and category_dirs.
	Name string `yaml:"name"`
	// Domains are inline entries: domains (which match their subdomains),
	// IP addresses and CIDR networks.
	Domains []string `yaml:"domains"`
	// URLs are inline host/path prefixes.
	URLs []string `yaml:"urls"`
	// Files are list files; a relative path is relative to the config
	// file's directory.
	Files []ListFile `yaml:"files"`
	// Remote are lists downloaded by URL and refreshed, through the
	// gateway's own guarded dialer; the last good copy is kept in
	// data_dir/lists.
	Remote []RemoteList `yaml:"remote"`
}

// RemoteList is a list fetched by URL.
type RemoteList struct {
	// URL is http:// or https://.
	URL string `yaml:"url"`
	// Format is as for files; empty means domains.
	Format string `yaml:"format"`
	// Refresh is how often the list is fetched again. Zero means 24h;
	// at least 1m.
	Refresh time.Duration `yaml:"refresh"`
}

// ListFile is a list file and its format. In the config it is written as a
// path alone or as a mapping {path, format}.
type ListFile struct {
	Path string `yaml:"path"`
	// Format is domains, urls, expressions, hosts or adblock. Empty means:
	// from the file name (a squidGuard "urls" or "expressions" file, a name
	// containing "hosts"), else domains, which also reads hosts-file and
	// Adblock ||name^ lines.
	Format string `yaml:"format"`
}

// CategoryDir is a folder of squidGuard-layout categories.
type CategoryDir struct {
	// Path is the folder; relative to the config file's directory.
	Path string `yaml:"path"`
	// Only restricts the categories loaded to these names. Empty means all.
	Only []string `yaml:"only"`
	// Expressions also loads each category's expressions file (regular
	// expressions over host/path; slower than lists). Default false.
	Expressions bool `yaml:"expressions"`
}

// Group is a named set of clients and users.
type Group struct {
	Name    string         `yaml:"name"`
	Clients []netip.Prefix `yaml:"clients"`
	Users   []string       `yaml:"users"`
}

// Rule is one policy rule. All conditions it lists must hold; groups, users
// and clients together are one condition (any of them).
type Rule struct {
	Name       string         `yaml:"name"`
	Groups     []string       `yaml:"groups"`
	Users      []string       `yaml:"users"`
	Clients    []netip.Prefix `yaml:"clients"`
	Categories []string       `yaml:"categories"`
	Domains    []string       `yaml:"domains"`
	URLs       []string       `yaml:"urls"`
	Methods    []string       `yaml:"methods"`
	Ports      []uint16       `yaml:"ports"`
	// Schedule lists time windows; the rule applies inside any of them.
	// Empty means always.
	Schedule []Window `yaml:"schedule"`
	// Action is allow, block, warn or monitor.
	Action string `yaml:"action"`
	// WarnFor is how long a user who continues past a warn page is let
	// through. Zero means 1h.
	WarnFor time.Duration `yaml:"warn_for"`
}

// Window is a weekly time window.
type Window struct {
	// Days: mon, tue, ... sun. Empty means every day.
	Days []string `yaml:"days"`
	// From and To are "HH:MM", 24-hour, To exclusive; To before From runs
	// past midnight. Both empty means the whole day.
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// TimeZone is an IANA zone name such as Europe/Berlin. Empty means UTC.
	TimeZone string `yaml:"time_zone"`
}

// Filter holds the policy settings that are not rules.
type Filter struct {
	// DefaultAction applies when no rule matches: allow (the default),
	// block, warn or monitor.
	DefaultAction string `yaml:"default_action"`
	// BlockPage and WarnPage are html/template files that replace the
	// built-in pages. Empty means built-in.
	BlockPage string `yaml:"block_page"`
	WarnPage  string `yaml:"warn_page"`
}

// Log configures the operational log (log/slog), not the audit trail.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Proxy configures the forward proxy.
type Proxy struct {
	// Listen is the host:port of the forward proxy. Default ":3128".
	Listen string `yaml:"listen"`
	// AllowClients lists the client networks that may use the proxy.
	// Default: loopback and the private ranges. An empty list (written as
	// []) admits nobody.
	AllowClients []netip.Prefix `yaml:"allow_clients"`
	// AllowDestinations lists networks exempt from the private-address
	// destination guard. Default none.
	AllowDestinations []netip.Prefix `yaml:"allow_destinations"`
	// ConnectPorts lists the ports CONNECT may reach. Default [443].
	ConnectPorts []uint16 `yaml:"connect_ports"`
	// ForwardedFor adds X-Forwarded-For with the client address to
	// forwarded requests. Default false: a forward proxy hides its clients.
	ForwardedFor bool `yaml:"forwarded_for"`
	// Parent is an optional parent proxy, "http://host:port", through which
	// every forwarded request and tunnel goes. Empty means direct.
	Parent string `yaml:"parent"`
	// ExtraCAFiles are PEM files of CAs trusted for upstream TLS in addition
	// to the system roots.
	ExtraCAFiles []string `yaml:"extra_ca_files"`
	Auth         Auth     `yaml:"auth"`
	Limits       Limits   `yaml:"limits"`
	Timeouts     Timeouts `yaml:"timeouts"`
	PAC          PAC      `yaml:"pac"`
}

// Auth configures optional proxy authentication (Basic). With no users,
// authentication is off.
type Auth struct {
	// Realm is shown by browsers in the login prompt. Default "Waygate".
	Realm string `yaml:"realm"`
	// Users may log in; each has a bcrypt hash made by `waygate passwd`.
	Users []User `yaml:"users"`
	// FailuresPerMinute is how many wrong passwords one client address may
	// send per minute before it is answered 429. Default 10.
	FailuresPerMinute int `yaml:"failures_per_minute"`
}

// User is one proxy user.
type User struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"`
}

// Limits bound the resources one client or all clients may take. Zero
// means the default, never "unlimited".
type Limits struct {
	// MaxConnections is the cap on concurrent client connections. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerClient is the cap per client address. Default 512.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// MaxTunnels is the cap on concurrent CONNECT tunnels. Default 10000.
	MaxTunnels int `yaml:"max_tunnels"`
	// MaxTunnelsPerClient is the cap per client address. Default 256.
	MaxTunnelsPerClient int `yaml:"max_tunnels_per_client"`
	// MaxHeaderBytes is the largest request header accepted; larger gets
	// 431. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
}

// Timeouts of the proxy. Zero means the default.
type Timeouts struct {
	// ReadHeader bounds reading a request's header (slowloris). Default 10s.
	ReadHeader time.Duration `yaml:"read_header"`
	// Idle closes a keep-alive client connection idle this long. Default 120s.
	Idle time.Duration `yaml:"idle"`
	// TunnelIdle closes a CONNECT tunnel with no bytes either way this long.
	// Default 10m.
	TunnelIdle time.Duration `yaml:"tunnel_idle"`
	// Dial bounds one outbound connection attempt, all addresses. Default 10s.
	Dial time.Duration `yaml:"dial"`
	// ResponseHeader bounds the wait for an origin's response header.
	// Default 60s.
	ResponseHeader time.Duration `yaml:"response_header"`
	// Shutdown is how long SIGTERM waits for requests and tunnels to end.
	// Default 30s.
	Shutdown time.Duration `yaml:"shutdown"`
}

// PAC configures the generated proxy auto-config file served at
// /proxy.pac and /wpad.dat.
type PAC struct {
	// ProxyAddress is the host:port written into the PAC file. Empty means
	// the host the PAC file was requested from, with the proxy's port.
	ProxyAddress string `yaml:"proxy_address"`
	// DirectDomains are reached without the proxy (the name and its
	// subdomains).
	DirectDomains []string `yaml:"direct_domains"`
	// DirectNetworks are reached without the proxy when the host is an IP
	// literal in them.
	DirectNetworks []netip.Prefix `yaml:"direct_networks"`
}

// DNS configures the gateway's own caching resolver, used for every outbound
// connection.
type DNS struct {
	// Servers are "ip" or "ip:port" of recursive resolvers. Empty means the
	// nameservers of /etc/resolv.conf.
	Servers []string `yaml:"servers"`
	// HostsFile is consulted before DNS. Default "/etc/hosts"; "none"
	// disables it.
	HostsFile string `yaml:"hosts_file"`
	// Timeout bounds one query to one server. Default 2s.
	Timeout time.Duration `yaml:"timeout"`
	// Attempts is how many rounds over all servers are tried. Default 2.
	Attempts int `yaml:"attempts"`
	// MinTTL and MaxTTL clamp the TTL of cached answers. Defaults 5s and 1h.
	MinTTL time.Duration `yaml:"min_ttl"`
	MaxTTL time.Duration `yaml:"max_ttl"`
	// NegativeTTL caches NXDOMAIN and empty answers. Default 30s.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// Admin configures the admin listener: the web UI, its API, health and
// metrics.
type Admin struct {
	// Listen is the admin host:port. Default "127.0.0.1:9090". Empty
	// (written as "") disables the admin listener.
	Listen string `yaml:"listen"`
	// TLS serves the admin listener over HTTPS. Off by default.
	TLS AdminTLS `yaml:"tls"`
}

// AdminTLS configures HTTPS on the admin listener (TLS 1.2 and later,
// HTTP/2). Certificate paths are not checked here: a relative path is
// relative to the config file's directory and is resolved, and read, by
// the caller.
type AdminTLS struct {
	// Enabled serves the admin listener over HTTPS instead of plain HTTP.
	// Default false.
	Enabled bool `yaml:"enabled"`
	// Certificates are chosen by SNI. Empty (the default) means a
	// self-signed certificate generated into data_dir. They need Enabled.
	Certificates []CertPair `yaml:"certificates"`
}
