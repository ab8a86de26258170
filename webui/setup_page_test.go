package webui

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// fakeSetup is a SetupInfo with fixed answers.
type fakeSetup struct {
	info Setup
	err  error
}

func (f fakeSetup) Setup(context.Context) (Setup, error) { return f.info, f.err }

// wildcardSetup is a proxy on ":3128" of a host with three addresses.
func wildcardSetup() Setup {
	return Setup{
		Listen: "[::]:3128",
		Host:   "::",
		Port:   3128,
		HostAddrs: []HostAddr{
			{Addr: netip.MustParseAddr("10.0.0.5"), Interface: "eth0"},
			{Addr: netip.MustParseAddr("fd00::5"), Interface: "eth0"},
			{Addr: netip.MustParseAddr("127.0.0.1"), Interface: "lo"},
		},
		PACPaths:      []string{"/proxy.pac", "/wpad.dat"},
		DirectDomains: []string{"corp.example", "*.intra.example", "bad domain"},
		CheckURL:      "http://check.waygate.invalid/",
		CheckImage:    "http://check.waygate.invalid/pixel.png",
	}
}

const setupCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: http://check.waygate.invalid; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func TestSetupPage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		info   func(*Setup)
		query  string
		status int
		want   []string
		absent []string
		csp    string // empty: setupCSP, which allows the check image
	}{
		{
			name: "wildcard: the first address that is not loopback", status: 200,
			want: []string{
				`<code id="proxy-address">10.0.0.5:3128</code>`, `<code id="proxy-host">10.0.0.5</code>`,
				`<code id="proxy-port">3128</code>`, `<code id="pac-url">http://10.0.0.5:3128/proxy.pac</code>`,
				`also at <code>http://10.0.0.5:3128/wpad.dat</code>`,
				`the first address of this host`, `every address of this host`,
				`<a href="/setup?host=10.0.0.5" aria-current="true"><code>10.0.0.5</code></a> <span class="muted">on eth0</span>`,
				`<a href="/setup?host=fd00%3A%3A5"><code>fd00::5</code></a>`,
				`<code>127.0.0.1</code></a> <span class="muted">on lo</span> <span class="muted">(loopback: this host only)</span>`,
				`data-check-image="http://check.waygate.invalid/pixel.png"`, `data-tls="false"`,
				`<button type="button" id="check-again" disabled>Check again</button>`,
				`href="http://check.waygate.invalid/" target="_blank" rel="noopener noreferrer"`,
				`export https_proxy=http://10.0.0.5:3128`, `export no_proxy=localhost,127.0.0.1,::1,corp.example,intra.example`,
				`netsh winhttp set proxy proxy-server="10.0.0.5:3128"`, `networksetup -setautoproxyurl "Wi-Fi" http://10.0.0.5:3128/proxy.pac`,
				`gsettings set org.gnome.system.proxy.https port 3128`, `option wpad-url "http://10.0.0.5:3128/wpad.dat\n";`,
				`forward port 80 of that address to 3128`, `curl -x http://10.0.0.5:3128 http://check.waygate.invalid/`,
				`id="howto-windows"`, `id="howto-macos"`, `id="howto-linux"`, `id="howto-ios"`, `id="howto-android"`,
				`id="howto-firefox"`, `id="howto-chrome"`, `id="howto-cli"`, `id="howto-wpad"`,
				`<script src="/static/setup.js"></script>`,
			},
			absent: []string{"bad domain", `id="s-host-error"`, "loopback address: only programs"},
		},
		{
			name: "an IPv6 address chosen", query: "?host=fd00::5", status: 200,
			want: []string{`<code id="proxy-address">[fd00::5]:3128</code>`, `<code id="proxy-host">fd00::5</code>`,
				`http://[fd00::5]:3128/proxy.pac`, `chosen on this page`, `<a href="/setup?host=fd00%3A%3A5" aria-current="true">`,
				`value="fd00::5"`},
		},
		{
			name: "a DNS name chosen, in any case", query: "?host=GW.Corp.Example.", status: 200,
			want: []string{`<code id="proxy-address">gw.corp.example:3128</code>`, `chosen on this page`},
		},
		{
			name: "a bad host is named next to the field", query: "?host=%3Cb%3Ebad+host", status: 200,
			want: []string{`<p id="s-host-error" class="setup-error" role="alert">host: &#34;&lt;b&gt;bad host&#34; is neither an IP address nor a DNS name.</p>`,
				`aria-invalid="true" aria-describedby="s-host-error"`, `value="&lt;b&gt;bad host"`,
				`<code id="proxy-address">10.0.0.5:3128</code>`},
			absent: []string{"<b>bad"},
		},
		{
			name: "a host with a port", query: "?host=gw.corp.example:3128", status: 200,
			want: []string{`host: give the host without a port (the proxy&#39;s port is 3128).`},
		},
		{
			name: "a zoned address", query: "?host=fe80::1%25eth0", status: 200,
			want: []string{`has an interface zone`},
		},
		{
			name: "listening on one address", info: func(s *Setup) { s.Host, s.Listen = "10.1.2.3", "10.1.2.3:3128" }, status: 200,
			want:   []string{`<code id="proxy-address">10.1.2.3:3128</code>`, `the proxy&#39;s listen address`, `The steps below use <code>10.1.2.3</code>`},
			absent: []string{`class="setup-candidates"`, "every address of this host"},
		},
		{
			name: "pac.proxy_address wins", info: func(s *Setup) { s.ProxyAddress = "proxy.corp.example:8080" }, status: 200,
			want: []string{`<code id="proxy-address">proxy.corp.example:8080</code>`, `http://proxy.corp.example:8080/proxy.pac`,
				`proxy.pac.proxy_address in the config`},
		},
		{
			name: "loopback only", info: func(s *Setup) { s.Host, s.Listen = "127.0.0.1", "127.0.0.1:3128" }, status: 200,
			want: []string{"loopback address: only programs on the gateway", `<code>":3128"</code>`},
		},
		{
			name: "port 80 serves WPAD by DNS as it is", info: func(s *Setup) { s.Port = 80 }, status: 200,
			want:   []string{"The proxy listens on port 80, so it answers that URL as it is."},
			absent: []string{"forward port 80"},
		},
		{
			name: "admin UI on TLS: no automatic check", info: func(s *Setup) { s.AdminTLS = true }, status: 200,
			want:   []string{`data-tls="true"`, `id="check-tls"`, "mixed content", `href="http://check.waygate.invalid/"`},
			absent: []string{`id="check-again"`},
		},
		{
			name: "proxy authentication", info: func(s *Setup) { s.Auth = true }, status: 200,
			want: []string{"asks for a user name and password", "http://user:password@10.0.0.5:3128", "Proxy server requires password"},
		},
		{
			name: "no PAC paths", info: func(s *Setup) { s.PACPaths = nil }, status: 200,
			absent: []string{`id="pac-url"`, "proxy.pac", `id="howto-wpad"`},
		},
		{
			name: "check URLs on two origins: no check", info: func(s *Setup) { s.CheckImage = "http://elsewhere.example/p.png" }, status: 200,
			want: []string{"This gateway offers no check page."}, csp: contentSecurityPolicy,
			absent: []string{"data-check-image", "elsewhere.example"},
		},
		{
			name: "no check", info: func(s *Setup) { s.CheckURL = "" }, status: 200,
			want: []string{"This gateway offers no check page."}, absent: []string{"data-check-image", "curl -x"},
			csp: contentSecurityPolicy,
		},
		{
			name: "no address known: ask for one", info: func(s *Setup) { s.HostAddrs = nil }, status: 200,
			want:   []string{"could not be listed", `<input id="s-host" name="host"`},
			absent: []string{`id="proxy-address"`, `id="howto-windows"`},
		},
		{
			name: "no port", info: func(s *Setup) { s.Port = 0 }, status: 500,
			want: []string{"The proxy&#39;s port is not known"}, absent: []string{`id="howto-windows"`, "setup.js"},
		},
		{
			name: "hostile values from the gateway are escaped", status: 200,
			info: func(s *Setup) {
				s.Listen = "<script>alert(1)</script>"
				s.HostAddrs[0].Interface = `<img src=x alt="eth0">`
			},
			want:   []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "on &lt;img src=x alt=&#34;eth0&#34;&gt;"},
			absent: []string{"<script>alert", "<img src=x"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := wildcardSetup()
			if tc.info != nil {
				tc.info(&info)
			}
			e := newEnv(t, func(o *Options) { o.Setup = fakeSetup{info: info} })
			cookie, csrf := e.login("alice")
			w := e.do(req{method: "GET", path: "/setup" + tc.query, cookie: cookie})
			body := w.Body.String()
			if w.Code != tc.status || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%d %q, want %d:\n%s", w.Code, w.Header().Get("Content-Type"), tc.status, body)
			}
			csp := tc.csp
			if csp == "" {
				csp = setupCSP
			}
			if got := w.Header().Get("Content-Security-Policy"); got != csp {
				t.Errorf("CSP\n%s\nwant\n%s", got, csp)
			}
			for _, want := range append(tc.want, `<meta name="csrf-token" content="`+csrf+`">`, `<h1>Setup</h1>`,
				`<a href="/setup" aria-current="page">Setup</a>`) {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			for _, bad := range tc.absent {
				if strings.Contains(body, bad) {
					t.Errorf("page has %s", bad)
				}
			}
			assertNoInlineScript(t, body)
			assertNoScriptBodies(t, body)
			if t.Failed() {
				t.Logf("page:\n%s", body)
			}
		})
	}
}

