package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
	"waygate/filter/hostname"
)

// HostResolver looks up the addresses of a host name. *Resolver implements
// it; the returned slice must not be modified.
type HostResolver interface {
	LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// Dialer is the one way the gateway opens outbound TCP connections. It
// resolves names with its own resolver, checks every resolved address (and
// every IP literal, in any numeric spelling) with the destination guard, and
// dials exactly the addresses it checked, so a DNS answer that changes
// between check and dial (rebinding) cannot reach a denied address.
//
// A Dialer is safe for concurrent use and must not be changed after first use.
type Dialer struct {
	// Resolver resolves host names. It must not be nil when names are dialed;
	// IP literals never reach it.
	Resolver HostResolver
	// Guard decides which destinations may be dialed. Nil means a guard with
	// no exemptions (every non-public address is denied).
	Guard *Guard
	// Timeout bounds the whole dial, lookup included. Zero means 10s.
	Timeout time.Duration
	// FallbackDelay is how long an attempt may run before the next address
	// (alternating IPv6 and IPv4, RFC 8305 "Happy Eyeballs") is tried in
	// parallel. Zero means 250ms.
	FallbackDelay time.Duration
	// KeepAlive is the TCP keep-alive period. Zero means 30s; negative
	// disables keep-alives.
	KeepAlive time.Duration
}

const (
	defaultDialTimeout   = 10 * time.Second
	defaultFallbackDelay = 250 * time.Millisecond
	defaultKeepAlive     = 30 * time.Second
)

// DialContext connects to address ("host:port") on network "tcp", "tcp4" or
// "tcp6". Errors are *DialError values that name the cause.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &DialError{Addr: address, Cause: CauseBadAddress, Err: err}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, &DialError{Addr: address, Cause: CauseBadAddress, Err: fmt.Errorf("invalid port %q", portStr)}
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	addrs, err := d.Resolve(ctx, host, uint16(port))
	if err != nil {
		return nil, err
	}
	addrs = filterFamily(network, addrs)
	if len(addrs) == 0 {
		return nil, &DialError{Addr: address, Cause: CauseNotFound, Err: fmt.Errorf("no %s address", network)}
	}
	conn, err := d.dialAddrs(ctx, addrs)
	if err != nil {
		return nil, &DialError{Addr: address, Cause: CauseOf(err), Err: err}
	}
	return conn, nil
}

// Resolve turns host (a name or an IP literal in any numeric spelling) and
// port into the checked list of addresses to dial. If any address of a name
// is denied, the whole name is denied: a name that mixes public and internal
// addresses is treated as hostile rather than silently trimmed.
func (d *Dialer) Resolve(ctx context.Context, host string, port uint16) ([]netip.AddrPort, error) {
	addrStr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	name, ip, isIP, err := hostname.Parse(host)
	if err != nil {
		return nil, &DialError{Addr: addrStr, Cause: CauseBadAddress, Err: err}
	}
	if isIP {
		ap := netip.AddrPortFrom(ip, port)
		if err := d.Guard.Check(ap); err != nil {
			return nil, &DialError{Addr: addrStr, Cause: CauseDenied, Err: err}
		}
		return []netip.AddrPort{ap}, nil
	}
	if d.Resolver == nil {
		return nil, &DialError{Addr: addrStr, Cause: CauseDNS, Err: errors.New("no resolver configured")}
	}
	ips, err := d.Resolver.LookupNetIP(ctx, name)
	if err != nil {
		return nil, &DialError{Addr: addrStr, Cause: CauseOf(err), Err: err}
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip, port)
		if err := d.Guard.Check(ap); err != nil {
			return nil, &DialError{Addr: addrStr, Cause: CauseDenied, Err: fmt.Errorf("%s resolves to a denied address: %w", name, err)}
		}
		out = append(out, ap)
	}
	return interleave(out), nil
}

// filterFamily keeps the addresses network allows ("tcp4", "tcp6").
func filterFamily(network string, addrs []netip.AddrPort) []netip.AddrPort {
	var want func(netip.Addr) bool
	switch network {
	case "tcp4":
		want = netip.Addr.Is4
	case "tcp6":
		want = func(a netip.Addr) bool { return !a.Is4() }
	default:
		return addrs
	}
	out := addrs[:0:0]
	for _, a := range addrs {
		if want(a.Addr().Unmap()) {
			out = append(out, a)
		}
	}
	return out
}

// interleave orders addresses so that families alternate, starting with the
// family of the first address (RFC 8305 section 4). It reorders in place.
func interleave(addrs []netip.AddrPort) []netip.AddrPort {
	if len(addrs) < 3 {
		return addrs
	}
	first := addrs[0].Addr().Is4()
	var a, b []netip.AddrPort
	for _, ap := range addrs {
		if ap.Addr().Is4() == first {
			a = append(a, ap)
		} else {
			b = append(b, ap)
		}
	}
	out := addrs[:0]
	for i := 0; i < len(a) || i < len(b); i++ {
		if i < len(a) {
			out = append(out, a[i])
		}
		if i < len(b) {
			out = append(out, b[i])
		}
	}
	return out
}

func (d *Dialer) netDialer() *net.Dialer {
	ka := d.KeepAlive
	if ka == 0 {
		ka = defaultKeepAlive
	}
	return &net.Dialer{KeepAlive: ka}
}

type dialResult struct {
	conn net.Conn
	err  error
}

// dialAddrs connects to the first address that answers. Attempts start one
// FallbackDelay apart, or at once when the previous attempt fails; the first
// connection wins and the others are closed.
func (d *Dialer) dialAddrs(ctx context.Context, addrs []netip.AddrPort) (net.Conn, error) {
	nd := d.netDialer()
	if len(addrs) == 1 {
		return nd.DialContext(ctx, "tcp", addrs[0].String())
	}
	delay := d.FallbackDelay
	if delay <= 0 {
		delay = defaultFallbackDelay
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan dialResult, len(addrs))
	start := func(ap netip.AddrPort) {
		go func() {
			c, err := nd.DialContext(ctx, "tcp", ap.String())
			results <- dialResult{c, err}
		}()
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	next, pending := 0, 0
	var firstErr error
	for {
		if next < len(addrs) && pending == 0 {
			start(addrs[next])
			next++
			pending++
			timer.Reset(delay)
		}
		var fire <-chan time.Time
		if next < len(addrs) {
			fire = timer.C
		}
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				go closeLosers(results, pending)
				return r.conn, nil
			}
			if firstErr == nil {
				firstErr = r.err
			}
			if pending == 0 && next == len(addrs) {
				return nil, firstErr
			}
		case <-fire:
			start(addrs[next])
			next++
			pending++
			timer.Reset(delay)
		case <-ctx.Done():
			go closeLosers(results, pending)
			if firstErr != nil {
				return nil, firstErr
			}
			return nil, ctx.Err()
		}
	}
}

// closeLosers closes the connections of the n attempts still running when
// another attempt won or the dial was abandoned.
func closeLosers(results <-chan dialResult, n int) {
	for range n {
		if r := <-results; r.conn != nil {
			r.conn.Close()
		}
	}
}
