package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	auditsqlite "waygate/audit/sqlite"
)

// TestReverseEndToEnd runs the gateway with reverse routes: requests are
// routed and balanced, the TLS listener answers with a generated
// certificate, a config change reroutes without a restart, and every
// request is in the audit trail as a reverse event.
func TestReverseEndToEnd(t *testing.T) {
	s := newSite(t)
	app := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s xff=%s", name, r.URL.Path, r.Header.Get("X-Forwarded-For"))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	wiki1, wiki2, api := app("wiki1"), app("wiki2"), app("api")
	routes := func(apiPrefix string) string {
		return fmt.Sprintf(`reverse:
  listen: "127.0.0.1:0"
  tls:
    listen: "127.0.0.1:0"
  routes:
    - name: wiki
      hosts: [wiki.corp.test]
      backends: [%s, %s]
    - name: api
      hosts: [wiki.corp.test]
      path_prefix: %s
      strip_prefix: true
      backends: [%s]
`, wiki1.URL, wiki2.URL, apiPrefix, api.URL)
	}
	s.writeConfig(t, "127.0.0.0/8", routes("/api"))
	p := startProcess(t, s.config)
	plain := p.waitLog("reverse proxy listening")["addr"].(string)
	secure := p.waitLog("reverse proxy listening (TLS)")["addr"].(string)

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "wiki.corp.test"},
	}}
	get := func(base, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Host = "wiki.corp.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	seen := map[string]int{}
	for range 4 {
		code, body := get("http://"+plain, "/page")
		if code != 200 || !strings.HasSuffix(body, "/page xff=127.0.0.1") {
			t.Fatalf("wiki: %d %q", code, body)
		}
		seen[strings.Fields(body)[0]]++
	}
	if seen["wiki1"] != 2 || seen["wiki2"] != 2 {
		t.Errorf("round robin: %v", seen)
	}
	if code, body := get("https://"+secure, "/api/v1"); code != 200 || !strings.HasPrefix(body, "api /v1 ") {
		t.Fatalf("api over TLS: %d %q", code, body)
	}

	// Move the API: the old prefix now goes to the wiki.
	s.writeConfig(t, "127.0.0.0/8", routes("/v2"))
	p.waitLog("config reloaded")
	if code, body := get("http://"+plain, "/api/v1"); code != 200 || !strings.HasPrefix(body, "wiki") {
		t.Fatalf("after reload /api/v1: %d %q", code, body)
	}
	if code, body := get("http://"+plain, "/v2/x"); code != 200 || !strings.HasPrefix(body, "api /x") {
		t.Fatalf("after reload /v2/x: %d %q", code, body)
	}
	if code, _ := get("http://"+plain+"/", ""); code != 200 {
		t.Fatalf("root: %d", code)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	db, err := auditsqlite.OpenReadOnly(auditPath(mustLoad(t, s.config)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, tlsN int
	db.QueryRow(`SELECT count(*) FROM events WHERE kind = 'reverse' AND status = 200 AND host = 'wiki.corp.test' AND rule != '' AND upstream != ''`).Scan(&n)
	db.QueryRow(`SELECT count(*) FROM events WHERE kind = 'reverse' AND scheme = 'https' AND rule = 'api'`).Scan(&tlsN)
	if n != 8 || tlsN != 1 {
		t.Errorf("reverse events: %d (want 8), over TLS to api: %d (want 1)", n, tlsN)
	}
	if code, out, _ := runCLI("", "audit", "verify", "-config", s.config); code != 0 {
		t.Errorf("audit verify: %s", out)
	}
}

// writeSelfSigned writes a certificate for name with the given serial and
// its key to certFile and keyFile (replaced atomically).
func writeSelfSigned(t *testing.T, certFile, keyFile, name string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	for path, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: kder},
	} {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReverseCertificateReload replaces the TLS listener's certificate
// files while the gateway runs: the new certificate is served without a
// restart.
func TestReverseCertificateReload(t *testing.T) {
	s := newSite(t)
	certFile, keyFile := filepath.Join(s.dir, "wiki.pem"), filepath.Join(s.dir, "wiki.key")
	writeSelfSigned(t, certFile, keyFile, "wiki.corp.test", 1001)
	s.writeConfig(t, "127.0.0.0/8", fmt.Sprintf(`reverse:
  tls:
    listen: "127.0.0.1:0"
    certificates:
      - {cert: %s, key: %s}
  routes:
    - name: wiki
      backends: [%s]
`, certFile, keyFile, s.origin.URL))
	p := startProcess(t, s.config)
	addr := p.waitLog("reverse proxy listening (TLS)")["addr"].(string)
	serial := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "wiki.corp.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1001 {
		t.Fatalf("serving serial %d, want 1001", got)
	}
	writeSelfSigned(t, certFile, keyFile, "wiki.corp.test", 1002)
	deadline := time.Now().Add(20 * time.Second)
	for serial() != 1002 {
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate was not picked up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
