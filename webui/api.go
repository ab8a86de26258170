package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"waygate/audit"
)

// Limits of query parameters.
const (
	maxParamLen    = 512   // any text parameter, in bytes
	maxURLParamLen = 8192  // the url of explain
	maxLogLimit    = 1000  // events per page of /api/v1/logs
	maxStatsTop    = 100   // rows per top list of /api/v1/stats
	maxStatsSteps  = 10000 // buckets of one series
)

// queryParams parses the query string, refusing malformed ones, unknown
// parameters, parameters given twice and text that is too long or not
// UTF-8, each with a 400 naming the parameter.
func queryParams(c *gin.Context, known ...string) (url.Values, bool) {
	v, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, http.StatusBadRequest, "malformed query string: %v", err)
		return nil, false
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				fail(c, http.StatusBadRequest, "unknown parameter %q: this endpoint takes none", clip(k, 64))
			} else {
				fail(c, http.StatusBadRequest, "unknown parameter %q (known: %s)", clip(k, 64), strings.Join(known, ", "))
			}
			return nil, false
		}
		if len(v[k]) > 1 {
			fail(c, http.StatusBadRequest, "parameter %s given more than once", k)
			return nil, false
		}
		limit := maxParamLen
		if k == "url" {
			limit = maxURLParamLen
		}
		if len(v[k][0]) > limit {
			fail(c, http.StatusBadRequest, "parameter %s: longer than %d bytes", k, limit)
			return nil, false
		}
		if !utf8.ValidString(v[k][0]) {
			fail(c, http.StatusBadRequest, "parameter %s: not valid UTF-8", k)
			return nil, false
		}
	}
	return v, true
}

// onlyParams refuses any query parameter.
func onlyParams(c *gin.Context) bool {
	_, ok := queryParams(c)
	return ok
}

// parseTime parses an RFC 3339 time or a date, YYYY-MM-DD, in UTC: the
// start of that day, or with endOfDay the start of the next (so that
// until=2026-03-01 includes all of March 1).
func parseTime(s string, endOfDay bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-03-01T10:00:00Z) or a date (2026-03-01)", s)
	}
	if endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// timeRange parses the since and until parameters, either of which may
// be absent (zero).
func timeRange(c *gin.Context, v url.Values) (since, until time.Time, ok bool) {
	var err error
	if s := v.Get("since"); s != "" {
		if since, err = parseTime(s, false); err != nil {
			fail(c, http.StatusBadRequest, "parameter since: %v", err)
			return
		}
	}
	if s := v.Get("until"); s != "" {
		if until, err = parseTime(s, true); err != nil {
			fail(c, http.StatusBadRequest, "parameter until: %v", err)
			return
		}
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		fail(c, http.StatusBadRequest, "parameter until: must be after since")
		return
	}
	return since, until, true
}

// intParam parses an integer parameter in [lo, hi]; absent gives def.
func intParam(c *gin.Context, v url.Values, name string, lo, hi, def int) (int, bool) {
	s := v.Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		fail(c, http.StatusBadRequest, "parameter %s: want a whole number from %d to %d, not %q", name, lo, hi, s)
		return 0, false
	}
	return n, true
}

// EncodeCursor writes a log cursor as the opaque string of the logs API:
// "<unix nanoseconds>.<event ID>"; the zero cursor is "".
func EncodeCursor(cur LogCursor) string {
	if cur.Time.IsZero() && cur.ID == 0 {
		return ""
	}
	return strconv.FormatInt(cur.Time.UnixNano(), 10) + "." + strconv.FormatInt(cur.ID, 10)
}

// DecodeCursor reads a cursor written by EncodeCursor; "" is the zero
// cursor.
func DecodeCursor(s string) (LogCursor, error) {
	if s == "" {
		return LogCursor{}, nil
	}
	ns, id, ok := strings.Cut(s, ".")
	n, err1 := strconv.ParseInt(ns, 10, 64)
	i, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil || i < 0 {
		return LogCursor{}, errors.New("not a cursor from a previous page's next")
	}
	return LogCursor{Time: time.Unix(0, n).UTC(), ID: i}, nil
}

