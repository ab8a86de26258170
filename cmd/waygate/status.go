package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"waygate/cmd/waygate/internal/config"
	"waygate/filter"
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

// categoriesAnswer is GET /api/v1/categories: the categories of the
// running policy with their sources, entry counts, last refresh and
// errors.
type categoriesAnswer struct {
	// Policy is the running policy's version; empty when Active is false.
	Policy string `json:"policy"`
	// Active is false when no policy is in force (no rules and default
	// allow): the lists are then not loaded, Categories lists only the
	// categories section of the config, and no count is known.
	Active bool `json:"active"`
	// Domains counts the distinct domains the policy holds (a domain in
	// two categories counts once; rules' own domains included).
	Domains int `json:"domains"`
	// Entries counts the entries read, of every kind, from every list and
	// inline (rules' own entries included; duplicates counted).
	Entries int `json:"entries"`
	// Malformed counts the list lines skipped as malformed.
	Malformed int `json:"malformed"`
	// Problems are the first malformed lines of the whole policy.
	Problems   []listProblem  `json:"problems"`
	Categories []categoryInfo `json:"categories"`
}

// categoryInfo is one category as the web UI lists it.
type categoryInfo struct {
	Name string `json:"name"`
	// Origin is "config" for a category of the config's categories
	// section (its inline domains and urls are editable), "folder" for
	// one read from a squidGuard folder of category_dirs.
	Origin string `json:"origin"`
	// Dir is the squidGuard folder of a "folder" category, as configured
	// (category_dirs[].path joined with the name); empty otherwise.
	Dir string `json:"dir,omitempty"`
	// The counts of filter.CategoryStats; all zero when the policy is not
	// active.
	Entries     int `json:"entries"`
	Domains     int `json:"domains"`
	URLs        int `json:"urls"`
	IPs         int `json:"ips"`
	Networks    int `json:"networks"`
	Expressions int `json:"expressions"`
	Malformed   int `json:"malformed"`
	// Sources are where the entries come from; never nil.
	Sources []categorySource `json:"sources"`
	// Problems are the malformed lines of the sources (the first ones of
	// each); never nil.
	Problems []listProblem `json:"problems"`
}

// categorySource is one place a category's entries come from.
type categorySource struct {
	// Kind is inline, file, remote or folder.
	Kind string `json:"kind"`
	// Format is how it is read: domains, urls, expressions, hosts or
	// adblock.
	Format string `json:"format,omitempty"`
	// Path is the list file: as configured for a file, the file read
	// (relative to the config file's folder when inside it) for a folder.
	Path string `json:"path,omitempty"`
	// URL is a remote list's address, credentials hidden.
	URL string `json:"url,omitempty"`
	// Entries counts the usable entries the source gave (an entry another
	// source of the category also gave counts in both); null when the
	// policy is not active.
	Entries *int `json:"entries"`
	// Malformed counts the lines skipped as malformed.
	Malformed int `json:"malformed"`
	// Fetched is when a remote list's copy on disk was downloaded; absent
	// when there is no copy.
	Fetched *time.Time `json:"fetched,omitempty"`
	// Refresh is how often a remote list is fetched again ("24h0m0s").
	Refresh string `json:"refresh,omitempty"`
	// Error says what is wrong with the source; empty when nothing is.
	Error string `json:"error,omitempty"`
}

