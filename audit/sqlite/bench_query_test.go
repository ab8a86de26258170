package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"waygate/audit"
)

// The benchmark database is built once and kept in os.TempDir(). Bump
// qbVersion whenever the data or the schema it is built from changes:
// a database of another version is rebuilt.
const (
	qbVersion = 3
	qbEvents  = 10_000_000
	qbUsers   = 2000
	qbHosts   = 50_000
	qbDays    = 30
	// qbAppID marks a complete benchmark database of qbVersion (in
	// PRAGMA application_id).
	qbAppID = 0x57470000 + qbVersion
)

var qbStart = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// BenchmarkQueries10M measures, on 10 million events over 30 days,
// the p95 latency of (a) one user's events over one day (Limit 100) and
// (b) the top hosts over 24 hours. Targets: 100 ms and 1 s.
func BenchmarkQueries10M(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 10-million-event database")
	}
	path := filepath.Join(os.TempDir(), "waygate-bench-10m.db")
	if err := qbEnsure(b, path); err != nil {
		b.Fatal(err)
	}
	db, err := OpenReadOnly(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	r := rand.New(rand.NewSource(42))
	b.ResetTimer()

	var search, byClient, top []time.Duration
	for i := 0; i < b.N; i++ {
		for j := 0; j < 200; j++ {
			day := qbStart.AddDate(0, 0, r.Intn(qbDays))
			u := r.Intn(qbUsers)
			q := audit.Query{Client: fmt.Sprintf("10.%d.%d.%d", u/65536, u/256%256, u%256+1), Since: day, Until: day.Add(24 * time.Hour), Limit: 100}
			t0 := time.Now()
			if _, err := Search(ctx, db, q); err != nil {
				b.Fatal(err)
			}
			byClient = append(byClient, time.Since(t0))
		}
		for j := 0; j < 200; j++ {
			day := qbStart.AddDate(0, 0, r.Intn(qbDays))
			q := audit.Query{User: qbUser(r.Intn(qbUsers)), Since: day, Until: day.Add(24 * time.Hour), Limit: 100}
			t0 := time.Now()
			p, err := Search(ctx, db, q)
			search = append(search, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Events) == 0 && j < 3 {
				b.Logf("no events for %s on %s", q.User, day.Format(time.DateOnly))
			}
		}
		for j := 0; j < 50; j++ {
			day := qbStart.AddDate(0, 0, r.Intn(qbDays))
			t0 := time.Now()
			c, err := Top(ctx, db, "host", day, day.Add(24*time.Hour), 10)
			top = append(top, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if len(c) != 10 {
				b.Fatalf("top hosts: %d rows", len(c))
			}
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	sp50, sp95 := qbPercentiles(search)
	tp50, tp95 := qbPercentiles(top)
	cp50, cp95 := qbPercentiles(byClient)
	b.ReportMetric(ms(sp95), "search-p95-ms")
	b.ReportMetric(ms(cp95), "client-p95-ms")
	b.ReportMetric(ms(tp95), "top-p95-ms")
	b.Logf("search user/day: p50 %.2f ms, p95 %.2f ms (%d queries); client/day: p50 %.2f ms, p95 %.2f ms; top hosts/24h: p50 %.1f ms, p95 %.1f ms (%d queries)",
		ms(sp50), ms(sp95), len(search), ms(cp50), ms(cp95), ms(tp50), ms(tp95), len(top))
	if sp95 > 100*time.Millisecond {
		b.Errorf("search p95 %v > 100 ms", sp95)
	}
	if tp95 > time.Second {
		b.Errorf("top p95 %v > 1 s", tp95)
	}
}

func qbPercentiles(d []time.Duration) (p50, p95 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)*50/100], s[(len(s)*95+99)/100-1]
}

func qbUser(i int) string { return fmt.Sprintf("user%04d", i) }

// qbEnsure builds the database at path unless a valid one is there. One
// process builds at a time (path+".lock"); the others wait for it.
func qbEnsure(b *testing.B, path string) error {
	lock := path + ".lock"
	for {
		if qbValid(path) {
			return nil
		}
		if f := flag.Lookup("test.timeout"); f != nil {
			if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 && d < 10*time.Minute {
				b.Skipf("building the 10M-event database takes minutes: run with -timeout 10m or more (now %v)", d)
			}
		}
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprint(f, os.Getpid())
			f.Close()
			defer os.Remove(lock)
			if qbValid(path) { // built while we took the lock
				return nil
			}
			start := time.Now()
			if err := qbBuild(b, path); err != nil {
				return err
			}
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			b.Logf("built %s in %v, %.2f GB", path, time.Since(start).Round(time.Second), float64(fi.Size())/1e9)
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		// Someone else builds; a lock whose process is gone is stale.
		data, _ := os.ReadFile(lock)
		if pid, err := strconv.Atoi(string(data)); err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.Remove(lock)
			continue
		}
		b.Logf("waiting for the build in process %s", data)
		time.Sleep(10 * time.Second)
	}
}

