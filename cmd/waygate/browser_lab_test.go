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
	runDemo(b, "forward", "Done")
	origin := textHas(b, "forward-server", "what the origin saw", "Via", "1.1 waygate", "X-Forwarded-For", "(not sent)",
		"Connection from", "127.0.0.1:")
	if strings.Contains(origin, labClientAddr.String()) {
		t.Errorf("the origin's side shows the client's address: %q", origin)
	}
	textHas(b, "forward-client", "what the client sent", labClientAddr.String(), "GET http://")
	factsHolding(b, "forward", 3)

	// Reverse: the client saw the gateway's certificate, the app saw
	// X-Forwarded-For.
	runDemo(b, "reverse", "Done")
	textHas(b, "reverse-client", "what the client saw", "The certificate it was shown", "Waygate self-signed", "SHA-256",
		"lab.waygate.test", "TLS 1.3", "Strict-Transport-Security")
	textHas(b, "reverse-server", "what the app saw", "X-Forwarded-For", labClientAddr.String(), "X-Forwarded-Proto", "https",
		"TLS on this connection", "none")
	factsHolding(b, "reverse", 4)
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
	runDemo(b, "forward", "Done")
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
	runDemo(b, "forward", "Refused by the gateway: 403")
	textHas(b, "forward-refused", "the refusal", "Blocked by policy", "no-lab", "lab-targets", "never reached the origin")
	textHas(b, "forward-server", "what the origin saw, when blocked,", "the gateway refused")
	b.shot("lab-refused")
}

// runDemo runs the lab's demonstration kind ("forward", "reverse") with
// its button and waits for its status line to start with want; the test
// stops with what the line says otherwise.
func runDemo(b *browser, kind, want string) {
	b.t.Helper()
	b.do("run "+kind, chromedp.Click(chromedp.ID("run-"+kind)))
	if !b.until(`document.getElementById("`+kind+`-status").textContent.startsWith(`+strconv.Quote(want)+`)`, 15*time.Second) {
		b.t.Fatalf("%s demonstration: %q, want %q first", kind, b.text(chromedp.Text(chromedp.ID(kind+"-status"))), want)
	}
}

// textHas returns the text of the element with id, failing the test for
// each of want it lacks; what names the element in the messages.
func textHas(b *browser, id, what string, want ...string) string {
	b.t.Helper()
	text := b.text(chromedp.Text(chromedp.ID(id)))
	for _, w := range want {
		if !strings.Contains(text, w) {
			b.t.Errorf("%s lacks %q: %q", what, w, text)
		}
	}
	return text
}

// factsHolding checks that n of the facts the demonstration kind drew
// hold (are shown as expected).
func factsHolding(b *browser, kind string, n int) {
	b.t.Helper()
	got := b.text(chromedp.Evaluate[string](`String(document.querySelectorAll("#` + kind + `-facts li.holds").length)`))
	if got != strconv.Itoa(n) {
		b.t.Errorf("%s facts holding: %s, want %d: %q", kind, got, n, b.text(chromedp.Text(chromedp.ID(kind+"-facts"))))
	}
}
