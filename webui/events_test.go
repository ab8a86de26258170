package webui

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"waygate/audit"
)

// streamEnv is an env served by an httptest.Server, with a real
// audit.Broadcaster as its event stream.
type streamEnv struct {
	*env
	b     *audit.Broadcaster
	ts    *httptest.Server
	token string // a read-only auditor token
}

// newStreamEnv builds a streamEnv; mod may change the stream settings
// before anything is served.
func newStreamEnv(t *testing.T, mod func(*streams)) *streamEnv {
	t.Helper()
	b := audit.NewBroadcaster(nil)
	e := newEnv(t, func(o *Options) { o.Events = b })
	if mod != nil {
		mod(e.srv.streams)
	}
	ts := httptest.NewServer(e.h)
	t.Cleanup(ts.Close)
	t.Cleanup(e.srv.CloseStreams) // runs first: lets ts.Close finish
	return &streamEnv{env: e, b: b, ts: ts, token: e.token("audrey", true, e.clock.Now().Add(time.Hour))}
}

// frame is one Server-Sent Events frame.
type frame struct{ event, data, comment string }

// stream is an open GET /api/v1/events.
type stream struct {
	resp   *http.Response
	frames chan frame // closed at the end of the body
	cancel context.CancelFunc
}

// open requests the stream with query (e.g. "?kind=dns") and auth set by
// setAuth; it returns the response, and when it is 200 the stream.
func (se *streamEnv) open(t *testing.T, query string, setAuth func(*http.Request)) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, err := http.NewRequestWithContext(ctx, "GET", se.ts.URL+"/api/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if setAuth != nil {
		setAuth(hr)
	}
	resp, err := se.ts.Client().Do(hr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &stream{resp: resp, cancel: cancel, frames: make(chan frame)}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		close(s.frames)
		return s
	}
	go func() {
		defer close(s.frames)
		sc := bufio.NewScanner(resp.Body)
		var f frame
		empty := true
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if !empty {
					select {
					case s.frames <- f:
					case <-ctx.Done():
						return
					}
				}
				f, empty = frame{}, true
				continue
			case strings.HasPrefix(line, ":"):
				f.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				f.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				f.data += strings.TrimPrefix(line, "data: ")
			default:
				f.event = "malformed line " + strconv.Quote(line)
			}
			empty = false
		}
	}()
	return s
}

func (se *streamEnv) bearer(hr *http.Request) { hr.Header.Set("Authorization", "Bearer "+se.token) }

// next returns the next frame, failing after a bounded wait or at the end.
func (s *stream) next(t *testing.T) frame {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			t.Fatal("stream ended")
		}
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5s")
	}
	panic("unreachable")
}

// nextEvent skips keep-alive comments.
func (s *stream) nextEvent(t *testing.T) frame {
	t.Helper()
	for {
		if f := s.next(t); f.comment == "" {
			return f
		}
	}
}

// eventOf decodes an audit frame.
func eventOf(t *testing.T, f frame) eventJSON {
	t.Helper()
	if f.event != "audit" {
		t.Fatalf("frame %+v, want an audit event", f)
	}
	var ev eventJSON
	if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
		t.Fatalf("data %q: %v", f.data, err)
	}
	return ev
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (st *streams) count() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.open
}

func TestEventsNeedCredentials(t *testing.T) {
	se := newStreamEnv(t, nil)
	found := false
	for _, r := range se.srv.engine.Routes() {
		found = found || (r.Method == "GET" && r.Path == "/api/v1/events")
	}
	if !found {
		t.Fatal("no route GET /api/v1/events")
	}
	for name, auth := range map[string]func(*http.Request){
		"none":           nil,
		"unknown bearer": func(hr *http.Request) { hr.Header.Set("Authorization", "Bearer "+TokenPrefix+randomString(32)) },
		"unknown cookie": func(hr *http.Request) { hr.AddCookie(&http.Cookie{Name: CookieName, Value: randomString(32)}) },
	} {
		s := se.open(t, "", auth)
		if s.resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s", name, s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
		}
	}
	if n := se.srv.streams.count(); n != 0 {
		t.Errorf("%d streams open", n)
	}
}

