package reverse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults and limits of active health checks.
const (
	healthDefaultInterval = 10 * time.Second
	healthDefaultTimeout  = 2 * time.Second
	healthDefaultRise     = 2
	healthDefaultFall     = 3
	healthMaxBody         = 64 << 10
	healthUserAgent       = "waygate-health-check"
)

// HealthConfig configures active health checks of a route's backends: one
// goroutine per backend sends GET Path through the route's Transport, the
// first check right when the checker starts, then every Interval (±10%
// jitter so checks of many backends do not line up).
//
// A backend starts healthy (optimistic, like Traefik), so a reload or a
// restart sends traffic at once; but a backend never checked before goes
// down on its first failed check instead of waiting for Fall of them, so a
// dead new backend leaves within one Timeout. Afterwards Fall consecutive
// failures take it down and Rise consecutive successes bring it back. A
// backend that is down by active checks receives no requests at all.
//
// The zero value disables active checks.
type HealthConfig struct {
	// Path is the request path (with an optional query) to check, starting
	// with "/". Empty disables active checks and the rest is ignored.
	Path string
	// Interval between checks. Zero means 10s; negative is an error.
	Interval time.Duration
	// Timeout bounds one check, reading up to 64 KiB of the body included.
	// Zero means 2s; negative is an error. Checks of one backend never
	// overlap: the next one starts Interval after the previous ended.
	Timeout time.Duration
	// Rise is the number of consecutive successes that bring a down
	// backend up; Fall the consecutive failures that take an up backend
	// down. Zero means 2 and 3; negative is an error.
	Rise, Fall int
	// ExpectStatus is the inclusive range of status codes that count as
	// success. The zero value means 200..399 (redirects are not followed);
	// {N, 0} means exactly N. Codes must lie in 100..599.
	ExpectStatus [2]int
	// Host is the Host header to send. Empty means the backend URL's host.
	Host string
}

// healthSettings is a validated HealthConfig; comparable, so that Activate
// restarts a checker only when its settings changed.
type healthSettings struct {
	path               string
	interval, timeout  time.Duration
	rise, fall         int
	expectLo, expectHi int
	host               string
}

// compileHealth validates hc and applies its defaults. on is false when
// active checks are disabled.
func compileHealth(route string, hc HealthConfig, rt http.RoundTripper) (on bool, hs healthSettings, err error) {
	if hc.Path == "" {
		return false, healthSettings{}, nil
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("route %q: health check: %s", route, fmt.Sprintf(format, args...)))
	}
	hs = healthSettings{
		path: hc.Path, interval: hc.Interval, timeout: hc.Timeout,
		rise: hc.Rise, fall: hc.Fall,
		expectLo: hc.ExpectStatus[0], expectHi: hc.ExpectStatus[1],
		host: hc.Host,
	}
	if !strings.HasPrefix(hs.path, "/") {
		bad("path %q must start with \"/\"", hs.path)
	} else if u, perr := url.Parse("http://backend" + hs.path); perr != nil || u.Fragment != "" || u.Host != "backend" {
		bad("invalid path %q", hs.path)
	}
	switch {
	case hs.interval < 0:
		bad("negative interval %s", hs.interval)
	case hs.interval == 0:
		hs.interval = healthDefaultInterval
	}
	switch {
	case hs.timeout < 0:
		bad("negative timeout %s", hs.timeout)
	case hs.timeout == 0:
		hs.timeout = healthDefaultTimeout
	}
	if hs.rise < 0 || hs.fall < 0 {
		bad("negative rise or fall (%d, %d)", hs.rise, hs.fall)
	}
	if hs.rise == 0 {
		hs.rise = healthDefaultRise
	}
	if hs.fall == 0 {
		hs.fall = healthDefaultFall
	}
	switch {
	case hs.expectLo == 0 && hs.expectHi == 0:
		hs.expectLo, hs.expectHi = 200, 399
	case hs.expectHi == 0:
		hs.expectHi = hs.expectLo
	}
	if hs.expectLo < 100 || hs.expectHi > 599 || hs.expectLo > hs.expectHi {
		bad("invalid expected status range %d..%d (want 100 <= low <= high <= 599)", hc.ExpectStatus[0], hc.ExpectStatus[1])
	}
	if hs.host != "" && !healthValidHost(hs.host) {
		bad("invalid Host header %q", hs.host)
	}
	if rt == nil {
		bad("a transport is required for active health checks")
	}
	if len(errs) > 0 {
		return false, healthSettings{}, errors.Join(errs...)
	}
	return true, hs, nil
}

