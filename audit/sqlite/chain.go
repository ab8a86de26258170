package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"waygate/audit"
)

// The hash chain
//
// Every row of events carries hash = SHA-256(prev || canonical(row)),
// where prev is the hash of the row with the next lower id, or, for the
// first row still in the table, the hash in chain_anchor (written by
// retention when it deletes the oldest rows), or 32 zero bytes when no row
// was ever deleted. Ids are assigned by the writer without gaps (the
// previous id + 1, starting at 1 or at chain_anchor.event_id + 1), so a
// missing row is also visible as a gap.
//
// canonical(row) is the concatenation, for every column of events in
// schema order except hash itself:
//
//	id, time, duration, kind, request_id, client, user, groups, method,
//	scheme, host, port, path, query, status, bytes_in, bytes_out, action,
//	rule, categories, category, entry, source, reason, policy, cache,
//	upstream, user_agent, content_type, error, detail
//
// of its encoding: an INTEGER column as 8 bytes, big-endian two's
// complement; a TEXT column as its length in bytes (8 bytes, big-endian)
// followed by its bytes (UTF-8 as stored, no normalisation). There is no
// separator and no version prefix; a new encoding would come with a new
// schema version.

// chainRow is one row of events, in schema order, without the hash.
type chainRow struct {
	id, time, duration                                      int64
	kind, requestID, client, user, groups, method, scheme   string
	host                                                    string
	port                                                    int64
	path, query                                             string
	status, bytesIn, bytesOut                               int64
	action, rule, categories, category, entry, source       string
	reason, policy, cache, upstream, userAgent, contentType string
	errText, detail                                         string
}

// chainColumns are the columns of chainRow, in schema order.
const chainColumns = `id, time, duration, kind, request_id, client, user, "groups", method, scheme,
	host, port, path, query, status, bytes_in, bytes_out, action, rule, categories,
	category, entry, source, reason, policy, cache, upstream, user_agent, content_type,
	error, detail`

// chainRowColumns is the number of columns in chainColumns.
const chainRowColumns = 31

// rowFromEvent is the row e becomes (id unset): groups comma-joined in
// their order, categories sorted and comma-joined, times in nanoseconds.
func rowFromEvent(e *audit.Event) chainRow {
	cats := ""
	switch len(e.Categories) {
	case 0:
	case 1:
		cats = e.Categories[0]
	default:
		c := slices.Clone(e.Categories)
		slices.Sort(c)
		cats = strings.Join(c, ",")
	}
	return chainRow{
		time:        nanos(e.Time),
		duration:    int64(e.Duration),
		kind:        string(e.Kind),
		requestID:   e.RequestID,
		client:      e.Client,
		user:        e.User,
		groups:      strings.Join(e.Groups, ","),
		method:      e.Method,
		scheme:      e.Scheme,
		host:        e.Host,
		port:        int64(e.Port),
		path:        e.Path,
		query:       e.Query,
		status:      int64(e.Status),
		bytesIn:     e.BytesIn,
		bytesOut:    e.BytesOut,
		action:      e.Action,
		rule:        e.Rule,
		categories:  cats,
		category:    e.Category,
		entry:       e.Entry,
		source:      e.Source,
		reason:      e.Reason,
		policy:      e.Policy,
		cache:       e.Cache,
		upstream:    e.Upstream,
		userAgent:   e.UserAgent,
		contentType: e.ContentType,
		errText:     e.Error,
		detail:      e.Detail,
	}
}

// nanos is t in Unix nanoseconds, clamped to the int64 range.
func nanos(t time.Time) int64 {
	const maxSec = (1<<63 - 1) / int64(time.Second)
	switch s := t.Unix(); {
	case s >= maxSec:
		return 1<<63 - 1
	case s <= -maxSec:
		return -1 << 63
	}
	return t.UnixNano()
}

// chainIntColumn marks the INTEGER columns of chainColumns, by position.
var chainIntColumn = [chainRowColumns]bool{0: true, 1: true, 2: true, 11: true, 14: true, 15: true, 16: true}

// appendNamed appends the row's non-zero values with their positions in
// insertSQL (hash last); insertSQL turns the values left out into zeros.
// id, time and hash are always given.
func (r *chainRow) appendNamed(dst []driver.NamedValue, hash []byte) []driver.NamedValue {
	ints := [...]struct {
		pos int
		v   int64
	}{{1, r.id}, {2, r.time}, {3, r.duration}, {12, r.port}, {15, r.status}, {16, r.bytesIn}, {17, r.bytesOut}}
	for i, c := range ints {
		if c.v != 0 || i < 2 {
			dst = append(dst, driver.NamedValue{Ordinal: c.pos, Value: c.v})
		}
	}
	strs := [...]struct {
		pos int
		v   string
	}{{4, r.kind}, {5, r.requestID}, {6, r.client}, {7, r.user}, {8, r.groups}, {9, r.method}, {10, r.scheme},
		{11, r.host}, {13, r.path}, {14, r.query}, {18, r.action}, {19, r.rule}, {20, r.categories},
		{21, r.category}, {22, r.entry}, {23, r.source}, {24, r.reason}, {25, r.policy}, {26, r.cache},
		{27, r.upstream}, {28, r.userAgent}, {29, r.contentType}, {30, r.errText}, {31, r.detail}}
	for _, c := range strs {
		if c.v != "" {
			dst = append(dst, driver.NamedValue{Ordinal: c.pos, Value: c.v})
		}
	}
	return append(dst, driver.NamedValue{Ordinal: chainRowColumns + 1, Value: hash})
}

// scanDest are pointers to the row's fields in chainColumns order.
func (r *chainRow) scanDest() []any {
	return []any{&r.id, &r.time, &r.duration, &r.kind, &r.requestID, &r.client, &r.user, &r.groups,
		&r.method, &r.scheme, &r.host, &r.port, &r.path, &r.query, &r.status, &r.bytesIn, &r.bytesOut,
		&r.action, &r.rule, &r.categories, &r.category, &r.entry, &r.source, &r.reason, &r.policy,
		&r.cache, &r.upstream, &r.userAgent, &r.contentType, &r.errText, &r.detail}
}

// appendCanonical appends canonical(r) to b (see the top of this file).
func (r *chainRow) appendCanonical(b []byte) []byte {
	i := func(v int64) { b = binary.BigEndian.AppendUint64(b, uint64(v)) }
	s := func(v string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(v)))
		b = append(b, v...)
	}
	i(r.id)
	i(r.time)
	i(r.duration)
	s(r.kind)
	s(r.requestID)
	s(r.client)
	s(r.user)
	s(r.groups)
	s(r.method)
	s(r.scheme)
	s(r.host)
	i(r.port)
	s(r.path)
	s(r.query)
	i(r.status)
	i(r.bytesIn)
	i(r.bytesOut)
	s(r.action)
	s(r.rule)
	s(r.categories)
	s(r.category)
	s(r.entry)
	s(r.source)
	s(r.reason)
	s(r.policy)
	s(r.cache)
	s(r.upstream)
	s(r.userAgent)
	s(r.contentType)
	s(r.errText)
	s(r.detail)
	return b
}

// chainHasher computes chain hashes, reusing its buffer.
type chainHasher struct{ buf []byte }

// next is SHA-256(prev || canonical(r)).
func (h *chainHasher) next(prev [32]byte, r *chainRow) [32]byte {
	h.buf = append(h.buf[:0], prev[:]...)
	h.buf = r.appendCanonical(h.buf)
	return sha256.Sum256(h.buf)
}

// loadChainHead reads the last id and hash (of the newest row, else of
// the anchor, else 0 and zero) into the writer state.
func (s *Store) loadChainHead(ctx context.Context) error {
	var id int64
	var h []byte
	err := s.wconn.QueryRowContext(ctx, `SELECT id, hash FROM events ORDER BY id DESC LIMIT 1`).Scan(&id, &h)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.wconn.QueryRowContext(ctx, `SELECT event_id, hash FROM chain_anchor WHERE id = 1`).Scan(&id, &h)
		if errors.Is(err, sql.ErrNoRows) {
			s.w.lastID, s.w.lastHash = 0, [32]byte{}
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("read the chain head: %w", err)
	}
	if len(h) != 32 {
		return fmt.Errorf("read the chain head: hash of event %d has %d bytes, want 32", id, len(h))
	}
	s.w.lastID = id
	copy(s.w.lastHash[:], h)
	return nil
}

// VerifyResult is the outcome of Verify.
type VerifyResult struct {
	// Events is the number of events checked.
	Events int64
	// OK is true when every event's hash matches the chain.
	OK bool
	// FirstBadID is the id of the first event that does not verify (0
	// when OK); Reason says why.
	FirstBadID int64
	Reason     string
}

// Verify opens the database at path read-only and walks the events in id
// order, recomputing the hash chain from chain_anchor (or from 32 zero
// bytes) as documented at the top of chain.go. It stops at the first
// event whose hash, or whose id (ids have no gaps), is wrong. An error
// means the check could not run, not that the chain is broken.
func Verify(ctx context.Context, path string) (VerifyResult, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("audit verify: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	db, err := sql.Open("sqlite3", u.String()+"?mode=ro&_busy_timeout=5000&_txlock=deferred")
	if err != nil {
		return VerifyResult{}, fmt.Errorf("audit verify: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// One read transaction: a consistent snapshot even while the gateway
	// writes and prunes.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return VerifyResult{}, fmt.Errorf("audit verify: %s: %w", path, err)
	}
	defer tx.Rollback()
	var prev [32]byte
	var lastID int64
	var anchorHash []byte
	err = tx.QueryRowContext(ctx, `SELECT event_id, hash FROM chain_anchor WHERE id = 1`).Scan(&lastID, &anchorHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return VerifyResult{}, fmt.Errorf("audit verify: %s: read the anchor: %w", path, err)
	case len(anchorHash) != 32:
		return VerifyResult{Reason: fmt.Sprintf("chain anchor hash has %d bytes", len(anchorHash))}, nil
	default:
		copy(prev[:], anchorHash)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+chainColumns+`, hash FROM events ORDER BY id`)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("audit verify: %s: %w", path, err)
	}
	defer rows.Close()
	var (
		res  VerifyResult
		r    chainRow
		hash []byte
		h    chainHasher
	)
	dest := append(r.scanDest(), &hash)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return res, fmt.Errorf("audit verify: %s: %w", path, err)
		}
		if r.id != lastID+1 {
			res.FirstBadID = r.id
			res.Reason = fmt.Sprintf("id %d follows %d: events missing", r.id, lastID)
			return res, nil
		}
		want := h.next(prev, &r)
		if !bytes.Equal(hash, want[:]) {
			res.FirstBadID = r.id
			res.Reason = "hash mismatch: the event or the one before it was changed"
			return res, nil
		}
		res.Events++
		prev, lastID = want, r.id
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("audit verify: %s: %w", path, err)
	}
	res.OK = true
	return res, nil
}
