package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"waygate/cmd/waygate/internal/config"
	"waygate/proxy"
	"waygate/webui"
)

// apiSession is a client of the admin API logged in as one account.
type apiSession struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

// newAPISession logs in to the admin API at base ("http://host:port").
func newAPISession(t *testing.T, base, user, password string) *apiSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	a := &apiSession{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	login, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := a.c.Post(base+"/api/v1/session", "application/json", strings.NewReader(string(login)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sess struct{ CSRF string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&sess) != nil {
		t.Fatalf("login as %s: %d", user, resp.StatusCode)
	}
	a.csrf = sess.CSRF
	return a
}

// call sends a request with a JSON body (none when body is "") and
// decodes the JSON answer into out (when not nil); it returns the status.
func (a *apiSession) call(method, path, body string, out any) int {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-CSRF-Token", a.csrf)
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && json.Unmarshal(data, out) != nil {
		a.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

// loggedEvent is the part of an audit event (GET /api/v1/logs) the tests
// look at.
type loggedEvent struct {
	Kind, Client, User, Method, Host, Path, Action, Detail string
	Port, Status                                           int
}

// events searches the logs with the query q.
func (a *apiSession) events(q url.Values) []loggedEvent {
	a.t.Helper()
	var page struct{ Events []loggedEvent }
	if code := a.call(http.MethodGet, "/api/v1/logs?"+q.Encode(), "", &page); code != http.StatusOK {
		a.t.Fatalf("logs %v: %d", q, code)
	}
	return page.Events
}

// phoneFits shows the page at a phone's size, checks that it does not
// scroll sideways (wide tables scroll inside their own box), and saves a
// screenshot named name.
func phoneFits(b *browser, name string) {
	b.t.Helper()
	b.do("phone size", chromedp.EmulateViewport(390, 844))
	fits := b.text(chromedp.Evaluate[string](`String(document.documentElement.scrollWidth <= window.innerWidth)`))
	if fits != "true" {
		b.t.Errorf("%s: the page scrolls sideways on a phone: %s", name,
			b.text(chromedp.Evaluate[string](`document.documentElement.scrollWidth + " > " + window.innerWidth`)))
	}
	b.shot(name)
}

// TestBrowserSetup: in a Chromium that uses the gateway's forward proxy,
// the setup page's check says "yes, through Waygate" (the admin UI on
// loopback is reached directly, not through the proxy), the check is in
// the audit trail as an allowed request, and the page shows the proxy's
// address and a PAC URL that works; in a Chromium without the proxy the
// check says "no".
func TestBrowserSetup(t *testing.T) {
	const password = "setup browser test password"
	_, p, api := startUIGateway(t, password)
	base := api.base

	t.Run("through the proxy", func(t *testing.T) {
		b := newBrowser(t, base, chromedp.ProxyServer("http://"+p.proxy))
		b.login("admin", password)
		checkSays(b, "yes", "Yes, through Waygate")
		if got := b.text(chromedp.Text(chromedp.ID("proxy-address"))); got != p.proxy {
			t.Errorf("proxy address shown %q, want %q", got, p.proxy)
		}
		pac := b.text(chromedp.Text(chromedp.ID("pac-url")))
		if pac != "http://"+p.proxy+"/proxy.pac" {
			t.Errorf("PAC URL shown %q", pac)
		}
		// Every PAC path the page is told of is served by the proxy.
		for _, path := range pacPaths {
			resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}).Get("http://" + p.proxy + path)
			if err != nil {
				t.Fatal(err)
			}
			script, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(script), `return "PROXY `+p.proxy+`"`) {
				t.Errorf("the PAC file at %s answers %d:\n%s", path, resp.StatusCode, script)
			}
		}

		// "Check again" works from the keyboard.
		b.do("check again", chromedp.Focus(chromedp.ID("check-again")), chromedp.KeyEvent("\r"))
		if !b.until(`document.getElementById("check-result").classList.contains("check-yes") && !document.getElementById("check-again").disabled`, 20*time.Second) {
			t.Errorf("checking again: %q", b.text(chromedp.Text(chromedp.ID("check-result"))))
		}
		b.do("open a part", chromedp.Click(chromedp.CSS("#howto-windows > summary")), chromedp.WaitVisible(chromedp.CSS("#howto-windows ol")))
		b.shot("setup")
		phoneFits(b, "setup-phone")

		// The browser's checks are in the audit trail, allowed, from
		// loopback; the admin UI was not reached through the proxy (the
		// proxy would have refused the gateway's own address, and recorded
		// that).
		var checks []loggedEvent
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			checks = api.events(url.Values{"host": {proxy.CheckHost}})
			if len(checks) >= 2 || time.Now().After(deadline) {
				break
			}
		}
		if len(checks) < 2 {
			t.Fatalf("the checks are not in the audit trail: %+v", checks)
		}
		for _, ev := range checks {
			if ev.Kind != "http" || ev.Action != "allow" || ev.Status != 200 || ev.Client != "127.0.0.1" || ev.Path != proxy.CheckPixelPath {
				t.Errorf("check event %+v", ev)
			}
		}
		_, adminPort, _ := net.SplitHostPort(p.admin)
		for _, ev := range api.events(url.Values{"host": {"127.0.0.1"}}) {
			if strconv.Itoa(ev.Port) == adminPort {
				t.Errorf("the browser reached the admin UI through the proxy: %+v", ev)
			}
		}
	})

	t.Run("without a proxy", func(t *testing.T) {
		b := newBrowser(t, base)
		b.login("admin", password)
		checkSays(b, "no", "No, not through Waygate")
	})
}

