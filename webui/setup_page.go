package webui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// SetupInfo tells the setup page how clients reach the forward proxy.
type SetupInfo interface {
	// Setup returns what the page shows. An error is logged and the page
	// says that the proxy's addresses are not available (500).
	Setup(ctx context.Context) (Setup, error)
}

// Setup is what the setup page shows about the forward proxy. The zero
// value of a field means "not known" or "none".
type Setup struct {
	// Listen is proxy.listen as configured, ":3128" say; shown as it is.
	Listen string
	// Host is the address the proxy listens on when it names one
	// (127.0.0.1, 10.0.0.5). Empty, or an unspecified address (0.0.0.0,
	// ::), means every address of the host: the page then offers
	// HostAddrs as candidates.
	Host string
	// Port is the port the proxy listens on, as bound (so never 0 for a
	// running proxy). Zero means the page cannot name the proxy's address.
	Port uint16
	// HostAddrs are the host's addresses that clients may use, best
	// first: the page's default is the first one that is not loopback.
	// Used only when Host does not name an address.
	HostAddrs []HostAddr
	// ProxyAddress is proxy.pac.proxy_address: the host:port the admin
	// told Waygate clients use. Empty means not set; when set, it is the
	// page's default address.
	ProxyAddress string
	// PACPaths are the paths the proxy serves its PAC file at on its own
	// listener, the preferred first ("/proxy.pac", "/wpad.dat"). Empty
	// means the page offers no PAC URL.
	PACPaths []string
	// DirectDomains are reached without the proxy (pac.direct_domains);
	// they go into the no_proxy example.
	DirectDomains []string
	// Auth says the proxy asks for a user name and password.
	Auth bool
	// CheckURL is the page the proxy answers itself
	// ("http://check.waygate.invalid/"), and CheckImage the tiny image on
	// it the setup page loads to tell whether the browser goes through
	// Waygate; both must have the same origin, which the page's
	// Content-Security-Policy then allows for images. Empty CheckURL means
	// no check is offered.
	CheckURL   string
	CheckImage string
	// AdminTLS says the admin UI is served over HTTPS, where browsers do
	// not load the plain-HTTP check image (mixed content). The page also
	// treats a request that came over TLS, or Options.Secure, as HTTPS.
	AdminTLS bool
}

// HostAddr is one address of the gateway's host.
type HostAddr struct {
	// Addr is the address; never zoned.
	Addr netip.Addr
	// Interface names the network interface it is on; empty if unknown.
	Interface string
}

// hostCandidate is one host address as the setup page lists it.
type hostCandidate struct {
	Addr      string
	Interface string
	Link      string // the setup page for this address
	Current   bool
	Loopback  bool
}

// setupData is what the setup page shows. Every value is escaped by
// html/template; Host has been checked to be an IP address or DNS name.
type setupData struct {
	pageData
	// Problem says why there is nothing to show; the page shows only it.
	Problem string
	Info    Setup
	// Wildcard is set when the proxy listens on every address, Loopback
	// when it listens on a loopback address only.
	Wildcard, Loopback bool
	// Host and Port are what clients use; HostPort joins them (with
	// brackets for IPv6), ProxyURL is "http://HostPort".
	Host, Port, HostPort, ProxyURL string
	// HostFrom says where Host came from, for the page.
	HostFrom string
	// PACURL and WPADURL are the PAC file's URLs; empty without PACPaths.
	PACURL, WPADURL string
	// Candidates are the host's addresses when Wildcard.
	Candidates []hostCandidate
	// NeedHost is set when no address is known (the proxy listens on
	// every address and the host's could not be listed): the page asks
	// for one and shows no steps.
	NeedHost bool
	// HostInput and HostError are the address form's value and error.
	HostInput, HostError string
	// NoProxy is the no_proxy value of the command-line example.
	NoProxy string
	// CheckURL and CheckImage are the check's page and image; empty when
	// there is no check. TLS says the automatic check cannot run.
	CheckURL, CheckImage string
	TLS                  bool
}

// checkOrigin returns the origin ("http://check.waygate.invalid") that
// both check URLs share, or an error saying what is wrong with them.
func checkOrigin(page, image string) (string, error) {
	origin := func(raw string) (string, error) {
		u, err := url.Parse(raw)
		if err != nil {
			return "", err
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			strings.ContainsAny(u.Host, " ;,'\"") {
			return "", fmt.Errorf("%q is not an http(s) URL of a host", raw)
		}
		return u.Scheme + "://" + strings.ToLower(u.Host), nil
	}
	po, err := origin(page)
	if err != nil {
		return "", err
	}
	imgOrigin, err := origin(image)
	if err != nil {
		return "", err
	}
	if po != imgOrigin {
		return "", fmt.Errorf("check page %q and image %q are on different origins", page, image)
	}
	return po, nil
}

// cspWithImages returns csp with src added to its img-src directive (or
// an img-src directive of 'self' and src when it has none).
func cspWithImages(csp, src string) string {
	parts := strings.Split(csp, "; ")
	for i, p := range parts {
		if strings.HasPrefix(p, "img-src ") {
			parts[i] = p + " " + src
			return strings.Join(parts, "; ")
		}
	}
	return csp + "; img-src 'self' " + src
}

// errHostWithPort is the form's error for "host:port" input.
var errHostWithPort = errors.New("give the host without a port")

// clientHost checks a host typed into the setup page: an IP address
// (without zone, brackets allowed for IPv6) or a DNS name. It returns the
// host as clients should write it.
func clientHost(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("%q has an interface zone, which clients on other machines cannot use", s)
		}
		return a.Unmap().String(), nil
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return "", errHostWithPort
	}
	name := strings.TrimSuffix(strings.ToLower(s), ".")
	if name == "" || len(name) > 253 {
		return "", fmt.Errorf("%q is neither an IP address nor a DNS name", s)
	}
	for label := range strings.SplitSeq(name, ".") {
		ok := len(label) > 0 && len(label) <= 63 && label[0] != '-' && label[len(label)-1] != '-'
		for i := 0; ok && i < len(label); i++ {
			c := label[i]
			ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
		}
		if !ok {
			return "", fmt.Errorf("%q is neither an IP address nor a DNS name", s)
		}
	}
	return name, nil
}