// listProblem is a malformed line.
type listProblem struct {
	// File is the list file (relative to the config file's folder when
	// inside it), or "inline".
	File string `json:"file"`
	// Line is the 1-based line in File; for inline entries, the position
	// of the entry in the category's domains or urls.
	Line   int    `json:"line"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
	// Path names an inline entry in the policy document, as in
	// "categories[1].domains[3]"; empty for list files.
	Path string `json:"path,omitempty"`
}

// categoryLister lists the running policy's categories with their
// sources, entry counts (filter.Engine.CategoryStats, computed when the
// policy was compiled), remote list refreshes and malformed lines.
type categoryLister struct{ g *gateway }

// Categories lists the categories of the running config and policy; it
// never fails (without a policy in force the answer says so: Active false).
func (c categoryLister) Categories(context.Context) (any, error) {
	c.g.mu.Lock()
	cfg := c.g.cfg
	c.g.mu.Unlock()
	return listCategories(cfg, baseDir(c.g.path), c.g.engine.Load()), nil
}

// listCategories describes the categories of cfg as e, the engine compiled
// from it, holds them; e is nil when no policy is in force. base is the
// folder relative paths of cfg are taken from.
func listCategories(cfg *config.Config, base string, e *filter.Engine) categoriesAnswer {
	out := categoriesAnswer{Active: e != nil, Policy: e.Version(), Problems: []listProblem{}, Categories: []categoryInfo{}}
	st := e.Stats()
	out.Domains, out.Entries, out.Malformed = st.Domains, st.Entries, st.Malformed
	for _, p := range st.Problems {
		out.Problems = append(out.Problems, problemOf(p, base, ""))
	}
	stats := map[string]*filter.CategoryStats{}
	all := e.CategoryStats()
	for i := range all {
		stats[all[i].Name] = &all[i]
	}
	abs := func(path string) string {
		if path == "" || filepath.IsAbs(path) {
			return path
		}
		return filepath.Join(base, path)
	}
	fetcher := &lists.Fetcher{Dir: listsDir(cfg)}
	inConfig := map[string]bool{}
	for i, cat := range cfg.Categories {
		inConfig[cat.Name] = true
		ci := categoryInfo{Name: cat.Name, Origin: "config", Sources: []categorySource{}, Problems: []listProblem{}}
		cs := stats[cat.Name]
		m := newSourceMatcher(cs, e != nil)
		ci.counts(cs)
		for _, in := range []struct {
			field  string
			values []string
			format lists.Format
		}{{"domains", cat.Domains, lists.FormatDomains}, {"urls", cat.URLs, lists.FormatURLs}} {
			if len(in.values) == 0 {
				continue
			}
			src, ss := m.take(categorySource{Kind: "inline", Format: in.format.String()}, func(s *filter.SourceStats) bool {
				return s.Path == "" && s.Format == in.format
			})
			ci.Sources = append(ci.Sources, src)
			if ss != nil {
				for _, p := range ss.Problems {
					ci.Problems = append(ci.Problems, problemOf(p, base, fmt.Sprintf("categories[%d].%s[%d]", i, in.field, p.Line-1)))
				}
			}
		}
		for _, f := range cat.Files {
			path := abs(f.Path)
			src, ss := m.take(categorySource{Kind: "file", Path: f.Path, Format: listFormat(f.Format, path).String()},
				func(s *filter.SourceStats) bool { return s.Path == path })
			ci.Sources = append(ci.Sources, src)
			ci.addProblems(ss, base)
		}
		for _, r := range cat.Remote {
			url := redactURL(r.URL)
			format := r.Format
			if format == "" {
				format = "domains"
			}
			every := r.Refresh
			if every <= 0 {
				every = defaultRefresh
			}
			src, ss := m.take(categorySource{Kind: "remote", URL: url, Format: format, Refresh: every.String()},
				func(s *filter.SourceStats) bool { return s.Path != "" && s.Source == url })
			if _, fetched, ok := fetcher.Cached(r.URL); ok {
				src.Fetched = &fetched
			} else {
				src.Error = "no copy downloaded yet"
			}
			ci.Sources = append(ci.Sources, src)
			ci.addProblems(ss, base)
		}
		out.Categories = append(out.Categories, ci)
	}
	// The categories of squidGuard folders: only the engine knows which.
	for i := range all {
		cs := &all[i]
		if inConfig[cs.Name] {
			continue
		}
		ci := categoryInfo{Name: cs.Name, Origin: "folder", Sources: []categorySource{}, Problems: []listProblem{}}
		for _, d := range cfg.CategoryDirs {
			if d.Path != "" && dirHasCategory(base, d.Path, cs.Name) {
				ci.Dir = filepath.Join(d.Path, cs.Name)
				break
			}
		}
		ci.counts(cs)
		for j := range cs.Sources {
			ss := &cs.Sources[j]
			n := ss.Entries
			ci.Sources = append(ci.Sources, categorySource{Kind: "folder", Path: relPath(base, ss.Path), Format: ss.Format.String(),
				Entries: &n, Malformed: ss.Malformed})
			ci.addProblems(ss, base)
		}
		out.Categories = append(out.Categories, ci)
	}
	return out
}

// counts copies the counts of cs, which is nil when the category is not
// loaded.
func (ci *categoryInfo) counts(cs *filter.CategoryStats) {
	if cs == nil {
		return
	}
	ci.Entries, ci.Domains, ci.URLs, ci.IPs = cs.Entries, cs.Domains, cs.URLs, cs.IPs
	ci.Networks, ci.Expressions, ci.Malformed = cs.Networks, cs.Expressions, cs.Malformed
}

// addProblems adds the malformed lines of the list ss (nil: none).
func (ci *categoryInfo) addProblems(ss *filter.SourceStats, base string) {
	if ss == nil {
		return
	}
	for _, p := range ss.Problems {
		ci.Problems = append(ci.Problems, problemOf(p, base, ""))
	}
}

// sourceMatcher pairs the sources of a category in the config with the
// engine's counts of them, each engine source used once, in order.
type sourceMatcher struct {
	cs     *filter.CategoryStats // nil: the category is not loaded
	used   []bool
	active bool
}

// newSourceMatcher matches against cs (nil: the category is not loaded);
// active says whether a policy is in force.
func newSourceMatcher(cs *filter.CategoryStats, active bool) *sourceMatcher {
	m := &sourceMatcher{cs: cs, active: active}
	if cs != nil {
		m.used = make([]bool, len(cs.Sources))
	}
	return m
}

// take fills in src's counts from the first unused engine source that
// match accepts, and returns that source (nil when none did). With an
// active policy a source the engine has no counts for gave nothing (the
// engine leaves those out); without one, the counts are unknown (null).
func (m *sourceMatcher) take(src categorySource, match func(*filter.SourceStats) bool) (categorySource, *filter.SourceStats) {
	if m.active {
		src.Entries = new(int)
	}
	if m.cs == nil {
		return src, nil
	}
	for i := range m.cs.Sources {
		if ss := &m.cs.Sources[i]; !m.used[i] && match(ss) {
			m.used[i] = true
			n := ss.Entries
			src.Entries, src.Malformed = &n, ss.Malformed
			return src, ss
		}
	}
	return src, nil
}

// problemOf is p as the web UI shows it; path names an inline entry.
func problemOf(p lists.Problem, base, path string) listProblem {
	file := p.Source
	if file != "inline" {
		file = relPath(base, file)
	}
	return listProblem{File: file, Line: p.Line, Text: p.Text, Reason: p.Reason, Path: path}
}

// relPath is path relative to base when it is inside base, else path.
func relPath(base, path string) string {
	if !filepath.IsAbs(path) {
		return path
	}
	b, err := filepath.Abs(base)
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(b, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
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
