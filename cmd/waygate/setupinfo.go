package main

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"slices"

	"waygate/proxy"
	"waygate/webui"
)

// pacPaths are the paths the forward proxy serves its PAC file at on its
// own listener (proxy/pac.go, serveLocal), the customary name first.
var pacPaths = []string{"/proxy.pac", "/wpad.dat"}

// setupInfo tells the web UI's setup page where the running forward proxy
// listens, with the host's addresses as candidates when it listens on all
// of them.
type setupInfo struct {
	g *gateway
	// interfaces lists the host's network interfaces and their addresses;
	// nil means hostInterfaces.
	interfaces func() ([]ifaceAddrs, error)
}

// ifaceAddrs is one network interface and its addresses.
type ifaceAddrs struct {
	name  string
	addrs []netip.Addr
}

// hostInterfaces lists the interfaces that are up, with their unicast
// addresses.
func hostInterfaces() ([]ifaceAddrs, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []ifaceAddrs
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, err
		}
		ia := ifaceAddrs{name: ifc.Name}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					ia.addrs = append(ia.addrs, ip.Unmap())
				}
			}
		}
		out = append(out, ia)
	}
	return out, nil
}

// candidateAddrs picks the addresses clients might reach a proxy listening
// on the unspecified address bound on: no link-local or multicast
// addresses (useless to other machines), only IPv4 for 0.0.0.0; ordered
// IPv4 first, then IPv6, loopback last.
func candidateAddrs(bound netip.Addr, ifs []ifaceAddrs) []webui.HostAddr {
	var out []webui.HostAddr
	seen := map[netip.Addr]bool{}
	for _, ifc := range ifs {
		for _, a := range ifc.addrs {
			a = a.WithZone("")
			if seen[a] || !a.IsValid() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() ||
				(bound.Is4() && !a.Is4()) {
				continue
			}
			seen[a] = true
			out = append(out, webui.HostAddr{Addr: a, Interface: ifc.name})
		}
	}
	rank := func(a netip.Addr) int {
		switch {
		case a.IsLoopback():
			return 2
		case a.Is4():
			return 0
		}
		return 1
	}
	slices.SortStableFunc(out, func(x, y webui.HostAddr) int { return cmp.Compare(rank(x.Addr), rank(y.Addr)) })
	return out
}

// Setup reports the proxy's bound address, the PAC settings and proxy
// authentication of the running config, and the check URLs the proxy
// answers itself.
func (s setupInfo) Setup(context.Context) (webui.Setup, error) {
	g := s.g
	g.mu.Lock()
	pac, auth := g.cfg.Proxy.PAC, len(g.cfg.Proxy.Auth.Users) > 0
	g.mu.Unlock()
	info := webui.Setup{
		// The listener as bound: a changed proxy.listen takes effect only
		// at the next restart, and port 0 has become a real port.
		Listen:        g.proxyLn.Addr().String(),
		ProxyAddress:  pac.ProxyAddress,
		PACPaths:      pacPaths,
		DirectDomains: pac.DirectDomains,
		Auth:          auth,
		CheckURL:      "http://" + proxy.CheckHost + "/",
		CheckImage:    "http://" + proxy.CheckHost + proxy.CheckPixelPath,
		// The admin listener serves HTTPS as admin.tls.enabled said at
		// start (a change takes effect at the next restart).
		// (http.Server.TLSConfig is no sign of TLS: Serve fills it in for
		// HTTP/2 anyway.)
		AdminTLS: g.adminTLS != nil,
	}
	ta, ok := g.proxyLn.Addr().(*net.TCPAddr)
	if !ok {
		return info, nil
	}
	bound := ta.AddrPort()
	info.Port = bound.Port()
	ip := bound.Addr().Unmap()
	if !ip.IsUnspecified() {
		info.Host = ip.String()
		return info, nil
	}
	list := s.interfaces
	if list == nil {
		list = hostInterfaces
	}
	ifs, err := list()
	if err != nil {
		// The page still names the port; it says it cannot list addresses.
		g.log.Warn("setup page: listing the host's addresses", "error", err)
		return info, nil
	}
	info.HostAddrs = candidateAddrs(ip, ifs)
	return info, nil
}
