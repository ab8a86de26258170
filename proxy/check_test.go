package proxy_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"waygate/audit"
	"waygate/proxy"
)

// find returns the first event f accepts.
func (s *eventSink) find(f func(audit.Event) bool) (audit.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if f(e) {
			return e, true
		}
	}
	return audit.Event{}, false
}

// checkRequest is a raw proxy request for url with extra header lines.
func checkRequest(method, url, extra string) string {
	return method + " " + url + " HTTP/1.1\r\nHost: " + proxy.CheckHost + "\r\n" + extra + "\r\n"
}

// TestCheckAnsweredWithoutDialing: the proxy answers its check name
// itself, in every spelling of it, without a DNS lookup or a connection,
// even when DNS has an answer for the name.
func TestCheckAnsweredWithoutDialing(t *testing.T) {
	sink := &eventSink{}
	e := newEnv(t, func(_ *proxy.Options, e *env) { e.sopts.Audit = sink })
	// Were the proxy to look the name up and dial, it would reach the
	// origin.
	e.dns.Set(proxy.CheckHost, netip.MustParseAddr("127.0.0.1"))
	for _, tc := range []struct {
		name, method, url string
		status            int
		contentType       string
		body              string // a part of the body; for HEAD the body must be empty
	}{
		{"page", "GET", "http://check.waygate.invalid/", 200, "text/html; charset=utf-8", "You are going through Waygate"},
		{"page without slash", "GET", "http://check.waygate.invalid", 200, "text/html; charset=utf-8", "You are going through Waygate"},
		{"upper case", "GET", "http://CHECK.Waygate.INVALID/", 200, "text/html; charset=utf-8", "You are going through Waygate"},
		{"port 80", "GET", "http://check.waygate.invalid:80/", 200, "text/html; charset=utf-8", "You are going through Waygate"},
		{"trailing dot", "GET", "http://check.waygate.invalid./", 200, "text/html; charset=utf-8", "You are going through Waygate"},
		{"pixel", "GET", "http://check.waygate.invalid/pixel.png?r=0.123", 200, "image/png", "\x89PNG\r\n\x1a\n"},
		{"head", "HEAD", "http://check.waygate.invalid/", 200, "text/html; charset=utf-8", ""},
		{"other path", "GET", "http://check.waygate.invalid/nope", 404, "text/html; charset=utf-8", "/pixel.png"},
		{"post", "POST", "http://check.waygate.invalid/", 405, "text/html; charset=utf-8", "GET only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.method == "POST" {
				extra = "Content-Length: 0\r\n"
			}
			var resp *http.Response
			var body string
			if tc.method == "HEAD" {
				// raw reads a body; the client knows HEAD has none.
				var err error
				if resp, err = e.client().Head(tc.url); err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			} else {
				resp, body = e.raw(checkRequest(tc.method, tc.url, extra))
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.contentType {
				t.Fatalf("%d %q, want %d %q; body %q", resp.StatusCode, resp.Header.Get("Content-Type"), tc.status, tc.contentType, body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
			}
			if tc.method == "HEAD" && body != "" || !strings.Contains(body, tc.body) {
				t.Errorf("body %q, want it to contain %q", body, tc.body)
			}
		})
	}
	if n := e.dns.Queries(); n != 0 {
		t.Errorf("the check made %d DNS queries", n)
	}
	select {
	case <-e.seen:
		t.Error("a check request reached the origin")
	default:
	}
	// The page says who the proxy sees; the pixel is one real PNG pixel.
	_, page := e.raw(checkRequest("GET", "http://check.waygate.invalid/", ""))
	for _, want := range []string{"<dd>127.0.0.1</dd>", "the proxy did not ask for a sign-in", "<dd>" + e.addr + "</dd>"} {
		if !strings.Contains(page, want) {
			t.Errorf("check page lacks %q:\n%s", want, page)
		}
	}
	_, pixel := e.raw(checkRequest("GET", "http://check.waygate.invalid/pixel.png", ""))
	if !bytes.HasPrefix([]byte(pixel), []byte("\x89PNG")) || !strings.Contains(pixel, "IEND") {
		t.Errorf("pixel is not a PNG: %q", pixel)
	}

	// Another port is not the check: it takes the ordinary path.
	resp, _ := e.raw(checkRequest("GET", "http://check.waygate.invalid:8080/", ""))
	if resp.StatusCode == http.StatusOK {
		t.Errorf("check.waygate.invalid:8080 answered %d by the check", resp.StatusCode)
	}

	// Every check is in the audit trail as an allowed request.
	ev, ok := sink.byPath("/pixel.png")
	if !ok {
		t.Fatal("the pixel request is not in the audit trail")
	}
	if ev.Host != proxy.CheckHost || ev.Action != "allow" || ev.Reason != "gateway" || ev.Status != 200 || ev.Client != "127.0.0.1" ||
		ev.Kind != "http" || ev.Query != "r=0.123" || ev.Upstream != "" {
		t.Errorf("audit event %+v", ev)
	}
}

// TestCheckShowsUserEscaped: with proxy authentication the check needs
// credentials like any request, and shows the user as text.
func TestCheckShowsUserEscaped(t *testing.T) {
	const hostile = `<script>alert("x")</script>`
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sink := &eventSink{}
	e := newEnv(t, func(o *proxy.Options, e *env) {
		o.Auth = proxy.AuthOptions{Users: map[string]string{hostile: string(hash)}}
		e.sopts.Audit = sink
	})
	resp, body := e.raw(checkRequest("GET", "http://check.waygate.invalid/", ""))
	if resp.StatusCode != http.StatusProxyAuthRequired || strings.Contains(body, "You are going through") {
		t.Fatalf("without credentials: %d %q", resp.StatusCode, body)
	}
	auth := "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(hostile+":pw")) + "\r\n"
	resp, body = e.raw(checkRequest("GET", "http://check.waygate.invalid/", auth))
	if resp.StatusCode != 200 {
		t.Fatalf("with credentials: %d %q", resp.StatusCode, body)
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("user name not escaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("escaped user name missing:\n%s", body)
	}
	if ev, ok := sink.find(func(ev audit.Event) bool { return ev.Status == 200 }); !ok || ev.User != hostile || ev.Action != "allow" || ev.Path != "/" {
		t.Errorf("audit event %+v (found %v)", ev, ok)
	}
}

// TestCheckRefusedForClientNotAllowed: the check is for the clients the
// proxy serves; others get the usual refusal, recorded as denied.
func TestCheckRefusedForClientNotAllowed(t *testing.T) {
	sink := &eventSink{}
	e := newEnv(t, func(o *proxy.Options, e *env) {
		o.AllowClients = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		e.sopts.Audit = sink
	})
	for _, path := range []string{"/", "/pixel.png"} {
		resp, body := e.raw(checkRequest("GET", "http://check.waygate.invalid"+path, ""))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not allowed to use this proxy") ||
			resp.Header.Get("Content-Type") == "image/png" || strings.Contains(body, "You are going through") {
			t.Errorf("%s from a client not allowed: %d %q %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	if ev, ok := sink.byPath("/pixel.png"); !ok || ev.Action != "deny" || ev.Reason != "client" {
		t.Errorf("audit event %+v (found %v)", ev, ok)
	}
}
