package filter

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"waygate/filter/domainset"
)

// hit is one entry that matched the target.
type hit struct {
	cat    uint16
	entry  string
	source uint16
	// rank orders hits by specificity: a host/path entry beats a domain,
	// a longer domain a shorter one, an address a network.
	rank int
}

// maxHits bounds the matches kept per request, so that matching needs no
// allocation. Further matches only add categories already seen in practice.
const maxHits = 16

// matches is the per-request record of what the target matched.
type matches struct {
	n      int
	hits   [maxHits]hit
	domSet uint32 // set of the longest domain match, if only domains matched
	domN   int    // number of domain matches
}

func (m *matches) add(h hit) {
	for i := 0; i < m.n; i++ {
		if m.hits[i].cat == h.cat {
			if h.rank > m.hits[i].rank {
				m.hits[i] = h
			}
			return
		}
	}
	if m.n < maxHits {
		m.hits[m.n] = h
		m.n++
	}
}

// Decide returns the decision for r. It never fails: a target that cannot
// be normalized is blocked with ReasonInvalidTarget (failing closed).
func (e *Engine) Decide(r *Request) Decision {
	if e == nil {
		return Decision{Action: ActionAllow, Reason: ReasonDefault}
	}
	host, ip, isIP, err := NormalizeHost(r.Host)
	if err != nil {
		return Decision{Action: ActionBlock, Reason: ReasonInvalidTarget, PolicyVersion: e.version, Host: r.Host}
	}
	path := ""
	if r.Method != "CONNECT" {
		path = NormalizePath(r.Path)
	}
	var m matches
	e.match(&m, host, ip, isIP, path)

	d := Decision{PolicyVersion: e.version, Host: host, Categories: e.categoryNames(&m)}
	for i := range e.rules {
		ru := &e.rules[i]
		h, ok := e.ruleMatches(ru, r, &m)
		if !ok {
			continue
		}
		d.Action, d.Reason, d.Rule, d.WarnFor = ru.action, ReasonRule, ru.name, ru.warnFor
		if h != nil {
			if e.visible[h.cat] {
				d.Category = e.catNames[h.cat]
			}
			d.Entry, d.Source = h.entry, e.sources[h.source]
		}
		return d
	}
	d.Action, d.Reason = e.def, ReasonDefault
	if best := m.best(nil); best != nil {
		d.Entry, d.Source = best.entry, e.sources[best.source]
	}
	return d
}

// match collects every entry the target matches.
func (e *Engine) match(m *matches, host string, ip netip.Addr, isIP bool, path string) {
	if isIP {
		if ie, ok := e.ips[ip]; ok {
			for _, c := range ie.cats {
				m.add(hit{cat: c, entry: ie.entry, source: ie.source, rank: 1 << 20})
			}
		}
		for i := range e.nets {
			if n := &e.nets[i]; n.prefix.Contains(ip) {
				m.add(hit{cat: n.cat, entry: n.entry, source: n.source, rank: n.prefix.Bits()})
			}
		}
	} else {
		first := true
		e.dom.Each(host, func(dm domainset.Match) bool {
			if first {
				m.domSet, first = dm.Set, false
			}
			m.domN++
			for _, c := range e.dom.Categories(dm.Set) {
				src := dm.Source
				if int(c) < len(e.catSources) {
					if cs := e.catSources[c]; len(cs) > 0 && !slices.Contains(cs, src) {
						src = cs[0]
					}
				}
				m.add(hit{cat: c, entry: dm.Entry, source: src, rank: len(dm.Entry)})
			}
			return true
		})
	}
	if path != "" && len(e.urls) > 0 {
		// Entries for the host or any parent domain, longest prefix first.
		for h := host; ; {
			for _, u := range e.urls[h] {
				if strings.HasPrefix(path, u.prefix) {
					m.add(hit{cat: u.cat, entry: u.host + u.prefix, source: u.source, rank: 1<<10 + len(u.host) + len(u.prefix)})
				}
			}
			i := strings.IndexByte(h, '.')
			if i < 0 || isIP {
				break
			}
			h = h[i+1:]
		}
	}
	if len(e.exprs) > 0 && path != "" {
		u := host + path
		for _, x := range e.exprs {
			if x.re.MatchString(u) {
				m.add(hit{cat: x.cat, entry: x.re.String(), source: x.source, rank: 1})
			}
		}
	}
}

// best returns the most specific hit, among the categories in mask when
// mask is not nil.
func (m *matches) best(mask []bool) *hit {
	var b *hit
	for i := 0; i < m.n; i++ {
		h := &m.hits[i]
		if mask != nil && !mask[h.cat] {
			continue
		}
		if b == nil || h.rank > b.rank {
			b = h
		}
	}
	return b
}

// categoryNames lists the visible categories of the hits. When the only
// matches are domains of one set (the common case) the names are the set's
// precomputed slice; otherwise a slice is built.
func (e *Engine) categoryNames(m *matches) []string {
	if m.n == 0 {
		return nil
	}
	if m.domN == 1 && int(m.domSet) < len(e.setNames) && m.n == len(e.dom.Categories(m.domSet)) {
		return e.setNames[m.domSet]
	}
	out := make([]string, 0, m.n)
	for i := 0; i < m.n; i++ {
		if c := m.hits[i].cat; e.visible[c] {
			out = append(out, e.catNames[c])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ruleMatches checks a rule's conditions. It returns the hit through which
// the category condition held (nil when the rule has none).
func (e *Engine) ruleMatches(ru *rule, r *Request, m *matches) (*hit, bool) {
	if ru.who && !e.isWho(ru, r) {
		return nil, false
	}
	if len(ru.methods) > 0 && !slices.Contains(ru.methods, r.Method) {
		return nil, false
	}
	if len(ru.ports) > 0 && !slices.Contains(ru.ports, portOf(r)) {
		return nil, false
	}
	if len(ru.schedules) > 0 {
		t := r.Time
		if t.IsZero() {
			t = time.Now()
		}
		in := false
		for i := range ru.schedules {
			if ru.schedules[i].Contains(t) {
				in = true
				break
			}
		}
		if !in {
			return nil, false
		}
	}
	if ru.cats == nil {
		return nil, true
	}
	h := m.best(ru.cats)
	return h, h != nil
}

// isWho reports whether the request's client or user is one the rule is
// for.
func (e *Engine) isWho(ru *rule, r *Request) bool {
	if r.User != "" {
		if _, ok := ru.users[r.User]; ok {
			return true
		}
	}
	for _, p := range ru.clients {
		if p.Contains(r.Client) {
			return true
		}
	}
	for _, g := range ru.groups {
		if e.inGroup(g, r) {
			return true
		}
	}
	return false
}

func (e *Engine) inGroup(g int, r *Request) bool {
	gr := &e.groups[g]
	if r.User != "" {
		if _, ok := gr.users[r.User]; ok {
			return true
		}
	}
	for _, p := range gr.clients {
		if p.Contains(r.Client) {
			return true
		}
	}
	return false
}

// Groups returns the names of the groups the client and user belong to.
func (e *Engine) Groups(client netip.Addr, user string) []string {
	if e == nil {
		return nil
	}
	r := &Request{Client: client, User: user}
	var out []string
	for i := range e.groups {
		if e.inGroup(i, r) {
			out = append(out, e.groups[i].name)
		}
	}
	slices.Sort(out)
	return out
}

func portOf(r *Request) uint16 {
	if r.Port != 0 {
		return r.Port
	}
	if r.Method == "CONNECT" {
		return 443
	}
	return 80
}
