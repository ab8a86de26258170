package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver

	"waygate/audit"
)

// Query limits.
const (
	// DefaultLimit is the page size of a Query with a zero Limit.
	DefaultLimit = 100
	// MaxLimit is the largest page size; larger Limits are cut to it.
	MaxLimit = 10000
	// DefaultTop is the number of rows Top and UserReport return when
	// asked for zero (or fewer).
	DefaultTop = 10
	// qMaxSeriesBuckets bounds the buckets Series fills in.
	qMaxSeriesBuckets = 1 << 20
)

// qBlockedSQL is the SQL for "the event was blocked", the same definition
// the rollups use: blocked or warned, unless the warning was accepted.
const qBlockedSQL = `(action IN ('block', 'warn') AND reason <> 'warn_accepted')`

// qEventColumns are the columns of an audit.StoredEvent, in the order
// qScanEvent reads them.
const qEventColumns = `id, time, duration, kind, request_id, client, user, "groups",
	method, scheme, host, port, path, query, status, bytes_in, bytes_out,
	action, rule, categories, category, entry, source, reason, policy,
	cache, upstream, user_agent, content_type, error, detail`

// OpenReadOnly opens the audit database at path for queries and export:
// read-only (mode=ro), waiting up to 5 s for a writer's lock instead of
// failing with SQLITE_BUSY. It fails when the file does not exist or holds
// no audit schema. The writer (Store) may keep running; readers see each
// committed transaction.
func OpenReadOnly(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// A file: URI, so that mode=ro reaches SQLite; url.URL escapes '?',
	// '#' and '%' in the path. The _ parameters are go-sqlite3's.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	dsn := u.String() + "?mode=ro&_busy_timeout=5000&_txlock=deferred"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if version < 1 {
		db.Close()
		return nil, fmt.Errorf("audit: open %s: not an audit database (no schema)", path)
	}
	return db, nil
}

// qUnixNano is t in Unix nanoseconds, clamped to what int64 holds.
func qUnixNano(t time.Time) int64 {
	s := t.Unix()
	switch {
	case s >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	case s <= math.MinInt64/int64(time.Second):
		return math.MinInt64
	}
	return t.UnixNano()
}

// qEscapeLike escapes s for a LIKE pattern with ESCAPE '\'.
func qEscapeLike(s string) string {
	if !strings.ContainsAny(s, `\%_`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '\\' || r == '%' || r == '_' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// qSplitList undoes the comma-joining of groups and categories.
func qSplitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// qScanner is *sql.Row or *sql.Rows.
type qScanner interface{ Scan(dest ...any) error }

// qScanEvent reads the qEventColumns of one row, plus extra columns after
// them.
func qScanEvent(r qScanner, extra ...any) (audit.StoredEvent, error) {
	var (
		e                  audit.StoredEvent
		t, dur             int64
		kind, groups, cats string
		port               int64
	)
	dest := []any{&e.ID, &t, &dur, &kind, &e.RequestID, &e.Client, &e.User, &groups,
		&e.Method, &e.Scheme, &e.Host, &port, &e.Path, &e.Query, &e.Status, &e.BytesIn, &e.BytesOut,
		&e.Action, &e.Rule, &cats, &e.Category, &e.Entry, &e.Source, &e.Reason, &e.Policy,
		&e.Cache, &e.Upstream, &e.UserAgent, &e.ContentType, &e.Error, &e.Detail}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return e, err
	}
	e.Time = time.Unix(0, t).UTC()
	e.Duration = time.Duration(dur)
	e.Kind = audit.Kind(kind)
	e.Groups = qSplitList(groups)
	e.Categories = qSplitList(cats)
	e.Port = uint16(port)
	return e, nil
}

// Search returns one page of the events q selects, newest first (by time,
// then by id, so that events with equal times keep a stable order). Pass
// the returned Page.Next as q.Before to get the next page; a zero Next
// means there is none.
//
// Every value of q reaches SQLite as a bound parameter; Host, Client,
// User, Action, Kind and Category match exactly (case-sensitive), while
// HostSuffix, HostContains and Text use LIKE (ASCII case-insensitive) with
// '%' and '_' matching literally. Search reads the index that fits the
// most selective exact filter: user, else time; a host or a client is
// found through the hours it was active (see qSearchHours).
// Filters without an index (Text, HostContains, ...) alone scan events
// newest first until the page is full.
func Search(ctx context.Context, db *sql.DB, q audit.Query) (audit.Page, error) {
	var events []audit.StoredEvent
	var limit int
	var err error
	var stop audit.Cursor
	if dim, key := qHourDim(q); dim != "" {
		events, limit, err = qSearchHours(ctx, db, q, dim, key)
	} else if qScans(q) {
		events, limit, stop, err = qSearchScan(ctx, db, q)
	} else {
		query, args, l := qSearchSQL(q)
		limit = l
		events, err = qRunSearch(ctx, db, query, args, nil)
	}
	if err != nil {
		return audit.Page{}, fmt.Errorf("audit: search: %w", err)
	}
	page := audit.Page{Events: events}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.Next = audit.Cursor{Time: last.Time, ID: last.ID}
	} else if !stop.Time.IsZero() {
		page.Next, page.Partial = stop, true
	}
	return page, nil
}

