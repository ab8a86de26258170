package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"waygate/audit"
)

// Backoff between attempts on a failing database.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// writerState belongs to the writer goroutine.
type writerState struct {
	lastID   int64    // id of the newest row (or of the anchor)
	lastHash [32]byte // its hash
	hasher   chainHasher
	stmts    *writerStmts // prepared on first insert

	healthy atomic.Bool   // the last database write succeeded
	retryAt time.Time     // when unhealthy: next attempt
	backoff time.Duration // when unhealthy: next delay

	replay      *replayCursor // the rotated spool file being replayed, if any
	replayQueue []string      // rotated spool files still to replay, oldest first
	replayAfter time.Time     // replay paused until then after a file error
}

// writerHealthy reports whether the last database write succeeded.
func (s *Store) writerHealthy() bool { return s.w.healthy.Load() }

// run is the writer goroutine: it commits batches from the queue, moves
// them to the spool when the database fails, and replays the spool when
// the database works.
func (s *Store) run() {
	defer close(s.done)
	tick := time.NewTicker(s.opt.FlushInterval)
	defer tick.Stop()
	batch := make([]*audit.Event, 0, s.opt.BatchSize)
	var flushes []chan struct{}
	for {
		// Replay one chunk per round while the database works, between
		// batches from the queue, so that neither starves.
		replaying := s.w.healthy.Load() && s.replayPending() && !time.Now().Before(s.w.replayAfter)
		if replaying {
			s.replayStep()
		}
		var it queueItem
		var ok bool
		if replaying {
			select {
			case it, ok = <-s.queue:
			case <-tick.C:
				s.onTick()
				continue
			default:
				continue
			}
		} else {
			select {
			case it, ok = <-s.queue:
			case <-tick.C:
				s.onTick()
				continue
			}
		}
		if !ok {
			s.shutdown()
			return
		}
		// Gather what is queued (group commit). The writer lingers a
		// little for more events so that transactions are large: each
		// commit rewrites the index pages it touched, so many small
		// commits cost far more than a few large ones. While it lingers
		// it does not receive: events collect in the queue without waking
		// it once each (at tens of thousands of events a second, those
		// wake-ups cost the request goroutines more than the inserts).
		// A Flush, Close or a full batch ends the wait at once (kick), and
		// a full batch already queued means no wait at all.
		batch, flushes = batch[:0], flushes[:0]
		closed := false
		gatherItem(it, &batch, &flushes)
		if len(flushes) == 0 && s.opt.Linger > 0 && len(batch)+len(s.queue) < s.opt.BatchSize {
			linger := time.NewTimer(s.opt.Linger)
			select {
			case <-linger.C:
			case <-s.kick:
			}
			linger.Stop()
		}
	gather:
		for len(batch) < s.opt.BatchSize {
			select {
			case it, ok = <-s.queue:
				if !ok {
					closed = true
					break gather
				}
				gatherItem(it, &batch, &flushes)
			default:
				break gather
			}
		}
		s.write(batch)
		clear(batch)
		if len(flushes) > 0 {
			s.onFlush()
			for _, f := range flushes {
				close(f)
			}
		}
		if closed {
			s.shutdown()
			return
		}
	}
}

// gatherItem adds a queued item to the batch being gathered: an event to
// batch, a Flush request to flushes.
func gatherItem(it queueItem, batch *[]*audit.Event, flushes *[]chan struct{}) {
	if it.done != nil {
		*flushes = append(*flushes, it.done)
	} else {
		*batch = append(*batch, it.ev)
	}
}

// onTick fsyncs the spool and, when the database has been failing and the
// backoff has passed, retries it by replaying.
func (s *Store) onTick() {
	if err := s.spool.sync(); err != nil {
		s.setErr(fmt.Errorf("spool: %w", err))
		s.log.Error("audit: fsync of the spool failed", "err", err)
	}
	if !s.w.healthy.Load() && !time.Now().Before(s.w.retryAt) {
		// A successful replay step marks the database healthy again.
		s.replayStep()
	}
}

