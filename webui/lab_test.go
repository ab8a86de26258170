package webui

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeLab counts runs and answers with fixed results, or err.
type fakeLab struct {
	mu       sync.Mutex
	forward  int
	reverse  int
	err      error
	ctxAlive bool // whether the last run's context was live when it ran
}

func (f *fakeLab) run(ctx context.Context, n *int, kind string) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*n++
	f.ctxAlive = ctx.Err() == nil
	if f.err != nil {
		return nil, f.err
	}
	return map[string]any{"ok": true, "kind": kind, "facts": []any{}, "note": "<script>alert(1)</script>"}, nil
}

func (f *fakeLab) RunForward(ctx context.Context) (any, error) {
	return f.run(ctx, &f.forward, "forward")
}
func (f *fakeLab) RunReverse(ctx context.Context) (any, error) {
	return f.run(ctx, &f.reverse, "reverse")
}

func (f *fakeLab) counts() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forward, f.reverse
}

func TestLabAPI(t *testing.T) {
	lab := &fakeLab{}
	e := newEnv(t, func(o *Options) { o.Lab = lab })
	admin, csrf := e.login("alice")
	auditor, auditorCSRF := e.login("audrey")
	tests := []struct {
		name        string
		r           req
		status      int
		wantKey     string // the answer's key, for 200
		wantErr     string // a part of the error, otherwise
		fwd, rev    int    // runs after the request
		errFromLab  error
		withoutLab  bool
		checkLogged string
	}{
		{name: "forward", r: req{method: "POST", path: "/api/v1/lab/forward", cookie: admin, csrf: csrf},
			status: 200, wantKey: "forward", fwd: 1},
		{name: "reverse", r: req{method: "POST", path: "/api/v1/lab/reverse", cookie: admin, csrf: csrf},
			status: 200, wantKey: "reverse", fwd: 1, rev: 1},
		{name: "a JSON body is ignored", r: req{method: "POST", path: "/api/v1/lab/reverse", cookie: admin, csrf: csrf, body: "{}"},
			status: 200, wantKey: "reverse", fwd: 1, rev: 2},
		{name: "no CSRF token", r: req{method: "POST", path: "/api/v1/lab/forward", cookie: admin},
			status: 403, wantErr: "CSRF", fwd: 1, rev: 2},
		{name: "auditor", r: req{method: "POST", path: "/api/v1/lab/forward", cookie: auditor, csrf: auditorCSRF},
			status: 403, wantErr: "admin role", fwd: 1, rev: 2},
		{name: "no session", r: req{method: "POST", path: "/api/v1/lab/reverse"},
			status: 401, wantErr: "", fwd: 1, rev: 2},
		{name: "GET is not allowed", r: req{method: "GET", path: "/api/v1/lab/forward", cookie: admin},
			status: 405, wantErr: "not allowed", fwd: 1, rev: 2},
		{name: "unknown parameter", r: req{method: "POST", path: "/api/v1/lab/forward?target=http://10.0.0.1/", cookie: admin, csrf: csrf},
			status: 400, wantErr: `unknown parameter "target"`, fwd: 1, rev: 2},
		{name: "the lab fails", r: req{method: "POST", path: "/api/v1/lab/forward", cookie: admin, csrf: csrf},
			errFromLab: errBoom, status: 500, wantErr: "running the forward demonstration failed", fwd: 2, rev: 2,
			checkLogged: "boom"},
		{name: "no lab", r: req{method: "POST", path: "/api/v1/lab/reverse", cookie: admin, csrf: csrf},
			withoutLab: true, status: 503, wantErr: "proxy lab is not available", fwd: 2, rev: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lab.mu.Lock()
			lab.err = tt.errFromLab
			lab.mu.Unlock()
			e.srv.opts.Lab = lab
			if tt.withoutLab {
				e.srv.opts.Lab = nil
			}
			w := e.do(tt.r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 200 {
				var out map[string]map[string]any
				decode(t, w, &out)
				if got := out[tt.wantKey]; got == nil || got["kind"] != tt.wantKey || got["ok"] != true {
					t.Errorf("answer %s", w.Body)
				}
				// encoding/json escapes <, > and &: no markup in the answer.
				if strings.ContainsAny(w.Body.String(), "<>") {
					t.Errorf("unescaped markup in %s", w.Body)
				}
				if !lab.ctxAlive {
					t.Error("the lab ran with a dead context")
				}
			} else if tt.wantErr != "" {
				if got := errorOf(t, w); !strings.Contains(got, tt.wantErr) {
					t.Errorf("error %q, want it to contain %q", got, tt.wantErr)
				}
			}
			if tt.status == 500 && strings.Contains(w.Body.String(), "boom") {
				t.Errorf("the lab's error leaked to the client: %s", w.Body)
			}
			if tt.checkLogged != "" && !strings.Contains(e.log.String(), tt.checkLogged) {
				t.Errorf("the lab's error %q is not in the log", tt.checkLogged)
			}
			if f, r := lab.counts(); f != tt.fwd || r != tt.rev {
				t.Errorf("runs: forward %d reverse %d, want %d and %d", f, r, tt.fwd, tt.rev)
			}
		})
	}
}

func TestLabPage(t *testing.T) {
	tests := []struct {
		name    string
		user    string
		lab     bool
		want    []string
		notWant []string
	}{
		{"admin", "alice", true,
			[]string{`<h1>Proxy lab</h1>`, `<a href="/lab" aria-current="page">Proxy lab</a>`, `<button type="button" id="run-forward">`,
				`<button type="button" id="run-reverse">`, `<script src="/static/lab.js"></script>`, `data-forward-url="/api/v1/lab/forward"`,
				`id="count-forward"`, `id="count-reverse"`, `On whose behalf it acts`, `Does the client know?`, `Who deploys it`},
			[]string{`id="run-note"`, `id="unavailable"`, `disabled`}},
		{"auditor", "audrey", true,
			[]string{`<button type="button" id="run-forward" disabled aria-describedby="run-note">`,
				`<button type="button" id="run-reverse" disabled aria-describedby="run-note">`, `id="run-note"`, `id="count-forward"`},
			[]string{`id="unavailable"`}},
		{"no lab", "alice", false,
			[]string{`id="unavailable"`, `<button type="button" id="run-forward" disabled>`, `<button type="button" id="run-reverse" disabled>`},
			[]string{`id="run-note"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) {
				if tt.lab {
					o.Lab = &fakeLab{}
				}
			})
			cookie, _ := e.login(tt.user)
			w := e.do(req{method: "GET", path: "/lab", cookie: cookie})
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			body := w.Body.String()
			for _, want := range tt.want {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(body, nw) {
					t.Errorf("page has %s", nw)
				}
			}
			assertNoInlineScript(t, body)
		})
	}
	// The page's script is served, runs the demonstrations with a POST
	// (Waygate.api adds the CSRF token) and follows the live stream.
	assertScript(t, newEnv(t, nil), "lab.js", `W.api("POST", url)`, "W.liveStream(eventsURL", "audit: addEvent", "textContent")
}
