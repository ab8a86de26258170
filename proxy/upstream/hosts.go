package upstream

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// defaultHostsRecheck is how often the hosts file is checked for changes.
const defaultHostsRecheck = 5 * time.Second

// hostsFile is a hosts(5) file that is re-read when its modification time or
// size changes. Lookups are lock-free; the file is stat'ed at most once per
// interval (per the injected clock), by whichever lookup comes first.
type hostsFile struct {
	path     string
	interval time.Duration

	table     atomic.Pointer[hostsTable]
	nextCheck atomic.Pointer[time.Time]
	reloadMu  sync.Mutex // one reload at a time; others keep the old table
}

// hostsTable is one parsed version of the file. It is never modified after
// it is published.
type hostsTable struct {
	byName  map[string][]netip.Addr
	exists  bool
	modTime time.Time
	size    int64
}

func newHostsFile(path string, interval time.Duration, now time.Time) *hostsFile {
	h := &hostsFile{path: path, interval: interval}
	h.table.Store(&hostsTable{})
	h.reloadMu.Lock()
	h.reloadLocked(now)
	h.reloadMu.Unlock()
	return h
}

// lookup returns the addresses of name (lowercase, no trailing dot) in file
// order. The slice is shared: callers must not modify it.
func (h *hostsFile) lookup(name string, now time.Time) ([]netip.Addr, bool) {
	if !now.Before(*h.nextCheck.Load()) {
		h.maybeReload(now)
	}
	addrs, ok := h.table.Load().byName[name]
	return addrs, ok
}

func (h *hostsFile) maybeReload(now time.Time) {
	if !h.reloadMu.TryLock() {
		return // another lookup is reloading; use the current table
	}
	defer h.reloadMu.Unlock()
	if now.Before(*h.nextCheck.Load()) {
		return
	}
	h.reloadLocked(now)
}

// reloadLocked re-reads the file if it changed. A file that disappears
// empties the table; other errors keep the last table read.
func (h *hostsFile) reloadLocked(now time.Time) {
	next := now.Add(h.interval)
	h.nextCheck.Store(&next)

	cur := h.table.Load()
	fi, err := os.Stat(h.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && cur.exists {
			h.table.Store(&hostsTable{})
		}
		return
	}
	if cur.exists && fi.ModTime().Equal(cur.modTime) && fi.Size() == cur.size {
		return
	}
	// If the file changes between Stat and ReadFile, the next check sees a
	// newer modification time and reads it again.
	data, err := os.ReadFile(h.path)
	if err != nil {
		return
	}
	h.table.Store(&hostsTable{
		byName:  parseHosts(data),
		exists:  true,
		modTime: fi.ModTime(),
		size:    fi.Size(),
	})
}

// parseHosts parses hosts(5) text: "address name [aliases...]" per line,
// '#' starting a comment. Names are matched case-insensitively and a
// trailing dot is ignored; IPv4-mapped IPv6 addresses are unmapped. Lines
// whose first field is not an IP address are skipped. A name's addresses
// keep file order, without duplicates.
func parseHosts(data []byte) map[string][]netip.Addr {
	byName := make(map[string][]netip.Addr)
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(string(line))
		if len(fields) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		for _, name := range fields[1:] {
			name = strings.ToLower(strings.TrimSuffix(name, "."))
			if name == "" {
				continue
			}
			if addrs := byName[name]; !resolverContains(addrs, ip) {
				byName[name] = append(addrs, ip)
			}
		}
	}
	for name, addrs := range byName {
		// Clip so that a caller's append cannot write into shared memory.
		byName[name] = slices.Clip(addrs)
	}
	return byName
}
