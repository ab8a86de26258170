package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waygate/audit"
)

var testT0 = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// testEvent is a realistic event with every field set; i makes it unique.
func testEvent(i int) *audit.Event {
	hosts := []string{"example.com", "www.example.org", "api.github.com", "cdn.jsdelivr.net"}
	users := []string{"alice", "bob", "carol", ""}
	actions := []string{"allow", "block", "warn", ""}
	reasons := []string{"rule", "category", "warn_accepted", ""}
	cats := [][]string{{"news"}, {"social", "ads"}, nil, {"tracking", "ads", "analytics"}}
	return &audit.Event{
		Time:        testT0.Add(time.Duration(i) * 7 * time.Second),
		Duration:    time.Duration(i%1000) * time.Millisecond,
		Kind:        audit.KindHTTP,
		RequestID:   fmt.Sprintf("req-%08d", i),
		Client:      fmt.Sprintf("10.0.%d.%d", i/250%250, i%250),
		User:        users[i%len(users)],
		Groups:      []string{"staff", "eng"}[:i%3%2+1],
		Method:      "GET",
		Scheme:      "https",
		Host:        hosts[i%len(hosts)],
		Port:        443,
		Path:        fmt.Sprintf("/v1/items/%d", i),
		Query:       "q=search+terms&page=2",
		Status:      200 + i%5,
		BytesIn:     int64(100 + i),
		BytesOut:    int64(5000 + 3*i),
		Action:      actions[i%len(actions)],
		Rule:        "rule-7",
		Categories:  cats[i%len(cats)],
		Category:    "news",
		Entry:       "*.example.com",
		Source:      "blocklist",
		Reason:      reasons[i/4%len(reasons)],
		Policy:      "default",
		Cache:       "MISS",
		Upstream:    "93.184.216.34:443",
		UserAgent:   "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		ContentType: "application/json; charset=utf-8",
		Error:       "",
		Detail:      `{"k":"v"}`,
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t testing.TB, path string, mod func(*Options)) *Store {
	t.Helper()
	o := Options{Path: path, Logger: quietLogger()}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB opens a second, independent connection pool on path.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// readEvents reads all events in id order (a local scan, independent of
// the read side).
func readEvents(t testing.TB, db *sql.DB) []audit.StoredEvent {
	t.Helper()
	rows, err := db.Query(`SELECT ` + chainColumns + ` FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []audit.StoredEvent
	for rows.Next() {
		var r chainRow
		if err := rows.Scan(r.scanDest()...); err != nil {
			t.Fatal(err)
		}
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		out = append(out, audit.StoredEvent{ID: r.id, Event: audit.Event{
			Time: time.Unix(0, r.time).UTC(), Duration: time.Duration(r.duration), Kind: audit.Kind(r.kind),
			RequestID: r.requestID, Client: r.client, User: r.user, Groups: split(r.groups),
			Method: r.method, Scheme: r.scheme, Host: r.host, Port: uint16(r.port), Path: r.path,
			Query: r.query, Status: int(r.status), BytesIn: r.bytesIn, BytesOut: r.bytesOut,
			Action: r.action, Rule: r.rule, Categories: split(r.categories), Category: r.category,
			Entry: r.entry, Source: r.source, Reason: r.reason, Policy: r.policy, Cache: r.cache,
			Upstream: r.upstream, UserAgent: r.userAgent, ContentType: r.contentType,
			Error: r.errText, Detail: r.detail,
		}})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkExactlyOnce fails unless the events' request IDs are exactly want,
// each once.
func checkExactlyOnce(t testing.TB, db *sql.DB, want []string) {
	t.Helper()
	rows, err := db.Query(`SELECT request_id, count(*) FROM events GROUP BY request_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		got[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing, dup := 0, 0
	for _, id := range want {
		switch got[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
		delete(got, id)
	}
	if missing > 0 || dup > 0 || len(got) > 0 {
		t.Fatalf("%d events missing, %d duplicated, %d unexpected (of %d)", missing, dup, len(got), len(want))
	}
}

func mustVerify(t testing.TB, path string, wantEvents int64) {
	t.Helper()
	res, err := Verify(context.Background(), path)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !res.OK || res.Events != wantEvents {
		t.Fatalf("Verify = %+v, want OK with %d events", res, wantEvents)
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.db")
	s := openTest(t, path, func(o *Options) { o.BatchSize = 100 })
	const n = 1000
	want := make([]*audit.Event, n)
	for i := range want {
		want[i] = testEvent(i)
		s.Record(want[i])
	}
	// One event without a time is stamped with Now.
	s.Record(&audit.Event{Kind: audit.KindAdmin, RequestID: "no-time", Detail: "{}"})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readEvents(t, s.DB())
	if len(got) != n+1 {
		t.Fatalf("%d rows, want %d", len(got), n+1)
	}
	for i, g := range got[:n] {
		if g.ID != int64(i+1) {
			t.Fatalf("row %d has id %d", i, g.ID)
		}
		w := *want[i]
		w.Categories = slices.Clone(w.Categories)
		slices.Sort(w.Categories)
		if !g.Time.Equal(w.Time) {
			t.Fatalf("event %d: time %v, want %v", i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g.Event, w) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, g.Event, w)
		}
	}
	if last := got[n]; last.RequestID != "no-time" || last.Time.IsZero() || time.Since(last.Time) > time.Hour {
		t.Fatalf("event without time stored as %+v", last.Event)
	}
	st := s.Stats()
	if st.Queued != n+1 || st.Written != n+1 || st.Spooled != 0 || st.Replayed != 0 || st.Dropped != 0 || st.QueueLen != 0 || st.LastError != "" {
		t.Fatalf("Stats = %+v", st)
	}
	var av int
	if err := s.DB().QueryRow(`PRAGMA auto_vacuum`).Scan(&av); err != nil || av != 2 {
		t.Fatalf("auto_vacuum = %d, %v; want 2 (incremental)", av, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, n+1)

	// Reopen: the chain continues.
	s2 := openTest(t, path, nil)
	s2.Record(testEvent(n + 1))
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, n+2)
}

func TestRollups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, func(o *Options) { o.BatchSize = 37 })
	type key struct {
		hour     int64
		dim, key string
	}
	type sums struct{ req, blocked, in, out int64 }
	wantHour := map[key]sums{}
	wantMin := map[int64]sums{}
	add := func(m map[key]sums, k key, e *audit.Event) {
		v := m[k]
		v.req++
		if (e.Action == "block" || e.Action == "warn") && e.Reason != "warn_accepted" {
			v.blocked++
		}
		v.in += e.BytesIn
		v.out += e.BytesOut
		m[k] = v
	}
	const n = 3000 // 7 s apart: about 6 hours, 350 minutes
	for i := range n {
		e := testEvent(i)
		if i%10 == 0 {
			e.Categories = []string{"dup", "dup"}
		}
		if i%7 == 0 {
			e.Error = []string{"timeout", "refused"}[i%2]
		}
		if i%11 == 0 { // an admin action's error is no upstream failure
			e.Kind, e.Error = audit.KindAdmin, "reload failed"
		}
		s.Record(e)
		if i%500 == 0 {
			if err := s.Flush(); err != nil { // several transactions per bucket
				t.Fatal(err)
			}
		}
		h := e.Time.Unix() / 3600 * 3600
		add(wantHour, key{h, "total", ""}, e)
		add(wantHour, key{h, "host", e.Host}, e)
		add(wantHour, key{h, "user", e.User}, e)
		add(wantHour, key{h, "client", e.Client}, e)
		add(wantHour, key{h, "action", e.Action}, e)
		if e.Error != "" && e.Kind != audit.KindAdmin {
			add(wantHour, key{h, "error", e.Error}, e)
		}
		seen := map[string]bool{}
		for _, c := range e.Categories {
			if !seen[c] {
				seen[c] = true
				add(wantHour, key{h, "category", c}, e)
			}
		}
		mk := key{hour: e.Time.Unix() / 60 * 60}
		mm := map[key]sums{mk: wantMin[mk.hour]}
		add(mm, mk, e)
		wantMin[mk.hour] = mm[mk]
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	gotHour := map[key]sums{}
	rows, err := s.DB().Query(`SELECT hour, dim, key, requests, blocked, bytes_in, bytes_out FROM rollup_hour`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k key
		var v sums
		if err := rows.Scan(&k.hour, &k.dim, &k.key, &v.req, &v.blocked, &v.in, &v.out); err != nil {
			t.Fatal(err)
		}
		gotHour[k] = v
	}
	rows.Close()
	if !reflect.DeepEqual(gotHour, wantHour) {
		t.Fatalf("rollup_hour:\n got %v\nwant %v", gotHour, wantHour)
	}
	gotMin := map[int64]sums{}
	rows, err = s.DB().Query(`SELECT minute, requests, blocked, bytes_in, bytes_out FROM rollup_minute`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m int64
		var v sums
		if err := rows.Scan(&m, &v.req, &v.blocked, &v.in, &v.out); err != nil {
			t.Fatal(err)
		}
		gotMin[m] = v
	}
	rows.Close()
	if !reflect.DeepEqual(gotMin, wantMin) {
		t.Fatalf("rollup_minute: got %d rows, want %d; differ", len(gotMin), len(wantMin))
	}
	if wantHour[key{testT0.Unix() / 3600 * 3600, "total", ""}].blocked == 0 {
		t.Fatal("test data has no blocked events")
	}

	// Migration 5 backfills the error rollups of older databases: from
	// the same events it gives what the writer keeps.
	errRows := func() map[key]sums {
		got := map[key]sums{}
		rows, err := s.DB().Query(`SELECT hour, dim, key, requests, blocked, bytes_in, bytes_out FROM rollup_hour WHERE dim = 'error'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k key
			var v sums
			if err := rows.Scan(&k.hour, &k.dim, &k.key, &v.req, &v.blocked, &v.in, &v.out); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		return got
	}
	kept := errRows()
	if len(kept) == 0 {
		t.Fatal("no error rollups")
	}
	if _, err := s.DB().Exec(`DELETE FROM rollup_hour WHERE dim = 'error'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(migrations[4]); err != nil {
		t.Fatal(err)
	}
	if got := errRows(); !reflect.DeepEqual(got, kept) {
		t.Fatalf("backfilled error rollups:\n got %v\nwant %v", got, kept)
	}
}

// lockDB takes the write lock of path from another connection (BEGIN
// EXCLUSIVE) until the returned function is called.
func lockDB(t *testing.T, path string) (release func()) {
	t.Helper()
	db := rawDB(t, path)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(context.Background(), `COMMIT`); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
}

func recordConcurrently(s *Store, prefix string, workers, each int) []string {
	var ids []string
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range workers {
		wg.Go(func() {
			for j := range each {
				e := testEvent(w*each + j)
				e.RequestID = fmt.Sprintf("%s-%d-%d", prefix, w, j)
				s.Record(e)
				mu.Lock()
				ids = append(ids, e.RequestID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ids
}

func TestFullQueueSpoolsAndReplays(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, func(o *Options) {
		o.QueueSize = 4
		o.BatchSize = 50
		o.WaitBound = time.Millisecond
		o.busyTimeout = 20 * time.Millisecond
	})
	first := recordConcurrently(s, "before", 2, 100)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	release := lockDB(t, path)
	during := recordConcurrently(s, "locked", 4, 500)
	st := s.Stats()
	if st.Spooled == 0 {
		t.Fatalf("nothing spooled while the database was locked: %+v", st)
	}
	release()
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush after unlock: %v", err)
	}
	all := append(first, during...)
	checkExactlyOnce(t, s.DB(), all)
	st = s.Stats()
	if st.Written+st.Replayed != int64(len(all)) || st.Dropped != 0 {
		t.Fatalf("Stats = %+v, want Written+Replayed = %d", st, len(all))
	}
	if st.Queued+st.Spooled < int64(len(all)) {
		t.Fatalf("Stats = %+v: accepted events not counted", st)
	}
	if fi, err := os.Stat(path + ".spool"); err == nil && fi.Size() != 0 {
		t.Fatalf("spool still holds %d bytes", fi.Size())
	}
	if left, _ := replayFiles(path + ".spool"); len(left) != 0 {
		t.Fatalf("replay files left: %v", left)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, int64(len(all)))
}

// TestWriteFailure makes every insert fail (a trigger raising an error,
// which works even as root, unlike chmod) while events keep coming.
func TestWriteFailureSpoolsAndRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, func(o *Options) { o.BatchSize = 64 })
	first := recordConcurrently(s, "ok", 2, 200)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	if _, err := raw.Exec(`CREATE TRIGGER fail_inserts BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END`); err != nil {
		t.Fatal(err)
	}
	failed := recordConcurrently(s, "fail", 4, 250)
	err := s.Flush()
	if err == nil || !strings.Contains(err.Error(), "simulated disk failure") {
		t.Fatalf("Flush while failing = %v, want the insert error", err)
	}
	st := s.Stats()
	if st.Spooled != int64(len(failed)) || st.Written != int64(len(first)) || st.LastError == "" {
		t.Fatalf("Stats while failing = %+v", st)
	}
	checkExactlyOnce(t, raw, first)
	if _, err := raw.Exec(`DROP TRIGGER fail_inserts`); err != nil {
		t.Fatal(err)
	}
	more := recordConcurrently(s, "after", 2, 100)
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush after recovery: %v", err)
	}
	all := slices.Concat(first, failed, more)
	checkExactlyOnce(t, raw, all)
	if st := s.Stats(); st.Spooled < int64(len(failed)) || st.Replayed != st.Spooled || st.Written+st.Replayed != int64(len(all)) {
		t.Fatalf("Stats after recovery = %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, int64(len(all)))
}

func TestRecordAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, nil)
	s.Record(testEvent(1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	late := testEvent(2)
	late.RequestID = "late"
	s.Record(late) // must not panic
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if st := s.Stats(); st.Spooled != 1 || st.Dropped != 0 {
		t.Fatalf("Stats = %+v, want 1 spooled", st)
	}
	data, err := os.ReadFile(path + ".spool")
	if err != nil || strings.Count(string(data), "\n") != 1 || !strings.Contains(string(data), `"late"`) {
		t.Fatalf("spool = %q, %v", data, err)
	}
	s2 := openTest(t, path, nil)
	if st := s2.Stats(); st.Replayed != 1 {
		t.Fatalf("Stats after reopen = %+v, want 1 replayed", st)
	}
	checkExactlyOnce(t, s2.DB(), []string{"req-00000001", "late"})
	if _, err := os.Stat(path + ".spool"); err == nil {
		t.Fatal("spool not removed after replay")
	}
	s2.Close()
	mustVerify(t, path, 2)
}

// TestReplayResumes: a crash after a replayed chunk was committed resumes
// at the committed offset (nothing twice), and a torn last line is skipped.
func TestReplayResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s := openTest(t, path, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	name := path + ".spool.00000000000000000001.replay"
	var buf []byte
	var done int64
	var want []string
	for i := range 10 {
		e := testEvent(i)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		buf = append(append(buf, b...), '\n')
		if i == 3 {
			done = int64(len(buf)) // events 0..3 "already committed"
		}
		if i > 3 {
			want = append(want, e.RequestID)
		}
	}
	buf = append(buf, `{"RequestID":"torn`...)
	if err := os.WriteFile(name, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	if _, err := raw.Exec(`INSERT INTO spool_replay (id, file, done_bytes) VALUES (1, ?, ?)`, filepath.Base(name), done); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, path, func(o *Options) { o.BatchSize = 4 })
	if st := s2.Stats(); st.Replayed != 6 {
		t.Fatalf("Stats = %+v, want 6 replayed", st)
	}
	checkExactlyOnce(t, s2.DB(), want)
	if _, err := os.Stat(name); err == nil {
		t.Fatal("replay file not removed")
	}
}

func TestVerifyAndRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	now := testT0.Add(24 * time.Hour)
	s := openTest(t, path, func(o *Options) { o.Now = func() time.Time { return now } })
	const n = 2000 // 7 s apart from testT0
	for i := range n {
		s.Record(testEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, n)

	// Tampering is detected at the changed row.
	raw := rawDB(t, path)
	const k = 777
	if _, err := raw.Exec(`UPDATE events SET host = 'evil' WHERE id = ?`, k); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(context.Background(), path)
	if err != nil || res.OK || res.FirstBadID != k || res.Events != k-1 {
		t.Fatalf("Verify after tampering = %+v, %v; want FirstBadID %d", res, err, k)
	}
	if _, err := raw.Exec(`UPDATE events SET host = ? WHERE id = ?`, testEvent(k-1).Host, k); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, n)
	// Deleting a row is detected too.
	if _, err := raw.Exec(`DELETE FROM events WHERE id = 5`); err != nil {
		t.Fatal(err)
	}
	if res, _ := Verify(context.Background(), path); res.OK || res.FirstBadID != 6 {
		t.Fatalf("Verify after delete = %+v, want FirstBadID 6", res)
	}
	s.Close()

	// A fresh store for retention.
	path = filepath.Join(t.TempDir(), "audit.db")
	s = openTest(t, path, func(o *Options) { o.Now = func() time.Time { return now } })
	for i := range n {
		s.Record(testEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	cutoff := testT0.Add(700 * time.Second) // events 0..99 are older
	removed, err := s.Prune(context.Background(), cutoff, 0)
	if err != nil || removed != 100 {
		t.Fatalf("Prune by age = %d, %v; want 100", removed, err)
	}
	mustVerify(t, path, n-100)
	var anchorID, minHour int64
	if err := s.DB().QueryRow(`SELECT event_id FROM chain_anchor`).Scan(&anchorID); err != nil || anchorID != 100 {
		t.Fatalf("anchor = %d, %v; want 100", anchorID, err)
	}
	if err := s.DB().QueryRow(`SELECT min(minute) FROM rollup_minute`).Scan(&minHour); err != nil || minHour+60 <= cutoff.Unix() {
		t.Fatalf("rollup_minute keeps %d (cutoff %d), %v", minHour, cutoff.Unix(), err)
	}
	// New events continue the chain after pruning.
	for i := n; i < n+100; i++ {
		s.Record(testEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, n)

	// By size.
	used, err := s.usedBytes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pagesBefore := pageCount(t, s)
	removed, err = s.Prune(context.Background(), time.Time{}, used/2)
	if err != nil || removed == 0 {
		t.Fatalf("Prune by size = %d, %v", removed, err)
	}
	if u, _ := s.usedBytes(context.Background()); u > used/2 {
		t.Fatalf("used %d bytes after Prune, limit %d", u, used/2)
	}
	mustVerify(t, path, n-removed)
	if after := pageCount(t, s); after >= pagesBefore {
		t.Fatalf("%d pages after Prune, %d before: space not reclaimed", after, pagesBefore)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything removed: the chain goes on from the anchor.
	s = openTest(t, path, func(o *Options) { o.Now = func() time.Time { return now } })
	if _, err := s.Prune(context.Background(), now.Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, 0)
	s.Record(testEvent(1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, 1)
}

func TestStartRetentionStopsOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	now := testT0.Add(48 * time.Hour)
	s := openTest(t, path, func(o *Options) { o.Now = func() time.Time { return now } })
	for i := range 100 {
		s.Record(testEvent(i))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.StartRetention(time.Hour, 0, time.Hour)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.StartRetention(time.Hour, 0, time.Hour) // after Close: nothing
	res, err := Verify(context.Background(), path)
	if err != nil || !res.OK {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}

func pageCount(t testing.TB, s *Store) int64 {
	t.Helper()
	var n int64
	if err := s.DB().QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The database and its WAL files are readable by their owner only.
func TestDatabaseFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s.Record(&audit.Event{Time: time.Now(), Kind: audit.KindHTTP, Host: "a.example"})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	s.Close()
}

// TestLingerEndsEarly checks that the writer, lingering for more events,
// stops waiting as soon as a full batch is queued, a Flush is asked for, or
// the store is closed: with an hour-long linger, each of these gets the
// events written at once.
func TestLingerEndsEarly(t *testing.T) {
	const batch = 8
	cases := []struct {
		name   string
		events int
		end    func(*Store) error
	}{
		{"full batch", batch, nil},
		{"flush", 3, (*Store).Flush},
		{"close", 3, (*Store).Close},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			s := openTest(t, path, func(o *Options) { o.BatchSize = batch; o.Linger = time.Hour })
			for i := range c.events {
				s.Record(testEvent(i))
			}
			if c.end != nil {
				if err := c.end(s); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(20 * time.Second)
			for s.Stats().Written < int64(c.events) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d events written: the writer is still lingering", s.Stats().Written, c.events)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