// startUIGateway starts a gateway (config: writeConfig, loopback clients)
// for a browser test of the admin UI, with password as its first admin's,
// and logs in to its API as that admin. It skips the test without
// Chromium.
func startUIGateway(t *testing.T, password string) (*testSite, *process, *apiSession) {
	t.Helper()
	chromium(t)
	s := newSite(t)
	s.writeConfig(t, "127.0.0.0/8", "")
	t.Setenv("WAYGATE_ADMIN_PASSWORD", password)
	p := startProcess(t, s.config)
	return s, p, newAPISession(t, "http://"+p.admin, "admin", password)
}

// checkSays opens the setup page and waits for its check to end in state
// ("yes" or "no"), with a text that holds want.
func checkSays(b *browser, state, want string) {
	b.t.Helper()
	b.do("setup page", chromedp.Navigate(b.base+"/setup"), chromedp.WaitVisible(chromedp.ID("check-result")))
	if !b.until(`document.getElementById("check-result").classList.contains("check-`+state+`")`, 20*time.Second) {
		b.t.Fatalf("the check did not say %s: %q", state, b.text(chromedp.Text(chromedp.ID("check-result"))))
	}
	if got := b.text(chromedp.Text(chromedp.ID("check-result"))); !strings.Contains(got, want) {
		b.t.Errorf("check result %q, want %q in it", got, want)
	}
}

