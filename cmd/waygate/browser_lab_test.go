package main

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserLab drives the proxy lab page in headless Chromium against a
// real gateway: both demonstrations run and show their two sides (Via and
// no client address at the origin; the gateway's certificate at the
// client and X-Forwarded-For at the app), and the live counters move when
// traffic goes through the forward proxy; a policy block is shown as the
// gateway's decision. Screenshot "lab" (and "lab-phone" at a phone's
// width, "lab-refused" with the block).
func TestBrowserLab(t *testing.T) {
	chromium(t)
	s := newSite(t)
	s.writeLabConfig(t, "127.0.0.1:0", "")
	t.Setenv("WAYGATE_ADMIN_PASSWORD", labTestPassword)
	p := startProcess(t, s.config)
	b := newBrowser(t, "http://"+p.admin)
	b.login("admin", labTestPassword)

	b.do("lab page", chromedp.Navigate(b.base+"/lab"), chromedp.WaitVisible(chromedp.ID("run-forward")))
	if !b.until(`document.getElementById("live-state").textContent === "live"`, 10*time.Second) {
		t.Fatalf("the event stream is not live: %q", b.text(chromedp.Text(chromedp.ID("live-state"))))
	}

	// Forward: the origin saw Via and no client address.
	b.do("run forward", chromedp.Click(chromedp.ID("run-forward")))
	if !b.until(`document.getElementById("forward-status").textContent.startsWith("Done")`, 15*time.Second) {
		t.Fatalf("forward demonstration: %q", b.text(chromedp.Text(chromedp.ID("forward-status"))))
	}
	origin := b.text(chromedp.Text(chromedp.ID("forward-server")))
	for _, want := range []string{"Via", "1.1 waygate", "X-Forwarded-For", "(not sent)", "Connection from", "127.0.0.1:"} {
		if !strings.Contains(origin, want) {
			t.Errorf("what the origin saw lacks %q: %q", want, origin)
		}
	}
	if strings.Contains(origin, labClientAddr.String()) {
		t.Errorf("the origin's side shows the client's address: %q", origin)
	}
	if client := b.text(chromedp.Text(chromedp.ID("forward-client"))); !strings.Contains(client, labClientAddr.String()) || !strings.Contains(client, "GET http://") {
		t.Errorf("what the client sent: %q", client)
	}
	if n := b.text(chromedp.Evaluate[string](`String(document.querySelectorAll("#forward-facts li.holds").length)`)); n != "3" {
		t.Errorf("forward facts holding: %s, want 3: %q", n, b.text(chromedp.Text(chromedp.ID("forward-facts"))))
	}

	// Reverse: the client saw the gateway's certificate, the app saw
	// X-Forwarded-For.
	b.do("run reverse", chromedp.Click(chromedp.ID("run-reverse")))
	if !b.until(`document.getElementById("reverse-status").textContent.startsWith("Done")`, 15*time.Second) {
		t.Fatalf("reverse demonstration: %q", b.text(chromedp.Text(chromedp.ID("reverse-status"))))
	}
	client := b.text(chromedp.Text(chromedp.ID("reverse-client")))
	for _, want := range []string{"The certificate it was shown", "Waygate self-signed", "SHA-256", "lab.waygate.test", "TLS 1.3", "Strict-Transport-Security"} {
		if !strings.Contains(client, want) {
			t.Errorf("what the client saw lacks %q: %q", want, client)
		}
	}
	app := b.text(chromedp.Text(chromedp.ID("reverse-server")))
	for _, want := range []string{"X-Forwarded-For", labClientAddr.String(), "X-Forwarded-Proto", "https", "TLS on this connection", "none"} {
		if !strings.Contains(app, want) {
			t.Errorf("what the app saw lacks %q: %q", want, app)
		}
	}
	if n := b.text(chromedp.Evaluate[string](`String(document.querySelectorAll("#reverse-facts li.holds").length)`)); n != "4" {
		t.Errorf("reverse facts holding: %s, want 4: %q", n, b.text(chromedp.Text(chromedp.ID("reverse-facts"))))
	}
	if !b.until(`Number(document.getElementById("count-reverse").textContent) >= 1`, 10*time.Second) {
		t.Errorf("the reverse counter did not count the reverse demonstration: %q", b.text(chromedp.Text(chromedp.ID("count-reverse"))))
	}

	// Traffic of our own through the forward proxy, to the echo origin
	// the diagram names, moves the forward counter.
	if !b.until(`Number(document.getElementById("count-forward").textContent) >= 1`, 10*time.Second) {
		t.Errorf("the forward counter did not count the forward demonstration")
	}
	before, _ := strconv.Atoi(b.text(chromedp.Text(chromedp.ID("count-forward"))))
	echo := b.text(chromedp.TextContent(chromedp.ID("forward-addr-server")))
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.proxy})}
	t.Cleanup(tr.CloseIdleConnections)
	proxied := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range 3 {
		resp, err := proxied.Get("http://" + echo + "/from-the-test/" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("through the proxy to %s: %d", echo, resp.StatusCode)
		}
	}
	if !b.until(`Number(document.getElementById("count-forward").textContent) >= `+strconv.Itoa(before+3), 10*time.Second) {
		t.Errorf("the forward counter did not move from %d: %q", before, b.text(chromedp.Text(chromedp.ID("count-forward"))))
	}
	b.shot("lab")

	b.do("phone width", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("run-forward")))
	b.do("run forward on a phone", chromedp.Click(chromedp.ID("run-forward")))
	if !b.until(`document.getElementById("forward-status").textContent.startsWith("Done")`, 15*time.Second) {
		t.Fatalf("forward demonstration on a phone: %q", b.text(chromedp.Text(chromedp.ID("forward-status"))))
	}
	if wide := b.text(chromedp.Evaluate[string](`String(document.documentElement.scrollWidth > window.innerWidth + 1)`)); wide != "false" {
		t.Errorf("the page is wider than a phone's screen")
	}
	b.shot("lab-phone")

	// A policy that blocks the lab's origin: the page shows the gateway's
	// decision, not an error.
	s.writeLabConfig(t, "127.0.0.1:0", `categories:
  - name: lab-targets
    domains: [127.0.0.1]
rules:
  - name: no-lab
    categories: [lab-targets]
    action: block
`)
	p.waitLog("config reloaded")
	b.do("desktop width", chromedp.EmulateViewport(1280, 900), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("run-forward")))
	b.do("run forward, blocked", chromedp.Click(chromedp.ID("run-forward")))
	if !b.until(`document.getElementById("forward-status").textContent.startsWith("Refused by the gateway: 403")`, 15*time.Second) {
		t.Fatalf("forward demonstration under a blocking rule: %q", b.text(chromedp.Text(chromedp.ID("forward-status"))))
	}
	refusal := b.text(chromedp.Text(chromedp.ID("forward-refused")))
	for _, want := range []string{"Blocked by policy", "no-lab", "lab-targets", "never reached the origin"} {
		if !strings.Contains(refusal, want) {
			t.Errorf("the refusal lacks %q: %q", want, refusal)
		}
	}
	if origin := b.text(chromedp.Text(chromedp.ID("forward-server"))); !strings.Contains(origin, "the gateway refused") {
		t.Errorf("what the origin saw, when blocked: %q", origin)
	}
	b.shot("lab-refused")
}
