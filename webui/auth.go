package webui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
)

// CSRFHeader is the header state-changing requests of a browser session
// carry the session's CSRF token in.
const CSRFHeader = "X-CSRF-Token"

// TokenPrefix starts every API token secret.
const TokenPrefix = "wgt_"

// secretLen is the length of 32 random bytes in unpadded base64url.
var secretLen = base64.RawURLEncoding.EncodedLen(32)

// touchEvery is how often a session's LastSeen is written back: at most
// once a minute per session, not on every request.
const touchEvery = time.Minute

// principal is who a request is made by.
type principal struct {
	User string
	Role string
	// Session is set for browser sessions (cookie), with its store key and
	// CSRF token; clear for API tokens.
	Session bool
	key     [32]byte
	CSRF    string
	Expires time.Time
	// ReadOnly is set for read-only tokens.
	ReadOnly bool
	TokenID  string
}

// canWrite reports whether p may change things.
func (p *principal) canWrite() bool { return p.Role == RoleAdmin && !p.ReadOnly }

const principalKey = "webui.principal"

func who(c *gin.Context) *principal {
	p, _ := c.MustGet(principalKey).(*principal)
	return p
}

// randomString returns n random bytes in unpadded base64url.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// wellFormed reports whether v is 32 bytes in unpadded base64url, the form
// of session cookies and token secrets.
func wellFormed(v string) bool {
	if len(v) != secretLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil
}

// authError is why a request could not be authenticated: 401 with a
// message, or 500 when a store failed.
type authError struct {
	status int
	msg    string
}

// authenticate finds who makes the request: an API token when there is an
// Authorization header (the cookie is then ignored), else the session
// cookie.
func (s *Server) authenticate(c *gin.Context) (*principal, *authError) {
	ctx := c.Request.Context()
	now := s.now()
	if h := c.Request.Header.Get("Authorization"); h != "" {
		return s.authToken(ctx, h, now)
	}
	ck, err := c.Request.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return nil, &authError{http.StatusUnauthorized, "not logged in: log in or send an API token (Authorization: Bearer ...)"}
	}
	return s.authSession(ctx, ck.Value, now)
}

func (s *Server) authToken(ctx context.Context, header string, now time.Time) (*principal, *authError) {
	scheme, secret, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, &authError{http.StatusUnauthorized, "unsupported authorization scheme: use Authorization: Bearer <token>"}
	}
	secret = strings.TrimSpace(secret)
	if !strings.HasPrefix(secret, TokenPrefix) || !wellFormed(secret[len(TokenPrefix):]) {
		return nil, &authError{http.StatusUnauthorized, "invalid API token"}
	}
	if s.opts.Tokens == nil {
		return nil, &authError{http.StatusUnauthorized, "API tokens are not enabled on this gateway"}
	}
	t, role, err := s.opts.Tokens.TokenBySecret(ctx, sha256.Sum256([]byte(secret)), now)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, &authError{http.StatusUnauthorized, "invalid or expired API token"}
	case err != nil:
		s.log.Error("webui: looking up an API token", "error", err)
		return nil, &authError{http.StatusInternalServerError, "internal error: token lookup failed (see the gateway log)"}
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return nil, &authError{http.StatusUnauthorized, "invalid or expired API token"}
	}
	acct, ae := s.account(ctx, t.User)
	if ae != nil {
		return nil, ae
	}
	// The lesser of the two roles, should the store and the account
	// disagree.
	if role != RoleAdmin {
		acct.Role = RoleAuditor
	}
	return &principal{User: t.User, Role: acct.Role, ReadOnly: t.ReadOnly, TokenID: t.ID, Expires: t.Expires}, nil
}

