package webui

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fakeUsers is an in-memory UserStore over the env's accounts and
// sessions; it enforces the last-admin rule.
type fakeUsers struct {
	accounts *fakeAccounts
	sessions *fakeSessions

	mu        sync.Mutex
	deleteErr error    // returned by DeleteAccount when set
	ended     []string // the user of every DeleteSessions call
}

func enabledAdmins(m map[string]Account) int {
	n := 0
	for _, a := range m {
		if a.Role == RoleAdmin && !a.Disabled {
			n++
		}
	}
	return n
}

func (f *fakeUsers) Accounts(context.Context) ([]Account, error) {
	f.accounts.mu.Lock()
	defer f.accounts.mu.Unlock()
	var out []Account
	for _, a := range f.accounts.accts {
		out = append(out, a)
	}
	return out, nil
}

func (f *fakeUsers) CreateAccount(_ context.Context, a Account) error {
	f.accounts.mu.Lock()
	defer f.accounts.mu.Unlock()
	if _, ok := f.accounts.accts[a.Name]; ok {
		return fmt.Errorf("account %s: %w", a.Name, ErrConflict)
	}
	f.accounts.accts[a.Name] = a
	return nil
}

func (f *fakeUsers) UpdateAccount(_ context.Context, a Account) error {
	f.accounts.mu.Lock()
	defer f.accounts.mu.Unlock()
	old, ok := f.accounts.accts[a.Name]
	if !ok {
		return fmt.Errorf("account %s: %w", a.Name, ErrNotFound)
	}
	f.accounts.accts[a.Name] = a
	if enabledAdmins(f.accounts.accts) == 0 {
		f.accounts.accts[a.Name] = old
		return fmt.Errorf("account %s: %w", a.Name, ErrLastAdmin)
	}
	return nil
}

func (f *fakeUsers) DeleteAccount(_ context.Context, name string) error {
	f.mu.Lock()
	err := f.deleteErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.accounts.mu.Lock()
	defer f.accounts.mu.Unlock()
	old, ok := f.accounts.accts[name]
	if !ok {
		return fmt.Errorf("account %s: %w", name, ErrNotFound)
	}
	delete(f.accounts.accts, name)
	if enabledAdmins(f.accounts.accts) == 0 {
		f.accounts.accts[name] = old
		return fmt.Errorf("account %s: %w", name, ErrLastAdmin)
	}
	return nil
}

func (f *fakeUsers) DeleteSessions(_ context.Context, user string) error {
	f.mu.Lock()
	f.ended = append(f.ended, user)
	f.mu.Unlock()
	f.sessions.mu.Lock()
	defer f.sessions.mu.Unlock()
	for k, s := range f.sessions.sessions {
		if s.User == user {
			delete(f.sessions.sessions, k)
		}
	}
	return nil
}

func (f *fakeUsers) endedFor() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ended...)
}

// newUsersEnv is an env with a fakeUsers over its accounts and sessions.
func newUsersEnv(t *testing.T) (*env, *fakeUsers) {
	t.Helper()
	fu := &fakeUsers{}
	e := newEnv(t, func(o *Options) {
		fu.accounts = o.Accounts.(*fakeAccounts)
		fu.sessions = o.Sessions.(*fakeSessions)
		o.Users = fu
	})
	return e, fu
}

// loginPW tries to log user in with pw; it returns the status and, on
// success, the cookie value and CSRF token.
func (e *env) loginPW(user, pw string) (code int, cookie, csrf string) {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": user, "password": pw}})
	if w.Code != http.StatusOK {
		return w.Code, "", ""
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			cookie = c.Value
		}
	}
	var out struct{ CSRF string }
	decode(e.t, w, &out)
	return w.Code, cookie, out.CSRF
}

// addUser adds an account directly, hashed at the lowest cost.
func (e *env) addUser(name, role, pw string) {
	e.t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		e.t.Fatal(err)
	}
	e.accounts.set(Account{Name: name, Role: role, PasswordHash: string(h)})
}

