package sqlite

import (
	"context"
	"fmt"
	"time"

	"waygate/audit"
)

// pruneChunk is the most events one retention transaction deletes, so
// that the writer never waits long for the lock.
const pruneChunk = 10000

// Prune deletes the oldest events: first, in id order, those with a time
// before olderThan (a zero olderThan deletes nothing by age); then, while
// the database holds more than maxBytes (0 means no limit), the oldest
// events regardless of time. It returns how many events it deleted.
//
// Events go in id order only, so that the chain stays verifiable: an old
// event that follows a newer one in id order (a replayed spool, a long
// tunnel) waits until the events before it go. Each chunk of at most
// 10000 events is one short transaction on the writer's database that also
// moves chain_anchor to the last deleted event (its id and hash). Rollup
// rows whose whole bucket is before olderThan are deleted too. The size is
// estimated as (page_count - freelist_count) * page_size. Freed pages are
// given back to the file system with PRAGMA incremental_vacuum (Open
// creates databases with auto_vacuum=INCREMENTAL; a database created
// without it keeps its size and reuses the free pages).
func (s *Store) Prune(ctx context.Context, olderThan time.Time, maxBytes int64) (removed int64, err error) {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	if !olderThan.IsZero() {
		cutoff := nanos(olderThan)
		for {
			n, more, err := s.pruneOldest(ctx, pruneChunk, cutoff)
			removed += n
			if err != nil {
				return removed, err
			}
			if !more {
				break
			}
		}
		sec := floorTo(cutoff, 1)
		if _, err := s.wdb.ExecContext(ctx, `DELETE FROM rollup_hour WHERE hour <= ?`, sec-3600); err != nil {
			return removed, fmt.Errorf("audit prune: rollup_hour: %w", err)
		}
		if _, err := s.wdb.ExecContext(ctx, `DELETE FROM rollup_minute WHERE minute <= ?`, sec-60); err != nil {
			return removed, fmt.Errorf("audit prune: rollup_minute: %w", err)
		}
	}
	if maxBytes > 0 {
		for {
			used, err := s.usedBytes(ctx)
			if err != nil {
				return removed, err
			}
			if used <= maxBytes {
				break
			}
			var count int64
			if err := s.wdb.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&count); err != nil {
				return removed, fmt.Errorf("audit prune: %w", err)
			}
			if count == 0 {
				break
			}
			// Delete about the share of events the excess is, plus a bit.
			k := min(count*(used-maxBytes)/used+1+count/100, pruneChunk)
			n, _, err := s.pruneOldest(ctx, int(k), 1<<63-1)
			removed += n
			if err != nil {
				return removed, err
			}
			if n == 0 {
				break
			}
		}
	}
	if removed > 0 {
		if err := s.vacuum(ctx); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// pruneOldest deletes, in one transaction, the longest prefix (in id
// order, at most limit events) of events with a time before cutoff, and
// moves the anchor. more reports that the limit was reached.
func (s *Store) pruneOldest(ctx context.Context, limit int, cutoff int64) (n int64, more bool, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("audit prune: begin: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, time, hash FROM events ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return 0, false, fmt.Errorf("audit prune: %w", err)
	}
	var lastID int64
	var lastHash []byte
	stopped := false
	for rows.Next() {
		var id, t int64
		var h []byte
		if err := rows.Scan(&id, &t, &h); err != nil {
			rows.Close()
			return 0, false, fmt.Errorf("audit prune: %w", err)
		}
		if t >= cutoff {
			stopped = true
			break
		}
		lastID, lastHash = id, h
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("audit prune: %w", err)
	}
	if n == 0 {
		return 0, false, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id <= ?`, lastID); err != nil {
		return 0, false, fmt.Errorf("audit prune: delete: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO chain_anchor (id, event_id, hash) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, hash = excluded.hash`, lastID, lastHash); err != nil {
		return 0, false, fmt.Errorf("audit prune: anchor: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("audit prune: commit: %w", err)
	}
	return n, !stopped && n == int64(limit), nil
}

// usedBytes estimates the database size without its free pages.
func (s *Store) usedBytes(ctx context.Context) (int64, error) {
	var pages, free, size int64
	err := s.wdb.QueryRowContext(ctx, `SELECT p.page_count, f.freelist_count, s.page_size
		FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s`).Scan(&pages, &free, &size)
	if err != nil {
		return 0, fmt.Errorf("audit prune: database size: %w", err)
	}
	return (pages - free) * size, nil
}

// vacuum gives free pages back, 2048 pages (8 MiB with 4 KiB pages) per
// statement so that the writer is not held up long.
func (s *Store) vacuum(ctx context.Context) error {
	for range 1 << 16 {
		var free int64
		if err := s.wdb.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
			return fmt.Errorf("audit prune: vacuum: %w", err)
		}
		if free == 0 {
			return nil
		}
		// incremental_vacuum frees a page per step: read all its rows.
		rows, err := s.wdb.QueryContext(ctx, `PRAGMA incremental_vacuum(2048)`)
		if err != nil {
			return fmt.Errorf("audit prune: vacuum: %w", err)
		}
		for rows.Next() {
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("audit prune: vacuum: %w", err)
		}
		var av int
		if err := s.wdb.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&av); err != nil {
			return fmt.Errorf("audit prune: vacuum: %w", err)
		}
		if av != 2 { // not INCREMENTAL: the free pages stay, to be reused
			return nil
		}
	}
	return nil
}

// StartRetention runs Prune(now-maxAge, maxBytes) at once and then every
// interval until Close. A zero maxAge means no age limit, a zero maxBytes
// no size limit (both zero: nothing to do), a zero every means 10 minutes.
// Errors are logged.
func (s *Store) StartRetention(maxAge time.Duration, maxBytes int64, every time.Duration) {
	if maxAge <= 0 && maxBytes <= 0 {
		return
	}
	if every <= 0 {
		every = 10 * time.Minute
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	s.retention.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.stopRetain
		cancel()
	}()
	go func() {
		defer s.retention.Done()
		defer cancel()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var cutoff time.Time
			if maxAge > 0 {
				cutoff = s.now().Add(-maxAge)
			}
			n, err := s.Prune(ctx, cutoff, maxBytes)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Error("audit: retention", "err", err, "removed", n)
			case n > 0:
				s.log.Info("audit: retention removed old events", "removed", n)
			}
			if n > 0 {
				// A purge is an admin action of its own, in the trail it
				// shortened.
				s.Record(&audit.Event{Time: s.now(), Kind: audit.KindAdmin, User: "system", Method: "purge",
					Detail: fmt.Sprintf(`{"removed":%d,"max_age":%q,"max_bytes":%d}`, n, maxAge.String(), maxBytes)})
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
}
