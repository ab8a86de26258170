package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const labTestPassword = "lab test password"

// writeLabConfig writes a config for the lab tests: loopback clients, no
// allow_destinations (so only the lab's exemption lets the proxy reach
// loopback), the proxy on proxyListen, and extra appended.
func (s *testSite) writeLabConfig(t *testing.T, proxyListen, extra string) {
	t.Helper()
	cfg := fmt.Sprintf(`schema_version: 1
data_dir: %s
log:
  format: json
proxy:
  listen: %q
  allow_clients: [127.0.0.0/8, "::1/128"]
  connect_ports: [443]
  timeouts:
    shutdown: 5s
admin:
  listen: "127.0.0.1:0"
dns:
  servers: ["%s"]
  hosts_file: none
%s`, filepath.Join(s.dir, "data"), proxyListen, s.dns.Addr, extra)
	tmp := s.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.config); err != nil {
		t.Fatal(err)
	}
}

// labAPI is a logged-in admin session on a gateway process.
type labAPI struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newLabAPI(t *testing.T, p *process) *labAPI {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	a := &labAPI{t: t, base: "http://" + p.admin, c: &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	body := `{"username":"admin","password":"` + labTestPassword + `"}`
	resp, err := a.c.Post(a.base+"/api/v1/session", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ CSRF string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.CSRF == "" {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	a.csrf = out.CSRF
	return a
}

// run runs the demonstration kind ("forward", "reverse") and decodes its
// result into v.
func (a *labAPI) run(kind string, v any) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.base+"/api/v1/lab/"+kind, nil)
	req.Header.Set("X-CSRF-Token", a.csrf)
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		a.t.Fatalf("POST /api/v1/lab/%s: %d %s", kind, resp.StatusCode, body)
	}
	out := map[string]json.RawMessage{}
	if err := json.Unmarshal(body, &out); err != nil {
		a.t.Fatal(err)
	}
	if err := json.Unmarshal(out[kind], v); err != nil {
		a.t.Fatalf("%s: %v in %s", kind, err, body)
	}
}

func (a *labAPI) forward() labForward {
	a.t.Helper()
	var r labForward
	a.run("forward", &r)
	return r
}

func (a *labAPI) reverse() labReverse {
	a.t.Helper()
	var r labReverse
	a.run("reverse", &r)
	return r
}

// startLabGateway starts a gateway process for the lab tests.
func startLabGateway(t *testing.T, proxyListen, extra string) (*testSite, *process, *labAPI) {
	t.Helper()
	s := newSite(t)
	s.writeLabConfig(t, proxyListen, extra)
	t.Setenv("WAYGATE_ADMIN_PASSWORD", labTestPassword)
	p := startProcess(t, s.config)
	return s, p, newLabAPI(t, p)
}

