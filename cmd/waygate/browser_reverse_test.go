package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowserReverse drives the Reverse page in headless Chromium against
// a real gateway with a reverse listener: the configured route is listed
// with its backend healthy; a second route added through the form serves
// requests for its host at once; an invalid backend URL is reported next
// to its field and leaves the config file as it was; a backend that stops
// is shown down by the live refresh, which updates the page in place.
func TestBrowserReverse(t *testing.T) {
	chromium(t)
	app := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", name, r.URL.Path)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	first, second := app("first"), app("second")
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", `reverse:
  listen: "127.0.0.1:0"
  routes:
    # The first app, checked every second.
    - name: first-app
      hosts: [first.corp.test]
      backends: [`+first.URL+`]
      health:
        path: /healthz
        interval: 1s
        fall: 1
`)
	t.Setenv("WAYGATE_ADMIN_PASSWORD", "reverse browser password")
	p := startProcess(t, s.config)
	listener := p.waitLog("reverse proxy listening")["addr"].(string)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	get := func(host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+listener+"/hello", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("first.corp.test"); code != 200 || body != "first /hello" {
		t.Fatalf("the first route before the UI: %d %q", code, body)
	}

	b := newBrowser(t, "http://"+p.admin)
	b.login("admin", "reverse browser password")
	b.do("reverse page", chromedp.Navigate(b.base+"/reverse"), chromedp.WaitVisible(chromedp.ID("routes")))
	if !b.until(`(() => { const h = document.querySelector("#route-0 .health");
		return h !== null && h.textContent === "healthy"; })()`, 15*time.Second) {
		t.Fatalf("the first route's backend is not shown healthy: %q", b.text(chromedp.Text(chromedp.ID("main"))))
	}
	page := b.text(chromedp.Text(chromedp.ID("routes")))
	for _, want := range []string{"first-app", "first.corp.test", first.URL, "/healthz every 1s"} {
		if !strings.Contains(page, want) {
			t.Errorf("the routes lack %q: %q", want, page)
		}
	}
	if !b.until(`document.querySelector("#updated time") !== null`, 10*time.Second) {
		t.Error("no \"updated at\" time")
	}

	// Add a second route through the form, submitted with the keyboard.
	b.do("opening the form", chromedp.Click(chromedp.ID("add-route")), chromedp.WaitVisible(chromedp.ID("route-form")))
	b.do("filling in the form",
		chromedp.SendKeys(chromedp.ID("r-name"), "second-app"),
		chromedp.SendKeys(chromedp.ID("r-hosts"), "second.corp.test"),
		chromedp.SendKeys(chromedp.ID("r-health-path"), "/healthz"),
		chromedp.SendKeys(chromedp.ID("r-health-interval"), "1s"),
		chromedp.SendKeys(chromedp.ID("b-0-url"), second.URL+kb.Enter),
	)
	if !b.until(`(() => { const s = document.getElementById("saved");
		return !s.hidden && s.textContent.includes("second-app") && document.getElementById("route-form").hidden &&
			document.querySelector("#route-1 h2") !== null && document.querySelector("#route-1 h2").textContent === "second-app"; })()`, 15*time.Second) {
		t.Fatalf("the new route was not saved: form error %q, page error %q", b.text(chromedp.TextContent(chromedp.ID("form-error"))),
			b.text(chromedp.TextContent(chromedp.ID("error"))))
	}
	if code, body := get("second.corp.test"); code != 200 || body != "second /hello" {
		t.Errorf("a request for the new route's host: %d %q", code, body)
	}
	if code, body := get("first.corp.test"); code != 200 || body != "first /hello" {
		t.Errorf("the first route after the save: %d %q", code, body)
	}
	saved, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saved), "# The first app, checked every second.") || !strings.Contains(string(saved), "name: second-app") {
		t.Errorf("the saved config file:\n%s", saved)
	}
	if !b.until(`(() => { const h = document.querySelector("#route-1 .health");
		return h !== null && h.textContent === "healthy"; })()`, 15*time.Second) {
		t.Errorf("the new route's backend is not shown healthy: %q", b.text(chromedp.Text(chromedp.ID("routes"))))
	}

	// Edit it: a priority and a header match, shown on its card and
	// written to the file.
	b.do("editing", chromedp.Click(chromedp.CSS(`#route-1 button[data-key="edit:second-app"]`)), chromedp.WaitVisible(chromedp.ID("route-form")))
	if name := b.text(chromedp.Value(chromedp.ID("r-name"))); name != "second-app" {
		t.Fatalf("the edit form shows route %q", name)
	}
	b.do("changing the route",
		chromedp.SendKeys(chromedp.ID("r-priority"), "5"),
		chromedp.SendKeys(chromedp.ID("r-headers"), "X-Env: test"),
		chromedp.Click(chromedp.ID("save-route")),
	)
	if !b.until(`document.getElementById("route-form").hidden && document.getElementById("route-1").textContent.includes("X-Env: test")`, 15*time.Second) {
		t.Fatalf("the edit was not saved: %q", b.text(chromedp.TextContent(chromedp.ID("main"))))
	}
	if card := b.text(chromedp.Text(chromedp.ID("route-1"))); !strings.Contains(card, "Priority\n5") {
		t.Errorf("the card after the edit: %q", card)
	}
	saved, err = os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saved), "priority: 5") || !strings.Contains(string(saved), "X-Env: test") {
		t.Errorf("the edited config file:\n%s", saved)
	}

	// An invalid backend URL: the error is next to its field, and the
	// config file is byte for byte what it was.
	b.do("opening the form again", chromedp.Click(chromedp.ID("add-route")), chromedp.WaitVisible(chromedp.ID("route-form")))
	b.do("an invalid route",
		chromedp.SendKeys(chromedp.ID("r-name"), "third-app"),
		chromedp.SendKeys(chromedp.ID("r-hosts"), "third.corp.test"),
		chromedp.SendKeys(chromedp.ID("b-0-url"), "ftp://third.corp.test"),
		chromedp.Click(chromedp.ID("save-route")),
	)
	if !b.until(`(() => { const e = document.getElementById("b-0-url-err");
		return !e.hidden && e.textContent.includes("is not an http:// or https:// URL") &&
			document.getElementById("b-0-url").getAttribute("aria-invalid") === "true"; })()`, 15*time.Second) {
		t.Fatalf("no error next to the backend URL: %q", b.text(chromedp.TextContent(chromedp.ID("route-form"))))
	}
	if msg := b.text(chromedp.TextContent(chromedp.ID("form-error"))); !strings.Contains(msg, "Nothing was saved") {
		t.Errorf("form error %q", msg)
	}
	if now, _ := os.ReadFile(s.config); string(now) != string(saved) {
		t.Errorf("the refused route changed the config file:\n%s", now)
	}
	b.shot("reverse-invalid")
	b.do("cancelling", chromedp.Click(chromedp.ID("cancel-route")))

	// Stop the first backend: the live refresh shows it down, updating the
	// card in place rather than rebuilding it.
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.getElementById("route-0").wgMark = true`)); err != nil {
		t.Fatal(err)
	}
	first.Close()
	if !b.until(`(() => { const h = document.querySelector("#route-0 .health");
		return h !== null && h.textContent === "down"; })()`, 20*time.Second) {
		t.Fatalf("the stopped backend is not shown down: %q", b.text(chromedp.Text(chromedp.ID("route-0"))))
	}
	if marked, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.getElementById("route-0").wgMark === true`)); err != nil || !marked {
		t.Errorf("the route's card was rebuilt by the refresh (%v)", err)
	}
	if badge := b.text(chromedp.Text(chromedp.CSS("#route-0 .route-state"))); badge != "0 of 1 healthy" {
		t.Errorf("route badge %q", badge)
	}
	if h := b.text(chromedp.Text(chromedp.CSS("#route-1 .health"))); h != "healthy" {
		t.Errorf("the second backend is %q", h)
	}
	b.shot("reverse")

	// Readable on a phone: nothing wider than the screen but the tables'
	// own scroll areas.
	b.do("phone", chromedp.EmulateViewport(390, 844))
	if !b.until(`document.documentElement.scrollWidth <= window.innerWidth`, 5*time.Second) {
		w, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		t.Errorf("the page is %d px wide on a 390 px screen", w)
	}
	b.shot("reverse-phone")

	// Delete the first route, confirmed in the page (never a dialog), on
	// the phone.
	b.do("deleting", chromedp.Click(chromedp.CSS(`#route-0 button[data-key="delete:first-app"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#route-0 .confirm`)),
		chromedp.Click(chromedp.CSS(`#route-0 button[data-key="confirm:first-app"]`)))
	if !b.until(`!document.getElementById("routes").textContent.includes("first-app") && document.getElementById("saved").textContent.includes("deleted")`, 15*time.Second) {
		t.Fatalf("the route was not deleted: %q", b.text(chromedp.TextContent(chromedp.ID("main"))))
	}
	if code, body := get("first.corp.test"); code == 200 || strings.HasPrefix(body, "first") {
		t.Errorf("the deleted route still answers: %d %q", code, body)
	}
	if cfg := mustLoad(t, s.config); len(cfg.Reverse.Routes) != 1 || cfg.Reverse.Routes[0].Name != "second-app" {
		t.Errorf("routes in the file after the delete: %+v", cfg.Reverse.Routes)
	}
}

