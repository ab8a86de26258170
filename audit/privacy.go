package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
)

// QueryMode says what happens to query strings in the trail.
type QueryMode uint8

// Query modes. The zero value keeps queries.
const (
	QueryKeep QueryMode = iota // stored as sent
	QueryDrop                  // not stored
	QueryHash                  // stored as a keyed hash: equal queries stay comparable
)

// ParseQueryMode parses "keep", "drop" or "hash".
func ParseQueryMode(s string) (QueryMode, error) {
	switch s {
	case "", "keep":
		return QueryKeep, nil
	case "drop":
		return QueryDrop, nil
	case "hash":
		return QueryHash, nil
	}
	return 0, fmt.Errorf("%q is not a query mode (keep, drop, hash)", s)
}

// Privacy is applied to every event before it is stored, as the works
// council or data-protection rules require. The zero value changes
// nothing.
type Privacy struct {
	// Key keys the pseudonyms. Pseudonyms are stable for one key and
	// cannot be reversed or recomputed without it. Required when any
	// hashing is on.
	Key []byte
	// HashUsers and HashClients replace user names and client addresses
	// with pseudonyms.
	HashUsers   bool
	HashClients bool
	// Query says what to do with query strings.
	Query QueryMode
	// ExcludeCategories leaves events in these categories out of the trail
	// entirely (for example health).
	ExcludeCategories []string
}

// Apply rewrites e in place and reports whether it is to be stored at all.
func (p *Privacy) Apply(e *Event) bool {
	if p == nil {
		return true
	}
	for _, c := range e.Categories {
		if slices.Contains(p.ExcludeCategories, c) {
			return false
		}
	}
	if p.HashUsers && e.User != "" {
		e.User = p.Pseudonym(e.User)
	}
	if p.HashClients && e.Client != "" {
		e.Client = p.Pseudonym(e.Client)
	}
	switch p.Query {
	case QueryDrop:
		e.Query = ""
	case QueryHash:
		if e.Query != "" {
			e.Query = p.Pseudonym(e.Query)
		}
	}
	return true
}

// Pseudonym returns the keyed hash of v: "~" and 22 characters of
// base64url (128 bits of HMAC-SHA256). The prefix cannot start a user name,
// address or query, so pseudonyms are recognisable as such.
func (p *Privacy) Pseudonym(v string) string {
	m := hmac.New(sha256.New, p.Key)
	m.Write([]byte(v))
	return "~" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// PrivacySink applies Privacy to events on their way to Next.
type PrivacySink struct {
	Privacy *Privacy
	Next    Sink
}

// Record applies the privacy rules and passes on what is kept.
func (s *PrivacySink) Record(e *Event) {
	if s.Privacy.Apply(e) {
		s.Next.Record(e)
	}
}