var logParams = []string{"since", "until", "user", "client", "host", "host_suffix", "host_contains",
	"category", "action", "status", "kind", "q", "limit", "before"}

var kinds = []audit.Kind{audit.KindHTTP, audit.KindConnect, audit.KindReverse, audit.KindDNS, audit.KindAdmin}

// parseLogQuery turns the parameters of GET /api/v1/logs into a LogQuery.
func parseLogQuery(c *gin.Context) (LogQuery, bool) {
	q, _, ok := parseLogQueryWith(c)
	return q, ok
}

// parseLogQueryWith is parseLogQuery for an endpoint that also takes the
// parameters extra, which it returns for the caller to read.
func parseLogQueryWith(c *gin.Context, extra ...string) (LogQuery, url.Values, bool) {
	var q LogQuery
	v, ok := queryParams(c, append(logParams[:len(logParams):len(logParams)], extra...)...)
	if !ok {
		return q, nil, false
	}
	if q.Since, q.Until, ok = timeRange(c, v); !ok {
		return q, nil, false
	}
	q.User = v.Get("user")
	q.Client = v.Get("client")
	q.Host = v.Get("host")
	q.HostSuffix = v.Get("host_suffix")
	q.HostContains = v.Get("host_contains")
	q.Category = v.Get("category")
	q.Action = v.Get("action")
	q.Text = v.Get("q")
	if q.Status, ok = intParam(c, v, "status", 100, 599, 0); !ok {
		return q, nil, false
	}
	if k := v.Get("kind"); k != "" {
		if !slices.Contains(kinds, audit.Kind(k)) {
			fail(c, http.StatusBadRequest, "parameter kind: %q is not one of http, connect, reverse, dns, admin", k)
			return q, nil, false
		}
		q.Kind = audit.Kind(k)
	}
	if q.Limit, ok = intParam(c, v, "limit", 1, maxLogLimit, 0); !ok {
		return q, nil, false
	}
	cur, err := DecodeCursor(v.Get("before"))
	if err != nil {
		fail(c, http.StatusBadRequest, "parameter before: %v", err)
		return q, nil, false
	}
	q.Before = cur
	return q, v, true
}

// eventJSON is an audit event as the API shows it. Every text in it came
// from the network: the pages that show it escape it (html/template,
// textContent), and encoding/json escapes <, > and &.
type eventJSON struct {
	ID          int64     `json:"id"`
	Time        time.Time `json:"time"`
	DurationMS  float64   `json:"duration_ms"`
	Kind        string    `json:"kind"`
	RequestID   string    `json:"request_id,omitempty"`
	Client      string    `json:"client,omitempty"`
	User        string    `json:"user,omitempty"`
	Groups      []string  `json:"groups,omitempty"`
	Method      string    `json:"method,omitempty"`
	Scheme      string    `json:"scheme,omitempty"`
	Host        string    `json:"host,omitempty"`
	Port        uint16    `json:"port,omitempty"`
	Path        string    `json:"path,omitempty"`
	Query       string    `json:"query,omitempty"`
	Status      int       `json:"status,omitempty"`
	BytesIn     int64     `json:"bytes_in"`
	BytesOut    int64     `json:"bytes_out"`
	Action      string    `json:"action,omitempty"`
	Rule        string    `json:"rule,omitempty"`
	Categories  []string  `json:"categories,omitempty"`
	Category    string    `json:"category,omitempty"`
	Entry       string    `json:"entry,omitempty"`
	Source      string    `json:"source,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Policy      string    `json:"policy,omitempty"`
	Cache       string    `json:"cache,omitempty"`
	Upstream    string    `json:"upstream,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Error       string    `json:"error,omitempty"`
	Detail      string    `json:"detail,omitempty"`
}

func eventView(e *audit.StoredEvent) eventJSON {
	return eventJSON{
		ID: e.ID, Time: e.Time, DurationMS: float64(e.Duration) / float64(time.Millisecond), Kind: string(e.Kind),
		RequestID: e.RequestID, Client: e.Client, User: e.User, Groups: e.Groups, Method: e.Method,
		Scheme: e.Scheme, Host: e.Host, Port: e.Port, Path: e.Path, Query: e.Query, Status: e.Status,
		BytesIn: e.BytesIn, BytesOut: e.BytesOut, Action: e.Action, Rule: e.Rule, Categories: e.Categories,
		Category: e.Category, Entry: e.Entry, Source: e.Source, Reason: e.Reason, Policy: e.Policy,
		Cache: e.Cache, Upstream: e.Upstream, UserAgent: e.UserAgent, ContentType: e.ContentType,
		Error: e.Error, Detail: e.Detail,
	}
}

// searchLogs is GET /api/v1/logs.
func (s *Server) searchLogs(c *gin.Context) {
	q, ok := parseLogQuery(c)
	if !ok {
		return
	}
	if s.opts.Logs == nil {
		unavailable(c, "log search")
		return
	}
	page, err := s.opts.Logs.Search(c.Request.Context(), q)
	if err != nil {
		s.internal(c, "searching the logs", err)
		return
	}
	events := make([]eventJSON, 0, len(page.Events))
	for i := range page.Events {
		events = append(events, eventView(&page.Events[i]))
	}
	out := gin.H{"events": events}
	if next := EncodeCursor(page.Next); next != "" {
		out["next"] = next
	}
	if page.Partial {
		// The search stopped at its budget: it looked at the events
		// newer than searched_to; next goes on from there.
		out["partial"] = true
		out["searched_to"] = page.Next.Time.UTC()
	}
	c.JSON(http.StatusOK, out)
}

type bucketJSON struct {
	Start    time.Time `json:"start"`
	Requests int64     `json:"requests"`
	Blocked  int64     `json:"blocked"`
	BytesIn  int64     `json:"bytes_in"`
	BytesOut int64     `json:"bytes_out"`
}

type countJSON struct {
	Key      string `json:"key"`
	Requests int64  `json:"requests"`
	Blocked  int64  `json:"blocked"`
	BytesIn  int64  `json:"bytes_in"`
	BytesOut int64  `json:"bytes_out"`
}

// statsDims are the top lists GET /api/v1/stats returns ("error": the
// causes of upstream failures).
var statsDims = []string{"host", "user", "category", "action", "error"}

// stats is GET /api/v1/stats?since=&until=&step=minute|hour&top=N. The
// range defaults to the last 24 hours, the step to hour, top to 10 (0
// leaves the top lists out).
func (s *Server) stats(c *gin.Context) {
	v, ok := queryParams(c, "since", "until", "step", "top")
	if !ok {
		return
	}
	since, until, ok := timeRange(c, v)
	if !ok {
		return
	}
	if until.IsZero() {
		until = s.now()
	}
	if since.IsZero() {
		since = until.Add(-24 * time.Hour)
	}
	if !since.Before(until) {
		fail(c, http.StatusBadRequest, "parameter since: must be before until (default: now)")
		return
	}
	var step time.Duration
	switch name := v.Get("step"); name {
	case "", "hour":
		step = time.Hour
	case "minute":
		step = time.Minute
	default:
		fail(c, http.StatusBadRequest, "parameter step: %q is not minute or hour", name)
		return
	}
	if n := until.Sub(since) / step; n > maxStatsSteps {
		fail(c, http.StatusBadRequest, "parameter step: %d steps between since and until, at most %d (use step=hour or a shorter range)", n, maxStatsSteps)
		return
	}
	top, ok := intParam(c, v, "top", 0, maxStatsTop, 10)
	if !ok {
		return
	}
	if s.opts.Stats == nil {
		unavailable(c, "statistics")
		return
	}
	ctx := c.Request.Context()
	series, err := s.opts.Stats.Series(ctx, step, since, until)
	if err != nil {
		s.internal(c, "computing the series", err)
		return
	}
	out := gin.H{"since": since, "until": until, "step": map[time.Duration]string{time.Hour: "hour", time.Minute: "minute"}[step]}
	buckets := make([]bucketJSON, 0, len(series))
	for _, b := range series {
		buckets = append(buckets, bucketJSON(b))
	}
	out["series"] = buckets
	if top > 0 {
		tops := map[string][]countJSON{}
		for _, dim := range statsDims {
			rows, err := s.opts.Stats.Top(ctx, dim, since, until, top)
			if err != nil {
				s.internal(c, "computing the top "+dim+"s", err)
				return
			}
			list := make([]countJSON, 0, len(rows))
			for _, r := range rows {
				list = append(list, countJSON(r))
			}
			tops[dim] = list
		}
		out["top"] = tops
	}
	c.JSON(http.StatusOK, out)
}

// parseExplain builds the ExplainRequest of GET /api/v1/explain the way
// the proxy would see the request (as `waygate filter test` does), and the
// URL to show (without credentials).
func (s *Server) parseExplain(c *gin.Context) (ExplainRequest, string, bool) {
	var r ExplainRequest
	v, ok := queryParams(c, "url", "client", "user", "method", "at")
	if !ok {
		return r, "", false
	}
	target := v.Get("url")
	if target == "" {
		fail(c, http.StatusBadRequest, "parameter url: required (the URL to explain)")
		return r, "", false
	}
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	u, err := url.Parse(target)
	switch {
	case err != nil:
		fail(c, http.StatusBadRequest, "parameter url: not a URL: %v", errors.Unwrap(err))
		return r, "", false
	case u.Scheme != "http" && u.Scheme != "https":
		fail(c, http.StatusBadRequest, "parameter url: scheme %q: the proxy carries http and https only", u.Scheme)
		return r, "", false
	case u.Hostname() == "":
		fail(c, http.StatusBadRequest, "parameter url: has no host")
		return r, "", false
	}
	r.Host, r.Path, r.User = u.Hostname(), u.EscapedPath(), v.Get("user")
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			fail(c, http.StatusBadRequest, "parameter url: invalid port %q", p)
			return r, "", false
		}
		r.Port = uint16(n)
	}
	r.Method = "GET"
	if m := v.Get("method"); m != "" {
		if len(m) > 20 || strings.IndexFunc(m, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') }) >= 0 {
			fail(c, http.StatusBadRequest, "parameter method: %q is not an HTTP method", m)
			return r, "", false
		}
		r.Method = strings.ToUpper(m)
	}
	if u.Scheme == "https" {
		// Without TLS inspection the proxy sees only CONNECT host:port.
		r.Method, r.Path = "CONNECT", ""
		if r.Port == 0 {
			r.Port = 443
		}
	}
	if cl := v.Get("client"); cl != "" {
		a, err := netip.ParseAddr(cl)
		if err != nil {
			fail(c, http.StatusBadRequest, "parameter client: %q is not an IP address", cl)
			return r, "", false
		}
		r.Client = a.Unmap()
	}
	r.Time = s.now()
	if at := v.Get("at"); at != "" {
		t, err := time.Parse(time.RFC3339Nano, at)
		for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04"} {
			if err != nil {
				t, err = time.Parse(layout, at)
			}
		}
		if err != nil {
			fail(c, http.StatusBadRequest, `parameter at: %q: want RFC 3339 (2026-11-30T10:00:00+01:00) or "2026-11-30 10:00" (UTC)`, at)
			return r, "", false
		}
		r.Time = t
	}
	u.User = nil // never echo credentials
	return r, u.String(), true
}

