package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"waygate/filter"
)

// Decoders for the policy sections: categories, category_dirs, groups,
// rules. Values are checked in validatePolicy; these only decode.

// element decodes one list element that must be a mapping.
func (d *decoder) element(p string, e *yaml.Node, what string, fields []field) bool {
	if isNull(resolve(e)) {
		d.errorf(resolve(e), p, "expected %s, got null", what)
		return false
	}
	d.mapping(p, e, fields)
	return true
}

func (d *decoder) categories(dst *[]Category) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (Category, bool) {
			var c Category
			ok := d.element(p, e, "a category (name and domains, urls or files)", []field{
				{"name", d.str(&c.Name)},
				{"domains", d.strings(&c.Domains)},
				{"urls", d.strings(&c.URLs)},
				{"files", d.listFiles(&c.Files)},
				{"remote", d.remoteLists(&c.Remote)},
			})
			return c, ok
		})
	}
}

// listFiles decodes files written as paths or as {path, format} mappings.
func (d *decoder) listFiles(dst *[]ListFile) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (ListFile, bool) {
			var f ListFile
			if r := resolve(e); r.Kind == yaml.ScalarNode && !isNull(r) {
				s, ok := d.stringValue(p, e, false)
				f.Path = s
				return f, ok
			}
			ok := d.element(p, e, "a file path or {path, format}", []field{
				{"path", d.str(&f.Path)},
				{"format", d.str(&f.Format)},
			})
			return f, ok
		})
	}
}

func (d *decoder) remoteLists(dst *[]RemoteList) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (RemoteList, bool) {
			var r RemoteList
			ok := d.element(p, e, "a remote list (url, format, refresh)", []field{
				{"url", d.str(&r.URL)},
				{"format", d.str(&r.Format)},
				{"refresh", d.duration(&r.Refresh)},
			})
			return r, ok
		})
	}
}

func (d *decoder) categoryDirs(dst *[]CategoryDir) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (CategoryDir, bool) {
			var c CategoryDir
			if r := resolve(e); r.Kind == yaml.ScalarNode && !isNull(r) {
				s, ok := d.stringValue(p, e, false)
				c.Path = s
				return c, ok
			}
			ok := d.element(p, e, "a folder path or {path, only, expressions}", []field{
				{"path", d.str(&c.Path)},
				{"only", d.strings(&c.Only)},
				{"expressions", d.boolean(&c.Expressions)},
			})
			return c, ok
		})
	}
}

func (d *decoder) groups(dst *[]Group) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (Group, bool) {
			var g Group
			ok := d.element(p, e, "a group (name, clients, users)", []field{
				{"name", d.str(&g.Name)},
				{"clients", d.prefixes(&g.Clients)},
				{"users", d.strings(&g.Users)},
			})
			return g, ok
		})
	}
}

func (d *decoder) rules(dst *[]Rule) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (Rule, bool) {
			var r Rule
			ok := d.element(p, e, "a rule (name, conditions, action)", []field{
				{"name", d.str(&r.Name)},
				{"groups", d.strings(&r.Groups)},
				{"users", d.strings(&r.Users)},
				{"clients", d.prefixes(&r.Clients)},
				{"categories", d.strings(&r.Categories)},
				{"domains", d.strings(&r.Domains)},
				{"urls", d.strings(&r.URLs)},
				{"methods", d.strings(&r.Methods)},
				{"ports", d.ports(&r.Ports)},
				{"schedule", d.windows(&r.Schedule)},
				{"action", d.str(&r.Action)},
				{"warn_for", d.duration(&r.WarnFor)},
			})
			return r, ok
		})
	}
}

func (d *decoder) windows(dst *[]Window) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (Window, bool) {
			var w Window
			ok := d.element(p, e, "a time window (days, from, to, time_zone)", []field{
				{"days", d.strings(&w.Days)},
				{"from", d.str(&w.From)},
				{"to", d.str(&w.To)},
				{"time_zone", d.str(&w.TimeZone)},
			})
			return w, ok
		})
	}
}

