package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"waygate/cmd/waygate/internal/config"
	"waygate/webui"
)

// adminTLSPassword is the first admin's password in these tests.
const adminTLSPassword = "admin tls test password"

// adminTLSConfig is a config with the admin listener on loopback and
// extra appended (an admin.tls block indented under admin:, then other
// sections). Nothing in it reaches beyond loopback.
func adminTLSConfig(dataDir, adminExtra, extra string) string {
	return fmt.Sprintf(`schema_version: 1
data_dir: %s
log:
  format: json
proxy:
  listen: "127.0.0.1:0"
  allow_clients: [127.0.0.0/8]
  timeouts:
    shutdown: 5s
dns:
  servers: ["127.0.0.1:9"]
  hosts_file: none
admin:
  listen: "127.0.0.1:0"
%s%s`, dataDir, adminExtra, extra)
}

// startLogged starts `waygate serve` like startProcess and returns it
// with every log line up to and including "admin listening", by message.
func startLogged(t *testing.T, configPath string) (*process, map[string]map[string]any) {
	t.Helper()
	p := spawn(t, configPath)
	seen := map[string]map[string]any{}
	p.waitFor(`"admin listening"`, 30*time.Second, func(m map[string]any) bool {
		if msg, ok := m["msg"].(string); ok {
			seen[msg] = m
		}
		return m["msg"] == "admin listening"
	})
	p.proxy, _ = seen["forward proxy listening"]["addr"].(string)
	p.admin, _ = seen["admin listening"]["addr"].(string)
	return p, seen
}

// waitLogWith waits (bounded) for a log line with message msg whose key
// has the value val.
func (p *process) waitLogWith(msg, key, val string) map[string]any {
	p.t.Helper()
	return p.waitFor(fmt.Sprintf("%q with %s=%q", msg, key, val), 20*time.Second, func(m map[string]any) bool {
		return m["msg"] == msg && m[key] == val
	})
}