// explain is GET /api/v1/explain.
func (s *Server) explain(c *gin.Context) {
	r, shown, ok := s.parseExplain(c)
	if !ok {
		return
	}
	if s.opts.Explainer == nil {
		unavailable(c, "policy explanation")
		return
	}
	d, err := s.opts.Explainer.Explain(c.Request.Context(), r)
	if err != nil {
		s.internal(c, "explaining the decision", err)
		return
	}
	req := gin.H{"method": r.Method, "host": r.Host, "time": r.Time}
	if r.Port != 0 {
		req["port"] = r.Port
	}
	if r.Path != "" {
		req["path"] = r.Path
	}
	if r.Client.IsValid() {
		req["client"] = r.Client.String()
	}
	if r.User != "" {
		req["user"] = r.User
	}
	cats := d.Categories
	if cats == nil {
		cats = []string{}
	}
	dec := gin.H{
		"action": d.Action, "reason": d.Reason, "rule": d.Rule, "categories": cats,
		"category": d.Category, "entry": d.Entry, "source": d.Source,
		"policy_version": d.PolicyVersion, "host": d.Host,
	}
	if d.WarnFor != 0 {
		dec["warn_for"] = d.WarnFor.String()
	}
	c.JSON(http.StatusOK, gin.H{"url": shown, "request": req, "decision": dec})
}

// getPolicy is GET /api/v1/policy.
func (s *Server) getPolicy(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Policy == nil {
		unavailable(c, "policy editing")
		return
	}
	doc, err := s.opts.Policy.Policy(c.Request.Context())
	if err != nil {
		s.internal(c, "reading the policy", err)
		return
	}
	if doc.Categories == nil {
		doc.Categories = []PolicyCategory{}
	}
	if doc.Rules == nil {
		doc.Rules = []PolicyRule{}
	}
	c.JSON(http.StatusOK, doc)
}

// putPolicy is PUT /api/v1/policy (admin): validate, then save.
func (s *Server) putPolicy(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Policy == nil {
		unavailable(c, "policy editing")
		return
	}
	var doc PolicyDoc
	if !decodeJSON(c, &doc) {
		return
	}
	ctx := c.Request.Context()
	if problems := s.opts.Policy.Validate(ctx, doc); len(problems) > 0 {
		c.AbortWithStatusJSON(http.StatusUnprocessableEntity, gin.H{"error": "invalid policy", "problems": problems})
		return
	}
	p := who(c)
	version, err := s.opts.Policy.Save(ctx, p.User, doc)
	detail, _ := json.Marshal(map[string]any{"version": version, "previous": doc.Version,
		"categories": len(doc.Categories), "groups": len(doc.Groups), "rules": len(doc.Rules)})
	var invalid *InvalidPolicyError
	switch {
	case errors.Is(err, ErrConflict):
		s.record(c, p.User, "policy_save", http.StatusConflict, "conflict", string(detail))
		fail(c, http.StatusConflict, "the policy has changed since version %q was read: load it again and redo the change", doc.Version)
		return
	case errors.As(err, &invalid):
		s.record(c, p.User, "policy_save", http.StatusUnprocessableEntity, clip(err.Error(), 1024), string(detail))
		problems := invalid.Problems
		if problems == nil {
			problems = []Problem{}
		}
		c.AbortWithStatusJSON(http.StatusUnprocessableEntity, gin.H{"error": "invalid policy", "problems": problems})
		return
	case err != nil:
		s.record(c, p.User, "policy_save", http.StatusInternalServerError, clip(err.Error(), 1024), string(detail))
		s.internal(c, "saving the policy", err)
		return
	}
	s.record(c, p.User, "policy_save", http.StatusOK, "", string(detail))
	c.JSON(http.StatusOK, gin.H{"version": version})
}
