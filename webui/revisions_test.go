package webui

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeRevisions is an in-memory RevisionSource.
type fakeRevisions struct {
	mu       sync.Mutex
	revs     []Revision // oldest first; ID = index + 1
	rollErr  error
	rollBack []string // "author:id" of rollbacks done
}

func (f *fakeRevisions) Revisions(_ context.Context, before int64, limit int) ([]Revision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Revision
	for i := len(f.revs) - 1; i >= 0 && len(out) < limit; i-- {
		if before <= 0 || f.revs[i].ID < before {
			r := f.revs[i]
			r.Config = ""
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeRevisions) Revision(_ context.Context, id int64) (Revision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id < 1 || int(id) > len(f.revs) {
		return Revision{}, fmt.Errorf("revision %d: %w", id, ErrNotFound)
	}
	return f.revs[id-1], nil
}

func (f *fakeRevisions) Rollback(ctx context.Context, author string, id int64) (Revision, error) {
	if f.rollErr != nil {
		return Revision{}, f.rollErr
	}
	old, err := f.Revision(ctx, id)
	if err != nil {
		return Revision{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := Revision{ID: int64(len(f.revs) + 1), Time: time.Unix(0, 0), Author: author, Comment: fmt.Sprintf("rollback to %d", id), Config: old.Config}
	f.revs = append(f.revs, r)
	f.rollBack = append(f.rollBack, fmt.Sprintf("%s:%d", author, id))
	return r, nil
}

func TestRevisions(t *testing.T) {
	fr := &fakeRevisions{revs: []Revision{
		{ID: 1, Author: "alice", Config: "a: 1\nb: 2\n"},
		{ID: 2, Author: "<b>bob</b>", Config: "a: 1\nb: 3\nc: 4\n"},
	}}
	e := newEnv(t, func(o *Options) { o.Revisions = fr })
	cookie, csrf := e.login("alice")

	w := e.do(req{method: "GET", path: "/api/v1/revisions", cookie: cookie})
	var list struct{ Revisions []Revision }
	decode(t, w, &list)
	if w.Code != 200 || len(list.Revisions) != 2 || list.Revisions[0].ID != 2 || list.Revisions[0].Config != "" {
		t.Fatalf("list: %d %+v", w.Code, list)
	}

	w = e.do(req{method: "GET", path: "/api/v1/revisions/2", cookie: cookie})
	var one struct {
		Revision Revision
		Previous int64
		Diff     []DiffLine
	}
	decode(t, w, &one)
	want := []DiffLine{{" ", "a: 1"}, {"-", "b: 2"}, {"+", "b: 3"}, {"+", "c: 4"}}
	if w.Code != 200 || one.Previous != 1 || !slices.Equal(one.Diff, want) || one.Revision.Author != "<b>bob</b>" {
		t.Fatalf("revision 2: %d %+v", w.Code, one)
	}

	for _, path := range []string{"/api/v1/revisions/x", "/api/v1/revisions/0", "/api/v1/revisions?limit=0", "/api/v1/revisions?bogus=1"} {
		if w := e.do(req{method: "GET", path: path, cookie: cookie}); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, w.Code)
		}
	}
	if w := e.do(req{method: "GET", path: "/api/v1/revisions/9", cookie: cookie}); w.Code != http.StatusNotFound {
		t.Errorf("missing revision: %d", w.Code)
	}

	// Rollback: admin with CSRF; recorded.
	if w := e.do(req{method: "POST", path: "/api/v1/revisions/1/rollback", cookie: cookie}); w.Code != http.StatusForbidden {
		t.Errorf("rollback without CSRF: %d", w.Code)
	}
	w = e.do(req{method: "POST", path: "/api/v1/revisions/1/rollback", cookie: cookie, csrf: csrf})
	if w.Code != 200 || len(fr.rollBack) != 1 || fr.rollBack[0] != "alice:1" {
		t.Fatalf("rollback: %d %s %v", w.Code, w.Body, fr.rollBack)
	}
	if w := e.do(req{method: "POST", path: "/api/v1/revisions/9/rollback", cookie: cookie, csrf: csrf}); w.Code != http.StatusNotFound {
		t.Errorf("rollback to a missing revision: %d", w.Code)
	}
	fr.rollErr = &InvalidPolicyError{Problems: []Problem{{Path: "rules[0].action", Message: "bad"}}}
	if w := e.do(req{method: "POST", path: "/api/v1/revisions/1/rollback", cookie: cookie, csrf: csrf}); w.Code != http.StatusUnprocessableEntity {
		t.Errorf("rollback to an invalid revision: %d", w.Code)
	}
	fr.rollErr = fmt.Errorf("no file: %w", ErrConflict)
	if w := e.do(req{method: "POST", path: "/api/v1/revisions/1/rollback", cookie: cookie, csrf: csrf}); w.Code != http.StatusConflict {
		t.Errorf("rollback without a file: %d", w.Code)
	}
	fr.rollErr = nil

	// Auditors read but cannot roll back.
	ac, acsrf := e.login("audrey")
	if w := e.do(req{method: "GET", path: "/api/v1/revisions/2", cookie: ac}); w.Code != 200 {
		t.Errorf("auditor reading: %d", w.Code)
	}
	if w := e.do(req{method: "POST", path: "/api/v1/revisions/1/rollback", cookie: ac, csrf: acsrf}); w.Code != http.StatusForbidden {
		t.Errorf("auditor rollback: %d", w.Code)
	}
}

func TestLineDiff(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want []DiffLine
	}{
		{"", "", []DiffLine{}},
		{"", "x\n", []DiffLine{{"+", "x"}}},
		{"x\n", "", []DiffLine{{"-", "x"}}},
		{"a\nb\nc\n", "a\nc\n", []DiffLine{{" ", "a"}, {"-", "b"}, {" ", "c"}}},
		{"a\nc\n", "a\nb\nc", []DiffLine{{" ", "a"}, {"+", "b"}, {" ", "c"}}},
	} {
		got, ok := lineDiff(tc.a, tc.b)
		if !ok || !slices.Equal(got, tc.want) {
			t.Errorf("lineDiff(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	big := ""
	for i := 0; i < 3000; i++ {
		big += fmt.Sprintln(i)
	}
	if _, ok := lineDiff(big, big+"x\n"); ok {
		t.Error("a diff over the table bound was computed")
	}
}
