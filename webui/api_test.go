package webui

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"waygate/audit"
)

func TestLogsPassesParametersThrough(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token("audrey", true, e.clock.Now().Add(time.Hour))
	v := url.Values{
		"since":         {"2026-03-01T10:00:00+01:00"},
		"until":         {"2026-03-02"},
		"user":          {"bob"},
		"client":        {"10.0.0.7"},
		"host":          {"www.example.com"},
		"host_suffix":   {"example.com"},
		"host_contains": {"amp"},
		"category":      {"gambling"},
		"action":        {"block"},
		"status":        {"403"},
		"kind":          {"connect"},
		"q":             {"a b%_'\""},
		"limit":         {"50"},
		"before":        {"1772366400000000123.42"},
	}
	w := e.do(req{method: "GET", path: "/api/v1/logs?" + v.Encode(), bearer: tok})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	want := LogQuery{
		Since:        time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		Until:        time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC),
		User:         "bob",
		Client:       "10.0.0.7",
		Host:         "www.example.com",
		HostSuffix:   "example.com",
		HostContains: "amp",
		Category:     "gambling",
		Action:       "block",
		Status:       403,
		Kind:         audit.KindConnect,
		Text:         "a b%_'\"",
		Limit:        50,
		Before:       LogCursor{Time: time.Unix(0, 1772366400000000123).UTC(), ID: 42},
	}
	got := e.logs.last(t)
	if !got.Since.Equal(want.Since) || !got.Until.Equal(want.Until) {
		t.Errorf("since/until %v %v, want %v %v", got.Since, got.Until, want.Since, want.Until)
	}
	got.Since, got.Until, want.Since, want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("query\n got %+v\nwant %+v", got, want)
	}
	// Nothing given: the zero query (the store's defaults).
	e.do(req{method: "GET", path: "/api/v1/logs", bearer: tok})
	if got := e.logs.last(t); !reflect.DeepEqual(got, LogQuery{}) {
		t.Errorf("empty query %+v", got)
	}
	// A date since is the start of that day.
	e.do(req{method: "GET", path: "/api/v1/logs?since=2026-03-01", bearer: tok})
	if got := e.logs.last(t); !got.Since.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("since %v", got.Since)
	}
}

func TestLogsRefusesBadParameters(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token("audrey", true, e.clock.Now().Add(time.Hour))
	for query, param := range map[string]string{
		"since=yesterday":                   "since",
		"until=2026-13-01":                  "until",
		"since=2026-03-02&until=2026-03-01": "until",
		"status=abc":                        "status",
		"status=99":                         "status",
		"status=600":                        "status",
		"kind=ftp":                          "kind",
		"limit=0":                           "limit",
		"limit=1001":                        "limit",
		"limit=-5":                          "limit",
		"before=xyz":                        "before",
		"before=12.-1":                      "before",
		"hosts=example.com":                 "hosts",
		"user=a&user=b":                     "user",
		"q=" + strings.Repeat("x", 600):     "q",
		"user=%ff":                          "user",
		"q=%zz":                             "query string",
	} {
		w := e.do(req{method: "GET", path: "/api/v1/logs?" + query, bearer: tok})
		if w.Code != http.StatusBadRequest {
			t.Errorf("%.40s: %d, want 400", query, w.Code)
			continue
		}
		if msg := errorOf(t, w); !strings.Contains(msg, param) {
			t.Errorf("%.40s: error %q does not name %s", query, msg, param)
		}
	}
	if e.logs.calls() != 0 {
		t.Errorf("Search called %d times with bad parameters", e.logs.calls())
	}
}

