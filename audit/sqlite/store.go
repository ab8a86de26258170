package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"waygate/audit"
)

// Options configure a Store. Only Path is required; every other zero value
// selects the default named on its field.
type Options struct {
	// Path is the database file (data_dir/audit.db). The spool is
	// Path+".spool"; replays in progress are Path+".spool.*.replay".
	Path string
	// QueueSize is the number of events buffered in memory; 0 means 65536.
	QueueSize int
	// BatchSize is the most events written in one transaction; 0 means
	// 16384 (large transactions cost far less per event: each commit
	// rewrites the index pages it touched).
	BatchSize int
	// FlushInterval is the period at which the spool is fsynced and a
	// failing database retried; 0 means 200ms.
	FlushInterval time.Duration
	// Linger is how long the writer waits for more events before it
	// commits a batch that is not full (Flush never waits for it); large
	// transactions cost far less per event. 0 means 50ms; negative means
	// commit as soon as the queue runs empty.
	Linger time.Duration
	// WaitBound is how long Record waits for queue space before it writes
	// the event to the spool instead; 0 means 2s.
	WaitBound time.Duration
	// Now gives the time stamped on events recorded with a zero Time and
	// the clock of StartRetention; nil means time.Now.
	Now func() time.Time
	// Logger receives write failures and recoveries; nil means
	// slog.Default().
	Logger *slog.Logger

	// busyTimeout replaces the 5 s busy timeout of the writer's
	// connections (tests); 0 means 5 s.
	busyTimeout time.Duration
}

// Stats are a Store's counters since Open. When everything is settled,
// every event Record accepted was either Queued or Spooled by Record, and
// every row the store inserted is counted once in Written (from the queue)
// or Replayed (from the spool). Spooled also counts events of batches the
// database refused, which are then Replayed.
type Stats struct {
	Queued   int64 // events put in the memory queue
	Written  int64 // events from the queue committed to the database
	Spooled  int64 // events appended to the spool file
	Replayed int64 // events from the spool committed to the database
	Dropped  int64 // events lost: 0 unless the spool itself fails after Close
	QueueLen int   // events (and flush requests) waiting in the queue now
	// LastError is the last write error (database or spool), "" if none.
	LastError string
}

// Store is the SQLite audit trail. It is an audit.Sink, safe for
// concurrent use. Only one Store (one process) may write a database file
// at a time: the hash chain is kept in memory.
//
// Durability: the database runs in WAL mode with synchronous=NORMAL. A
// committed transaction survives a crash of the process (SIGKILL, panic)
// but the last transactions before a power loss or OS crash may roll back
// (the database is never corrupted). The spool is written with one write(2)
// per event or batch, so a process crash loses nothing Record returned
// from; it is fsynced by Flush, by Close, every FlushInterval, and after
// every batch the writer moves there. An event is acknowledged when Flush
// returns: it is then committed or in an fsynced spool.
type Store struct {
	opt   Options
	log   *slog.Logger
	now   func() time.Time
	db    *sql.DB   // readers (DB()); deferred transactions
	wdb   *sql.DB   // the writer and Prune; BEGIN IMMEDIATE
	wconn *sql.Conn // the writer's own connection (its page cache stays warm)
	spool *spool

	mu     sync.RWMutex // Record and Flush hold it shared while sending; Close exclusively
	closed bool
	queue  chan queueItem
	// kick ends the writer's linger early: sent (never blocking) by Flush,
	// by Close, and by Record when a full batch is waiting.
	kick chan struct{}
	done chan struct{} // closed when the writer has stopped

	queued, written, spooled, replayed, dropped atomic.Int64
	lastErr                                     atomic.Pointer[string]

	// Writer state: only the writer goroutine (or Open, before it starts)
	// touches these.
	w writerState

	retention  sync.WaitGroup
	stopRetain chan struct{}
	retainOnce sync.Once
	pruneMu    sync.Mutex // one Prune at a time
}

// queueItem is an event, or a Flush request (done non-nil).
type queueItem struct {
	ev   *audit.Event
	done chan struct{}
}