// TestBrowserAdminLog: a policy saved through the API is in the admin log
// with its author, the saved revision's diff shows the new rule as added
// lines, and a rollback through the page (after its in-page confirmation)
// restores the file on disk and lists the new revision; an auditor sees
// the log and the diffs without the rollback button.
func TestBrowserAdminLog(t *testing.T) {
	const password = "admin log browser test password"
	s, _, api := startUIGateway(t, password)
	base := api.base

	before, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"categories":[{"name":"admin-log-test","domains":["blocked.example"]}],
		"rules":[{"name":"block-admin-log-test","categories":["admin-log-test"],"action":"block"}]}`
	if code := api.call(http.MethodPut, "/api/v1/policy", doc, nil); code != http.StatusOK {
		t.Fatalf("saving the policy: %d", code)
	}
	const auditorPW = "auditor of the admin log"
	if code := api.call(http.MethodPost, "/api/v1/users", `{"name":"audra","role":"auditor","password":"`+auditorPW+`"}`, nil); code != http.StatusCreated {
		t.Fatalf("creating the auditor: %d", code)
	}

	b := newBrowser(t, base)
	b.login("admin", password)
	b.do("admin log", chromedp.Navigate(base+"/admin-log"), chromedp.WaitVisible(chromedp.ID("revisions")))
	// The audit trail is written in the background: reload until the save
	// is listed.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b.until(`document.getElementById("event-rows").textContent.includes("policy_save")`, 2*time.Second) || time.Now().After(deadline) {
			break
		}
		b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("revisions")))
	}
	saveRow := b.text(chromedp.Evaluate[string](`(function () {
		var rows = document.querySelectorAll("#event-rows tr");
		for (var i = 0; i < rows.length; i++) {
			if (rows[i].textContent.includes("policy_save")) { return rows[i].textContent; }
		}
		return "";
	})()`))
	if !strings.Contains(saveRow, "Saved the policy") || !strings.Contains(saveRow, "admin") || !strings.Contains(saveRow, "ok") {
		t.Errorf("the policy save's row: %q", saveRow)
	}
	if !b.until(`document.querySelector('#revision-rows tr[data-id="2"]') !== null`, 10*time.Second) {
		t.Fatalf("revision 2 is not listed: %q", b.text(chromedp.Text(chromedp.ID("revision-rows"))))
	}
	if row := b.text(chromedp.Text(chromedp.CSS(`#revision-rows tr[data-id="2"]`))); !strings.Contains(row, "admin") ||
		!strings.Contains(row, "policy saved from the web UI") {
		t.Errorf("revision 2's row: %q", row)
	}

	// The saved revision's diff shows the new rule as added lines.
	b.do("revision 2", chromedp.Click(chromedp.CSS(`#revision-rows tr[data-id="2"] button`)))
	if !b.until(`document.getElementById("diff").textContent.includes("block-admin-log-test")`, 10*time.Second) {
		t.Fatalf("the diff of revision 2: %q", b.text(chromedp.Evaluate[string](`document.getElementById("diff").textContent`)))
	}
	added := b.text(chromedp.Evaluate[string](`Array.prototype.map.call(document.querySelectorAll("#diff .diff-add"), function (s) { return s.textContent; }).join("\n")`))
	if !strings.Contains(added, "+ ") || !strings.Contains(added, "name: block-admin-log-test") {
		t.Errorf("added lines of revision 2:\n%s", added)
	}

	// Roll back to the file as it was, confirming in the page.
	b.do("revision 1", chromedp.Click(chromedp.CSS(`#revision-rows tr[data-id="1"] button`)),
		chromedp.WaitVisible(chromedp.ID("rollback-start")))
	if !b.until(`document.getElementById("diff-head").textContent.includes("Revision 1")`, 10*time.Second) {
		t.Fatalf("revision 1 not shown: %q", b.text(chromedp.Text(chromedp.ID("diff-head"))))
	}
	b.do("start the rollback", chromedp.Click(chromedp.ID("rollback-start")), chromedp.WaitVisible(chromedp.ID("rollback-yes")))
	if got, _ := os.ReadFile(s.config); string(got) == string(before) {
		t.Fatal("the file was restored before the rollback was confirmed")
	}
	// Cancel puts the first button back; then confirm for real.
	b.do("cancel", chromedp.Click(chromedp.ID("rollback-cancel")), chromedp.WaitVisible(chromedp.ID("rollback-start")))
	b.do("confirm", chromedp.Click(chromedp.ID("rollback-start")), chromedp.WaitVisible(chromedp.ID("rollback-yes")),
		chromedp.Click(chromedp.ID("rollback-yes")))
	if !b.until(`document.getElementById("notice").textContent.includes("Rolled back to revision 1")`, 15*time.Second) {
		t.Fatalf("no rollback notice; error %q", b.text(chromedp.Evaluate[string](`document.getElementById("error").textContent`)))
	}
	if got, _ := os.ReadFile(s.config); string(got) != string(before) {
		t.Errorf("the rollback did not restore the file:\n%s", got)
	}
	if !b.until(`(function () {
		var r = document.querySelector('#revision-rows tr[data-id="3"]');
		return r !== null && r.textContent.includes("rollback to revision 1") && r.classList.contains("alog-selected") &&
			document.querySelectorAll("#diff .diff-del").length > 0;
	})()`, 10*time.Second) {
		t.Errorf("the new revision is not listed and shown: %q", b.text(chromedp.Text(chromedp.ID("revision-rows"))))
	}
	// The rollback's admin event arrives live.
	if !b.until(`document.getElementById("event-rows").textContent.includes("config_rollback")`, 10*time.Second) {
		t.Errorf("the rollback is not in the admin events: %q", b.text(chromedp.Text(chromedp.ID("event-rows"))))
	}
	b.shot("admin-log")
	phoneFits(b, "admin-log-phone")
	b.do("back to a laptop", chromedp.EmulateViewport(1280, 900))

	// An auditor sees the log and the diffs, and no rollback.
	b.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("username")))
	b.login("audra", auditorPW)
	b.do("admin log as auditor", chromedp.Navigate(base+"/admin-log"), chromedp.WaitVisible(chromedp.ID("revisions")))
	if !b.until(`document.querySelector('#revision-rows tr[data-id="2"] button') !== null`, 10*time.Second) {
		t.Fatal("the auditor does not see the revisions")
	}
	b.do("revision 2 as auditor", chromedp.Click(chromedp.CSS(`#revision-rows tr[data-id="2"] button`)))
	if !b.until(`document.getElementById("diff").textContent.includes("block-admin-log-test")`, 10*time.Second) {
		t.Fatal("the auditor does not see the diff")
	}
	if got := b.text(chromedp.Evaluate[string](`String(document.getElementById("rollback-start") === null && document.getElementById("rollback").hidden)`)); got != "true" {
		t.Error("the auditor is offered the rollback")
	}
}