// works reports whether cookie still authenticates.
func (e *env) works(cookie string) bool {
	e.t.Helper()
	w := e.do(req{method: "GET", path: "/api/v1/session", cookie: cookie})
	switch w.Code {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	}
	e.t.Fatalf("GET /api/v1/session: %d %s", w.Code, w.Body)
	return false
}

// noSecrets fails when any recorded event or log line holds one of pws.
func (e *env) noSecrets(pws ...string) {
	e.t.Helper()
	for _, ev := range e.audit.all() {
		s := fmt.Sprintf("%+v", ev)
		for _, pw := range pws {
			if strings.Contains(s, pw) {
				e.t.Errorf("event holds a password: %s", s)
			}
		}
	}
	for _, pw := range pws {
		if strings.Contains(e.log.String(), pw) {
			e.t.Errorf("log holds a password %q", pw)
		}
	}
}

func TestUsersList(t *testing.T) {
	e, _ := newUsersEnv(t)
	for _, user := range []string{"alice", "audrey"} {
		cookie, _ := e.login(user)
		w := e.do(req{method: "GET", path: "/api/v1/users", cookie: cookie})
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", user, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "$2a$") || strings.Contains(strings.ToLower(w.Body.String()), "hash") {
			t.Errorf("list shows hashes: %s", w.Body)
		}
		var out struct {
			Users []struct {
				Name, Role string
				Disabled   bool
			}
		}
		decode(t, w, &out)
		if len(out.Users) != 4 || out.Users[1].Name != "alice" || out.Users[1].Role != RoleAdmin ||
			out.Users[3].Name != "dora" || !out.Users[3].Disabled || out.Users[0].Name != "<script>alert(1)</script>" {
			t.Errorf("list %+v", out.Users)
		}
	}
	cookie, _ := e.login("alice")
	if w := e.do(req{method: "GET", path: "/api/v1/users?x=1", cookie: cookie}); w.Code != http.StatusBadRequest {
		t.Errorf("with a parameter: %d", w.Code)
	}
}

func TestUsersCreate(t *testing.T) {
	e, _ := newUsersEnv(t)
	cookie, csrf := e.login("alice")
	create := func(body any) (int, string) {
		w := e.do(req{method: "POST", path: "/api/v1/users", cookie: cookie, csrf: csrf, body: body})
		if w.Code >= 400 {
			return w.Code, errorOf(t, w)
		}
		return w.Code, w.Body.String()
	}
	const pw = "bob-long-password"
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"role": "admin", "password": pw}, "name"},
		{map[string]any{"name": "bo b", "role": "admin", "password": pw}, "name"},
		{map[string]any{"name": "<b>", "role": "admin", "password": pw}, "name"},
		{map[string]any{"name": strings.Repeat("b", 65), "role": "admin", "password": pw}, "name"},
		{map[string]any{"name": "bob", "role": "root", "password": pw}, "role"},
		{map[string]any{"name": "bob", "password": pw}, "role"},
		{map[string]any{"name": "bob", "role": "admin"}, "password"},
		{map[string]any{"name": "bob", "role": "admin", "password": "eleven-char"}, "password"},
		{map[string]any{"name": "bob", "role": "admin", "password": strings.Repeat("é", 11)}, "password"},
		{map[string]any{"name": "bob", "role": "admin", "password": strings.Repeat("x", 73)}, "password"},
		{map[string]any{"name": "bob", "role": "admin", "password": pw, "disabled": true}, "disabled"},
		{map[string]any{"name": 1, "role": "admin", "password": pw}, "name"},
	} {
		code, msg := create(tc.body)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.field) {
			t.Errorf("create %v: %d %q, want 400 naming %s", tc.body, code, msg, tc.field)
		}
	}
	if len(e.audit.byAction("user_create")) != 0 {
		t.Error("refused creations recorded")
	}

	code, body := create(map[string]any{"name": "bob.smith@example-1_x", "role": "auditor", "password": pw})
	if code != http.StatusCreated || strings.Contains(body, "$2a$") {
		t.Fatalf("create: %d %s", code, body)
	}
	a, err := e.accounts.Account(context.Background(), "bob.smith@example-1_x")
	if err != nil || a.Role != RoleAuditor || a.Disabled {
		t.Fatalf("stored %+v %v", a, err)
	}
	if cost, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("hash cost %d %v", cost, err)
	}
	// The new account logs in with its password, and only with it.
	if code, _, _ := e.loginPW("bob.smith@example-1_x", pw); code != http.StatusOK {
		t.Errorf("login of the new account: %d", code)
	}
	if code, _, _ := e.loginPW("bob.smith@example-1_x", pw+"x"); code != http.StatusUnauthorized {
		t.Errorf("login with a wrong password: %d", code)
	}
	// 12 characters of 2 bytes each and exactly 72 bytes are fine.
	for name, p := range map[string]string{"c1": strings.Repeat("é", 12), "c2": strings.Repeat("x", 72)} {
		if code, msg := create(map[string]any{"name": name, "role": "admin", "password": p}); code != http.StatusCreated {
			t.Errorf("create %s: %d %s", name, code, msg)
		}
	}
	// A name that exists.
	if code, msg := create(map[string]any{"name": "alice", "role": "auditor", "password": pw}); code != http.StatusConflict || !strings.Contains(msg, "exists") {
		t.Errorf("duplicate: %d %q", code, msg)
	}
	if a, _ := e.accounts.Account(context.Background(), "alice"); a.Role != RoleAdmin {
		t.Error("the existing account was changed")
	}
	ev := e.audit.byAction("user_create")
	if len(ev) != 4 || ev[0].User != "alice" || ev[0].Status != http.StatusCreated ||
		!strings.Contains(ev[0].Detail, `"name":"bob.smith@example-1_x"`) || ev[3].Status != http.StatusConflict {
		t.Errorf("audit %+v", ev)
	}
	e.noSecrets(pw, strings.Repeat("é", 12), strings.Repeat("x", 72), "$2a$")
}