func headerValues(hs []labHeader, name string) []string {
	var out []string
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

func hostOf(t *testing.T, hostport string) string {
	t.Helper()
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return h
}

func checkFacts(t *testing.T, facts []labFact, keys ...string) {
	t.Helper()
	for _, k := range keys {
		found := false
		for _, f := range facts {
			if f.Key == k {
				found = true
				if !f.Holds {
					t.Errorf("fact %s does not hold: %s", k, f.Text)
				}
			}
		}
		if !found {
			t.Errorf("no fact %s in %+v", k, facts)
		}
	}
}

// TestLabDemonstrations runs both demonstrations through a real gateway,
// with the forward proxy on a loopback and on a wildcard address: the
// origin sees the proxy's address, Via and no client address; the client
// of the reverse demonstration sees the lab's self-signed certificate and
// the app sees X-Forwarded-For and -Proto; the reverse request is audited
// as kind reverse.
func TestLabDemonstrations(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", ":0"} {
		t.Run(listen, func(t *testing.T) {
			s, p, api := startLabGateway(t, listen, "")

			fw := api.forward()
			if !fw.OK || fw.Origin == nil || fw.Error != "" || fw.Refused != nil {
				t.Fatalf("forward: %+v", fw)
			}
			client := hostOf(t, fw.Client.Address)
			if client != labClientAddr.String() {
				t.Errorf("the lab client is at %s, want %s", fw.Client.Address, labClientAddr)
			}
			_, proxyPort, _ := net.SplitHostPort(p.proxy)
			if fw.Client.Proxy != "127.0.0.1:"+proxyPort {
				t.Errorf("the client connected to %s, want the proxy on loopback port %s", fw.Client.Proxy, proxyPort)
			}
			if !strings.HasPrefix(fw.Client.RequestLine, "GET http://127.0.0.1:") || !strings.HasSuffix(fw.Client.RequestLine, labForwardPath+" HTTP/1.1") {
				t.Errorf("request line %q: want an absolute-form request to the proxy", fw.Client.RequestLine)
			}
			o := fw.Origin
			if o.RemoteAddr == fw.Client.Address || hostOf(t, o.RemoteAddr) == client {
				t.Errorf("the origin saw the client's address %s", o.RemoteAddr)
			}
			if hostOf(t, o.RemoteAddr) != "127.0.0.1" {
				t.Errorf("the origin's peer %s is not the gateway on 127.0.0.1", o.RemoteAddr)
			}
			if via := headerValues(o.Headers, "Via"); len(via) != 1 || !strings.Contains(via[0], "waygate") {
				t.Errorf("the origin saw Via %q", via)
			}
			for _, h := range o.Headers {
				if strings.Contains(h.Value, client) || h.Name == "X-Forwarded-For" || h.Name == "Forwarded" {
					t.Errorf("the origin saw the client's address in %s: %q", h.Name, h.Value)
				}
			}
			if len(headerValues(fw.Client.ResponseHeaders, "Via")) == 0 {
				t.Error("the client's answer has no Via")
			}
			checkFacts(t, fw.Facts, "origin_peer_is_proxy", "via", "client_address_hidden")

			rv := api.reverse()
			if !rv.OK || rv.App == nil || rv.Error != "" || rv.Refused != nil {
				t.Fatalf("reverse: %+v", rv)
			}
			pemBytes, err := os.ReadFile(filepath.Join(s.dir, "data", "lab", "reverse-selfsigned.crt"))
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(pemBytes)
			if block == nil {
				t.Fatal("no PEM in the lab certificate file")
			}
			sum := sha256.Sum256(block.Bytes)
			cert := rv.Client.Certificate
			if cert == nil || strings.ReplaceAll(cert.SHA256, ":", "") != strings.ToUpper(hex.EncodeToString(sum[:])) {
				t.Fatalf("the client saw certificate %+v, want SHA-256 %x", cert, sum)
			}
			leaf, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !cert.SelfSigned || cert.Subject != leaf.Subject.String() || !strings.Contains(strings.Join(cert.DNSNames, " "), labHost) {
				t.Errorf("certificate %+v: want self-signed for %s", cert, labHost)
			}
			if rv.Client.TLSVersion != "TLS 1.3" || rv.Client.ALPN != "h2" || rv.Client.Status != 200 {
				t.Errorf("client saw %s, ALPN %q, status %d", rv.Client.TLSVersion, rv.Client.ALPN, rv.Client.Status)
			}
			if len(headerValues(rv.Client.ResponseHeaders, "Strict-Transport-Security")) == 0 {
				t.Errorf("no security headers in %v", rv.Client.ResponseHeaders)
			}
			a := rv.App
			rclient := hostOf(t, rv.Client.Address)
			if xff := headerValues(a.Headers, "X-Forwarded-For"); len(xff) != 1 || xff[0] != rclient {
				t.Errorf("the app saw X-Forwarded-For %q, want %s", xff, rclient)
			}
			if proto := headerValues(a.Headers, "X-Forwarded-Proto"); len(proto) != 1 || proto[0] != "https" {
				t.Errorf("the app saw X-Forwarded-Proto %q", proto)
			}
			if fwd := headerValues(a.Headers, "Forwarded"); len(fwd) != 1 || !strings.Contains(fwd[0], "for="+rclient) || !strings.Contains(fwd[0], "proto=https") {
				t.Errorf("the app saw Forwarded %q", fwd)
			}
			if a.TLS != "none" || a.Host != labHost || a.RemoteAddr == rv.Client.Address || hostOf(t, a.RemoteAddr) == rclient {
				t.Errorf("the app saw TLS %q, Host %q, peer %s (client %s)", a.TLS, a.Host, a.RemoteAddr, rv.Client.Address)
			}
			if rv.Client.Connected == rv.AppAddress {
				t.Error("the client connected to the app itself")
			}
			checkFacts(t, rv.Facts, "client_sees_gateway", "gateway_certificate", "x_forwarded_for", "forwarded_proto")

			// The lab's reverse request is in the audit trail as kind
			// reverse, for its route.
			deadline := time.Now().Add(10 * time.Second)
			for {
				resp, err := api.c.Get(api.base + "/api/v1/logs?" + url.Values{"kind": {"reverse"}, "host": {labHost}}.Encode())
				if err != nil {
					t.Fatal(err)
				}
				var page struct {
					Events []map[string]any `json:"events"`
				}
				err = json.NewDecoder(resp.Body).Decode(&page)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Events) > 0 {
					if page.Events[0]["rule"] != labRoute || page.Events[0]["client"] != rclient {
						t.Errorf("audit event %v", page.Events[0])
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the reverse demonstration is not in the audit trail")
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// TestLabExemptionIsExact: a client of the forward proxy reaches the
// lab's echo origin, and no other loopback address or port: not the
// demo app, not the lab's reverse listener, not the admin listener, not
// another loopback server, not the echo port on another address.
func TestLabExemptionIsExact(t *testing.T) {
	s, p, api := startLabGateway(t, "127.0.0.1:0", "")
	fw := api.forward()
	rv := api.reverse()
	if !fw.OK || !rv.OK {
		t.Fatalf("forward %+v\nreverse %+v", fw, rv)
	}
	echo := netip.MustParseAddrPort(strings.TrimPrefix(strings.TrimSuffix(fw.Client.URL, labForwardPath), "http://"))
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.proxy})}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	tests := []struct {
		name, target string
		reached      bool
	}{
		{"the echo origin", "http://" + echo.String() + "/anything", true},
		{"the demo app", "http://" + rv.AppAddress + "/", false},
		{"the lab's reverse listener", "http://" + rv.Client.Connected + "/", false},
		{"the admin listener", "http://" + p.admin + "/healthz", false},
		{"another loopback server", s.origin.URL + "/", false},
		{"the echo port on another loopback address", fmt.Sprintf("http://127.0.0.2:%d/", echo.Port()), false},
		{"the echo port on IPv6 loopback", fmt.Sprintf("http://[::1]:%d/", echo.Port()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Get(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			reached := resp.Header.Get(labServerHeader) != "" || strings.Contains(string(body), "origin ok") || resp.StatusCode == 200
			if reached != tt.reached {
				t.Fatalf("%s: %d %s %q, want reached %v", tt.target, resp.StatusCode, resp.Header.Get(labServerHeader), body, tt.reached)
			}
			if !tt.reached && (resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Destination not allowed")) {
				t.Errorf("%s: %d %q, want the guard's refusal", tt.target, resp.StatusCode, body)
			}
		})
	}
}

// TestLabShowsRefusal: when the policy blocks the lab's request, the
// forward demonstration shows the gateway's decision (the block page's
// title and rule), not an error; after a reload without the rule it works
// again, so the exemption follows reloads.
func TestLabShowsRefusal(t *testing.T) {
	const block = `categories:
  - name: lab-targets
    domains: [127.0.0.1]
rules:
  - name: no-lab
    categories: [lab-targets]
    action: block
`
	s, p, api := startLabGateway(t, "127.0.0.1:0", block)
	fw := api.forward()
	if fw.OK || fw.Origin != nil || fw.Refused == nil || fw.Error != "" {
		t.Fatalf("forward under a blocking policy: %+v", fw)
	}
	r := fw.Refused
	if r.Status != http.StatusForbidden || r.Title != "Blocked by policy" {
		t.Errorf("refusal %+v", r)
	}
	rule := false
	for _, d := range r.Details {
		rule = rule || d.Name == "Rule" && d.Value == "no-lab"
	}
	if !rule {
		t.Errorf("the refusal does not name the rule: %+v", r.Details)
	}
	if fw.Client.Status != http.StatusForbidden || fw.Client.RequestLine == "" {
		t.Errorf("client side %+v", fw.Client)
	}

	s.writeLabConfig(t, "127.0.0.1:0", "")
	p.waitLog("config reloaded")
	if fw := api.forward(); !fw.OK || fw.Origin == nil {
		t.Fatalf("forward after the reload: %+v", fw)
	}
}
