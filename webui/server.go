package webui

import (
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"waygate/audit"
)

func init() {
	// Release mode: no route table or warnings printed to stdout. Tests
	// switch to gin.TestMode in TestMain.
	gin.SetMode(gin.ReleaseMode)
}

// Defaults of Options.
const (
	// DefaultSessionTTL is the absolute lifetime of a session: a working
	// day, after which the user logs in again however active they were.
	DefaultSessionTTL = 8 * time.Hour
	// DefaultSessionIdle ends a session that has not been used this long.
	DefaultSessionIdle = time.Hour
	// DefaultLoginFailures failed logins within DefaultLoginWindow are
	// allowed per client address and per user name; more get 429.
	DefaultLoginFailures = 5
	// DefaultLoginWindow is the sliding window failed logins are counted
	// in.
	DefaultLoginWindow = 15 * time.Minute
	// MaxBodyBytes is the largest request body accepted; larger gets 413.
	MaxBodyBytes = 1 << 20
)

// CookieName is the name of the session cookie.
const CookieName = "waygate_session"

// contentSecurityPolicy forbids inline script and style, framing, and
// loading anything from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// LoginLimit configures login throttling: after Failures failed logins
// within Window from one client address (one /64 for IPv6), or for one user
// name, further logins from it or for it are answered 429 with Retry-After
// until the oldest of those failures leaves the window. A successful login
// clears the user name's count (not the address's, so that an attacker
// with an account of their own cannot reset the count of the address they
// spray from). The per-name limit means that someone who knows an admin's
// name can keep that admin out for Window by failing on purpose: the price
// of stopping password guessing against that name.
type LoginLimit struct {
	// Failures is how many failures are allowed; zero means
	// DefaultLoginFailures. Negative is an error.
	Failures int
	// Window is how long a failure counts; zero means DefaultLoginWindow.
	// Negative is an error.
	Window time.Duration
}

// Options configures a Server. Every dependency may be nil: what needs it
// answers 503 with a JSON error (for the stores: see each field).
type Options struct {
	// Accounts looks up admin accounts, at login and on every
	// authenticated request. Nil means nobody can log in (POST
	// /api/v1/session answers 503) and every session and token is refused
	// (401).
	Accounts AccountStore
	// Sessions keeps browser sessions. Nil means no browser logins: POST
	// /api/v1/session answers 503 and session cookies are refused (401).
	Sessions SessionStore
	// Tokens keeps API tokens. Nil means bearer tokens are refused (401)
	// and the /api/v1/tokens endpoints answer 503.
	Tokens TokenStore
	// Logs serves GET /api/v1/logs; nil means 503.
	Logs LogSearcher
	// Stats serves GET /api/v1/stats; nil means 503.
	Stats StatsSource
	// Explainer serves GET /api/v1/explain; nil means 503.
	Explainer Explainer
	// Policy serves GET and PUT /api/v1/policy; nil means 503.
	Policy PolicyEditor
	// Events serves the live stream GET /api/v1/events; nil means 503.
	Events EventStream
	// Revisions serves the config revisions and rollbacks; nil answers
	// /api/v1/revisions with 503.
	Revisions RevisionSource
	// Users manages admin accounts (/api/v1/users) and serves POST
	// /api/v1/password; nil means 503.
	Users UserStore
	// Reverse serves GET /api/v1/reverse; nil means 503.
	Reverse ReverseStatus
	// Routes serves GET and PUT /api/v1/reverse/routes; nil means 503.
	Routes RouteEditor
	// Categories serves GET /api/v1/categories; nil means 503.
	Categories CategoryLister
	// Setup tells the setup page (GET /setup) where the forward proxy
	// listens; nil means the page says it has nothing to show (503).
	Setup SetupInfo
	// Lab runs the proxy lab's demonstrations (POST /api/v1/lab/forward
	// and /api/v1/lab/reverse); nil means 503, and the lab page says the
	// lab is not available.
	Lab Lab
	// Audit records admin actions. Nil means they go only to Logger (at
	// level info), which every admin action goes to anyway.
	Audit AuditRecorder
	// Logger receives the operational log: admin actions, failures of the
	// dependencies, recovered panics, and (at debug level) one line per
	// request. Nil discards it.
	Logger *slog.Logger
	// Now is the clock, for sessions, tokens, throttling and default
	// times. Nil means time.Now.
	Now func() time.Time
	// Secure marks the session cookie Secure and sends
	// Strict-Transport-Security: set it when the admin listener (or
	// whatever is in front of it) serves HTTPS. False (the default) suits
	// plain HTTP on loopback only.
	Secure bool
	// SessionTTL is the absolute lifetime of a session; zero means
	// DefaultSessionTTL. Negative is an error.
	SessionTTL time.Duration
	// SessionIdle ends a session unused this long; zero means
	// DefaultSessionIdle. It is capped at SessionTTL. Negative is an
	// error.
	SessionIdle time.Duration
	// LoginLimit throttles failed logins; the zero value means the
	// defaults (5 failures per 15 minutes).
	LoginLimit LoginLimit
}