func TestUsersPatchEndsSessions(t *testing.T) {
	e, fu := newUsersEnv(t)
	const bobPW = "bob-first-password"
	e.addUser("bob", RoleAdmin, bobPW)
	cookie, csrf := e.login("alice")
	patch := func(name string, body any) (int, string) {
		t.Helper()
		w := e.do(req{method: "PATCH", path: "/api/v1/users/" + name, cookie: cookie, csrf: csrf, body: body})
		if w.Code >= 400 {
			return w.Code, errorOf(t, w)
		}
		return w.Code, w.Body.String()
	}
	bobLogin := func(pw string) string {
		t.Helper()
		code, c, _ := e.loginPW("bob", pw)
		if code != http.StatusOK {
			t.Fatalf("bob login: %d", code)
		}
		return c
	}

	// Role.
	bob := bobLogin(bobPW)
	if code, body := patch("bob", map[string]any{"role": "auditor"}); code != http.StatusOK || !strings.Contains(body, `"role":"auditor"`) {
		t.Fatalf("role: %d %s", code, body)
	}
	if e.works(bob) {
		t.Error("bob's session survived a role change")
	}
	if !e.works(cookie) {
		t.Error("alice's session ended")
	}
	// Password.
	bob = bobLogin(bobPW)
	const newPW = "bob-second-password"
	if code, body := patch("bob", map[string]any{"password": newPW}); code != http.StatusOK {
		t.Fatalf("password: %d %s", code, body)
	}
	if e.works(bob) {
		t.Error("bob's session survived a password change")
	}
	if code, _, _ := e.loginPW("bob", bobPW); code != http.StatusUnauthorized {
		t.Errorf("old password: %d", code)
	}
	bob = bobLogin(newPW)
	// Disabled, then enabled again.
	if code, body := patch("bob", map[string]any{"disabled": true}); code != http.StatusOK || !strings.Contains(body, `"disabled":true`) {
		t.Fatalf("disable: %d %s", code, body)
	}
	e.accounts.mu.Lock()
	e.accounts.accts["bob"] = Account{Name: "bob", Role: RoleAuditor, PasswordHash: e.accounts.accts["bob"].PasswordHash} // enabled behind webui's back
	e.accounts.mu.Unlock()
	if e.works(bob) {
		t.Error("bob's session survived being disabled")
	}
	if ended := fu.endedFor(); len(ended) != 3 || ended[0] != "bob" || ended[2] != "bob" {
		t.Errorf("DeleteSessions calls %q", ended)
	}
	// Setting what is already there changes nothing and ends nothing.
	bob = bobLogin(newPW)
	if code, body := patch("bob", map[string]any{"role": "auditor", "disabled": false}); code != http.StatusOK {
		t.Fatalf("no-op: %d %s", code, body)
	}
	if !e.works(bob) || len(fu.endedFor()) != 3 {
		t.Error("a change that changed nothing ended sessions")
	}

	// Errors.
	for _, tc := range []struct {
		name string
		body any
		code int
		msg  string
	}{
		{"nobody", map[string]any{"role": "admin"}, http.StatusNotFound, "nobody"},
		{"bob", map[string]any{}, http.StatusBadRequest, "nothing to change"},
		{"bob", map[string]any{"role": "root"}, http.StatusBadRequest, "role"},
		{"bob", map[string]any{"password": "short"}, http.StatusBadRequest, "password"},
		{"bob", map[string]any{"disabled": "yes"}, http.StatusBadRequest, "disabled"},
		{"bob", map[string]any{"name": "robert"}, http.StatusBadRequest, "name"},
		{"alice", map[string]any{"role": "auditor"}, http.StatusConflict, "no enabled admin"},
		{"alice", map[string]any{"disabled": true}, http.StatusConflict, "no enabled admin"},
	} {
		if code, msg := patch(tc.name, tc.body); code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("patch %s %v: %d %q, want %d with %q", tc.name, tc.body, code, msg, tc.code, tc.msg)
		}
	}
	if a, _ := e.accounts.Account(context.Background(), "alice"); a.Role != RoleAdmin || a.Disabled {
		t.Errorf("last admin changed: %+v", a)
	}
	if !e.works(cookie) {
		t.Error("a refused change ended alice's session")
	}
	// Accounts made outside the API, with names the API would not give,
	// can be managed too.
	e.addUser("odd <name>", RoleAuditor, "odd-long-password")
	if code, msg := patch("odd%20%3Cname%3E", map[string]any{"disabled": true}); code != http.StatusOK {
		t.Errorf("patch odd name: %d %s", code, msg)
	}
	ev := e.audit.byAction("user_update")
	if len(ev) < 6 || ev[0].User != "alice" || !strings.Contains(ev[0].Detail, `"role":"auditor"`) ||
		!strings.Contains(ev[1].Detail, `"password_changed":true`) {
		t.Errorf("audit %+v", ev)
	}
	e.noSecrets(bobPW, newPW)
}

