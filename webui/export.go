package webui

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// exportPageSize is how many events an export reads per search: the
// export never holds more than one page.
const exportPageSize = 1000

// exportColumns are the CSV columns of an export, in order.
var exportColumns = []string{"time", "duration_ms", "kind", "request_id", "client", "user", "groups",
	"method", "scheme", "host", "port", "path", "query", "status", "bytes_in", "bytes_out", "action",
	"rule", "categories", "category", "entry", "source", "reason", "policy", "cache", "upstream",
	"user_agent", "content_type", "error", "detail"}

// exportLogs is GET /api/v1/logs/export?format=csv|jsonl and the filters
// of /api/v1/logs (without limit and before): every matching event,
// newest first, streamed page by page, as a download. The export is an
// admin action of its own.
func (s *Server) exportLogs(c *gin.Context) {
	q, v, ok := parseLogQueryWith(c, "format")
	if !ok {
		return
	}
	format := v.Get("format")
	if format != "csv" && format != "jsonl" {
		fail(c, http.StatusBadRequest, "parameter format: want csv or jsonl, not %q", clip(format, 32))
		return
	}
	if q.Limit != 0 || q.Before.ID != 0 || !q.Before.Time.IsZero() {
		fail(c, http.StatusBadRequest, "an export takes every matching event: leave out limit and before")
		return
	}
	if s.opts.Logs == nil {
		unavailable(c, "log search")
		return
	}
	ctx := c.Request.Context()
	q.Limit = exportPageSize
	first, err := s.opts.Logs.Search(ctx, q)
	if err != nil {
		s.internal(c, "exporting the logs", err)
		return
	}
	stamp := s.now().UTC().Format("20060102-150405")
	h := c.Writer.Header()
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="waygate-logs-%s.%s"`, stamp, format))
	c.Status(http.StatusOK)

	cw := csv.NewWriter(c.Writer)
	enc := json.NewEncoder(c.Writer)
	if format == "csv" {
		cw.Write(exportColumns)
	}
	var n int
	page := first
	for {
		for i := range page.Events {
			ev := eventView(&page.Events[i])
			if format == "csv" {
				err = cw.Write(exportRecord(&ev))
			} else {
				err = enc.Encode(ev)
			}
			if err != nil {
				break
			}
			n++
		}
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
		if err != nil || page.Next == (LogCursor{}) || ctx.Err() != nil {
			break
		}
		c.Writer.Flush()
		q.Before = page.Next
		if page, err = s.opts.Logs.Search(ctx, q); err != nil {
			break
		}
	}
	p := who(c)
	detail, _ := json.Marshal(map[string]any{"format": format, "events": n, "query": c.Request.URL.RawQuery})
	status, errText := http.StatusOK, ""
	if err != nil || ctx.Err() != nil {
		// Headers are out: the download ends short, and the record says so.
		status, errText = http.StatusInternalServerError, "export cut short"
		s.log.Warn("webui: log export cut short", "user", p.User, "events", n, "error", err)
	}
	s.record(c, p.User, "export", status, errText, string(detail))
}

// exportRecord is the CSV row of ev. A cell a spreadsheet would take for
// a formula (=, +, -, @, tab or CR first) gets a leading apostrophe: every
// text here came from the network.
func exportRecord(ev *eventJSON) []string {
	cells := []string{
		ev.Time.UTC().Format(time.RFC3339Nano), strconv.FormatFloat(ev.DurationMS, 'f', -1, 64), ev.Kind,
		ev.RequestID, ev.Client, ev.User, strings.Join(ev.Groups, ","), ev.Method, ev.Scheme, ev.Host,
		strconv.Itoa(int(ev.Port)), ev.Path, ev.Query, strconv.Itoa(ev.Status),
		strconv.FormatInt(ev.BytesIn, 10), strconv.FormatInt(ev.BytesOut, 10), ev.Action, ev.Rule,
		strings.Join(ev.Categories, ","), ev.Category, ev.Entry, ev.Source, ev.Reason, ev.Policy, ev.Cache,
		ev.Upstream, ev.UserAgent, ev.ContentType, ev.Error, ev.Detail,
	}
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) && !isNumber(c) {
			cells[i] = "'" + c
		}
	}
	return cells
}

// isNumber reports whether s is a plain number (a negative one is not a
// formula).
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
