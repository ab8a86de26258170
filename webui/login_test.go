package webui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func loginBody(user, pass string) map[string]string {
	return map[string]string{"username": user, "password": pass}
}

func TestLoginSetsASafeCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := newEnv(t, func(o *Options) { o.Secure = secure })
		w := e.do(req{method: "POST", path: "/api/v1/session", body: loginBody("alice", passwords["alice"]),
			remote: "192.0.2.7:5555", header: map[string]string{"User-Agent": "TestBrowser/1"}})
		if w.Code != http.StatusOK {
			t.Fatalf("login: %d %s", w.Code, w.Body)
		}
		var ck *http.Cookie
		for _, c := range w.Result().Cookies() {
			if c.Name == CookieName {
				ck = c
			}
		}
		if ck == nil {
			t.Fatal("no session cookie")
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure != secure {
			t.Errorf("cookie %+v (secure configured: %v)", ck, secure)
		}
		if !wellFormed(ck.Value) {
			t.Errorf("cookie value %q is not 32 random bytes in base64url", ck.Value)
		}
		raw := w.Header().Get("Set-Cookie")
		if !strings.Contains(raw, "HttpOnly") || !strings.Contains(raw, "SameSite=Strict") || strings.Contains(raw, "Secure") != secure {
			t.Errorf("Set-Cookie %q", raw)
		}
		var out struct{ User, Role, CSRF string }
		decode(t, w, &out)
		sess, ok := e.sessions.get(sha256Sum(ck.Value))
		if !ok {
			t.Fatal("session not stored under the SHA-256 of the cookie")
		}
		now := e.clock.Now()
		if out.User != "alice" || out.Role != RoleAdmin || out.CSRF == "" || out.CSRF != sess.CSRF {
			t.Errorf("answer %+v, session %+v", out, sess)
		}
		if sess.User != "alice" || sess.Client != "192.0.2.7" || sess.UserAgent != "TestBrowser/1" ||
			!sess.Created.Equal(now) || !sess.Expires.Equal(now.Add(DefaultSessionIdle)) {
			t.Errorf("session %+v", sess)
		}
		ev := e.audit.byAction("login")
		if len(ev) != 1 || ev[0].User != "alice" || ev[0].Client != "192.0.2.7" || ev[0].Status != 200 || ev[0].Kind != "admin" {
			t.Errorf("audit %+v", ev)
		}
		// The session works, and GET /api/v1/session tells who.
		w = e.do(req{method: "GET", path: "/api/v1/session", cookie: ck.Value})
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"csrf":"`+out.CSRF+`"`) {
			t.Errorf("session info: %d %s", w.Code, w.Body)
		}
	}
}

func TestLoginFailures(t *testing.T) {
	e := newEnv(t, nil)
	for name, tc := range map[string]struct {
		body   any
		header map[string]string
		noType bool
		want   int
	}{
		"wrong password":   {body: loginBody("alice", "nope"), want: 401},
		"unknown user":     {body: loginBody("mallory", "x"), want: 401},
		"disabled":         {body: loginBody("dora", passwords["dora"]), want: 401},
		"empty password":   {body: loginBody("alice", ""), want: 400},
		"no body":          {body: "", want: 400},
		"malformed":        {body: `{"username":`, want: 400},
		"unknown field":    {body: `{"username":"a","password":"b","remember":true}`, want: 400},
		"two values":       {body: `{"username":"a","password":"b"}{}`, want: 400},
		"wrong type":       {body: `{"username":1,"password":"b"}`, want: 400},
		"form data":        {body: "username=alice&password=x", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, noType: true, want: 415},
		"text/plain":       {body: `{"username":"alice","password":"x"}`, header: map[string]string{"Content-Type": "text/plain"}, noType: true, want: 415},
		"no content type":  {body: `{"username":"alice","password":"x"}`, noType: true, want: 415},
		"cross-site fetch": {body: loginBody("alice", passwords["alice"]), header: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: 403},
		"same-site fetch":  {body: loginBody("alice", passwords["alice"]), header: map[string]string{"Sec-Fetch-Site": "same-site"}, want: 403},
		"foreign origin":   {body: loginBody("alice", passwords["alice"]), header: map[string]string{"Origin": "https://evil.example"}, want: 403},
		"null origin":      {body: loginBody("alice", passwords["alice"]), header: map[string]string{"Origin": "null"}, want: 403},
	} {
		t.Run(name, func(t *testing.T) {
			w := e.do(req{method: "POST", path: "/api/v1/session", body: tc.body, header: tc.header, noType: tc.noType,
				remote: "198.51.100." + strconv.Itoa(len(name)) + ":1"})
			if w.Code != tc.want {
				t.Fatalf("%d, want %d: %s", w.Code, tc.want, w.Body)
			}
			msg := errorOf(t, w)
			if tc.want == 401 && msg != "wrong user name or password" {
				t.Errorf("401 message %q tells too much", msg)
			}
			if len(w.Result().Cookies()) != 0 {
				t.Error("cookie set on a failed login")
			}
		})
	}
	// Same-origin requests, as browsers send them, are fine.
	w := e.do(req{method: "POST", path: "/api/v1/session", body: loginBody("alice", passwords["alice"]),
		header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://example.com"}})
	if w.Code != http.StatusOK {
		t.Errorf("same-origin login: %d %s", w.Code, w.Body)
	}
	// Failures are recorded, with the reason, never with the password.
	failed := e.audit.byAction("login_failed")
	reasons := map[string]bool{}
	for _, ev := range failed {
		reasons[ev.Error] = true
		if ev.Status != 401 {
			t.Errorf("failed login recorded with status %d", ev.Status)
		}
	}
	for _, r := range []string{"wrong password", "unknown user", "account disabled"} {
		if !reasons[r] {
			t.Errorf("no failed login recorded for %q: %v", r, reasons)
		}
	}
	all, _ := json.Marshal(e.audit.all())
	for _, p := range append([]string{"nope"}, passwords["alice"], passwords["dora"]) {
		if bytes.Contains(all, []byte(p)) {
			t.Errorf("password %q in the audit trail", p)
		}
	}
	if strings.Contains(e.log.String(), passwords["alice"]) {
		t.Error("password in the log")
	}
}

func TestLoginThrottling(t *testing.T) {
	e := newEnv(t, nil)
	const ip = "203.0.113.9:4000"
	login := func(user, pass, remote string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/v1/session", body: loginBody(user, pass), remote: remote})
	}
	for i := range DefaultLoginFailures {
		if w := login("alice", "wrong", ip); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, w.Code)
		}
		e.clock.Advance(time.Second)
	}
	// Limited: even the right password is refused, with Retry-After.
	w := login("alice", passwords["alice"], ip)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d", DefaultLoginFailures, w.Code)
	}
	ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || ra != int((DefaultLoginWindow-DefaultLoginFailures*time.Second).Seconds()) {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	// Per user name: another address does not help.
	if w := login("alice", passwords["alice"], "192.0.2.200:1"); w.Code != http.StatusTooManyRequests {
		t.Errorf("alice from elsewhere: %d", w.Code)
	}
	// Per address: another name from it does not help either.
	if w := login("audrey", passwords["audrey"], ip); w.Code != http.StatusTooManyRequests {
		t.Errorf("audrey from the same address: %d", w.Code)
	}
	// The limit hit is recorded once; throttled attempts are not.
	var throttled int
	for _, ev := range e.audit.byAction("login_failed") {
		if strings.Contains(ev.Detail, "throttled") {
			throttled++
		}
	}
	if throttled != 1 || len(e.audit.byAction("login_failed")) != DefaultLoginFailures {
		t.Errorf("%d failures recorded, %d throttled", len(e.audit.byAction("login_failed")), throttled)
	}
	// After the window, the right password works again.
	e.clock.Advance(time.Duration(ra) * time.Second)
	if w := login("alice", passwords["alice"], ip); w.Code != http.StatusOK {
		t.Errorf("after the window: %d %s", w.Code, w.Body)
	}
}

func TestLoginThrottlingPerAddress(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.LoginLimit = LoginLimit{Failures: 3, Window: time.Minute} })
	// Spraying many names from one IPv6 /64, changing the address inside it.
	for i := range 3 {
		w := e.do(req{method: "POST", path: "/api/v1/session", body: loginBody("user"+strconv.Itoa(i), "pw"),
			remote: "[2001:db8:1:2::" + strconv.Itoa(i+1) + "]:443"})
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
	w := e.do(req{method: "POST", path: "/api/v1/session", body: loginBody("alice", passwords["alice"]), remote: "[2001:db8:1:2::99]:443"})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" {
		t.Errorf("same /64: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// Another /64 and a success clear nothing for the first one.
	if w := e.do(req{method: "POST", path: "/api/v1/session", body: loginBody("alice", passwords["alice"]), remote: "[2001:db8:1:3::1]:443"}); w.Code != http.StatusOK {
		t.Errorf("other /64: %d", w.Code)
	}
}

func TestUnknownUserTakesTheBcryptPath(t *testing.T) {
	e := newEnv(t, nil)
	var mu sync.Mutex
	var compared [][]byte
	e.srv.compare = func(hash, pw []byte) error {
		mu.Lock()
		compared = append(compared, hash)
		mu.Unlock()
		return bcryptCompare(hash, pw)
	}
	for _, user := range []string{"mallory", "dora", "alice"} {
		mu.Lock()
		compared = nil
		mu.Unlock()
		start := time.Now()
		w := e.do(req{method: "POST", path: "/api/v1/session", body: loginBody(user, "wrong-password"), remote: "192.0.2." + strconv.Itoa(len(user)) + ":1"})
		took := time.Since(start)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: %d", user, w.Code)
		}
		mu.Lock()
		n := len(compared)
		var first []byte
		if n > 0 {
			first = compared[0]
		}
		mu.Unlock()
		if n != 1 {
			t.Fatalf("%s: %d bcrypt comparisons, want 1", user, n)
		}
		if user != "alice" {
			if !bytes.Equal(first, dummyHash()) {
				t.Errorf("%s: compared against %q, not the dummy hash", user, first)
			}
			// The dummy hash costs as much as a real one (DefaultCost),
			// which takes measurable time.
			if took < time.Millisecond {
				t.Errorf("%s: took only %v", user, took)
			}
		}
	}
	cost, err := bcrypt.Cost(dummyHash())
	if err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("dummy hash cost %d (%v)", cost, err)
	}
}

func TestSessionLifetime(t *testing.T) {
	e := newEnv(t, nil)
	cookie, _ := e.login("alice")
	get := func() int { return e.do(req{method: "GET", path: "/api/v1/session", cookie: cookie}).Code }
	// Used every 50 minutes, it lives until the absolute limit.
	start := e.clock.Now()
	for e.clock.Now().Sub(start) < DefaultSessionTTL-50*time.Minute {
		e.clock.Advance(50 * time.Minute)
		if c := get(); c != http.StatusOK {
			t.Fatalf("after %v: %d", e.clock.Now().Sub(start), c)
		}
	}
	e.sessions.mu.Lock()
	touches := e.sessions.touches
	e.sessions.mu.Unlock()
	if touches == 0 {
		t.Error("session never touched")
	}
	e.clock.Advance(50 * time.Minute) // past 8h
	if c := get(); c != http.StatusUnauthorized {
		t.Errorf("past the absolute lifetime: %d", c)
	}
	// Even when a store gets expiry wrong, for idle and absolute expiry.
	e.sessions.mu.Lock()
	e.sessions.lax = true
	e.sessions.mu.Unlock()
	if c := get(); c != http.StatusUnauthorized {
		t.Errorf("past the absolute lifetime, lax store: %d", c)
	}
	cookie, _ = e.login("alice")
	e.clock.Advance(DefaultSessionIdle + time.Second)
	if c := get(); c != http.StatusUnauthorized {
		t.Errorf("idle, lax store: %d", c)
	}
	e.sessions.mu.Lock()
	e.sessions.lax = false
	e.sessions.mu.Unlock()
	// Idle for longer than SessionIdle: gone.
	cookie, _ = e.login("alice")
	e.clock.Advance(DefaultSessionIdle + time.Second)
	if c := get(); c != http.StatusUnauthorized {
		t.Errorf("idle: %d", c)
	}
	// A disabled account's session stops at once.
	cookie, _ = e.login("alice")
	a, _ := e.accounts.Account(t.Context(), "alice")
	a.Disabled = true
	e.accounts.set(a)
	if c := get(); c != http.StatusUnauthorized {
		t.Errorf("disabled account: %d", c)
	}
	a.Disabled = false
	e.accounts.set(a)
	// A role change takes effect at once too.
	cookie, csrf := e.login("alice")
	a.Role = RoleAuditor
	e.accounts.set(a)
	w := e.do(req{method: "PUT", path: "/api/v1/policy", body: PolicyDoc{}, cookie: cookie, csrf: csrf})
	if w.Code != http.StatusForbidden {
		t.Errorf("demoted admin: %d", w.Code)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, nil)
	cookie, csrf := e.login("audrey")
	w := e.do(req{method: "DELETE", path: "/api/v1/session", cookie: cookie, csrf: csrf})
	if w.Code != http.StatusOK {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	var cleared bool
	for _, c := range w.Result().Cookies() {
		cleared = cleared || (c.Name == CookieName && c.MaxAge < 0 && c.Value == "")
	}
	if !cleared {
		t.Error("cookie not cleared")
	}
	if e.sessions.count() != 0 {
		t.Error("session not deleted")
	}
	if w := e.do(req{method: "GET", path: "/api/v1/session", cookie: cookie}); w.Code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", w.Code)
	}
	if ev := e.audit.byAction("logout"); len(ev) != 1 || ev[0].User != "audrey" {
		t.Errorf("audit %+v", ev)
	}
	// A new login replaces a session the browser still has.
	c1, _ := e.login("alice")
	w = e.do(req{method: "POST", path: "/api/v1/session", body: loginBody("alice", passwords["alice"]), cookie: c1})
	if w.Code != http.StatusOK || e.sessions.count() != 1 {
		t.Errorf("re-login: %d, %d sessions", w.Code, e.sessions.count())
	}
	// Logging out with a token is not a thing.
	tok := e.token("alice", false, e.clock.Now().Add(time.Hour))
	if w := e.do(req{method: "DELETE", path: "/api/v1/session", bearer: tok}); w.Code != http.StatusBadRequest {
		t.Errorf("token logout: %d", w.Code)
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2, time.Minute)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if l.retryAfter("k", t0) != 0 {
		t.Fatal("limited before any failure")
	}
	if l.fail("k", t0) {
		t.Error("limited after one failure")
	}
	if !l.fail("k", t0.Add(10*time.Second)) {
		t.Error("not limited after two failures")
	}
	if d := l.retryAfter("k", t0.Add(20*time.Second)); d != 40*time.Second {
		t.Errorf("retry after %v", d)
	}
	// Sliding: the first failure leaves the window, the second has not.
	if d := l.retryAfter("k", t0.Add(61*time.Second)); d != 0 {
		t.Errorf("retry after %v at 61s", d)
	}
	if !l.fail("k", t0.Add(62*time.Second)) {
		t.Error("not limited again")
	}
	l.reset("k")
	if l.retryAfter("k", t0.Add(63*time.Second)) != 0 {
		t.Error("limited after reset")
	}
	if len(l.fails) != 0 {
		t.Errorf("keys left: %v", l.fails)
	}
	for in, want := range map[string]string{
		"192.0.2.1:80":              "c:192.0.2.1",
		"[::ffff:192.0.2.1]:80":     "c:192.0.2.1",
		"[2001:db8::1]:80":          "c:2001:db8::/64",
		"[2001:db8::abcd:1%eth0]:1": "c:2001:db8::/64",
		"pipe":                      "c:pipe",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}
