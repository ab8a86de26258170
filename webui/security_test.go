package webui

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// publicRoutes are the only routes that may be used without credentials.
var publicRoutes = map[string]bool{
	"GET /healthz":         true,
	"HEAD /healthz":        true,
	"GET /login":           true,
	"GET /static/*file":    true,
	"POST /api/v1/session": true, // the login itself
}

// concrete fills the parameters of a route path.
func concrete(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, ":"):
			parts[i] = "abcdEFGH1234"
		case strings.HasPrefix(p, "*"):
			parts[i] = "login.js"
		}
	}
	return strings.Join(parts, "/")
}

type route struct{ method, path string }

// routes enumerates the engine's routes, so that routes added later are
// covered by these tests without being listed here.
func (e *env) routes() (public, protected []route) {
	for _, r := range e.srv.engine.Routes() {
		rt := route{r.Method, r.Path}
		if publicRoutes[r.Method+" "+r.Path] {
			public = append(public, rt)
		} else {
			protected = append(protected, rt)
		}
	}
	if len(public) != len(publicRoutes) {
		e.t.Fatalf("public routes %v, want %v", public, publicRoutes)
	}
	if len(protected) < 10 {
		e.t.Fatalf("only %d protected routes: %v", len(protected), protected)
	}
	return public, protected
}

// bodyFor is a harmless JSON body for a state-changing route.
func bodyFor(rt route) any {
	if unsafeMethod(rt.method) {
		switch rt.path {
		case "/api/v1/tokens":
			return map[string]any{"name": "x"}
		case "/api/v1/policy":
			return PolicyDoc{}
		}
		return "{}"
	}
	return nil
}

func TestEveryRouteNeedsCredentials(t *testing.T) {
	e := newEnv(t, nil)
	_, protected := e.routes()
	expired := e.token("alice", false, e.clock.Now().Add(time.Minute))
	e.clock.Advance(2 * time.Minute)
	bad := []struct {
		name string
		r    req
	}{
		{"none", req{}},
		{"garbage cookie", req{cookie: "nope"}},
		{"unknown cookie", req{cookie: randomString(32)}},
		{"garbage bearer", req{bearer: "nope"}},
		{"unknown bearer", req{bearer: TokenPrefix + randomString(32)}},
		{"expired bearer", req{bearer: expired}},
		{"basic auth", req{header: map[string]string{"Authorization": "Basic YWxpY2U6YWxpY2Utc2VjcmV0LXB3"}}},
	}
	for _, rt := range protected {
		for _, b := range bad {
			t.Run(rt.method+" "+rt.path+" "+b.name, func(t *testing.T) {
				r := b.r
				r.method, r.path, r.body = rt.method, concrete(rt.path), bodyFor(rt)
				w := e.do(r)
				if strings.HasPrefix(rt.path, "/api/") {
					if w.Code != http.StatusUnauthorized {
						t.Fatalf("status %d, want 401: %s", w.Code, w.Body)
					}
					errorOf(t, w)
					if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
						t.Errorf("Content-Type %q", got)
					}
				} else if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
					t.Fatalf("status %d Location %q, want 303 to /login", w.Code, w.Header().Get("Location"))
				}
			})
		}
	}
	for _, call := range []int{e.logs.calls(), e.policy.saveCount()} {
		if call != 0 {
			t.Error("a dependency was called without credentials")
		}
	}
}

func TestPublicRoutesAnswerWithoutCredentials(t *testing.T) {
	e := newEnv(t, nil)
	public, _ := e.routes()
	for _, rt := range public {
		if rt.method != "GET" && rt.method != "HEAD" {
			continue
		}
		w := e.do(req{method: rt.method, path: concrete(rt.path)})
		if w.Code != http.StatusOK {
			t.Errorf("%s %s: %d", rt.method, rt.path, w.Code)
		}
	}
}

