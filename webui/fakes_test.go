package webui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"waygate/audit"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeAccounts is an in-memory AccountStore.
type fakeAccounts struct {
	mu    sync.Mutex
	accts map[string]Account
	err   error // returned by every lookup when set
}

func (f *fakeAccounts) Account(_ context.Context, name string) (Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Account{}, f.err
	}
	a, ok := f.accts[name]
	if !ok {
		return Account{}, ErrNotFound
	}
	return a, nil
}

func (f *fakeAccounts) set(a Account) {
	f.mu.Lock()
	f.accts[a.Name] = a
	f.mu.Unlock()
}

// fakeSessions is an in-memory SessionStore.
type fakeSessions struct {
	mu       sync.Mutex
	sessions map[[32]byte]Session
	touches  int
	deletes  int
	lax      bool // return expired sessions too (a buggy store)
}

func (f *fakeSessions) CreateSession(_ context.Context, key [32]byte, s Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[key] = s
	return nil
}

func (f *fakeSessions) Session(_ context.Context, key [32]byte, now time.Time) (Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[key]
	if !ok || (!f.lax && !now.Before(s.Expires)) {
		return Session{}, ErrNotFound
	}
	return s, nil
}

func (f *fakeSessions) TouchSession(_ context.Context, key [32]byte, lastSeen, expires time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[key]
	if !ok {
		return ErrNotFound
	}
	s.LastSeen, s.Expires = lastSeen, expires
	f.sessions[key] = s
	f.touches++
	return nil
}

func (f *fakeSessions) DeleteSession(_ context.Context, key [32]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, key)
	f.deletes++
	return nil
}

func (f *fakeSessions) get(key [32]byte) (Session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[key]
	return s, ok
}

func (f *fakeSessions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

// fakeTokens is an in-memory TokenStore; roles come from the accounts.
type fakeTokens struct {
	mu       sync.Mutex
	accounts *fakeAccounts
	tokens   map[[32]byte]Token
	listUser []string // the user argument of every Tokens call
	lax      bool     // return expired tokens too (a buggy store)
}

func (f *fakeTokens) CreateToken(_ context.Context, secret [32]byte, t Token) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[secret] = t
	return nil
}

func (f *fakeTokens) TokenBySecret(ctx context.Context, secret [32]byte, now time.Time) (Token, string, error) {
	f.mu.Lock()
	t, ok := f.tokens[secret]
	lax := f.lax
	f.mu.Unlock()
	if !ok || (!lax && !t.Expires.IsZero() && !now.Before(t.Expires)) {
		return Token{}, "", ErrNotFound
	}
	a, err := f.accounts.Account(ctx, t.User)
	if err != nil {
		return Token{}, "", err
	}
	return t, a.Role, nil
}

func (f *fakeTokens) Tokens(_ context.Context, user string) ([]Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listUser = append(f.listUser, user)
	var out []Token
	for _, t := range f.tokens {
		if user == "" || t.User == user {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeTokens) DeleteToken(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, t := range f.tokens {
		if t.ID == id {
			delete(f.tokens, k)
			return nil
		}
	}
	return ErrNotFound
}

func (f *fakeTokens) byID(id string) (Token, [32]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, t := range f.tokens {
		if t.ID == id {
			return t, k, true
		}
	}
	return Token{}, [32]byte{}, false
}

// fakeLogs records the queries it gets.
type fakeLogs struct {
	mu      sync.Mutex
	queries []LogQuery
	page    LogPage
	err     error
}

func (f *fakeLogs) Search(_ context.Context, q LogQuery) (LogPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	return f.page, f.err
}

func (f *fakeLogs) last(t *testing.T) LogQuery {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		t.Fatal("Search was not called")
	}
	return f.queries[len(f.queries)-1]
}

func (f *fakeLogs) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

type seriesCall struct {
	step         time.Duration
	since, until time.Time
}

type topCall struct {
	dim          string
	since, until time.Time
	n            int
}

// fakeStats records its calls.
type fakeStats struct {
	mu     sync.Mutex
	series []seriesCall
	tops   []topCall
}

func (f *fakeStats) Series(_ context.Context, step time.Duration, since, until time.Time) ([]StatsBucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.series = append(f.series, seriesCall{step, since, until})
	return []StatsBucket{{Start: since, Requests: 3, Blocked: 1, BytesIn: 10, BytesOut: 20}}, nil
}

func (f *fakeStats) Top(_ context.Context, dim string, since, until time.Time, n int) ([]StatsCount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tops = append(f.tops, topCall{dim, since, until, n})
	return []StatsCount{{Key: dim + "-1", Requests: 2}}, nil
}

// fakeExplainer records the requests it gets.
type fakeExplainer struct {
	mu   sync.Mutex
	reqs []ExplainRequest
}

func (f *fakeExplainer) Explain(_ context.Context, r ExplainRequest) (Explanation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
	return Explanation{Action: "block", Reason: "rule", Rule: "no-gambling", Categories: []string{"gambling"},
		Category: "gambling", Entry: "casino.example", Source: "inline", PolicyVersion: "v1", Host: r.Host}, nil
}

func (f *fakeExplainer) last(t *testing.T) ExplainRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("Explain was not called")
	}
	return f.reqs[len(f.reqs)-1]
}

type saveCall struct {
	author string
	doc    PolicyDoc
}

// fakePolicy keeps a policy document in memory.
type fakePolicy struct {
	mu       sync.Mutex
	doc      PolicyDoc
	problems []Problem
	saveErr  error
	saves    []saveCall
}

