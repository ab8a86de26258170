package reverse

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// certTestCA is a throwaway certificate authority for the tests.
type certTestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var certTestSerial struct {
	sync.Mutex
	n int64
}

func certNextSerial() *big.Int {
	certTestSerial.Lock()
	defer certTestSerial.Unlock()
	certTestSerial.n++
	return big.NewInt(certTestSerial.n + 1000)
}

func newCertTestCA(t *testing.T) *certTestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          certNextSerial(),
		Subject:               pkix.Name{CommonName: "Waygate Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &certTestCA{cert: cert, key: key, pool: pool}
}

// file writes the CA certificate to dir/ca.pem and returns the path.
func (ca *certTestCA) file(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ca.pem")
	writeTestFile(t, path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	return path
}

// issue writes a leaf for names (DNS names or IP addresses) valid from
// notBefore to notAfter into dir/base.crt and .key; it returns the pair
// and the leaf's serial number.
func (ca *certTestCA) issue(t *testing.T, dir, base string, notBefore, notAfter time.Time, names ...string) (CertPair, *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: certNextSerial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Client auth too: the same leaves serve the mTLS tests.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := CertPair{CertFile: filepath.Join(dir, base+".crt"), KeyFile: filepath.Join(dir, base+".key")}
	writeTestFile(t, p.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeTestFile(t, p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return p, tmpl.SerialNumber
}

func writeTestFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// certTestServer is a loopback TLS listener that completes handshakes
// with the store's configuration.
func certTestServer(t *testing.T, s *CertStore) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Read(make([]byte, 1)) // until the client closes
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// certDial handshakes with addr and returns the connection state.
func certDial(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func TestCertStoreSNI(t *testing.T) {
	dir := t.TempDir()
	ca := newCertTestCA(t)
	now := time.Now()
	pa, serialA := ca.issue(t, dir, "a", now.Add(-time.Hour), now.Add(time.Hour), "a.example")
	pb, serialB := ca.issue(t, dir, "b", now.Add(-time.Hour), now.Add(time.Hour), "b.example", "*.wild.example")
	pip, serialIP := ca.issue(t, dir, "ip", now.Add(-time.Hour), now.Add(time.Hour), "ip.example", "127.0.0.1")
	store, err := NewCertStore([]CertPair{pa, pb, pip}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := store.Files(); !slices.Equal(got, []string{pa.CertFile, pa.KeyFile, pb.CertFile, pb.KeyFile, pip.CertFile, pip.KeyFile}) {
		t.Errorf("Files = %v", got)
	}
	if store.Expired() != nil {
		t.Errorf("Expired = %v", store.Expired())
	}
	addr := certTestServer(t, store)

	for _, c := range []struct {
		serverName string
		want       *big.Int
		verify     bool
	}{
		{"a.example", serialA, true},
		{"A.Example", serialA, true},
		{"b.example", serialB, true},
		{"x.wild.example", serialB, true},
		{"y.x.wild.example", serialA, false}, // a wildcard covers one label: default
		{"wild.example", serialA, false},
		{"unknown.example", serialA, false}, // default certificate
		{"", serialIP, false},               // by address: the IP SAN
	} {
		cfg := &tls.Config{ServerName: c.serverName, RootCAs: ca.pool, InsecureSkipVerify: !c.verify}
		st, err := certDial(t, addr, cfg)
		if err != nil {
			t.Errorf("%q: %v", c.serverName, err)
			continue
		}
		if got := st.PeerCertificates[0].SerialNumber; got.Cmp(c.want) != 0 {
			t.Errorf("%q: served serial %v, want %v", c.serverName, got, c.want)
		}
	}

	// ALPN offers h2; TLS 1.3 is used by default; TLS 1.2 works with an
	// AEAD suite; TLS 1.1 and a CBC-only TLS 1.2 client are refused.
	st, err := certDial(t, addr, &tls.Config{ServerName: "a.example", RootCAs: ca.pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil || st.NegotiatedProtocol != "h2" || st.Version != tls.VersionTLS13 {
		t.Errorf("h2: %v %q %x", err, st.NegotiatedProtocol, st.Version)
	}
	st, err = certDial(t, addr, &tls.Config{ServerName: "a.example", RootCAs: ca.pool, NextProtos: []string{"http/1.1"}, MaxVersion: tls.VersionTLS12})
	if err != nil || st.NegotiatedProtocol != "http/1.1" || st.Version != tls.VersionTLS12 {
		t.Errorf("TLS 1.2: %v %q %x", err, st.NegotiatedProtocol, st.Version)
	}
	if _, err := certDial(t, addr, &tls.Config{ServerName: "a.example", RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 client was served")
	}
	if _, err := certDial(t, addr, &tls.Config{
		ServerName: "a.example", RootCAs: ca.pool, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
	}); err == nil {
		t.Error("CBC suite accepted")
	}

	// The leaf is parsed once at load.
	if c, _ := store.GetCertificate(&tls.ClientHelloInfo{ServerName: "b.example."}); c.Leaf == nil || c.Leaf.SerialNumber.Cmp(serialB) != 0 {
		t.Error("trailing dot / Leaf")
	}
	if leaves := store.Certificates(); len(leaves) != 3 || leaves[0].SerialNumber.Cmp(serialA) != 0 {
		t.Error("Certificates")
	}
}

func TestCertStoreReload(t *testing.T) {
	dir := t.TempDir()
	ca := newCertTestCA(t)
	now := time.Now()
	pa, serialA := ca.issue(t, dir, "a", now.Add(-time.Hour), now.Add(time.Hour), "a.example")
	store, err := NewCertStore([]CertPair{pa}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := certTestServer(t, store)
	served := func() *big.Int {
		t.Helper()
		st, err := certDial(t, addr, &tls.Config{ServerName: "a.example", RootCAs: ca.pool})
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].SerialNumber
	}
	if served().Cmp(serialA) != 0 {
		t.Fatal("initial certificate")
	}
	// A renewed certificate replaces the files.
	_, serialA2 := ca.issue(t, dir, "a", now.Add(-time.Hour), now.Add(2*time.Hour), "a.example")
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if served().Cmp(serialA2) != 0 {
		t.Fatal("Reload did not pick up the new certificate")
	}
	// A broken replacement: the old certificate stays, the error names the file.
	writeTestFile(t, pa.CertFile, []byte("not a certificate"))
	if err := store.Reload(); err == nil || !strings.Contains(err.Error(), pa.CertFile) {
		t.Fatalf("broken file: %v", err)
	}
	if served().Cmp(serialA2) != 0 {
		t.Fatal("broken reload replaced the certificate")
	}
	os.Remove(pa.KeyFile)
	if err := store.Reload(); err == nil || !strings.Contains(err.Error(), pa.KeyFile) {
		t.Fatalf("missing key: %v", err)
	}
	if served().Cmp(serialA2) != 0 {
		t.Fatal("failed reload replaced the certificate")
	}

	// Reloads race with handshakes safely.
	ca.issue(t, dir, "a", now.Add(-time.Hour), now.Add(time.Hour), "a.example")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			if err := store.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 200; i++ {
		if c, err := store.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example"}); err != nil || c.Leaf == nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func TestCertStoreErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newCertTestCA(t)
	now := time.Now()
	pa, _ := ca.issue(t, dir, "a", now.Add(-time.Hour), now.Add(time.Hour), "a.example")
	pb, _ := ca.issue(t, dir, "b", now.Add(-time.Hour), now.Add(time.Hour), "b.example")
	missing := filepath.Join(dir, "missing.crt")
	notPEM := filepath.Join(dir, "junk.crt")
	writeTestFile(t, notPEM, []byte("junk"))
	for _, c := range []struct {
		pairs []CertPair
		want  []string
	}{
		{[]CertPair{{missing, pa.KeyFile}}, []string{missing, "no such file"}},
		{[]CertPair{{pa.CertFile, missing}}, []string{"key " + missing}},
		{[]CertPair{{pa.CertFile, pb.KeyFile}}, []string{pa.CertFile, pb.KeyFile, "does not match"}},
		{[]CertPair{{notPEM, pa.KeyFile}}, []string{notPEM}},
		{[]CertPair{pa, {pb.CertFile, ""}}, []string{"certificate 2", "key file"}},
	} {
		_, err := NewCertStore(c.pairs, "", nil)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: err = %v, want %q in it", c.pairs, err, w)
			}
		}
	}
	if _, err := NewCertStore(nil, dir, []string{"bad host"}); err == nil || !strings.Contains(err.Error(), "bad host") {
		t.Errorf("bad self-signed host: %v", err)
	}

	var nilStore *CertStore
	if _, err := nilStore.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
		t.Error("nil store served a certificate")
	}
	if nilStore.Reload() == nil || nilStore.Files() != nil || nilStore.Expired() != nil || nilStore.Certificates() != nil {
		t.Error("nil store")
	}
}

// TestCertStoreExpired: an expired certificate is loaded and reported,
// and a valid one for the same name is preferred.
func TestCertStoreExpired(t *testing.T) {
	dir := t.TempDir()
	ca := newCertTestCA(t)
	now := time.Now()
	old, oldSerial := ca.issue(t, dir, "old", now.Add(-48*time.Hour), now.Add(-24*time.Hour), "a.example", "old.example")
	future, _ := ca.issue(t, dir, "future", now.Add(24*time.Hour), now.Add(48*time.Hour), "f.example")
	fresh, freshSerial := ca.issue(t, dir, "fresh", now.Add(-time.Hour), now.Add(time.Hour), "a.example")
	store, err := NewCertStore([]CertPair{old, future, fresh}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := store.Expired()
	if len(exp) != 2 || !strings.HasPrefix(exp[0], old.CertFile+": certificate expired") || !strings.HasPrefix(exp[1], future.CertFile+": certificate is not valid before") {
		t.Errorf("Expired = %q", exp)
	}
	if c, _ := store.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.example"}); c.Leaf.SerialNumber.Cmp(freshSerial) != 0 {
		t.Error("expired certificate preferred over a valid one")
	}
	if c, _ := store.GetCertificate(&tls.ClientHelloInfo{ServerName: "old.example"}); c.Leaf.SerialNumber.Cmp(oldSerial) != 0 {
		t.Error("expired certificate not served for its own name")
	}
}

func TestCertStoreSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	hosts := []string{"app.corp.example", "*.corp.example", "Bücher.example", "[2001:db8::1]", "10.0.0.5", "app.corp.example"}
	s1, err := NewCertStore(nil, dir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	leaf := s1.Certificates()[0]
	wantNames := []string{"*.corp.example", "app.corp.example", "localhost", "xn--bcher-kva.example"}
	if !slices.Equal(leaf.DNSNames, wantNames) {
		t.Errorf("DNS names %v, want %v", leaf.DNSNames, wantNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"10.0.0.5", "127.0.0.1", "::1", "2001:db8::1"}; !slices.Equal(ips, want) {
		t.Errorf("IPs %v, want %v", ips, want)
	}
	if d := time.Until(leaf.NotAfter); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("validity ends in %v", d)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || leaf.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Error("not ECDSA P-256")
	}
	if s1.Files() != nil || s1.Expired() != nil {
		t.Error("Files/Expired in self-signed mode")
	}
	fi, err := os.Stat(filepath.Join(dir, SelfSignedKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, fi)
	}
	if _, err := os.Stat(filepath.Join(dir, SelfSignedCertFile)); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// It works for a real client that trusts it, by name and by address.
	addr := certTestServer(t, s1)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, name := range []string{"app.corp.example", "x.corp.example", "localhost", ""} {
		cfg := &tls.Config{ServerName: name, RootCAs: pool}
		if name == "" {
			cfg.ServerName = "127.0.0.1"
		}
		if _, err := certDial(t, addr, cfg); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}

	// Reused on the next start (same names in another order), also by Reload.
	s2, err := NewCertStore(nil, dir, []string{"10.0.0.5", "*.corp.example", "xn--bcher-kva.example", "app.corp.example", "[2001:db8:0::1]"})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Certificates()[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("not reused on a second start")
	}
	if err := s2.Reload(); err != nil || s2.Certificates()[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("Reload regenerated: %v", err)
	}

	// Regenerated when the names change.
	s3, err := NewCertStore(nil, dir, []string{"app.corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	leaf3 := s3.Certificates()[0]
	if leaf3.SerialNumber.Cmp(leaf.SerialNumber) == 0 || !slices.Equal(leaf3.DNSNames, []string{"app.corp.example", "localhost"}) {
		t.Errorf("not regenerated for new names: %v", leaf3.DNSNames)
	}
	s4, _ := NewCertStore(nil, dir, []string{"app.corp.example"})
	if s4.Certificates()[0].SerialNumber.Cmp(leaf3.SerialNumber) != 0 {
		t.Error("regenerated certificate not reused")
	}

	// Regenerated when it is about to expire, or its files are broken.
	s4.now = func() time.Time { return time.Now().Add(340 * 24 * time.Hour) }
	if err := s4.Reload(); err != nil {
		t.Fatal(err)
	}
	if s4.Certificates()[0].SerialNumber.Cmp(leaf3.SerialNumber) == 0 {
		t.Error("not renewed 25 days before the end")
	}
	writeTestFile(t, filepath.Join(dir, SelfSignedKeyFile), []byte("broken"))
	s5, err := NewCertStore(nil, dir, []string{"app.corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, SelfSignedCertFile), filepath.Join(dir, SelfSignedKeyFile)); err != nil {
		t.Errorf("files not rewritten: %v", err)
	}
	if s5.Certificates()[0].SerialNumber.Cmp(leaf3.SerialNumber) == 0 {
		t.Error("broken key kept")
	}

	// No directory: in memory only.
	m, err := NewCertStore(nil, "", []string{"mem.example"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Certificates()[0].DNSNames; !slices.Equal(got, []string{"localhost", "mem.example"}) {
		t.Errorf("in-memory names %v", got)
	}
	// An unwritable directory is an error naming it.
	blocker := filepath.Join(t.TempDir(), "file")
	writeTestFile(t, blocker, nil)
	if _, err := NewCertStore(nil, filepath.Join(blocker, "sub"), nil); err == nil || !strings.Contains(err.Error(), blocker) {
		t.Errorf("unwritable dir: %v", err)
	}
}

func TestCertStoreTLSConfig(t *testing.T) {
	s, err := NewCertStore(nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) ||
		!slices.Contains(cfg.CurvePreferences, tls.X25519) || !slices.Contains(cfg.CurvePreferences, tls.CurveP256) || cfg.GetCertificate == nil {
		t.Errorf("%+v", cfg)
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "GCM") || strings.Contains(name, "CHACHA20")) {
			t.Errorf("suite %s", name)
		}
	}
	// The default for a hello without a name or connection.
	if c, err := s.GetCertificate(&tls.ClientHelloInfo{}); err != nil || c == nil {
		t.Error(err)
	}
}