// policyProblems checks the policy sections. Names that refer to
// categories of category_dirs can only be checked when the folders are
// read, by the policy compiler.
func (c *Config) policyProblems(k *checker) {
	actions := map[string]bool{"allow": true, "block": true, "warn": true, "monitor": true}
	if a := c.Filter.DefaultAction; a != "" && !actions[a] {
		k.add("filter.default_action", "%q is not an action (allow, block, warn, monitor)", a)
	}
	cats := map[string]bool{}
	for i, cat := range c.Categories {
		p := "categories[" + strconv.Itoa(i) + "]"
		switch {
		case cat.Name == "":
			k.add(p+".name", "a category needs a name")
		case cats[cat.Name]:
			k.add(p+".name", "category %q is defined twice", cat.Name)
		}
		cats[cat.Name] = true
		for j, f := range cat.Files {
			fp := p + ".files[" + strconv.Itoa(j) + "]"
			if f.Path == "" {
				k.add(fp, "a list file needs a path")
			}
			checkFormat(k, fp+".format", f.Format)
		}
		for j, r := range cat.Remote {
			rp := p + ".remote[" + strconv.Itoa(j) + "]"
			if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				k.add(rp+".url", "%q is not an http:// or https:// URL", redact(r.URL))
			}
			checkFormat(k, rp+".format", r.Format)
			if r.Refresh != 0 && r.Refresh < time.Minute {
				k.add(rp+".refresh", "%v is too often (at least 1m)", r.Refresh)
			}
		}
	}
	for i, dir := range c.CategoryDirs {
		if dir.Path == "" {
			k.add("category_dirs["+strconv.Itoa(i)+"].path", "a category folder needs a path")
		}
	}
	groups := map[string]bool{}
	for i, g := range c.Groups {
		p := "groups[" + strconv.Itoa(i) + "]"
		switch {
		case g.Name == "":
			k.add(p+".name", "a group needs a name")
		case groups[g.Name]:
			k.add(p+".name", "group %q is defined twice", g.Name)
		}
		groups[g.Name] = true
	}
	rules := map[string]bool{}
	for i, r := range c.Rules {
		p := "rules[" + strconv.Itoa(i) + "]"
		switch {
		case r.Name == "":
			k.add(p+".name", "a rule needs a name")
		case rules[r.Name]:
			k.add(p+".name", "rule %q is defined twice", r.Name)
		}
		rules[r.Name] = true
		if !actions[r.Action] {
			if r.Action == "" {
				k.add(p+".action", "a rule needs an action (allow, block, warn, monitor)")
			} else {
				k.add(p+".action", "%q is not an action (allow, block, warn, monitor)", r.Action)
			}
		}
		for j, g := range r.Groups {
			if !groups[g] {
				k.add(p+".groups["+strconv.Itoa(j)+"]", "unknown group %q", g)
			}
		}
		for j, m := range r.Methods {
			if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t/") {
				k.add(p+".methods["+strconv.Itoa(j)+"]", "%q is not an HTTP method (upper case, e.g. GET, CONNECT)", m)
			}
		}
		if r.WarnFor < 0 {
			k.add(p+".warn_for", "must not be negative")
		}
		for j, w := range r.Schedule {
			wp := p + ".schedule[" + strconv.Itoa(j) + "]"
			if _, err := w.Compile(); err != nil {
				k.add(wp, "%v", err)
			}
		}
	}
}

// Compile turns the window into a filter.Schedule, checking days, times and
// the time zone.
func (w Window) Compile() (filter.Schedule, error) {
	var s filter.Schedule
	for _, d := range w.Days {
		day, err := filter.ParseDay(d)
		if err != nil {
			return s, err
		}
		s.Days = append(s.Days, day)
	}
	if (w.From == "") != (w.To == "") {
		return s, errors.New("give both from and to, or neither (the whole day)")
	}
	if w.From != "" {
		var err error
		if s.From, err = filter.ParseClock(w.From); err != nil {
			return s, fmt.Errorf("from: %w", err)
		}
		if s.To, err = filter.ParseClock(w.To); err != nil {
			return s, fmt.Errorf("to: %w", err)
		}
		if s.From == s.To {
			return s, fmt.Errorf("from and to are both %s: an empty window", w.From)
		}
	}
	s.Location = time.UTC
	if w.TimeZone != "" {
		loc, err := time.LoadLocation(w.TimeZone)
		if err != nil {
			return s, fmt.Errorf("time_zone %q is not a known IANA time zone", w.TimeZone)
		}
		s.Location = loc
	}
	return s, nil
}

// auditProblems checks the audit section.
func (c *Config) auditProblems(k *checker) {
	a := &c.Audit
	if a.QueueSize < 0 {
		k.add("audit.queue_size", "must not be negative")
	}
	if a.MaxAge < 0 {
		k.add("audit.max_age", "must not be negative")
	} else if a.MaxAge > 0 && a.MaxAge < time.Hour {
		k.add("audit.max_age", "%v is shorter than an hour; that is almost certainly a mistake", a.MaxAge)
	}
	if a.MaxBytes < 0 {
		k.add("audit.max_bytes", "must not be negative")
	} else if a.MaxBytes > 0 && a.MaxBytes < 1<<20 {
		k.add("audit.max_bytes", "%d is less than 1 MiB", a.MaxBytes)
	}
	switch a.Privacy.Query {
	case "keep", "drop", "hash":
	default:
		k.add("audit.privacy.query", "%q is not a query mode (keep, drop, hash)", a.Privacy.Query)
	}
}

func checkFormat(k *checker, path, format string) {
	switch format {
	case "", "domains", "urls", "expressions", "hosts", "adblock":
	default:
		k.add(path, "%q is not a list format (domains, urls, expressions, hosts, adblock)", format)
	}
}

// redact hides credentials in a URL for messages.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return abbrev(s)
}
