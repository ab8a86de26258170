package webui

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"waygate/audit"
)

// pagedLogs serves n events newest first, in pages of the asked size,
// following the cursor as a store does.
type pagedLogs struct {
	mu      sync.Mutex
	n       int
	queries []LogQuery
}

func (p *pagedLogs) Search(_ context.Context, q LogQuery) (LogPage, error) {
	p.mu.Lock()
	p.queries = append(p.queries, q)
	p.mu.Unlock()
	start := p.n // ids n..1, newest first
	if q.Before.ID != 0 {
		start = int(q.Before.ID) - 1
	}
	var page LogPage
	for id := start; id >= 1 && len(page.Events) < q.Limit; id-- {
		page.Events = append(page.Events, audit.StoredEvent{ID: int64(id), Event: audit.Event{
			Time: time.Unix(int64(id), 0), Kind: audit.KindHTTP, Host: "h.example",
			Path: fmt.Sprintf("/%d", id), UserAgent: "=HYPERLINK(\"http://evil\")", Status: 200,
		}})
	}
	if n := len(page.Events); n == q.Limit && page.Events[n-1].ID > 1 {
		last := page.Events[n-1]
		page.Next = LogCursor{Time: last.Time, ID: last.ID}
	}
	return page, nil
}

func TestExportLogs(t *testing.T) {
	logs := &pagedLogs{n: 2500}
	e := newEnv(t, func(o *Options) { o.Logs = logs })
	cookie, _ := e.login("audrey") // auditors may export

	w := e.do(req{method: "GET", path: "/api/v1/logs/export?format=csv&host=h.example", cookie: cookie})
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.Contains(w.Header().Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv: %d %v", w.Code, w.Header())
	}
	recs, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2501 || recs[0][0] != "time" || recs[1][11] != "/2500" || recs[2500][11] != "/1" {
		t.Fatalf("csv: %d rows, first %v", len(recs), recs[:2])
	}
	if ua := recs[1][26]; ua != `'=HYPERLINK("http://evil")` {
		t.Errorf("a formula cell was not neutralized: %q", ua)
	}
	// Page by page, with the filters every time.
	if len(logs.queries) != 3 || logs.queries[2].Host != "h.example" || logs.queries[2].Limit != exportPageSize {
		t.Errorf("queries: %+v", logs.queries)
	}

	w = e.do(req{method: "GET", path: "/api/v1/logs/export?format=jsonl", cookie: cookie})
	sc := bufio.NewScanner(strings.NewReader(w.Body.String()))
	n := 0
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		n++
	}
	if w.Code != 200 || n != 2500 {
		t.Errorf("jsonl: %d, %d lines", w.Code, n)
	}

	for _, path := range []string{
		"/api/v1/logs/export", "/api/v1/logs/export?format=xml", "/api/v1/logs/export?format=csv&limit=5",
		"/api/v1/logs/export?format=csv&bogus=1", "/api/v1/logs/export?format=csv&status=99",
	} {
		if w := e.do(req{method: "GET", path: path, cookie: cookie}); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, w.Code)
		}
	}
	if got := e.audit.byAction("export"); len(got) != 2 || !strings.Contains(got[0].Detail, `"events":2500`) {
		t.Errorf("export records: %+v", got)
	}
}