func TestUsersPatchOwnPassword(t *testing.T) {
	e, _ := newUsersEnv(t)
	cookie, csrf := e.login("alice")
	other, _ := e.login("alice")
	const newPW = "alice-new-password"
	w := e.do(req{method: "PATCH", path: "/api/v1/users/alice", cookie: cookie, csrf: csrf, body: map[string]any{"password": newPW}})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if !e.works(cookie) {
		t.Error("the caller's session ended")
	}
	if e.works(other) {
		t.Error("the other session survived")
	}
	// The kept session still changes things, with the same CSRF token.
	w = e.do(req{method: "POST", path: "/api/v1/users", cookie: cookie, csrf: csrf,
		body: map[string]any{"name": "bob", "role": "admin", "password": "bob-long-password"}})
	if w.Code != http.StatusCreated {
		t.Errorf("after: %d %s", w.Code, w.Body)
	}
	if code, _, _ := e.loginPW("alice", newPW); code != http.StatusOK {
		t.Errorf("new password: %d", code)
	}
	// Changing one's own role ends one's own sessions too.
	w = e.do(req{method: "PATCH", path: "/api/v1/users/alice", cookie: cookie, csrf: csrf, body: map[string]any{"role": "auditor"}})
	if w.Code != http.StatusOK {
		t.Fatalf("own role: %d %s", w.Code, w.Body)
	}
	if e.works(cookie) {
		t.Error("the caller's session survived their own role change")
	}
	e.noSecrets(newPW)
}

