package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"waygate/proxy/upstream/dnstest"
)

// TestMain lets the test binary stand in for the waygate binary: the
// process tests below run it with WAYGATE_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("WAYGATE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// process is a waygate serve process under test.
type process struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan map[string]any
	done  chan struct{}
	err   error
	proxy string // host:port
	admin string
}

// startProcess starts `waygate serve -config configPath` (see spawn) and
// waits until its forward proxy and admin UI listen.
func startProcess(t *testing.T, configPath string) *process {
	t.Helper()
	p := spawn(t, configPath)
	p.proxy = p.waitLog("forward proxy listening")["addr"].(string)
	p.admin = p.waitLog("admin listening")["addr"].(string)
	return p
}

// spawn starts `waygate serve -config configPath`, the test binary
// standing in for waygate, with HTTP_PROXY and HTTPS_PROXY pointing at a
// closed port (so that nothing it fetches leaves loopback by a proxy), and
// feeds its JSON log lines (other lines as {"msg": line}) to p.lines. The
// process is killed when the test ends.
func spawn(t *testing.T, configPath string) *process {
	t.Helper()
	p := &process{t: t, lines: make(chan map[string]any, 256), done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "serve", "-config", configPath)
	p.cmd.Env = append(os.Environ(), "WAYGATE_TEST_MAIN=1", "HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = map[string]any{"msg": sc.Text()}
			}
			select {
			case p.lines <- m:
			default: // nobody is waiting for that many lines
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitFor reads log lines until match accepts one, and returns it; the
// test fails if the process exits or within passes first. what names the
// line for the failure message.
func (p *process) waitFor(what string, within time.Duration, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-p.lines:
			if match(m) {
				return m
			}
		case <-p.done:
			p.t.Fatalf("process exited (%v) before logging %s", p.err, what)
		case <-deadline:
			p.t.Fatalf("no log line %s", what)
		}
	}
}

// waitLog waits (bounded) for a log line with message msg.
func (p *process) waitLog(msg string) map[string]any {
	p.t.Helper()
	return p.waitFor(fmt.Sprintf("%q", msg), 20*time.Second, func(m map[string]any) bool { return m["msg"] == msg })
}

// wait waits (bounded) for the process to exit and returns its exit code.
func (p *process) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatal("process did not exit")
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	p.t.Fatal(p.err)
	return -1
}

type testSite struct {
	origin *httptest.Server
	tls    *httptest.Server
	dns    *dnstest.Server
	dir    string
	config string
}

func newSite(t *testing.T) *testSite {
	s := &testSite{dir: t.TempDir()}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin ok") })
	s.origin = httptest.NewServer(h)
	t.Cleanup(s.origin.Close)
	s.tls = httptest.NewTLSServer(h)
	t.Cleanup(s.tls.Close)
	s.dns = dnstest.Start(t, map[string][]string{"origin.test": {"127.0.0.1"}})
	s.config = filepath.Join(s.dir, "waygate.yaml")
	return s
}

// writeConfig writes a config that lets loopback clients reach the test
// origins; allowClients and extra vary per step.
func (s *testSite) writeConfig(t *testing.T, allowClients, extra string) {
	t.Helper()
	_, tlsPort, _ := net.SplitHostPort(s.tls.Listener.Addr().String())
	cfg := fmt.Sprintf(`schema_version: 1
data_dir: %s
log:
  format: json
proxy:
  listen: "127.0.0.1:0"
  allow_clients: [%s]
  allow_destinations: [127.0.0.1/32]
  connect_ports: [%s]
  timeouts:
    shutdown: 5s
admin:
  listen: "127.0.0.1:0"
dns:
  servers: ["%s"]
  hosts_file: none
%s`, filepath.Join(s.dir, "data"), allowClients, tlsPort, s.dns.Addr, extra)
	writeFileRename(t, s.config, []byte(cfg), 0o600)
}

// writeFileRename writes data to path through a temporary file and a
// rename, as config management does.
func writeFileRename(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func proxyGet(t *testing.T, proxyAddr, target string) (int, string) {
	t.Helper()
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr})}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// openTunnel opens CONNECT + TLS to the TLS origin through the proxy.
func openTunnel(t *testing.T, proxyAddr string, origin *httptest.Server) *tls.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	target := origin.Listener.Addr().String()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(origin.Certificate())
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	return tc
}

