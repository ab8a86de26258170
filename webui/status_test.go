package webui

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

type fakeReverse struct {
	snap any
	err  error
}

func (f *fakeReverse) ReverseStatus(context.Context) (any, error) { return f.snap, f.err }

type fakeCategories struct {
	list any
	err  error
}

func (f *fakeCategories) Categories(context.Context) (any, error) { return f.list, f.err }

func TestStatusEndpoints(t *testing.T) {
	rev := &fakeReverse{snap: map[string]any{"routes": []map[string]any{{"host": "app.example", "backends": []map[string]any{{"url": "http://10.0.0.1:8080", "healthy": true}}}}}}
	cats := &fakeCategories{list: []map[string]any{{"name": "<gambling>", "entries": 42, "error": ""}}}
	e := newEnv(t, func(o *Options) { o.Reverse, o.Categories = rev, cats })
	cookie, _ := e.login("audrey") // auditors may read them
	for path, want := range map[string]string{
		"/api/v1/reverse":    `{"reverse":{"routes":[{"backends":[{"healthy":true,"url":"http://10.0.0.1:8080"}],"host":"app.example"}]}}`,
		"/api/v1/categories": `{"categories":[{"entries":42,"error":"","name":"\u003cgambling\u003e"}]}`,
	} {
		w := e.do(req{method: "GET", path: path, cookie: cookie})
		if w.Code != http.StatusOK || w.Body.String() != want || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s %q", path, w.Code, w.Body, w.Header().Get("Content-Type"))
		}
		if w := e.do(req{method: "GET", path: path + "?refresh=1", cookie: cookie}); w.Code != http.StatusBadRequest {
			t.Errorf("%s with a parameter: %d", path, w.Code)
		}
	}
	// No categories: an empty list, not null.
	cats.list = nil
	if w := e.do(req{method: "GET", path: "/api/v1/categories", cookie: cookie}); w.Body.String() != `{"categories":[]}` {
		t.Errorf("empty: %s", w.Body)
	}
	// Failures are 500s that do not reveal the error.
	rev.err, cats.err = errBoom, errBoom
	for _, path := range []string{"/api/v1/reverse", "/api/v1/categories"} {
		if w := e.do(req{method: "GET", path: path, cookie: cookie}); w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "boom") {
			t.Errorf("%s failing: %d %s", path, w.Code, w.Body)
		}
	}
	// So is a snapshot that cannot be marshaled.
	rev.err, rev.snap = nil, map[string]any{"c": make(chan int)}
	if w := e.do(req{method: "GET", path: "/api/v1/reverse", cookie: cookie}); w.Code != http.StatusInternalServerError {
		t.Errorf("unmarshalable: %d %s", w.Code, w.Body)
	}
	// Not configured: 503.
	e = newEnv(t, nil)
	cookie, _ = e.login("alice")
	for _, path := range []string{"/api/v1/reverse", "/api/v1/categories"} {
		if w := e.do(req{method: "GET", path: path, cookie: cookie}); w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s without a source: %d", path, w.Code)
		} else {
			errorOf(t, w)
		}
	}
}
