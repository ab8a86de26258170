package proxy_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

const bigSize = 200 << 20

// generator returns a reader of n pseudo-random bytes that never holds
// more than its small state.
func generator(seed uint64, n int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// hideLen hides the type of r so that net/http cannot learn the length
// and must send the body chunked.
type hideLen struct{ r io.Reader }

func (h hideLen) Read(p []byte) (int, error) { return h.r.Read(p) }

// hashOf returns the hex SHA-256 and length of r.
func hashOf(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// sumOf is hashOf for the test goroutine.
func sumOf(t testing.TB, r io.Reader) (string, int64) {
	t.Helper()
	sum, n, err := hashOf(r)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	return sum, n
}

// heapSampler records the peak heap in use while a transfer runs.
type heapSampler struct {
	baseline uint64
	stop     chan struct{}
	done     chan uint64
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapSampler{baseline: ms.HeapInuse, stop: make(chan struct{}), done: make(chan uint64, 1)}
	go func() {
		peak := ms.HeapInuse
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		// Bounded: at most ~2 minutes of samples.
		for range 6000 {
			select {
			case <-h.stop:
				h.done <- peak
				return
			case <-tick.C:
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
		<-h.stop
		h.done <- peak
	}()
	return h
}

// check stops the sampler and fails if the heap grew by more than limit.
func (h *heapSampler) check(t testing.TB, limit uint64) {
	t.Helper()
	close(h.stop)
	peak := <-h.done
	growth := int64(peak) - int64(h.baseline)
	t.Logf("heap in use: baseline %d MiB, peak %d MiB", h.baseline>>20, peak>>20)
	if growth > int64(limit) {
		t.Errorf("heap grew by %d MiB during the transfer (limit %d MiB): body buffered?", growth>>20, limit>>20)
	}
}

func TestStreamLargeDownload(t *testing.T) {
	e := newEnv(t)
	e.handle("/big", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(bigSize))
		io.Copy(w, generator(1, bigSize))
	}))
	want, _ := sumOf(t, generator(1, bigSize))

	heap := startHeapSampler()
	resp, err := e.client().Get(e.origin.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got, n := sumOf(t, resp.Body)
	heap.check(t, 64<<20)
	if n != bigSize || got != want {
		t.Fatalf("got %d bytes sha256 %s, want %d bytes %s", n, got, bigSize, want)
	}
}

func TestStreamLargeUpload(t *testing.T) {
	e := newEnv(t)
	e.handle("/sink", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		te := strings.Join(r.TransferEncoding, ",")
		sum, n, err := hashOf(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, te+" "+strconv.FormatInt(n, 10)+" "+sum)
	}))
	want, _ := sumOf(t, generator(2, bigSize))

	heap := startHeapSampler()
	req, _ := http.NewRequest("POST", e.origin.URL+"/sink", hideLen{generator(2, bigSize)})
	if req.ContentLength != 0 || req.Body == nil {
		t.Fatal("request length is known; the body would not be chunked")
	}
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	heap.check(t, 64<<20)
	if got, exp := string(body), "chunked "+strconv.Itoa(bigSize)+" "+want; got != exp {
		t.Fatalf("origin got %q, want %q", got, exp)
	}
}

func TestChunkedAndTrailers(t *testing.T) {
	e := newEnv(t)
	e.handle("/chunks", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("X-Request-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-Request-Trailer", r.Trailer.Get("X-Req-Sum"))
		f := w.(http.Flusher)
		for _, part := range []string{"first|", "second|", string(body)} {
			io.WriteString(w, part)
			f.Flush()
		}
		w.Header().Set("X-Checksum", "abc123")
	}))

	c := e.dial()
	io.WriteString(c, "POST "+e.origin.URL+"/chunks HTTP/1.1\r\nHost: "+e.origin.Listener.Addr().String()+"\r\n"+
		"Transfer-Encoding: chunked\r\nTrailer: X-Req-Sum\r\nTE: trailers\r\n\r\n"+
		"5\r\nhello\r\n1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\nX-Req-Sum: s1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != "first|second|hello 0123456789abcdef" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Request-TE"); got != "chunked" {
		t.Errorf("origin saw request Transfer-Encoding %q, want chunked", got)
	}
	if got := resp.TransferEncoding; len(got) != 1 || got[0] != "chunked" {
		t.Errorf("response Transfer-Encoding %v, want chunked", got)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("response trailer X-Checksum = %q (trailers %v)", got, resp.Trailer)
	}
	if got := resp.Header.Get("X-Request-Trailer"); got != "s1" {
		t.Errorf("origin got request trailer X-Req-Sum = %q, want s1", got)
	}
}