// Open opens (creating if needed) the audit database at o.Path, applies
// the migrations, replays any spool a previous run left and starts the
// writer. Call Close to stop it.
func Open(o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("audit sqlite: Options.Path is empty")
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 65536
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 16384
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.Linger == 0 {
		o.Linger = 50 * time.Millisecond
	} else if o.Linger < 0 {
		o.Linger = 0
	}
	if o.WaitBound <= 0 {
		o.WaitBound = 2 * time.Second
	}
	if o.busyTimeout <= 0 {
		o.busyTimeout = 5 * time.Second
	}
	s := &Store{
		opt:        o,
		log:        o.Logger,
		now:        o.Now,
		queue:      make(chan queueItem, o.QueueSize),
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		stopRetain: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return nil, fmt.Errorf("audit sqlite: create directory: %w", err)
	}
	if err := createPrivate(o.Path); err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	abs, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, fmt.Errorf("audit sqlite: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	// auto_vacuum only takes effect on a database without tables: it is
	// set (before journal_mode) on every connection, so a new file gets
	// INCREMENTAL and Prune can give space back with incremental_vacuum.
	common := "&_journal_mode=WAL&_synchronous=NORMAL&_auto_vacuum=incremental"
	// The writer's connections: BEGIN IMMEDIATE (no lock upgrade
	// deadlocks), a 2 MiB page cache for the hot pages, and no SQLite
	// mutexes (_mutex=no; database/sql never shares a connection between
	// goroutines), which is 7% faster.
	//
	// The page cache fills to its cap however few pages are hot: appended
	// rows and index entries stay cached until evicted. Inserts touch the
	// right edge of the time index, one leaf per active user in
	// events_user_time, and the rollup rows of the current hour. With 3
	// million realistic events (BenchmarkRecord), 8, 4 and 2 MiB wrote
	// within 3% of each other (92k, 92k, 89k events/s) and 1 MiB 15% fewer;
	// 2 MiB holds 6 MiB less resident than 8 under load.
	s.wdb, err = sql.Open(writerDriver, u.String()+fmt.Sprintf("?_busy_timeout=%d&_txlock=immediate&_cache_size=-2048&_mutex=no", o.busyTimeout.Milliseconds())+common)
	if err != nil {
		return nil, fmt.Errorf("audit sqlite: open %s: %w", o.Path, err)
	}
	// One connection for the writer, one for Prune.
	s.wdb.SetMaxOpenConns(2)
	s.wdb.SetMaxIdleConns(2)
	s.wdb.SetConnMaxLifetime(0)
	s.db, err = sql.Open("sqlite3", u.String()+"?_busy_timeout=5000&_txlock=deferred"+common)
	if err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("audit sqlite: open %s: %w", o.Path, err)
	}
	fail := func(err error) (*Store, error) {
		if s.wconn != nil {
			s.wconn.Close()
		}
		s.wdb.Close()
		s.db.Close()
		return nil, err
	}
	if err := migrate(s.wdb); err != nil {
		return fail(fmt.Errorf("audit sqlite: %s: %w", o.Path, err))
	}
	if s.wconn, err = s.wdb.Conn(context.Background()); err != nil {
		return fail(fmt.Errorf("audit sqlite: %s: %w", o.Path, err))
	}
	if err := s.loadChainHead(context.Background()); err != nil {
		return fail(fmt.Errorf("audit sqlite: %s: %w", o.Path, err))
	}
	if s.spool, err = openSpool(o.Path + ".spool"); err != nil {
		return fail(fmt.Errorf("audit sqlite: %w", err))
	}
	if s.w.replayQueue, err = replayFiles(o.Path + ".spool"); err != nil {
		return fail(fmt.Errorf("audit sqlite: %w", err))
	}
	s.w.healthy.Store(true)
	s.w.backoff = minBackoff
	// Replay what a previous run left, before accepting new events. A
	// failure is not fatal: the writer keeps retrying.
	if err := s.replayAll(); err != nil {
		s.log.Error("audit: replaying the spool failed; will retry", "err", err)
	}
	go s.run()
	return s, nil
}

// writerDriver is go-sqlite3 with the writer's per-connection settings.
const writerDriver = "sqlite3-waygate-audit-writer"

// writerPragmas are set on each writer connection: a checkpoint every
// 10000 WAL pages (40 MiB; the default 1000 costs a quarter of the
// throughput in fsyncs and page rewrites), the WAL file cut back to 64 MiB
// after one, temporary b-trees in memory.
const writerPragmas = `PRAGMA wal_autocheckpoint = 10000; PRAGMA journal_size_limit = 67108864; PRAGMA temp_store = MEMORY;`

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(writerPragmas, nil)
		return err
	}})
}

