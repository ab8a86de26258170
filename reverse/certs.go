package reverse

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CertPair names a PEM certificate chain file (leaf first) and the PEM
// file of its private key. Both are required.
type CertPair struct {
	// CertFile is the PEM certificate chain, leaf first.
	CertFile string
	// KeyFile is the PEM private key of the leaf (PKCS #1, PKCS #8 or EC).
	KeyFile string
}

// Names of the self-signed certificate's files in the directory given to
// NewCertStore.
const (
	SelfSignedCertFile = "reverse-selfsigned.crt"
	SelfSignedKeyFile  = "reverse-selfsigned.key"
)

// certSelfSignedValidity is the lifetime of a generated certificate, and
// certSelfSignedRenew how long before its end it is replaced.
const (
	certSelfSignedValidity = 365 * 24 * time.Hour
	certSelfSignedRenew    = 30 * 24 * time.Hour
)

// CertStore holds the certificates of a TLS listener, chosen by SNI. It
// is safe for concurrent use; Reload swaps the whole set atomically, so a
// handshake sees either the old set or the new one. A nil *CertStore has
// no certificates: every handshake fails.
type CertStore struct {
	pairs []CertPair
	// Self-signed mode (no pairs): the directory ("" keeps the
	// certificate in memory only), the names of the certificate's and
	// key's files in it, and the names it must cover.
	dir               string
	certFile, keyFile string
	names             []string
	ips               []netip.Addr

	now    func() time.Time
	reload sync.Mutex // serializes Reload
	cur    atomic.Pointer[certSet]
}

// certSet is one immutable set of loaded certificates.
type certSet struct {
	certs    []*tls.Certificate // in configuration order; certs[0] is the default
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // "*.corp.example" under "corp.example"
	ips      map[netip.Addr]*tls.Certificate
	expired  []string
}

// NewCertStore loads the certificates in pairs. Each leaf is indexed by
// its DNS and IP subject alternative names (the subject's common name is
// not used, as browsers ignore it). An expired or not yet valid
// certificate is loaded anyway, so that the server still starts, and
// reported by [CertStore.Expired]. Errors name the file: missing or
// unreadable, not PEM, key not matching the certificate.
//
// When pairs is empty, a self-signed certificate is used instead: ECDSA
// P-256, valid for one year, for hosts (route host names: exact names,
// wildcards such as "*.corp.example", IP literals, "[::1]"; ports and
// invalid names are an error) plus "localhost", 127.0.0.1 and ::1. It is
// kept in selfSignedDir as reverse-selfsigned.crt and .key (the key with
// mode 0600, each written to a temporary file and renamed into place), and
// reused on later starts while it is valid for at least 30 more days,
// matches its key and covers exactly the same names; otherwise a new one
// is generated. An empty selfSignedDir keeps it in memory only (a new
// certificate on every start).
func NewCertStore(pairs []CertPair, selfSignedDir string, hosts []string) (*CertStore, error) {
	return NewCertStoreNamed(pairs, selfSignedDir, "", hosts)
}