func (s *Server) authSession(ctx context.Context, value string, now time.Time) (*principal, *authError) {
	bad := &authError{http.StatusUnauthorized, "session expired or invalid: log in again"}
	if !wellFormed(value) || s.opts.Sessions == nil {
		return nil, bad
	}
	key := sha256.Sum256([]byte(value))
	sess, err := s.opts.Sessions.Session(ctx, key, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, bad
	case err != nil:
		s.log.Error("webui: looking up a session", "error", err)
		return nil, &authError{http.StatusInternalServerError, "internal error: session lookup failed (see the gateway log)"}
	}
	// The store should not return expired sessions; make sure anyway.
	if !now.Before(sess.Expires) || !now.Before(sess.Created.Add(s.opts.SessionTTL)) {
		if err := s.opts.Sessions.DeleteSession(ctx, key); err != nil {
			s.log.Warn("webui: deleting an expired session", "error", err)
		}
		return nil, bad
	}
	acct, ae := s.account(ctx, sess.User)
	if ae != nil {
		return nil, ae
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		sess.Expires = s.sessionExpiry(sess.Created, now)
		if err := s.opts.Sessions.TouchSession(ctx, key, now, sess.Expires); err != nil {
			s.log.Warn("webui: updating a session", "error", err)
		}
	}
	return &principal{User: sess.User, Role: acct.Role, Session: true, key: key, CSRF: sess.CSRF, Expires: sess.Expires}, nil
}

// sessionExpiry is when a session created at created and used at now
// ends unless used again.
func (s *Server) sessionExpiry(created, now time.Time) time.Time {
	e := now.Add(s.opts.SessionIdle)
	if end := created.Add(s.opts.SessionTTL); end.Before(e) {
		e = end
	}
	return e
}

// account returns the account of an authenticated user, refusing
// accounts that are gone, disabled or have an unknown role.
func (s *Server) account(ctx context.Context, name string) (Account, *authError) {
	gone := &authError{http.StatusUnauthorized, "account unknown or disabled"}
	if s.opts.Accounts == nil {
		return Account{}, gone
	}
	a, err := s.opts.Accounts.Account(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		return Account{}, gone
	case err != nil:
		s.log.Error("webui: looking up an account", "error", err)
		return Account{}, &authError{http.StatusInternalServerError, "internal error: account lookup failed (see the gateway log)"}
	}
	if a.Disabled {
		return Account{}, gone
	}
	if a.Role != RoleAdmin && a.Role != RoleAuditor {
		s.log.Warn("webui: account has an unknown role; refused", "user", name, "role", a.Role)
		return Account{}, gone
	}
	return a, nil
}

