package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Validate checks c the way Parse checks a file, and returns nil or an *Error
// listing every problem found. Problems carry Path and Msg but no File, Line
// or Column. Zero limits, timeouts, dns.timeout, dns.attempts and
// auth.failures_per_minute are valid: they mean the default. A nil c is
// invalid.
func (c *Config) Validate() error {
	if c == nil {
		return &Error{Problems: []Problem{{Msg: "no configuration (nil *Config)"}}}
	}
	probs := c.problems()
	if len(probs) == 0 {
		return nil
	}
	return &Error{Problems: capProblems(probs, "")}
}

// capProblems truncates probs to maxProblems, noting that more were found.
func capProblems(probs []Problem, file string) []Problem {
	if len(probs) <= maxProblems {
		return probs
	}
	probs = probs[:maxProblems:maxProblems]
	return append(probs, Problem{File: file, Msg: fmt.Sprintf("too many errors (only the first %d are shown)", maxProblems)})
}

// checker accumulates validation problems.
type checker struct {
	probs []Problem
}

func (k *checker) add(path, format string, args ...any) {
	k.probs = append(k.probs, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// problems returns every validation problem of c, in the order of the fields.
func (c *Config) problems() []Problem {
	var k checker
	if c.SchemaVersion != 1 {
		k.add("schema_version", "unsupported schema_version %d (this build supports 1)", c.SchemaVersion)
	}
	if c.DataDir == "" {
		k.add("data_dir", "must not be empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		k.add("log.level", "%q is not a log level (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		k.add("log.format", "%q is not a log format (want text or json)", c.Log.Format)
	}

	p := &c.Proxy
	if err := checkListen(p.Listen); err != nil {
		k.add("proxy.listen", "%v", err)
	}
	k.prefixes("proxy.allow_clients", p.AllowClients)
	k.prefixes("proxy.allow_destinations", p.AllowDestinations)
	seenPort := make(map[uint16]int, len(p.ConnectPorts))
	for i, port := range p.ConnectPorts {
		path := fmt.Sprintf("proxy.connect_ports[%d]", i)
		if port == 0 {
			k.add(path, "0 is not a port (want 1 to 65535)")
			continue
		}
		if j, dup := seenPort[port]; dup {
			k.add(path, "duplicate port %d (also connect_ports[%d])", port, j)
			continue
		}
		seenPort[port] = i
	}
	if p.Parent != "" {
		if err := checkParent(p.Parent); err != nil {
			k.add("proxy.parent", "%v", err)
		}
	}
	for i, f := range p.ExtraCAFiles {
		if f == "" {
			k.add(fmt.Sprintf("proxy.extra_ca_files[%d]", i), "file name must not be empty")
		}
	}
	k.auth(&p.Auth)
	k.limits(p.Limits)
	k.durations([]namedDuration{
		{"proxy.timeouts.read_header", p.Timeouts.ReadHeader},
		{"proxy.timeouts.idle", p.Timeouts.Idle},
		{"proxy.timeouts.tunnel_idle", p.Timeouts.TunnelIdle},
		{"proxy.timeouts.dial", p.Timeouts.Dial},
		{"proxy.timeouts.response_header", p.Timeouts.ResponseHeader},
		{"proxy.timeouts.shutdown", p.Timeouts.Shutdown},
	})
	if p.PAC.ProxyAddress != "" {
		if err := checkHostPort(p.PAC.ProxyAddress, true); err != nil {
			k.add("proxy.pac.proxy_address", "%v", err)
		}
	}
	for i, d := range p.PAC.DirectDomains {
		if !validDomainPattern(d) {
			k.add(fmt.Sprintf("proxy.pac.direct_domains[%d]", i),
				"%q is not a domain name (letters, digits, '-' and '.', optionally starting with \"*.\" or \".\")", d)
		}
	}
	k.prefixes("proxy.pac.direct_networks", p.PAC.DirectNetworks)

	d := &c.DNS
	for i, s := range d.Servers {
		if _, err := parseDNSServer(s); err != nil {
			k.add(fmt.Sprintf("dns.servers[%d]", i), "%v", err)
		}
	}
	if d.HostsFile == "" {
		k.add("dns.hosts_file", `must not be empty (write "none" to disable the hosts file)`)
	}
	if d.Attempts < 0 {
		k.add("dns.attempts", "%d must not be negative", d.Attempts)
	}
	k.durations([]namedDuration{
		{"dns.timeout", d.Timeout},
		{"dns.min_ttl", d.MinTTL},
		{"dns.max_ttl", d.MaxTTL},
		{"dns.negative_ttl", d.NegativeTTL},
	})
	if d.MinTTL >= 0 && d.MaxTTL >= 0 && d.MinTTL > d.MaxTTL {
		k.add("dns.min_ttl", "%v is greater than dns.max_ttl %v", d.MinTTL, d.MaxTTL)
	}

	if c.Admin.Listen != "" {
		if err := checkListen(c.Admin.Listen); err != nil {
			k.add("admin.listen", "%v", err)
		}
	}
	k.adminTLS(&c.Admin)
	c.reverseProblems(&k)
	c.policyProblems(&k)
	c.auditProblems(&k)
	return k.probs
}

// adminTLS checks admin.tls: every certificate needs both files, and
// certificates or enabled make sense only with TLS on and a listener.
func (k *checker) adminTLS(a *Admin) {
	t := &a.TLS
	for i, cp := range t.Certificates {
		p := fmt.Sprintf("admin.tls.certificates[%d]", i)
		if cp.Cert == "" {
			k.add(p+".cert", "a certificate needs a cert file (and a key file)")
		}
		if cp.Key == "" {
			k.add(p+".key", "a certificate needs a key file (and a cert file)")
		}
	}
	switch {
	case t.Enabled && a.Listen == "":
		k.add("admin.tls.enabled", `true, but admin.listen is "" (the admin listener is off)`)
	case len(t.Certificates) > 0 && !t.Enabled:
		k.add("admin.tls.certificates", "set, but admin.tls.enabled is false (HTTPS is off)")
	}
}

func (k *checker) prefixes(path string, ps []netip.Prefix) {
	for i, p := range ps {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !p.IsValid():
			k.add(ipath, "invalid network (zero netip.Prefix)")
		case p != p.Masked():
			k.add(ipath, "%q has host bits set (did you mean %q?)", p.String(), p.Masked().String())
		}
	}
}

func (k *checker) auth(a *Auth) {
	switch {
	case a.Realm == "":
		k.add("proxy.auth.realm", "must not be empty")
	case strings.ContainsAny(a.Realm, `"\`) || hasControl(a.Realm):
		k.add("proxy.auth.realm", "%q must not contain '\"', '\\' or control characters", a.Realm)
	}
	if a.FailuresPerMinute < 0 {
		k.add("proxy.auth.failures_per_minute", "%d must not be negative", a.FailuresPerMinute)
	}
	seen := make(map[string]int, len(a.Users))
	for i, u := range a.Users {
		path := fmt.Sprintf("proxy.auth.users[%d]", i)
		who := ""
		switch {
		case u.Name == "":
			k.add(path+".name", "user name is required")
		case strings.ContainsRune(u.Name, ':'):
			k.add(path+".name", "user %q: name must not contain ':'", u.Name)
		case hasControl(u.Name):
			k.add(path+".name", "user %q: name must not contain control characters", u.Name)
		default:
			who = fmt.Sprintf("user %q: ", u.Name)
			if j, dup := seen[u.Name]; dup {
				k.add(path+".name", "duplicate user %q (also users[%d])", u.Name, j)
			} else {
				seen[u.Name] = i
			}
		}
		// Never echo the hash: it is a secret.
		switch {
		case u.PasswordHash == "":
			k.add(path+".password_hash", "%spassword_hash is required (make one with `waygate passwd`)", who)
		case !validBcrypt(u.PasswordHash):
			k.add(path+".password_hash", "%spassword_hash is not a bcrypt hash (want $2a$, $2b$ or $2y$; make one with `waygate passwd`)", who)
		}
	}
}

func (k *checker) limits(l Limits) {
	for _, v := range []struct {
		path string
		n    int
	}{
		{"proxy.limits.max_connections", l.MaxConnections},
		{"proxy.limits.max_connections_per_client", l.MaxConnectionsPerClient},
		{"proxy.limits.max_tunnels", l.MaxTunnels},
		{"proxy.limits.max_tunnels_per_client", l.MaxTunnelsPerClient},
		{"proxy.limits.max_header_bytes", l.MaxHeaderBytes},
	} {
		if v.n < 0 {
			k.add(v.path, "%d must not be negative (0 means the default)", v.n)
		}
	}
	e := effectiveLimits(l)
	if l.MaxConnections >= 0 && l.MaxConnectionsPerClient >= 0 && e.MaxConnectionsPerClient > e.MaxConnections {
		k.add("proxy.limits.max_connections_per_client", "%d is greater than max_connections %d",
			e.MaxConnectionsPerClient, e.MaxConnections)
	}
	if l.MaxTunnels >= 0 && l.MaxTunnelsPerClient >= 0 && e.MaxTunnelsPerClient > e.MaxTunnels {
		k.add("proxy.limits.max_tunnels_per_client", "%d is greater than max_tunnels %d",
			e.MaxTunnelsPerClient, e.MaxTunnels)
	}
}

type namedDuration struct {
	path string
	d    time.Duration
}

func (k *checker) durations(ds []namedDuration) {
	for _, d := range ds {
		if d.d < 0 {
			k.add(d.path, "%v must not be negative", d.d)
		}
	}
}

// checkHostPort checks a "host:port" address with a numeric port from 1 to
// 65535. The host may be empty (all interfaces) unless needHost.
func checkHostPort(s string, needHost bool) error {
	return checkAddr(s, needHost, false)
}

// checkListen checks a listen address: like checkHostPort, but port 0 (the
// kernel picks a free port, which the gateway logs) is allowed.
func checkListen(s string) error {
	return checkAddr(s, false, true)
}

func checkAddr(s string, needHost, portZero bool) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return fmt.Errorf("%q is not a host:port address (%s)", s, ae.Err)
		}
		return fmt.Errorf("%q is not a host:port address", s)
	}
	if host == "" && needHost {
		return fmt.Errorf("%q has no host", s)
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("%q: %q is not an IP address or host name", s, host)
	}
	if portZero && port == "0" {
		return nil
	}
	if !validPort(port) {
		return fmt.Errorf("%q: port must be a number from 1 to 65535", s)
	}
	return nil
}

// checkParent checks a parent proxy URL: http://host:port with nothing else.
func checkParent(s string) error {
	const want = "must be an http://host:port URL"
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q %s", s, want)
	}
	if u.User != nil {
		return fmt.Errorf("%q: credentials in the parent URL are not supported", u.Redacted())
	}
	if u.Scheme != "http" || u.Opaque != "" || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("%q %s", s, want)
	}
	if u.Port() == "" {
		return fmt.Errorf("%q has no port (%s)", s, want)
	}
	if !validPort(u.Port()) {
		return fmt.Errorf("%q: port must be a number from 1 to 65535", s)
	}
	if !validHost(u.Hostname()) {
		return fmt.Errorf("%q: %q is not an IP address or host name", s, u.Hostname())
	}
	return nil
}

// validPort reports whether s is a decimal port from 1 to 65535.
func validPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n > 0
}

// validHost reports whether s is an IP address (with optional zone) or a host
// name.
func validHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return validHostname(s)
}

// validHostname reports whether s is a host name: dot-separated labels of 1
// to 63 letters, digits and hyphens, 253 bytes at most.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validDomainPattern reports whether s is a host name, optionally prefixed
// by "*." or ".".
func validDomainPattern(s string) bool {
	if t, ok := strings.CutPrefix(s, "*."); ok {
		s = t
	} else {
		s = strings.TrimPrefix(s, ".")
	}
	return validHostname(s)
}

// parseDNSServer parses "ip" or "ip:port", defaulting the port to 53.
func parseDNSServer(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address or ip:port", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: port must be from 1 to 65535", s)
	}
	return ap, nil
}

// validBcrypt reports whether s has the shape of a bcrypt hash:
// $2a$, $2b$ or $2y$, a two-digit cost from 04 to 31, '$' and 53 characters
// of bcrypt's base64 alphabet.
func validBcrypt(s string) bool {
	if len(s) != 60 {
		return false
	}
	switch s[:4] {
	case "$2a$", "$2b$", "$2y$":
	default:
		return false
	}
	if s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' || s[6] != '$' {
		return false
	}
	if cost := int(s[4]-'0')*10 + int(s[5]-'0'); cost < 4 || cost > 31 {
		return false
	}
	for i := 7; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

// hasControl reports whether s contains a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// toLowerASCII lower-cases ASCII letters only (host names are ASCII).
func toLowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
