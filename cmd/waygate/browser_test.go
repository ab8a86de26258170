package main

import (
	"context"
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

// TestBrowserUI drives the admin UI in headless Chromium against a real
// gateway: log in, see a proxied request (with a hostile path and user
// agent) in the logs page within two seconds, found by the host and text
// filters and shown as inert text, and the dashboard drawing its chart and
// live ticker. Screenshots of each page are saved.
func TestBrowserUI(t *testing.T) {
	exe := chromium(t)
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", "")
	t.Setenv("WAYGATE_ADMIN_PASSWORD", "browser test password")
	p := startProcess(t, s.config)
	base := "http://" + p.admin

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	// Any script that runs from logged data would open a dialog.
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
	shots := screenshotDir(t)
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
	); err != nil {
		t.Fatalf("login page: %v", err)
	}
	shot("login")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "browser test password"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("user")),
	); err != nil {
		t.Fatalf("login: %v", err)
	}
	if who := text(chromedp.Text(chromedp.ID("user"))); who != "admin" {
		t.Fatalf("logged in as %q", who)
	}
	shot("start")

	// A request with a hostile path and user agent, through the proxy.
	const hostileUA = `<img src=x onerror=alert(2)>`
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.proxy})}
	defer tr.CloseIdleConnections()
	proxied := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, s.origin.URL+"/seen-in-browser/<script>alert(1)</script>", nil)
	req.Header.Set("User-Agent", hostileUA)
	resp, err := proxied.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	made := time.Now()

	host := strings.TrimPrefix(s.origin.URL, "http://")
	host = host[:strings.LastIndex(host, ":")]
	logsURL := base + "/logs?" + url.Values{"host": {host}, "q": {"seen-in-browser"}}.Encode()
	var rows string
	for deadline := made.Add(2 * time.Second); ; {
		if err := chromedp.Do(ctx, chromedp.Navigate(logsURL), chromedp.WaitVisible(chromedp.ID("logs"))); err != nil {
			t.Fatalf("logs page: %v", err)
		}
		// The script fills the table after its fetch.
		found, _ := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#rows").textContent.includes("seen-in-browser")`,
			chromedp.WithPollingTimeout(time.Second)))
		rows = text(chromedp.Text(chromedp.ID("rows")))
		if found || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(rows, "seen-in-browser") {
		t.Fatalf("the request is not in the logs page %v after it was made; rows: %q", time.Since(made).Round(time.Millisecond), rows)
	}
	if !strings.Contains(rows, "<script>alert(1)</script>") {
		t.Errorf("the hostile path is not shown as text: %q", rows)
	}
	// Open the row: the full event, with the hostile user agent as text.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#rows tr"))); err != nil {
		t.Fatalf("opening a row: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#rows").textContent.includes("onerror=alert(2)")`,
		chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Errorf("the hostile user agent is not shown as text in the event: %q", text(chromedp.Text(chromedp.ID("rows"))))
	}
	shot("logs")

	// The dashboard draws its chart and shows live traffic.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/dashboard"), chromedp.WaitVisible(chromedp.CSS("#chart svg"))); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if resp, err := proxied.Get(s.origin.URL + "/live-on-dashboard"); err == nil {
		resp.Body.Close()
	} else {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#ticker").textContent.includes("live-on-dashboard")`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the dashboard ticker did not show live traffic: %q", text(chromedp.Text(chromedp.ID("ticker"))))
	}
	shot("dashboard")
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d dialogs opened: logged data ran as script", n)
	}
	t.Logf("screenshots in %s", shots)
}
