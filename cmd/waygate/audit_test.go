package main

import (
	"bufio"
	"io"
	"strings"
	"syscall"
	"testing"

	auditsqlite "waygate/audit/sqlite"
	"waygate/cmd/waygate/internal/config"
)

// TestAuditTrailEndToEnd runs the gateway with the audit trail on, sends
// requests and a tunnel through it, stops it, and checks the database with
// the CLI: every request recorded once with its fields, the tunnel with its
// byte counts, the chain intact, the export complete.
func TestAuditTrailEndToEnd(t *testing.T) {
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", "")
	p := startProcess(t, s.config)
	const n = 7
	for i := 0; i < n; i++ {
		if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/page?i=1"); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	tunnel := openTunnel(t, p.proxy, s.tls)
	if body, err := tunnelGet(tunnel); err != nil || body != "origin ok" {
		t.Fatalf("tunnel: %q %v", body, err)
	}
	tunnel.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	code, out, errOut := runCLI("", "audit", "verify", "-config", s.config)
	if code != 0 || !strings.Contains(out, "chain intact") {
		t.Fatalf("audit verify: %d %q %q", code, out, errOut)
	}

	db, err := auditsqlite.OpenReadOnly(auditPath(mustLoad(t, s.config)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var httpEvents, withFields int
	db.QueryRow(`SELECT count(*) FROM events WHERE kind = 'http'`).Scan(&httpEvents)
	db.QueryRow(`SELECT count(*) FROM events WHERE kind = 'http' AND status = 200 AND method = 'GET'
		AND path = '/page' AND query = 'i=1' AND client = '127.0.0.1' AND host = '127.0.0.1' AND request_id != ''
		AND upstream = ?`, s.origin.Listener.Addr().String()).Scan(&withFields)
	if httpEvents != n || withFields != n {
		t.Errorf("http events %d (%d with the right fields), want %d", httpEvents, withFields, n)
	}
	var in, outBytes int64
	if err := db.QueryRow(`SELECT bytes_in, bytes_out FROM events WHERE kind = 'connect'`).Scan(&in, &outBytes); err != nil {
		t.Fatalf("tunnel event: %v", err)
	}
	if in < 100 || outBytes < 100 {
		t.Errorf("tunnel bytes in %d out %d: want the TLS handshake and request counted", in, outBytes)
	}
	var admin int
	db.QueryRow(`SELECT count(*) FROM events WHERE kind = 'admin' AND method IN ('start', 'shutdown')`).Scan(&admin)
	if admin != 2 {
		t.Errorf("admin events %d, want start and shutdown", admin)
	}
	var total int
	db.QueryRow(`SELECT count(*) FROM events`).Scan(&total)

	for _, format := range []string{"jsonl", "csv", "squid"} {
		code, out, errOut := runCLI("", "audit", "export", "-config", s.config, "-format", format)
		if code != 0 {
			t.Fatalf("export %s: %d %s", format, code, errOut)
		}
		lines := countLines(strings.NewReader(out))
		want := total
		switch format {
		case "csv":
			lines-- // header
		case "squid":
			want -= admin // access.log has requests only
		}
		if lines != want {
			t.Errorf("export %s: %d rows, want %d", format, lines, want)
		}
	}

	// The exports are admin actions: spooled by the CLI, in the trail
	// after the next start, with the chain intact.
	db.Close()
	p = startProcess(t, s.config)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	db2, err := auditsqlite.OpenReadOnly(auditPath(mustLoad(t, s.config)))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var exports int
	db2.QueryRow(`SELECT count(*) FROM events WHERE kind = 'admin' AND method = 'export'`).Scan(&exports)
	if exports != 3 {
		t.Errorf("export admin events %d, want 3", exports)
	}
	if code, out, _ := runCLI("", "audit", "verify", "-config", s.config); code != 0 {
		t.Errorf("verify after the replay: %s", out)
	}
}

func countLines(r io.Reader) int {
	n := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestAuditPrivacyFromConfig(t *testing.T) {
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", `audit:
  privacy:
    hash_clients: true
    query: drop
`)
	p := startProcess(t, s.config)
	if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/private?token=secret"); code != 200 {
		t.Fatalf("status %d", code)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	cfg := mustLoad(t, s.config)
	db, err := auditsqlite.OpenReadOnly(auditPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var client, query string
	if err := db.QueryRow(`SELECT client, query FROM events WHERE kind = 'http'`).Scan(&client, &query); err != nil {
		t.Fatal(err)
	}
	if query != "" || client == "127.0.0.1" || !strings.HasPrefix(client, "~") {
		t.Fatalf("stored client %q query %q: want a pseudonym and no query", client, query)
	}
	// The pseudonym is the keyed hash with the key kept in data_dir.
	priv, err := auditPrivacy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := priv.Pseudonym("127.0.0.1"); got != client {
		t.Errorf("pseudonym with the data_dir key %q, stored %q", got, client)
	}
}