// authAPI authenticates API requests: 401 (JSON) without valid
// credentials.
func (s *Server) authAPI(c *gin.Context) {
	p, ae := s.authenticate(c)
	if ae != nil {
		if ae.status == http.StatusUnauthorized {
			c.Header("WWW-Authenticate", `Bearer realm="waygate"`)
		}
		fail(c, ae.status, "%s", ae.msg)
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// authPage authenticates page requests: a redirect to the login page
// without valid credentials.
func (s *Server) authPage(c *gin.Context) {
	p, ae := s.authenticate(c)
	if ae != nil {
		if ae.status == http.StatusUnauthorized {
			c.Redirect(http.StatusSeeOther, "/login")
			c.Abort()
			return
		}
		c.Header("Content-Type", "text/plain; charset=utf-8")
		c.AbortWithStatus(ae.status)
		_, _ = c.Writer.WriteString(ae.msg + "\n")
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// checkCSRF refuses state-changing requests of browser sessions that do
// not carry the session's CSRF token or come from another site. Requests
// with API tokens are exempt: nothing sends them on its own.
func (s *Server) checkCSRF(c *gin.Context) {
	p := who(c)
	if !unsafeMethod(c.Request.Method) || !p.Session {
		c.Next()
		return
	}
	if err := s.cop.Check(c.Request); err != nil {
		fail(c, http.StatusForbidden, "cross-site request refused")
		return
	}
	got := c.GetHeader(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) != 1 {
		fail(c, http.StatusForbidden, "missing or wrong CSRF token: send the session's token in the %s header", CSRFHeader)
		return
	}
	c.Next()
}

// checkWrite refuses state-changing requests to auditors and read-only
// tokens. Logging out is the one change everyone may make.
func (s *Server) checkWrite(c *gin.Context) {
	if !unsafeMethod(c.Request.Method) || (c.Request.Method == http.MethodDelete && c.FullPath() == "/api/v1/session") {
		c.Next()
		return
	}
	p := who(c)
	if p.ReadOnly {
		fail(c, http.StatusForbidden, "this API token is read-only")
		return
	}
	if !p.canWrite() {
		fail(c, http.StatusForbidden, "this needs the admin role (you are %s)", p.Role)
		return
	}
	c.Next()
}

// dummyHash is compared against for unknown and disabled users, so that
// they take as long as a wrong password. Its cost is bcrypt.DefaultCost,
// the cost `waygate passwd` hashes with.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("waygate dummy password"), bcrypt.DefaultCost)
	if err != nil {
		panic(err) // only for passwords over 72 bytes
	}
	return h
})

func bcryptCompare(hash, password []byte) error { return bcrypt.CompareHashAndPassword(hash, password) }

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// login is POST /api/v1/session.
func (s *Server) login(c *gin.Context) {
	if err := s.cop.Check(c.Request); err != nil {
		fail(c, http.StatusForbidden, "cross-site login refused")
		return
	}
	if s.opts.Accounts == nil || s.opts.Sessions == nil {
		unavailable(c, "logging in")
		return
	}
	var req loginRequest
	if !decodeJSON(c, &req) {
		return
	}
	if req.Username == "" || req.Password == "" {
		fail(c, http.StatusBadRequest, "username and password are required")
		return
	}
	if len(req.Username) > 256 || len(req.Password) > 1024 {
		fail(c, http.StatusBadRequest, "username or password too long")
		return
	}
	now := s.now()
	ckey, ukey := clientKey(c.Request.RemoteAddr), "u:"+req.Username
	if wait := max(s.limiter.retryAfter(ckey, now), s.limiter.retryAfter(ukey, now)); wait > 0 {
		secs := int64(math.Ceil(wait.Seconds()))
		c.Header("Retry-After", strconv.FormatInt(secs, 10))
		s.log.Debug("webui: login throttled", "user", clip(req.Username, 128), "client", clientAddr(c.Request.RemoteAddr))
		fail(c, http.StatusTooManyRequests, "too many failed logins; try again in %d seconds", secs)
		return
	}

	ctx := c.Request.Context()
	acct, err := s.opts.Accounts.Account(ctx, req.Username)
	reason := ""
	switch {
	case errors.Is(err, ErrNotFound):
		reason = "unknown user"
	case err != nil:
		s.internal(c, "account lookup", err)
		return
	case acct.Disabled:
		reason = "account disabled"
	case acct.PasswordHash == "":
		reason = "account has no password"
	case acct.Role != RoleAdmin && acct.Role != RoleAuditor:
		reason = "account has an unknown role"
	}
	if reason != "" {
		// Same work as for a wrong password, so that the time taken does
		// not tell which names exist.
		_ = s.compare(dummyHash(), []byte(req.Password))
	} else if s.compare([]byte(acct.PasswordHash), []byte(req.Password)) != nil {
		reason = "wrong password"
	}
	if reason != "" {
		limited := s.limiter.fail(ckey, now)
		limited = s.limiter.fail(ukey, now) || limited
		detail := ""
		if limited {
			detail = `{"throttled":true}`
		}
		s.record(c, req.Username, "login_failed", http.StatusUnauthorized, reason, detail)
		fail(c, http.StatusUnauthorized, "wrong user name or password")
		return
	}

	// Never reuse a session ID the browser brought along (fixation): end
	// that session if there is one, and make a new one.
	if old, err := c.Request.Cookie(CookieName); err == nil && wellFormed(old.Value) {
		if err := s.opts.Sessions.DeleteSession(ctx, sha256.Sum256([]byte(old.Value))); err != nil {
			s.log.Warn("webui: deleting the previous session", "error", err)
		}
	}
	value := randomString(32)
	sess := Session{
		User:      acct.Name,
		Role:      acct.Role,
		CSRF:      randomString(32),
		Created:   now,
		LastSeen:  now,
		Expires:   s.sessionExpiry(now, now),
		Client:    clientAddr(c.Request.RemoteAddr),
		UserAgent: clip(c.Request.UserAgent(), 256),
	}
	if sess.User == "" {
		sess.User = req.Username
	}
	if err := s.opts.Sessions.CreateSession(ctx, sha256.Sum256([]byte(value)), sess); err != nil {
		s.internal(c, "creating the session", err)
		return
	}
	s.limiter.reset(ukey)
	http.SetCookie(c.Writer, s.cookie(value, 0))
	s.record(c, sess.User, "login", http.StatusOK, "", "")
	c.JSON(http.StatusOK, gin.H{"user": sess.User, "role": sess.Role, "csrf": sess.CSRF, "expires": sess.Expires})
}

// cookie is the session cookie with value; maxAge as in http.Cookie (zero:
// a browser-session cookie, negative: delete it).
func (s *Server) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.opts.Secure,
		SameSite: http.SameSiteStrictMode,
	}
}

