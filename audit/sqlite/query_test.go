package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"waygate/audit"
)

// qtOpen creates a fresh audit database at path by running the schema
// migrations, independent of the Store.
func qtOpen(t testing.TB, path string) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	db, err := sql.Open("sqlite3", u.String()+"?_journal_mode=WAL&_busy_timeout=5000&_synchronous=OFF")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i, m := range migrations {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		t.Fatal(err)
	}
	return db
}

// qtBlocked is the rollups' definition of blocked.
func qtBlocked(e *audit.Event) bool {
	return (e.Action == "block" || e.Action == "warn") && e.Reason != "warn_accepted"
}

// qtInsert stores events with their rollup rows, in one transaction, and
// returns their ids.
func qtInsert(t testing.TB, db *sql.DB, events []*audit.Event) []int64 {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ins, err := tx.Prepare(`INSERT INTO events (time, duration, kind, request_id, client, user, "groups",
	method, scheme, host, port, path, query, status, bytes_in, bytes_out,
	action, rule, categories, category, entry, source, reason, policy,
	cache, upstream, user_agent, content_type, error, detail, hash)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		t.Fatal(err)
	}
	hour, err := tx.Prepare(`INSERT INTO rollup_hour (hour, dim, key, requests, blocked, bytes_in, bytes_out)
	VALUES (?, ?, ?, 1, ?, ?, ?)
	ON CONFLICT (dim, hour, key) DO UPDATE SET requests = requests + 1,
	blocked = blocked + excluded.blocked, bytes_in = bytes_in + excluded.bytes_in,
	bytes_out = bytes_out + excluded.bytes_out`)
	if err != nil {
		t.Fatal(err)
	}
	minute, err := tx.Prepare(`INSERT INTO rollup_minute (minute, requests, blocked, bytes_in, bytes_out)
	VALUES (?, 1, ?, ?, ?)
	ON CONFLICT (minute) DO UPDATE SET requests = requests + 1,
	blocked = blocked + excluded.blocked, bytes_in = bytes_in + excluded.bytes_in,
	bytes_out = bytes_out + excluded.bytes_out`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, e := range events {
		h := sha256.Sum256([]byte(fmt.Sprint(len(ids), e.Host)))
		res, err := ins.Exec(e.Time.UnixNano(), int64(e.Duration), string(e.Kind), e.RequestID, e.Client, e.User,
			strings.Join(e.Groups, ","), e.Method, e.Scheme, e.Host, int(e.Port), e.Path, e.Query, e.Status,
			e.BytesIn, e.BytesOut, e.Action, e.Rule, strings.Join(e.Categories, ","), e.Category, e.Entry,
			e.Source, e.Reason, e.Policy, e.Cache, e.Upstream, e.UserAgent, e.ContentType, e.Error, e.Detail, h[:])
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		ids = append(ids, id)
		b := 0
		if qtBlocked(e) {
			b = 1
		}
		hr := e.Time.Unix() / 3600 * 3600
		roll := func(dim, key string) {
			if _, err := hour.Exec(hr, dim, key, b, e.BytesIn, e.BytesOut); err != nil {
				t.Fatal(err)
			}
		}
		roll("total", "")
		roll("host", e.Host)
		roll("user", e.User)
		roll("client", e.Client)
		roll("action", e.Action)
		for _, c := range e.Categories {
			roll("category", c)
		}
		if _, err := minute.Exec(e.Time.Unix()/60*60, b, e.BytesIn, e.BytesOut); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return ids
}

var qtBase = time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC)

// Values the fixture draws from; several are hostile to naive SQL.
var (
	qtUsers   = []string{"alice", "bob", "carol", "' OR 1=1 --", "o'brien", "100%", "a_b", ""}
	qtClients = []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "' OR 1=1 --", "2001:db8::1"}
	qtHosts   = []string{"example.com", "www.example.com", "api.example.com", "notexample.com", "example.org",
		"a%b.test", "a_b.test", "axb.test", "aXb.test", "news.site", "' or 1=1 --.test"}
	qtPaths   = []string{"/", "/index.html", "/search", "/100%25", "/a_b", "/x%y", "/' OR 1=1 --"}
	qtQueries = []string{"", "q=cats", "q=100%", "id=a_b", "q=' OR 1=1 --"}
	qtCats    = [][]string{nil, {"news"}, {"social"}, {"news", "social"}, {"adult", "news"}, {"a_b"}, {"100%"}, {"' OR 1=1 --"}}
	qtActions = []string{"allow", "allow", "allow", "block", "warn", "bypass"}
	qtKinds   = []audit.Kind{audit.KindHTTP, audit.KindHTTP, audit.KindConnect, audit.KindReverse, audit.KindDNS}
	qtStatus  = []int{200, 200, 204, 301, 403, 404, 499, 502}
)

// qtFixture makes n pseudo-random events over three days, with many equal
// timestamps and ids out of time order.
func qtFixture(n int, seed int64) []*audit.Event {
	r := rand.New(rand.NewSource(seed))
	pick := func(s []string) string { return s[r.Intn(len(s))] }
	var out []*audit.Event
	for i := 0; i < n; i++ {
		t := qtBase.Add(time.Duration(r.Int63n(int64(72 * time.Hour))))
		if r.Intn(2) == 0 {
			t = t.Truncate(10 * time.Minute) // equal timestamps
		}
		cats := qtCats[r.Intn(len(qtCats))]
		e := &audit.Event{
			Time:       t,
			Duration:   time.Duration(r.Intn(5000)) * time.Millisecond,
			Kind:       qtKinds[r.Intn(len(qtKinds))],
			RequestID:  fmt.Sprintf("req-%d", i),
			Client:     pick(qtClients),
			User:       pick(qtUsers),
			Groups:     []string{"staff"},
			Method:     "GET",
			Scheme:     "http",
			Host:       pick(qtHosts),
			Port:       80,
			Path:       pick(qtPaths),
			Query:      pick(qtQueries),
			Status:     qtStatus[r.Intn(len(qtStatus))],
			BytesIn:    int64(r.Intn(1000)),
			BytesOut:   int64(r.Intn(100000)),
			Action:     pick(qtActions),
			Categories: cats,
			Cache:      []string{"", "MISS", "HIT"}[r.Intn(3)],
			Upstream:   "93.184.216.34:80",
		}
		if len(cats) > 0 {
			e.Category = cats[0]
		}
		if e.Action == "warn" && r.Intn(2) == 0 {
			e.Reason = "warn_accepted"
		}
		out = append(out, e)
	}
	return out
}

// qtStored pairs the fixture with its ids.
func qtStored(events []*audit.Event, ids []int64) []audit.StoredEvent {
	var s []audit.StoredEvent
	for i, e := range events {
		s = append(s, audit.StoredEvent{ID: ids[i], Event: *e})
	}
	return s
}

// qtMatch is the reference model of a Query's filters.
func qtMatch(e *audit.StoredEvent, q audit.Query) bool {
	low := strings.ToLower
	switch {
	case !q.Since.IsZero() && e.Time.Before(q.Since),
		!q.Until.IsZero() && !e.Time.Before(q.Until),
		q.User != "" && e.User != q.User,
		q.Client != "" && e.Client != q.Client,
		q.Host != "" && e.Host != q.Host,
		q.HostSuffix != "" && e.Host != strings.TrimPrefix(q.HostSuffix, ".") &&
			!strings.HasSuffix(low(e.Host), "."+low(strings.TrimPrefix(q.HostSuffix, "."))),
		q.HostContains != "" && !strings.Contains(low(e.Host), low(q.HostContains)),
		q.Category != "" && e.Category != q.Category && !slices.Contains(e.Categories, q.Category),
		q.Action != "" && e.Action != q.Action,
		q.Status != 0 && e.Status != q.Status,
		q.Kind != "" && e.Kind != q.Kind:
		return false
	}
	if q.Text != "" {
		x := low(q.Text)
		if !strings.Contains(low(e.Host), x) && !strings.Contains(low(e.Path), x) && !strings.Contains(low(e.Query), x) {
			return false
		}
	}
	if !q.Before.Time.IsZero() || q.Before.ID != 0 {
		if e.Time.After(q.Before.Time) || (e.Time.Equal(q.Before.Time) && e.ID >= q.Before.ID) {
			return false
		}
	}
	return true
}

// qtExpect returns the ids the model selects, newest first.
func qtExpect(all []audit.StoredEvent, q audit.Query) []int64 {
	var m []audit.StoredEvent
	for i := range all {
		if qtMatch(&all[i], q) {
			m = append(m, all[i])
		}
	}
	sort.Slice(m, func(i, j int) bool {
		if !m[i].Time.Equal(m[j].Time) {
			return m[i].Time.After(m[j].Time)
		}
		return m[i].ID > m[j].ID
	})
	ids := []int64{}
	for _, e := range m {
		ids = append(ids, e.ID)
	}
	return ids
}

// qtSearchAll pages through q with page size limit and returns all ids.
func qtSearchAll(t *testing.T, db *sql.DB, q audit.Query, limit int) []int64 {
	t.Helper()
	q.Limit = limit
	ids := []int64{}
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatal("pagination does not end")
		}
		p, err := Search(context.Background(), db, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) > limit {
			t.Fatalf("page of %d, limit %d", len(p.Events), limit)
		}
		for _, e := range p.Events {
			ids = append(ids, e.ID)
		}
		if p.Next == (audit.Cursor{}) {
			return ids
		}
		if len(p.Events) != limit && !p.Partial {
			t.Fatalf("short page (%d of %d) with a next cursor", len(p.Events), limit)
		}
		q.Before = p.Next
	}
}

type qtEnv struct {
	db     *sql.DB
	path   string
	events []audit.StoredEvent
}

func qtSetup(t *testing.T, n int) *qtEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	db := qtOpen(t, path)
	ev := qtFixture(n, 1)
	ids := qtInsert(t, db, ev)
	return &qtEnv{db: db, path: path, events: qtStored(ev, ids)}
}

func TestSearchFilters(t *testing.T) {
	env := qtSetup(t, 1500)
	day := qtBase.Add(24 * time.Hour)
	tests := []struct {
		name string
		q    audit.Query
	}{
		{"all", audit.Query{}},
		{"since", audit.Query{Since: day}},
		{"until", audit.Query{Until: day}},
		{"since until", audit.Query{Since: day, Until: day.Add(6 * time.Hour)}},
		{"since on equal times", audit.Query{Since: qtBase.Add(5 * time.Hour), Until: qtBase.Add(5*time.Hour + 10*time.Minute)}},
		{"none: empty range", audit.Query{Since: day, Until: day}},
		{"user", audit.Query{User: "alice"}},
		{"none: user unknown", audit.Query{User: "mallory"}},
		{"client", audit.Query{Client: "10.0.0.2"}},
		{"client ipv6", audit.Query{Client: "2001:db8::1"}},
		{"host", audit.Query{Host: "example.com"}},
		{"host suffix", audit.Query{HostSuffix: "example.com"}},
		{"host suffix leading dot", audit.Query{HostSuffix: ".example.com"}},
		{"host suffix case", audit.Query{HostSuffix: "EXAMPLE.com"}},
		{"host contains", audit.Query{HostContains: "example"}},
		{"host contains case", audit.Query{HostContains: "XB"}},
		{"category", audit.Query{Category: "news"}},
		{"category second", audit.Query{Category: "social"}},
		{"none: category partial", audit.Query{Category: "new"}},
		{"action", audit.Query{Action: "block"}},
		{"status", audit.Query{Status: 403}},
		{"kind", audit.Query{Kind: audit.KindConnect}},
		{"text host", audit.Query{Text: "example.org"}},
		{"text path", audit.Query{Text: "index"}},
		{"text query", audit.Query{Text: "cats"}},
		{"user+since", audit.Query{User: "bob", Since: day}},
		{"user+host+action", audit.Query{User: "alice", Host: "www.example.com", Action: "allow"}},
		{"client+kind+status", audit.Query{Client: "10.0.0.1", Kind: audit.KindHTTP, Status: 200}},
		{"host+range", audit.Query{Host: "news.site", Since: day, Until: day.Add(24 * time.Hour)}},
		{"suffix+category+text", audit.Query{HostSuffix: "example.com", Category: "news", Text: "q="}},
		{"contains+action+kind", audit.Query{HostContains: ".test", Action: "warn", Kind: audit.KindHTTP}},
		{"user+client+host", audit.Query{User: "carol", Client: "10.0.0.3", Host: "example.com"}},
		{"everything", audit.Query{Since: qtBase, Until: qtBase.Add(72 * time.Hour), User: "alice",
			HostSuffix: "example.com", HostContains: "ex", Category: "news", Text: "e"}},
		{"everything else", audit.Query{Since: qtBase, Until: qtBase.Add(60 * time.Hour), Client: "10.0.0.1",
			Action: "allow", Status: 200, Kind: audit.KindHTTP}},
		{"before", audit.Query{Before: audit.Cursor{Time: day, ID: 700}}},
		{"before time only", audit.Query{Before: audit.Cursor{Time: day}}},
		{"before+user", audit.Query{User: "alice", Before: audit.Cursor{Time: day, ID: 700}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := qtExpect(env.events, tt.q)
			if len(want) == 0 && !strings.HasPrefix(tt.name, "none:") {
				t.Fatalf("fixture has no match for %+v; the test is vacuous", tt.q)
			}
			q := tt.q
			q.Limit = MaxLimit
			p, err := Search(context.Background(), env.db, q)
			if err != nil {
				t.Fatal(err)
			}
			got := []int64{}
			for _, e := range p.Events {
				got = append(got, e.ID)
				if !qtMatch(&e, tt.q) {
					t.Errorf("event %d does not match: %+v", e.ID, e.Event)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %d events %v\nwant %d %v", len(got), head(got), len(want), head(want))
			}
			if p.Next != (audit.Cursor{}) {
				t.Errorf("Next = %v on the only page", p.Next)
			}
		})
	}
}

func head(s []int64) []int64 {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

func TestSearchRoundTrip(t *testing.T) {
	env := qtSetup(t, 200)
	p, err := Search(context.Background(), env.db, audit.Query{Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]audit.StoredEvent{}
	for _, e := range env.events {
		byID[e.ID] = e
	}
	for _, got := range p.Events {
		want := byID[got.ID]
		if !want.Time.Equal(got.Time) || got.Time.Location() != time.UTC {
			t.Fatalf("time %v, want %v UTC", got.Time, want.Time)
		}
		got.Time = want.Time
		if len(want.Categories) == 0 {
			want.Categories = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", got.ID, got, want)
		}
	}
}

func TestSearchPagination(t *testing.T) {
	env := qtSetup(t, 1000)
	queries := []audit.Query{
		{},
		{User: "alice"},
		{Client: "10.0.0.1"},
		{Host: "example.com"},
		{HostSuffix: "example.com", Since: qtBase.Add(12 * time.Hour)},
		{Text: "a", Until: qtBase.Add(48 * time.Hour)},
	}
	for _, q := range queries {
		want := qtExpect(env.events, q)
		for _, limit := range []int{1, 3, 7, 50, 1000} {
			t.Run(fmt.Sprintf("%+v/%d", q, limit), func(t *testing.T) {
				got := qtSearchAll(t, env.db, q, limit)
				if !slices.Equal(got, want) {
					t.Fatalf("paged %d events, want %d (each exactly once, newest first)", len(got), len(want))
				}
			})
		}
	}
}

// A search no index serves reads at most its budget of events per call
// and says where it stopped; going on from there finds every match once,
// newest first.
func TestSearchScanBudget(t *testing.T) {
	env := qtSetup(t, 1500) // 72 hours, about 21 events an hour
	budget, window := qScanBudget, qScanWindow
	qScanBudget, qScanWindow = 100, 30
	t.Cleanup(func() { qScanBudget, qScanWindow = budget, window })
	queries := []audit.Query{
		{Text: "a"},
		{Text: "no such text"},
		{HostSuffix: "example.com", Since: qtBase.Add(12 * time.Hour)},
		{Category: "news", Until: qtBase.Add(60 * time.Hour)},
		{Action: "block", Status: 403},
		{Kind: audit.KindConnect, Since: qtBase.Add(10 * time.Hour), Until: qtBase.Add(50 * time.Hour)},
	}
	for _, q := range queries {
		want := qtExpect(env.events, q)
		for _, limit := range []int{1, 7, 1000} {
			t.Run(fmt.Sprintf("%+v/%d", q, limit), func(t *testing.T) {
				got := qtSearchAll(t, env.db, q, limit)
				if !slices.Equal(got, want) {
					t.Fatalf("found %d events, want %d (each exactly once, newest first)", len(got), len(want))
				}
			})
		}
	}
	// A search for nothing stops at the budget: about 100 events, so the
	// newest 4 to 7 hours, on whole hours.
	p, err := Search(context.Background(), env.db, audit.Query{Text: "no such text"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Partial || len(p.Events) != 0 {
		t.Fatalf("partial %v with %d events, want a partial empty page", p.Partial, len(p.Events))
	}
	newest := env.events[0].Time
	for _, e := range env.events {
		if e.Time.After(newest) {
			newest = e.Time
		}
	}
	if p.Next.ID != 0 || p.Next.Time.Truncate(time.Hour) != p.Next.Time ||
		p.Next.Time.Before(newest.Add(-8*time.Hour)) || p.Next.Time.After(newest) {
		t.Errorf("stopped at %v (newest event %v): want a whole hour a few hours back", p.Next, newest)
	}
	// Searches an index serves are never partial.
	for _, q := range []audit.Query{{}, {User: "alice", Text: "no such text"}, {Host: "example.com", Text: "no such text"}} {
		p, err := Search(context.Background(), env.db, q)
		if err != nil || p.Partial {
			t.Errorf("%+v: partial %v, %v", q, p.Partial, err)
		}
	}
}

// All events at one instant: the order falls back to id.
func TestSearchPaginationEqualTimes(t *testing.T) {
	db := qtOpen(t, filepath.Join(t.TempDir(), "a.db"))
	var ev []*audit.Event
	for i := 0; i < 57; i++ {
		ev = append(ev, &audit.Event{Time: qtBase, Kind: audit.KindHTTP, User: "u", Host: "h"})
	}
	ids := qtInsert(t, db, ev)
	slices.Reverse(ids)
	for _, q := range []audit.Query{{}, {User: "u"}, {Host: "h"}} {
		if got := qtSearchAll(t, db, q, 10); !slices.Equal(got, ids) {
			t.Fatalf("%+v: got %v, want %v", q, got, ids)
		}
	}
}

func TestSearchLimit(t *testing.T) {
	db := qtOpen(t, filepath.Join(t.TempDir(), "a.db"))
	var ev []*audit.Event
	for i := 0; i < MaxLimit+5; i++ {
		ev = append(ev, &audit.Event{Time: qtBase.Add(time.Duration(i) * time.Second), Kind: audit.KindHTTP})
	}
	qtInsert(t, db, ev)
	for _, tt := range []struct{ limit, want int }{{0, DefaultLimit}, {-1, DefaultLimit}, {5, 5}, {MaxLimit + 1, MaxLimit}, {1 << 30, MaxLimit}} {
		p, err := Search(context.Background(), db, audit.Query{Limit: tt.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) != tt.want || p.Next == (audit.Cursor{}) {
			t.Errorf("Limit %d: %d events, next %v; want %d and a next page", tt.limit, len(p.Events), p.Next, tt.want)
		}
	}
}

// Hostile values in every string filter match literally, and only
// themselves.
func TestSearchInjection(t *testing.T) {
	db := qtOpen(t, filepath.Join(t.TempDir(), "a.db"))
	const evil = "' OR 1=1 --"
	mk := func(s string) *audit.Event {
		return &audit.Event{Time: qtBase, Kind: audit.Kind(s), User: s, Client: s, Host: s + ".test",
			Path: "/" + s, Categories: []string{s}, Category: s, Action: s}
	}
	values := []string{evil, "%", "_", "x", "ab", "a%b", "a_b", `a\b`, `\%`, "\"", ";DROP TABLE events;--"}
	var ev []*audit.Event
	for _, v := range values {
		ev = append(ev, mk(v))
	}
	ids := qtInsert(t, db, ev)
	for i, v := range values {
		for _, q := range []audit.Query{
			{User: v}, {Client: v}, {Host: v + ".test"}, {HostSuffix: v + ".test"}, {Category: v},
			{Action: v}, {Kind: audit.Kind(v)},
		} {
			p, err := Search(context.Background(), db, q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			if len(p.Events) != 1 || p.Events[0].ID != ids[i] {
				t.Errorf("%+v: got %d events, want only event %d", q, len(p.Events), ids[i])
			}
		}
		// Substring filters: the events whose host (or path) contains
		// the text, literally.
		for _, q := range []audit.Query{{HostContains: v}, {HostContains: v + ".te"}, {Text: v}, {Text: v + ".test"}} {
			var want []int64
			for j := len(values) - 1; j >= 0; j-- {
				x := strings.ToLower(q.HostContains + q.Text)
				host, path := strings.ToLower(ev[j].Host), strings.ToLower(ev[j].Path)
				if strings.Contains(host, x) || (q.Text != "" && strings.Contains(path, x)) {
					want = append(want, ids[j])
				}
			}
			p, err := Search(context.Background(), db, q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			var got []int64
			for _, e := range p.Events {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v: got %v, want %v", q, got, want)
			}
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n != len(values) {
		t.Fatalf("events table: %d rows, %v", n, err)
	}
}

// The query plans read the intended index and never sort.
func TestSearchPlans(t *testing.T) {
	env := qtSetup(t, 10)
	for _, tt := range []struct {
		q     audit.Query
		index string
	}{
		{audit.Query{User: "alice", Since: qtBase, Until: qtBase.Add(time.Hour)}, "events_user_time"},
		// Hosts and clients are read hour by hour through the time index
		// (qSearchHours), whose host and client columns filter the rows.
		{audit.Query{Client: "c", Host: "h", Before: audit.Cursor{Time: qtBase, ID: 3}}, "events_time"},
		{audit.Query{Host: "h", Text: "x"}, "events_time"},
		{audit.Query{HostSuffix: "h", Since: qtBase}, "events_time"},
		{audit.Query{}, "events_time"},
	} {
		plan := qtPlan(t, env.db, tt.q)
		if !strings.Contains(plan, tt.index) || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%+v: plan %q, want index %s and no sort", tt.q, plan, tt.index)
		}
	}
}

// qtPlan returns SQLite's plan for the statement Search runs for q.
func qtPlan(t *testing.T, db *sql.DB, q audit.Query) string {
	t.Helper()
	stmt, args, _ := qSearchSQL(q)
	rows, err := db.Query("EXPLAIN QUERY PLAN "+stmt, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "; ")
	}
	return b.String()
}

func TestTopSeriesBlocked(t *testing.T) {
	db := qtOpen(t, filepath.Join(t.TempDir(), "a.db"))
	at := func(h, m int) time.Time { return qtBase.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	ev := []*audit.Event{
		{Time: at(0, 5), Host: "a.com", User: "alice", Action: "allow", Categories: []string{"news"}, BytesIn: 1, BytesOut: 10},
		{Time: at(0, 5), Host: "a.com", User: "alice", Action: "block", Categories: []string{"news", "social"}, BytesIn: 2, BytesOut: 20},
		{Time: at(0, 30), Host: "b.com", User: "bob", Action: "warn", Reason: "warn_accepted", BytesIn: 4, BytesOut: 40},
		{Time: at(1, 0), Host: "b.com", User: "bob", Action: "warn", BytesIn: 8, BytesOut: 80},
		{Time: at(1, 59), Host: "b.com", User: "alice", Action: "allow", Categories: []string{"social"}, BytesIn: 16, BytesOut: 160},
		{Time: at(3, 10), Host: "c.com", User: "carol", Action: "block", BytesIn: 32, BytesOut: 320},
	}
	qtInsert(t, db, ev)
	ctx := context.Background()

	top := func(dim string, since, until time.Time, n int) []audit.Count {
		t.Helper()
		c, err := Top(ctx, db, dim, since, until, n)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tt := range []struct {
		name         string
		dim          string
		since, until time.Time
		n            int
		want         []audit.Count
	}{
		{"hosts all", "host", time.Time{}, time.Time{}, 0, []audit.Count{
			{Key: "b.com", Requests: 3, Blocked: 1, BytesIn: 28, BytesOut: 280},
			{Key: "a.com", Requests: 2, Blocked: 1, BytesIn: 3, BytesOut: 30},
			{Key: "c.com", Requests: 1, Blocked: 1, BytesIn: 32, BytesOut: 320}}},
		{"hosts n=1", "host", time.Time{}, time.Time{}, 1, []audit.Count{
			{Key: "b.com", Requests: 3, Blocked: 1, BytesIn: 28, BytesOut: 280}}},
		// Rounded out to whole hours: 00:40-01:10 covers hours 0 and 1.
		{"hosts rounded", "host", at(0, 40), at(1, 10), 0, []audit.Count{
			{Key: "b.com", Requests: 3, Blocked: 1, BytesIn: 28, BytesOut: 280},
			{Key: "a.com", Requests: 2, Blocked: 1, BytesIn: 3, BytesOut: 30}}},
		{"hosts hour 1", "host", at(1, 0), at(2, 0), 0, []audit.Count{
			{Key: "b.com", Requests: 2, Blocked: 1, BytesIn: 24, BytesOut: 240}}},
		{"users", "user", at(0, 0), at(4, 0), 0, []audit.Count{
			{Key: "alice", Requests: 3, Blocked: 1, BytesIn: 19, BytesOut: 190},
			{Key: "bob", Requests: 2, Blocked: 1, BytesIn: 12, BytesOut: 120},
			{Key: "carol", Requests: 1, Blocked: 1, BytesIn: 32, BytesOut: 320}}},
		{"categories (ties by key)", "category", time.Time{}, time.Time{}, 0, []audit.Count{
			{Key: "news", Requests: 2, Blocked: 1, BytesIn: 3, BytesOut: 30},
			{Key: "social", Requests: 2, Blocked: 1, BytesIn: 18, BytesOut: 180}}},
		{"actions", "action", time.Time{}, at(3, 0), 0, []audit.Count{
			{Key: "allow", Requests: 2, Blocked: 0, BytesIn: 17, BytesOut: 170},
			{Key: "warn", Requests: 2, Blocked: 1, BytesIn: 12, BytesOut: 120},
			{Key: "block", Requests: 1, Blocked: 1, BytesIn: 2, BytesOut: 20}}},
		{"empty", "host", at(10, 0), at(11, 0), 0, nil},
	} {
		if got := top(tt.dim, tt.since, tt.until, tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Top %s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if _, err := Top(ctx, db, "host; DROP TABLE events", time.Time{}, time.Time{}, 1); err == nil {
		t.Error("Top accepted an unknown dimension")
	}

	// Series.
	hours, err := Series(ctx, db, time.Hour, at(0, 30), at(2, 30))
	if err != nil {
		t.Fatal(err)
	}
	wantHours := []audit.Bucket{
		{Start: at(0, 0), Requests: 3, Blocked: 1, BytesIn: 7, BytesOut: 70},
		{Start: at(1, 0), Requests: 2, Blocked: 1, BytesIn: 24, BytesOut: 240},
		{Start: at(2, 0)},
	}
	if !reflect.DeepEqual(hours, wantHours) {
		t.Errorf("hourly series:\n got %+v\nwant %+v", hours, wantHours)
	}
	hours, err = Series(ctx, db, time.Hour, time.Time{}, time.Time{})
	if err != nil || len(hours) != 4 || !hours[0].Start.Equal(at(0, 0)) || hours[3].Requests != 1 || hours[2].Requests != 0 {
		t.Errorf("open hourly series: %+v, %v", hours, err)
	}
	mins, err := Series(ctx, db, time.Minute, at(0, 4), at(0, 6))
	if err != nil {
		t.Fatal(err)
	}
	wantMins := []audit.Bucket{{Start: at(0, 4)}, {Start: at(0, 5), Requests: 2, Blocked: 1, BytesIn: 3, BytesOut: 30}}
	if !reflect.DeepEqual(mins, wantMins) {
		t.Errorf("minute series:\n got %+v\nwant %+v", mins, wantMins)
	}
	mins, err = Series(ctx, db, time.Minute, at(0, 0), at(4, 0))
	if err != nil || len(mins) != 240 {
		t.Errorf("minute series: %d buckets, %v", len(mins), err)
	}
	var sum int64
	for _, b := range mins {
		sum += b.Requests
	}
	if sum != int64(len(ev)) {
		t.Errorf("minute series sums to %d requests, want %d", sum, len(ev))
	}
	if _, err := Series(ctx, db, time.Second, at(0, 0), at(1, 0)); err == nil {
		t.Error("Series accepted a step of a second")
	}
	if _, err := Series(ctx, db, time.Minute, at(0, 0), at(0, 0).AddDate(10, 0, 0)); err == nil {
		t.Error("Series accepted ten years of minutes")
	}

	// BlockedCount: blocked at 00:05, 01:00 (warn), 03:10.
	for _, tt := range []struct {
		since, until time.Time
		want         int64
	}{
		{time.Time{}, time.Time{}, 3},
		{at(0, 0), at(4, 0), 3},
		{at(0, 6), at(4, 0), 2},  // minute edge
		{at(0, 5), at(0, 6), 1},  // inside one hour
		{at(0, 6), at(3, 10), 1}, // until is exclusive, to the minute
		{at(0, 6), at(3, 11), 2},
		{at(1, 0), at(1, 1), 1},
		{at(0, 30), at(3, 30), 2}, // partial, whole, partial hours
		{time.Time{}, at(1, 0), 1},
		{at(1, 1), time.Time{}, 1},
	} {
		got, err := BlockedCount(ctx, db, tt.since, tt.until)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("BlockedCount(%v, %v) = %d, want %d", tt.since, tt.until, got, tt.want)
		}
	}

	// UserReport.
	ua, err := UserReport(ctx, db, "alice", time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := UserActivity{User: "alice", Requests: 3, Blocked: 1, BytesIn: 19, BytesOut: 190,
		TopHosts: []audit.Count{
			{Key: "a.com", Requests: 2, Blocked: 1, BytesIn: 3, BytesOut: 30},
			{Key: "b.com", Requests: 1, BytesIn: 16, BytesOut: 160}},
		TopCategories: []audit.Count{ // ties by key
			{Key: "news", Requests: 2, Blocked: 1, BytesIn: 3, BytesOut: 30},
			{Key: "social", Requests: 2, Blocked: 1, BytesIn: 18, BytesOut: 180}},
	}
	if !reflect.DeepEqual(ua, want) {
		t.Errorf("UserReport:\n got %+v\nwant %+v", ua, want)
	}
	ua, err = UserReport(ctx, db, "alice", at(0, 6), at(2, 0), 1)
	want = UserActivity{User: "alice", Requests: 1, BytesIn: 16, BytesOut: 160,
		TopHosts:      []audit.Count{{Key: "b.com", Requests: 1, BytesIn: 16, BytesOut: 160}},
		TopCategories: []audit.Count{{Key: "social", Requests: 1, BytesIn: 16, BytesOut: 160}}}
	if err != nil || !reflect.DeepEqual(ua, want) {
		t.Errorf("UserReport range:\n got %+v, %v\nwant %+v", ua, err, want)
	}
	ua, err = UserReport(ctx, db, "' OR 1=1 --", time.Time{}, time.Time{}, 5)
	if err != nil || !reflect.DeepEqual(ua, UserActivity{User: "' OR 1=1 --"}) {
		t.Errorf("UserReport unknown: %+v, %v", ua, err)
	}
}

// Top, Series, BlockedCount and UserReport agree with the raw events.
func TestAggregatesModel(t *testing.T) {
	env := qtSetup(t, 2000)
	ctx := context.Background()
	since, until := qtBase.Add(7*time.Hour+13*time.Minute), qtBase.Add(40*time.Hour+2*time.Minute)
	hlo, hhi := since.Truncate(time.Hour), until.Add(time.Hour-1).Truncate(time.Hour)
	in := func(e audit.StoredEvent, lo, hi time.Time) bool { return !e.Time.Before(lo) && e.Time.Before(hi) }

	hosts := map[string]int64{}
	var blocked int64
	for _, e := range env.events {
		if in(e, hlo, hhi) {
			hosts[e.Host]++
		}
		if in(e, since.Truncate(time.Minute), until.Add(time.Minute-1).Truncate(time.Minute)) && qtBlocked(&e.Event) {
			blocked++
		}
	}
	top, err := Top(ctx, env.db, "host", since, until, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != len(hosts) {
		t.Fatalf("Top: %d hosts, want %d", len(top), len(hosts))
	}
	for i, c := range top {
		if c.Requests != hosts[c.Key] || (i > 0 && top[i-1].Requests < c.Requests) {
			t.Errorf("Top %d: %+v, want %d requests, descending", i, c, hosts[c.Key])
		}
	}
	got, err := BlockedCount(ctx, env.db, since, until)
	if err != nil || got != blocked {
		t.Errorf("BlockedCount = %d, %v; want %d", got, err, blocked)
	}
	series, err := Series(ctx, env.db, time.Minute, since, until)
	if err != nil {
		t.Fatal(err)
	}
	var sb int64
	for _, b := range series {
		sb += b.Blocked
	}
	if sb != blocked {
		t.Errorf("minute series: %d blocked, want %d", sb, blocked)
	}

	for _, user := range qtUsers {
		var want UserActivity
		hostN := map[string]int64{}
		for _, e := range env.events {
			if e.User == user && in(e, since, until) {
				want.Requests++
				if qtBlocked(&e.Event) {
					want.Blocked++
				}
				want.BytesIn += e.BytesIn
				want.BytesOut += e.BytesOut
				hostN[e.Host]++
			}
		}
		ua, err := UserReport(ctx, env.db, user, since, until, 3)
		if err != nil {
			t.Fatal(err)
		}
		if ua.Requests != want.Requests || ua.Blocked != want.Blocked || ua.BytesIn != want.BytesIn || ua.BytesOut != want.BytesOut {
			t.Errorf("UserReport(%q) = %+v, want %+v", user, ua, want)
		}
		if len(ua.TopHosts) != min(3, len(hostN)) {
			t.Errorf("UserReport(%q): %d top hosts", user, len(ua.TopHosts))
		}
		for _, c := range ua.TopHosts {
			if c.Requests != hostN[c.Key] {
				t.Errorf("UserReport(%q): host %+v, want %d", user, c, hostN[c.Key])
			}
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd dir?#%")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.db")
	w := qtOpen(t, path)
	ids := qtInsert(t, w, qtFixture(10, 2))

	db, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := Search(context.Background(), db, audit.Query{})
	if err != nil || len(p.Events) != len(ids) {
		t.Fatalf("Search: %d events, %v", len(p.Events), err)
	}
	if _, err := db.Exec(`DELETE FROM events`); err == nil {
		t.Error("a read-only database accepted a DELETE")
	}
	// The writer keeps writing; the reader sees it.
	qtInsert(t, w, qtFixture(5, 3))
	p, err = Search(context.Background(), db, audit.Query{})
	if err != nil || len(p.Events) != len(ids)+5 {
		t.Fatalf("Search after writes: %d events, %v", len(p.Events), err)
	}

	if _, err := OpenReadOnly(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("OpenReadOnly opened a missing file")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("OpenReadOnly created a file")
	}
	empty := filepath.Join(dir, "empty.db")
	e, _ := sql.Open("sqlite3", empty)
	e.Exec(`CREATE TABLE x (y)`)
	e.Close()
	if _, err := OpenReadOnly(empty); err == nil {
		t.Error("OpenReadOnly opened a database without the schema")
	}
}

func TestTimeBounds(t *testing.T) {
	if qUnixNano(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)) <= 0 {
		t.Error("far future overflowed")
	}
	if qUnixNano(time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)) >= 0 {
		t.Error("far past overflowed")
	}
	env := qtSetup(t, 50)
	p, err := Search(context.Background(), env.db, audit.Query{Since: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), Limit: 1000})
	if err != nil || len(p.Events) != 50 {
		t.Errorf("wide range: %d events, %v", len(p.Events), err)
	}
}

// The Store's methods read what its writer wrote, and its rollups agree
// with qtInsert's (so the other tests' data is what the Store makes).
func TestStoreMethods(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Path: filepath.Join(dir, "audit.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events := qtFixture(800, 5)
	for _, e := range events {
		c := *e
		s.Record(&c)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	ref := qtOpen(t, filepath.Join(dir, "ref.db"))
	qtInsert(t, ref, events)

	ctx := context.Background()
	since, until := qtBase.Add(5*time.Hour+30*time.Minute), qtBase.Add(50*time.Hour+5*time.Minute)
	same := func(what string, got, want any, gerr, werr error) {
		t.Helper()
		if gerr != nil || werr != nil {
			t.Fatalf("%s: %v, %v", what, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: store %+v\nwant %+v", what, got, want)
		}
	}
	for _, dim := range []string{"host", "user", "category", "action"} {
		got, gerr := s.Top(ctx, dim, since, until, 20)
		want, werr := Top(ctx, ref, dim, since, until, 20)
		same("Top "+dim, got, want, gerr, werr)
	}
	for _, step := range []time.Duration{time.Minute, time.Hour} {
		got, gerr := s.Series(ctx, step, since, until)
		want, werr := Series(ctx, ref, step, since, until)
		same("Series", got, want, gerr, werr)
	}
	gb, gerr := s.BlockedCount(ctx, since, until)
	wb, werr := BlockedCount(ctx, ref, since, until)
	same("BlockedCount", gb, wb, gerr, werr)
	gu, gerr := s.UserReport(ctx, "alice", since, until, 5)
	wu, werr := UserReport(ctx, ref, "alice", since, until, 5)
	same("UserReport", gu, wu, gerr, werr)

	q := audit.Query{HostSuffix: "example.com", Since: since, Until: until, Limit: 7}
	var got, want []string
	for {
		p, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			got = append(got, e.RequestID)
		}
		if p.Next == (audit.Cursor{}) {
			break
		}
		q.Before = p.Next
	}
	q.Before, q.Limit = audit.Cursor{}, MaxLimit
	p, err := Search(ctx, ref, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Events {
		want = append(want, e.RequestID)
	}
	// Equal times may order differently (ids differ): compare as sets.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Search: %d events, want %d", len(got), len(want))
	}
	var buf strings.Builder
	n, err := s.Export(ctx, &buf, FormatSquid, since, until)
	if err != nil || n != int64(strings.Count(buf.String(), "\n")) || n == 0 {
		t.Errorf("Export: %d rows, %v", n, err)
	}
}

// Migration 3 backfills the client rollups of a database written before
// it, so that searching by client finds the old events.
func TestMigrationBackfillsClientRollups(t *testing.T) {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(t.TempDir(), "old.db"))}
	db, err := sql.Open("sqlite3", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, m := range migrations[:2] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	evs := []*audit.Event{
		{Time: qtBase, Client: "10.0.0.1", Action: "block", BytesIn: 1, BytesOut: 10},
		{Time: qtBase.Add(time.Minute), Client: "10.0.0.1", Action: "allow", BytesIn: 2, BytesOut: 20},
		{Time: qtBase.Add(2 * time.Hour), Client: "10.0.0.1", Action: "allow"},
		{Time: qtBase.Add(time.Minute), Client: "10.0.0.2", Action: "warn", Reason: "warn_accepted"},
	}
	for _, e := range evs {
		if _, err := db.Exec(`INSERT INTO events (time, duration, kind, request_id, client, user, "groups",
	method, scheme, host, port, path, query, status, bytes_in, bytes_out, action, rule, categories, category,
	entry, source, reason, policy, cache, upstream, user_agent, content_type, error, detail, hash)
	VALUES (?, 0, 'http', '', ?, '', '', '', '', '', 0, '', '', 0, ?, ?, ?, '', '', '', '', '', ?, '', '', '', '', '', '', '', x'00')`,
			e.Time.UnixNano(), e.Client, e.BytesIn, e.BytesOut, e.Action, e.Reason); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(migrations[2]); err != nil {
		t.Fatal(err)
	}
	type row struct {
		hour                       int64
		key                        string
		requests, blocked, in, out int64
	}
	rows, err := db.Query(`SELECT hour, key, requests, blocked, bytes_in, bytes_out FROM rollup_hour WHERE dim = 'client' ORDER BY hour, key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.hour, &r.key, &r.requests, &r.blocked, &r.in, &r.out); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	h := qtBase.Unix()
	want := []row{{h, "10.0.0.1", 2, 1, 3, 30}, {h, "10.0.0.2", 1, 0, 0, 0}, {h + 7200, "10.0.0.1", 1, 0, 0, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("client rollups after migration 3:\n got %v\nwant %v", got, want)
	}
	p, err := Search(context.Background(), db, audit.Query{Client: "10.0.0.1"})
	if err != nil || len(p.Events) != 3 {
		t.Errorf("search by client after migration: %d events, %v", len(p.Events), err)
	}
}