// onFlush serves Flush requests: retry the database now and replay the
// whole spool if it works, and fsync the spool.
func (s *Store) onFlush() {
	if s.replayPending() {
		if err := s.replayAll(); err != nil {
			s.log.Warn("audit: flush: spool not replayed yet", "err", err)
		}
	}
	if err := s.spool.sync(); err != nil {
		s.setErr(fmt.Errorf("spool: %w", err))
		s.log.Error("audit: fsync of the spool failed", "err", err)
	}
}

// shutdown runs when the queue is closed and drained: one last replay
// attempt if the database works, and a final fsync.
func (s *Store) shutdown() {
	if s.w.healthy.Load() && s.replayPending() {
		if err := s.replayAll(); err != nil {
			s.log.Warn("audit: close: spool left for the next start", "err", err)
		}
	}
	if err := s.spool.sync(); err != nil {
		s.setErr(fmt.Errorf("spool: %w", err))
		s.log.Error("audit: fsync of the spool failed", "err", err)
	}
}

// write commits batch, or (database failing) appends it to the spool. It
// returns only when the batch is in one or the other.
func (s *Store) write(batch []*audit.Event) {
	if len(batch) == 0 {
		return
	}
	for {
		if s.w.healthy.Load() || !time.Now().Before(s.w.retryAt) {
			err := s.insert(batch, nil)
			if err == nil {
				s.written.Add(int64(len(batch)))
				return
			}
			s.dbFailed(err)
		}
		err := s.spool.append(batch, true)
		if err == nil {
			s.spooled.Add(int64(len(batch)))
			return
		}
		// Both failing: keep the batch, slow everyone down, try again.
		s.setErr(fmt.Errorf("spool: %w", err))
		s.log.Error("audit: database and spool both failing; retrying", "err", err, "events", len(batch))
		time.Sleep(s.w.backoff)
	}
}

// dbFailed records a failed database write and schedules the next try.
func (s *Store) dbFailed(err error) {
	s.setErr(err)
	if s.w.healthy.Swap(false) {
		s.w.backoff = minBackoff
		s.log.Error("audit: database write failed; spooling until it recovers", "err", err)
	} else {
		s.w.backoff = min(2*s.w.backoff, maxBackoff)
	}
	s.w.retryAt = time.Now().Add(s.w.backoff)
}

// dbOK records a successful database write.
func (s *Store) dbOK() {
	if !s.w.healthy.Swap(true) {
		s.log.Info("audit: database writable again")
	}
	s.w.backoff = minBackoff
}

// replayProgress is written in the same transaction as a replayed chunk.
type replayProgress struct {
	file   string // base name of the rotated spool
	offset int64  // bytes of it now committed
}

// rollupKey identifies a rollup_hour row.
type rollupKey struct {
	hour     int64
	dim, key string
}

// rollupSums are the counters of a rollup row.
type rollupSums struct{ requests, blocked, bytesIn, bytesOut int64 }

func (a *rollupSums) add(blocked bool, in, out int64) {
	a.requests++
	if blocked {
		a.blocked++
	}
	a.bytesIn += in
	a.bytesOut += out
}

// isBlocked is the rollups' (and the read side's) definition of blocked.
func isBlocked(e *audit.Event) bool {
	return (e.Action == "block" || e.Action == "warn") && e.Reason != "warn_accepted"
}

// floorTo is the start (Unix seconds) of the step-second bucket holding ns.
func floorTo(ns, step int64) int64 {
	sec := ns / int64(time.Second)
	if ns%int64(time.Second) < 0 {
		sec--
	}
	b := sec / step
	if sec%step < 0 {
		b--
	}
	return b * step
}