func TestAuditorsCannotChangeAnything(t *testing.T) {
	e := newEnv(t, nil)
	_, protected := e.routes()
	cookie, csrf := e.login("audrey")
	auditorToken := e.token("audrey", false, e.clock.Now().Add(time.Hour))
	readOnly := e.token("alice", true, e.clock.Now().Add(time.Hour))
	n := 0
	for _, rt := range protected {
		if !unsafeMethod(rt.method) || (rt.method == "DELETE" && rt.path == "/api/v1/session") {
			continue
		}
		n++
		for name, r := range map[string]req{
			"auditor session": {cookie: cookie, csrf: csrf},
			"auditor token":   {bearer: auditorToken},
			"read-only token": {bearer: readOnly},
		} {
			if name == "auditor session" && rt.method == "POST" && rt.path == "/api/v1/password" {
				continue // every account changes its own password (TestPasswordChange)
			}
			r.method, r.path, r.body = rt.method, concrete(rt.path), bodyFor(rt)
			w := e.do(r)
			if w.Code != http.StatusForbidden {
				t.Errorf("%s %s as %s: %d, want 403: %s", rt.method, rt.path, name, w.Code, w.Body)
			}
		}
	}
	if n < 3 {
		t.Fatalf("only %d state-changing routes", n)
	}
	if e.policy.saveCount() != 0 {
		t.Error("policy saved")
	}
	// Auditors may read.
	for _, rt := range protected {
		if unsafeMethod(rt.method) {
			continue
		}
		w := e.do(req{method: rt.method, path: concrete(rt.path), cookie: cookie})
		if w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
			t.Errorf("auditor %s %s: %d", rt.method, rt.path, w.Code)
		}
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, nil)
	_, protected := e.routes()
	cookie, csrf := e.login("alice")
	for _, rt := range protected {
		if !unsafeMethod(rt.method) {
			continue
		}
		for name, token := range map[string]string{"missing": "", "wrong": randomString(32), "prefix": csrf[:10]} {
			w := e.do(req{method: rt.method, path: concrete(rt.path), body: bodyFor(rt), cookie: cookie, csrf: token})
			if w.Code != http.StatusForbidden {
				t.Errorf("%s %s, %s CSRF token: %d, want 403", rt.method, rt.path, name, w.Code)
			}
		}
		// With the token and from the same site, it goes through.
		w := e.do(req{method: rt.method, path: concrete(rt.path), body: bodyFor(rt), cookie: cookie, csrf: csrf,
			header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}})
		if w.Code == http.StatusForbidden || w.Code == http.StatusUnauthorized {
			t.Errorf("%s %s with the CSRF token: %d %s", rt.method, rt.path, w.Code, w.Body)
		}
		if rt.method == "DELETE" && rt.path == "/api/v1/session" {
			cookie, csrf = e.login("alice")
		}
	}
	if e.policy.saveCount() != 1 {
		t.Errorf("policy saved %d times, want 1", e.policy.saveCount())
	}
	// A right token from another site is refused as well.
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"},
	} {
		w := e.do(req{method: "PUT", path: "/api/v1/policy", body: PolicyDoc{}, cookie: cookie, csrf: csrf, header: h})
		if w.Code != http.StatusForbidden {
			t.Errorf("cross-site %v: %d, want 403", h, w.Code)
		}
	}
}

