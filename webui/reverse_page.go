package webui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
)

// RoutesDoc is the reverse proxy's routes as the web UI edits them: the
// list reverse.routes of the config file, each route as written there.
// Values that need parsing (durations, networks) are strings, so that
// RouteEditor.Validate can report each bad one with its path.
type RoutesDoc struct {
	// Version identifies the config file this document was read from. On
	// save it is the version the author edited: the editor answers
	// ErrConflict when the file has changed since. Empty on save means
	// "replace whatever is there".
	Version string `json:"version,omitempty"`
	// Routes replace reverse.routes in the order given; nil or empty means
	// no routes.
	Routes []RouteDoc `json:"routes"`
	// Listeners are the reverse listen addresses the config file names
	// (reverse.listen, then reverse.tls.listen), for the page to show. Set
	// by RouteEditor.Routes and ignored on save: listeners are not edited
	// here, and they start only when the gateway starts. Empty means the
	// file names none, and routes cannot be saved until it does.
	Listeners []string `json:"listeners,omitempty"`
}

// RouteDoc is one route, as in the config file. The zero value of a field
// means the key is left out of the file, which means its default (see the
// config file's documentation of reverse.routes); the pointer fields tell
// "left out" (nil) from a zero value given on purpose.
type RouteDoc struct {
	// Name is required and unique among routes.
	Name string `json:"name"`
	// Hosts are host names, "*." wildcard names and IP addresses; empty
	// matches any host.
	Hosts []string `json:"hosts,omitempty"`
	// PathPrefix starts with "/"; empty means "/".
	PathPrefix string `json:"path_prefix,omitempty"`
	// StripPrefix removes PathPrefix before forwarding.
	StripPrefix bool `json:"strip_prefix,omitempty"`
	// Headers and Cookies map a name to the value a request must have
	// ("*": only present); empty means no condition.
	Headers map[string]string `json:"headers,omitempty"`
	Cookies map[string]string `json:"cookies,omitempty"`
	// Priority orders routes, higher first; 0 is the default.
	Priority int `json:"priority,omitempty"`
	// Backends are at least one.
	Backends []RouteBackend `json:"backends"`
	// Balance is round_robin (the default when empty), weighted,
	// least_conn or hash.
	Balance string `json:"balance,omitempty"`
	// HashOn is client (the default when empty), header:NAME or
	// cookie:NAME; only with balance hash.
	HashOn string `json:"hash_on,omitempty"`
	// Health configures active health checks; nil means none.
	Health *RouteHealth `json:"health,omitempty"`
	// Passive configures passive ejection; nil means the defaults.
	Passive *RoutePassive `json:"passive,omitempty"`
	// Retries is how many further attempts a request gets; nil means the
	// default (1).
	Retries *int `json:"retries,omitempty"`
	// BackendTLS configures TLS to https backends; nil means the system
	// roots and the URL's host name.
	BackendTLS *RouteBackendTLS `json:"backend_tls,omitempty"`
	// AllowClients and DenyClients are client networks (CIDR); empty
	// allows every client and denies none.
	AllowClients []string `json:"allow_clients,omitempty"`
	DenyClients  []string `json:"deny_clients,omitempty"`
	// RateLimit limits requests per client address; nil means no limit.
	RateLimit *RouteRateLimit `json:"rate_limit,omitempty"`
	// MaxBodyBytes is the largest request body; 0 means
	// reverse.limits.max_body_bytes, -1 unlimited.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	// Compress turns response compression on or off for the route; nil
	// means on.
	Compress *bool `json:"compress,omitempty"`
	// SecurityHeaders override reverse.security_headers key by key; nil
	// keeps them all.
	SecurityHeaders *RouteSecurityHeaders `json:"security_headers,omitempty"`
	// ResponseHeaderTimeout is a Go duration ("30s"); empty means
	// reverse.timeouts.response_header.
	ResponseHeaderTimeout string `json:"response_header_timeout,omitempty"`
}

// RouteBackend is one backend: an http:// or https:// URL with a host and
// an optional port. Weight 0 means 1; MaxConns 0 means no cap.
type RouteBackend struct {
	URL      string `json:"url"`
	Weight   int    `json:"weight,omitempty"`
	MaxConns int    `json:"max_conns,omitempty"`
}

// RouteHealth configures active health checks; checks are off when Path
// is empty. Interval and Timeout are Go durations and ExpectStatus "204"
// or "200-399"; empty strings and zero counts mean the defaults.
type RouteHealth struct {
	Path         string `json:"path,omitempty"`
	Interval     string `json:"interval,omitempty"`
	Timeout      string `json:"timeout,omitempty"`
	Rise         int    `json:"rise,omitempty"`
	Fall         int    `json:"fall,omitempty"`
	ExpectStatus string `json:"expect_status,omitempty"`
	Host         string `json:"host,omitempty"`
}

// RoutePassive ejects a backend after Failures consecutive failures for
// Cooldown (a Go duration); zero values mean the defaults, Failures -1
// turns passive checks off.
type RoutePassive struct {
	Failures int    `json:"failures,omitempty"`
	Cooldown string `json:"cooldown,omitempty"`
}

