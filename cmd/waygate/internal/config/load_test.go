package config_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"waygate/cmd/waygate/internal/config"
)

// A syntactically valid bcrypt hash (of "secret", cost 10).
const hash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"

func TestDefault(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.SchemaVersion != 1 || c.Proxy.Listen != ":3128" || c.Admin.Listen != "127.0.0.1:9090" ||
		c.DataDir != "./data" || c.Log.Level != "info" || c.Log.Format != "text" ||
		c.Proxy.Auth.Realm != "Waygate" || c.Proxy.Auth.FailuresPerMinute != 10 {
		t.Errorf("unexpected scalar defaults: %+v", c)
	}
	wantClients := []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
	if got := prefixStrings(c.Proxy.AllowClients); !reflect.DeepEqual(got, wantClients) {
		t.Errorf("AllowClients = %v, want %v", got, wantClients)
	}
	if !reflect.DeepEqual(c.Proxy.ConnectPorts, []uint16{443}) {
		t.Errorf("ConnectPorts = %v", c.Proxy.ConnectPorts)
	}
	wantLimits := config.Limits{MaxConnections: 10000, MaxConnectionsPerClient: 512, MaxTunnels: 10000, MaxTunnelsPerClient: 256, MaxHeaderBytes: 65536}
	if c.Proxy.Limits != wantLimits {
		t.Errorf("Limits = %+v, want %+v", c.Proxy.Limits, wantLimits)
	}
	wantTimeouts := config.Timeouts{ReadHeader: 10 * time.Second, Idle: 120 * time.Second, TunnelIdle: 10 * time.Minute,
		Dial: 10 * time.Second, ResponseHeader: 60 * time.Second, Shutdown: 30 * time.Second}
	if c.Proxy.Timeouts != wantTimeouts {
		t.Errorf("Timeouts = %+v, want %+v", c.Proxy.Timeouts, wantTimeouts)
	}
	d := c.DNS
	if len(d.Servers) != 0 || d.HostsFile != "/etc/hosts" || d.Timeout != 2*time.Second || d.Attempts != 2 ||
		d.MinTTL != 5*time.Second || d.MaxTTL != time.Hour || d.NegativeTTL != 30*time.Second {
		t.Errorf("DNS = %+v", d)
	}

	// Each call returns fresh slices.
	c.Proxy.AllowClients[0] = netip.MustParsePrefix("1.0.0.0/8")
	c.Proxy.ConnectPorts[0] = 1
	if c2 := config.Default(); c2.Proxy.AllowClients[0].String() != "127.0.0.0/8" || c2.Proxy.ConnectPorts[0] != 443 {
		t.Error("Default shares slices between calls")
	}
}

func TestDefaultYAMLEqualsDefault(t *testing.T) {
	c, err := config.Parse("default.yaml", config.DefaultYAML)
	if err != nil {
		t.Fatalf("Parse(DefaultYAML): %v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(c, want) {
		t.Errorf("DefaultYAML parses to\n%+v\nwant Default()\n%+v", c, want)
	}
}

// TestDefaultYAMLDocumentsEveryKey checks that every yaml key of Config
// appears in DefaultYAML, so the reference cannot fall behind the types.
func TestDefaultYAMLDocumentsEveryKey(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(config.DefaultYAML, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, typ reflect.Type, n *yaml.Node)
	walk = func(path string, typ reflect.Type, n *yaml.Node) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := f.Tag.Get("yaml")
			var val *yaml.Node
			for j := 0; n != nil && j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == key {
					val = n.Content[j+1]
				}
			}
			p := strings.TrimPrefix(path+"."+key, ".")
			if val == nil {
				t.Errorf("default.yaml does not document %s", p)
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == typ.PkgPath() {
				walk(p, f.Type, val)
			}
		}
	}
	walk("", reflect.TypeFor[config.Config](), doc.Content[0])
}