// TestBrowserReverseWithoutListener: on a gateway whose config file names
// no reverse listener, the page says so, and a route cannot be added until
// the file names one (the file would fail `waygate check`); nothing is
// written.
func TestBrowserReverseWithoutListener(t *testing.T) {
	chromium(t)
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", "")
	t.Setenv("WAYGATE_ADMIN_PASSWORD", "reverse browser password")
	p := startProcess(t, s.config)
	before, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "http://"+p.admin)
	b.login("admin", "reverse browser password")
	b.do("reverse page", chromedp.Navigate(b.base+"/reverse"), chromedp.WaitVisible(chromedp.ID("notice")))
	if notice := b.text(chromedp.Text(chromedp.ID("notice"))); !strings.Contains(notice, "no reverse listener") ||
		!strings.Contains(notice, "restart with reverse.listen set") {
		t.Errorf("notice %q", notice)
	}
	if routes := b.text(chromedp.Text(chromedp.ID("routes"))); !strings.Contains(routes, "No routes yet.") {
		t.Errorf("routes %q", routes)
	}
	b.do("adding a route",
		chromedp.Click(chromedp.ID("add-route")),
		chromedp.WaitVisible(chromedp.ID("route-form")),
		chromedp.SendKeys(chromedp.ID("r-name"), "app"),
		chromedp.SendKeys(chromedp.ID("b-0-url"), "http://127.0.0.1:8081"),
		chromedp.Click(chromedp.ID("save-route")),
	)
	if !b.until(`document.getElementById("form-error").textContent.includes("routes: needs reverse.listen")`, 15*time.Second) {
		t.Errorf("no error for routes without a listener: %q", b.text(chromedp.TextContent(chromedp.ID("route-form"))))
	}
	if now, _ := os.ReadFile(s.config); string(now) != string(before) {
		t.Errorf("the config file changed:\n%s", now)
	}
	b.shot("reverse-off")
}