// Bounds of a scan search (qSearchScan); variables so that tests can
// make them small.
var (
	// qScanBudget is how many events one scan search reads at most
	// (by the hourly totals) before it returns what it found with a
	// cursor to continue: about 100 ms of reading on a small server.
	qScanBudget int64 = 120_000
	// qScanWindow is how many events one statement of a scan search
	// reads at most (by the hourly totals), so that it can stop near the
	// budget.
	qScanWindow int64 = 30_000
)

// qScans reports whether Search must scan the time index for q: no user,
// host or client narrows it (qHourDim), and a filter no index serves is
// set.
func qScans(q audit.Query) bool {
	return q.User == "" && q.Host == "" && q.Client == "" &&
		(q.Text != "" || q.HostSuffix != "" || q.HostContains != "" || q.Category != "" ||
			q.Action != "" || q.Status != 0 || q.Kind != "")
}

// qSearchScan runs a search that reads the time index newest first with
// filters no index serves, in windows of whole hours of about qScanWindow
// events (from the hourly totals), until the page plus one row is full,
// the time range ends, or qScanBudget events have been read. The windows
// tile the time range without gaps, so events in hours the rollups do
// not know of (the current hour, say) are searched too. A non-zero stop
// is the cursor where the budget ran out, with the page not full.
func qSearchScan(ctx context.Context, db *sql.DB, q audit.Query) (events []audit.StoredEvent, limit int, stop audit.Cursor, err error) {
	_, _, limit = qSearchSQL(q)
	lo, hi := qHourBounds(q.Since, q.Until)
	switch {
	case !q.Before.Time.IsZero() && q.Before.ID == 0:
		// A cursor where a budget ran out: everything before its time.
		hi = min(hi, qCeilSeconds(q.Before.Time, 3600))
	case !q.Before.Time.IsZero() || q.Before.ID != 0:
		hi = min(hi, qCeilSeconds(q.Before.Time.Add(time.Nanosecond), 3600))
	}
	rows, err := db.QueryContext(ctx, `SELECT hour, requests FROM rollup_hour INDEXED BY rollup_hour_key
WHERE dim = 'total' AND key = '' AND hour >= ? AND hour < ? ORDER BY hour DESC`, lo, hi)
	if err != nil {
		return nil, 0, stop, err
	}
	type hourCount struct{ hour, n int64 }
	var hours []hourCount
	for rows.Next() {
		var h hourCount
		if err := rows.Scan(&h.hour, &h.n); err != nil {
			rows.Close()
			return nil, 0, stop, err
		}
		hours = append(hours, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, stop, err
	}
	// run searches [from, to) of q's range; zero times are open ends.
	run := func(from, to time.Time) error {
		sub := q
		if !from.IsZero() && (sub.Since.IsZero() || sub.Since.Before(from)) {
			sub.Since = from
		}
		if !to.IsZero() && (sub.Until.IsZero() || sub.Until.After(to)) {
			sub.Until = to
		}
		sub.Limit = limit - len(events) // qSearchSQL asks for one row more
		query, args, _ := qSearchSQL(sub)
		events, err = qRunSearch(ctx, db, query, args, events)
		return err
	}
	var to time.Time // the upper end of the next window; zero: open
	var window, read int64
	for i, h := range hours {
		window += h.n
		if window < qScanWindow && i < len(hours)-1 {
			continue
		}
		from := time.Unix(h.hour, 0)
		if err := run(from, to); err != nil {
			return nil, 0, stop, err
		}
		if len(events) > limit {
			return events, limit, stop, nil
		}
		read += window
		window, to = 0, from
		if read >= qScanBudget && from.After(q.Since) {
			return events, limit, audit.Cursor{Time: from}, nil
		}
	}
	// What is older than the oldest hour with events (none, unless the
	// rollups miss some), or the whole range when no hour has any.
	if len(hours) == 0 || to.After(q.Since) {
		var from time.Time
		if !q.Since.IsZero() {
			from = q.Since
		}
		if err := run(from, to); err != nil {
			return nil, 0, stop, err
		}
	}
	return events, limit, stop, nil
}

// qRunSearch runs a search statement and appends its events to dst.
func qRunSearch(ctx context.Context, db *sql.DB, query string, args []any, dst []audit.StoredEvent) ([]audit.StoredEvent, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := qScanEvent(rows)
		if err != nil {
			return nil, err
		}
		dst = append(dst, e)
	}
	return dst, rows.Err()
}