func TestExpectContinue(t *testing.T) {
	e := newEnv(t)
	c := e.dial()
	br := bufio.NewReader(c)
	const body = "the body after 100"
	io.WriteString(c, "POST "+e.origin.URL+"/echo HTTP/1.1\r\nHost: "+e.origin.Listener.Addr().String()+"\r\n"+
		"Expect: 100-continue\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusContinue {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("want 100 Continue before the body, got %d %q", resp.StatusCode, b)
	}
	io.WriteString(c, body)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != "POST "+body {
		t.Fatalf("got %d %q", resp.StatusCode, got)
	}
	e.lastSeen()
}

func TestKeepAlive(t *testing.T) {
	e := newEnv(t)
	var originConns atomic.Int32
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	origin.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			originConns.Add(1)
		}
	}
	origin.Start()
	t.Cleanup(origin.Close)

	t.Run("origin pool", func(t *testing.T) {
		c := e.client()
		for i := range 5 {
			resp, err := c.Get(origin.URL + "/" + strconv.Itoa(i))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "ok /"+strconv.Itoa(i) {
				t.Fatalf("body %q", body)
			}
		}
		if n := originConns.Load(); n != 1 {
			t.Errorf("5 sequential requests opened %d origin connections, want 1", n)
		}
	})

	t.Run("client connection", func(t *testing.T) {
		c := e.dial()
		br := bufio.NewReader(c)
		host := origin.Listener.Addr().String()
		for i := range 3 {
			path := "/raw" + strconv.Itoa(i)
			io.WriteString(c, "GET "+origin.URL+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d on the same connection: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "ok "+path || resp.Close {
				t.Fatalf("request %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
			}
		}
	})
}

func TestServerSentEvents(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	e.handle("/events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second):
			return
		}
		io.WriteString(w, "data: two\n\n")
	}))

	resp, err := e.client().Get(e.origin.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent := func() string {
		t.Helper()
		ch := make(chan string, 1)
		go func() {
			var ev []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					ch <- "error: " + err.Error()
					return
				}
				if line == "\n" {
					ch <- strings.Join(ev, "")
					return
				}
				ev = append(ev, strings.TrimSuffix(line, "\n"))
			}
		}()
		select {
		case ev := <-ch:
			return ev
		case <-time.After(10 * time.Second):
			resp.Body.Close()
			t.Fatal("event not delivered while the origin holds the stream open: the proxy buffers")
			return ""
		}
	}
	if ev := readEvent(); ev != "data: one" {
		t.Fatalf("first event %q", ev)
	}
	close(release)
	if ev := readEvent(); ev != "data: two" {
		t.Fatalf("second event %q", ev)
	}
}

// wsEcho is a WebSocket server that echoes each text message and answers
// a close frame with one. It accepts clients without Origin.
var wsEcho = websocket.Server{Handler: func(ws *websocket.Conn) {
	defer ws.Close()
	for {
		var msg string
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			return
		}
		if err := websocket.Message.Send(ws, msg); err != nil {
			return
		}
	}
}}

// writeWSFrame writes one masked client frame.
func writeWSFrame(t testing.TB, w io.Writer, opcode byte, payload []byte) {
	t.Helper()
	hdr := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, 0x80|127), uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	hdr = append(hdr, key[:]...)
	masked := make([]byte, len(payload))
	for i, b := range payload {
		masked[i] = b ^ key[i%4]
	}
	if _, err := w.Write(append(hdr, masked...)); err != nil {
		t.Fatal(err)
	}
}

