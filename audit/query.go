package audit

import "time"

// Query selects events. Zero fields do not filter. Results come newest
// first.
type Query struct {
	// Since (inclusive) and Until (exclusive) bound the event time.
	Since, Until time.Time
	User         string
	Client       string
	// Host matches exactly; HostSuffix matches the host and its
	// subdomains ("example.com" matches "www.example.com"); HostContains
	// matches any part of it.
	Host         string
	HostSuffix   string
	HostContains string
	Category     string // one of the event's categories
	Action       string
	Status       int
	Kind         Kind
	// Text is searched for in host, path and query.
	Text string
	// Limit caps the page; zero means 100, at most 10000.
	Limit int
	// Before continues a previous page: only events older than this
	// cursor (Page.Next) are returned.
	Before Cursor
}

// Cursor marks a position in the newest-first order of events (keyset
// pagination). The zero Cursor means "from the newest".
type Cursor struct {
	Time time.Time
	ID   int64
}

// Page is one page of query results.
type Page struct {
	Events []StoredEvent
	// Next is the cursor of the following page; zero when there is none.
	Next Cursor
	// Partial is set when a search that no index serves (text, host
	// suffix, category, action, status or kind alone) stopped after
	// reading its budget of events, before the page was full: Events are
	// every match newer than Next.Time, and Next continues the search
	// from there. False means Events are the complete page.
	Partial bool
}

// StoredEvent is an Event with its position in the trail.
type StoredEvent struct {
	ID int64
	Event
}

// Count is one row of an aggregate: a key (host, user, category, ...) and
// its totals.
type Count struct {
	Key      string
	Requests int64
	Blocked  int64
	BytesIn  int64
	BytesOut int64
}

// Bucket is one time bucket of a series (per minute or per hour).
type Bucket struct {
	Start    time.Time
	Requests int64
	Blocked  int64
	BytesIn  int64
	BytesOut int64
}