func TestLogsAnswer(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.token("audrey", true, e.clock.Now().Add(time.Hour))
	next := LogCursor{Time: time.Date(2026, 3, 1, 8, 0, 0, 5, time.UTC), ID: 7}
	e.logs.page = LogPage{
		Events: []audit.StoredEvent{{ID: 8, Event: audit.Event{Time: e.clock.Now(), Duration: 1500 * time.Microsecond,
			Kind: audit.KindHTTP, Host: "<script>alert(1)</script>.example", UserAgent: `"><img src=x onerror=alert(1)>`,
			Status: 200, Action: "allow"}}},
		Next: next,
	}
	w := e.do(req{method: "GET", path: "/api/v1/logs", bearer: tok})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	if strings.ContainsAny(body, "<>") {
		t.Errorf("unescaped markup in JSON: %s", body)
	}
	var out struct {
		Events []struct {
			ID         int64
			Host       string
			UserAgent  string  `json:"user_agent"`
			DurationMS float64 `json:"duration_ms"`
		}
		Next string
	}
	decode(t, w, &out)
	if len(out.Events) != 1 || out.Events[0].ID != 8 || out.Events[0].Host != "<script>alert(1)</script>.example" ||
		out.Events[0].DurationMS != 1.5 {
		t.Errorf("events %+v", out.Events)
	}
	// The cursor round-trips.
	e.do(req{method: "GET", path: "/api/v1/logs?before=" + url.QueryEscape(out.Next), bearer: tok})
	if got := e.logs.last(t).Before; !got.Time.Equal(next.Time) || got.ID != next.ID {
		t.Errorf("cursor %q came back as %+v, want %+v", out.Next, got, next)
	}
	// A search that stopped at its budget says so, and how far back it
	// looked.
	stop := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	e.logs.page = LogPage{Next: LogCursor{Time: stop}, Partial: true}
	w = e.do(req{method: "GET", path: "/api/v1/logs?q=x", bearer: tok})
	var partial struct {
		Partial    bool
		SearchedTo time.Time `json:"searched_to"`
		Next       string
	}
	decode(t, w, &partial)
	if !partial.Partial || !partial.SearchedTo.Equal(stop) || partial.Next == "" {
		t.Errorf("partial page %s", w.Body)
	}
	// Empty results are an empty list, and no next.
	e.logs.page = LogPage{}
	w = e.do(req{method: "GET", path: "/api/v1/logs", bearer: tok})
	if strings.TrimSpace(w.Body.String()) != `{"events":[]}` {
		t.Errorf("empty page %s", w.Body)
	}
	// A failing store is a 500 that does not leak the error.
	e.logs.err = errors.New("database is locked at /secret/path")
	w = e.do(req{method: "GET", path: "/api/v1/logs", bearer: tok})
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "secret") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