// NewCertStoreNamed is [NewCertStore] with the self-signed certificate
// kept in selfSignedDir as selfSignedName+".crt" and selfSignedName+".key"
// instead of [SelfSignedCertFile] and [SelfSignedKeyFile], so that two
// listeners can keep their own self-signed certificates in one directory.
// An empty selfSignedName means the default names; one that is not a
// plain file name (it contains a path separator, or is "." or "..") is
// an error.
func NewCertStoreNamed(pairs []CertPair, selfSignedDir, selfSignedName string, hosts []string) (*CertStore, error) {
	s := &CertStore{pairs: slices.Clone(pairs), dir: selfSignedDir, certFile: SelfSignedCertFile, keyFile: SelfSignedKeyFile, now: time.Now}
	if selfSignedName != "" {
		if selfSignedName == "." || selfSignedName == ".." || strings.ContainsAny(selfSignedName, `/\`) {
			return nil, fmt.Errorf("reverse: self-signed certificate name %q is not a plain file name", selfSignedName)
		}
		s.certFile, s.keyFile = selfSignedName+".crt", selfSignedName+".key"
	}
	for i, p := range pairs {
		if p.CertFile == "" || p.KeyFile == "" {
			return nil, fmt.Errorf("reverse: certificate %d: both a certificate file and a key file are needed", i+1)
		}
	}
	if len(pairs) == 0 {
		names, ips, err := certSelfSignedNames(hosts)
		if err != nil {
			return nil, err
		}
		s.names, s.ips = names, ips
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// certSelfSignedNames turns route hosts into the sorted DNS and IP names
// of a self-signed certificate.
func certSelfSignedNames(hosts []string) ([]string, []netip.Addr, error) {
	names := []string{"localhost"}
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	for _, h := range hosts {
		key, wildcard, err := routerConfigHost(h)
		if err != nil {
			return nil, nil, fmt.Errorf("reverse: self-signed certificate: host %q: %w", h, err)
		}
		if a, err := netip.ParseAddr(strings.Trim(key, "[]")); err == nil {
			ips = append(ips, a)
			continue
		}
		if wildcard {
			key = "*." + key
		}
		names = append(names, key)
	}
	slices.Sort(names)
	slices.SortFunc(ips, netip.Addr.Compare)
	return slices.Compact(names), slices.Compact(ips), nil
}

// load builds a new certificate set and swaps it in; on error the
// current set stays.
func (s *CertStore) load() error {
	var certs []*tls.Certificate
	var expired []string
	now := s.now()
	if len(s.pairs) == 0 {
		c, err := s.selfSigned(now)
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	for _, p := range s.pairs {
		c, err := certLoadPair(p)
		if err != nil {
			return err
		}
		if w := certValidity(c.Leaf, now); w != "" {
			expired = append(expired, p.CertFile+": "+w)
		}
		certs = append(certs, c)
	}
	set := &certSet{
		certs:    certs,
		exact:    map[string]*tls.Certificate{},
		wildcard: map[string]*tls.Certificate{},
		ips:      map[netip.Addr]*tls.Certificate{},
		expired:  expired,
	}
	// The first certificate that is currently valid wins a name; an
	// invalid one holds it only until a valid one comes along.
	put := func(m map[string]*tls.Certificate, name string, c *tls.Certificate) {
		if old, ok := m[name]; !ok || (certValidity(old.Leaf, now) != "" && certValidity(c.Leaf, now) == "") {
			m[name] = c
		}
	}
	for _, c := range certs {
		for _, n := range c.Leaf.DNSNames {
			n = strings.TrimSuffix(strings.ToLower(n), ".")
			if base, ok := strings.CutPrefix(n, "*."); ok {
				put(set.wildcard, base, c)
			} else {
				put(set.exact, n, c)
			}
		}
		for _, ip := range c.Leaf.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok {
				a = a.Unmap()
				if old, ok := set.ips[a]; !ok || (certValidity(old.Leaf, now) != "" && certValidity(c.Leaf, now) == "") {
					set.ips[a] = c
				}
			}
		}
	}
	s.cur.Store(set)
	return nil
}

// certValidity describes why leaf is not valid at now, or "".
func certValidity(leaf *x509.Certificate, now time.Time) string {
	switch {
	case now.After(leaf.NotAfter):
		return "certificate expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(leaf.NotBefore):
		return "certificate is not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// certReadFile reads a file for a CertPair; the error names the file.
func certReadFile(what, name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("reverse: %s %s: %w", what, name, err)
	}
	return b, nil
}

// certLoadPair reads and checks one certificate and key, with the leaf
// parsed.
func certLoadPair(p CertPair) (*tls.Certificate, error) {
	certPEM, err := certReadFile("certificate", p.CertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := certReadFile("key", p.KeyFile)
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("reverse: certificate %s with key %s: %w", p.CertFile, p.KeyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("reverse: certificate %s: %w", p.CertFile, err)
		}
	}
	return &c, nil
}

// selfSigned returns the self-signed certificate: the one on disk when it
// still fits, else a new one (written to disk when there is a directory).
func (s *CertStore) selfSigned(now time.Time) (*tls.Certificate, error) {
	certPath := filepath.Join(s.dir, s.certFile)
	keyPath := filepath.Join(s.dir, s.keyFile)
	if s.dir != "" {
		if c, err := certLoadPair(CertPair{certPath, keyPath}); err == nil && s.selfSignedFits(c.Leaf, now) {
			return c, nil
		}
	}
	certPEM, keyPEM, err := certGenerateSelfSigned(s.names, s.ips, now)
	if err != nil {
		return nil, err
	}
	if s.dir != "" {
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return nil, fmt.Errorf("reverse: self-signed certificate: %w", err)
		}
		if err := certWriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := certWriteFileAtomic(certPath, certPEM, 0o644); err != nil {
			return nil, err
		}
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("reverse: self-signed certificate: %w", err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("reverse: self-signed certificate: %w", err)
		}
	}
	return &c, nil
}

// selfSignedFits reports whether an existing self-signed leaf can be kept.
func (s *CertStore) selfSignedFits(leaf *x509.Certificate, now time.Time) bool {
	if now.Before(leaf.NotBefore) || now.Add(certSelfSignedRenew).After(leaf.NotAfter) {
		return false
	}
	names := slices.Clone(leaf.DNSNames)
	slices.Sort(names)
	if !slices.Equal(slices.Compact(names), s.names) {
		return false
	}
	var ips []netip.Addr
	for _, ip := range leaf.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			ips = append(ips, a.Unmap())
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	return slices.Equal(slices.Compact(ips), s.ips)
}

// certGenerateSelfSigned makes a self-signed ECDSA P-256 server
// certificate and its key, PEM-encoded.
func certGenerateSelfSigned(names []string, ips []netip.Addr, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("reverse: self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("reverse: self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Waygate self-signed", Organization: []string{"Waygate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certSelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
	}
	for _, a := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("reverse: self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("reverse: self-signed certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// certWriteFileAtomic writes data to path through a temporary file in
// the same directory and a rename, so readers see the old file or the
// whole new one.
func certWriteFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("reverse: writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("reverse: writing %s: %w", path, err)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Reload re-reads the certificate files (in self-signed mode: checks the
// certificate on disk and regenerates it if needed) and swaps the new set
// in. On error the certificates in use stay and the error names the file.
// A nil *CertStore returns an error.
func (s *CertStore) Reload() error {
	if s == nil {
		return errors.New("reverse: no certificate store")
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	return s.load()
}

// Files returns the certificate and key files to watch for changes, in
// configuration order without repeats. It is nil in self-signed mode (the
// store writes those files itself) and for a nil *CertStore.
func (s *CertStore) Files() []string {
	if s == nil {
		return nil
	}
	var files []string
	for _, p := range s.pairs {
		for _, f := range []string{p.CertFile, p.KeyFile} {
			if !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
	}
	return files
}

// Expired lists the loaded certificates that are expired or not yet
// valid, as "file: reason". They are still served. Nil when all are
// valid, and for a nil *CertStore.
func (s *CertStore) Expired() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.cur.Load().expired)
}

// Certificates returns the leaves in use, the default (first) one first.
// Nil for a nil *CertStore.
func (s *CertStore) Certificates() []*x509.Certificate {
	if s == nil {
		return nil
	}
	var leaves []*x509.Certificate
	for _, c := range s.cur.Load().certs {
		leaves = append(leaves, c.Leaf)
	}
	return leaves
}

// GetCertificate chooses the certificate for a handshake: the one whose
// DNS SAN equals the requested server name (case-insensitive, trailing
// dot ignored), else one with a wildcard SAN covering it (one label:
// "*.corp.example" covers "a.corp.example", not "a.b.corp.example"), else
// for a client that sent no server name (connecting by address) the one
// with the listener's local address as IP SAN, else the first
// certificate. Serving that default rather than failing the handshake
// (like nginx's default_server) lets the client show a precise name
// mismatch. It fails only for a nil *CertStore.
func (s *CertStore) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s == nil {
		return nil, errors.New("reverse: no TLS certificates")
	}
	set := s.cur.Load()
	if hello != nil {
		if name := strings.TrimSuffix(strings.ToLower(hello.ServerName), "."); name != "" {
			if c, ok := set.exact[name]; ok {
				return c, nil
			}
			if i := strings.IndexByte(name, '.'); i > 0 {
				if c, ok := set.wildcard[name[i+1:]]; ok {
					return c, nil
				}
			}
		} else if hello.Conn != nil {
			if ap, err := netip.ParseAddrPort(hello.Conn.LocalAddr().String()); err == nil {
				if c, ok := set.ips[ap.Addr().Unmap().WithZone("")]; ok {
					return c, nil
				}
			}
		}
	}
	return set.certs[0], nil
}

// TLSConfig returns a server configuration using the store: TLS 1.2 at
// least, for TLS 1.2 only ECDHE suites with AES-GCM or ChaCha20-Poly1305
// (TLS 1.3 suites are all AEAD and not configurable), key exchange with
// X25519MLKEM768 (post-quantum hybrid), X25519 or P-256, ALPN h2 and
// http/1.1, and GetCertificate from the store. Each call returns a new
// config that the caller may change.
func (s *CertStore) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate:   s.GetCertificate,
	}
}
