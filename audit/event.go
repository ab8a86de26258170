package audit

import (
	"time"
)

// Kind says what an Event records.
type Kind string

// Kinds of events. The names are stable: they are stored and searched.
const (
	KindHTTP    Kind = "http"    // a plain HTTP request through the forward proxy
	KindConnect Kind = "connect" // a CONNECT tunnel, recorded when it closes
	KindReverse Kind = "reverse" // a request to the reverse-proxy module
	KindDNS     Kind = "dns"     // a DNS query answered by the gateway
	KindAdmin   Kind = "admin"   // an admin action: login, config change, purge, export
)

// Event is one record of the audit trail: one request, one tunnel (at its
// close), one DNS query or one admin action. The zero value of a field
// means "not applicable" or "not known"; strings are empty, numbers zero.
type Event struct {
	// Time is when the request started (for tunnels: when it was opened).
	Time time.Time
	// Duration is how long it took (tunnels: how long they were open).
	Duration time.Duration
	Kind     Kind
	// RequestID is the ID shown on error and block pages.
	RequestID string
	// Client is the client's address (or its pseudonym, see Privacy).
	Client string
	// User is the authenticated user (or its pseudonym); for admin events
	// the admin.
	User string
	// Groups are the policy groups the client and user belong to.
	Groups []string
	Method string
	Scheme string
	Host   string
	Port   uint16
	Path   string
	// Query is the query string, kept, dropped or hashed per Privacy.
	Query string
	// Status is the HTTP status sent to the client; 499 when the client
	// went away first.
	Status int
	// BytesIn counts bytes from the client (request body, or tunnel bytes
	// client to origin); BytesOut bytes to the client.
	BytesIn  int64
	BytesOut int64
	// Action, Rule, Categories, Category, Entry, Source, Reason and Policy
	// explain the policy decision (see package filter).
	Action     string
	Rule       string
	Categories []string
	Category   string
	Entry      string
	Source     string
	Reason     string
	Policy     string
	// Cache is the shared cache's verdict: HIT, MISS, STALE, ... or empty.
	Cache string
	// Upstream is the address dialed.
	Upstream    string
	UserAgent   string
	ContentType string
	// Error names the cause of a failure (an upstream.Cause name or a
	// short text); empty on success.
	Error string
	// Detail carries what an admin action changed, as text (JSON).
	Detail string
}

// Sink receives events. Record must not drop an event: when it cannot keep
// up it slows the caller down (and may put events aside to write later),
// but everything it accepted ends up stored. It must be safe for concurrent
// use. The Event must not be changed after Record returns.
type Sink interface {
	Record(e *Event)
}

// Discard is a Sink that keeps nothing, for configurations with the audit
// trail off and for tests.
var Discard Sink = discard{}

type discard struct{}

func (discard) Record(*Event) {}