// qHourDim says whether q is a search for one host's or one client's
// events without a user (whose index would serve), and which rollup
// dimension finds the hours to read.
func qHourDim(q audit.Query) (dim, key string) {
	switch {
	case q.User != "":
		return "", ""
	case q.Host != "":
		return "host", q.Host
	case q.Client != "":
		return "client", q.Client
	}
	return "", ""
}

// qSearchHours searches for one host's or client's events: there is no
// index by host or client, so it takes the hours they were active from
// the rollups (dim, key), newest first, and reads each of those hours
// through the time index (which carries host and client) until the page,
// plus one row to tell whether there is a next page, is full.
func qSearchHours(ctx context.Context, db *sql.DB, q audit.Query, dim, key string) ([]audit.StoredEvent, int, error) {
	_, _, limit := qSearchSQL(q)
	lo, hi := qHourBounds(q.Since, q.Until)
	if !q.Before.Time.IsZero() || q.Before.ID != 0 {
		hi = min(hi, qCeilSeconds(q.Before.Time.Add(time.Nanosecond), 3600))
	}
	rows, err := db.QueryContext(ctx, `SELECT hour FROM rollup_hour INDEXED BY rollup_hour_key
WHERE dim = ? AND key = ? AND hour >= ? AND hour < ? ORDER BY hour DESC`, dim, key, lo, hi)
	if err != nil {
		return nil, 0, err
	}
	var hours []int64
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return nil, 0, err
		}
		hours = append(hours, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	var events []audit.StoredEvent
	for _, h := range hours {
		sub := q
		start, end := time.Unix(h, 0), time.Unix(h+3600, 0)
		if sub.Since.IsZero() || sub.Since.Before(start) {
			sub.Since = start
		}
		if sub.Until.IsZero() || sub.Until.After(end) {
			sub.Until = end
		}
		// qSearchSQL asks for one row more than Limit.
		sub.Limit = limit - len(events)
		query, args, _ := qSearchSQL(sub)
		if events, err = qRunSearch(ctx, db, query, args, events); err != nil {
			return nil, 0, err
		}
		if len(events) > limit {
			break
		}
	}
	return events, limit, nil
}

// qSearchSQL builds Search's statement for q: its text (made only of
// constant pieces), its arguments and the page size. It selects one more
// row than the page holds, to tell whether a next page exists.
func qSearchSQL(q audit.Query) (query string, args []any, limit int) {
	limit = q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}

	var where []string
	add := func(clause string, a ...any) {
		where = append(where, clause)
		args = append(args, a...)
	}
	index := "events_time"
	if q.User != "" {
		index = "events_user_time"
	}
	if q.User != "" {
		add(`user = ?`, q.User)
	}
	if q.Client != "" {
		add(`client = ?`, q.Client)
	}
	if q.Host != "" {
		add(`host = ?`, q.Host)
	}
	if !q.Since.IsZero() {
		add(`time >= ?`, qUnixNano(q.Since))
	}
	if !q.Until.IsZero() {
		add(`time < ?`, qUnixNano(q.Until))
	}
	if !q.Before.Time.IsZero() || q.Before.ID != 0 {
		// (time, id) < (t, id), written so that "time <= ?" bounds the
		// index range.
		t := qUnixNano(q.Before.Time)
		add(`time <= ? AND (time < ? OR id < ?)`, t, t, q.Before.ID)
	}
	if q.HostSuffix != "" {
		s := strings.TrimPrefix(q.HostSuffix, ".")
		add(`(host = ? OR host LIKE ? ESCAPE '\')`, s, "%."+qEscapeLike(s))
	}
	if q.HostContains != "" {
		add(`host LIKE ? ESCAPE '\'`, "%"+qEscapeLike(q.HostContains)+"%")
	}
	if q.Category != "" {
		// categories is comma-joined: look for ",cat," in ",a,b,".
		add(`(category = ? OR instr(',' || categories || ',', ',' || ? || ',') > 0)`, q.Category, q.Category)
	}
	if q.Action != "" {
		add(`action = ?`, q.Action)
	}
	if q.Status != 0 {
		add(`status = ?`, q.Status)
	}
	if q.Kind != "" {
		add(`kind = ?`, string(q.Kind))
	}
	if q.Text != "" {
		p := "%" + qEscapeLike(q.Text) + "%"
		add(`(host LIKE ? ESCAPE '\' OR path LIKE ? ESCAPE '\' OR query LIKE ? ESCAPE '\')`, p, p, p)
	}

	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(qEventColumns)
	b.WriteString(" FROM events INDEXED BY ")
	b.WriteString(index) // one of the constants above
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY time DESC, id DESC LIMIT ?")
	args = append(args, limit+1)
	return b.String(), args, limit
}

