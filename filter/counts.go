package filter

import "waygate/filter/lists"

// CategoryStats counts what one category of the policy holds. Compile
// computes it once, beside the indexes, so that reading it costs nothing
// on the request path.
type CategoryStats struct {
	// Name is the category's name.
	Name string
	// Domains counts the category's distinct domains: a domain listed in
	// two of its sources, or twice in one, counts once.
	Domains int
	// URLs counts host/path prefixes, as held (a prefix listed twice
	// counts twice).
	URLs int
	// IPs counts distinct single IP addresses.
	IPs int
	// Networks counts CIDR prefixes, as held.
	Networks int
	// Expressions counts regular expressions, as held.
	Expressions int
	// Entries is Domains + URLs + IPs + Networks + Expressions: what the
	// category matches with.
	Entries int
	// Malformed counts the lines of the category's sources that were
	// skipped as malformed.
	Malformed int
	// Sources are the places the entries came from, in the order of the
	// policy: inline domains, inline URLs, then each list. A source that
	// gave nothing and had no malformed line is left out. Nil when the
	// category has no entries at all.
	Sources []SourceStats
}

// SourceStats counts what one source gave its category.
type SourceStats struct {
	// Source names the source as decisions do: "inline", the list's
	// List.Source, or its path.
	Source string
	// Path is the list file that was read; empty for inline entries.
	Path string
	// Format is how the source was read: FormatDomains for a category's
	// inline domains, FormatURLs for its inline URLs, the list's format
	// otherwise.
	Format lists.Format
	// Entries counts the usable entries read from the source, of every
	// kind. An entry that another source of the category also gave counts
	// in both, so the Entries of the sources may add up to more than the
	// category's Entries.
	Entries int
	// Malformed counts the lines skipped as malformed.
	Malformed int
	// Problems are the first malformed lines (at most lists.MaxProblems);
	// nil if none. For inline entries, Line is the 1-based position of the
	// entry in Category.Domains or Category.URLs (by Format).
	Problems []lists.Problem
}

// CategoryStats returns the counts of every category of the policy, in the
// order of Policy.Categories (the categories a rule makes of its own
// domains and URLs are left out). The slice and the Sources in it are
// shared and must not be modified. Nil for a nil engine.
func (e *Engine) CategoryStats() []CategoryStats {
	if e == nil {
		return nil
	}
	return e.catStats
}

// countSource records what one parse of a source gave category cat:
// entries usable entries, and the parser's malformed lines.
func (e *Engine) countSource(cat uint16, src SourceStats, entries int, st lists.Stats) {
	if entries == 0 && st.Malformed == 0 {
		return
	}
	src.Entries, src.Malformed, src.Problems = entries, st.Malformed, st.Problems
	cs := &e.catStats[cat]
	cs.Malformed += st.Malformed
	cs.Sources = append(cs.Sources, src)
}

// finishCounts adds the distinct domains of each category, which only the
// built domain index knows, totals every category, and drops the
// categories of rules (which decisions do not list either).
func (e *Engine) finishCounts() {
	for set, n := range e.dom.SetSizes() {
		for _, c := range e.dom.Categories(uint32(set)) {
			e.catStats[c].Domains += n
		}
	}
	visible := e.catStats[:0]
	for i := range e.catStats {
		cs := e.catStats[i]
		if !e.visible[i] {
			continue
		}
		cs.Entries = cs.Domains + cs.URLs + cs.IPs + cs.Networks + cs.Expressions
		visible = append(visible, cs)
	}
	clear(e.catStats[len(visible):])
	e.catStats = visible[:len(visible):len(visible)]
}
