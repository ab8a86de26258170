package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"waygate/filter/domainset"
	"waygate/filter/lists"
)

// Engine decides requests against one compiled Policy. It is immutable:
// Decide does no I/O, takes no lock and, on the common path, does not
// allocate. It is safe for concurrent use. A nil *Engine allows everything.
type Engine struct {
	version string
	def     Action

	catNames []string   // by category id
	visible  []bool     // false for the categories made from a rule's own domains/urls
	setNames [][]string // visible category names of each domainset set, shared
	dom      *domainset.Set
	urls     map[string][]urlEntry // by host, longest prefix first
	ips      map[netip.Addr]ipEntry
	nets     []netEntry
	exprs    []exprEntry
	sources  []string
	// catSources lists the sources that added domains to each category.
	// The domain index keeps one source per domain (its first); a match
	// through another category names that category's own list instead.
	catSources [][]uint16
	// catStats counts the entries of each category: by category id while
	// compiling, the visible categories only afterwards (see counts.go).
	catStats []CategoryStats

	groups []group
	rules  []rule
	stats  Stats
	files  []string
}

// Files returns the list files the engine was compiled from, so that a
// caller can watch them. Nil for a nil engine.
func (e *Engine) Files() []string {
	if e == nil {
		return nil
	}
	return e.files
}

type urlEntry struct {
	host, prefix string
	cat, source  uint16
}

type ipEntry struct {
	entry  string
	cats   []uint16
	source uint16
}

type netEntry struct {
	prefix netip.Prefix
	entry  string
	cat    uint16
	source uint16
}

type exprEntry struct {
	re     *regexp.Regexp
	cat    uint16
	source uint16
}

type group struct {
	name    string
	clients []netip.Prefix
	users   map[string]struct{}
}

type rule struct {
	name      string
	who       bool
	groups    []int
	users     map[string]struct{}
	clients   []netip.Prefix
	catIDs    []uint16 // the categories the rule names, its own included
	cats      []bool   // by category id; nil means no category condition
	methods   []string
	ports     []uint16
	schedules []Schedule
	action    Action
	warnFor   time.Duration
}

// Stats describe what Compile loaded.
type Stats struct {
	// Domains is the number of distinct domain entries.
	Domains int
	// Entries counts entries of every kind over all lists and inline.
	Entries int
	// Malformed counts list lines that were skipped as malformed.
	Malformed int
	// Problems are the first malformed lines, with file and line.
	Problems []lists.Problem
	// Bytes approximates the memory the domain index holds.
	Bytes int
}

// Stats returns what the engine was built from.
func (e *Engine) Stats() Stats {
	if e == nil {
		return Stats{}
	}
	return e.stats
}

// Version returns the policy version the engine was compiled from.
func (e *Engine) Version() string {
	if e == nil {
		return ""
	}
	return e.version
}

// Categories returns the names of the policy's categories.
func (e *Engine) Categories() []string {
	if e == nil {
		return nil
	}
	var out []string
	for i, n := range e.catNames {
		if e.visible[i] {
			out = append(out, n)
		}
	}
	return out
}

const maxProblems = 20