func (f *fakePolicy) Policy(context.Context) (PolicyDoc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.doc, nil
}

func (f *fakePolicy) Validate(context.Context, PolicyDoc) []Problem {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.problems
}

func (f *fakePolicy) Save(_ context.Context, author string, doc PolicyDoc) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves = append(f.saves, saveCall{author, doc})
	if f.saveErr != nil {
		return "", f.saveErr
	}
	doc.Version = "v2"
	f.doc = doc
	return "v2", nil
}

func (f *fakePolicy) saveCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.saves)
}

// fakeAudit records admin events.
type fakeAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (f *fakeAudit) Record(e *audit.Event) {
	f.mu.Lock()
	f.events = append(f.events, *e)
	f.mu.Unlock()
}

func (f *fakeAudit) byAction(action string) []audit.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []audit.Event
	for _, e := range f.events {
		if e.Method == action {
			out = append(out, e)
		}
	}
	return out
}

func (f *fakeAudit) all() []audit.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]audit.Event(nil), f.events...)
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Test accounts: user name -> password.
var passwords = map[string]string{
	"alice":                     "alice-secret-pw",
	"audrey":                    "audrey-secret-pw",
	"dora":                      "dora-secret-pw",
	"<script>alert(1)</script>": "xss-secret-pw",
}

// env is a Server with fakes of everything.
type env struct {
	t        *testing.T
	srv      *Server
	h        http.Handler
	clock    *clock
	accounts *fakeAccounts
	sessions *fakeSessions
	tokens   *fakeTokens
	logs     *fakeLogs
	stats    *fakeStats
	explain  *fakeExplainer
	policy   *fakePolicy
	audit    *fakeAudit
	log      *syncBuffer
}

var (
	hashesOnce sync.Once
	hashes     map[string]string
)

// testHashes hashes the test passwords once, at the lowest cost.
func testHashes() map[string]string {
	hashesOnce.Do(func() {
		hashes = map[string]string{}
		for u, p := range passwords {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			hashes[u] = string(h)
		}
	})
	return hashes
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	h := testHashes()
	accounts := &fakeAccounts{accts: map[string]Account{
		"alice":                     {Name: "alice", Role: RoleAdmin, PasswordHash: h["alice"]},
		"audrey":                    {Name: "audrey", Role: RoleAuditor, PasswordHash: h["audrey"]},
		"dora":                      {Name: "dora", Role: RoleAdmin, PasswordHash: h["dora"], Disabled: true},
		"<script>alert(1)</script>": {Name: "<script>alert(1)</script>", Role: RoleAuditor, PasswordHash: h["<script>alert(1)</script>"]},
	}}
	e := &env{
		t:        t,
		clock:    &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		accounts: accounts,
		sessions: &fakeSessions{sessions: map[[32]byte]Session{}},
		tokens:   &fakeTokens{accounts: accounts, tokens: map[[32]byte]Token{}},
		logs:     &fakeLogs{},
		stats:    &fakeStats{},
		explain:  &fakeExplainer{},
		policy: &fakePolicy{doc: PolicyDoc{Version: "v1",
			Categories: []PolicyCategory{{Name: "gambling", Domains: []string{"casino.example"}}},
			Rules:      []PolicyRule{{Name: "no-gambling", Categories: []string{"gambling"}, Action: "block"}}}},
		audit: &fakeAudit{},
		log:   &syncBuffer{},
	}
	opts := Options{
		Accounts:  e.accounts,
		Sessions:  e.sessions,
		Tokens:    e.tokens,
		Logs:      e.logs,
		Stats:     e.stats,
		Explainer: e.explain,
		Policy:    e.policy,
		Audit:     e.audit,
		Logger:    slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       e.clock.Now,
	}
	if mod != nil {
		mod(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.h = srv, srv.Handler()
	return e
}

// req describes a test request.
type req struct {
	method, path string
	body         any // string, []byte, io.Reader or a value marshaled to JSON
	cookie       string
	csrf         string
	bearer       string
	remote       string
	header       map[string]string
	noType       bool // do not set Content-Type: application/json for a body
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	case io.Reader:
		body = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	if body != nil && !r.noType {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: CookieName, Value: r.cookie})
	}
	if r.csrf != "" {
		hr.Header.Set(CSRFHeader, r.csrf)
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	return w
}

// login logs user in and returns the cookie value and CSRF token.
func (e *env) login(user string) (cookie, csrf string) {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/api/v1/session", body: map[string]string{"username": user, "password": passwords[user]}})
	if w.Code != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", user, w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			cookie = c.Value
		}
	}
	var out struct{ CSRF string }
	decode(e.t, w, &out)
	if cookie == "" || out.CSRF == "" {
		e.t.Fatalf("login %s: no cookie or csrf: %v", user, w.Header())
	}
	return cookie, out.CSRF
}

// token adds an API token for user and returns its secret.
func (e *env) token(user string, readOnly bool, expires time.Time) string {
	e.t.Helper()
	secret := TokenPrefix + randomString(32)
	t := Token{ID: randomString(12), Name: "test", User: user, ReadOnly: readOnly, Created: e.clock.Now(), Expires: expires}
	if err := e.tokens.CreateToken(context.Background(), sha256Sum(secret), t); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decoding %q: %v", w.Body.String(), err)
	}
}

// errorOf returns the "error" of a JSON error answer.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var out struct{ Error string }
	decode(t, w, &out)
	if out.Error == "" {
		t.Fatalf("no error in %q", w.Body.String())
	}
	return out.Error
}

var errBoom = errors.New("boom")

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }
