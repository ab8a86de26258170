package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"waygate/audit"
)

// Export formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
	FormatSquid = "squid"
)

// qExportColumns are the columns Export writes (CSV header, JSON field
// names), in this order: the event columns and the chain hash.
var qExportColumns = []string{
	"id", "time", "duration", "kind", "request_id", "client", "user", "groups",
	"method", "scheme", "host", "port", "path", "query", "status", "bytes_in", "bytes_out",
	"action", "rule", "categories", "category", "entry", "source", "reason", "policy",
	"cache", "upstream", "user_agent", "content_type", "error", "detail", "hash",
}

// Export writes the events between since (inclusive) and until
// (exclusive) to w, oldest first (by time, then id), and returns how many
// it wrote. Zero since or until leave that side open. Rows are read and
// written one at a time, so memory use does not grow with the range. The
// formats are:
//
//   - "csv": RFC 4180 with a header row of the column names (see below).
//   - "jsonl": one JSON object per line with the column names as keys.
//   - "squid": Squid's native access.log format, for log analysers.
//
// In csv and jsonl every column is written under its database name: id,
// time (RFC 3339 with nanoseconds, UTC), duration (nanoseconds), kind,
// request_id, client, user, groups (comma-joined), method, scheme, host,
// port, path, query, status, bytes_in, bytes_out, action, rule,
// categories (comma-joined), category, entry, source, reason, policy,
// cache, upstream, user_agent, content_type, error, detail and hash (the
// chain hash, hex).
//
// A squid line is
//
//	time.millis elapsed_ms client action/status bytes method URL user hierarchy/peer content_type
//
// with elapsed right-aligned in 6 columns as Squid does. action is
// TCP_DENIED (status 403) for blocked requests, TCP_TUNNEL for CONNECT
// tunnels, TCP_HIT for cache hits and TCP_MISS otherwise; bytes are those
// sent to the client; a tunnel's URL is host:port; the hierarchy is
// HIER_DIRECT/upstream-address, or HIER_NONE/- when nothing was dialed.
// Empty fields are "-". Spaces and control characters are percent-encoded
// (%20, %0A, ...) in every field so that a line stays one line of
// space-separated fields.
//
// On error Export returns the rows written so far; w may hold a partial
// row.
func Export(ctx context.Context, db *sql.DB, w io.Writer, format string, since, until time.Time) (int64, error) {
	var write func(e *audit.StoredEvent, hash []byte) error
	var cw *csv.Writer
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case FormatCSV:
		cw = csv.NewWriter(bw)
		if err := cw.Write(qExportColumns); err != nil {
			return 0, err
		}
		rec := make([]string, len(qExportColumns))
		write = func(e *audit.StoredEvent, hash []byte) error {
			qCSVRecord(rec, e, hash)
			return cw.Write(rec)
		}
	case FormatJSONL:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(e *audit.StoredEvent, hash []byte) error {
			return enc.Encode(qJSONRecord(e, hash))
		}
	case FormatSquid:
		var line []byte
		write = func(e *audit.StoredEvent, _ []byte) error {
			line = squidLine(line[:0], e)
			_, err := bw.Write(line)
			return err
		}
	default:
		return 0, fmt.Errorf("audit: export: unknown format %q (csv, jsonl or squid)", format)
	}

	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !since.IsZero() {
		lo = qUnixNano(since)
	}
	if !until.IsZero() {
		hi = qUnixNano(until)
	}
	rows, err := db.QueryContext(ctx, `SELECT `+qEventColumns+`, hash
FROM events INDEXED BY events_time
WHERE time >= ? AND time < ?
ORDER BY time, id`, lo, hi)
	if err != nil {
		return 0, fmt.Errorf("audit: export: %w", err)
	}
	defer rows.Close()
	var n int64
	var hash []byte
	for rows.Next() {
		e, err := qScanEvent(rows, &hash)
		if err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
		if format == FormatSquid && !squidKind(e.Kind) {
			// access.log has no line for admin actions or DNS queries;
			// report tools would misread them.
			continue
		}
		if err := write(&e, hash); err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

func qCSVRecord(rec []string, e *audit.StoredEvent, hash []byte) {
	i := 0
	put := func(s string) { rec[i] = s; i++ }
	d := strconv.FormatInt
	put(d(e.ID, 10))
	put(e.Time.UTC().Format(time.RFC3339Nano))
	put(d(int64(e.Duration), 10))
	put(string(e.Kind))
	put(e.RequestID)
	put(e.Client)
	put(e.User)
	put(strings.Join(e.Groups, ","))
	put(e.Method)
	put(e.Scheme)
	put(e.Host)
	put(d(int64(e.Port), 10))
	put(e.Path)
	put(e.Query)
	put(strconv.Itoa(e.Status))
	put(d(e.BytesIn, 10))
	put(d(e.BytesOut, 10))
	put(e.Action)
	put(e.Rule)
	put(strings.Join(e.Categories, ","))
	put(e.Category)
	put(e.Entry)
	put(e.Source)
	put(e.Reason)
	put(e.Policy)
	put(e.Cache)
	put(e.Upstream)
	put(e.UserAgent)
	put(e.ContentType)
	put(e.Error)
	put(e.Detail)
	put(hex.EncodeToString(hash))
}

// qExportRow is one jsonl line; the field order and names are those of
// qExportColumns.
type qExportRow struct {
	ID          int64  `json:"id"`
	Time        string `json:"time"`
	Duration    int64  `json:"duration"`
	Kind        string `json:"kind"`
	RequestID   string `json:"request_id"`
	Client      string `json:"client"`
	User        string `json:"user"`
	Groups      string `json:"groups"`
	Method      string `json:"method"`
	Scheme      string `json:"scheme"`
	Host        string `json:"host"`
	Port        int    `json:"port"`
	Path        string `json:"path"`
	Query       string `json:"query"`
	Status      int    `json:"status"`
	BytesIn     int64  `json:"bytes_in"`
	BytesOut    int64  `json:"bytes_out"`
	Action      string `json:"action"`
	Rule        string `json:"rule"`
	Categories  string `json:"categories"`
	Category    string `json:"category"`
	Entry       string `json:"entry"`
	Source      string `json:"source"`
	Reason      string `json:"reason"`
	Policy      string `json:"policy"`
	Cache       string `json:"cache"`
	Upstream    string `json:"upstream"`
	UserAgent   string `json:"user_agent"`
	ContentType string `json:"content_type"`
	Error       string `json:"error"`
	Detail      string `json:"detail"`
	Hash        string `json:"hash"`
}

func qJSONRecord(e *audit.StoredEvent, hash []byte) *qExportRow {
	return &qExportRow{
		ID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano), Duration: int64(e.Duration),
		Kind: string(e.Kind), RequestID: e.RequestID, Client: e.Client, User: e.User,
		Groups: strings.Join(e.Groups, ","), Method: e.Method, Scheme: e.Scheme, Host: e.Host,
		Port: int(e.Port), Path: e.Path, Query: e.Query, Status: e.Status,
		BytesIn: e.BytesIn, BytesOut: e.BytesOut, Action: e.Action, Rule: e.Rule,
		Categories: strings.Join(e.Categories, ","), Category: e.Category, Entry: e.Entry,
		Source: e.Source, Reason: e.Reason, Policy: e.Policy, Cache: e.Cache,
		Upstream: e.Upstream, UserAgent: e.UserAgent, ContentType: e.ContentType,
		Error: e.Error, Detail: e.Detail, Hash: hex.EncodeToString(hash),
	}
}