func TestBearerTokens(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	admin := e.token("alice", false, now.Add(time.Hour))
	readOnly := e.token("alice", true, now.Add(time.Hour))
	disabled := e.token("dora", false, now.Add(time.Hour))

	// No CSRF token needed: nothing sends a bearer token on its own.
	w := e.do(req{method: "PUT", path: "/api/v1/policy", body: PolicyDoc{Rules: []PolicyRule{{Name: "r", Action: "allow"}}}, bearer: admin})
	if w.Code != http.StatusOK {
		t.Fatalf("PUT policy with admin token: %d %s", w.Code, w.Body)
	}
	// A cookie of someone else is ignored when there is a token.
	cookie, _ := e.login("audrey")
	w = e.do(req{method: "GET", path: "/api/v1/session", bearer: admin, cookie: cookie})
	var info struct {
		User, Role, Via string
		ReadOnly        bool `json:"read_only"`
	}
	decode(t, w, &info)
	if info.User != "alice" || info.Role != RoleAdmin || info.Via != "token" || info.ReadOnly {
		t.Errorf("session info %+v", info)
	}

	w = e.do(req{method: "PUT", path: "/api/v1/policy", body: PolicyDoc{}, bearer: readOnly})
	if w.Code != http.StatusForbidden {
		t.Errorf("PUT policy with read-only token: %d", w.Code)
	}
	if w := e.do(req{method: "GET", path: "/api/v1/policy", bearer: readOnly}); w.Code != http.StatusOK {
		t.Errorf("GET policy with read-only token: %d", w.Code)
	}
	if w := e.do(req{method: "GET", path: "/api/v1/policy", bearer: disabled}); w.Code != http.StatusUnauthorized {
		t.Errorf("token of a disabled account: %d", w.Code)
	}
	// Tokens cannot manage tokens.
	w = e.do(req{method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "more"}, bearer: admin})
	if w.Code != http.StatusForbidden {
		t.Errorf("creating a token with a token: %d", w.Code)
	}
	// Expired: the store says so, and webui checks as well.
	e.clock.Advance(time.Hour)
	if w := e.do(req{method: "GET", path: "/api/v1/policy", bearer: admin}); w.Code != http.StatusUnauthorized {
		t.Errorf("expired token: %d", w.Code)
	}
	// Even when a store gets expiry wrong.
	e.tokens.mu.Lock()
	e.tokens.lax = true
	e.tokens.mu.Unlock()
	if w := e.do(req{method: "GET", path: "/api/v1/policy", bearer: admin}); w.Code != http.StatusUnauthorized {
		t.Errorf("expired token from a lax store: %d", w.Code)
	}
}

func TestTokenLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	cookie, csrf := e.login("alice")
	w := e.do(req{method: "POST", path: "/api/v1/tokens", cookie: cookie, csrf: csrf,
		body: map[string]any{"name": "ci <b>", "read_only": true, "expires_in": "30d"}})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var tok struct {
		ID, Name, User, Secret string
		ReadOnly               bool `json:"read_only"`
		Expires                time.Time
	}
	decode(t, w, &tok)
	if !strings.HasPrefix(tok.Secret, TokenPrefix) || len(tok.Secret) != len(TokenPrefix)+43 || tok.User != "alice" || !tok.ReadOnly {
		t.Fatalf("token %+v", tok)
	}
	if want := e.clock.Now().Add(30 * 24 * time.Hour); !tok.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", tok.Expires, want)
	}
	stored, key, ok := e.tokens.byID(tok.ID)
	if !ok || key != sha256Sum(tok.Secret) || stored.Name != "ci <b>" {
		t.Fatalf("stored %+v under the wrong key or not at all", stored)
	}
	if ev := e.audit.byAction("token_create"); len(ev) != 1 || ev[0].User != "alice" || strings.Contains(ev[0].Detail, tok.Secret) {
		t.Errorf("audit %+v", ev)
	}
	// The secret works, read-only.
	w = e.do(req{method: "GET", path: "/api/v1/session", bearer: tok.Secret})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"read_only":true`) {
		t.Errorf("using the token: %d %s", w.Code, w.Body)
	}
	// Listed without the secret.
	w = e.do(req{method: "GET", path: "/api/v1/tokens", cookie: cookie})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), tok.ID) || strings.Contains(w.Body.String(), tok.Secret) ||
		strings.Contains(w.Body.String(), "secret") {
		t.Errorf("list: %d %s", w.Code, w.Body)
	}
	// Bad requests.
	for _, body := range []any{
		map[string]any{"name": ""},
		map[string]any{"name": "x", "expires_in": "forever"},
		map[string]any{"name": "x", "expires_in": "400d"},
		map[string]any{"name": "x", "expires_in": 1},
		map[string]any{"name": "x", "expires_in": true},
		map[string]any{"name": "x\n"},
		map[string]any{"name": "x", "user": "bob"},
	} {
		w := e.do(req{method: "POST", path: "/api/v1/tokens", cookie: cookie, csrf: csrf, body: body})
		if w.Code != http.StatusBadRequest {
			t.Errorf("create %v: %d %s", body, w.Code, w.Body)
		}
	}
	// Delete, twice.
	w = e.do(req{method: "DELETE", path: "/api/v1/tokens/" + tok.ID, cookie: cookie, csrf: csrf})
	if w.Code != http.StatusOK {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if w := e.do(req{method: "GET", path: "/api/v1/session", bearer: tok.Secret}); w.Code != http.StatusUnauthorized {
		t.Errorf("deleted token still works: %d", w.Code)
	}
	w = e.do(req{method: "DELETE", path: "/api/v1/tokens/" + tok.ID, cookie: cookie, csrf: csrf})
	if w.Code != http.StatusNotFound {
		t.Errorf("second delete: %d", w.Code)
	}
	if len(e.audit.byAction("token_delete")) != 1 {
		t.Errorf("token_delete recorded %d times", len(e.audit.byAction("token_delete")))
	}
	// Auditors list their own tokens only; admins every token.
	ac, _ := e.login("audrey")
	e.do(req{method: "GET", path: "/api/v1/tokens", cookie: ac})
	e.tokens.mu.Lock()
	users := append([]string(nil), e.tokens.listUser...)
	e.tokens.mu.Unlock()
	if len(users) != 2 || users[0] != "" || users[1] != "audrey" {
		t.Errorf("Tokens called for %q", users)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Secure = true })
	cookie, _ := e.login("alice")
	for _, r := range []req{
		{method: "GET", path: "/login"},
		{method: "GET", path: "/", cookie: cookie},
		{method: "GET", path: "/"},
		{method: "GET", path: "/api/v1/logs", cookie: cookie},
		{method: "GET", path: "/api/v1/logs"},
		{method: "GET", path: "/api/v1/nope", cookie: cookie},
		{method: "PATCH", path: "/api/v1/policy", cookie: cookie},
		{method: "GET", path: "/static/login.js"},
		{method: "GET", path: "/healthz"},
		{method: "GET", path: "/nope"},
	} {
		w := e.do(r)
		h := w.Header()
		if h.Get("Content-Security-Policy") != contentSecurityPolicy {
			t.Errorf("%s %s: CSP %q", r.method, r.path, h.Get("Content-Security-Policy"))
		}
		for k, v := range map[string]string{
			"X-Content-Type-Options":    "nosniff",
			"Referrer-Policy":           "no-referrer",
			"X-Frame-Options":           "DENY",
			"Strict-Transport-Security": "max-age=31536000",
		} {
			if h.Get(k) != v {
				t.Errorf("%s %s: %s %q", r.method, r.path, k, h.Get(k))
			}
		}
		if !strings.HasPrefix(r.path, "/static/") && h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", r.method, r.path, h.Get("Cache-Control"))
		}
	}
	if !strings.Contains(contentSecurityPolicy, "script-src 'self';") || strings.Contains(contentSecurityPolicy, "unsafe") {
		t.Error("CSP is not strict")
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, nil)
	admin := e.token("alice", false, e.clock.Now().Add(time.Hour))
	big := `{"rules":[],"categories":[],"version":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	// With Content-Length: refused before anything reads it.
	w := e.do(req{method: "PUT", path: "/api/v1/policy", body: big, bearer: admin})
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("with Content-Length: %d", w.Code)
	}
	// Without (chunked): refused while reading.
	hr := httptest.NewRequest("PUT", "/api/v1/policy", io.MultiReader(strings.NewReader(big)))
	hr.ContentLength = -1
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+admin)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: %d %s", rec.Code, rec.Body)
	}
	// The login too.
	w = e.do(req{method: "POST", path: "/api/v1/session", body: bytes.Repeat([]byte(" "), MaxBodyBytes+1)})
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("login: %d", w.Code)
	}
	if e.policy.saveCount() != 0 {
		t.Error("saved")
	}
	// Just under the limit is fine.
	ok := `{"rules":[],"categories":[],"version":"` + strings.Repeat("x", MaxBodyBytes-100) + `"}`
	if w := e.do(req{method: "PUT", path: "/api/v1/policy", body: ok, bearer: admin}); w.Code != http.StatusOK {
		t.Errorf("under the limit: %d %s", w.Code, w.Body)
	}
}

