package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"waygate/audit"
)

// Limits and timing of the live event stream, GET /api/v1/events.
const (
	// maxStreams is how many streams a Server serves at once; more get
	// 503.
	maxStreams = 32
	// streamBuffer is the events a stream may fall behind by before it
	// loses some (and is told so with a dropped event).
	streamBuffer = 256
	// keepAliveInterval is how often an idle stream gets a comment, so
	// that proxies and browsers do not time it out.
	keepAliveInterval = 15 * time.Second
)

// streams keeps count of a Server's event streams and ends them on
// CloseStreams.
type streams struct {
	// keepAlive, buffer and max are keepAliveInterval, streamBuffer and
	// maxStreams; fields so that tests can change them before serving.
	keepAlive time.Duration
	buffer    int
	max       int
	// subscribed, when set (by tests only), is called by each stream
	// right after it subscribed and before it reads any event.
	subscribed func()

	mu     sync.Mutex
	open   int
	closed bool
	done   chan struct{} // closed by CloseStreams
}

func newStreams() *streams {
	return &streams{keepAlive: keepAliveInterval, buffer: streamBuffer, max: maxStreams, done: make(chan struct{})}
}

// acquire takes a place for a stream, or says why there is none.
func (st *streams) acquire() (ok bool, why string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.closed:
		return false, "the server is shutting down"
	case st.open >= st.max:
		return false, fmt.Sprintf("too many live event streams open (at most %d): close one and retry", st.max)
	}
	st.open++
	return true, ""
}

func (st *streams) release() {
	st.mu.Lock()
	st.open--
	st.mu.Unlock()
}

// CloseStreams ends every open live event stream (GET /api/v1/events) and
// makes new ones answer 503. Streams do not end on their own, so
// http.Server.Shutdown would wait for them until its context expires:
// register CloseStreams with the admin http.Server's RegisterOnShutdown.
// Calling it again does nothing.
func (s *Server) CloseStreams() {
	st := s.streams
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.closed {
		st.closed = true
		close(st.done)
	}
}

// eventFilter selects the events of a stream; empty fields do not filter.
// The fields mean what the same parameters of /api/v1/logs mean.
type eventFilter struct {
	kind               audit.Kind
	action, host, user string
}

func (f *eventFilter) match(e *audit.Event) bool {
	return (f.kind == "" || e.Kind == f.kind) && (f.action == "" || e.Action == f.action) &&
		(f.host == "" || e.Host == f.host) && (f.user == "" || e.User == f.user)
}

// streamEvents is GET /api/v1/events?kind=&action=&host=&user=: audit
// events as they are recorded, as Server-Sent Events. Each event is
//
//	event: audit
//	data: <the event as /api/v1/logs shows it, with id 0>
//
// An idle stream gets a ": keep-alive" comment every 15 seconds. When the
// client fell behind and lost events, it gets
//
//	event: dropped
//	data: {"dropped":N}
//
// with N the events lost since the last such notice (counted before
// filtering, so some may be events the filter would have left out). The
// stream ends when the client goes away or the server shuts down
// (CloseStreams).
func (s *Server) streamEvents(c *gin.Context) {
	v, ok := queryParams(c, "kind", "action", "host", "user")
	if !ok {
		return
	}
	f := eventFilter{action: v.Get("action"), host: v.Get("host"), user: v.Get("user")}
	if k := v.Get("kind"); k != "" {
		if !slices.Contains(kinds, audit.Kind(k)) {
			fail(c, http.StatusBadRequest, "parameter kind: %q is not one of http, connect, reverse, dns, admin", k)
			return
		}
		f.kind = audit.Kind(k)
	}
	if s.opts.Events == nil {
		unavailable(c, "the live event stream")
		return
	}
	st := s.streams
	if ok, why := st.acquire(); !ok {
		fail(c, http.StatusServiceUnavailable, "%s", why)
		return
	}
	defer st.release()
	events, dropped, cancel := s.opts.Events.Subscribe(st.buffer)
	defer cancel()
	if st.subscribed != nil {
		st.subscribed()
	}

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	c.Writer.Flush() // sends the headers: the client knows it is subscribed

	w := c.Writer
	send := func(frame []byte) bool {
		if _, err := w.Write(frame); err != nil {
			return false
		}
		w.Flush()
		return true
	}
	var reported uint64
	reportDrops := func() bool {
		d := dropped()
		if d <= reported {
			return true
		}
		n := d - reported
		reported = d
		return send(fmt.Appendf(nil, "event: dropped\ndata: {\"dropped\":%d}\n\n", n))
	}

	ticker := time.NewTicker(st.keepAlive)
	defer ticker.Stop()
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.done:
			return
		case <-ticker.C:
			if !reportDrops() || !send([]byte(": keep-alive\n\n")) {
				return
			}
		case e, ok := <-events:
			if !ok {
				return
			}
			if f.match(&e) {
				data, err := json.Marshal(eventView(&audit.StoredEvent{Event: e}))
				if err != nil {
					s.log.Error("webui: encoding a live event", "error", err)
					continue
				}
				frame := make([]byte, 0, len(data)+32)
				frame = append(frame, "event: audit\ndata: "...)
				frame = append(frame, data...)
				frame = append(frame, "\n\n"...)
				if !send(frame) {
					return
				}
			}
			// Report losses once the backlog is read: they are of events
			// newer than those that were in it.
			if len(events) == 0 && !reportDrops() {
				return
			}
		}
	}
}
