package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// policyJS evaluates the JavaScript expression js in the page and returns
// its value as a string, failing the test on error.
func policyJS(b *browser, js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// TestBrowserPolicy drives the policy page in headless Chromium against a
// real gateway: a block rule for the test origin added through the page's
// form (and moved to the top with the keyboard) is saved, blocks the next
// proxied request with the block page, shows in the list and in the config
// file, and "test a URL" explains it; a bad port and a bad time are shown
// next to their fields and change nothing; an auditor sees the page
// read-only.
func TestBrowserPolicy(t *testing.T) {
	chromium(t)
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", `categories:
  - name: games
    domains: [games.test]
rules:
  - name: no-games
    categories: [games]
    action: block
`)
	const adminPW = "policy browser test password"
	t.Setenv("WAYGATE_ADMIN_PASSWORD", adminPW)
	p := startProcess(t, s.config)
	b := newBrowser(t, "http://"+p.admin)
	b.login("admin", adminPW)

	host := strings.TrimPrefix(s.origin.URL, "http://")
	host = host[:strings.LastIndex(host, ":")]
	if code, body := proxyGet(t, p.proxy, s.origin.URL+"/before-the-rule"); code != http.StatusOK || body != "origin ok" {
		t.Fatalf("before the rule: %d %q", code, body)
	}

	const (
		first     = `#rules > li:first-child `
		last      = `#rules > li:last-child `
		nameField = `[data-field="name"]`
	)
	b.do("policy page", chromedp.Navigate(b.base+"/policy"), chromedp.WaitVisible(chromedp.CSS(first+".rule-name")))
	if got := b.text(chromedp.Text(chromedp.ID("rules"))); !strings.Contains(got, "no-games") {
		t.Fatalf("the policy's rule is not listed: %q", got)
	}
	if got := policyJS(b, `document.getElementById("default-action").value`); got != "allow" {
		t.Errorf("default action shown as %q, want allow", got)
	}

	// Add a rule through the form: name, domains, action.
	b.do("add rule", chromedp.Click(chromedp.ID("add-rule")), chromedp.WaitVisible(chromedp.CSS(last+nameField)))
	if !b.until(`document.activeElement && document.activeElement.getAttribute("data-field") === "name"`, 5*time.Second) {
		t.Error("the new rule's name field does not have the focus")
	}
	if got := policyJS(b, `Array.from(document.querySelectorAll('#rules > li:last-child [data-field="categories"] input')).map(c => c.value).join(",")`); got != "games" {
		t.Errorf("category picker offers %q, want games", got)
	}
	b.do("fill in the rule",
		chromedp.SendKeys(chromedp.CSS(last+nameField), "block-origin"),
		chromedp.SendKeys(chromedp.CSS(last+`[data-field="domains"]`), host),
		chromedp.SetValue(chromedp.CSS(last+`[data-field="action"]`), "block"),
	)
	if got := b.text(chromedp.Text(chromedp.CSS(last + ".rule-head"))); !strings.Contains(got, "block-origin") || !strings.Contains(got, "domains: "+host) {
		t.Errorf("the rule's summary does not follow its fields: %q", got)
	}
	// Move it to the top with the keyboard: Enter on its Up button. The
	// focus stays on the rule's buttons.
	b.do("move up", chromedp.Focus(chromedp.CSS(last+`.rule-buttons button[aria-label="Move up"]`)), chromedp.KeyEvent("\r"))
	if got := b.text(chromedp.Text(chromedp.CSS(first + ".rule-name"))); got != "block-origin" {
		t.Fatalf("after Up, the first rule is %q", got)
	}
	if !b.until(`document.activeElement && document.activeElement.closest("#rules > li:first-child") !== null && document.activeElement.tagName === "BUTTON"`, 5*time.Second) {
		t.Error("the focus left the moved rule")
	}
	if !b.until(`!document.getElementById("dirty").hidden`, 5*time.Second) {
		t.Error("unsaved changes are not flagged")
	}
	b.do("save", chromedp.Click(chromedp.ID("save")))
	if !b.until(`document.getElementById("status").textContent.includes("Saved")`, 15*time.Second) {
		t.Fatalf("not saved: status %q, error %q, problems %q", b.text(chromedp.Text(chromedp.ID("status"))),
			policyJS(b, `document.getElementById("error").textContent`), policyJS(b, `document.getElementById("problems").textContent`))
	}

	// The next proxied request to that host gets the block page.
	var code int
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, body = proxyGet(t, p.proxy, s.origin.URL+"/after-the-rule")
		if code == http.StatusForbidden || time.Now().After(deadline) {
			break
		}
	}
	if code != http.StatusForbidden || !strings.Contains(body, "Blocked by policy") || !strings.Contains(body, "block-origin") {
		t.Fatalf("after the rule: %d %q", code, body)
	}
	// The list, reloaded from the gateway, shows it first; so does the file.
	if !b.until(`document.querySelector("#rules > li:first-child .rule-name").textContent === "block-origin"`, 5*time.Second) {
		t.Errorf("saved rule not first in the list: %q", b.text(chromedp.Text(chromedp.ID("rules"))))
	}
	if got := policyJS(b, `String(document.querySelectorAll("#rules > li").length)`); got != "2" {
		t.Errorf("%s rules listed after the save, want 2", got)
	}
	saved, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if i, j := strings.Index(string(saved), "block-origin"), strings.Index(string(saved), "no-games"); i < 0 || j < 0 || i > j {
		t.Errorf("config file does not have block-origin before no-games:\n%s", saved)
	}

	// Test a URL as a user, from an address, at a time.
	b.do("test a URL",
		chromedp.SendKeys(chromedp.ID("x-url"), s.origin.URL+"/tested"),
		chromedp.SendKeys(chromedp.ID("x-user"), "alice"),
		chromedp.SendKeys(chromedp.ID("x-client"), "127.0.0.1"),
		chromedp.SetValue(chromedp.ID("x-at"), "2026-03-02T10:00"),
		chromedp.Click(chromedp.ID("x-submit")),
	)
	if !b.until(`(document.getElementById("x-action") || {}).textContent === "block"`, 10*time.Second) {
		t.Fatalf("explain did not answer block: %q %q", policyJS(b, `document.getElementById("x-result").textContent`),
			policyJS(b, `document.getElementById("x-error").textContent`))
	}
	result := b.text(chromedp.Text(chromedp.ID("x-result")))
	for _, want := range []string{"Rule “block-origin” matched", "alice", "127.0.0.1", "2026-03-02"} {
		if !strings.Contains(result, want) {
			t.Errorf("explanation lacks %q: %q", want, result)
		}
	}
	if got := policyJS(b, `location.search`); !strings.Contains(got, "user=alice") {
		t.Errorf("the page URL does not carry the test: %q", got)
	}
	b.shot("policy")

	// Invalid entries are shown next to their field and change nothing.
	before, _ := os.ReadFile(s.config)
	ports := first + `[data-field="ports"]`
	b.do("open the rule", chromedp.Click(chromedp.CSS(first+`.rule-buttons button[aria-controls]`)), chromedp.WaitVisible(chromedp.CSS(ports)))
	b.do("bad port", chromedp.SendKeys(chromedp.CSS(ports), "70000"), chromedp.Click(chromedp.ID("save")))
	portError := `document.getElementById(document.querySelector('` + ports + `').id + "-error")`
	if !b.until(`!`+portError+`.hidden && `+portError+`.textContent.includes("not a port")`, 10*time.Second) {
		t.Fatalf("no error next to the ports field: problems %q", policyJS(b, `document.getElementById("problems").textContent`))
	}
	if got := policyJS(b, `document.querySelector('`+ports+`').getAttribute("aria-invalid") + " " + document.getElementById("problems").textContent`); !strings.HasPrefix(got, "true ") || !strings.Contains(got, "Rule 1") {
		t.Errorf("ports not marked invalid or not in the problem list: %q", got)
	}
	from := first + `[data-field="from"]`
	// Fix the port: empty the field as a user would, with an input event.
	policyJS(b, `(function () { var e = document.querySelector('`+ports+`'); e.value = "";
		e.dispatchEvent(new Event("input", { bubbles: true })); return ""; })()`)
	b.do("bad time",
		chromedp.Click(chromedp.CSS(first+`fieldset.schedule > button`)),
		chromedp.WaitVisible(chromedp.CSS(from)),
		chromedp.SendKeys(chromedp.CSS(from), "25:00"),
		chromedp.SendKeys(chromedp.CSS(first+`[data-field="to"]`), "26:00"),
		chromedp.Click(chromedp.ID("save")),
	)
	fromError := `document.getElementById(document.querySelector('` + from + `').id + "-error")`
	if !b.until(`!`+fromError+`.hidden && `+fromError+`.textContent.includes("not a time of day")`, 10*time.Second) {
		t.Fatalf("no error next to the from field: problems %q", policyJS(b, `document.getElementById("problems").textContent`))
	}
	if got := policyJS(b, portError+`.hidden ? "cleared" : "still shown"`); got != "cleared" {
		t.Errorf("the fixed port's error is %s", got)
	}
	b.shot("policy-invalid")
	if after, _ := os.ReadFile(s.config); string(after) != string(before) {
		t.Errorf("an invalid policy changed the config file:\n%s", after)
	}
	if code, _ := proxyGet(t, p.proxy, s.origin.URL+"/still-blocked"); code != http.StatusForbidden {
		t.Errorf("after the refused saves: %d, want the saved rule's 403", code)
	}

	// A save over a file changed since the page loaded it is refused
	// (409) with a way to reload, and the hand edit is kept.
	edited := append(before, "# changed by hand\n"...)
	if err := writeFileAtomic(s.config, edited); err != nil {
		t.Fatal(err)
	}
	oldVersion := b.text(chromedp.Text(chromedp.ID("version")))
	b.do("fix the window and save", chromedp.Click(chromedp.CSS(first+`.window button`)), chromedp.Click(chromedp.ID("save")))
	if !b.until(`document.getElementById("error").textContent.includes("someone changed the policy")`, 10*time.Second) {
		t.Fatalf("no conflict shown: error %q, problems %q, status %q", policyJS(b, `document.getElementById("error").textContent`),
			policyJS(b, `document.getElementById("problems").textContent`), policyJS(b, `document.getElementById("status").textContent`))
	}
	b.do("reload after the conflict", chromedp.Click(chromedp.CSS(`#error button`)))
	if !b.until(`document.getElementById("error").hidden && document.getElementById("dirty").hidden && !document.querySelector("#rules .window")`, 10*time.Second) {
		t.Errorf("reloading after the conflict: error %q", policyJS(b, `document.getElementById("error").textContent`))
	}
	if v := b.text(chromedp.Text(chromedp.ID("version"))); v == oldVersion {
		t.Errorf("the reloaded policy has the old version %q", v)
	}
	if after, _ := os.ReadFile(s.config); string(after) != string(edited) {
		t.Errorf("the conflicting save changed the config file:\n%s", after)
	}

	// An auditor sees the page read-only, and may still test URLs.
	const auditorPW = "auditor browser test password"
	createAccount(t, "http://"+p.admin, "admin", adminPW, map[string]string{"name": "audrey", "role": "auditor", "password": auditorPW})
	b.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("username")))
	b.login("audrey", auditorPW)
	b.do("policy page as auditor", chromedp.Navigate(b.base+"/policy?url="+s.origin.URL+"/as-auditor"),
		chromedp.WaitVisible(chromedp.CSS(first+".rule-name")))
	got := policyJS(b, `[document.getElementById("save") === null, document.getElementById("add-rule") === null,
		document.querySelectorAll('#rules button[aria-label="Move up"], #rules button.danger').length === 0,
		Array.from(document.querySelectorAll("#rules input, #rules select, #rules textarea")).every(c => c.disabled),
		document.getElementById("default-action").disabled,
		!document.getElementById("read-only").hidden].join(",")`)
	if got != "true,true,true,true,true,true" {
		t.Errorf("auditor page not read-only (save absent, add absent, no move/delete, fields disabled, default disabled, notice): %s", got)
	}
	// The query string's URL is tested on load.
	if !b.until(`(document.getElementById("x-action") || {}).textContent === "block"`, 10*time.Second) {
		t.Errorf("auditor's test of a URL: %q %q", policyJS(b, `document.getElementById("x-result").textContent`),
			policyJS(b, `document.getElementById("x-error").textContent`))
	}
	b.do("phone size", chromedp.EmulateViewport(390, 844))
	b.do("open a rule", chromedp.Click(chromedp.CSS(first+`.rule-buttons button[aria-controls]`)), chromedp.WaitVisible(chromedp.CSS(first+nameField)))
	if got := policyJS(b, `String(document.documentElement.scrollWidth <= window.innerWidth)`); got != "true" {
		t.Errorf("the page scrolls sideways on a phone: %s", policyJS(b, `document.documentElement.scrollWidth + " > " + window.innerWidth`))
	}
	b.shot("policy-phone")
}

// createAccount logs in to the admin API as user and creates an account.
func createAccount(t *testing.T, base, user, password string, account map[string]string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	login, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := c.Post(base+"/api/v1/session", "application/json", strings.NewReader(string(login)))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: %v %v", user, resp, err)
	}
	var sess struct{ CSRF string }
	json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	body, _ := json.Marshal(account)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/users", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", sess.CSRF)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating %s: %d %s", account["name"], resp.StatusCode, msg)
	}
}
