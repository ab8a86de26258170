package webui

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxLimiterKeys bounds the memory of the login throttle. When it is full
// of keys with recent failures, logins under new keys are refused (429)
// until old failures age out: the throttle fails closed.
const maxLimiterKeys = 1 << 16

// limiter counts failed logins per key in a sliding window.
type limiter struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	fails map[string][]time.Time // ascending failure times within the window
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, fails: map[string][]time.Time{}}
}

// prune drops the failures of key that are out of the window at now and
// returns the rest. Called with mu held.
func (l *limiter) prune(key string, now time.Time) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-l.window)) {
		i++
	}
	if i == len(ts) {
		delete(l.fails, key)
		return nil
	}
	if i > 0 {
		ts = append(ts[:0], ts[i:]...)
		l.fails[key] = ts
	}
	return ts
}

// retryAfter returns how long key must wait before it may try again, zero
// when it may try now.
func (l *limiter) retryAfter(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.prune(key, now)
	if len(ts) >= l.max {
		return ts[len(ts)-l.max].Add(l.window).Sub(now)
	}
	if ts == nil && len(l.fails) >= maxLimiterKeys {
		l.pruneAll(now)
		if len(l.fails) >= maxLimiterKeys {
			return l.window
		}
	}
	return 0
}

// fail records a failure of key at now and reports whether key has now
// reached the limit.
func (l *limiter) fail(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.prune(key, now)
	if ts == nil && len(l.fails) >= maxLimiterKeys {
		l.pruneAll(now)
		if len(l.fails) >= maxLimiterKeys {
			return true
		}
	}
	ts = append(ts, now)
	if len(ts) > l.max {
		ts = ts[len(ts)-l.max:]
	}
	l.fails[key] = ts
	return len(ts) >= l.max
}

// reset forgets the failures of key.
func (l *limiter) reset(key string) {
	l.mu.Lock()
	delete(l.fails, key)
	l.mu.Unlock()
}

// pruneAll drops every key without failures in the window. Called with mu
// held.
func (l *limiter) pruneAll(now time.Time) {
	for k := range l.fails {
		l.prune(k, now)
	}
}

// clientKey is the throttle key of a client address (RemoteAddr): the
// address itself for IPv4, its /64 for IPv6, since one host commonly has a
// whole /64.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "c:" + host
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "c:" + p.String()
	}
	return "c:" + a.String()
}

// clientAddr is the client's address without port, as recorded.
func clientAddr(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
