package main

import (
	"bufio"
	"context"
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

	// The live stream shows a request as it happens.
	stream, err := c.Get(base + "/api/v1/events?kind=http")
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("event stream: %v %v", stream, err)
	}
	live := make(chan string, 1)
	go func() {
		defer stream.Body.Close()
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), "/seen-in-logs") {
				live <- sc.Text()
				return
			}
		}
	}()
	if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/seen-in-logs"); code != 200 {
		t.Fatalf("proxied request: %d", code)
	}
	select {
	case <-live:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxied request did not appear in the live stream")
	}
	stream.Body.Close()
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

	for path, want := range map[string]string{
		"/api/v1/categories": `"name":"games"`,
		"/api/v1/reverse":    `"enabled":false`,
		"/api/v1/users":      `"name":"admin"`,
		"/dashboard":         `/static/dashboard.js`,
		"/logs?host=x":       `/static/logs.js`,
	} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) || strings.Contains(string(b), "$2a$") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
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

// TestPolicySavedFromTheUI: a block rule added through PUT /api/v1/policy
// is validated, written to the config file (the rest of the file kept),
// kept as a revision with its author, and blocks the next request; an
// invalid policy is refused with its problems and changes nothing.
func TestPolicySavedFromTheUI(t *testing.T) {
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", "")
	t.Setenv("WAYGATE_ADMIN_PASSWORD", "correct horse battery staple")
	p := startProcess(t, s.config)
	base := "http://" + p.admin
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/session", strings.NewReader(`{"username":"admin","password":"correct horse battery staple"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %v %v", resp, err)
	}
	var sess struct{ CSRF string }
	json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()

	put := func(doc string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/policy", strings.NewReader(doc))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", sess.CSRF)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	before, _ := os.ReadFile(s.config)
	if code, body := put(`{"categories":[],"rules":[{"name":"bad","action":"explode"}]}`); code != http.StatusUnprocessableEntity || !strings.Contains(body, "rules[0].action") {
		t.Fatalf("invalid policy: %d %s", code, body)
	}
	// A malformed inline entry, which a config file may carry (skipped
	// and reported), is refused from the UI with its path.
	if code, body := put(`{"categories":[{"name":"c","domains":["ok.example","bad..example"]}],"rules":[]}`); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "categories[0].domains[1]") {
		t.Fatalf("malformed inline entry: %d %s", code, body)
	}
	if after, _ := os.ReadFile(s.config); string(after) != string(before) {
		t.Fatal("an invalid policy changed the config file")
	}
	if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/"); code != 200 {
		t.Fatalf("before the rule: %d", code)
	}
	host := strings.TrimPrefix(s.origin.URL, "http://")
	host = host[:strings.LastIndex(host, ":")]
	doc := `{"categories":[{"name":"test-block","domains":["` + host + `"]}],
		"rules":[{"name":"block-test","categories":["test-block"],"action":"block"}]}`
	if code, body := put(doc); code != 200 {
		t.Fatalf("save: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := proxyGet(t, p.proxy, s.origin.URL+"/")
		if code == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the saved rule does not block: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	saved, _ := os.ReadFile(s.config)
	if !strings.Contains(string(saved), "block-test") || !strings.Contains(string(saved), "allow_destinations") {
		t.Errorf("saved config lost the rest of the file or the rule:\n%s", saved)
	}
	// The save reloaded once: the file watcher, which sees the file the
	// save wrote, does not reload it again.
	time.Sleep(time.Second) // the watcher reports after 200 ms of quiet
	var admin struct {
		Events []struct{ Method, Detail string }
	}
	resp, err = c.Get(base + "/api/v1/logs?kind=admin&limit=100")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&admin)
	resp.Body.Close()
	reloads := 0
	for _, e := range admin.Events {
		if e.Method == "reload" {
			reloads++
		}
	}
	if reloads != 1 {
		t.Errorf("%d reloads after one save, want 1: %+v", reloads, admin.Events)
	}

	// The admin log: the saved revision's diff shows the new rule; a
	// rollback to the file as it was unblocks again.
	resp, err = c.Get(base + "/api/v1/revisions/2")
	if err != nil {
		t.Fatal(err)
	}
	var rev struct {
		Revision struct{ Author string }
		Diff     []struct{ Op, Text string }
	}
	json.NewDecoder(resp.Body).Decode(&rev)
	resp.Body.Close()
	added := false
	for _, d := range rev.Diff {
		added = added || d.Op == "+" && strings.Contains(d.Text, "block-test")
	}
	if resp.StatusCode != 200 || rev.Revision.Author != "admin" || !added {
		t.Fatalf("revision 2: %d %+v", resp.StatusCode, rev)
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/revisions/1/rollback", nil)
	req.Header.Set("X-CSRF-Token", sess.CSRF)
	if resp, err = c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("rollback: %v %v", resp, err)
	}
	resp.Body.Close()
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, _ := proxyGet(t, p.proxy, s.origin.URL+"/")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still blocked after the rollback: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if restored, _ := os.ReadFile(s.config); string(restored) != string(before) {
		t.Errorf("rollback did not restore the file:\n%s", restored)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait()
	a, err := auditsqlite.OpenAdmin(auditPath(mustLoad(t, s.config)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	revs, err := a.Revisions(context.Background(), 0, 10)
	if err != nil || len(revs) != 3 || revs[0].Author != "admin" || !strings.Contains(revs[0].Comment, "rollback to revision 1") {
		t.Fatalf("revisions: %+v %v", revs, err)
	}
}
