package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	auditsqlite "waygate/audit/sqlite"
)

// TestAdminUIEndToEnd: the first start creates the admin account with a
// generated password in a 0600 file; logging in works and is audited; the
// logs API finds a request just made through the proxy; explain answers
// with the running policy; without a session the API refuses.
func TestAdminUIEndToEnd(t *testing.T) {
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", `categories:
  - name: games
    domains: [games.test]
rules:
  - name: no-games
    categories: [games]
    action: block
`)
	p := startProcess(t, s.config)
	pwFile := filepath.Join(s.dir, "data", adminPasswordFile)
	fi, err := os.Stat(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", pwFile, fi.Mode().Perm())
	}
	pw, _ := os.ReadFile(pwFile)
	password := strings.TrimSpace(string(pw))

	base := "http://" + p.admin
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	if resp, err := c.Get(base + "/api/v1/logs"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("logs without a session: %v %v", resp, err)
	}
	login := func(pass string) int {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"username": "admin", "password": pass})
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/session", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := login("wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if code := login(password); code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}

	if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/seen-in-logs"); code != 200 {
		t.Fatalf("proxied request: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(base + "/api/v1/logs?" + url.Values{"host": {"127.0.0.1"}, "q": {"seen-in-logs"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Events []map[string]any `json:"events"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("logs: %d %v", resp.StatusCode, err)
		}
		if len(page.Events) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxied request is not in the logs: %v", page.Events)
		}
		time.Sleep(100 * time.Millisecond)
	}

	resp, err := c.Get(base + "/api/v1/explain?" + url.Values{"url": {"http://www.games.test/x"}, "client": {"10.1.2.3"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"no-games"`) || !strings.Contains(string(b), `"block"`) {
		t.Fatalf("explain: %d %s", resp.StatusCode, b)
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
	var ok, failed int
	db.QueryRow(`SELECT count(*) FROM events WHERE kind = 'admin' AND method = 'login' AND user = 'admin'`).Scan(&ok)
	db.QueryRow(`SELECT count(*) FROM events WHERE kind = 'admin' AND method = 'login_failed'`).Scan(&failed)
	if ok != 1 || failed != 1 {
		t.Errorf("login events: %d ok, %d failed; want 1 and 1", ok, failed)
	}

	// A second start keeps the account and prints no new password.
	os.Remove(pwFile)
	p = startProcess(t, s.config)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait()
	if _, err := os.Stat(pwFile); err == nil {
		t.Error("a second start made a new admin password")
	}
}