// qHourBounds turns [since, until) into Unix seconds rounded out to whole
// hours (since down, until up); zero times mean unbounded.
func qHourBounds(since, until time.Time) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if !since.IsZero() {
		lo = qFloorDiv(since.Unix(), 3600) * 3600
	}
	if !until.IsZero() {
		hi = qCeilSeconds(until, 3600)
	}
	return lo, hi
}

// qCeilSeconds is t in Unix seconds rounded up to a multiple of step.
func qCeilSeconds(t time.Time, step int64) int64 {
	s := t.Unix()
	f := qFloorDiv(s, step) * step
	if f < s || (f == s && t.Nanosecond() > 0) {
		f += step
	}
	return f
}

func qFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Dimensions of the rollups Top accepts.
var qTopDims = map[string]bool{"host": true, "user": true, "category": true, "action": true, "error": true}

// Top returns the n keys of dim ("host", "user", "category", "action", or
// "error": the causes of upstream failures) with the most requests between
// since and until, most first (ties by key), with their totals. It reads
// the hourly rollups, so since is rounded down and until up to whole
// hours; a zero since or until leaves that side open. n <= 0 means DefaultTop. An event with several
// categories counts once for each.
func Top(ctx context.Context, db *sql.DB, dim string, since, until time.Time, n int) ([]audit.Count, error) {
	if !qTopDims[dim] {
		return nil, fmt.Errorf("audit: top: unknown dimension %q", dim)
	}
	if n <= 0 {
		n = DefaultTop
	}
	lo, hi := qHourBounds(since, until)
	rows, err := db.QueryContext(ctx, `
SELECT key, sum(requests), sum(blocked), sum(bytes_in), sum(bytes_out)
FROM rollup_hour
WHERE dim = ? AND hour >= ? AND hour < ?
GROUP BY key
ORDER BY 2 DESC, key
LIMIT ?`, dim, lo, hi, n)
	if err != nil {
		return nil, fmt.Errorf("audit: top: %w", err)
	}
	defer rows.Close()
	var out []audit.Count
	for rows.Next() {
		var c audit.Count
		if err := rows.Scan(&c.Key, &c.Requests, &c.Blocked, &c.BytesIn, &c.BytesOut); err != nil {
			return nil, fmt.Errorf("audit: top: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: top: %w", err)
	}
	return out, nil
}

// Series returns the totals per step between since and until, oldest
// first: step is time.Minute (from the minute rollups) or time.Hour (from
// the hourly ones). since is rounded down and until up to whole steps.
// The series is dense: steps without events are included with zero
// counts. A zero since starts at the first step with events, a zero until
// ends after the last; with no events and an open side the result is
// empty. A series of more than 2^20 steps is refused.
func Series(ctx context.Context, db *sql.DB, step time.Duration, since, until time.Time) ([]audit.Bucket, error) {
	var query string
	var sec int64
	switch step {
	case time.Minute:
		sec = 60
		query = `SELECT minute, requests, blocked, bytes_in, bytes_out FROM rollup_minute
WHERE minute >= ? AND minute < ? ORDER BY minute`
	case time.Hour:
		sec = 3600
		query = `SELECT hour, requests, blocked, bytes_in, bytes_out FROM rollup_hour
WHERE dim = 'total' AND key = '' AND hour >= ? AND hour < ? ORDER BY hour`
	default:
		return nil, fmt.Errorf("audit: series: step %v: only a minute or an hour", step)
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !since.IsZero() {
		lo = qFloorDiv(since.Unix(), sec) * sec
	}
	if !until.IsZero() {
		hi = qCeilSeconds(until, sec)
	}
	if lo != math.MinInt64 && hi != math.MaxInt64 && hi > lo && (hi-lo)/sec > qMaxSeriesBuckets {
		return nil, fmt.Errorf("audit: series: %d steps, at most %d", (hi-lo)/sec, qMaxSeriesBuckets)
	}
	rows, err := db.QueryContext(ctx, query, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("audit: series: %w", err)
	}
	defer rows.Close()
	var sparse []audit.Bucket
	var starts []int64
	for rows.Next() {
		var s int64
		var bk audit.Bucket
		if err := rows.Scan(&s, &bk.Requests, &bk.Blocked, &bk.BytesIn, &bk.BytesOut); err != nil {
			return nil, fmt.Errorf("audit: series: %w", err)
		}
		bk.Start = time.Unix(s, 0).UTC()
		sparse = append(sparse, bk)
		starts = append(starts, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: series: %w", err)
	}
	if lo == math.MinInt64 || hi == math.MaxInt64 {
		if len(starts) == 0 {
			return nil, nil
		}
		if lo == math.MinInt64 {
			lo = starts[0]
		}
		if hi == math.MaxInt64 {
			hi = starts[len(starts)-1] + sec
		}
		if (hi-lo)/sec > qMaxSeriesBuckets {
			return nil, fmt.Errorf("audit: series: %d steps, at most %d", (hi-lo)/sec, qMaxSeriesBuckets)
		}
	}
	if hi <= lo {
		return nil, nil
	}
	out := make([]audit.Bucket, 0, (hi-lo)/sec)
	j := 0
	for s := lo; s < hi; s += sec {
		if j < len(starts) && starts[j] == s {
			out = append(out, sparse[j])
			j++
			continue
		}
		out = append(out, audit.Bucket{Start: time.Unix(s, 0).UTC()})
	}
	return out, nil
}

// BlockedCount returns the number of blocked requests (blocked, or warned
// without the warning accepted) between since and until, from the
// rollups: whole hours from the hourly ones, the partial hours at either
// end from the minute ones, so since is rounded down and until up to whole
// minutes. Zero since or until leave that side open.
func BlockedCount(ctx context.Context, db *sql.DB, since, until time.Time) (int64, error) {
	mlo, mhi := int64(math.MinInt64), int64(math.MaxInt64)
	hlo, hhi := int64(math.MinInt64), int64(math.MaxInt64)
	if !since.IsZero() {
		mlo = qFloorDiv(since.Unix(), 60) * 60
		hlo = qCeilSeconds(time.Unix(mlo, 0), 3600)
	}
	if !until.IsZero() {
		mhi = qCeilSeconds(until, 60)
		hhi = qFloorDiv(mhi, 3600) * 3600
	}
	// Minutes before the first whole hour and from the last one on.
	m1lo, m1hi, m2lo, m2hi := mlo, hlo, hhi, mhi
	if hlo >= hhi {
		// No whole hour inside: minutes only.
		m1lo, m1hi, m2lo, m2hi = mlo, mhi, 0, 0
		hlo, hhi = 0, 0
	}
	var n int64
	err := db.QueryRowContext(ctx, `
SELECT
 (SELECT coalesce(sum(blocked), 0) FROM rollup_hour
   WHERE dim = 'total' AND key = '' AND hour >= ? AND hour < ?)
 + (SELECT coalesce(sum(blocked), 0) FROM rollup_minute
   WHERE (minute >= ? AND minute < ?) OR (minute >= ? AND minute < ?))`,
		hlo, hhi, m1lo, m1hi, m2lo, m2hi).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("audit: blocked count: %w", err)
	}
	return n, nil
}

// UserActivity sums up one user's requests over a period.
type UserActivity struct {
	User string
	// Requests counts the user's events; Blocked those blocked (or warned
	// without the warning accepted); BytesIn and BytesOut their bytes.
	Requests, Blocked, BytesIn, BytesOut int64
	// TopHosts and TopCategories are the user's hosts and categories with
	// the most requests, most first; an event counts once for each of its
	// categories, events without a category count for none.
	TopHosts, TopCategories []audit.Count
}

// UserReport sums up the events of user between since and until (exact
// times; zero leaves a side open) from the events themselves, with the n
// hosts and categories the user requested most (n <= 0 means
// DefaultTop). A user without events gets a zero report (with User set).
func UserReport(ctx context.Context, db *sql.DB, user string, since, until time.Time, n int) (UserActivity, error) {
	if n <= 0 {
		n = DefaultTop
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !since.IsZero() {
		lo = qUnixNano(since)
	}
	if !until.IsZero() {
		hi = qUnixNano(until)
	}
	ua := UserActivity{User: user}
	fail := func(err error) (UserActivity, error) {
		return UserActivity{}, fmt.Errorf("audit: user report: %w", err)
	}
	const from = ` FROM events INDEXED BY events_user_time WHERE user = ? AND time >= ? AND time < ?`
	const sums = `count(*), coalesce(sum(` + qBlockedSQL + `), 0), coalesce(sum(bytes_in), 0), coalesce(sum(bytes_out), 0)`

	err := db.QueryRowContext(ctx, `SELECT `+sums+from, user, lo, hi).
		Scan(&ua.Requests, &ua.Blocked, &ua.BytesIn, &ua.BytesOut)
	if err != nil {
		return fail(err)
	}
	if ua.Requests == 0 {
		return ua, nil
	}

	rows, err := db.QueryContext(ctx, `SELECT host, `+sums+from+
		` GROUP BY host ORDER BY 2 DESC, host LIMIT ?`, user, lo, hi, n)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var c audit.Count
		if err := rows.Scan(&c.Key, &c.Requests, &c.Blocked, &c.BytesIn, &c.BytesOut); err != nil {
			rows.Close()
			return fail(err)
		}
		ua.TopHosts = append(ua.TopHosts, c)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fail(err)
	}

	// Categories are comma-joined: group by the joined list in SQL, then
	// split and add up here.
	rows, err = db.QueryContext(ctx, `SELECT categories, `+sums+from+
		` AND categories <> '' GROUP BY categories`, user, lo, hi)
	if err != nil {
		return fail(err)
	}
	byCat := map[string]*audit.Count{}
	for rows.Next() {
		var cats string
		var c audit.Count
		if err := rows.Scan(&cats, &c.Requests, &c.Blocked, &c.BytesIn, &c.BytesOut); err != nil {
			rows.Close()
			return fail(err)
		}
		list := qSplitList(cats)
		for i, k := range list {
			if slices.Contains(list[:i], k) {
				continue // an event counts once per distinct category
			}
			t := byCat[k]
			if t == nil {
				t = &audit.Count{Key: k}
				byCat[k] = t
			}
			t.Requests += c.Requests
			t.Blocked += c.Blocked
			t.BytesIn += c.BytesIn
			t.BytesOut += c.BytesOut
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fail(err)
	}
	for _, c := range byCat {
		ua.TopCategories = append(ua.TopCategories, *c)
	}
	sort.Slice(ua.TopCategories, func(i, j int) bool {
		a, b := ua.TopCategories[i], ua.TopCategories[j]
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		return a.Key < b.Key
	})
	if len(ua.TopCategories) > n {
		ua.TopCategories = ua.TopCategories[:n]
	}
	return ua, nil
}

// Search is Search on the Store's database.
func (s *Store) Search(ctx context.Context, q audit.Query) (audit.Page, error) {
	return Search(ctx, s.db, q)
}

// Top is Top on the Store's database.
func (s *Store) Top(ctx context.Context, dim string, since, until time.Time, n int) ([]audit.Count, error) {
	return Top(ctx, s.db, dim, since, until, n)
}

// Series is Series on the Store's database.
func (s *Store) Series(ctx context.Context, step time.Duration, since, until time.Time) ([]audit.Bucket, error) {
	return Series(ctx, s.db, step, since, until)
}

// BlockedCount is BlockedCount on the Store's database.
func (s *Store) BlockedCount(ctx context.Context, since, until time.Time) (int64, error) {
	return BlockedCount(ctx, s.db, since, until)
}

// UserReport is UserReport on the Store's database.
func (s *Store) UserReport(ctx context.Context, user string, since, until time.Time, n int) (UserActivity, error) {
	return UserReport(ctx, s.db, user, since, until, n)
}
