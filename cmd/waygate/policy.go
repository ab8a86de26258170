package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"waygate/cmd/waygate/internal/config"
	"waygate/filter"
	"waygate/filter/lists"
)

// remoteCopy returns the local copy of a remote list, or ok false when
// there is none.
type remoteCopy func(url string) (path string, ok bool)

// buildPolicy turns the policy sections of cfg into a filter.Policy:
// category folders are read, relative paths are taken from baseDir (the
// config file's folder), remote lists replaced by their local copies,
// schedules compiled. A remote list without a copy is an error unless
// skipMissing. The policy version is a hash of the policy sections and of
// the size and time of every list file, so it changes when a list does.
func buildPolicy(cfg *config.Config, baseDir string, remote remoteCopy, skipMissing bool) (*filter.Policy, error) {
	p := &filter.Policy{}
	abs := func(path string) string {
		if path == "" || filepath.IsAbs(path) {
			return path
		}
		return filepath.Join(baseDir, path)
	}
	if cfg.Filter.DefaultAction != "" {
		a, ok := filter.ParseAction(cfg.Filter.DefaultAction)
		if !ok {
			return nil, fmt.Errorf("filter.default_action: %q is not an action", cfg.Filter.DefaultAction)
		}
		p.Default = a
	}
	h := sha256.New()
	json.NewEncoder(h).Encode([]any{cfg.Categories, cfg.CategoryDirs, cfg.Groups, cfg.Rules, cfg.Filter})
	stamp := func(path string) {
		if fi, err := os.Stat(path); err == nil {
			fmt.Fprintf(h, "%s %d %d\n", path, fi.Size(), fi.ModTime().UnixNano())
		}
	}

	for _, c := range cfg.Categories {
		fc := filter.Category{Name: c.Name, Domains: c.Domains, URLs: c.URLs}
		for _, f := range c.Files {
			path := abs(f.Path)
			stamp(path)
			fc.Lists = append(fc.Lists, filter.List{Path: path, Format: listFormat(f.Format, path)})
		}
		for _, r := range c.Remote {
			path, ok := remote(r.URL)
			if !ok {
				if skipMissing {
					continue
				}
				return nil, fmt.Errorf("category %q: remote list %s: no copy has been downloaded", c.Name, redactURL(r.URL))
			}
			stamp(path)
			format := r.Format
			if format == "" {
				format = "domains"
			}
			fc.Lists = append(fc.Lists, filter.List{Path: path, Source: redactURL(r.URL), Format: listFormat(format, path)})
		}
		p.Categories = append(p.Categories, fc)
	}
	for i, d := range cfg.CategoryDirs {
		cats, err := lists.ReadSquidGuardDir(abs(d.Path))
		if err != nil {
			return nil, fmt.Errorf("category_dirs[%d]: %w", i, err)
		}
		for _, name := range d.Only {
			if !slices.ContainsFunc(cats, func(c lists.Category) bool { return c.Name == name }) {
				return nil, fmt.Errorf("category_dirs[%d].only: no category %q in %s", i, name, d.Path)
			}
		}
		for _, c := range cats {
			if len(d.Only) > 0 && !slices.Contains(d.Only, c.Name) {
				continue
			}
			fc := filter.Category{Name: c.Name}
			for _, l := range []struct {
				path   string
				format lists.Format
				use    bool
			}{
				{c.Domains, lists.FormatDomains, true},
				{c.URLs, lists.FormatURLs, true},
				{c.Expressions, lists.FormatExpressions, d.Expressions},
			} {
				if l.path != "" && l.use {
					stamp(l.path)
					fc.Lists = append(fc.Lists, filter.List{Path: l.path, Format: l.format})
				}
			}
			p.Categories = append(p.Categories, fc)
		}
	}
	for _, g := range cfg.Groups {
		p.Groups = append(p.Groups, filter.Group{Name: g.Name, Clients: g.Clients, Users: g.Users})
	}
	for _, r := range cfg.Rules {
		a, ok := filter.ParseAction(r.Action)
		if !ok {
			return nil, fmt.Errorf("rule %q: %q is not an action", r.Name, r.Action)
		}
		fr := filter.Rule{
			Name: r.Name, Groups: r.Groups, Users: r.Users, Clients: r.Clients,
			Categories: r.Categories, Domains: r.Domains, URLs: r.URLs, Methods: r.Methods,
			Ports: r.Ports, Action: a, WarnFor: r.WarnFor,
		}
		for _, w := range r.Schedule {
			s, err := w.Compile()
			if err != nil {
				return nil, fmt.Errorf("rule %q: schedule: %w", r.Name, err)
			}
			fr.Schedules = append(fr.Schedules, s)
		}
		p.Rules = append(p.Rules, fr)
	}
	p.Version = hex.EncodeToString(h.Sum(nil))[:12]
	return p, nil
}

// listFormat maps a config format name, or a file name when the format is
// empty, to a list format.
func listFormat(name, path string) lists.Format {
	switch name {
	case "urls":
		return lists.FormatURLs
	case "expressions":
		return lists.FormatExpressions
	case "hosts":
		return lists.FormatHosts
	case "adblock":
		return lists.FormatAdblock
	case "domains":
		return lists.FormatDomains
	}
	base := strings.ToLower(filepath.Base(path))
	switch {
	case base == "urls":
		return lists.FormatURLs
	case base == "expressions":
		return lists.FormatExpressions
	case strings.Contains(base, "hosts"):
		return lists.FormatHosts
	}
	return lists.FormatDomains
}

// policyEngine builds the policy engine of cfg, or returns nil when the
// config has no policy (no rules, and everything allowed by default).
// remote gives the local copies of remote lists; with skipMissing, lists
// that have none are left out (for check and filter test, which do not
// download) instead of being an error.
func policyEngine(cfg *config.Config, configPath string, remote remoteCopy, skipMissing bool) (*filter.Engine, error) {
	if len(cfg.Rules) == 0 && (cfg.Filter.DefaultAction == "" || cfg.Filter.DefaultAction == "allow") {
		return nil, nil
	}
	p, err := buildPolicy(cfg, baseDir(configPath), remote, skipMissing)
	if err != nil {
		return nil, err
	}
	e, err := filter.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return e, nil
}

// baseDir is the folder relative paths in the config are taken from.
func baseDir(configPath string) string {
	if configPath == "" {
		return "."
	}
	return filepath.Dir(configPath)
}

// pageTemplate loads an admin's replacement for a policy page; "" means
// the built-in one (nil).
func pageTemplate(path, configPath string) (*template.Template, error) {
	if path == "" {
		return nil, nil
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir(configPath), path)
	}
	return template.ParseFiles(path)
}

// redactURL hides credentials in a URL for logs and decisions.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}
