package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"waygate/filter/lists"
)

// reverseStatus is the reverse proxy's state for the web UI.
type reverseStatus struct{ g *gateway }

func (r reverseStatus) ReverseStatus(context.Context) (any, error) {
	if r.g.rev.srv == nil {
		return map[string]any{"enabled": false, "routes": []any{}}, nil
	}
	return map[string]any{"enabled": true, "routes": r.g.rev.srv.Status().Routes}, nil
}

// categoryInfo is one category as the web UI lists it.
type categoryInfo struct {
	Name    string           `json:"name"`
	Sources []categorySource `json:"sources"`
}

// categorySource is one place a category's entries come from.
type categorySource struct {
	Kind    string    `json:"kind"` // inline, file, folder, remote
	Path    string    `json:"path,omitempty"`
	URL     string    `json:"url,omitempty"`
	Entries int       `json:"entries,omitempty"` // inline entries
	Fetched time.Time `json:"fetched,omitempty"` // remote: the copy on disk
	Error   string    `json:"error,omitempty"`
}

// categoryLister lists the running policy's categories with their sources
// and the policy's list statistics.
type categoryLister struct{ g *gateway }

func (c categoryLister) Categories(context.Context) (any, error) {
	c.g.mu.Lock()
	cfg := c.g.cfg
	c.g.mu.Unlock()
	e := c.g.engine.Load()
	if e == nil {
		return nil, errors.New("no policy loaded")
	}
	byName := map[string]*categoryInfo{}
	var order []string
	get := func(name string) *categoryInfo {
		if ci := byName[name]; ci != nil {
			return ci
		}
		ci := &categoryInfo{Name: name, Sources: []categorySource{}}
		byName[name] = ci
		order = append(order, name)
		return ci
	}
	remote := cachedCopies(cfg)
	for _, cat := range cfg.Categories {
		ci := get(cat.Name)
		if n := len(cat.Domains) + len(cat.URLs); n > 0 {
			ci.Sources = append(ci.Sources, categorySource{Kind: "inline", Entries: n})
		}
		for _, f := range cat.Files {
			ci.Sources = append(ci.Sources, categorySource{Kind: "file", Path: f.Path})
		}
		for _, r := range cat.Remote {
			src := categorySource{Kind: "remote", URL: r.URL}
			if path, ok := remote(r.URL); ok {
				src.Fetched = modTime(path)
			} else {
				src.Error = "no copy downloaded yet"
			}
			ci.Sources = append(ci.Sources, src)
		}
	}
	names := e.Categories()
	for _, d := range cfg.CategoryDirs {
		for _, name := range names {
			if _, ok := byName[name]; ok {
				continue
			}
			if d.Path != "" && dirHasCategory(baseDir(c.g.path), d.Path, name) {
				get(name).Sources = append(get(name).Sources, categorySource{Kind: "folder", Path: filepath.Join(d.Path, name)})
			}
		}
	}
	out := make([]categoryInfo, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	st := e.Stats()
	problems := st.Problems
	if problems == nil {
		problems = []lists.Problem{}
	}
	return map[string]any{
		"policy": e.Version(), "categories": out,
		"domains": st.Domains, "entries": st.Entries, "malformed": st.Malformed, "problems": problems,
	}, nil
}

// modTime is when the file at path was last written; zero if unknown.
func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime().UTC()
}

// dirHasCategory reports whether the squidGuard folder dir (relative to
// base) has a subfolder name.
func dirHasCategory(base, dir, name string) bool {
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(base, dir)
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	return err == nil && fi.IsDir()
}