func TestSetupPageWithoutInfo(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  SetupInfo
		status int
		want   string
	}{
		{"not configured", nil, http.StatusServiceUnavailable, "does not say where its forward proxy listens"},
		{"failing", fakeSetup{err: errBoom}, http.StatusInternalServerError, "could not be read; see the gateway log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Setup = tc.setup })
			cookie, _ := e.login("audrey")
			w := e.do(req{method: "GET", path: "/setup", cookie: cookie})
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) || strings.Contains(w.Body.String(), "setup.js") {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if w.Header().Get("Content-Security-Policy") != contentSecurityPolicy {
				t.Errorf("CSP %q", w.Header().Get("Content-Security-Policy"))
			}
			if tc.setup != nil && !strings.Contains(e.log.String(), "boom") {
				t.Errorf("the failure is not logged: %s", e.log)
			}
		})
	}
}

// TestSetupPageAccess: any role may read the page, also with a read-only
// token; without credentials it sends to the login page.
func TestSetupPageAccess(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Setup = fakeSetup{info: wildcardSetup()} })
	if w := e.do(req{method: "GET", path: "/setup"}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Errorf("anonymous: %d %q", w.Code, w.Header().Get("Location"))
	}
	cookie, _ := e.login("audrey")
	if w := e.do(req{method: "GET", path: "/setup", cookie: cookie}); w.Code != http.StatusOK {
		t.Errorf("auditor: %d", w.Code)
	}
	tok := e.token("audrey", true, e.clock.Now().Add(3600e9))
	if w := e.do(req{method: "GET", path: "/setup", bearer: tok}); w.Code != http.StatusOK || strings.Contains(w.Body.String(), "csrf-token") {
		t.Errorf("read-only token: %d", w.Code)
	}
}

