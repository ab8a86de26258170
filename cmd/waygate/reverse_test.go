package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