// addrListener is a net.Listener that only has an address, for the setup
// information of a proxy "listening" on it.
type addrListener struct {
	net.Listener
	addr *net.TCPAddr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// TestSetupInfo: the setup page learns the proxy's bound address; on a
// wildcard address, the host's addresses (no link-local ones, IPv4 first,
// loopback last, IPv4 only for 0.0.0.0); and the PAC, auth and check
// settings.
func TestSetupInfo(t *testing.T) {
	ifs := []ifaceAddrs{
		{name: "lo", addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}},
		{name: "eth0", addrs: []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fd00::5"), netip.MustParseAddr("10.0.0.5")}},
		{name: "docker0", addrs: []netip.Addr{netip.MustParseAddr("172.17.0.1"), netip.MustParseAddr("10.0.0.5")}},
	}
	cfg := config.Default()
	cfg.Proxy.PAC.ProxyAddress = "gw.corp.example:3128"
	cfg.Proxy.PAC.DirectDomains = []string{"corp.example"}
	cfg.Proxy.Auth.Users = []config.User{{Name: "u", PasswordHash: "x"}}
	for _, tc := range []struct {
		name      string
		bound     string
		wantHost  string
		wantAddrs []string
	}{
		{"one address", "127.0.0.1:3128", "127.0.0.1", nil},
		{"IPv6 address", "[fd00::5]:3128", "fd00::5", nil},
		{"every address", "[::]:3128", "", []string{"10.0.0.5 eth0", "172.17.0.1 docker0", "fd00::5 eth0", "127.0.0.1 lo", "::1 lo"}},
		{"every IPv4 address", "0.0.0.0:3128", "", []string{"10.0.0.5 eth0", "172.17.0.1 docker0", "127.0.0.1 lo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap := netip.MustParseAddrPort(tc.bound)
			g := &gateway{cfg: cfg, log: slog.New(slog.DiscardHandler),
				proxyLn: addrListener{addr: net.TCPAddrFromAddrPort(ap)}}
			info, err := setupInfo{g: g, interfaces: func() ([]ifaceAddrs, error) { return ifs, nil }}.Setup(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var addrs []string
			for _, a := range info.HostAddrs {
				addrs = append(addrs, a.Addr.String()+" "+a.Interface)
			}
			want := webui.Setup{Listen: tc.bound, Host: tc.wantHost, Port: 3128, ProxyAddress: "gw.corp.example:3128",
				PACPaths: []string{"/proxy.pac", "/wpad.dat"}, DirectDomains: []string{"corp.example"}, Auth: true,
				CheckURL: "http://check.waygate.invalid/", CheckImage: "http://check.waygate.invalid/pixel.png"}
			info.HostAddrs = nil
			if !reflect.DeepEqual(info, want) || !reflect.DeepEqual(addrs, tc.wantAddrs) {
				t.Errorf("got %+v %q\nwant %+v %q", info, addrs, want, tc.wantAddrs)
			}
		})
	}
}