// Compile loads every list of p and builds an Engine. Malformed list lines
// are skipped and counted in the engine's Stats; a list that cannot be read,
// an unknown name, a bad expression or a duplicate name is an error, and no
// engine is returned.
func Compile(p *Policy) (*Engine, error) {
	e := &Engine{
		version: p.Version,
		def:     p.Default,
		urls:    map[string][]urlEntry{},
		ips:     map[netip.Addr]ipEntry{},
	}
	catID := map[string]uint16{}
	addCat := func(name string, visible bool) (uint16, error) {
		if len(e.catNames) >= 1<<16-1 {
			return 0, errors.New("too many categories")
		}
		id := uint16(len(e.catNames))
		e.catNames = append(e.catNames, name)
		e.visible = append(e.visible, visible)
		e.catStats = append(e.catStats, CategoryStats{Name: name})
		return id, nil
	}
	srcID := map[string]uint16{}
	source := func(name string) uint16 {
		if id, ok := srcID[name]; ok {
			return id
		}
		id := uint16(len(e.sources))
		if len(e.sources) >= 1<<16-1 {
			id = uint16(len(e.sources) - 1) // share the last name rather than fail
		} else {
			e.sources = append(e.sources, name)
		}
		srcID[name] = id
		return id
	}
	b := domainset.NewBuilder(1 << 16)
	// used counts the entries of the source being read that the engine
	// holds; distinct domains per category are counted after the build.
	used := 0
	add := func(ent lists.Entry, cat, src uint16) {
		e.stats.Entries++
		cs := &e.catStats[cat]
		switch ent.Kind {
		case lists.KindDomain:
			if b.Add(ent.Value, cat, src) {
				used++
				for int(cat) >= len(e.catSources) {
					e.catSources = append(e.catSources, nil)
				}
				if cs := e.catSources[cat]; len(cs) == 0 || cs[len(cs)-1] != src {
					if !slices.Contains(cs, src) {
						e.catSources[cat] = append(cs, src)
					}
				}
			}
		case lists.KindURL:
			host, path, _ := strings.Cut(ent.Value, "/")
			u := urlEntry{host: host, prefix: NormalizePath("/" + path), cat: cat, source: src}
			e.urls[host] = append(e.urls[host], u)
			cs.URLs++
			used++
		case lists.KindIP:
			ip, err := netip.ParseAddr(ent.Value)
			if err != nil {
				return
			}
			ie := e.ips[ip]
			if ie.entry == "" {
				ie.entry, ie.source = ent.Value, src
			}
			if !slices.Contains(ie.cats, cat) {
				ie.cats = append(ie.cats, cat)
				cs.IPs++
			}
			e.ips[ip] = ie
			used++
		case lists.KindCIDR:
			pfx, err := netip.ParsePrefix(ent.Value)
			if err != nil {
				return
			}
			e.nets = append(e.nets, netEntry{prefix: pfx, entry: ent.Value, cat: cat, source: src})
			cs.Networks++
			used++
		case lists.KindExpression:
			if re, err := regexp.Compile(ent.Value); err == nil {
				e.exprs = append(e.exprs, exprEntry{re: re, cat: cat, source: src})
				cs.Expressions++
				used++
			}
		}
	}
	// inline parses config entries with the same rules as list files.
	inline := func(values []string, format lists.Format, cat uint16) {
		src := source("inline")
		used = 0
		st, _ := lists.Parse(strings.NewReader(strings.Join(values, "\n")), "inline", format, func(ent lists.Entry) {
			add(ent, cat, src)
		})
		e.collect(st)
		e.countSource(cat, SourceStats{Source: "inline", Format: format}, used, st)
	}

	for _, c := range p.Categories {
		if c.Name == "" {
			return nil, errors.New("a category has no name")
		}
		if _, dup := catID[c.Name]; dup {
			return nil, fmt.Errorf("category %q is defined twice", c.Name)
		}
		id, err := addCat(c.Name, true)
		if err != nil {
			return nil, err
		}
		catID[c.Name] = id
		inline(c.Domains, lists.FormatDomains, id)
		inline(c.URLs, lists.FormatURLs, id)
		for _, l := range c.Lists {
			name := l.Source
			if name == "" {
				name = l.Path
			}
			src := source(name)
			e.files = append(e.files, l.Path)
			used = 0
			st, err := lists.ParseFile(l.Path, l.Format, func(ent lists.Entry) { add(ent, id, src) })
			if err != nil {
				return nil, fmt.Errorf("category %q: %w", c.Name, err)
			}
			e.collect(st)
			e.countSource(id, SourceStats{Source: name, Path: l.Path, Format: l.Format}, used, st)
		}
	}

	groupID := map[string]int{}
	for _, g := range p.Groups {
		if _, dup := groupID[g.Name]; dup || g.Name == "" {
			return nil, fmt.Errorf("group %q is empty-named or defined twice", g.Name)
		}
		groupID[g.Name] = len(e.groups)
		e.groups = append(e.groups, group{name: g.Name, clients: g.Clients, users: set(g.Users)})
	}

	ruleNames := map[string]bool{}
	for _, r := range p.Rules {
		if r.Name == "" || ruleNames[r.Name] {
			return nil, fmt.Errorf("rule %q is empty-named or defined twice", r.Name)
		}
		ruleNames[r.Name] = true
		cr := rule{
			name: r.Name, clients: r.Clients, users: set(r.Users), methods: r.Methods,
			ports: r.Ports, schedules: r.Schedules, action: r.Action, warnFor: r.WarnFor,
		}
		if cr.action == ActionWarn && cr.warnFor <= 0 {
			cr.warnFor = time.Hour
		}
		cr.who = len(r.Groups)+len(r.Users)+len(r.Clients) > 0
		for _, g := range r.Groups {
			id, ok := groupID[g]
			if !ok {
				return nil, fmt.Errorf("rule %q: unknown group %q", r.Name, g)
			}
			cr.groups = append(cr.groups, id)
		}
		var ruleCats []uint16
		for _, c := range r.Categories {
			id, ok := catID[c]
			if !ok {
				return nil, fmt.Errorf("rule %q: unknown category %q", r.Name, c)
			}
			ruleCats = append(ruleCats, id)
		}
		if len(r.Domains)+len(r.URLs) > 0 {
			// The rule's own entries form a category of their own that only
			// this rule uses and decisions do not list.
			id, err := addCat("rule:"+r.Name, false)
			if err != nil {
				return nil, err
			}
			inline(r.Domains, lists.FormatDomains, id)
			inline(r.URLs, lists.FormatURLs, id)
			ruleCats = append(ruleCats, id)
		}
		if len(ruleCats) > 0 {
			cr.catIDs = ruleCats
		}
		e.rules = append(e.rules, cr)
	}
	for i := range e.rules {
		if ids := e.rules[i].catIDs; ids != nil {
			e.rules[i].cats = catMask(ids, len(e.catNames))
		}
	}

	e.dom = b.Build()
	// The visible category names of each set, computed once, so that a
	// decision can hand out a shared slice.
	e.setNames = make([][]string, e.dom.NumSets())
	for id := range e.setNames {
		for _, c := range e.dom.Categories(uint32(id)) {
			if e.visible[c] {
				e.setNames[id] = append(e.setNames[id], e.catNames[c])
			}
		}
		slices.Sort(e.setNames[id])
	}
	e.finishCounts()
	e.stats.Domains = e.dom.Len()
	e.stats.Bytes = e.dom.Bytes()
	for host, us := range e.urls {
		slices.SortStableFunc(us, func(a, b urlEntry) int { return len(b.prefix) - len(a.prefix) })
		e.urls[host] = us
	}
	slices.SortStableFunc(e.nets, func(a, b netEntry) int { return b.prefix.Bits() - a.prefix.Bits() })
	return e, nil
}

// catMask returns a mask over n categories with the given ids set.
func catMask(ids []uint16, n int) []bool {
	m := make([]bool, n)
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func (e *Engine) collect(st lists.Stats) {
	e.stats.Malformed += st.Malformed
	for _, p := range st.Problems {
		if len(e.stats.Problems) < maxProblems {
			e.stats.Problems = append(e.stats.Problems, p)
		}
	}
}

func set(xs []string) map[string]struct{} {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(xs))
	for _, x := range xs {
		m[x] = struct{}{}
	}
	return m
}
