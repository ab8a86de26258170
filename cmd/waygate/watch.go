package main

import (
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher reports changes to a set of files: the config file and the list
// files of the running policy. It watches their folders, since editors and
// config management replace files by renaming, and coalesces bursts of
// events into one.
type watcher struct {
	events chan struct{}
	w      *fsnotify.Watcher
	log    *slog.Logger
	done   chan struct{}

	mu    sync.Mutex
	files map[string]bool
	dirs  map[string]bool
}

// settle is how long the watcher waits for a burst of events to end.
const settle = 200 * time.Millisecond

func newWatcher(log *slog.Logger) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{
		events: make(chan struct{}, 1), w: fw, log: log, done: make(chan struct{}),
		files: map[string]bool{}, dirs: map[string]bool{},
	}
	go w.loop()
	return w, nil
}

// set replaces the watched files.
func (w *watcher) set(paths []string) {
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		files[abs] = true
		dirs[filepath.Dir(abs)] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for d := range w.dirs {
		if !dirs[d] {
			w.w.Remove(d)
		}
	}
	for d := range dirs {
		if !w.dirs[d] {
			if err := w.w.Add(d); err != nil {
				w.log.Warn("cannot watch folder; reload with SIGHUP after changing files in it", "dir", d, "error", err)
			}
		}
	}
	w.files, w.dirs = files, dirs
}

func (w *watcher) watched(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.files[filepath.Clean(name)]
}

func (w *watcher) loop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 && w.watched(ev.Name) {
				timer.Reset(settle)
			}
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			w.log.Warn("file watcher", "error", err)
		case <-timer.C:
			select {
			case w.events <- struct{}{}:
			default:
			}
		case <-w.done:
			return
		}
	}
}

func (w *watcher) close() {
	close(w.done)
	w.w.Close()
}