func TestCursor(t *testing.T) {
	for _, c := range []LogCursor{{}, {Time: time.Unix(0, 1).UTC(), ID: 1}, {Time: time.Unix(1772366400, 999).UTC(), ID: 1 << 40}} {
		got, err := DecodeCursor(EncodeCursor(c))
		if err != nil || !got.Time.Equal(c.Time) || got.ID != c.ID {
			t.Errorf("%+v -> %q -> %+v, %v", c, EncodeCursor(c), got, err)
		}
	}
	for _, s := range []string{"1", "a.b", "1.", ".1", "1.2.3"} {
		if _, err := DecodeCursor(s); err == nil {
			t.Errorf("DecodeCursor(%q) succeeded", s)
		}
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t, nil)
	cookie, _ := e.login("audrey")
	now := e.clock.Now()
	w := e.do(req{method: "GET", path: "/api/v1/stats", cookie: cookie})
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	e.stats.mu.Lock()
	series, tops := e.stats.series, e.stats.tops
	e.stats.mu.Unlock()
	if len(series) != 1 || series[0] != (seriesCall{time.Hour, now.Add(-24 * time.Hour), now}) {
		t.Errorf("series calls %+v", series)
	}
	if len(tops) != len(statsDims) || tops[0].n != 10 {
		t.Errorf("top calls %+v", tops)
	}
	for i, dim := range []string{"host", "user", "category", "action", "error"} {
		if i >= len(tops) || tops[i].dim != dim {
			t.Errorf("top calls %+v, want the dimensions host, user, category, action, error", tops)
			break
		}
	}
	var out struct {
		Step   string
		Series []struct{ Requests, Blocked int64 }
		Top    map[string][]struct{ Key string }
	}
	decode(t, w, &out)
	if out.Step != "hour" || len(out.Series) != 1 || out.Series[0].Requests != 3 || out.Top["host"][0].Key != "host-1" {
		t.Errorf("answer %s", w.Body)
	}
	w = e.do(req{method: "GET", path: "/api/v1/stats?since=2026-03-01T10:00:00Z&until=2026-03-01T11:00:00Z&step=minute&top=0", cookie: cookie})
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"top"`) {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	e.stats.mu.Lock()
	last := e.stats.series[len(e.stats.series)-1]
	e.stats.mu.Unlock()
	if last.step != time.Minute || !last.since.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("series call %+v", last)
	}
	for query, param := range map[string]string{
		"step=day":                     "step",
		"step=minute&since=2025-01-01": "step",
		"top=101":                      "top",
		"since=2026-03-02T00:00:00Z":   "since",
		"since=x":                      "since",
		"range=1h":                     "range",
	} {
		w := e.do(req{method: "GET", path: "/api/v1/stats?" + query, cookie: cookie})
		if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w), param) {
			t.Errorf("%s: %d %s", query, w.Code, w.Body)
		}
	}
}

func TestExplain(t *testing.T) {
	e := newEnv(t, nil)
	cookie, _ := e.login("audrey")
	now := e.clock.Now()
	for _, tc := range []struct {
		query string
		want  ExplainRequest
	}{
		{"url=https://user:pw@casino.example/x?y=1&client=::ffff:10.0.0.5&user=bob",
			ExplainRequest{Client: netip.MustParseAddr("10.0.0.5"), User: "bob", Method: "CONNECT", Host: "casino.example", Port: 443, Time: now}},
		{"url=casino.example:8080/a%20b?c&method=post&at=2026-11-30T10:00:00%2B01:00",
			ExplainRequest{Method: "POST", Host: "casino.example", Port: 8080, Path: "/a%20b", Time: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}},
		{"url=http://[2001:db8::1]/&at=2026-11-30+10:00",
			ExplainRequest{Method: "GET", Host: "2001:db8::1", Path: "/", Time: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}},
	} {
		w := e.do(req{method: "GET", path: "/api/v1/explain?" + tc.query, cookie: cookie})
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d %s", tc.query, w.Code, w.Body)
			continue
		}
		got := e.explain.last(t)
		if !got.Time.Equal(tc.want.Time) {
			t.Errorf("%s: time %v, want %v", tc.query, got.Time, tc.want.Time)
		}
		got.Time, tc.want.Time = time.Time{}, time.Time{}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.query, got, tc.want)
		}
		if strings.Contains(w.Body.String(), "pw@") {
			t.Errorf("credentials echoed: %s", w.Body)
		}
	}
	var out struct {
		URL      string
		Decision struct{ Action, Rule, Entry string }
	}
	w := e.do(req{method: "GET", path: "/api/v1/explain?url=casino.example/", cookie: cookie})
	decode(t, w, &out)
	if out.URL != "http://casino.example/" || out.Decision.Action != "block" || out.Decision.Rule != "no-gambling" {
		t.Errorf("answer %s", w.Body)
	}
	for query, param := range map[string]string{
		"":                            "url",
		"url=ftp://example.com/":      "url",
		"url=http://":                 "url",
		"url=http://a:99999/":         "url",
		"url=http://%25zz":            "url",
		"url=a.example&client=bob":    "client",
		"url=a.example&method=GE%20T": "method",
		"url=a.example&at=tomorrow":   "at",
		"url=a.example&verbose=1":     "verbose",
	} {
		w := e.do(req{method: "GET", path: "/api/v1/explain?" + query, cookie: cookie})
		if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w), param) {
			t.Errorf("%q: %d %s", query, w.Code, w.Body)
		}
	}
}

func TestPolicy(t *testing.T) {
	e := newEnv(t, nil)
	cookie, csrf := e.login("alice")
	w := e.do(req{method: "GET", path: "/api/v1/policy", cookie: cookie})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"version":"v1"`) || !strings.Contains(w.Body.String(), `"action":"block"`) {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	doc := PolicyDoc{Version: "v1", DefaultAction: "allow",
		Categories: []PolicyCategory{{Name: "news", Domains: []string{"news.example"}}},
		Rules:      []PolicyRule{{Name: "warn-news", Categories: []string{"news"}, Action: "warn", WarnFor: "30m", Ports: []int{443}}}}
	w = e.do(req{method: "PUT", path: "/api/v1/policy", body: doc, cookie: cookie, csrf: csrf})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"version":"v2"`) {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	e.policy.mu.Lock()
	save := e.policy.saves[0]
	e.policy.mu.Unlock()
	if save.author != "alice" || !reflect.DeepEqual(save.doc, doc) {
		t.Errorf("saved %+v", save)
	}
	if ev := e.audit.byAction("policy_save"); len(ev) != 1 || ev[0].User != "alice" || ev[0].Status != 200 || !strings.Contains(ev[0].Detail, `"version":"v2"`) {
		t.Errorf("audit %+v", ev)
	}

	// Problems: 422 with them, and no save.
	e.policy.mu.Lock()
	e.policy.problems = []Problem{{Path: "rules[2].action", Message: `"blok" is not an action`}, {Path: "categories[0].name", Message: "duplicate"}}
	e.policy.mu.Unlock()
	w = e.do(req{method: "PUT", path: "/api/v1/policy", body: doc, cookie: cookie, csrf: csrf})
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid: %d %s", w.Code, w.Body)
	}
	var inv struct {
		Error    string
		Problems []Problem
	}
	decode(t, w, &inv)
	if inv.Error != "invalid policy" || len(inv.Problems) != 2 || inv.Problems[0].Path != "rules[2].action" {
		t.Errorf("answer %s", w.Body)
	}
	if e.policy.saveCount() != 1 {
		t.Errorf("Save called for an invalid policy")
	}
	e.policy.mu.Lock()
	e.policy.problems = nil
	e.policy.mu.Unlock()

	// Save's own failures.
	for err, want := range map[error]int{
		fmt.Errorf("saving: %w", ErrConflict): http.StatusConflict,
		&InvalidPolicyError{Problems: []Problem{{Path: "categories[0].files[0]", Message: "no such file"}}}: http.StatusUnprocessableEntity,
		errBoom: http.StatusInternalServerError,
	} {
		e.policy.mu.Lock()
		e.policy.saveErr = err
		e.policy.mu.Unlock()
		w := e.do(req{method: "PUT", path: "/api/v1/policy", body: doc, cookie: cookie, csrf: csrf})
		if w.Code != want {
			t.Errorf("Save error %v: %d, want %d", err, w.Code, want)
		}
		if want == http.StatusUnprocessableEntity && !strings.Contains(w.Body.String(), "categories[0].files[0]") {
			t.Errorf("problems not passed on: %s", w.Body)
		}
	}
	e.policy.mu.Lock()
	e.policy.saveErr = nil
	e.policy.mu.Unlock()

	// Malformed bodies: 400 naming the problem, no save.
	before := e.policy.saveCount()
	for body, want := range map[string]string{
		`{"rules": [`:                     "unexpected end",
		`{"rules": [}`:                    "byte",
		`{"rules": "all"}`:                "rules",
		`{"rules": [{"ports": ["443"]}]}`: "rules.ports",
		`{"rulez": []}`:                   `"rulez"`,
		`[]`:                              "expected",
		`{} {}`:                           "after the value",
		``:                                "empty",
	} {
		w := e.do(req{method: "PUT", path: "/api/v1/policy", body: body, cookie: cookie, csrf: csrf})
		if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w), want) {
			t.Errorf("%q: %d %s (want 400 mentioning %s)", body, w.Code, w.Body, want)
		}
	}
	if w := e.do(req{method: "PUT", path: "/api/v1/policy", body: "{}", noType: true, cookie: cookie, csrf: csrf}); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("no Content-Type: %d", w.Code)
	}
	if e.policy.saveCount() != before {
		t.Error("saved a malformed body")
	}
}