func TestParseFullFile(t *testing.T) {
	src := `schema_version: 1
data_dir: /var/lib/waygate
log: {level: debug, format: json}
proxy:
  listen: "0.0.0.0:8080"
  allow_clients: [10.1.0.0/16, 192.0.2.7, "2001:db8::/32", "2001:db8::1"]
  allow_destinations: [10.9.0.0/24]
  connect_ports: [443, 8443]
  forwarded_for: true
  parent: http://parent.example:3128
  extra_ca_files: [/etc/ca.pem]
  auth:
    realm: Corp
    users:
      - name: alice
        password_hash: "` + hash + `"
      - {name: bob, password_hash: "` + strings.Replace(hash, "$2a$", "$2y$", 1) + `"}
    failures_per_minute: 3
  limits:
    max_connections: 100
    max_tunnels_per_client: 7
    max_header_bytes: 0
  timeouts:
    read_header: 5s
    idle: 0
    tunnel_idle: 1h
    dial: 1500ms
    response_header: 0s
    shutdown: 1m
  pac:
    proxy_address: proxy.example:8080
    direct_domains: [Example.COM, "*.corp.example", .local]
    direct_networks: [172.16.0.0/12]
dns:
  servers: [192.0.2.53, "192.0.2.54:5353", "2001:db8::53", "[2001:db8::54]:54"]
  hosts_file: none
  timeout: 1s
  attempts: 0
  min_ttl: 0s
  max_ttl: 5m
  negative_ttl: 0s
admin:
  listen: "[::1]:9443"
  tls:
    enabled: true
    certificates:
      - {cert: certs/admin.pem, key: certs/admin.key}
      - cert: /etc/ssl/admin2.pem
        key: /etc/ssl/admin2.key
`
	got, err := config.Parse("full.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.Default()
	want.DataDir = "/var/lib/waygate"
	want.Log = config.Log{Level: "debug", Format: "json"}
	p := &want.Proxy
	p.Listen = "0.0.0.0:8080"
	p.AllowClients = prefixes("10.1.0.0/16", "192.0.2.7/32", "2001:db8::/32", "2001:db8::1/128")
	p.AllowDestinations = prefixes("10.9.0.0/24")
	p.ConnectPorts = []uint16{443, 8443}
	p.ForwardedFor = true
	p.Parent = "http://parent.example:3128"
	p.ExtraCAFiles = []string{"/etc/ca.pem"}
	p.Auth = config.Auth{Realm: "Corp", FailuresPerMinute: 3, Users: []config.User{
		{Name: "alice", PasswordHash: hash},
		{Name: "bob", PasswordHash: strings.Replace(hash, "$2a$", "$2y$", 1)},
	}}
	// max_connections_per_client is defaulted to min(512, 100).
	p.Limits = config.Limits{MaxConnections: 100, MaxConnectionsPerClient: 100, MaxTunnels: 10000,
		MaxTunnelsPerClient: 7, MaxHeaderBytes: 65536}
	p.Timeouts = config.Timeouts{ReadHeader: 5 * time.Second, Idle: 120 * time.Second, TunnelIdle: time.Hour,
		Dial: 1500 * time.Millisecond, ResponseHeader: 60 * time.Second, Shutdown: time.Minute}
	p.PAC = config.PAC{ProxyAddress: "proxy.example:8080",
		DirectDomains:  []string{"example.com", "*.corp.example", ".local"},
		DirectNetworks: prefixes("172.16.0.0/12")}
	want.DNS = config.DNS{
		Servers:   []string{"192.0.2.53:53", "192.0.2.54:5353", "[2001:db8::53]:53", "[2001:db8::54]:54"},
		HostsFile: "none", Timeout: time.Second, Attempts: 2,
		MinTTL: 0, MaxTTL: 5 * time.Minute, NegativeTTL: 0,
	}
	want.Admin = config.Admin{Listen: "[::1]:9443", TLS: config.AdminTLS{Enabled: true, Certificates: []config.CertPair{
		{Cert: "certs/admin.pem", Key: "certs/admin.key"},
		{Cert: "/etc/ssl/admin2.pem", Key: "/etc/ssl/admin2.key"},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate of parsed config: %v", err)
	}
}

func TestAllowClientsAbsentVersusEmpty(t *testing.T) {
	absent, err := config.Parse("a.yaml", []byte("schema_version: 1\nproxy:\n  listen: ':1'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(absent.Proxy.AllowClients, config.Default().Proxy.AllowClients) {
		t.Errorf("absent allow_clients = %v, want the default", absent.Proxy.AllowClients)
	}
	empty, err := config.Parse("e.yaml", []byte("schema_version: 1\nproxy:\n  allow_clients: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if empty.Proxy.AllowClients == nil || len(empty.Proxy.AllowClients) != 0 {
		t.Errorf("allow_clients: [] = %#v, want an empty list", empty.Proxy.AllowClients)
	}
	// A key with no value is ambiguous and refused.
	_, err = config.Parse("n.yaml", []byte("schema_version: 1\nproxy:\n  allow_clients:\n"))
	wantProblems(t, err, "n.yaml:3:17: proxy.allow_clients: expected a list, got null (write [] for an empty list)")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // the problems, formatted
	}{
		{"empty file", "", []string{"w.yaml:1: schema_version is required"}},
		{"only comments", "# nothing\n# here\n", []string{"w.yaml:1: schema_version is required"}},
		{"document marker only", "---\n", []string{"w.yaml:1: schema_version is required"}},
		{"missing schema_version", "data_dir: x\n", []string{"w.yaml:1:1: schema_version is required"}},
		{"unsupported schema_version", "schema_version: 2\nbogus: 1\n",
			[]string{"w.yaml:1:17: schema_version: unsupported schema_version 2 (this build supports 1)"}},
		{"schema_version string", "schema_version: \"1\"\n",
			[]string{`w.yaml:1:17: schema_version: expected an integer, got the string "1"`}},
		{"top level list", "- a\n- b\n", []string{`w.yaml:1:1: the file must be a mapping of keys (such as "schema_version: 1"), not a list`}},
		{"top level scalar", "hello\n", []string{`w.yaml:1:1: the file must be a mapping of keys (such as "schema_version: 1"), not the string "hello"`}},
		{"unknown top-level key", "schema_version: 1\nlisten: ':80'\n",
			[]string{`w.yaml:2:1: unknown key "listen" (known keys: schema_version, data_dir, log, proxy, dns, admin, reverse, categories, category_dirs, groups, rules, filter, audit)`}},
		{"unknown nested key with suggestion", "schema_version: 1\nproxy:\n  allow_client: []\n",
			[]string{`w.yaml:3:3: proxy: unknown key "allow_client" (did you mean "allow_clients"?)`}},
		{"unknown key in user", "schema_version: 1\nproxy:\n  auth:\n    users:\n      - name: a\n        password: x\n",
			[]string{
				"w.yaml:5:9: proxy.auth.users[0].password_hash: user \"a\": password_hash is required (make one with `waygate passwd`)",
				`w.yaml:6:9: proxy.auth.users[0]: unknown key "password" (did you mean "password_hash"?)`,
			}},
		{"wrong type string", "schema_version: 1\nproxy:\n  listen: 3128\n",
			[]string{"w.yaml:3:11: proxy.listen: expected a string, got the integer 3128 (put it in quotes)"}},
		{"wrong type int", "schema_version: 1\nproxy:\n  limits:\n    max_tunnels: many\n",
			[]string{`w.yaml:4:18: proxy.limits.max_tunnels: expected an integer, got the string "many"`}},
		{"wrong type bool", "schema_version: 1\nproxy:\n  forwarded_for: yes\n",
			[]string{`w.yaml:3:18: proxy.forwarded_for: expected true or false, got the string "yes"`}},
		{"wrong type section", "schema_version: 1\nlog: debug\n",
			[]string{`w.yaml:2:6: log: expected a mapping of keys, got the string "debug"`}},
		{"scalar for list", "schema_version: 1\nproxy:\n  connect_ports: 443\n",
			[]string{"w.yaml:3:18: proxy.connect_ports: expected a list, got the integer 443 (write [443] for a list of one)"}},
		{"null string", "schema_version: 1\nadmin:\n  listen:\n",
			[]string{`w.yaml:3:10: admin.listen: expected a string, got null (write "" for an empty string)`}},
		{"bad CIDR", "schema_version: 1\nproxy:\n  allow_clients:\n    - 10.0.0.0/8\n    - ::1\n    - 10.0.0.0/33\n",
			[]string{`w.yaml:6:7: proxy.allow_clients[2]: "10.0.0.0/33" is not a CIDR or IP address`}},
		{"host bits set", "schema_version: 1\nproxy:\n  allow_destinations: [10.0.0.1/8]\n",
			[]string{`w.yaml:3:24: proxy.allow_destinations[0]: "10.0.0.1/8" has host bits set (did you mean "10.0.0.0/8"?)`}},
		{"bad duration", "schema_version: 1\nproxy:\n  timeouts:\n    idle: 10 seconds\n",
			[]string{`w.yaml:4:11: proxy.timeouts.idle: "10 seconds" is not a duration (want a duration such as "10s", "1m30s" or "2h")`}},
		{"duration without unit", "schema_version: 1\ndns:\n  timeout: 10\n",
			[]string{`w.yaml:3:12: dns.timeout: expected a duration such as "10s", "1m30s" or "2h", got the integer 10 (a duration needs a unit)`}},
		{"negative duration", "schema_version: 1\ndns:\n  negative_ttl: -1s\n",
			[]string{"w.yaml:3:17: dns.negative_ttl: -1s must not be negative"}},
		{"duplicate key", "schema_version: 1\nproxy:\n  listen: ':1'\n  listen: ':2'\n",
			[]string{`w.yaml:4:3: proxy: duplicate key "listen" (first at line 3)`}},
		{"duplicate top-level key", "schema_version: 1\nschema_version: 1\n",
			[]string{`w.yaml:2:1: duplicate key "schema_version" (first at line 1)`}},
		{"unknown key with anchor", "schema_version: 1\nx: &x {level: info}\n",
			[]string{`w.yaml:2:1: unknown key "x" (known keys: schema_version, data_dir, log, proxy, dns, admin, reverse, categories, category_dirs, groups, rules, filter, audit)`}},
		{"merge key used", "schema_version: 1\nlog:\n  <<: {level: info}\n",
			[]string{"w.yaml:3:3: log: merge keys (<<) are not supported"}},
		{"syntax error", "schema_version: 1\nproxy:\n  listen: ':1'\n bad: 2\n",
			[]string{"w.yaml:4: invalid YAML: did not find expected key"}},
		{"syntax error first line", "a: [\n",
			[]string{"w.yaml:2: invalid YAML: did not find expected node content"}},
		{"unknown anchor", "schema_version: 1\nlog:\n  level: *lvl\n",
			[]string{"w.yaml:3: invalid YAML: unknown anchor 'lvl' referenced"}},
		{"two documents", "schema_version: 1\n---\nschema_version: 1\n",
			[]string{"w.yaml:2:1: only one YAML document is allowed"}},
		{"invalid utf-8", "schema_version: 1\ndata_dir: \xff\n", []string{"w.yaml:2:11: the file is not valid UTF-8"}},
		{"control character", "schema_version: 1\ndata_dir: a\x01\n", []string{"w.yaml:2:12: control character U+0001 is not allowed"}},
		{"bad port", "schema_version: 1\nproxy:\n  connect_ports: [443, 0, 70000, 443]\n", []string{
			"w.yaml:3:24: proxy.connect_ports[1]: 0 is not a port (want 1 to 65535)",
			"w.yaml:3:27: proxy.connect_ports[2]: 70000 is not a port (want 1 to 65535)",
			"w.yaml:3:34: proxy.connect_ports[3]: duplicate port 443 (also connect_ports[0])",
		}},
		{"bad listen", "schema_version: 1\nproxy:\n  listen: localhost\n",
			[]string{`w.yaml:3:11: proxy.listen: "localhost" is not a host:port address (missing port in address)`}},
		{"bad listen port", "schema_version: 1\nadmin:\n  listen: ':http'\n",
			[]string{`w.yaml:3:11: admin.listen: ":http": port must be a number from 1 to 65535`}},
		{"admin tls cert without key", "schema_version: 1\nadmin:\n  tls:\n    enabled: true\n    certificates:\n      - {cert: admin.pem}\n",
			[]string{"w.yaml:6:9: admin.tls.certificates[0].key: a certificate needs a key file (and a cert file)"}},
		{"admin tls key without cert", "schema_version: 1\nadmin:\n  tls:\n    enabled: true\n    certificates:\n      - {cert: a.pem, key: a.key}\n      - key: b.key\n",
			[]string{"w.yaml:7:9: admin.tls.certificates[1].cert: a certificate needs a cert file (and a key file)"}},
		{"admin tls empty key", "schema_version: 1\nadmin:\n  tls:\n    enabled: true\n    certificates:\n      - cert: a.pem\n        key: ''\n",
			[]string{"w.yaml:7:14: admin.tls.certificates[0].key: a certificate needs a key file (and a cert file)"}},
		{"admin tls certificates while disabled", "schema_version: 1\nadmin:\n  tls:\n    certificates:\n      - {cert: a.pem, key: a.key}\n",
			[]string{"w.yaml:5:7: admin.tls.certificates: set, but admin.tls.enabled is false (HTTPS is off)"}},
		{"admin tls without listener", "schema_version: 1\nadmin:\n  listen: ''\n  tls: {enabled: true}\n",
			[]string{`w.yaml:4:18: admin.tls.enabled: true, but admin.listen is "" (the admin listener is off)`}},
		{"admin tls enabled not bool", "schema_version: 1\nadmin:\n  tls:\n    enabled: on\n",
			[]string{`w.yaml:4:14: admin.tls.enabled: expected true or false, got the string "on"`}},
		{"admin tls certificate as string", "schema_version: 1\nadmin:\n  tls:\n    enabled: true\n    certificates: [a.pem]\n",
			[]string{`w.yaml:5:20: admin.tls.certificates[0]: expected a mapping of keys, got the string "a.pem"`}},
		{"admin tls unknown key", "schema_version: 1\nadmin:\n  tls:\n    enable: true\n",
			[]string{`w.yaml:4:5: admin.tls: unknown key "enable" (did you mean "enabled"?)`}},
		{"bad parent", "schema_version: 1\nproxy:\n  parent: https://p:1\n",
			[]string{`w.yaml:3:11: proxy.parent: "https://p:1" must be an http://host:port URL`}},
		{"parent without port", "schema_version: 1\nproxy:\n  parent: http://p\n",
			[]string{`w.yaml:3:11: proxy.parent: "http://p" has no port (must be an http://host:port URL)`}},
		{"bad log level", "schema_version: 1\nlog:\n  level: verbose\n",
			[]string{`w.yaml:3:10: log.level: "verbose" is not a log level (want debug, info, warn or error)`}},
		{"bad users", "schema_version: 1\nproxy:\n  auth:\n    users:\n" +
			"      - {name: alice, password_hash: \"" + hash + "\"}\n" +
			"      - {name: alice, password_hash: \"" + hash + "\"}\n" +
			"      - {name: \"b:c\", password_hash: \"" + hash + "\"}\n" +
			"      - {name: dave, password_hash: plaintext}\n" +
			"      - {password_hash: \"" + hash + "\"}\n", []string{
			`w.yaml:6:16: proxy.auth.users[1].name: duplicate user "alice" (also users[0])`,
			`w.yaml:7:16: proxy.auth.users[2].name: user "b:c": name must not contain ':'`,
			"w.yaml:8:37: proxy.auth.users[3].password_hash: user \"dave\": password_hash is not a bcrypt hash (want $2a$, $2b$ or $2y$; make one with `waygate passwd`)",
			"w.yaml:9:9: proxy.auth.users[4].name: user name is required",
		}},
		{"per-client above total", "schema_version: 1\nproxy:\n  limits:\n    max_tunnels: 10\n    max_tunnels_per_client: 11\n",
			[]string{"w.yaml:5:29: proxy.limits.max_tunnels_per_client: 11 is greater than max_tunnels 10"}},
		{"negative limit", "schema_version: 1\nproxy:\n  limits:\n    max_header_bytes: -1\n",
			[]string{"w.yaml:4:23: proxy.limits.max_header_bytes: -1 must not be negative (0 means the default)"}},
		{"ttl order", "schema_version: 1\ndns:\n  min_ttl: 2h\n",
			[]string{"w.yaml:3:12: dns.min_ttl: 2h0m0s is greater than dns.max_ttl 1h0m0s"}},
		{"bad dns server", "schema_version: 1\ndns:\n  servers: [1.1.1.1, dns.google, '1.1.1.1:0']\n", []string{
			`w.yaml:3:22: dns.servers[1]: "dns.google" is not an IP address or ip:port`,
			`w.yaml:3:34: dns.servers[2]: "1.1.1.1:0": port must be from 1 to 65535`,
		}},
		{"bad direct domain", "schema_version: 1\nproxy:\n  pac:\n    direct_domains: [ok.example, 'bad domain', 'a..b']\n", []string{
			`w.yaml:4:34: proxy.pac.direct_domains[1]: "bad domain" is not a domain name (letters, digits, '-' and '.', optionally starting with "*." or ".")`,
			`w.yaml:4:48: proxy.pac.direct_domains[2]: "a..b" is not a domain name (letters, digits, '-' and '.', optionally starting with "*." or ".")`,
		}},
		{"empty strings", "schema_version: 1\ndata_dir: ''\nproxy:\n  extra_ca_files: ['']\n  pac:\n    proxy_address: ':8080'\n", []string{
			"w.yaml:2:11: data_dir: must not be empty",
			"w.yaml:4:20: proxy.extra_ca_files[0]: file name must not be empty",
			`w.yaml:6:20: proxy.pac.proxy_address: ":8080" has no host`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("w.yaml", []byte(tt.src))
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			wantProblems(t, err, tt.want...)
		})
	}
}

func TestMultipleErrorsReportedTogether(t *testing.T) {
	src := `schema_version: 1
log:
  level: loud
  colour: red
proxy:
  listen: nope
  allow_clients: [10.0.0.0/33]
  timeouts:
    dial: -5s
dns:
  attempts: -1
`
	_, err := config.Parse("m.yaml", []byte(src))
	wantProblems(t, err,
		`m.yaml:3:10: log.level: "loud" is not a log level (want debug, info, warn or error)`,
		`m.yaml:4:3: log: unknown key "colour" (known keys: level, format)`,
		`m.yaml:6:11: proxy.listen: "nope" is not a host:port address (missing port in address)`,
		`m.yaml:7:19: proxy.allow_clients[0]: "10.0.0.0/33" is not a CIDR or IP address`,
		"m.yaml:9:11: proxy.timeouts.dial: -5s must not be negative",
		"m.yaml:11:13: dns.attempts: -1 must not be negative",
	)
	if s := err.Error(); strings.Count(s, "\n") != 5 {
		t.Errorf("Error() should have one problem per line:\n%s", s)
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("schema_version: 1\n")
	for i := range 30 {
		b.WriteString("unknown_")
		b.WriteString(strings.Repeat("x", i+1))
		b.WriteString(": 1\n")
	}
	_, err := config.Parse("t.yaml", []byte(b.String()))
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *config.Error", err)
	}
	if n := len(ce.Problems); n != 21 {
		t.Fatalf("got %d problems, want 20 and a note", n)
	}
	if last := ce.Problems[20].String(); !strings.Contains(last, "too many errors") {
		t.Errorf("last problem = %q", last)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	_, err := config.Load(missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error naming the path", err)
	}

	good := filepath.Join(dir, "waygate.yaml")
	if err := os.WriteFile(good, []byte("schema_version: 1\nproxy:\n  listen: '127.0.0.1:8080'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Proxy.Listen != "127.0.0.1:8080" || c.DataDir != "./data" {
		t.Errorf("Load = %+v", c)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("schema_version: 1\nbogus: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":2:1: ") {
		t.Errorf("Load(bad) = %v, want an error at %s:2:1", err, bad)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *config.Config)
		want   []string
	}{
		{"default", func(*config.Config) {}, nil},
		{"zero limits and timeouts mean default", func(c *config.Config) {
			c.Proxy.Limits = config.Limits{}
			c.Proxy.Timeouts = config.Timeouts{}
			c.DNS.Timeout, c.DNS.Attempts, c.Proxy.Auth.FailuresPerMinute = 0, 0, 0
		}, nil},
		{"lower total only", func(c *config.Config) {
			c.Proxy.Limits = config.Limits{MaxConnections: 5, MaxTunnels: 5}
		}, nil},
		{"unnormalised dns server", func(c *config.Config) { c.DNS.Servers = []string{"::1", "10.0.0.1:53"} }, nil},
		{"admin disabled", func(c *config.Config) { c.Admin.Listen = "" }, nil},
		{"admin tls self-signed", func(c *config.Config) { c.Admin.TLS.Enabled = true }, nil},
		{"admin tls certificates", func(c *config.Config) {
			c.Admin.TLS = config.AdminTLS{Enabled: true, Certificates: []config.CertPair{{Cert: "a.pem", Key: "a.key"}}}
		}, nil},
		{"admin tls pair incomplete", func(c *config.Config) {
			c.Admin.TLS = config.AdminTLS{Enabled: true, Certificates: []config.CertPair{{Key: "a.key"}, {Cert: "b.pem"}}}
		}, []string{
			"admin.tls.certificates[0].cert: a certificate needs a cert file (and a key file)",
			"admin.tls.certificates[1].key: a certificate needs a key file (and a cert file)",
		}},
		{"admin tls without listener", func(c *config.Config) { c.Admin.Listen, c.Admin.TLS.Enabled = "", true },
			[]string{`admin.tls.enabled: true, but admin.listen is "" (the admin listener is off)`}},
		{"admin tls certificates while disabled", func(c *config.Config) {
			c.Admin.TLS.Certificates = []config.CertPair{{Cert: "a.pem", Key: "a.key"}}
		}, []string{"admin.tls.certificates: set, but admin.tls.enabled is false (HTTPS is off)"}},
		{"schema version", func(c *config.Config) { c.SchemaVersion = 0 },
			[]string{"schema_version: unsupported schema_version 0 (this build supports 1)"}},
		{"empty listen", func(c *config.Config) { c.Proxy.Listen = "" },
			[]string{"proxy.listen: must not be empty"}},
		{"zero prefix", func(c *config.Config) { c.Proxy.AllowClients = []netip.Prefix{{}} },
			[]string{"proxy.allow_clients[0]: invalid network (zero netip.Prefix)"}},
		{"unmasked prefix", func(c *config.Config) {
			c.Proxy.PAC.DirectNetworks = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}
		}, []string{`proxy.pac.direct_networks[0]: "10.1.2.3/8" has host bits set (did you mean "10.0.0.0/8"?)`}},
		{"zero port", func(c *config.Config) { c.Proxy.ConnectPorts = []uint16{0} },
			[]string{"proxy.connect_ports[0]: 0 is not a port (want 1 to 65535)"}},
		{"realm with quote", func(c *config.Config) { c.Proxy.Auth.Realm = `a"b` },
			[]string{`proxy.auth.realm: "a\"b" must not contain '"', '\' or control characters`}},
		{"missing hash", func(c *config.Config) { c.Proxy.Auth.Users = []config.User{{Name: "eve"}} },
			[]string{"proxy.auth.users[0].password_hash: user \"eve\": password_hash is required (make one with `waygate passwd`)"}},
		{"per-client default above explicit total", func(c *config.Config) {
			c.Proxy.Limits.MaxConnections = 10
		}, []string{"proxy.limits.max_connections_per_client: 512 is greater than max_connections 10"}},
		{"parent with path", func(c *config.Config) { c.Proxy.Parent = "http://p:1/x" },
			[]string{`proxy.parent: "http://p:1/x" must be an http://host:port URL`}},
		{"parent with credentials", func(c *config.Config) { c.Proxy.Parent = "http://u:secret@p:1" },
			[]string{`proxy.parent: "http://u:xxxxx@p:1": credentials in the parent URL are not supported`}},
		{"hosts file", func(c *config.Config) { c.DNS.HostsFile = "" },
			[]string{`dns.hosts_file: must not be empty (write "none" to disable the hosts file)`}},
		{"log format", func(c *config.Config) { c.Log.Format = "JSON" },
			[]string{`log.format: "JSON" is not a log format (want text or json)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.modify(c)
			wantProblems(t, c.Validate(), tt.want...)
		})
	}
	var nilConfig *config.Config
	if nilConfig.Validate() == nil {
		t.Error("nil Config validated")
	}
}

func TestProblemString(t *testing.T) {
	for _, tt := range []struct {
		p    config.Problem
		want string
	}{
		{config.Problem{File: "f", Line: 7, Column: 3, Path: "a.b", Msg: "m"}, "f:7:3: a.b: m"},
		{config.Problem{File: "f", Line: 7, Msg: "m"}, "f:7: m"},
		{config.Problem{File: "f", Msg: "m"}, "f: m"},
		{config.Problem{Path: "a", Msg: "m"}, "a: m"},
		{config.Problem{Line: 2, Msg: "m"}, "line 2: m"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// wantProblems checks that err is an *Error whose problems format to want
// exactly, in order; no want means err must be nil.
func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *config.Error", err, err)
	}
	got := make([]string, len(ce.Problems))
	for i, p := range ce.Problems {
		got[i] = p.String()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if err.Error() != strings.Join(want, "\n") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