// insertSQL inserts one row. Every value but id, time and hash goes
// through coalesce, so a zero value (an empty string, a zero number) need
// not be bound at all: go-sqlite3 binds each value with a cgo call of its
// own, and a typical event leaves a dozen columns empty. (One multi-row
// INSERT per 16 or 64 rows was measured slower.)
var insertSQL = func() string {
	var b strings.Builder
	b.WriteString(`INSERT INTO events (` + chainColumns + `, hash) VALUES (?1, ?2`)
	for i := 3; i <= chainRowColumns; i++ {
		zero := "''"
		if chainIntColumn[i-1] {
			zero = "0"
		}
		fmt.Fprintf(&b, ", coalesce(?%d, %s)", i, zero)
	}
	fmt.Fprintf(&b, ", ?%d)", chainRowColumns+1)
	return b.String()
}()

const (
	upsertHourSQL = `INSERT INTO rollup_hour (hour, dim, key, requests, blocked, bytes_in, bytes_out)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (dim, hour, key) DO UPDATE SET requests = requests + excluded.requests,
		blocked = blocked + excluded.blocked, bytes_in = bytes_in + excluded.bytes_in,
		bytes_out = bytes_out + excluded.bytes_out`
	upsertMinuteSQL = `INSERT INTO rollup_minute (minute, requests, blocked, bytes_in, bytes_out)
	VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (minute) DO UPDATE SET requests = requests + excluded.requests,
		blocked = blocked + excluded.blocked, bytes_in = bytes_in + excluded.bytes_in,
		bytes_out = bytes_out + excluded.bytes_out`
	progressSQL = `INSERT INTO spool_replay (id, file, done_bytes) VALUES (1, ?, ?)
	ON CONFLICT (id) DO UPDATE SET file = excluded.file, done_bytes = excluded.done_bytes`
)

// writerStmts are the writer connection's prepared statements, made on
// first use and closed with the store. They are used on the driver
// connection directly: database/sql's per-call argument conversion and
// locking cost as much as SQLite's own work for a row.
type writerStmts struct {
	ins, hour, minute, progress *sqlite3.SQLiteStmt
	nv                          []driver.NamedValue
}

func (ws *writerStmts) close() {
	for _, st := range []*sqlite3.SQLiteStmt{ws.ins, ws.hour, ws.minute, ws.progress} {
		if st != nil {
			st.Close()
		}
	}
}

func prepareWriterStmts(c *sqlite3.SQLiteConn) (*writerStmts, error) {
	ws := &writerStmts{}
	for _, p := range []struct {
		dst **sqlite3.SQLiteStmt
		sql string
	}{{&ws.ins, insertSQL}, {&ws.hour, upsertHourSQL}, {&ws.minute, upsertMinuteSQL}, {&ws.progress, progressSQL}} {
		st, err := c.Prepare(p.sql)
		if err != nil {
			ws.close()
			return nil, fmt.Errorf("audit sqlite: prepare: %w", err)
		}
		*p.dst = st.(*sqlite3.SQLiteStmt)
	}
	return ws, nil
}