// TestSetupPageBehindHTTPS: with Options.Secure (HTTPS in front of the
// admin UI) the page does not try the plain-HTTP check image.
func TestSetupPageBehindHTTPS(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Setup, o.Secure = fakeSetup{info: wildcardSetup()}, true })
	cookie, _ := e.login("alice")
	w := e.do(req{method: "GET", path: "/setup", cookie: cookie})
	if body := w.Body.String(); w.Code != http.StatusOK || !strings.Contains(body, `data-tls="true"`) || !strings.Contains(body, `id="check-tls"`) ||
		strings.Contains(body, `id="check-again"`) {
		t.Errorf("%d %s", w.Code, body)
	}
}

func TestClientHost(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"10.0.0.5", "10.0.0.5", ""},
		{" 10.0.0.5 ", "10.0.0.5", ""},
		{"::ffff:10.0.0.5", "10.0.0.5", ""},
		{"[fd00::1]", "fd00::1", ""},
		{"FD00::1", "fd00::1", ""},
		{"Gateway.Corp.Example.", "gateway.corp.example", ""},
		{"gw-1", "gw-1", ""},
		{"fe80::1%eth0", "", "interface zone"},
		{"gw.example:3128", "", "without a port"},
		{"[fd00::1]:3128", "", "without a port"},
		{"", "", "neither"},
		{"-gw.example", "", "neither"},
		{"gw_1.example", "", "neither"},
		{"a..b", "", "neither"},
		{"gw.example/x", "", "neither"},
		{`"><script>`, "", "neither"},
		{strings.Repeat("a", 64) + ".example", "", "neither"},
		{strings.Repeat("abcdefgh.", 30) + "example", "", "neither"},
	} {
		got, err := clientHost(tc.in)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("clientHost(%q) = %q, %v; want %q, error with %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestCheckOriginAndCSP(t *testing.T) {
	for _, tc := range []struct{ page, image, want, err string }{
		{"http://check.waygate.invalid/", "http://check.waygate.invalid/pixel.png", "http://check.waygate.invalid", ""},
		{"http://Check.Waygate.Invalid/", "http://check.waygate.invalid/p.svg", "http://check.waygate.invalid", ""},
		{"http://check.waygate.invalid/", "http://other.invalid/pixel.png", "", "different origins"},
		{"ftp://check.waygate.invalid/", "ftp://check.waygate.invalid/p", "", "not an http(s) URL"},
		{"http://check.waygate.invalid;script-src *", "http://check.waygate.invalid;script-src *", "", "invalid character"},
		{"http://check.waygate.invalid;script-src", "http://check.waygate.invalid;script-src", "", "not an http(s) URL"},
		{"http://u:p@check.waygate.invalid/", "http://u:p@check.waygate.invalid/", "", "not an http(s) URL"},
		{"/relative", "/relative", "", "not an http(s) URL"},
	} {
		got, err := checkOrigin(tc.page, tc.image)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("checkOrigin(%q, %q) = %q, %v; want %q, error with %q", tc.page, tc.image, got, err, tc.want, tc.err)
		}
	}
	if got := cspWithImages(contentSecurityPolicy, "http://check.waygate.invalid"); got != setupCSP {
		t.Errorf("cspWithImages = %q", got)
	}
	if got := cspWithImages("default-src 'self'", "http://x.invalid"); got != "default-src 'self'; img-src 'self' http://x.invalid" {
		t.Errorf("cspWithImages without img-src = %q", got)
	}
}

func TestSetupScript(t *testing.T) {
	// Text goes in with W.el (textContent) and text nodes only.
	assertScript(t, newEnv(t, nil), "setup.js", `"data-check-image"`, `"Yes, through Waygate."`, `"No, not through Waygate."`,
		`"https:"`, `W.el("strong", title)`, "createTextNode", "getRandomValues")
}