// sessionInfo is GET /api/v1/session: who is logged in.
func (s *Server) sessionInfo(c *gin.Context) {
	p := who(c)
	out := gin.H{"user": p.User, "role": p.Role, "read_only": !p.canWrite()}
	if p.Session {
		out["via"] = "session"
		out["csrf"] = p.CSRF
	} else {
		out["via"] = "token"
		out["token_id"] = p.TokenID
	}
	if !p.Expires.IsZero() {
		out["expires"] = p.Expires
	}
	c.JSON(http.StatusOK, out)
}

// logout is DELETE /api/v1/session.
func (s *Server) logout(c *gin.Context) {
	p := who(c)
	if !p.Session {
		fail(c, http.StatusBadRequest, "no session to end: this request was made with an API token")
		return
	}
	if err := s.opts.Sessions.DeleteSession(c.Request.Context(), p.key); err != nil {
		s.internal(c, "ending the session", err)
		return
	}
	http.SetCookie(c.Writer, s.cookie("", -1))
	s.record(c, p.User, "logout", http.StatusOK, "", "")
	c.JSON(http.StatusOK, gin.H{"status": "logged out"})
}

// decodeJSON reads the request body as one JSON value into dst, strictly:
// it must be declared JSON, unknown fields and trailing data are errors,
// and every error is answered (415, 413 or 400 naming the problem).
func decodeJSON(c *gin.Context, dst any) bool {
	if !isJSON(c.ContentType()) {
		fail(c, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	if c.Request.Body == nil {
		fail(c, http.StatusBadRequest, "empty body: expected a JSON object")
		return false
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		// One value only.
		var extra json.RawMessage
		if err2 := dec.Decode(&extra); err2 == nil {
			fail(c, http.StatusBadRequest, "malformed JSON: unexpected data after the value")
			return false
		} else if !errors.Is(err2, io.EOF) {
			err = err2
		}
	}
	if err == nil {
		return true
	}
	var (
		tooBig *http.MaxBytesError
		syn    *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		fail(c, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		fail(c, http.StatusBadRequest, "empty body: expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		fail(c, http.StatusBadRequest, "malformed JSON: unexpected end of the body")
	case errors.As(err, &syn):
		fail(c, http.StatusBadRequest, "malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(the body)"
		}
		fail(c, http.StatusBadRequest, "field %s: expected %s, got JSON %s", field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		fail(c, http.StatusBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		fail(c, http.StatusBadRequest, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return false
}

// isJSON reports whether a media type (without parameters) is JSON.
func isJSON(mediaType string) bool {
	return strings.EqualFold(mediaType, "application/json")
}
