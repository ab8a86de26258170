package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"waygate/cmd/waygate/internal/config"
	"waygate/reverse"
)

// adminSelfSignedName is the base name of the admin listener's
// self-signed certificate and key files in data_dir (".crt" and ".key"),
// apart from the reverse proxy's.
const adminSelfSignedName = "admin-selfsigned"

// adminHSTS is the Strict-Transport-Security of the admin listener over
// HTTPS: one year, as the web UI sends with Options.Secure.
const adminHSTS = "max-age=31536000"

// adminTLS holds the certificates of the admin listener when admin.tls is
// enabled. Reloads swap them atomically; handshakes always use the
// current set. Whether the listener speaks TLS at all is decided at
// start: a nil *adminTLS means plain HTTP.
type adminTLS struct {
	// hosts are the names a self-signed certificate covers besides
	// localhost, 127.0.0.1 and ::1 (see adminCertHosts); fixed at start
	// like the listener.
	hosts []string
	cur   atomic.Pointer[adminCerts]
}

// adminCerts is one immutable set: the store and the resolved
// certificate pairs it was built from (nil in self-signed mode).
type adminCerts struct {
	store *reverse.CertStore
	pairs []reverse.CertPair
}

// newAdminTLS loads the certificates of cfg's admin.tls for the admin
// listener bound at addr. configPath ("" for the embedded defaults)
// anchors relative certificate paths and locates errors: a certificate
// file that is missing, unreadable or does not match its key gives a
// *config.Error naming the config file, line and key path.
func newAdminTLS(cfg *config.Config, configPath string, addr net.Addr) (*adminTLS, error) {
	a := &adminTLS{hosts: adminCertHosts(cfg.Admin.Listen, addr, hostInterfaces)}
	c, err := a.build(cfg, configPath)
	if err != nil {
		return nil, err
	}
	a.cur.Store(c)
	return a, nil
}

// adminCertPairs resolves cfg's admin certificates against the config
// file's folder.
func adminCertPairs(cfg *config.Config, configPath string) []reverse.CertPair {
	var pairs []reverse.CertPair
	for _, p := range cfg.Admin.TLS.Certificates {
		pairs = append(pairs, reverse.CertPair{CertFile: configRelPath(configPath, p.Cert), KeyFile: configRelPath(configPath, p.Key)})
	}
	return pairs
}

// configRelPath resolves p against the config file's folder; an empty or
// absolute p is returned as it is.
func configRelPath(configPath, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir(configPath), p)
}

// build loads a new set for cfg.
func (a *adminTLS) build(cfg *config.Config, configPath string) (*adminCerts, error) {
	pairs := adminCertPairs(cfg, configPath)
	s, err := reverse.NewCertStoreNamed(pairs, cfg.DataDir, adminSelfSignedName, a.hosts)
	if err != nil {
		return nil, adminCertError(err, pairs, configPath)
	}
	return &adminCerts{store: s, pairs: pairs}, nil
}

// tlsConfig is the admin server's TLS configuration: the reverse proxy's
// (TLS 1.2 and later, AEAD suites, h2 and http/1.1), with certificates
// that follow reloads.
func (a *adminTLS) tlsConfig() *tls.Config {
	c := a.cur.Load().store.TLSConfig()
	c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		return a.cur.Load().store.GetCertificate(hello)
	}
	return c
}

// prepare loads the certificates cfg asks for and returns the function
// that puts them in use; on error nothing changes. Unchanged settings
// re-read the same files (renewed certificates; in self-signed mode the
// certificate is regenerated when it nears its end) and swap them in
// right away. With admin.tls.enabled now false the listener keeps HTTPS
// until the restart, and its certificates in use are re-read.
func (a *adminTLS) prepare(cfg *config.Config, configPath string) (commit func(), err error) {
	cur := a.cur.Load()
	pairs := adminCertPairs(cfg, configPath)
	if !cfg.Admin.TLS.Enabled || slices.Equal(pairs, cur.pairs) {
		if err := cur.store.Reload(); err != nil {
			if !cfg.Admin.TLS.Enabled {
				return nil, fmt.Errorf("admin tls: %s", certErrText(err))
			}
			return nil, adminCertError(err, pairs, configPath)
		}
		return func() {}, nil
	}
	c, err := a.build(cfg, configPath)
	if err != nil {
		return nil, err
	}
	return func() { a.cur.Store(c) }, nil
}

// files lists the certificate and key files in use, to be watched; nil in
// self-signed mode and for a nil *adminTLS.
func (a *adminTLS) files() []string {
	if a == nil {
		return nil
	}
	return a.cur.Load().store.Files()
}

