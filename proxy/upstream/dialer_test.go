package upstream_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"waygate/proxy/upstream"
	"waygate/proxy/upstream/dnstest"
)

// newTestDialer returns a dialer whose resolver asks a DNS server on
// loopback that knows records, with allow exempt from the guard.
func newTestDialer(t *testing.T, records map[string][]string, allow ...string) (*upstream.Dialer, *dnstest.Server) {
	t.Helper()
	srv := dnstest.Start(t, records)
	r, err := upstream.NewResolver(upstream.ResolverConfig{Servers: []string{srv.Addr}, HostsFile: "none"})
	if err != nil {
		t.Fatal(err)
	}
	var ps []netip.Prefix
	for _, a := range allow {
		ps = append(ps, netip.MustParsePrefix(a))
	}
	return &upstream.Dialer{Resolver: r, Guard: upstream.NewGuard(upstream.GuardConfig{Allow: ps}), Timeout: 5 * time.Second}, srv
}

// listen returns a listener on 127.0.0.1 that accepts and holds connections.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ln, port
}

func TestDialerCauses(t *testing.T) {
	_, port := listen(t)
	// A port that was free a moment ago: nothing listens there.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	_, deadPort, _ := net.SplitHostPort(dead.Addr().String())
	dead.Close()

	d, _ := newTestDialer(t, map[string][]string{
		"ok.test":       {"127.0.0.1"},
		"internal.test": {"10.0.0.1"},
		"mixed.test":    {"127.0.0.1", "169.254.169.254"},
		"fallback.test": {"127.0.0.2", "127.0.0.1"},
	}, "127.0.0.0/8")
	tests := []struct {
		addr  string
		cause upstream.Cause // CauseOther means success
	}{
		{"ok.test:" + port, upstream.CauseOther},
		{"127.0.0.1:" + port, upstream.CauseOther},
		{"2130706433:" + port, upstream.CauseOther},
		{"fallback.test:" + port, upstream.CauseOther}, // 127.0.0.2 refuses, 127.0.0.1 answers
		{"internal.test:" + port, upstream.CauseDenied},
		{"mixed.test:" + port, upstream.CauseDenied},
		{"10.0.0.1:" + port, upstream.CauseDenied},
		{"[::ffff:a00:1]:" + port, upstream.CauseDenied},
		{"nosuch.test:" + port, upstream.CauseNotFound},
		{"127.0.0.1:" + deadPort, upstream.CauseRefused},
		{"bad_host!:80", upstream.CauseBadAddress},
		{"ok.test:0", upstream.CauseBadAddress},
		{"ok.test", upstream.CauseBadAddress},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c, err := d.DialContext(context.Background(), "tcp", tt.addr)
			if tt.cause == upstream.CauseOther {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("dial succeeded, want %v", tt.cause)
			}
			var de *upstream.DialError
			if !errors.As(err, &de) || de.Cause != tt.cause || upstream.CauseOf(err) != tt.cause {
				t.Fatalf("error %v: cause %v, want %v", err, upstream.CauseOf(err), tt.cause)
			}
		})
	}
}

func TestDialerChecksEveryLookup(t *testing.T) {
	// Rebinding: the name first resolves to an allowed address, later to a
	// denied one. The dialer must check what it dials each time.
	_, port := listen(t)
	d, srv := newTestDialer(t, map[string][]string{"rebind.test": {"127.0.0.1"}}, "127.0.0.1/32")
	c, err := d.DialContext(context.Background(), "tcp", "rebind.test:"+port)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	addrs, err := d.Resolve(context.Background(), "rebind.test", 80)
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddrPort("127.0.0.1:80") {
		t.Fatalf("Resolve = %v, %v", addrs, err)
	}
	srv.Set("rebind2.test", netip.MustParseAddr("127.0.0.2"))
	if _, err := d.DialContext(context.Background(), "tcp", "rebind2.test:"+port); upstream.CauseOf(err) != upstream.CauseDenied {
		t.Fatalf("name resolving to a denied address: %v", err)
	}
}

func TestDialerContextCanceled(t *testing.T) {
	d, _ := newTestDialer(t, nil, "127.0.0.0/8")
	_, port := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+port)
	if c := upstream.CauseOf(err); c != upstream.CauseCanceled {
		t.Fatalf("canceled dial: %v (cause %v)", err, c)
	}
}

func TestTLSConfigExtraCA(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer origin.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: origin.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	handshake := func(cfg *tls.Config) error {
		cfg = cfg.Clone()
		cfg.ServerName = "127.0.0.1"
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", origin.Listener.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	system, err := upstream.TLSConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(system); upstream.CauseOf(err) != upstream.CauseTLS {
		t.Fatalf("self-signed origin with system roots: %v (cause %v), want a TLS failure", err, upstream.CauseOf(err))
	}
	withCA, err := upstream.TLSConfig([]string{caFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(withCA); err != nil {
		t.Fatalf("with the extra CA: %v", err)
	}
	if _, err := upstream.TLSConfig([]string{filepath.Join(dir, "missing.pem")}); err == nil {
		t.Error("missing CA file accepted")
	}
	notPEM := filepath.Join(dir, "junk.pem")
	os.WriteFile(notPEM, []byte("junk"), 0o600)
	if _, err := upstream.TLSConfig([]string{notPEM}); err == nil {
		t.Error("file without certificates accepted")
	}
}

func TestCauseNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range upstream.AllCauses() {
		name := c.String()
		if name == "" || seen[name] {
			t.Errorf("cause %d has name %q (empty or repeated)", int(c), name)
		}
		seen[name] = true
	}
	if got := upstream.Cause(99).String(); got != "other" {
		t.Errorf("unknown cause name %q", got)
	}
}