// exec runs st with the values in order.
func (ws *writerStmts) exec(ctx context.Context, st *sqlite3.SQLiteStmt, vals ...any) error {
	nv := ws.nv[:0]
	for i, v := range vals {
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	_, err := st.ExecContext(ctx, nv)
	clear(nv)
	ws.nv = nv[:0]
	return err
}

// insert writes evs in one transaction: the rows with their chain hashes,
// the rollups and, for a replay, the replay progress. On success the chain
// head moves on and the database counts as healthy; on failure nothing
// changed.
func (s *Store) insert(evs []*audit.Event, prog *replayProgress) error {
	var lastID int64
	var lastHash [32]byte
	err := s.wconn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("audit sqlite: unexpected driver connection %T", dc)
		}
		if s.w.stmts == nil {
			ws, err := prepareWriterStmts(c)
			if err != nil {
				return err
			}
			s.w.stmts = ws
		}
		if _, err := c.Exec("BEGIN IMMEDIATE", nil); err != nil {
			return fmt.Errorf("audit sqlite: begin: %w", err)
		}
		var err error
		lastID, lastHash, err = s.insertTx(s.w.stmts, evs, prog)
		if err == nil {
			if _, err = c.Exec("COMMIT", nil); err != nil {
				err = fmt.Errorf("audit sqlite: commit: %w", err)
			}
		}
		if err != nil {
			c.Exec("ROLLBACK", nil)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.w.lastID, s.w.lastHash = lastID, lastHash
	s.dbOK()
	return nil
}

// insertTx does insert's work inside the open transaction and returns the
// new chain head.
func (s *Store) insertTx(ws *writerStmts, evs []*audit.Event, prog *replayProgress) (int64, [32]byte, error) {
	ctx := context.Background()
	id, prev := s.w.lastID, s.w.lastHash
	hours := make(map[rollupKey]*rollupSums)
	minutes := make(map[int64]*rollupSums)
	sum := func(k rollupKey, blocked bool, e *audit.Event) {
		a := hours[k]
		if a == nil {
			a = new(rollupSums)
			hours[k] = a
		}
		a.add(blocked, e.BytesIn, e.BytesOut)
	}
	for _, e := range evs {
		r := rowFromEvent(e)
		id++
		r.id = id
		prev = s.w.hasher.next(prev, &r)
		nv := r.appendNamed(ws.nv[:0], prev[:])
		_, err := ws.ins.ExecContext(ctx, nv)
		clear(nv)
		ws.nv = nv[:0]
		if err != nil {
			return 0, prev, fmt.Errorf("audit sqlite: insert: %w", err)
		}
		blocked := isBlocked(e)
		hour := floorTo(r.time, 3600)
		sum(rollupKey{hour, "total", ""}, blocked, e)
		sum(rollupKey{hour, "host", e.Host}, blocked, e)
		sum(rollupKey{hour, "user", e.User}, blocked, e)
		sum(rollupKey{hour, "client", e.Client}, blocked, e)
		sum(rollupKey{hour, "action", e.Action}, blocked, e)
		if e.Error != "" && trafficKind(e.Kind) {
			sum(rollupKey{hour, "error", e.Error}, blocked, e)
		}
		for i, c := range e.Categories {
			if !dupBefore(e.Categories, i) {
				sum(rollupKey{hour, "category", c}, blocked, e)
			}
		}
		m := floorTo(r.time, 60)
		a := minutes[m]
		if a == nil {
			a = new(rollupSums)
			minutes[m] = a
		}
		a.add(blocked, e.BytesIn, e.BytesOut)
	}
	for k, a := range hours {
		if err := ws.exec(ctx, ws.hour, k.hour, k.dim, k.key, a.requests, a.blocked, a.bytesIn, a.bytesOut); err != nil {
			return 0, prev, fmt.Errorf("audit sqlite: rollup_hour: %w", err)
		}
	}
	for m, a := range minutes {
		if err := ws.exec(ctx, ws.minute, m, a.requests, a.blocked, a.bytesIn, a.bytesOut); err != nil {
			return 0, prev, fmt.Errorf("audit sqlite: rollup_minute: %w", err)
		}
	}
	if prog != nil {
		if err := ws.exec(ctx, ws.progress, prog.file, prog.offset); err != nil {
			return 0, prev, fmt.Errorf("audit sqlite: replay progress: %w", err)
		}
	}
	return id, prev, nil
}

// trafficKind reports whether events of kind k carry traffic (requests,
// tunnels, reverse requests), whose Error is the cause of an upstream
// failure, rolled up by cause; admin events' errors are not.
func trafficKind(k audit.Kind) bool {
	return k == audit.KindHTTP || k == audit.KindConnect || k == audit.KindReverse
}

// dupBefore reports whether list[i] already occurs in list[:i] (an event
// counts once per distinct category).
func dupBefore(list []string, i int) bool {
	for _, v := range list[:i] {
		if v == list[i] {
			return true
		}
	}
	return false
}