// setupPage is GET /setup[?host=]: the proxy's address and PAC URL, how
// to set up each browser and system, and the "am I going through
// Waygate?" check (static/setup.js). host picks the address the
// instructions use; it defaults to pac.proxy_address, the listen address,
// or the host's first address that is not loopback.
func (s *Server) setupPage(c *gin.Context) {
	d := setupData{pageData: page(c, "Setup")}
	if s.opts.Setup == nil {
		d.Problem = "This gateway does not say where its forward proxy listens, so the setup page has nothing to show."
		s.render(c, http.StatusServiceUnavailable, "setup.html", d)
		return
	}
	info, err := s.opts.Setup.Setup(c.Request.Context())
	if err != nil {
		s.log.Error("webui: reading the proxy's setup", "error", err)
		d.Problem = "The proxy's addresses could not be read; see the gateway log."
		s.render(c, http.StatusInternalServerError, "setup.html", d)
		return
	}
	d.Info = info
	d.TLS = info.AdminTLS || s.opts.Secure || c.Request.TLS != nil
	if info.CheckURL != "" {
		origin, err := checkOrigin(info.CheckURL, info.CheckImage)
		if err != nil {
			s.log.Error("webui: the proxy's check URLs are unusable; the setup page offers no check", "error", err)
		} else {
			d.CheckURL, d.CheckImage = info.CheckURL, info.CheckImage
			c.Header("Content-Security-Policy", cspWithImages(contentSecurityPolicy, origin))
		}
	}

	listenAddr, listenErr := netip.ParseAddr(info.Host)
	d.Wildcard = info.Host == "" || listenErr == nil && listenAddr.IsUnspecified()
	d.Loopback = listenErr == nil && listenAddr.IsLoopback() || strings.EqualFold(info.Host, "localhost")

	// The host clients use, and the port.
	port := info.Port
	if q := c.Query("host"); q != "" {
		d.HostInput = clip(q, 256)
		if h, err := clientHost(d.HostInput); err != nil {
			if errors.Is(err, errHostWithPort) {
				d.HostError = fmt.Sprintf("host: %s (the proxy's port is %d).", err, info.Port)
			} else {
				d.HostError = "host: " + err.Error() + "."
			}
		} else {
			d.Host, d.HostFrom = h, "chosen on this page"
		}
	}
	if d.Host == "" && info.ProxyAddress != "" {
		if h, p, err := net.SplitHostPort(info.ProxyAddress); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil && n > 0 {
				d.Host, port, d.HostFrom = h, uint16(n), "proxy.pac.proxy_address in the config"
			}
		}
	}
	if d.Host == "" && !d.Wildcard {
		d.Host, d.HostFrom = info.Host, "the proxy's listen address"
		if listenErr == nil {
			d.Host = listenAddr.Unmap().String()
		}
	}
	if d.Host == "" && d.Wildcard {
		for _, a := range info.HostAddrs {
			if !a.Addr.IsLoopback() {
				d.Host, d.HostFrom = a.Addr.String(), "the first address of this host"
				break
			}
		}
		if d.Host == "" && len(info.HostAddrs) > 0 {
			d.Host, d.HostFrom = info.HostAddrs[0].Addr.String(), "the only address of this host"
		}
	}
	if port == 0 {
		d.Problem = "The proxy's port is not known, so the setup page has nothing to show."
		s.render(c, http.StatusInternalServerError, "setup.html", d)
		return
	}
	d.Port = strconv.Itoa(int(port))
	if d.Host == "" {
		// Listening on every address of a host whose addresses could not
		// be listed: only the admin can say what clients use.
		d.NeedHost = true
		s.render(c, http.StatusOK, "setup.html", d)
		return
	}
	d.HostPort = net.JoinHostPort(d.Host, d.Port)
	d.ProxyURL = "http://" + d.HostPort
	if len(info.PACPaths) > 0 {
		d.PACURL = d.ProxyURL + info.PACPaths[0]
		d.WPADURL = d.PACURL
		if len(info.PACPaths) > 1 {
			d.WPADURL = d.ProxyURL + info.PACPaths[1]
		}
	}
	if d.Wildcard {
		for _, a := range info.HostAddrs {
			addr := a.Addr.String()
			d.Candidates = append(d.Candidates, hostCandidate{
				Addr: addr, Interface: a.Interface, Link: "/setup?" + url.Values{"host": {addr}}.Encode(),
				Current: addr == d.Host, Loopback: a.Addr.IsLoopback(),
			})
		}
	}
	noProxy := []string{"localhost", "127.0.0.1", "::1"}
	for _, dom := range info.DirectDomains {
		if h, err := clientHost(strings.TrimPrefix(strings.TrimPrefix(dom, "*"), ".")); err == nil {
			noProxy = append(noProxy, h)
		}
	}
	d.NoProxy = strings.Join(noProxy, ",")
	s.render(c, http.StatusOK, "setup.html", d)
}