// squidBlocked is qBlockedSQL for one event.
func squidBlocked(e *audit.StoredEvent) bool {
	return (e.Action == "block" || e.Action == "warn") && e.Reason != "warn_accepted"
}

// squidLine appends e's Squid access.log line (with its newline) to b.
func squidLine(b []byte, e *audit.StoredEvent) []byte {
	ms := e.Time.UnixMilli()
	b = strconv.AppendInt(b, qFloorDiv(ms, 1000), 10)
	b = append(b, '.')
	frac := ms - qFloorDiv(ms, 1000)*1000
	b = append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	b = append(b, ' ')
	el := strconv.FormatInt(e.Duration.Milliseconds(), 10)
	for i := len(el); i < 6; i++ {
		b = append(b, ' ')
	}
	b = append(b, el...)
	b = append(b, ' ')
	b = squidField(b, e.Client)
	b = append(b, ' ')

	status := e.Status
	var action string
	switch {
	case squidBlocked(e):
		action, status = "TCP_DENIED", 403
	case e.Kind == audit.KindConnect:
		action = "TCP_TUNNEL"
	case strings.EqualFold(e.Cache, "HIT"):
		action = "TCP_HIT"
	default:
		action = "TCP_MISS"
	}
	b = append(b, action...)
	b = append(b, '/')
	if status >= 0 && status < 100 {
		b = append(b, '0')
		if status < 10 {
			b = append(b, '0')
		}
	}
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = append(b, ' ')
	b = squidField(b, e.Method)
	b = append(b, ' ')
	b = squidField(b, squidURL(e))
	b = append(b, ' ')
	b = squidField(b, e.User)
	b = append(b, ' ')
	if e.Upstream == "" || action == "TCP_HIT" || action == "TCP_DENIED" {
		b = append(b, "HIER_NONE/-"...)
	} else {
		peer := e.Upstream
		if h, _, err := net.SplitHostPort(peer); err == nil {
			peer = h
		}
		b = append(b, "HIER_DIRECT/"...)
		b = squidField(b, peer)
	}
	b = append(b, ' ')
	b = squidField(b, e.ContentType)
	return append(b, '\n')
}

// squidURL is the URL Squid would log for e: host:port for a tunnel, the
// absolute URL otherwise; "" when e has no host.
func squidURL(e *audit.StoredEvent) string {
	if e.Host == "" {
		return e.Path
	}
	if e.Kind == audit.KindConnect || strings.EqualFold(e.Method, "CONNECT") {
		port := e.Port
		if port == 0 {
			port = 443
		}
		return net.JoinHostPort(e.Host, strconv.Itoa(int(port)))
	}
	scheme := e.Scheme
	if scheme == "" {
		scheme = "http"
	}
	host := e.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if e.Port != 0 && !(scheme == "http" && e.Port == 80) && !(scheme == "https" && e.Port == 443) {
		host = net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
	}
	path := e.Path
	if path == "" {
		path = "/"
	}
	u := scheme + "://" + host + path
	if e.Query != "" {
		u += "?" + e.Query
	}
	return u
}

// squidField appends s as one squid field: "-" when empty, spaces and
// control characters (which would split or break the line) as %XX.
func squidField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// Export is Export on the Store's database.
func (s *Store) Export(ctx context.Context, w io.Writer, format string, since, until time.Time) (int64, error) {
	return Export(ctx, s.db, w, format, since, until)
}

// squidKind reports whether events of kind k have a line in Squid's
// access.log format: requests and tunnels, not admin actions or DNS.
func squidKind(k audit.Kind) bool {
	return k == audit.KindHTTP || k == audit.KindConnect || k == audit.KindReverse
}
