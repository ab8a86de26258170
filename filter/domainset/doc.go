// Package domainset holds millions of domain entries, each tagged with an
// interned set of category IDs and a source ID, in a compact immutable table
// that answers which entries match a host (an entry matches itself and all of
// its subdomains). Lookups hash each label-boundary suffix of the host,
// longest first, probe an open-addressing table and allocate nothing.
package domainset