func TestUsersDelete(t *testing.T) {
	e, fu := newUsersEnv(t)
	e.addUser("bob", RoleAuditor, "bob-long-password")
	_, bob, _ := e.loginPW("bob", "bob-long-password")
	cookie, csrf := e.login("alice")
	del := func(name string) (int, string) {
		w := e.do(req{method: "DELETE", path: "/api/v1/users/" + name, cookie: cookie, csrf: csrf})
		if w.Code >= 400 {
			return w.Code, errorOf(t, w)
		}
		return w.Code, w.Body.String()
	}
	if code, msg := del("alice"); code != http.StatusConflict || !strings.Contains(msg, "your own") {
		t.Errorf("delete self: %d %q", code, msg)
	}
	if code, _ := del("nobody"); code != http.StatusNotFound {
		t.Errorf("delete unknown: %d", code)
	}
	if code, body := del("bob"); code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, err := e.accounts.Account(context.Background(), "bob"); err == nil {
		t.Error("bob still there")
	}
	if e.works(bob) {
		t.Error("bob's session survived")
	}
	if code, _ := del("bob"); code != http.StatusNotFound {
		t.Errorf("second delete: %d", code)
	}
	// The store refuses to delete the last admin (here: as if another
	// admin had just been disabled).
	fu.mu.Lock()
	fu.deleteErr = fmt.Errorf("account dora: %w", ErrLastAdmin)
	fu.mu.Unlock()
	if code, msg := del("dora"); code != http.StatusConflict || !strings.Contains(msg, "no enabled admin") {
		t.Errorf("last admin: %d %q", code, msg)
	}
	ev := e.audit.byAction("user_delete")
	if len(ev) != 2 || ev[0].Status != http.StatusOK || ev[0].Detail != `{"name":"bob"}` || ev[1].Status != http.StatusConflict {
		t.Errorf("audit %+v", ev)
	}
}

func TestUsersAuditorsAndTokens(t *testing.T) {
	e, _ := newUsersEnv(t)
	ac, acsrf := e.login("audrey")
	for _, r := range []req{
		{method: "POST", path: "/api/v1/users", body: map[string]any{"name": "eve", "role": "admin", "password": "eve-long-password"}},
		{method: "PATCH", path: "/api/v1/users/audrey", body: map[string]any{"role": "admin"}},
		{method: "DELETE", path: "/api/v1/users/alice"},
	} {
		r.cookie, r.csrf = ac, acsrf
		if w := e.do(r); w.Code != http.StatusForbidden {
			t.Errorf("auditor %s %s: %d", r.method, r.path, w.Code)
		}
	}
	if a, _ := e.accounts.Account(context.Background(), "audrey"); a.Role != RoleAuditor {
		t.Error("auditor promoted themselves")
	}
	// Even an admin's API token cannot manage accounts: a leaked token
	// must not be able to make a lasting account.
	tok := e.token("alice", false, e.clock.Now().Add(time.Hour))
	for _, r := range []req{
		{method: "POST", path: "/api/v1/users", body: map[string]any{"name": "eve", "role": "admin", "password": "eve-long-password"}},
		{method: "PATCH", path: "/api/v1/users/audrey", body: map[string]any{"disabled": true}},
		{method: "DELETE", path: "/api/v1/users/audrey"},
	} {
		r.bearer = tok
		if w := e.do(r); w.Code != http.StatusForbidden {
			t.Errorf("admin token %s %s: %d %s", r.method, r.path, w.Code, w.Body)
		}
	}
	if a, _ := e.accounts.Account(context.Background(), "audrey"); a.Disabled {
		t.Error("an API token changed an account")
	}
}