// RouteBackendTLS configures TLS to https backends: file paths on the
// gateway and the verification name; empty fields mean the defaults.
type RouteBackendTLS struct {
	CAFile     string `json:"ca_file,omitempty"`
	ServerName string `json:"server_name,omitempty"`
	CertFile   string `json:"cert_file,omitempty"`
	KeyFile    string `json:"key_file,omitempty"`
}

// RouteRateLimit limits the requests of one client address; zero
// RequestsPerSecond means no limit, zero Burst its ceiling.
type RouteRateLimit struct {
	RequestsPerSecond float64 `json:"requests_per_second,omitempty"`
	Burst             int     `json:"burst,omitempty"`
}

// RouteSecurityHeaders override the global security headers: nil keeps
// the global value, "" turns the header off.
type RouteSecurityHeaders struct {
	HSTS                  *string `json:"hsts,omitempty"`
	ContentTypeOptions    *string `json:"content_type_options,omitempty"`
	FrameOptions          *string `json:"frame_options,omitempty"`
	ReferrerPolicy        *string `json:"referrer_policy,omitempty"`
	ContentSecurityPolicy *string `json:"content_security_policy,omitempty"`
}

// RouteEditor reads, checks and saves the reverse proxy's routes, with the
// same checks as the config file. Problems name their field from the
// document's root: "routes[1].backends[0].url"; problems elsewhere in the
// config file keep their config path ("reverse.listen").
type RouteEditor interface {
	// Routes returns the current routes, with Version and Listeners set.
	Routes(ctx context.Context) (RoutesDoc, error)
	// Validate checks doc without saving it. It returns nil when doc is
	// valid, else every problem found.
	Validate(ctx context.Context, doc RoutesDoc) []Problem
	// Save makes doc's routes the reverse proxy's (written to the config
	// file and applied with a reload), recording author, and returns the
	// new version. It returns an error wrapping ErrConflict when
	// doc.Version is set and is not the current version, and an
	// *InvalidPolicyError when the routes cannot be applied.
	Save(ctx context.Context, author string, doc RoutesDoc) (version string, err error)
}

// reverseData is what the reverse page shows.
type reverseData struct {
	pageData
	// CanEdit shows the controls that change routes: admins only (the
	// API refuses the others anyway).
	CanEdit bool
}

// reversePage is GET /reverse: the shell of the routes and their backends'
// health. static/reverse.js fills it from /api/v1/reverse/routes and
// /api/v1/reverse, and saves through PUT /api/v1/reverse/routes.
func (s *Server) reversePage(c *gin.Context) {
	s.render(c, http.StatusOK, "reverse.html", reverseData{pageData: page(c, "Reverse"), CanEdit: who(c).canWrite()})
}

// getRoutes is GET /api/v1/reverse/routes.
func (s *Server) getRoutes(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Routes == nil {
		unavailable(c, "route editing")
		return
	}
	doc, err := s.opts.Routes.Routes(c.Request.Context())
	if err != nil {
		s.internal(c, "reading the routes", err)
		return
	}
	if doc.Routes == nil {
		doc.Routes = []RouteDoc{}
	}
	for i := range doc.Routes {
		if doc.Routes[i].Backends == nil {
			doc.Routes[i].Backends = []RouteBackend{}
		}
	}
	c.JSON(http.StatusOK, doc)
}

// putRoutes is PUT /api/v1/reverse/routes (admin): validate, then save.
func (s *Server) putRoutes(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Routes == nil {
		unavailable(c, "route editing")
		return
	}
	var doc RoutesDoc
	if !decodeJSON(c, &doc) {
		return
	}
	ctx := c.Request.Context()
	if problems := s.opts.Routes.Validate(ctx, doc); len(problems) > 0 {
		c.AbortWithStatusJSON(http.StatusUnprocessableEntity, gin.H{"error": "invalid routes", "problems": problems})
		return
	}
	p := who(c)
	version, err := s.opts.Routes.Save(ctx, p.User, doc)
	detail, _ := json.Marshal(map[string]any{"version": version, "previous": doc.Version, "routes": len(doc.Routes)})
	var invalid *InvalidPolicyError
	switch {
	case errors.Is(err, ErrConflict):
		s.record(c, p.User, "routes_save", http.StatusConflict, "conflict", string(detail))
		fail(c, http.StatusConflict, "the config file has changed since version %q was read: load the routes again and redo the change", doc.Version)
		return
	case errors.As(err, &invalid):
		s.record(c, p.User, "routes_save", http.StatusUnprocessableEntity, clip(err.Error(), 1024), string(detail))
		problems := invalid.Problems
		if problems == nil {
			problems = []Problem{}
		}
		c.AbortWithStatusJSON(http.StatusUnprocessableEntity, gin.H{"error": "invalid routes", "problems": problems})
		return
	case err != nil:
		s.record(c, p.User, "routes_save", http.StatusInternalServerError, clip(err.Error(), 1024), string(detail))
		s.internal(c, "saving the routes", err)
		return
	}
	s.record(c, p.User, "routes_save", http.StatusOK, "", string(detail))
	c.JSON(http.StatusOK, gin.H{"version": version})
}