// Server is the admin web UI and API. It is safe for concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	engine  *gin.Engine
	limiter *limiter
	pages   *template.Template
	static  map[string]*staticFile
	cop     *http.CrossOriginProtection
	streams *streams // the event streams, see events.go
	// compare checks a password against a bcrypt hash; a field so that
	// tests can observe the dummy comparison made for unknown users.
	compare func(hash, password []byte) error
}

// New checks opts, fills in the defaults and builds the Server with all
// its routes. It fails only on invalid options.
func New(opts Options) (*Server, error) {
	switch {
	case opts.SessionTTL < 0:
		return nil, fmt.Errorf("webui: negative SessionTTL %v", opts.SessionTTL)
	case opts.SessionIdle < 0:
		return nil, fmt.Errorf("webui: negative SessionIdle %v", opts.SessionIdle)
	case opts.LoginLimit.Failures < 0:
		return nil, fmt.Errorf("webui: negative LoginLimit.Failures %d", opts.LoginLimit.Failures)
	case opts.LoginLimit.Window < 0:
		return nil, fmt.Errorf("webui: negative LoginLimit.Window %v", opts.LoginLimit.Window)
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.SessionIdle == 0 {
		opts.SessionIdle = DefaultSessionIdle
	}
	opts.SessionIdle = min(opts.SessionIdle, opts.SessionTTL)
	if opts.LoginLimit.Failures == 0 {
		opts.LoginLimit.Failures = DefaultLoginFailures
	}
	if opts.LoginLimit.Window == 0 {
		opts.LoginLimit.Window = DefaultLoginWindow
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		limiter: newLimiter(opts.LoginLimit.Failures, opts.LoginLimit.Window),
		cop:     http.NewCrossOriginProtection(),
		compare: bcryptCompare,
		streams: newStreams(),
	}
	var err error
	if s.pages, s.static, err = loadAssets(); err != nil {
		return nil, err
	}
	s.engine = s.routes()
	return s, nil
}

// Handler returns the HTTP handler of the UI and API (a *gin.Engine in
// release mode, with webui's own recovery and no stdout logging). Serve it
// on the admin listener; it reads the client address from RemoteAddr only
// and trusts no X-Forwarded-For.
func (s *Server) Handler() http.Handler { return s.engine }

// routes builds the engine. Every route added here is covered by the
// tests that enumerate the engine's routes: anything under /api/v1 and
// every page needs credentials, and every state-changing method the admin
// role.
func (s *Server) routes() *gin.Engine {
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ForwardedByClientIP = false
	_ = e.SetTrustedProxies(nil) // nil cannot fail; webui reads RemoteAddr only anyway
	e.Use(s.recovery, s.securityHeaders, s.accessLog, s.limitBody)
	e.NoRoute(s.notFound)
	e.NoMethod(s.methodNotAllowed)

	// Public: health, the login page and its assets, the login itself.
	healthz := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
	e.GET("/healthz", healthz)
	e.HEAD("/healthz", healthz)
	e.GET("/login", s.loginPage)
	e.GET("/static/*file", s.serveStatic)
	e.POST("/api/v1/session", s.login)

	api := e.Group("/api/v1", s.authAPI, s.checkCSRF, s.checkWrite)
	api.GET("/session", s.sessionInfo)
	api.DELETE("/session", s.logout)
	api.GET("/tokens", s.listTokens)
	api.POST("/tokens", s.createToken)
	api.DELETE("/tokens/:id", s.deleteToken)
	api.GET("/logs", s.searchLogs)
	api.GET("/logs/export", s.exportLogs)
	api.GET("/stats", s.stats)
	api.GET("/events", s.streamEvents)
	api.GET("/revisions", s.listRevisions)
	api.GET("/revisions/:id", s.getRevision)
	api.POST("/revisions/:id/rollback", s.rollback)
	api.GET("/explain", s.explain)
	api.GET("/policy", s.getPolicy)
	api.PUT("/policy", s.putPolicy)
	api.GET("/users", s.listUsers)
	api.POST("/users", s.createUser)
	api.PATCH("/users/:name", s.updateUser)
	api.DELETE("/users/:name", s.deleteUser)
	api.GET("/reverse", s.reverseStatus)
	api.GET("/reverse/routes", s.getRoutes)
	api.PUT("/reverse/routes", s.putRoutes)
	api.GET("/categories", s.categories)
	api.POST("/lab/forward", s.labForward)
	api.POST("/lab/reverse", s.labReverse)
	// Any logged-in user changes their own password: not behind
	// checkWrite, which lets only admins change things.
	e.POST("/api/v1/password", s.authAPI, s.checkCSRF, s.changePassword)

	pages := e.Group("/", s.authPage)
	pages.GET("/", s.indexPage)
	pages.GET("/dashboard", s.dashboardPage)
	pages.GET("/logs", s.logsPage)
	pages.GET("/setup", s.setupPage)
	pages.GET("/admin-log", s.adminLogPage)
	pages.GET("/lab", s.labPage)
	pages.GET("/policy", s.policyPage)
	pages.GET("/categories", s.categoriesPage)
	pages.GET("/reverse", s.reversePage)
	return e
}

// isAPI reports whether the request is for the JSON API (errors as JSON)
// rather than a page.
func isAPI(c *gin.Context) bool {
	return strings.HasPrefix(c.Request.URL.Path, "/api/")
}

// unsafeMethod reports whether m may change state.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// fail aborts with a JSON error.
func fail(c *gin.Context, status int, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

// internal logs err and aborts with a 500 that does not reveal it.
func (s *Server) internal(c *gin.Context, what string, err error) {
	s.log.Error("webui: "+what, "error", err, "method", c.Request.Method, "route", c.FullPath())
	fail(c, http.StatusInternalServerError, "internal error: %s failed (see the gateway log)", what)
}

// unavailable aborts with 503 for a dependency that is not configured.
func unavailable(c *gin.Context, what string) {
	fail(c, http.StatusServiceUnavailable, "%s is not available on this gateway", what)
}

// recovery turns a panic into a logged error and a clean 500.
// http.ErrAbortHandler is passed on, so that net/http aborts the response
// silently as it should.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(v)
		}
		s.log.Error("webui: panic serving request", "panic", fmt.Sprint(v), "method", c.Request.Method,
			"path", c.Request.URL.Path, "stack", string(debug.Stack()))
		if c.Writer.Written() {
			c.Abort()
			return
		}
		if isAPI(c) {
			fail(c, http.StatusInternalServerError, "internal error")
			return
		}
		c.Header("Content-Type", "text/plain; charset=utf-8")
		c.AbortWithStatus(http.StatusInternalServerError)
		_, _ = c.Writer.WriteString("Internal error; see the gateway log.\n")
	}()
	c.Next()
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if s.opts.Secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if strings.HasPrefix(c.Request.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-cache")
	} else {
		// API answers and pages show who is logged in and what the logs
		// hold: never keep them in any cache.
		h.Set("Cache-Control", "no-store")
	}
	c.Next()
}

