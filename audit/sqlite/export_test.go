package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"waygate/audit"
)

// qtAscending returns the model's ids for [since, until), oldest first.
func qtAscending(env *qtEnv, since, until time.Time) []int64 {
	ids := qtExpect(env.events, audit.Query{Since: since, Until: until})
	slices.Reverse(ids)
	return ids
}

func TestExportCounts(t *testing.T) {
	env := qtSetup(t, 1500)
	ctx := context.Background()
	day := qtBase.Add(24 * time.Hour)
	for _, r := range []struct {
		name         string
		since, until time.Time
	}{
		{"all", time.Time{}, time.Time{}},
		{"day", day, day.Add(24 * time.Hour)},
		{"since", day, time.Time{}},
		{"until", time.Time{}, day},
		{"empty", day, day},
	} {
		p, err := Search(ctx, env.db, audit.Query{Since: r.since, Until: r.until, Limit: MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{FormatCSV, FormatJSONL, FormatSquid} {
			var buf bytes.Buffer
			n, err := Export(ctx, env.db, &buf, format, r.since, r.until)
			if err != nil {
				t.Fatalf("%s %s: %v", r.name, format, err)
			}
			lines := strings.Count(buf.String(), "\n")
			if format == FormatCSV {
				// Quoted fields may hold newlines: count records, less the
				// header.
				recs, err := csv.NewReader(&buf).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				lines = len(recs) - 1
			}
			want := len(p.Events)
			if format == FormatSquid {
				want = 0
				for _, e := range p.Events {
					if squidKind(e.Kind) {
						want++
					}
				}
			}
			if n != int64(want) || lines != want {
				t.Errorf("%s %s: %d rows, %d lines; Search found %d", r.name, format, n, lines, want)
			}
		}
	}
}

func TestExportCSV(t *testing.T) {
	env := qtSetup(t, 500)
	since, until := qtBase.Add(10*time.Hour), qtBase.Add(50*time.Hour)
	var buf bytes.Buffer
	n, err := Export(context.Background(), env.db, &buf, FormatCSV, since, until)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], qExportColumns) {
		t.Fatalf("header %v", recs[0])
	}
	byID := map[int64]audit.StoredEvent{}
	for _, e := range env.events {
		byID[e.ID] = e
	}
	var ids []int64
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	for _, rec := range recs[1:] {
		if len(rec) != len(qExportColumns) {
			t.Fatalf("record of %d fields", len(rec))
		}
		id, _ := strconv.ParseInt(rec[col["id"]], 10, 64)
		ids = append(ids, id)
		e := byID[id]
		tm, err := time.Parse(time.RFC3339Nano, rec[col["time"]])
		if err != nil || !tm.Equal(e.Time) {
			t.Errorf("time %q, want %v (%v)", rec[col["time"]], e.Time, err)
		}
		for name, want := range map[string]string{
			"duration": strconv.FormatInt(int64(e.Duration), 10), "kind": string(e.Kind), "user": e.User,
			"client": e.Client, "host": e.Host, "path": e.Path, "query": e.Query,
			"status": strconv.Itoa(e.Status), "bytes_out": strconv.FormatInt(e.BytesOut, 10),
			"categories": strings.Join(e.Categories, ","), "action": e.Action, "reason": e.Reason,
			"request_id": e.RequestID, "upstream": e.Upstream,
		} {
			if got := rec[col[name]]; got != want {
				t.Errorf("event %d %s = %q, want %q", id, name, got, want)
			}
		}
		if len(rec[col["hash"]]) != 64 {
			t.Errorf("hash %q", rec[col["hash"]])
		}
	}
	if want := qtAscending(env, since, until); !slices.Equal(ids, want) || n != int64(len(want)) {
		t.Errorf("exported %d rows (n=%d), want %d oldest first", len(ids), n, len(want))
	}
}

func TestExportJSONL(t *testing.T) {
	env := qtSetup(t, 500)
	// Values JSON must escape.
	qtInsert(t, env.db, []*audit.Event{{Time: qtBase.Add(time.Hour), Kind: audit.KindHTTP, User: "a\"b\\c\n<d>",
		Path: "/\x00\u2028", Detail: `{"k":"v"}`}})
	var buf bytes.Buffer
	n, err := Export(context.Background(), env.db, &buf, FormatJSONL, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var lines int64
	var last time.Time
	seenSpecial := false
	for sc.Scan() {
		lines++
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v: %s", lines, err, sc.Bytes())
		}
		if len(m) != len(qExportColumns) {
			t.Fatalf("line %d: %d fields", lines, len(m))
		}
		for _, c := range qExportColumns {
			if _, ok := m[c]; !ok {
				t.Fatalf("line %d: no %q", lines, c)
			}
		}
		tm, err := time.Parse(time.RFC3339Nano, m["time"].(string))
		if err != nil || tm.Before(last) {
			t.Fatalf("line %d: time %v after %v, %v", lines, tm, last, err)
		}
		last = tm
		if _, ok := m["id"].(float64); !ok {
			t.Fatalf("id %T", m["id"])
		}
		if m["user"] == "a\"b\\c\n<d>" && m["path"] == "/\x00\u2028" && m["detail"] == `{"k":"v"}` {
			seenSpecial = true
		}
	}
	if lines != n || n != int64(len(env.events))+1 || !seenSpecial {
		t.Errorf("%d lines, n=%d, want %d; special event round trip: %v", lines, n, len(env.events)+1, seenSpecial)
	}
}