func TestPasswordChange(t *testing.T) {
	e, _ := newUsersEnv(t)
	cookie, csrf := e.login("audrey") // any role may change their own password
	other, _ := e.login("audrey")
	change := func(body any) (int, string) {
		t.Helper()
		w := e.do(req{method: "POST", path: "/api/v1/password", cookie: cookie, csrf: csrf, body: body})
		if w.Code >= 400 {
			return w.Code, errorOf(t, w)
		}
		return w.Code, w.Body.String()
	}
	const newPW = "audrey-new-password"
	if code, msg := change(map[string]any{"current": "not-the-password", "new": newPW}); code != http.StatusForbidden || !strings.Contains(msg, "current") {
		t.Errorf("wrong current: %d %q", code, msg)
	}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"new": newPW}, "current"},
		{map[string]any{"current": passwords["audrey"]}, "new"},
		{map[string]any{"current": passwords["audrey"], "new": "short"}, "new"},
		{map[string]any{"current": passwords["audrey"], "new": strings.Repeat("x", 73)}, "new"},
		{map[string]any{"current": passwords["audrey"], "new": newPW, "user": "alice"}, "user"},
	} {
		if code, msg := change(tc.body); code != http.StatusBadRequest || !strings.Contains(msg, tc.field) {
			t.Errorf("%v: %d %q, want 400 naming %s", tc.body, code, msg, tc.field)
		}
	}
	// Not with a token, not even an admin's, and not without the CSRF token.
	tok := e.token("alice", false, e.clock.Now().Add(time.Hour))
	w := e.do(req{method: "POST", path: "/api/v1/password", bearer: tok, body: map[string]any{"current": passwords["alice"], "new": newPW}})
	if w.Code != http.StatusForbidden {
		t.Errorf("with a token: %d %s", w.Code, w.Body)
	}
	w = e.do(req{method: "POST", path: "/api/v1/password", cookie: cookie, body: map[string]any{"current": passwords["audrey"], "new": newPW}})
	if w.Code != http.StatusForbidden {
		t.Errorf("without CSRF: %d %s", w.Code, w.Body)
	}

	if code, msg := change(map[string]any{"current": passwords["audrey"], "new": newPW}); code != http.StatusOK {
		t.Fatalf("change: %d %s", code, msg)
	}
	if !e.works(cookie) {
		t.Error("the caller's session ended")
	}
	if e.works(other) {
		t.Error("the other session survived")
	}
	if code, _, _ := e.loginPW("audrey", newPW); code != http.StatusOK {
		t.Errorf("login with the new password: %d", code)
	}
	if code, _, _ := e.loginPW("audrey", passwords["audrey"]); code != http.StatusUnauthorized {
		t.Errorf("login with the old password: %d", code)
	}
	if a, _ := e.accounts.Account(context.Background(), "alice"); bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(passwords["alice"])) != nil {
		t.Error("alice's password changed")
	}
	ev := e.audit.byAction("password_change")
	if len(ev) != 2 || ev[0].Status != http.StatusForbidden || ev[0].User != "audrey" || ev[1].Status != http.StatusOK {
		t.Errorf("audit %+v", ev)
	}
	e.noSecrets(newPW, passwords["audrey"], "not-the-password")

	// Wrong current passwords are throttled like failed logins (and count
	// with them).
	for i := range DefaultLoginFailures {
		if code, _ := change(map[string]any{"current": fmt.Sprint("guess-", i), "new": newPW + "2"}); code != http.StatusForbidden && code != http.StatusTooManyRequests {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code, _ := change(map[string]any{"current": newPW, "new": newPW + "2"}); code != http.StatusTooManyRequests {
		t.Errorf("after %d wrong guesses: %d, want 429", DefaultLoginFailures, code)
	}
}

func TestUsersUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	cookie, csrf := e.login("alice")
	for _, r := range []req{
		{method: "GET", path: "/api/v1/users"},
		{method: "POST", path: "/api/v1/users", body: map[string]any{"name": "bob", "role": "admin", "password": "bob-long-password"}},
		{method: "PATCH", path: "/api/v1/users/audrey", body: map[string]any{"disabled": true}},
		{method: "DELETE", path: "/api/v1/users/audrey"},
		{method: "POST", path: "/api/v1/password", body: map[string]any{"current": passwords["alice"], "new": "alice-new-password"}},
	} {
		r.cookie, r.csrf = cookie, csrf
		if w := e.do(r); w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s: %d, want 503", r.method, r.path, w.Code)
		}
	}
}
