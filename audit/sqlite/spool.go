package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"waygate/audit"
)

// The spool
//
// The spool (Path+".spool") holds events the database could not take:
// one JSON object (encoding/json of audit.Event) per line. It is only
// appended to, one write(2) per event (Record with a full queue) or per
// batch (the writer, when a transaction fails); a failed or short write is
// truncated away so that the file only ever holds whole lines. It is
// fsynced after every batch the writer spools, every FlushInterval, by
// Flush and by Close; after Close every append is fsynced.
//
// Replay is exactly once. The writer first rotates the spool: under the
// spool's lock it renames it to Path+".spool.<unix-ns>.replay" (new events
// go to a fresh Path+".spool"), so nothing appended during the replay can
// be lost by removing a file. It then reads the rotated file in chunks of
// up to BatchSize events and commits each chunk in one transaction that
// also stores (file name, bytes consumed) in the table spool_replay. After
// a crash, replay resumes at the committed byte offset, so a chunk is
// never inserted twice and never skipped. When the file is consumed it is
// removed (and the directory fsynced). A torn last line (a crash during a
// write: that event was never accepted) is skipped with a log message.

// spool is the append-only spool file.
type spool struct {
	path string

	mu        sync.Mutex
	f         *os.File // open for appending; nil until needed
	dirty     bool     // written since the last fsync
	afterDone bool     // after Close: open, append, fsync and close per call
	buf       []byte
	size      atomic.Int64 // bytes in the current file
}

// openSpool opens the spool at path. A non-empty spool left by a previous
// run is rotated at once, so that new events never follow a torn line.
func openSpool(path string) (*spool, error) {
	sp := &spool{path: path}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("spool: %w", err)
	case fi.Size() > 0:
		sp.size.Store(fi.Size())
		if _, err := sp.rotate(); err != nil {
			return nil, err
		}
	}
	return sp, nil
}

// pending is the number of bytes waiting in the current spool file.
func (sp *spool) pending() int64 { return sp.size.Load() }

// append writes evs as JSON lines, in one write, and fsyncs when sync (or
// after Close).
func (sp *spool) append(evs []*audit.Event, sync bool) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	buf := sp.buf[:0]
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		buf = append(append(buf, b...), '\n')
	}
	sp.buf = buf[:0]
	if sp.f == nil {
		if err := sp.open(); err != nil {
			return err
		}
	}
	if n, err := sp.f.Write(buf); err != nil {
		if n > 0 {
			// Keep whole lines only: cut the partial write.
			if terr := sp.f.Truncate(sp.size.Load()); terr != nil {
				err = errors.Join(err, terr)
			}
		}
		return fmt.Errorf("write %s: %w", sp.path, err)
	}
	sp.size.Add(int64(len(buf)))
	sp.dirty = true
	if sync || sp.afterDone {
		if err := sp.syncLocked(); err != nil {
			return err
		}
	}
	if sp.afterDone {
		err := sp.f.Close()
		sp.f = nil
		if err != nil {
			return fmt.Errorf("close %s: %w", sp.path, err)
		}
	}
	return nil
}

// open opens (creating) the spool file; sp.mu is held.
func (sp *spool) open() error {
	_, statErr := os.Stat(sp.path)
	f, err := os.OpenFile(sp.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open spool: %w", err)
	}
	sp.f = f
	sp.size.Store(fi.Size())
	if errors.Is(statErr, fs.ErrNotExist) {
		// A new file: make its directory entry durable too.
		if err := syncDir(filepath.Dir(sp.path)); err != nil {
			return err
		}
	}
	return nil
}

// sync fsyncs the spool if it was written since the last fsync.
func (sp *spool) sync() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.syncLocked()
}

func (sp *spool) syncLocked() error {
	if !sp.dirty || sp.f == nil {
		return nil
	}
	if err := sp.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", sp.path, err)
	}
	sp.dirty = false
	return nil
}

// rotate renames a non-empty spool to a new replay file and returns its
// path ("" when the spool is empty).
func (sp *spool) rotate() (string, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.size.Load() == 0 {
		return "", nil
	}
	if sp.f != nil {
		err := sp.syncLocked()
		if cerr := sp.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", sp.path, cerr)
		}
		sp.f = nil
		if err != nil {
			return "", err
		}
	}
	sp.dirty = false
	var name string
	for ns := time.Now().UnixNano(); ; ns++ {
		name = fmt.Sprintf("%s.%020d.replay", sp.path, ns)
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err := os.Rename(sp.path, name); err != nil {
		return "", fmt.Errorf("rotate spool: %w", err)
	}
	sp.size.Store(0)
	if err := syncDir(filepath.Dir(sp.path)); err != nil {
		return "", err
	}
	return name, nil
}

// close fsyncs and closes the file; later appends open, fsync and close
// it each time.
func (sp *spool) close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.afterDone = true
	if sp.f == nil {
		return nil
	}
	err := sp.syncLocked()
	if cerr := sp.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", sp.path, cerr)
	}
	sp.f = nil
	return err
}