// healthValidHost accepts host[:port] made of printable non-space ASCII
// without URL delimiters.
func healthValidHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`/?#@\"`, c) >= 0 {
			return false
		}
	}
	return true
}

// healthTransport boxes a RoundTripper for atomic replacement.
type healthTransport struct{ rt http.RoundTripper }

// healthChecker is the active health-check goroutine of one backend state.
type healthChecker struct {
	reg       *Registry
	state     *backendState
	settings  healthSettings
	url       string
	transport atomic.Pointer[healthTransport]

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	probes atomic.Uint64 // checks completed, for status and tests
}

func newHealthChecker(r *Registry, st *backendState, b *Backend) *healthChecker {
	p := b.pool
	ctx, cancel := context.WithCancel(context.Background())
	c := &healthChecker{
		reg:      r,
		state:    st,
		settings: p.health,
		url:      b.url.Scheme + "://" + b.url.Host + p.health.path,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	c.transport.Store(&healthTransport{rt: p.transport})
	return c
}

// run checks at once, then every interval with jitter, until cancelled.
func (c *healthChecker) run() {
	defer c.reg.wg.Done()
	defer close(c.done)
	st := c.state
	hs := c.settings
	st.mu.Lock()
	probation := !st.everChecked
	st.mu.Unlock()
	var rises, falls int
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		detail, ok := c.probe()
		if c.ctx.Err() != nil {
			return
		}
		c.probes.Add(1)
		now := c.reg.now()
		st.mu.Lock()
		st.lastCheck, st.lastCheckOK, st.everChecked = now, ok, true
		if ok {
			st.lastCheckErr = ""
		} else {
			st.lastCheckErr = detail
		}
		st.mu.Unlock()

		if st.healthy.Load() {
			if ok {
				falls = 0
			} else if falls++; probation || falls >= hs.fall {
				st.setHealthy(false, fmt.Sprintf("health check failed %d time(s): %s", falls, detail))
				falls, rises = 0, 0
			} else {
				st.log.Debug("health check failed", "error", detail, "consecutive", falls)
			}
		} else {
			if !ok {
				rises = 0
			} else if rises++; rises >= hs.rise {
				st.setHealthy(true, fmt.Sprintf("health check passed %d time(s)", rises))
				falls, rises = 0, 0
			}
		}
		probation = false

		timer.Reset(healthJitter(hs.interval))
		select {
		case <-c.ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// healthJitter spreads d by ±10%.
func healthJitter(d time.Duration) time.Duration {
	spread := int64(d) / 5
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread+1))
}

// probe sends one check. It returns ok, or a description of the failure.
func (c *healthChecker) probe() (detail string, ok bool) {
	hs := &c.settings
	ctx, cancel := context.WithTimeout(c.ctx, hs.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err.Error(), false
	}
	req.Host = hs.host
	req.Header.Set("User-Agent", healthUserAgent)
	req.Header.Set("Accept", "*/*")
	resp, err := c.transport.Load().rt.RoundTrip(req)
	if err != nil {
		return err.Error(), false
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, healthMaxBody))
	resp.Body.Close()
	if resp.StatusCode < hs.expectLo || resp.StatusCode > hs.expectHi {
		return "status " + strconv.Itoa(resp.StatusCode), false
	}
	if err != nil {
		return "reading body: " + err.Error(), false
	}
	return "", true
}
