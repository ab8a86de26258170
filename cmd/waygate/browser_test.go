package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"
)

// chromium finds a Chromium to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("browser tests need Chromium (Debian: apt-get install chromium); .ci/run installs it")
	return ""
}

// screenshotDir is where the browser tests leave their screenshots:
// $WAYGATE_SCREENSHOTS, or waygate-screenshots in the temp folder.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("WAYGATE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "waygate-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a headless Chromium driven by chromedp for one test. Every
// JavaScript dialog it opens counts as a failure of the test: no page may
// run script from logged or entered data.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string // the admin UI, "http://host:port"
	shots string // the screenshot folder
}

// newBrowser starts Chromium (or skips the test without one) for the admin
// UI at base ("http://host:port"), with extra options after the defaults
// (chromedp.ProxyServer, say). It is stopped when the test ends.
func newBrowser(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	var dialogs atomic.Int32
	opened := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range opened {
			if err != nil {
				return
			}
			dialogs.Add(1)
			t.Logf("dialog opened: %q", ev.Message)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	b := &browser{t: t, ctx: ctx, base: base, shots: screenshotDir(t)}
	t.Cleanup(func() {
		if n := dialogs.Load(); n != 0 {
			t.Errorf("%d dialogs opened: data ran as script", n)
		}
		cancel()
		cancelCtx()
		cancelAlloc()
	})
	return b
}

// do runs actions, failing the test with what on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text runs a, chromedp.Text(selector) say, and returns its string.
func (b *browser) text(a chromedp.Action[string]) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("reading a text: %v", err)
	}
	return v
}

// until waits up to d for the JavaScript expression js to be true, and
// reports whether it became true.
func (b *browser) until(js string, d time.Duration) bool {
	ok, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(d)))
	return err == nil && ok
}

// shot saves a full-page PNG screenshot as name.png in the screenshot
// folder.
func (b *browser) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// login logs in through the login page and waits for the start page.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.do("login page", chromedp.Navigate(b.base+"/login"), chromedp.WaitVisible(chromedp.ID("username")))
	b.do("login",
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("user")),
	)
	if who := b.text(chromedp.Text(chromedp.ID("user"))); who != user {
		b.t.Fatalf("logged in as %q, want %q", who, user)
	}
}