// runFailing runs the subcommand ("serve", "check") with configPath and
// returns its exit code and stderr; it must fail.
func runFailing(t *testing.T, subcommand, configPath string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], subcommand, "-config", configPath)
	cmd.Env = append(os.Environ(), "WAYGATE_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("%s did not fail: %v; stderr:\n%s", subcommand, err, stderr.String())
	}
	return ee.ExitCode(), stderr.String()
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Waygate admin TLS test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for names (DNS names or IP addresses)
// with serial, and writes it and its key to certFile and keyFile (key
// first, each by rename).
func (ca *testCA) leaf(t *testing.T, certFile, keyFile string, serial int64, names ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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
	writeFileRename(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	writeFileRename(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// servedLeaf connects to addr with TLS, verifying against roots for
// serverName (an IP address sends no SNI), and returns the server's leaf.
func servedLeaf(t *testing.T, addr, serverName string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		t.Fatalf("TLS to %s as %q: %v", addr, serverName, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// pemCert reads the first certificate of a PEM file.
func pemCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", file)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAdminTLSSelfSigned runs a gateway with admin.tls.enabled and no
// certificates: the admin listener serves HTTPS (HTTP/2) with the
// self-signed certificate it wrote into data_dir under its own name (the
// reverse proxy's self-signed certificate beside it stays separate and
// different), refuses plain HTTP, sets Secure cookies and HSTS, serves
// /healthz and /metrics, says https in its start-up line, and reuses the
// certificate on the next start.
func TestAdminTLSSelfSigned(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "waygate.yaml")
	writeFileRename(t, cfgPath, []byte(adminTLSConfig(dataDir, "  tls:\n    enabled: true\n",
		"reverse:\n  tls:\n    listen: \"127.0.0.1:0\"\n")), 0o600)
	t.Setenv("WAYGATE_ADMIN_PASSWORD", adminTLSPassword)
	p, lines := startLogged(t, cfgPath)

	if got, want := lines["admin listening"]["url"], "https://"+p.admin+"/"; got != want {
		t.Errorf("start-up line url = %v, want %q", got, want)
	}
	certFile := filepath.Join(dataDir, "admin-selfsigned.crt")
	fileCert := pemCert(t, certFile)
	if fi, err := os.Stat(filepath.Join(dataDir, "admin-selfsigned.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-selfsigned.key: %v, mode %v, want 0600", err, fi)
	}
	// Trust exactly the certificate in data_dir.
	roots := x509.NewCertPool()
	roots.AddCert(fileCert)
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if got := servedLeaf(t, p.admin, name, roots); !got.Equal(fileCert) {
			t.Errorf("as %s: served certificate %v is not the one in %s", name, got.SerialNumber, certFile)
		}
	}
	// The reverse proxy's self-signed certificate has its own files and
	// is another certificate.
	revAddr := p.waitLog("reverse proxy listening (TLS)")["addr"].(string)
	revCert := pemCert(t, filepath.Join(dataDir, "reverse-selfsigned.crt"))
	if revCert.Equal(fileCert) {
		t.Error("the admin listener and the reverse proxy share one self-signed certificate")
	}
	revRoots := x509.NewCertPool()
	revRoots.AddCert(revCert)
	if got := servedLeaf(t, revAddr, "127.0.0.1", revRoots); !got.Equal(revCert) {
		t.Error("the reverse proxy does not serve reverse-selfsigned.crt")
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	base := "https://" + p.admin
	get := func(path string, cookies ...*http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	const hsts = "max-age=31536000"
	resp, body := get("/healthz")
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz over HTTPS: %s %q", resp.Status, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("healthz over %s, want HTTP/2", resp.Proto)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != hsts {
		t.Errorf("healthz Strict-Transport-Security = %q, want %q", got, hsts)
	}
	resp, body = get("/metrics")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "waygate_dns_cache_misses_total") {
		t.Errorf("metrics over HTTPS: %s, %d bytes", resp.Status, len(body))
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != hsts {
		t.Errorf("metrics Strict-Transport-Security = %q, want %q", got, hsts)
	}

	// Plain HTTP to the admin port gets no page.
	plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	if presp, err := plain.Get("http://" + p.admin + "/healthz"); err == nil {
		pbody, _ := io.ReadAll(presp.Body)
		presp.Body.Close()
		if presp.StatusCode != http.StatusBadRequest || bytes.Contains(pbody, []byte("ok")) {
			t.Errorf("plain HTTP to the HTTPS admin port: %s %q, want 400", presp.Status, pbody)
		}
	}

	// Logging in sets a Secure, HttpOnly, SameSite=Strict cookie.
	lresp, err := c.Post(base+"/api/v1/session", "application/json",
		strings.NewReader(`{"username":"admin","password":"`+adminTLSPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	lresp.Body.Close()
	if lresp.StatusCode != http.StatusOK {
		t.Fatalf("login over HTTPS: %s", lresp.Status)
	}
	if got := lresp.Header.Get("Strict-Transport-Security"); got != hsts {
		t.Errorf("login Strict-Transport-Security = %q, want %q", got, hsts)
	}
	var session *http.Cookie
	for _, ck := range lresp.Cookies() {
		if ck.Name == webui.CookieName {
			session = ck
		}
	}
	switch {
	case session == nil:
		t.Fatalf("login set no %s cookie: %q", webui.CookieName, lresp.Header.Values("Set-Cookie"))
	case !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode:
		t.Errorf("session cookie Secure=%v HttpOnly=%v SameSite=%v, want Secure, HttpOnly, Strict",
			session.Secure, session.HttpOnly, session.SameSite)
	}
	resp, body = get("/api/v1/session", session)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"admin"`) {
		t.Errorf("session over HTTPS: %s %q", resp.Status, body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != hsts {
		t.Errorf("API Strict-Transport-Security = %q, want %q", got, hsts)
	}
	resp, body = get("/setup", session)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="check-tls"`) {
		t.Errorf("setup page over HTTPS: %s, no HTTPS notice", resp.Status)
	}

	// The next start reuses the certificate in data_dir.
	tr.CloseIdleConnections()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	p2, _ := startLogged(t, cfgPath)
	if got := servedLeaf(t, p2.admin, "127.0.0.1", roots); !got.Equal(fileCert) {
		t.Error("the restarted gateway does not serve the self-signed certificate from data_dir")
	}
}

// TestAdminTLSCertificateFiles runs a gateway with admin certificate
// files (relative to the config file, issued by a test CA): each is
// served for its name by SNI, the first without SNI; replacing the files
// is picked up without a restart; a reload with a missing key file fails
// naming the config file, line and key, and the certificates in use
// stay; SIGHUP reloads; a changed list is swapped in; disabling TLS
// waits for the restart.
func TestAdminTLSCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	first, firstKey := filepath.Join(dir, "certs", "admin.pem"), filepath.Join(dir, "certs", "admin.key")
	second, secondKey := filepath.Join(dir, "certs", "other.pem"), filepath.Join(dir, "certs", "other.key")
	ca.leaf(t, first, firstKey, 101, "admin.corp.test", "127.0.0.1")
	ca.leaf(t, second, secondKey, 201, "other.corp.test")
	cfgPath := filepath.Join(dir, "waygate.yaml")
	tlsBlock := func(firstKeyName string) string {
		return "  tls:\n    enabled: true\n    certificates:\n" +
			"      - cert: certs/admin.pem\n        key: " + firstKeyName + "\n" +
			"      - {cert: certs/other.pem, key: certs/other.key}\n"
	}
	good := adminTLSConfig(filepath.Join(dir, "data"), tlsBlock("certs/admin.key"), "")
	writeFileRename(t, cfgPath, []byte(good), 0o600)
	t.Setenv("WAYGATE_ADMIN_PASSWORD", adminTLSPassword)
	p, _ := startLogged(t, cfgPath)

	serial := func(name string) int64 {
		t.Helper()
		return servedLeaf(t, p.admin, name, ca.pool).SerialNumber.Int64()
	}
	for _, tc := range []struct {
		name string
		want int64
	}{{"admin.corp.test", 101}, {"other.corp.test", 201}, {"127.0.0.1", 101}} {
		if got := serial(tc.name); got != tc.want {
			t.Errorf("as %s: serial %d, want %d", tc.name, got, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "admin-selfsigned.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a self-signed certificate was written although certificates are given: %v", err)
	}

	// Replaced files are picked up without a restart.
	ca.leaf(t, first, firstKey, 102, "admin.corp.test", "127.0.0.1")
	p.waitLogWith("config reloaded", "trigger", "file changed")
	waitSerial := func(name string, want int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for serial(name) != want {
			if time.Now().After(deadline) {
				t.Fatalf("as %s: still serving serial %d, want %d", name, serial(name), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitSerial("admin.corp.test", 102)

	// A config whose key file is missing is refused with file, line and
	// key path; the certificates in use stay.
	bad := adminTLSConfig(filepath.Join(dir, "data"), tlsBlock("certs/missing.key"), "")
	writeFileRename(t, cfgPath, []byte(bad), 0o600)
	failed := p.waitLogWith("reload failed; keeping the running config", "trigger", "file changed")
	line := lineOf(t, bad, "key: certs/missing.key")
	wantErr := fmt.Sprintf("%s:%d:14: admin.tls.certificates[0].key: key %s: no such file or directory",
		cfgPath, line, filepath.Join(dir, "certs", "missing.key"))
	if got, _ := failed["error"].(string); got != wantErr {
		t.Errorf("reload error\n%s\nwant\n%s", got, wantErr)
	}
	if got := serial("admin.corp.test"); got != 102 {
		t.Errorf("after a failed reload: serial %d, want 102", got)
	}

	// Back to the good config, then SIGHUP: the same files are re-read.
	writeFileRename(t, cfgPath, []byte(good), 0o600)
	p.waitLogWith("config reloaded", "trigger", "file changed")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLogWith("config reloaded", "trigger", "SIGHUP")
	if got := serial("other.corp.test"); got != 201 {
		t.Errorf("after SIGHUP: serial %d, want 201", got)
	}

	// A changed list of certificates is swapped in by a reload: with only
	// the second one left, it is served to clients without SNI too.
	only := adminTLSConfig(filepath.Join(dir, "data"),
		"  tls:\n    enabled: true\n    certificates:\n      - {cert: certs/other.pem, key: certs/other.key}\n", "")
	writeFileRename(t, cfgPath, []byte(only), 0o600)
	p.waitLogWith("config reloaded", "trigger", "file changed")
	if got := servedLeaf(t, p.admin, "other.corp.test", ca.pool).SerialNumber.Int64(); got != 201 {
		t.Errorf("after the list changed: serial %d, want 201", got)
	}
	if c, err := tls.Dial("tcp", p.admin, &tls.Config{RootCAs: ca.pool, ServerName: "admin.corp.test"}); err == nil {
		c.Close()
		t.Error("the removed certificate still verifies for admin.corp.test")
	}

	// Turning TLS off takes effect at the restart: HTTPS goes on.
	writeFileRename(t, cfgPath, []byte(adminTLSConfig(filepath.Join(dir, "data"), "  tls:\n    enabled: false\n", "")), 0o600)
	p.waitLog("listen addresses, admin.tls.enabled, header/idle timeouts, max_header_bytes, log, data_dir and audit take effect at the next restart")
	p.waitLogWith("config reloaded", "trigger", "file changed")
	if got := serial("other.corp.test"); got != 201 {
		t.Errorf("after disabling TLS in the file: serial %d, want 201 until the restart", got)
	}
}

// lineOf is the 1-based line of the first line of text containing s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the config", s)
	return 0
}

// TestAdminTLSStartErrors checks that a gateway whose admin certificates
// cannot be loaded does not start, and says which file, line and key.
func TestAdminTLSStartErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	cert, key := filepath.Join(dir, "admin.pem"), filepath.Join(dir, "admin.key")
	ca.leaf(t, cert, key, 7, "admin.corp.test")
	otherCert, otherKey := filepath.Join(dir, "other.pem"), filepath.Join(dir, "other.key")
	ca.leaf(t, otherCert, otherKey, 8, "other.corp.test")
	notPEM := filepath.Join(dir, "notpem.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pair := func(c, k string) string { return "      - {cert: " + c + ", key: " + k + "}\n" }
	tests := []struct {
		name  string
		certs string // the certificates list
		at    string // text on the line the error names
		path  string // the key path it names
		msg   string
	}{
		{"missing key file", pair("admin.pem", "admin.key") + "      - cert: admin.pem\n        key: nothere.key\n",
			"key: nothere.key", "admin.tls.certificates[1].key", "key " + filepath.Join(dir, "nothere.key") + ": no such file or directory"},
		{"missing cert file", pair("gone.pem", "admin.key"),
			"gone.pem", "admin.tls.certificates[0].cert", "certificate " + filepath.Join(dir, "gone.pem") + ": no such file or directory"},
		{"key of another certificate", pair("admin.pem", "other.key"),
			"other.key", "admin.tls.certificates[0]", "private key does not match public key"},
		{"not PEM", pair(notPEM, "admin.key"),
			"notpem.pem", "admin.tls.certificates[0]", "failed to find any PEM data in certificate input"},
		{"cert without key", "      - {cert: admin.pem}\n",
			"{cert: admin.pem}", "admin.tls.certificates[0].key", "a certificate needs a key file (and a cert file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgPath := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			text := adminTLSConfig(filepath.Join(dir, "data"), "  tls:\n    enabled: true\n    certificates:\n"+tt.certs, "")
			writeFileRename(t, cfgPath, []byte(text), 0o600)
			// waygate check finds what serve would fail on.
			for _, sub := range []string{"serve", "check"} {
				code, stderr := runFailing(t, sub, cfgPath)
				if code != 1 {
					t.Errorf("%s: exit code %d, want 1", sub, code)
				}
				want := fmt.Sprintf("%s:%d:", cfgPath, lineOf(t, text, tt.at))
				if !strings.Contains(stderr, want) || !strings.Contains(stderr, tt.path+": ") || !strings.Contains(stderr, tt.msg) {
					t.Errorf("%s: stderr\n%s\nwant %q, %q and %q", sub, stderr, want, tt.path, tt.msg)
				}
			}
		})
	}
}

// TestConfigPos checks locating key paths in a config file.
func TestConfigPos(t *testing.T) {
	const doc = `schema_version: 1
admin:
  listen: ":9090"
  tls:
    enabled: true
    certificates:
      - {cert: a.pem, key: a.key}
      - cert: b.pem
        key: b.key
`
	tests := []struct {
		path      string
		line, col int
	}{
		{"admin.tls.certificates[1].key", 9, 14},
		{"admin.tls.certificates[0].cert", 7, 16},
		{"admin.tls.certificates[0]", 7, 9},
		{"admin.tls.certificates[5].key", 7, 7}, // no such element: the list (at its first dash)
		{"admin.tls.enabled", 5, 14},            // a scalar
		{"admin.tls.enabled.x", 5, 14},          // below a scalar: the scalar
		{"data_dir", 1, 1},                      // absent: the document
		{"admin.listen[0]", 3, 11},              // an index into a scalar
		{"", 1, 1},                              // the document
		{"admin.tls.certificates[x]", 7, 7},     // not an index
		{"admin.tls.certificates[99999999999999999999]", 7, 7},
	}
	for _, tt := range tests {
		if line, col := configPos([]byte(doc), tt.path); line != tt.line || col != tt.col {
			t.Errorf("configPos(%q) = %d:%d, want %d:%d", tt.path, line, col, tt.line, tt.col)
		}
	}
	for _, bad := range []string{"", "- a list\n", "a: [\n", "just text"} {
		if line, col := configPos([]byte(bad), "admin.tls"); line != 0 || col != 0 {
			t.Errorf("configPos in %q = %d:%d, want 0:0", bad, line, col)
		}
	}
}

// TestAdminCertHosts checks the names a self-signed admin certificate
// covers for each kind of listen address.
func TestAdminCertHosts(t *testing.T) {
	ifs := func() ([]ifaceAddrs, error) {
		return []ifaceAddrs{
			{name: "lo", addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}},
			{name: "eth0", addrs: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("fe80::1")}},
		}, nil
	}
	failing := func() ([]ifaceAddrs, error) { return nil, errors.New("no interfaces") }
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	host, _ := os.Hostname()
	var hostName []string
	if validHostName(host) {
		hostName = []string{strings.ToLower(host)}
	}
	tests := []struct {
		name   string
		listen string
		bound  net.Addr
		ifs    func() ([]ifaceAddrs, error)
		want   []string
	}{
		{"loopback", "127.0.0.1:9090", tcp("127.0.0.1:9090"), ifs, []string{"127.0.0.1"}},
		{"specific IPv4", "192.0.2.10:9090", tcp("192.0.2.10:9090"), ifs, []string{"192.0.2.10"}},
		{"specific IPv6", "[2001:db8::10]:9443", tcp("[2001:db8::10]:9443"), ifs, []string{"[2001:db8::10]"}},
		{"host name", "Admin.Corp.Test:9443", tcp("192.0.2.10:9443"), ifs, []string{"admin.corp.test"}},
		{"invalid host name", "bad_name!:9443", tcp("192.0.2.10:9443"), ifs, nil},
		{"all IPv4", "0.0.0.0:9090", tcp("0.0.0.0:9090"), ifs, append(slices.Clone(hostName), "192.0.2.10", "127.0.0.1")},
		{"all addresses", ":9090", tcp("[::]:9090"), ifs, append(slices.Clone(hostName), "192.0.2.10", "[2001:db8::10]", "127.0.0.1", "[::1]")},
		{"interfaces unknown", "[::]:9090", tcp("[::]:9090"), failing, hostName},
		{"no port", "127.0.0.1", tcp("127.0.0.1:9090"), ifs, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := adminCertHosts(tt.listen, tt.bound, tt.ifs); !slices.Equal(got, tt.want) {
				t.Errorf("adminCertHosts(%q) = %q, want %q", tt.listen, got, tt.want)
			}
		})
	}
}

// TestValidHostName checks the host name test used for certificates.
func TestValidHostName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"gateway", true}, {"gw-1.corp.example", true}, {"GW.Example.", true}, {"a" + strings.Repeat(".b", 126), true},
		{"", false}, {".", false}, {"-gw", false}, {"gw-", false}, {"g_w", false}, {"a..b", false},
		{strings.Repeat("a", 64), false}, {"a" + strings.Repeat(".b", 127), false}, {"gw:1", false}, {"gâteway", false},
	}
	for _, tt := range tests {
		if got := validHostName(tt.name); got != tt.ok {
			t.Errorf("validHostName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// TestSetupInfoAdminTLS checks that the setup page is told whether the
// admin listener serves HTTPS.
func TestSetupInfoAdminTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tt := range []struct {
		name string
		tls  *adminTLS
		want bool
	}{{"plain", nil, false}, {"https", &adminTLS{}, true}} {
		g := &gateway{cfg: config.Default(), proxyLn: ln, adminTLS: tt.tls}
		info, err := setupInfo{g: g}.Setup(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.AdminTLS != tt.want {
			t.Errorf("%s: AdminTLS = %v, want %v", tt.name, info.AdminTLS, tt.want)
		}
	}
}

// TestBrowserAdminTLS logs in over HTTPS in headless Chromium, which
// trusts only the self-signed certificate's key: the session cookie is
// Secure and the setup page explains why its check cannot run over
// HTTPS.
func TestBrowserAdminTLS(t *testing.T) {
	chromium(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "waygate.yaml")
	writeFileRename(t, cfgPath, []byte(adminTLSConfig(dataDir, "  tls:\n    enabled: true\n", "")), 0o600)
	t.Setenv("WAYGATE_ADMIN_PASSWORD", adminTLSPassword)
	p, _ := startLogged(t, cfgPath)

	leaf := pemCert(t, filepath.Join(dataDir, "admin-selfsigned.crt"))
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	b := newBrowser(t, "https://"+p.admin,
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))
	b.login("admin", adminTLSPassword)

	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == webui.CookieName {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Errorf("browser session cookie %+v, want Secure, HttpOnly, SameSite=Strict", session)
	}
	b.do("setup page", chromedp.Navigate(b.base+"/setup"), chromedp.WaitVisible(chromedp.ID("check-tls")))
	if got := b.text(chromedp.Evaluate[string]("location.protocol")); got != "https:" {
		t.Errorf("page protocol %q, want https:", got)
	}
	b.shot("admin-tls-setup")
}