func TestExportSquid(t *testing.T) {
	db := qtOpen(t, filepath.Join(t.TempDir(), "a.db"))
	t0 := time.Unix(1700000000, 123456789).UTC()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	ev := []*audit.Event{
		{Time: at(0), Duration: 120 * time.Millisecond, Kind: audit.KindHTTP, Client: "10.0.0.5", User: "alice",
			Method: "GET", Scheme: "http", Host: "example.com", Port: 80, Path: "/", Status: 200, BytesOut: 1234,
			Action: "allow", Upstream: "93.184.216.34:80", ContentType: "text/html"},
		{Time: at(1), Duration: 65432 * time.Millisecond, Kind: audit.KindConnect, Client: "10.0.0.6",
			Method: "CONNECT", Host: "example.com", Port: 443, Status: 200, BytesIn: 900, BytesOut: 5000,
			Action: "allow", Upstream: "[2606:2800:220:1::]:443"},
		{Time: at(2), Duration: 3 * time.Millisecond, Kind: audit.KindHTTP, Client: "10.0.0.7", User: "bob",
			Method: "GET", Scheme: "http", Host: "bad.example", Port: 8080, Path: "/x", Query: "a=1", Status: 403,
			BytesOut: 512, Action: "block", ContentType: "text/html"},
		{Time: at(3), Kind: audit.KindHTTP, Client: "10.0.0.8", Method: "GET", Scheme: "http", Host: "example.com",
			Port: 80, Path: "/logo.png", Status: 200, BytesOut: 99, Action: "allow", Cache: "HIT", ContentType: "image/png"},
		{Time: at(4), Kind: audit.KindConnect, Client: "10.0.0.9", Method: "CONNECT", Host: "blocked.example", Port: 443,
			Status: 403, Action: "block"},
		{Time: at(5), Kind: audit.KindHTTP, Client: "10.0.0.5", User: "John Doe\t", Method: "GET", Scheme: "http",
			Host: "example.com", Port: 80, Path: "/a b\nc\r\x7f", Status: 0, Action: "warn", Reason: "warn_accepted",
			ContentType: "text/html; charset=utf-8", Upstream: "93.184.216.34:80"},
		{Time: at(6), Kind: audit.KindHTTP, Client: "2001:db8::1", Method: "GET", Scheme: "https", Host: "2001:db8::2",
			Port: 443, Path: "/", Status: 499, Action: "allow"},
	}
	qtInsert(t, db, ev)
	var buf bytes.Buffer
	n, err := Export(context.Background(), db, &buf, FormatSquid, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"1700000000.123    120 10.0.0.5 TCP_MISS/200 1234 GET http://example.com/ alice HIER_DIRECT/93.184.216.34 text/html",
		"1700000001.123  65432 10.0.0.6 TCP_TUNNEL/200 5000 CONNECT example.com:443 - HIER_DIRECT/2606:2800:220:1:: -",
		"1700000002.123      3 10.0.0.7 TCP_DENIED/403 512 GET http://bad.example:8080/x?a=1 bob HIER_NONE/- text/html",
		"1700000003.123      0 10.0.0.8 TCP_HIT/200 99 GET http://example.com/logo.png - HIER_NONE/- image/png",
		"1700000004.123      0 10.0.0.9 TCP_DENIED/403 0 CONNECT blocked.example:443 - HIER_NONE/- -",
		"1700000005.123      0 10.0.0.5 TCP_MISS/000 0 GET http://example.com/a%20b%0Ac%0D%7F John%20Doe%09 HIER_DIRECT/93.184.216.34 text/html;%20charset=utf-8",
		"1700000006.123      0 2001:db8::1 TCP_MISS/499 0 GET https://[2001:db8::2]/ - HIER_NONE/- -",
	}
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if n != int64(len(ev)) || len(got) != len(want) {
		t.Fatalf("n=%d, %d lines:\n%s", n, len(got), buf.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, got[i], want[i])
		}
		if f := strings.Fields(got[i]); len(f) != 10 {
			t.Errorf("line %d: %d fields", i, len(f))
		}
	}
}

// Every fixture event gives one squid line of 10 fields.
func TestExportSquidFixture(t *testing.T) {
	env := qtSetup(t, 1000)
	var buf bytes.Buffer
	n, err := Export(context.Background(), env.db, &buf, FormatSquid, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var lines int64
	for sc.Scan() {
		lines++
		f := strings.Fields(sc.Text())
		if len(f) != 10 {
			t.Fatalf("line %d: %d fields: %q", lines, len(f), sc.Text())
		}
		if _, err := strconv.ParseFloat(f[0], 64); err != nil || len(f[0]) != len("1705312800.000") {
			t.Fatalf("line %d: time %q", lines, f[0])
		}
		if !strings.Contains(f[3], "/") || !strings.Contains(f[8], "/") {
			t.Fatalf("line %d: %q", lines, sc.Text())
		}
	}
	want := 0
	for _, e := range env.events {
		if squidKind(e.Kind) {
			want++
		}
	}
	if lines != n || n != int64(want) {
		t.Errorf("%d lines, n=%d, want %d", lines, n, want)
	}
}

type qtFailWriter struct{ n int }

func (w *qtFailWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestExportErrors(t *testing.T) {
	env := qtSetup(t, 2000)
	ctx := context.Background()
	if _, err := Export(ctx, env.db, io.Discard, "xml", time.Time{}, time.Time{}); err == nil {
		t.Error("Export accepted format xml")
	}
	for _, format := range []string{FormatCSV, FormatJSONL, FormatSquid} {
		n, err := Export(ctx, env.db, &qtFailWriter{n: 100000}, format, time.Time{}, time.Time{})
		if err == nil || n >= int64(len(env.events)) {
			t.Errorf("%s to a failing writer: n=%d, %v", format, n, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Export(cctx, env.db, io.Discard, FormatCSV, time.Time{}, time.Time{}); err == nil {
		t.Error("Export ignored a canceled context")
	}
}
