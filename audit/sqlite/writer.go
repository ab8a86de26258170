package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

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
	args     []any

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
		// commits cost far more than a few large ones. A Flush request
		// ends the wait at once.
		batch, flushes = batch[:0], flushes[:0]
		closed := false
		linger := time.NewTimer(s.opt.Linger)
	gather:
		for {
			if it.done != nil {
				flushes = append(flushes, it.done)
			} else {
				batch = append(batch, it.ev)
			}
			if len(batch) >= s.opt.BatchSize {
				break
			}
			if len(flushes) > 0 {
				select {
				case it, ok = <-s.queue:
					if !ok {
						closed = true
						break gather
					}
					continue
				default:
					break gather
				}
			}
			select {
			case it, ok = <-s.queue:
				if !ok {
					closed = true
					break gather
				}
			case <-linger.C:
				break gather
			}
		}
		linger.Stop()
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

// insertSQL inserts one row. (One multi-row INSERT per 16 or 64 rows was
// measured slower: go-sqlite3 binds every value with its own cgo call
// either way.)
var insertSQL = `INSERT INTO events (` + chainColumns + `, hash) VALUES (` + strings.Repeat("?, ", chainRowColumns) + `?)`

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

// insert writes evs in one transaction: the rows with their chain hashes,
// the rollups and, for a replay, the replay progress. On success the chain
// head moves on and the database counts as healthy; on failure nothing
// changed.
func (s *Store) insert(evs []*audit.Event, prog *replayProgress) (err error) {
	ctx := context.Background()
	tx, err := s.wconn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit sqlite: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
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
	ins, err := tx.PrepareContext(ctx, insertSQL)
	if err != nil {
		return fmt.Errorf("audit sqlite: prepare insert: %w", err)
	}
	args := s.w.args[:0]
	for _, e := range evs {
		r := rowFromEvent(e)
		id++
		r.id = id
		prev = s.w.hasher.next(prev, &r)
		args = r.appendArgs(args[:0], prev[:])
		if _, err := ins.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("audit sqlite: insert: %w", err)
		}
		blocked := isBlocked(e)
		hour := floorTo(r.time, 3600)
		sum(rollupKey{hour, "total", ""}, blocked, e)
		sum(rollupKey{hour, "host", e.Host}, blocked, e)
		sum(rollupKey{hour, "user", e.User}, blocked, e)
		sum(rollupKey{hour, "action", e.Action}, blocked, e)
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
	clear(args)
	s.w.args = args[:0]
	up, err := tx.PrepareContext(ctx, upsertHourSQL)
	if err != nil {
		return fmt.Errorf("audit sqlite: prepare rollup: %w", err)
	}
	for k, a := range hours {
		if _, err := up.ExecContext(ctx, k.hour, k.dim, k.key, a.requests, a.blocked, a.bytesIn, a.bytesOut); err != nil {
			return fmt.Errorf("audit sqlite: rollup_hour: %w", err)
		}
	}
	upm, err := tx.PrepareContext(ctx, upsertMinuteSQL)
	if err != nil {
		return fmt.Errorf("audit sqlite: prepare rollup: %w", err)
	}
	for m, a := range minutes {
		if _, err := upm.ExecContext(ctx, m, a.requests, a.blocked, a.bytesIn, a.bytesOut); err != nil {
			return fmt.Errorf("audit sqlite: rollup_minute: %w", err)
		}
	}
	if prog != nil {
		if _, err := tx.ExecContext(ctx, progressSQL, prog.file, prog.offset); err != nil {
			return fmt.Errorf("audit sqlite: replay progress: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit sqlite: commit: %w", err)
	}
	s.w.lastID, s.w.lastHash = id, prev
	s.dbOK()
	return nil
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