func TestMissingDependencies(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Logs, o.Stats, o.Explainer, o.Policy, o.Tokens, o.Audit = nil, nil, nil, nil, nil, nil
	})
	cookie, csrf := e.login("alice")
	for _, r := range []req{
		{method: "GET", path: "/api/v1/logs"},
		{method: "GET", path: "/api/v1/stats"},
		{method: "GET", path: "/api/v1/explain?url=example.com"},
		{method: "GET", path: "/api/v1/policy"},
		{method: "PUT", path: "/api/v1/policy", body: PolicyDoc{}},
		{method: "GET", path: "/api/v1/tokens"},
		{method: "POST", path: "/api/v1/tokens", body: map[string]string{"name": "x"}},
		{method: "DELETE", path: "/api/v1/tokens/abc"},
	} {
		r.cookie, r.csrf = cookie, csrf
		w := e.do(r)
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s: %d, want 503", r.method, r.path, w.Code)
			continue
		}
		errorOf(t, w)
	}
	// Without sessions or accounts nobody logs in.
	for _, mod := range []func(*Options){
		func(o *Options) { o.Sessions = nil },
		func(o *Options) { o.Accounts = nil },
	} {
		e := newEnv(t, mod)
		w := e.do(req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": "alice", "password": passwords["alice"]}})
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("login without a store: %d", w.Code)
		}
	}
}

func TestStoreFailureIsNot401(t *testing.T) {
	e := newEnv(t, nil)
	cookie, _ := e.login("alice")
	e.accounts.mu.Lock()
	e.accounts.err = errBoom
	e.accounts.mu.Unlock()
	w := e.do(req{method: "GET", path: "/api/v1/session", cookie: cookie})
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if !strings.Contains(e.log.String(), "boom") {
		t.Error("the store's error was not logged")
	}
}

func TestRecovery(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.engine.GET("/api/v1/panic", func(c *gin.Context) { panic("kaputt") })
	e.srv.engine.GET("/abort", func(c *gin.Context) { panic(http.ErrAbortHandler) })
	w := e.do(req{method: "GET", path: "/api/v1/panic"})
	if w.Code != http.StatusInternalServerError || errorOf(t, w) != "internal error" {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if !strings.Contains(e.log.String(), "kaputt") {
		t.Error("panic not logged")
	}
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler passed on", v)
			}
		}()
		e.do(req{method: "GET", path: "/abort"})
	}()
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{SessionTTL: -1},
		{SessionIdle: -1},
		{LoginLimit: LoginLimit{Failures: -1}},
		{LoginLimit: LoginLimit{Window: -1}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.opts.SessionTTL != DefaultSessionTTL || s.opts.SessionIdle != DefaultSessionIdle ||
		s.opts.LoginLimit != (LoginLimit{DefaultLoginFailures, DefaultLoginWindow}) {
		t.Errorf("defaults %+v", s.opts)
	}
	// With nothing configured, everything is refused or unavailable.
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/logs", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("%d", w.Code)
	}
}