// expired lists the certificates in use that are expired or not yet
// valid (they are served anyway), as "file: reason".
func (a *adminTLS) expired() []string {
	return a.cur.Load().store.Expired()
}

// certErrText is a certificate store error without the store's package
// prefix, which would wrongly point at the reverse proxy here.
func certErrText(err error) string {
	return strings.TrimPrefix(err.Error(), "reverse: ")
}

// adminCertError turns a certificate store error into one that names the
// config key at fault: for a certificate pair, a *config.Error located at
// the file that failed (cert or key; the pair itself when both are
// readable but do not belong together). Self-signed errors (writing into
// data_dir) are located at data_dir.
func adminCertError(err error, pairs []reverse.CertPair, configPath string) error {
	path, msg := "", certErrText(err)
	if len(pairs) == 0 {
		path, msg = "data_dir", "admin.tls self-signed certificate: "+strings.TrimPrefix(msg, "self-signed certificate: ")
	}
	for i, p := range pairs {
		// The store stops at the first pair that fails; find it and its
		// message on its own.
		if _, perr := reverse.NewCertStore([]reverse.CertPair{p}, "", nil); perr != nil {
			path, msg = "admin.tls.certificates["+strconv.Itoa(i)+"]", certErrText(perr)
			switch {
			case !readable(p.CertFile):
				path += ".cert"
			case !readable(p.KeyFile):
				path += ".key"
			}
			break
		}
	}
	if path == "" {
		return fmt.Errorf("admin tls: %s", msg)
	}
	prob := config.Problem{File: configPath, Path: path, Msg: msg}
	if configPath != "" {
		if data, rerr := os.ReadFile(configPath); rerr == nil {
			prob.Line, prob.Column = configPos(data, path)
		}
	}
	return &config.Error{Problems: []config.Problem{prob}}
}

// readable reports whether the file name can be opened for reading.
func readable(name string) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// configPathStep matches one step of a key path: a key or an [index].
var configPathStep = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// configPos finds the line and column of the value at a key path such as
// "admin.tls.certificates[0].key" in a YAML config file, or of the
// nearest ancestor present in it. It is 0, 0 when data does not parse as
// a YAML mapping.
func configPos(data []byte, path string) (line, col int) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return 0, 0
	}
	n := doc.Content[0]
	if n.Kind != yaml.MappingNode {
		return 0, 0
	}
	line, col = n.Line, n.Column
	for _, m := range configPathStep.FindAllStringSubmatch(path, -1) {
		var next *yaml.Node
		switch {
		case m[1] != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == m[1] {
					next = n.Content[i+1]
				}
			}
		case m[2] != "" && n.Kind == yaml.SequenceNode:
			if i, err := strconv.Atoi(m[2]); err == nil && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			break
		}
		n, line, col = next, next.Line, next.Column
	}
	return line, col
}

// adminCertHosts are the names a self-signed admin certificate covers
// besides localhost and loopback: listen's host when it is a name or a
// specific address; for an unspecified address (":9090", "0.0.0.0:9090",
// "[::]:9090"), the machine's host name and the addresses clients may
// reach it on (from interfaces; see candidateAddrs; nil leaves them out).
// bound is the listener's address, for the address family.
func adminCertHosts(listen string, bound net.Addr, interfaces func() ([]ifaceAddrs, error)) []string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
		return []string{certHostOf(a)}
	}
	if host != "" && !isIPLiteral(host) {
		if !validHostName(host) {
			return nil
		}
		return []string{strings.ToLower(host)}
	}
	var hosts []string
	if name, err := os.Hostname(); err == nil && validHostName(name) {
		hosts = append(hosts, strings.ToLower(name))
	}
	ta, ok := bound.(*net.TCPAddr)
	if !ok || interfaces == nil {
		return hosts
	}
	ifs, err := interfaces()
	if err != nil {
		return hosts
	}
	for _, h := range candidateAddrs(ta.AddrPort().Addr().Unmap(), ifs) {
		hosts = append(hosts, certHostOf(h.Addr))
	}
	return hosts
}

// isIPLiteral reports whether host parses as an IP address (zoned too).
func isIPLiteral(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// certHostOf writes an address the way reverse.NewCertStore takes hosts:
// IPv6 in brackets, without a zone.
func certHostOf(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// validHostName reports whether name is a DNS host name: dot-separated
// labels of letters, digits and '-' (not at either end), each 1 to 63
// bytes, 253 at most in all.
func validHostName(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