// accessLog logs one line per request at debug level. The query string is
// left out: it may hold search terms from the logs.
func (s *Server) accessLog(c *gin.Context) {
	start := s.now()
	c.Next()
	if s.log.Enabled(c.Request.Context(), slog.LevelDebug) {
		s.log.Debug("webui: request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "client", clientAddr(c.Request.RemoteAddr),
			"duration", s.now().Sub(start))
	}
}

// limitBody refuses bodies over MaxBodyBytes: at once when Content-Length
// says so, else when reading passes the limit (decodeJSON answers 413).
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.ContentLength > MaxBodyBytes {
		fail(c, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", MaxBodyBytes)
		return
	}
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	}
	c.Next()
}

func (s *Server) notFound(c *gin.Context) {
	if isAPI(c) {
		fail(c, http.StatusNotFound, "no such endpoint: %s %s", c.Request.Method, c.Request.URL.Path)
		return
	}
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.AbortWithStatus(http.StatusNotFound)
	_, _ = c.Writer.WriteString("Not found.\n")
}

func (s *Server) methodNotAllowed(c *gin.Context) {
	if isAPI(c) {
		fail(c, http.StatusMethodNotAllowed, "method %s not allowed here (allowed: %s)", c.Request.Method, c.Writer.Header().Get("Allow"))
		return
	}
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.AbortWithStatus(http.StatusMethodNotAllowed)
	_, _ = c.Writer.WriteString("Method not allowed.\n")
}

// record records an admin action in the audit trail and the log. action
// is the event's Method ("login", "login_failed", "logout",
// "token_create", "token_delete", "policy_save"); detail is JSON or empty.
func (s *Server) record(c *gin.Context, user, action string, status int, errText, detail string) {
	e := &audit.Event{
		Time:      s.now(),
		Kind:      audit.KindAdmin,
		Client:    clientAddr(c.Request.RemoteAddr),
		User:      clip(user, 128),
		Method:    action,
		Path:      c.Request.URL.Path,
		Status:    status,
		UserAgent: clip(c.Request.UserAgent(), 256),
		Error:     errText,
		Detail:    detail,
	}
	s.log.Info("webui: admin action", "action", action, "user", e.User, "client", e.Client,
		"status", status, "error", errText, "detail", detail)
	if s.opts.Audit != nil {
		s.opts.Audit.Record(e)
	}
}

// clip shortens s to at most n bytes, on a character boundary, and makes
// it valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
