package proxy

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// FuzzParseBasic feeds Proxy-Authorization values, which come from any
// client, to the Basic parser.
func FuzzParseBasic(f *testing.F) {
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret")))
	f.Add("basic YTpi")
	f.Add("Basic ")
	f.Add("Bearer abc")
	f.Add("Basic !!!")
	f.Fuzz(func(t *testing.T, v string) {
		user, pass, ok := parseBasic(v)
		if !ok && (user != "" || pass != "") {
			t.Fatalf("not ok but returned %q %q", user, pass)
		}
		if ok && strings.Contains(user, ":") {
			t.Fatalf("user %q contains a colon", user)
		}
	})
}

// FuzzTargetOf feeds request authorities to the host/port splitter.
func FuzzTargetOf(f *testing.F) {
	for _, s := range []string{"example.com", "example.com:8080", "[::1]:80", "[::1]", "1.2.3.4:", ":80", "a:b:c", "x:99999"} {
		f.Add(s, "http")
	}
	f.Fuzz(func(t *testing.T, hostport, scheme string) {
		host, port, err := targetOf(hostport, scheme)
		if err == nil && (host == "" || port == 0) {
			t.Fatalf("targetOf(%q) = %q, %d with no error", hostport, host, port)
		}
	})
}

// FuzzRemoveHopHeaders checks that whatever a client puts in Connection,
// no hop-by-hop header survives and nothing panics.
func FuzzRemoveHopHeaders(f *testing.F) {
	f.Add("keep-alive, X-Foo", "websocket", "trailers")
	f.Add("Upgrade", "h2c", "")
	f.Add(",,,", "", "gzip, trailers")
	f.Fuzz(func(t *testing.T, connection, upgrade, te string) {
		h := http.Header{
			"Connection":          {connection},
			"Upgrade":             {upgrade},
			"Te":                  {te},
			"Keep-Alive":          {"timeout=5"},
			"Proxy-Authorization": {"Basic x"},
			"X-Foo":               {"1"},
		}
		removeHopHeaders(h, true)
		for _, k := range []string{"Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Transfer-Encoding"} {
			if _, ok := h[k]; ok {
				t.Fatalf("%s survived: %v", k, h)
			}
		}
		if up := h.Get("Upgrade"); up != "" && up != "websocket" {
			t.Fatalf("Upgrade %q survived", up)
		}
		if v := h.Get("Te"); v != "" && v != "trailers" {
			t.Fatalf("TE %q survived", v)
		}
	})
}