// replayFiles lists the rotated spool files of the spool at path, oldest
// first.
func replayFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list spool files: %w", err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, base+".") && strings.HasSuffix(n, ".replay") && e.Type().IsRegular() {
			out = append(out, filepath.Join(dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}

// syncDir fsyncs a directory (after creating, renaming or removing a file
// in it).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// replayCursor is the rotated spool file being replayed.
type replayCursor struct {
	path string
	f    *os.File
	r    *bufio.Reader
	off  int64 // bytes consumed and committed
}

func (c *replayCursor) close() {
	if c.f != nil {
		c.f.Close()
	}
}

// replayPending reports whether spooled events wait for the database.
func (s *Store) replayPending() bool {
	return s.w.replay != nil || s.spool.pending() > 0 || len(s.w.replayQueue) > 0
}

// replayAll replays the spool until it is empty (rotating the live spool
// at most once, so that a steady stream of spooled events cannot keep it
// busy forever), or until the database fails.
func (s *Store) replayAll() error {
	rotated := false
	for {
		if s.w.replay == nil && len(s.w.replayQueue) == 0 {
			if rotated || s.spool.pending() == 0 {
				return nil
			}
			rotated = true
		}
		if err := s.replayStep(); err != nil {
			return err
		}
	}
}

// replayStep commits the next chunk of the spool (opening the next
// rotated file, or rotating the live spool, first). A database error
// marks the database failing and is returned.
func (s *Store) replayStep() error {
	if s.w.replay == nil {
		if err := s.openReplay(); err != nil || s.w.replay == nil {
			return err
		}
	}
	c := s.w.replay
	var evs []*audit.Event
	eof := false
	for len(evs) < s.opt.BatchSize {
		line, err := c.r.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 {
				s.log.Warn("audit: spool: skipping a torn last line (written during a crash)", "file", c.path, "offset", c.off, "bytes", len(line))
				c.off += int64(len(line))
			}
			eof = true
			break
		}
		if err != nil {
			s.closeReplay()
			return s.replayFileErr(fmt.Errorf("read %s: %w", c.path, err))
		}
		start := c.off
		c.off += int64(len(line))
		e := new(audit.Event)
		if err := json.Unmarshal(line, e); err != nil {
			s.log.Error("audit: spool: skipping a line that is not an event", "file", c.path, "offset", start, "err", err)
			continue
		}
		evs = append(evs, e)
	}
	if err := s.insert(evs, &replayProgress{file: filepath.Base(c.path), offset: c.off}); err != nil {
		// Start again from the committed offset next time.
		s.closeReplay()
		s.dbFailed(err)
		return err
	}
	s.replayed.Add(int64(len(evs)))
	if eof {
		c.close()
		s.w.replay = nil
		if err := os.Remove(c.path); err != nil {
			err = fmt.Errorf("remove replayed spool: %w", err)
			s.setErr(err)
			s.log.Error("audit: spool replayed but not removed; it will be skipped by its recorded offset", "err", err)
		}
		if err := syncDir(filepath.Dir(c.path)); err != nil {
			s.log.Warn("audit: spool", "err", err)
		}
		s.log.Info("audit: spool replayed", "file", filepath.Base(c.path), "events", s.replayed.Load())
	}
	return nil
}

// openReplay opens the next rotated file (rotating the live spool when
// there is none) at the offset committed for it.
func (s *Store) openReplay() error {
	if len(s.w.replayQueue) == 0 {
		name, err := s.spool.rotate()
		if err != nil {
			return s.replayFileErr(err)
		}
		if name == "" {
			return nil
		}
		s.w.replayQueue = append(s.w.replayQueue, name)
	}
	name := s.w.replayQueue[0]
	var file string
	var done int64
	err := s.wconn.QueryRowContext(context.Background(), `SELECT file, done_bytes FROM spool_replay WHERE id = 1`).Scan(&file, &done)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("audit sqlite: read replay progress: %w", err)
		s.dbFailed(err)
		return err
	}
	if file != filepath.Base(name) {
		done = 0
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		s.w.replayQueue = s.w.replayQueue[1:]
		return nil
	}
	if err != nil {
		return s.replayFileErr(fmt.Errorf("open spool for replay: %w", err))
	}
	if _, err := f.Seek(done, io.SeekStart); err != nil {
		f.Close()
		return s.replayFileErr(fmt.Errorf("seek spool for replay: %w", err))
	}
	s.w.replayQueue = s.w.replayQueue[1:]
	s.w.replay = &replayCursor{path: name, f: f, r: bufio.NewReaderSize(f, 1<<16), off: done}
	return nil
}

// closeReplay abandons the cursor; the file goes back to the front of
// the queue, to be reopened at its committed offset.
func (s *Store) closeReplay() {
	c := s.w.replay
	if c == nil {
		return
	}
	c.close()
	s.w.replay = nil
	s.w.replayQueue = append([]string{c.path}, s.w.replayQueue...)
}

// replayFileErr records a file (not database) error of the replay and
// pauses it for a while.
func (s *Store) replayFileErr(err error) error {
	s.setErr(err)
	s.log.Error("audit: spool replay", "err", err)
	s.w.replayAfter = time.Now().Add(time.Second)
	return err
}

// SpoolEvents hands events to the store of the database at dbPath without
// opening it: they are written, fsynced, as a complete replay file beside
// its spool, which the store replays at its next start. It is for other
// processes, such as the CLI recording an export, while a gateway may be
// writing the database: two writers would fork the hash chain.
func SpoolEvents(dbPath string, evs ...*audit.Event) error {
	var buf []byte
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("audit: encode event: %w", err)
		}
		buf = append(append(buf, b...), '\n')
	}
	spoolPath := dbPath + ".spool"
	dir := filepath.Dir(spoolPath)
	tmp, err := os.CreateTemp(dir, filepath.Base(spoolPath)+".tmp-*")
	if err != nil {
		return fmt.Errorf("audit: spool events: %w", err)
	}
	_, err = tmp.Write(buf)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("audit: spool events: %w", err)
	}
	for ns := time.Now().UnixNano(); ; ns++ {
		name := fmt.Sprintf("%s.%020d.replay", spoolPath, ns)
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(tmp.Name(), name); err != nil {
				os.Remove(tmp.Name())
				return fmt.Errorf("audit: spool events: %w", err)
			}
			return syncDir(dir)
		}
	}
}