func TestEventsStream(t *testing.T) {
	se := newStreamEnv(t, nil)
	cookie, _ := se.login("audrey") // auditors may watch
	s := se.open(t, "", func(hr *http.Request) { hr.AddCookie(&http.Cookie{Name: CookieName, Value: cookie}) })
	if s.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", s.resp.StatusCode)
	}
	for k, v := range map[string]string{
		"Content-Type":            "text/event-stream",
		"Cache-Control":           "no-store",
		"X-Accel-Buffering":       "no",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": contentSecurityPolicy,
	} {
		if got := s.resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		se.b.Record(&audit.Event{Time: at, Kind: audit.KindHTTP, RequestID: strconv.Itoa(i),
			Host: "<script>x</script>.example", User: "bob\n", Duration: 1500 * time.Microsecond, Categories: []string{"a&b"}})
	}
	for i := range 5 {
		f := s.nextEvent(t)
		if strings.ContainsAny(f.data, "<>&") {
			t.Errorf("data not escaped: %s", f.data)
		}
		ev := eventOf(t, f)
		if ev.RequestID != strconv.Itoa(i) || ev.Kind != "http" || ev.Host != "<script>x</script>.example" ||
			ev.User != "bob\n" || ev.DurationMS != 1.5 || !ev.Time.Equal(at) || ev.ID != 0 ||
			len(ev.Categories) != 1 || ev.Categories[0] != "a&b" {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
}

func TestEventsFilters(t *testing.T) {
	se := newStreamEnv(t, nil)
	s := se.open(t, "?kind=dns&user=bob&host=a.example&action=block", se.bearer)
	if s.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", s.resp.StatusCode)
	}
	match := audit.Event{Kind: audit.KindDNS, User: "bob", Host: "a.example", Action: "block"}
	var others []audit.Event
	for _, mod := range []func(*audit.Event){
		func(e *audit.Event) { e.Kind = audit.KindHTTP },
		func(e *audit.Event) { e.User = "Bob" },
		func(e *audit.Event) { e.User = "" },
		func(e *audit.Event) { e.Host = "www.a.example" },
		func(e *audit.Event) { e.Action = "allow" },
	} {
		e := match
		mod(&e)
		others = append(others, e)
	}
	for i := range 3 {
		for _, o := range others {
			o.RequestID = "other"
			se.b.Record(&o)
		}
		e := match
		e.RequestID = strconv.Itoa(i)
		se.b.Record(&e)
	}
	for i := range 3 {
		if ev := eventOf(t, s.nextEvent(t)); ev.RequestID != strconv.Itoa(i) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
}

func TestEventsBadRequests(t *testing.T) {
	se := newStreamEnv(t, nil)
	for query, param := range map[string]string{
		"?kind=nope":     "kind",
		"?kind=DNS":      "kind",
		"?user=%ff":      "user",
		"?host=a&host=b": "host",
		"?action=" + strings.Repeat("x", maxParamLen+1): "action",
		"?since=2026-03-01":                             "since",
	} {
		w := se.do(req{method: "GET", path: "/api/v1/events" + query, bearer: se.token})
		if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w), param) {
			t.Errorf("%.40s: %d %s", query, w.Code, w.Body)
		}
	}
	// Not configured: 503, like the other optional dependencies.
	e := newEnv(t, nil)
	w := e.do(req{method: "GET", path: "/api/v1/events", bearer: e.token("alice", false, e.clock.Now().Add(time.Hour))})
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("without Events: %d %s", w.Code, w.Body)
	}
	errorOf(t, w)
}

func TestEventsKeepAlive(t *testing.T) {
	se := newStreamEnv(t, func(st *streams) { st.keepAlive = 10 * time.Millisecond })
	s := se.open(t, "", se.bearer)
	for range 2 {
		if f := s.next(t); f.comment != "keep-alive" || f.event != "" || f.data != "" {
			t.Fatalf("frame %+v, want the keep-alive comment", f)
		}
	}
}

func TestEventsDropped(t *testing.T) {
	const buffer, burst = 4, 10
	var se *streamEnv
	se = newStreamEnv(t, func(st *streams) {
		st.buffer = buffer
		// Overflow the stream's buffer before it reads anything.
		st.subscribed = func() {
			for i := range burst {
				se.b.Record(&audit.Event{Kind: audit.KindHTTP, RequestID: strconv.Itoa(i)})
			}
		}
	})
	s := se.open(t, "", se.bearer)
	for i := range buffer {
		if ev := eventOf(t, s.nextEvent(t)); ev.RequestID != strconv.Itoa(i) {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	f := s.nextEvent(t)
	if f.event != "dropped" || f.data != `{"dropped":6}` {
		t.Fatalf("frame %+v, want dropped 6", f)
	}
	// Later events flow again, with no further notice.
	se.b.Record(&audit.Event{Kind: audit.KindHTTP, RequestID: "after"})
	if ev := eventOf(t, s.nextEvent(t)); ev.RequestID != "after" {
		t.Fatalf("after the notice: %+v", ev)
	}
}

func TestEventsStreamLimit(t *testing.T) {
	se := newStreamEnv(t, nil)
	var open []*stream
	for i := range maxStreams {
		s := se.open(t, "", se.bearer)
		if s.resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", i+1, s.resp.StatusCode)
		}
		open = append(open, s)
	}
	s := se.open(t, "", se.bearer)
	if s.resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream %d: %d, want 503", maxStreams+1, s.resp.StatusCode)
	}
	var body struct{ Error string }
	if err := json.NewDecoder(s.resp.Body).Decode(&body); err != nil || !strings.Contains(body.Error, "too many") {
		t.Errorf("503 body %+v %v", body, err)
	}
	// Every open stream still works.
	se.b.Record(&audit.Event{Kind: audit.KindDNS, RequestID: "all"})
	for _, s := range open {
		if ev := eventOf(t, s.nextEvent(t)); ev.RequestID != "all" {
			t.Fatalf("%+v", ev)
		}
	}
	// Closing one makes room.
	open[0].cancel()
	waitFor(t, "the closed stream's place", func() bool { return se.srv.streams.count() < maxStreams })
	if s := se.open(t, "", se.bearer); s.resp.StatusCode != http.StatusOK {
		t.Fatalf("after closing one: %d", s.resp.StatusCode)
	}
}

func TestEventsEndWithClientAndServer(t *testing.T) {
	se := newStreamEnv(t, nil)
	s := se.open(t, "", se.bearer)
	if got := se.srv.streams.count(); got != 1 {
		t.Fatalf("%d streams open", got)
	}
	s.cancel() // the client goes away
	waitFor(t, "the handler to return", func() bool { return se.srv.streams.count() == 0 })
	se.b.Record(&audit.Event{}) // nobody left to receive it; must not block

	// Shutting down ends the open streams and refuses new ones.
	s = se.open(t, "", se.bearer)
	se.srv.CloseStreams()
	select {
	case _, ok := <-s.frames:
		if ok {
			t.Fatal("frame after CloseStreams")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream not ended by CloseStreams")
	}
	waitFor(t, "the handler to return", func() bool { return se.srv.streams.count() == 0 })
	if s := se.open(t, "", se.bearer); s.resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after CloseStreams: %d", s.resp.StatusCode)
	}
	se.srv.CloseStreams() // again: harmless
}
