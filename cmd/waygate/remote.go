package main

import (
	"context"
	"net/http"
	"path/filepath"
	"time"

	"waygate/cmd/waygate/internal/config"
	"waygate/filter/lists"
	"waygate/proxy/upstream"
)

// Remote lists are downloaded by a lists.Fetcher whose HTTP client dials
// through the gateway's guarded dialer, so a list URL cannot reach what a
// proxied request could not. The copies live in data_dir/lists.

// defaultRefresh is how often a remote list is fetched when the config
// says nothing.
const defaultRefresh = 24 * time.Hour

// listsDir is where remote list copies are kept.
func listsDir(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "lists")
}

// cachedCopies returns the local copies of remote lists that exist
// already; it downloads nothing.
func cachedCopies(cfg *config.Config) remoteCopy {
	f := &lists.Fetcher{Dir: listsDir(cfg)}
	return func(url string) (string, bool) {
		p, _, ok := f.Cached(url)
		return p, ok
	}
}

// remoteLists lists every remote list of cfg with its refresh interval.
func remoteLists(cfg *config.Config) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, c := range cfg.Categories {
		for _, r := range c.Remote {
			d := r.Refresh
			if d <= 0 {
				d = defaultRefresh
			}
			if old, ok := out[r.URL]; !ok || d < old {
				out[r.URL] = d
			}
		}
	}
	return out
}

// fetcher returns a fetcher for cfg's data_dir whose downloads dial with d.
func fetcher(cfg *config.Config, d *upstream.Dialer) *lists.Fetcher {
	return &lists.Fetcher{Client: fetchClient(d), Dir: listsDir(cfg)}
}

// fetchClient makes the HTTP client of list downloads: every dial goes
// through d, the guarded dialer.
func fetchClient(d *upstream.Dialer) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil, // never from the environment
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}
}

// fetchMissing downloads the remote lists of cfg that have no copy yet.
// Failures are logged; building the policy then reports the missing copy.
func (g *gateway) fetchMissing(cfg *config.Config, d *upstream.Dialer) {
	f := fetcher(cfg, d)
	for url := range remoteLists(cfg) {
		if _, _, ok := f.Cached(url); ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, _, err := f.Fetch(ctx, url, 0)
		cancel()
		if err != nil {
			g.log.Error("remote list download failed", "url", redactURL(url), "error", err)
		} else {
			g.log.Info("remote list downloaded", "url", redactURL(url))
		}
	}
}

// refreshLists fetches the remote lists that are due, every minute, until
// done is closed, and asks for a reload when one changed. A failed refresh
// keeps the last good copy.
func (g *gateway) refreshLists(done <-chan struct{}, reload chan<- string) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		g.mu.Lock()
		cfg, d := g.cfg, g.dialer
		g.mu.Unlock()
		f := fetcher(cfg, d)
		changed := false
		for url, every := range remoteLists(cfg) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			_, ch, err := f.Fetch(ctx, url, every)
			cancel()
			if err != nil {
				g.log.Warn("remote list refresh failed; keeping the last good copy", "url", redactURL(url), "error", err)
			}
			changed = changed || ch
		}
		if changed {
			select {
			case reload <- "remote list changed":
			default:
			}
		}
	}
}