// migrate applies the migrations not yet applied, each in a transaction.
func migrate(db *sql.DB) error {
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program (%d)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := db.Begin()
		if err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.Exec(migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	return nil
}

// DB is the database for queries (Search, Top, Series, ...). Do not write
// to it; do not close it (Close does).
func (s *Store) DB() *sql.DB { return s.db }

// Record accepts e (implementing audit.Sink). It puts e in the queue;
// when the queue stays full for WaitBound it appends e to the spool
// instead. It never drops e and never panics, also after Close (then e
// goes to the spool, replayed by the next Open). An event with a zero Time
// is stamped with Options.Now. e must not change after Record returns.
func (s *Store) Record(e *audit.Event) {
	if e == nil {
		return
	}
	if e.Time.IsZero() {
		c := *e
		c.Time = s.now()
		e = &c
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		s.spoolAfterClose(e)
		return
	}
	select {
	case s.queue <- queueItem{ev: e}:
		s.queued.Add(1)
		// A lingering writer holds one event: with this many more queued,
		// its batch is full.
		if len(s.queue) >= min(s.opt.BatchSize-1, cap(s.queue)) {
			s.wake()
		}
		s.mu.RUnlock()
		return
	default:
	}
	defer s.mu.RUnlock()
	s.wake() // the queue is full: the writer must not linger
	t := time.NewTimer(s.opt.WaitBound)
	defer t.Stop()
	for {
		select {
		case s.queue <- queueItem{ev: e}:
			s.queued.Add(1)
			return
		case <-t.C:
		}
		err := s.spool.append([]*audit.Event{e}, false)
		if err == nil {
			s.spooled.Add(1)
			return
		}
		// Neither queue nor spool: keep the caller waiting rather than
		// lose the event.
		s.setErr(fmt.Errorf("spool: %w", err))
		s.log.Error("audit: queue full and spool failing; waiting", "err", err)
		t.Reset(s.opt.WaitBound)
	}
}

// spoolAfterClose writes e to the spool, fsynced, once the writer is gone.
func (s *Store) spoolAfterClose(e *audit.Event) {
	if err := s.spool.append([]*audit.Event{e}, true); err != nil {
		s.dropped.Add(1)
		s.setErr(fmt.Errorf("spool after close: %w", err))
		s.log.Error("audit: event recorded after Close lost: spool failed", "err", err, "request_id", e.RequestID)
		return
	}
	s.spooled.Add(1)
}

// Flush waits until every event Record accepted before the call is
// committed to the database or in the fsynced spool. It also makes the
// writer retry a failing database at once and replay the spool, so that
// after a successful Flush with a healthy database the spool is empty.
// It returns the last write error when the database is failing (the
// events are then safe in the spool), nil otherwise.
func (s *Store) Flush() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return s.spool.sync()
	}
	done := make(chan struct{})
	s.queue <- queueItem{done: done}
	s.wake()
	s.mu.RUnlock()
	<-done
	if e := s.lastErr.Load(); e != nil && !s.writerHealthy() {
		return errors.New(*e)
	}
	return nil
}

// Close writes everything still queued (to the database, or to the spool
// if the database fails), stops the writer and retention, and closes the
// database. Record after Close spools; Close twice returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.wake()
	s.mu.Unlock()
	s.retainOnce.Do(func() { close(s.stopRetain) })
	s.retention.Wait()
	<-s.done
	var errs []error
	if err := s.spool.close(); err != nil {
		errs = append(errs, fmt.Errorf("audit sqlite: close spool: %w", err))
	}
	if s.w.stmts != nil {
		s.wconn.Raw(func(any) error {
			s.w.stmts.close()
			return nil
		})
	}
	if err := s.wconn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit sqlite: close: %w", err))
	}
	if err := s.wdb.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit sqlite: close: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit sqlite: close: %w", err))
	}
	return errors.Join(errs...)
}

// wake ends the writer's linger, if it is lingering, without blocking.
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Queued:   s.queued.Load(),
		Written:  s.written.Load(),
		Spooled:  s.spooled.Load(),
		Replayed: s.replayed.Load(),
		Dropped:  s.dropped.Load(),
		QueueLen: len(s.queue),
	}
	if e := s.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

func (s *Store) setErr(err error) {
	msg := err.Error()
	s.lastErr.Store(&msg)
}

// createPrivate creates the database file readable by its owner only
// (0600) unless it exists: it holds browsing history, admin password
// hashes and session keys. SQLite gives the -wal and -shm files the
// database file's permissions.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}