// tunnelGet sends one request over an open tunnel and returns the body,
// or an error when the tunnel is gone.
func tunnelGet(tc *tls.Conn) (string, error) {
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: origin\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestServeReloadAndShutdown(t *testing.T) {
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", "")
	p := startProcess(t, s.config)

	if code, body := proxyGet(t, p.proxy, s.origin.URL+"/"); code != 200 || body != "origin ok" {
		t.Fatalf("through the proxy: %d %q", code, body)
	}
	if code, _ := proxyGet(t, p.proxy, "http://origin.test:"+s.origin.URL[strings.LastIndex(s.origin.URL, ":")+1:]+"/"); code != 200 {
		t.Fatalf("by name through the gateway's resolver: %d", code)
	}
	// 127.0.0.1 is an allowed destination, but never the gateway itself.
	for _, self := range []string{p.proxy, p.admin} {
		if code, _ := proxyGet(t, p.proxy, "http://"+self+"/"); code != http.StatusForbidden {
			t.Errorf("request to the gateway's own address %s: %d, want 403", self, code)
		}
	}
	resp, err := http.Get("http://" + p.admin + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`waygate_proxy_requests_total{code="2xx",kind="http"} 2`, "waygate_dns_cache_misses_total", "waygate_proxy_tunnels_open 0"} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Errorf("metrics lack %q", m)
		}
	}

	tunnel := openTunnel(t, p.proxy, s.tls)
	if body, err := tunnelGet(tunnel); err != nil || body != "origin ok" {
		t.Fatalf("over the tunnel: %q %v", body, err)
	}

	// Reload by file change: loopback clients are no longer allowed.
	s.writeConfig(t, "10.0.0.0/8", "")
	p.waitLog("config reloaded")
	if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/"); code != http.StatusForbidden {
		t.Fatalf("after reload, new request: %d, want 403", code)
	}
	if body, err := tunnelGet(tunnel); err != nil || body != "origin ok" {
		t.Fatalf("tunnel opened before the reload: %q %v", body, err)
	}

	// A broken file keeps the running config and says where it is broken.
	if err := os.WriteFile(s.config, []byte("schema_version: 1\nproxy:\n  lisen: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := p.waitLog("reload failed; keeping the running config")
	if e, _ := m["error"].(string); !strings.Contains(e, "waygate.yaml:3") || !strings.Contains(e, "lisen") {
		t.Errorf("reload error does not name the line and key: %q", e)
	}
	if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/"); code != http.StatusForbidden {
		t.Fatalf("after a failed reload: %d, want the previous config's 403", code)
	}

	// SIGHUP reloads too.
	s.writeConfig(t, "127.0.0.0/8", "")
	p.waitLog("config reloaded") // from the file watcher
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("config reloaded")
	if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/"); code != 200 {
		t.Fatalf("after SIGHUP: %d", code)
	}

	// SIGTERM drains: the open tunnel keeps working until its client is
	// done, then the process exits 0 without waiting for the deadline.
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog("shutting down")
	if body, err := tunnelGet(tunnel); err != nil || body != "origin ok" {
		t.Fatalf("tunnel during drain: %q %v", body, err)
	}
	tunnel.Close()
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestShutdownDeadlineCutsTunnels(t *testing.T) {
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", "")
	cfg, _ := os.ReadFile(s.config)
	os.WriteFile(s.config, bytes.Replace(cfg, []byte("shutdown: 5s"), []byte("shutdown: 300ms"), 1), 0o600)
	p := startProcess(t, s.config)
	tunnel := openTunnel(t, p.proxy, s.tls)
	if _, err := tunnelGet(tunnel); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if _, err := tunnelGet(tunnel); err == nil {
		t.Fatal("tunnel still open after the process exited")
	}
}

func TestPolicyReloadsWithListFile(t *testing.T) {
	s := newSite(t)
	s.dns.Set("blocked.test", netip.MustParseAddr("127.0.0.1"))
	s.dns.Set("other.test", netip.MustParseAddr("127.0.0.1"))
	listDir := filepath.Join(s.dir, "lists")
	os.MkdirAll(listDir, 0o755)
	list := filepath.Join(listDir, "blocked")
	writeList := func(body string) {
		tmp := list + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, list); err != nil {
			t.Fatal(err)
		}
	}
	writeList("blocked.test\n")
	s.writeConfig(t, "127.0.0.0/8", `categories:
  - name: blocked
    files: [lists/blocked]
rules:
  - name: no-blocked
    categories: [blocked]
    action: block
`)
	p := startProcess(t, s.config)
	port := s.origin.URL[strings.LastIndex(s.origin.URL, ":")+1:]
	get := func(host string) int {
		code, _ := proxyGet(t, p.proxy, "http://"+host+":"+port+"/")
		return code
	}
	if get("blocked.test") != http.StatusForbidden || get("other.test") != 200 {
		t.Fatal("initial policy not applied")
	}
	// A change to the list file alone reloads the policy.
	writeList("blocked.test\nother.test\n")
	p.waitLog("config reloaded")
	if code := get("other.test"); code != http.StatusForbidden {
		t.Fatalf("after the list changed: %d, want 403", code)
	}
	// A list that cannot be read keeps the running policy.
	os.Remove(list)
	m := p.waitLog("reload failed; keeping the running config")
	if e, _ := m["error"].(string); !strings.Contains(e, "blocked") {
		t.Errorf("reload error does not name the list: %q", e)
	}
	if code := get("other.test"); code != http.StatusForbidden {
		t.Fatalf("after a failed reload: %d, want the old policy's 403", code)
	}
}

func TestRemoteListKeptOnDisk(t *testing.T) {
	s := newSite(t)
	s.dns.Set("remote-blocked.test", netip.MustParseAddr("127.0.0.1"))
	var hits atomic.Int32
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "remote-blocked.test\n")
	}))
	s.writeConfig(t, "127.0.0.0/8", `categories:
  - name: remote
    remote:
      - url: `+lists.URL+`/list.txt
        refresh: 1h
rules:
  - name: no-remote
    categories: [remote]
    action: block
`)
	port := s.origin.URL[strings.LastIndex(s.origin.URL, ":")+1:]
	p := startProcess(t, s.config)
	if code, _ := proxyGet(t, p.proxy, "http://remote-blocked.test:"+port+"/"); code != http.StatusForbidden {
		t.Fatalf("host from the remote list: %d, want 403", code)
	}
	if hits.Load() != 1 {
		t.Fatalf("list server hit %d times", hits.Load())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// The list server is gone: a restart uses the copy kept in data_dir.
	lists.Close()
	p = startProcess(t, s.config)
	if code, _ := proxyGet(t, p.proxy, "http://remote-blocked.test:"+port+"/"); code != http.StatusForbidden {
		t.Fatalf("after restart without the list server: %d, want 403 from the kept copy", code)
	}
}
