package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// openTLSTunnel opens a CONNECT tunnel to the TLS origin, runs TLS over it
// and checks one request.
func openTLSTunnel(t *testing.T, e *env) *tls.Conn {
	t.Helper()
	c, resp := e.connect(e.tls.Listener.Addr().String(), "")
	if c == nil {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	t.Cleanup(func() { c.Close() })
	tc := e.tlsOver(c, "127.0.0.1")
	if resp, body := tunnelGet(t, tc, "/"); resp.StatusCode != 200 || body != "hello from origin" {
		t.Fatalf("request through the new tunnel: %d %q", resp.StatusCode, body)
	}
	return tc
}

func TestReloadKeepsOpenTunnel(t *testing.T) {
	e := newEnv(t)
	tc := openTLSTunnel(t, e)
	// A keep-alive client connection opened under the old options.
	kc := e.dial()
	kbr := bufio.NewReader(kc)
	if resp, _ := get(t, kc, kbr, e.origin.URL+"/"); resp.StatusCode != 200 {
		t.Fatalf("before reload: %d", resp.StatusCode)
	}
	e.lastSeen()

	opts := e.opts
	opts.AllowClients = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if err := e.srv.Reload(opts); err != nil {
		t.Fatal(err)
	}

	if resp, body := tunnelGet(t, tc, "/"); resp.StatusCode != 200 || body != "hello from origin" {
		t.Fatalf("old tunnel after reload: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, kc, kbr, e.origin.URL+"/"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not allowed to use this proxy") {
		t.Errorf("new request on an old connection: %d", resp.StatusCode)
	}
	if resp, _ := e.raw("GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("new request after reload: %d, want 403", resp.StatusCode)
	}
	if c, resp := e.connect(e.tls.Listener.Addr().String(), ""); c != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("new CONNECT after reload: %v", resp.Status)
	}
	// The old tunnel still works after the refusals.
	if resp, _ := tunnelGet(t, tc, "/"); resp.StatusCode != 200 {
		t.Fatalf("old tunnel: %d", resp.StatusCode)
	}
}

func TestReloadInvalidKeepsOldOptions(t *testing.T) {
	e := newEnv(t)
	opts := e.opts
	opts.Dialer = nil
	opts.AllowClients = nil // would lock everybody out if it were applied
	if err := e.srv.Reload(opts); err == nil {
		t.Fatal("Reload with a nil Dialer succeeded")
	}
	if resp, body := e.raw("GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || body != "hello from origin" {
		t.Fatalf("after a failed reload: %d %q", resp.StatusCode, body)
	}
	tc := openTLSTunnel(t, e)
	tc.Close()
}

// manualDeadline is a context whose deadline passes when the test says
// so: Shutdown's "deadline reached" path without depending on the clock.
type manualDeadline struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func newManualDeadline() *manualDeadline {
	return &manualDeadline{Context: context.Background(), done: make(chan struct{})}
}

func (c *manualDeadline) Done() <-chan struct{} { return c.done }

func (c *manualDeadline) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

func (c *manualDeadline) expire() { c.once.Do(func() { close(c.done) }) }

// startShutdown runs Shutdown in the background and returns once the
// proxy has stopped accepting.
func startShutdown(t *testing.T, e *env, ctx context.Context) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(ctx) }()
	eventually(t, "the proxy to stop accepting", func() bool {
		c, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	return done
}

func TestShutdownWithOpenTunnel(t *testing.T) {
	t.Run("cut at the deadline", func(t *testing.T) {
		e := newEnv(t)
		tc := openTLSTunnel(t, e)
		ctx := newManualDeadline()
		t.Cleanup(ctx.expire)
		done := startShutdown(t, e, ctx)

		// Before the deadline: Shutdown waits and the tunnel works.
		if resp, body := tunnelGet(t, tc, "/"); resp.StatusCode != 200 || body != "hello from origin" {
			t.Fatalf("tunnel during shutdown: %d %q", resp.StatusCode, body)
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a tunnel open and its deadline not reached", err)
		default:
		}

		ctx.expire()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown = %v, want a deadline error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown did not return after its deadline")
		}
		expectClosed(t, tc, tc)
		if n := e.srv.Stats().Tunnels; n != 0 {
			eventually(t, "the cut tunnel to be forgotten", func() bool { return e.srv.Stats().Tunnels == 0 })
		}
	})

	t.Run("closed by the client", func(t *testing.T) {
		e := newEnv(t)
		tc := openTLSTunnel(t, e)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := startShutdown(t, e, ctx)
		if resp, _ := tunnelGet(t, tc, "/"); resp.StatusCode != 200 {
			t.Fatalf("tunnel during shutdown: %d", resp.StatusCode)
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a tunnel open", err)
		default:
		}
		tc.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Shutdown = %v after the last tunnel closed, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown still waiting after the tunnel closed")
		}
		if n := e.srv.Stats().Tunnels; n != 0 {
			t.Errorf("Stats().Tunnels = %d after Shutdown", n)
		}
	})
}