// TestBrowserUI drives the admin UI in headless Chromium against a real
// gateway: log in, see a proxied request (with a hostile path and user
// agent) in the logs page within two seconds, found by the user and host
// filters (another user's request left out) and shown as inert text, and
// the dashboard drawing its chart and live ticker. Screenshots of each
// page are saved.
func TestBrowserUI(t *testing.T) {
	chromium(t)
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", "")
	// Proxy users, so that the logs can be searched by user.
	hash, err := bcrypt.GenerateFromPassword([]byte("proxy pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(s.config)
	withAuth := strings.Replace(string(cfg), "  timeouts:\n", "  auth:\n    users:\n      - name: browser-alice\n        password_hash: \""+string(hash)+
		"\"\n      - name: browser-bob\n        password_hash: \""+string(hash)+"\"\n  timeouts:\n", 1)
	if err := os.WriteFile(s.config, []byte(withAuth), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WAYGATE_ADMIN_PASSWORD", "browser test password")
	p := startProcess(t, s.config)
	b := newBrowser(t, "http://"+p.admin)

	b.do("login page", chromedp.Navigate(b.base+"/login"), chromedp.WaitVisible(chromedp.ID("username")))
	b.shot("login")
	b.login("admin", "browser test password")
	b.shot("start")

	// Another user's request to the same host first (the audit trail is
	// written in order), which the user filter leaves out.
	bobs := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.proxy, User: url.UserPassword("browser-bob", "proxy pw")})}
	defer bobs.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: bobs, Timeout: 10 * time.Second}).Get(s.origin.URL + "/seen-by-bob"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's request: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// A request with a hostile path and user agent, through the proxy.
	const hostileUA = `<img src=x onerror=alert(2)>`
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.proxy, User: url.UserPassword("browser-alice", "proxy pw")})}
	defer tr.CloseIdleConnections()
	proxied := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, s.origin.URL+"/seen-in-browser/<script>alert(1)</script>", nil)
	req.Header.Set("User-Agent", hostileUA)
	resp, err := proxied.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied request: %s", resp.Status)
	}
	made := time.Now()

	host := strings.TrimPrefix(s.origin.URL, "http://")
	host = host[:strings.LastIndex(host, ":")]
	logsURL := b.base + "/logs?" + url.Values{"user": {"browser-alice"}, "host": {host}}.Encode()
	var rows string
	for deadline := made.Add(2 * time.Second); ; {
		b.do("logs page", chromedp.Navigate(logsURL), chromedp.WaitVisible(chromedp.ID("logs")))
		// The script fills the table after its fetch.
		found := b.until(`document.querySelector("#rows").textContent.includes("seen-in-browser")`, time.Second)
		rows = b.text(chromedp.Text(chromedp.ID("rows")))
		if found || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(rows, "seen-in-browser") {
		t.Fatalf("the request is not in the logs page %v after it was made; rows: %q", time.Since(made).Round(time.Millisecond), rows)
	}
	if strings.Contains(rows, "seen-by-bob") {
		t.Errorf("the user filter let another user's request through: %q", rows)
	}
	if !strings.Contains(rows, "<script>alert(1)</script>") {
		t.Errorf("the hostile path is not shown as text: %q", rows)
	}
	// Open the row: the full event, with the hostile user agent as text.
	b.do("opening a row", chromedp.Click(chromedp.CSS("#rows tr")))
	if !b.until(`document.querySelector("#rows").textContent.includes("onerror=alert(2)")`, 5*time.Second) {
		t.Errorf("the hostile user agent is not shown as text in the event: %q", b.text(chromedp.Text(chromedp.ID("rows"))))
	}
	b.shot("logs")

	// A request to a port nobody listens on fails upstream (refused).
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String() + "/nobody-home"
	closed.Close()
	failed := func() {
		t.Helper()
		resp, err := proxied.Get(deadURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("request to a closed port: %s", resp.Status)
		}
	}
	failed()
	time.Sleep(500 * time.Millisecond) // the audit writer flushes every 200 ms

	// The dashboard draws its chart, lists the upstream errors of the last
	// hour by cause, and shows live traffic and failures.
	b.do("dashboard", chromedp.Navigate(b.base+"/dashboard"), chromedp.WaitVisible(chromedp.CSS("#chart svg")))
	if !b.until(`document.querySelector("#top-error").textContent.includes("refused")`, 5*time.Second) {
		t.Errorf("the dashboard does not list the refused connection: %q", b.text(chromedp.Text(chromedp.ID("top-error"))))
	}
	if resp, err := proxied.Get(s.origin.URL + "/live-on-dashboard"); err == nil {
		resp.Body.Close()
	} else {
		t.Fatal(err)
	}
	failed()
	if !b.until(`document.querySelector("#ticker").textContent.includes("live-on-dashboard")`, 10*time.Second) {
		t.Errorf("the dashboard ticker did not show live traffic: %q", b.text(chromedp.Text(chromedp.ID("ticker"))))
	}
	if !b.until(`document.querySelector("#live-errors").textContent === "1"`, 10*time.Second) {
		t.Errorf("live upstream errors: %q, want 1", b.text(chromedp.Text(chromedp.ID("live-errors"))))
	}
	b.shot("dashboard")

	// On a phone neither page scrolls sideways.
	b.do("phone size", chromedp.EmulateViewport(390, 844))
	for _, pg := range []string{"dashboard", "logs"} {
		b.do(pg+" on a phone", chromedp.Navigate(b.base+"/"+pg), chromedp.WaitVisible(chromedp.ID("main")))
		if !b.until(`document.documentElement.scrollWidth <= window.innerWidth`, 2*time.Second) {
			t.Errorf("the %s page scrolls sideways on a phone", pg)
		}
		b.shot(pg + "-phone")
	}
	t.Logf("screenshots in %s", b.shots)
}