// readWSFrame reads one unmasked server frame.
func readWSFrame(t testing.TB, r io.Reader) (opcode byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("reading frame: %v", err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		t.Fatalf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("reading frame payload: %v", err)
	}
	return h[0] & 0x0f, payload
}

func TestWebSocketPlain(t *testing.T) {
	e := newEnv(t)
	e.handle("/ws", wsEcho)
	c := e.dial()
	br := bufio.NewReader(c)
	host := e.origin.Listener.Addr().String()
	io.WriteString(c, "GET "+e.origin.URL+"/ws HTTP/1.1\r\nHost: "+host+"\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("Sec-WebSocket-Accept = %q", got)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Errorf("Upgrade = %q", resp.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 300), "bye"} {
		writeWSFrame(t, c, 0x1, []byte(msg))
		op, got := readWSFrame(t, br)
		if op != 0x1 || string(got) != msg {
			t.Fatalf("echo: opcode %d, %d bytes %.20q, want %.20q", op, len(got), got, msg)
		}
	}
	// Close: the origin answers with a close frame and hangs up; the proxy
	// must then close our connection and forget it.
	writeWSFrame(t, c, 0x8, []byte{0x03, 0xe8})
	if op, _ := readWSFrame(t, br); op != 0x8 {
		t.Fatalf("want close frame, got opcode %d", op)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("proxy sent more after the close frame")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("proxy did not close the client connection after the origin closed the WebSocket")
	}
	eventually(t, "the proxy to drop the client connection", func() bool { return e.srv.Stats().Connections == 0 })

	// A client that hangs up without a close frame is forgotten too.
	c2 := e.dial()
	br2 := bufio.NewReader(c2)
	io.WriteString(c2, "GET "+e.origin.URL+"/ws HTTP/1.1\r\nHost: "+host+"\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if resp, err := http.ReadResponse(br2, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("second upgrade: %v %v", resp, err)
	}
	writeWSFrame(t, c2, 0x1, []byte("again"))
	if _, got := readWSFrame(t, br2); string(got) != "again" {
		t.Fatalf("echo %q", got)
	}
	c2.Close()
	eventually(t, "the proxy to drop the hung-up client connection", func() bool { return e.srv.Stats().Connections == 0 })
}

func TestWebSocketInConnect(t *testing.T) {
	e := newEnv(t)
	e.handle("/ws", wsEcho)
	target := e.tls.Listener.Addr().String()
	conn, resp := e.connect(target, "")
	if conn == nil {
		t.Fatalf("CONNECT: %s", resp.Status)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	tc := e.tlsOver(conn, "127.0.0.1")
	cfg, err := websocket.NewConfig("wss://"+target+"/ws", "https://client.test/")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, tc)
	if err != nil {
		t.Fatalf("WebSocket handshake through the tunnel: %v", err)
	}
	defer ws.Close()
	for _, msg := range []string{"ping", strings.Repeat("y", 70000)} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Fatalf("echo: %d bytes, want %d", len(got), len(msg))
		}
	}
}

func TestH2CUpgradeNotForwarded(t *testing.T) {
	e := newEnv(t)
	resp, body := e.raw("GET " + e.origin.URL + "/ HTTP/1.1\r\nHost: " + e.origin.Listener.Addr().String() + "\r\n" +
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if resp.StatusCode != 200 || body != "hello from origin" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Upgrade") != "" || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		t.Errorf("response %s Upgrade %q, want a plain HTTP/1.1 200", resp.Proto, resp.Header.Get("Upgrade"))
	}
	h := e.lastSeen()
	for _, k := range []string{"Upgrade", "Connection", "Http2-Settings"} {
		if v := h.Get(k); v != "" {
			t.Errorf("origin got %s: %q", k, v)
		}
	}
}