// qbValid reports whether path holds a complete benchmark database of
// this version.
func qbValid(path string) bool {
	if _, err := os.Stat(path); err != nil {
		return false
	}
	db, err := OpenReadOnly(path)
	if err != nil {
		return false
	}
	defer db.Close()
	var id int64
	return db.QueryRow(`PRAGMA application_id`).Scan(&id) == nil && id == qbAppID
}

// qbBuild writes the benchmark database to a temporary file and renames
// it to path when complete: events in bulk (no indexes, large transactions,
// multi-row prepared inserts), then the indexes, then the rollups by
// aggregate INSERT ... SELECT.
func qbBuild(b *testing.B, path string) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	os.Remove(tmp)
	defer os.Remove(tmp) // after a failure
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(tmp)}
	db, err := sql.Open("sqlite3", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the pragmas hold for this one connection
	for _, p := range []string{
		`PRAGMA journal_mode = OFF`, `PRAGMA synchronous = OFF`, `PRAGMA locking_mode = EXCLUSIVE`,
		`PRAGMA cache_size = -1000000`, `PRAGMA temp_store = MEMORY`,
	} {
		if _, err := db.Exec(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	for i, m := range migrations {
		if _, err := db.Exec(m); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return err
	}
	// Bulk load without indexes; build them afterwards.
	var indexes [][2]string // CREATE statement, name
	rows, err := db.Query(`SELECT sql, name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var ix [2]string
		if err := rows.Scan(&ix[0], &ix[1]); err != nil {
			rows.Close()
			return err
		}
		indexes = append(indexes, ix)
	}
	rows.Close()
	for _, ix := range indexes {
		if _, err := db.Exec(`DROP INDEX ` + ix[1]); err != nil {
			return err
		}
	}

	const cols = `time, duration, kind, request_id, client, user, "groups", method, scheme, host, port,
	path, query, status, bytes_in, bytes_out, action, rule, categories, category, entry, source,
	reason, policy, cache, upstream, user_agent, content_type, error, detail, hash`
	const ncols = 31
	const perStmt = 100
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", ncols), ",") + ")"
	insertSQL := `INSERT INTO events (` + cols + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+",", perStmt), ",")

	g := newQBGen()
	start := time.Now()
	args := make([]any, 0, ncols*perStmt)
	const perTx = 500_000
	for done := 0; done < qbEvents; {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		stmt, err := tx.Prepare(insertSQL)
		if err != nil {
			return err
		}
		for end := done + perTx; done < end && done < qbEvents; done += perStmt {
			args = args[:0]
			for k := 0; k < perStmt; k++ {
				args = g.next(done+k, args)
			}
			if _, err := stmt.Exec(args...); err != nil {
				return err
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
		if done%2_000_000 == 0 {
			b.Logf("%d events inserted, %v", done, time.Since(start).Round(time.Second))
		}
	}
	for _, ix := range indexes {
		t0 := time.Now()
		if _, err := db.Exec(ix[0]); err != nil {
			return err
		}
		b.Logf("index %s: %v", ix[1], time.Since(t0).Round(time.Second))
	}

	const hour = `time / 3600000000000 * 3600`
	const sums = `count(*), sum(` + qBlockedSQL + `), sum(bytes_in), sum(bytes_out)`
	for i, q := range []string{
		`INSERT INTO rollup_hour SELECT ` + hour + `, 'total', '', ` + sums + ` FROM events GROUP BY 1`,
		`INSERT INTO rollup_hour SELECT ` + hour + `, 'host', host, ` + sums + ` FROM events GROUP BY 1, 3`,
		`INSERT INTO rollup_hour SELECT ` + hour + `, 'user', user, ` + sums + ` FROM events GROUP BY 1, 3`,
		`INSERT INTO rollup_hour SELECT ` + hour + `, 'client', client, ` + sums + ` FROM events GROUP BY 1, 3`,
		`INSERT INTO rollup_hour SELECT ` + hour + `, 'action', action, ` + sums + ` FROM events GROUP BY 1, 3`,
		// One row per category of an event: split the comma-joined list
		// with json_each (the generated names hold no quotes).
		`INSERT INTO rollup_hour SELECT ` + hour + `, 'category', j.value, ` + sums + `
		 FROM events, json_each('["' || replace(categories, ',', '","') || '"]') AS j
		 WHERE categories <> '' GROUP BY 1, 3`,
		`INSERT INTO rollup_minute SELECT time / 60000000000 * 60, ` + sums + ` FROM events GROUP BY 1`,
	} {
		t0 := time.Now()
		if _, err := db.Exec(q); err != nil {
			return fmt.Errorf("rollup: %w", err)
		}
		b.Logf("rollup %s: %v", []string{"total", "host", "user", "client", "action", "category", "minute"}[i], time.Since(t0).Round(time.Second))
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA application_id = %d`, qbAppID)); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// qbGen makes realistic events: users and hosts of skewed popularity,
// mostly tunnels, a few per cent blocked or warned, times spread evenly
// over qbDays in insertion order.
type qbGen struct {
	r                  *rand.Rand
	hostZipf           *rand.Zipf
	users, clients     []string
	hosts, cats, cat   []string
	paths, agents, cts []string
}

func newQBGen() *qbGen {
	r := rand.New(rand.NewSource(1))
	g := &qbGen{r: r, hostZipf: rand.NewZipf(r, 1.1, 4, qbHosts-1)}
	for i := 0; i < qbUsers; i++ {
		g.users = append(g.users, qbUser(i))
		g.clients = append(g.clients, fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256+1))
	}
	categories := []string{"adult", "gambling", "malware", "news", "social", "search", "shopping", "video",
		"cdn", "ads", "business", "education", "finance", "games", "government", "health", "it", "sports",
		"travel", "webmail", "chat", "cloud", "music", "jobs", "auto", "food", "weather", "realestate",
		"religion", "science"}
	tlds := []string{"com", "net", "org", "io", "de", "co.uk", "fr"}
	prefixes := []string{"www.", "", "api.", "cdn.", "static.", "img.", "m."}
	for i := 0; i < qbHosts; i++ {
		h := fmt.Sprintf("%ssite%d.%s", prefixes[i%len(prefixes)], i, tlds[i%len(tlds)])
		c := categories[(i*7919)%len(categories)]
		cs := c
		if i%5 == 0 {
			c2 := categories[(i*104729+3)%len(categories)]
			if c2 != c {
				if c2 < c {
					cs = c2 + "," + c
				} else {
					cs = c + "," + c2
				}
			}
		}
		g.hosts = append(g.hosts, h)
		g.cat = append(g.cat, c)
		g.cats = append(g.cats, cs)
	}
	for i := 0; i < 1000; i++ {
		g.paths = append(g.paths, fmt.Sprintf("/p/%d/item", i))
	}
	g.agents = []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Mozilla/5.0 (Macintosh)", "curl/8.5.0",
		"Mozilla/5.0 (X11; Linux x86_64)", "Microsoft-CryptoAPI/10.0"}
	g.cts = []string{"text/html", "application/json", "image/png", "application/javascript", "text/css"}
	return g
}

// next appends the 31 column values of event i to args.
func (g *qbGen) next(i int, args []any) []any {
	r := g.r
	span := int64(qbDays * 24 * time.Hour)
	step := span / qbEvents
	t := qbStart.UnixNano() + int64(i)*step + r.Int63n(step)
	// Users: skewed, a few heavy ones, a long tail.
	f := r.Float64()
	u := int(f * f * qbUsers)
	user, client := g.users[u], g.clients[u]
	if r.Intn(20) == 0 {
		user = ""
	}
	h := int(g.hostZipf.Uint64())
	host, cats, cat := g.hosts[h], g.cats[h], g.cat[h]

	kind, method, scheme, port, path, query, ct := "connect", "CONNECT", "", 443, "", "", ""
	switch x := r.Intn(100); {
	case x < 25:
		kind, method, scheme, port, path, ct = "http", "GET", "http", 80, g.paths[r.Intn(len(g.paths))], g.cts[r.Intn(len(g.cts))]
		if r.Intn(4) == 0 {
			query = "q=" + strconv.Itoa(r.Intn(100000))
		}
	case x < 28:
		kind, method, port = "dns", "A", 53
	}
	action, reason, status, rule, upstream, cache := "allow", "", 200, "", "93.184.216.34:443", ""
	switch {
	case cat == "adult" || cat == "gambling" || cat == "malware":
		action, reason, status, rule, upstream = "block", "category", 403, "block-"+cat, ""
	case cat == "games" && r.Intn(3) == 0:
		action, reason, status = "warn", "category", 403
		if r.Intn(2) == 0 {
			reason = "warn_accepted"
		}
	case kind == "http" && r.Intn(5) == 0:
		cache = "HIT"
	}
	bin, bout := int64(r.Intn(2000)), int64(r.ExpFloat64()*50000)
	// A slice per row: the rows of one statement are bound together.
	hash := make([]byte, 32)
	for k := range 4 {
		v := r.Uint64()
		for j := range 8 {
			hash[k*8+j] = byte(v >> (8 * j))
		}
	}
	return append(args,
		t, int64(r.ExpFloat64()*float64(200*time.Millisecond)), kind, strconv.FormatInt(int64(i), 36),
		client, user, "staff", method, scheme, host, port, path, query, status, bin, bout,
		action, rule, cats, cat, "", "builtin", reason, "default", cache, upstream,
		g.agents[r.Intn(len(g.agents))], ct, "", "", hash)
}
