// Package audit defines the audit trail's data: the Event every request,
// tunnel, DNS query and admin action becomes, the Sink events are written
// to, the privacy rules applied before anything is stored, a Broadcaster
// that fans events out to live viewers, and the query types the admin UI
// searches with. Storage lives in audit/sqlite.
package audit
