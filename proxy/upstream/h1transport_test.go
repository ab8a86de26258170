package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// h1Fallback counts the requests routed to it and answers 299.
type h1Fallback struct{ n atomic.Int32 }

func (f *h1Fallback) RoundTrip(req *http.Request) (*http.Response, error) {
	f.n.Add(1)
	return &http.Response{StatusCode: 299, Body: http.NoBody, Request: req, Header: http.Header{}}, nil
}

// h1NoFallback fails the test if anything is routed away from H1Transport.
type h1NoFallback struct{ t testing.TB }

func (f h1NoFallback) RoundTrip(req *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected fallback for %s %s", req.Method, req.URL)
	return nil, errors.New("unexpected fallback")
}

func newH1(t testing.TB) *H1Transport {
	var d net.Dialer
	tr := &H1Transport{Dial: d.DialContext, Fallback: h1NoFallback{t}}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// h1Payload is the deterministic body served for /data?n=N&seed=S.
func h1Payload(n int, seed string) string {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		sb.WriteString(seed)
		sb.WriteString(strconv.Itoa(i))
		sb.WriteByte(' ')
	}
	return sb.String()[:n]
}

// h1Origin is an httptest server on 127.0.0.1 that counts connections.
type h1Origin struct {
	*httptest.Server
	conns atomic.Int32
}

func newH1Origin(t testing.TB, h http.Handler) *h1Origin {
	o := &h1Origin{}
	o.Server = httptest.NewUnstartedServer(h)
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

// h1Mux serves the endpoints most tests use.
func h1Mux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := h1Payload(n, r.URL.Query().Get("seed"))
		if r.URL.Query().Get("chunked") != "" {
			// Flushing before the end makes the server use chunked coding.
			half := len(body) / 2
			io.WriteString(w, body[:half])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[half:])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/trailer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "with trailer")
		w.Header().Set("X-Sum", "42")
	})
	mux.HandleFunc("/early-hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		_, hasUA := r.Header["User-Agent"]
		fmt.Fprintf(w, "host=%s ua=%v method=%s uri=%s", r.Host, hasUA, r.Method, r.RequestURI)
	})
	return mux
}

func h1Get(t testing.TB, tr http.RoundTripper, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatalf("closing body: %v", err)
	}
	return resp, string(b)
}

func (t *H1Transport) idleCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nIdle
}

func TestH1KeepAliveReuse(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	for i := range 50 {
		seed := "s" + strconv.Itoa(i)
		n := 1 + i*97
		resp, body := h1Get(t, tr, "GET", o.URL+"/data?n="+strconv.Itoa(n)+"&seed="+seed)
		if resp.StatusCode != 200 || body != h1Payload(n, seed) {
			t.Fatalf("request %d: status %d, body %q", i, resp.StatusCode, body)
		}
	}
	if n := o.conns.Load(); n != 1 {
		t.Fatalf("server saw %d connections, want 1", n)
	}
	if n := tr.idleCount(); n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}
}

func TestH1Concurrent(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	const workers, each = 20, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				seed := fmt.Sprintf("w%di%d-", w, i)
				n := 10 + (w*each+i)*53%5000
				url := fmt.Sprintf("%s/data?n=%d&seed=%s", o.URL, n, seed)
				if i%3 == 0 {
					url += "&chunked=1"
				}
				req, _ := http.NewRequest("GET", url, nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != h1Payload(n, seed) {
					errs <- fmt.Errorf("%s: err %v, body %.40q", url, err, b)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := o.conns.Load(); n > workers {
		t.Fatalf("server saw %d connections, want at most %d", n, workers)
	}
}

// rawServer is a hand-written TCP server on 127.0.0.1: serve runs for each
// accepted connection, which is closed when serve returns.
type rawServer struct {
	ln      net.Listener
	accepts atomic.Int32
	done    chan struct{} // closed at cleanup; unblocks stalled handlers
}

func newRawServer(t testing.TB, serve func(n int, c net.Conn, br *bufio.Reader)) *rawServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.accepts.Add(1))
			wg.Go(func() {
				defer c.Close()
				go func() { <-s.done; c.Close() }()
				serve(n, c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		close(s.done)
		ln.Close()
		wg.Wait()
	})
	return s
}

func (s *rawServer) url(path string) string { return "http://" + s.ln.Addr().String() + path }

// readReq reads one request header (bodyless requests only).
func readReq(br *bufio.Reader) (*http.Request, error) {
	return http.ReadRequest(br)
}

func TestH1RetryWhenServerClosedIdle(t *testing.T) {
	// Each connection answers one request with a keep-alive response and
	// is then closed by the server.
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn%d", n)
	})
	tr := newH1(t)
	for i := 1; i <= 3; i++ {
		_, body := h1Get(t, tr, "GET", s.url("/"))
		if want := "conn" + strconv.Itoa(i); body != want {
			t.Fatalf("request %d: body %q, want %q", i, body, want)
		}
	}
	if n := s.accepts.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

func TestH1RetryAfterResetBeforeResponse(t *testing.T) {
	// The first connection answers once, then reads the second request and
	// resets the connection without answering.
	s := newRawServer(t, answerOnceThen(func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) }))
	tr := newH1(t)
	for range 2 {
		if _, body := h1Get(t, tr, "GET", s.url("/")); body != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestH1NoRetryOnFreshConnection(t *testing.T) {
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		readReq(br) // and close without answering
	})
	tr := newH1(t)
	req, _ := http.NewRequest("GET", s.url("/"), nil)
	_, err := tr.RoundTrip(req)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want an EOF", err)
	}
	if n := s.accepts.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (no retry)", n)
	}
}

func TestH1ConnectionClose(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	for range 3 {
		resp, body := h1Get(t, tr, "GET", o.URL+"/close")
		if body != "bye" || !resp.Close {
			t.Fatalf("body %q, Close %v", body, resp.Close)
		}
	}
	if n := o.conns.Load(); n != 3 {
		t.Fatalf("server saw %d connections, want 3", n)
	}
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("%d idle connections, want 0", n)
	}
	// A request that asks for close does not leave its connection either.
	req, _ := http.NewRequest("GET", o.URL+"/data?n=3", nil)
	req.Close = true
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("%d idle connections after req.Close, want 0", n)
	}
}

func TestH1BodyFraming(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	for _, n := range []int{0, 1, 4096, 100000} {
		for _, chunked := range []bool{false, true} {
			url := fmt.Sprintf("%s/data?n=%d&seed=x", o.URL, n)
			if chunked {
				url += "&chunked=1"
			}
			resp, body := h1Get(t, tr, "GET", url)
			if body != h1Payload(n, "x") {
				t.Fatalf("%s: body of %d bytes, want %d", url, len(body), n)
			}
			if chunked && n > 1 && len(resp.TransferEncoding) == 0 {
				t.Fatalf("%s: not chunked", url)
			}
		}
	}
	resp, body := h1Get(t, tr, "GET", o.URL+"/trailer")
	if body != "with trailer" || resp.Trailer.Get("X-Sum") != "42" {
		t.Fatalf("body %q, trailer %v", body, resp.Trailer)
	}
	if n := o.conns.Load(); n != 1 {
		t.Fatalf("server saw %d connections, want 1", n)
	}
}

func TestH1CloseDelimitedBody(t *testing.T) {
	big := h1Payload(70000, "c")
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		if n%2 == 1 {
			io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"+big)
		} else {
			io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n"+big)
		}
	})
	tr := newH1(t)
	for i := range 4 {
		resp, body := h1Get(t, tr, "GET", s.url("/"))
		if body != big || !resp.Close {
			t.Fatalf("request %d: %d bytes, Close %v", i, len(body), resp.Close)
		}
	}
	if n := s.accepts.Load(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
}

func TestH1NoBodyResponses(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", h1Mux())
	mux.HandleFunc("/head", func(w http.ResponseWriter, r *http.Request) {
		// A HEAD answer announces a length but carries no body.
		w.Header().Set("Content-Length", "1000")
		if r.Method != "HEAD" {
			io.WriteString(w, strings.Repeat("h", 1000))
		}
	})
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	})
	o := newH1Origin(t, mux)
	tr := newH1(t)
	steps := []struct {
		method, path string
		status       int
		body         string
	}{
		{"HEAD", "/head", 200, ""},
		{"GET", "/status/204", 204, ""},
		{"GET", "/304", 304, ""},
		{"HEAD", "/data?n=10", 200, ""},
		{"GET", "/data?n=10&seed=z", 200, h1Payload(10, "z")},
		{"OPTIONS", "/status/204", 204, ""},
		{"DELETE", "/status/204", 204, ""},
		{"GET", "/data?n=0", 200, ""},
		{"GET", "/data?n=11&seed=z", 200, h1Payload(11, "z")},
	}
	for _, s := range steps {
		resp, body := h1Get(t, tr, s.method, o.URL+s.path)
		if resp.StatusCode != s.status || body != s.body {
			t.Fatalf("%s %s: status %d, body %q", s.method, s.path, resp.StatusCode, body)
		}
		if s.body == "" && resp.Body != http.NoBody {
			t.Fatalf("%s %s: body %T, want http.NoBody", s.method, s.path, resp.Body)
		}
	}
	if resp, _ := h1Get(t, tr, "HEAD", o.URL+"/head"); resp.ContentLength != 1000 {
		t.Fatalf("HEAD ContentLength %d, want 1000", resp.ContentLength)
	}
	if n := o.conns.Load(); n != 1 {
		t.Fatalf("server saw %d connections, want 1", n)
	}
}

func TestH1Informational(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	for range 2 {
		resp, body := h1Get(t, tr, "GET", o.URL+"/early-hints")
		if resp.StatusCode != 200 || body != "final" {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
		if resp.Header.Get("Link") != "" {
			t.Fatalf("1xx header leaked into the final response: %v", resp.Header)
		}
	}
	if n := o.conns.Load(); n != 1 {
		t.Fatalf("server saw %d connections, want 1", n)
	}
}

func TestH1InformationalLimits(t *testing.T) {
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		switch n {
		case 1:
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")
		case 2:
			io.WriteString(c, strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 50)+
				"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	tr := newH1(t)
	for _, want := range []error{errH1Switching, errH1Too1xx} {
		req, _ := http.NewRequest("GET", s.url("/"), nil)
		if _, err := tr.RoundTrip(req); !errors.Is(err, want) {
			t.Fatalf("err = %v, want %v", err, want)
		}
	}
}

func TestH1EarlyCloseAndBodyErrors(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	req, _ := http.NewRequest("GET", o.URL+"/data?n=1000000&seed=e", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := resp.Body.Read(buf); err == nil {
		t.Fatal("Read after Close succeeded")
	}
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("%d idle connections after early close, want 0", n)
	}
	if _, body := h1Get(t, tr, "GET", o.URL+"/data?n=5&seed=e"); body != h1Payload(5, "e") {
		t.Fatalf("body %q", body)
	}
	if n := o.conns.Load(); n != 2 {
		t.Fatalf("server saw %d connections, want 2", n)
	}

	// A body cut short by the server is an error, and its connection is not
	// reused.
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		if n == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")
	})
	req, _ = http.NewRequest("GET", s.url("/"), nil)
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read err = %v, want unexpected EOF", err)
	}
	resp.Body.Close()
	if _, body := h1Get(t, tr, "GET", s.url("/")); body != "fine" {
		t.Fatalf("body %q", body)
	}
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// h1HookConn lets a test see and fail reads and writes.
type h1HookConn struct {
	net.Conn
	onRead  func()
	onWrite func() error
}

func (c *h1HookConn) Read(p []byte) (int, error) {
	if c.onRead != nil {
		c.onRead()
	}
	return c.Conn.Read(p)
}

func (c *h1HookConn) Write(p []byte) (int, error) {
	if c.onWrite != nil {
		if err := c.onWrite(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

func TestH1WriteErrorRetried(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	var dials atomic.Int32
	var d net.Dialer
	tr.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		hc := &h1HookConn{Conn: c}
		if dials.Add(1) == 1 {
			writes := 0
			hc.onWrite = func() error {
				if writes++; writes > 1 {
					return &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
				}
				return nil
			}
		}
		return hc, nil
	}
	for range 3 {
		if _, body := h1Get(t, tr, "GET", o.URL+"/data?n=7&seed=w"); body != h1Payload(7, "w") {
			t.Fatalf("body %q", body)
		}
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("%d dials, want 2", n)
	}
}

func TestH1CloseDuringBlockedRead(t *testing.T) {
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
		br.ReadByte() // until the client goes away
	})
	tr := newH1(t)
	blocked := make(chan struct{}, 1)
	var armed atomic.Bool
	var d net.Dialer
	tr.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &h1HookConn{Conn: c, onRead: func() {
			if armed.Load() {
				select {
				case blocked <- struct{}{}:
				default:
				}
			}
		}}, nil
	}
	for range 3 {
		armed.Store(false)
		req, _ := http.NewRequest("GET", s.url("/"), nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part" {
			t.Fatalf("read %q, %v", buf, err)
		}
		armed.Store(true)
		got := make(chan error, 1)
		go func() {
			_, err := resp.Body.Read(buf)
			got <- err
		}()
		<-blocked // the Read is in the connection's Read now
		resp.Body.Close()
		if err := <-got; !errors.Is(err, errH1BodyClosed) {
			t.Fatalf("blocked Read returned %v, want %v", err, errH1BodyClosed)
		}
	}
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("%d idle connections, want 0", n)
	}
}

func TestH1BadResponseHeader(t *testing.T) {
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		switch n {
		case 1:
			io.WriteString(c, "garbage\r\n\r\n")
		case 2:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: ")
			chunk := []byte(strings.Repeat("a", 64<<10))
			for range (h1MaxHeaderBytes / len(chunk)) + 2 {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}
	})
	tr := newH1(t)
	for _, want := range []string{"malformed HTTP", errH1HeaderTooLarge.Error()} {
		req, _ := http.NewRequest("GET", s.url("/"), nil)
		if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	}
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (no retries)", n)
	}
}

func TestH1Fallback(t *testing.T) {
	fb := &h1Fallback{}
	tr := &H1Transport{
		Dial: func(context.Context, string, string) (net.Conn, error) {
			t.Error("dialed for a fallback request")
			return nil, errors.New("no dial")
		},
		Fallback: fb,
	}
	mk := func(method, url string, body io.Reader, hdr ...string) *http.Request {
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return req
	}
	withLen := mk("GET", "http://example.test/", nil)
	withLen.ContentLength = 5
	withBody := mk("GET", "http://example.test/", nil)
	withBody.Body = io.NopCloser(strings.NewReader("x"))
	cases := map[string]*http.Request{
		"POST":             mk("POST", "http://example.test/", strings.NewReader("x")),
		"PUT no body":      mk("PUT", "http://example.test/", nil),
		"GET with body":    mk("GET", "http://example.test/", strings.NewReader("x")),
		"ContentLength":    withLen,
		"Body only":        withBody,
		"https":            mk("GET", "https://example.test/", nil),
		"Upgrade":          mk("GET", "http://example.test/", nil, "Upgrade", "websocket", "Connection", "Upgrade"),
		"Connection token": mk("GET", "http://example.test/", nil, "Connection", "keep-alive, Upgrade"),
		"Expect":           mk("GET", "http://example.test/", nil, "Expect", "100-continue"),
		"Trailer":          mk("GET", "http://example.test/", nil, "Trailer", "X-Sum"),
		"non-ASCII host":   mk("GET", "http://bücher.example/", nil),
		"bad header":       mk("GET", "http://example.test/", nil, "X-Bad", "a\x00b"),
		"bad header name":  mk("GET", "http://example.test/", nil),
		"bad Host":         mk("GET", "http://example.test/", nil),
	}
	cases["bad header name"].Header["Bad Name"] = []string{"x"}
	cases["bad Host"].Host = "a b"
	for name, req := range cases {
		before := fb.n.Load()
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 299 || fb.n.Load() != before+1 {
			t.Errorf("%s: not routed to the fallback (err %v)", name, err)
		}
	}
	// A transport with nothing to fall back to still passes the idle close
	// on.
	tr.CloseIdleConnections()
}

func TestH1Cancel(t *testing.T) {
	gotReq := make(chan struct{}, 4)
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		req, err := readReq(br)
		if err != nil {
			return
		}
		if req.URL.Path == "/body" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
		}
		gotReq <- struct{}{}
		br.ReadByte() // stall until the client goes away
	})
	tr := newH1(t)
	tr.ResponseHeaderTimeout = time.Hour

	// Before the response header.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-gotReq; cancel() }()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url("/"), nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	// While the body is read.
	ctx, cancel = context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, "GET", s.url("/body"), nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	<-gotReq
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("body err = %v, want context.Canceled", err)
	}
	resp.Body.Close()

	// Already cancelled.
	req, _ = http.NewRequestWithContext(ctx, "GET", s.url("/"), nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("%d idle connections, want 0", n)
	}
}

func TestH1ResponseHeaderTimeout(t *testing.T) {
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		br.ReadByte() // never answer
	})
	tr := newH1(t)
	tr.ResponseHeaderTimeout = 50 * time.Millisecond
	req, _ := http.NewRequest("GET", s.url("/"), nil)
	_, err := tr.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestH1RequestHead(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	for _, ua := range [][]string{nil, {""}} {
		req, _ := http.NewRequest("GET", o.URL+"/echo?q=1", nil)
		req.Header["User-Agent"] = ua
		req.Host = "virtual.test"
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "host=virtual.test ua=false method=GET uri=/echo?q=1"; string(b) != want {
			t.Fatalf("server saw %q, want %q", b, want)
		}
		if resp.Request != req {
			t.Fatal("resp.Request is not the request")
		}
	}
	req, _ := http.NewRequest("GET", o.URL+"/echo", nil)
	req.Header.Set("User-Agent", "agent/1")
	if _, body := h1GetReq(t, tr, req); !strings.Contains(body, "ua=true") {
		t.Fatalf("server saw %q", body)
	}
}

func h1GetReq(t testing.TB, tr http.RoundTripper, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestH1DialErrorAsIs(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("denied by test")}
	tr := &H1Transport{
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, dialErr
		},
		Fallback: h1NoFallback{t},
	}
	req, _ := http.NewRequest("GET", "http://example.test/", nil)
	if _, err := tr.RoundTrip(req); err != dialErr {
		t.Fatalf("err = %v, want the dial error itself", err)
	}
}

func TestH1DialAddress(t *testing.T) {
	var addrs []string
	tr := &H1Transport{
		Dial: func(_ context.Context, network, addr string) (net.Conn, error) {
			addrs = append(addrs, network+" "+addr)
			return nil, errors.New("no")
		},
		Fallback: h1NoFallback{t},
	}
	for _, u := range []string{"http://example.test/", "http://example.test:8080/x", "http://[::1]/", "http://10.0.0.1:/"} {
		req, _ := http.NewRequest("GET", u, nil)
		tr.RoundTrip(req)
	}
	want := "tcp example.test:80,tcp example.test:8080,tcp [::1]:80,tcp 10.0.0.1:80"
	if got := strings.Join(addrs, ","); got != want {
		t.Fatalf("dialed %s, want %s", got, want)
	}
}

func TestH1IdlePool(t *testing.T) {
	o := newH1Origin(t, h1Mux())
	tr := newH1(t)
	tr.MaxIdlePerHost = 2

	// Four responses open at once, then finished: two are pooled.
	var resps []*http.Response
	for range 4 {
		req, _ := http.NewRequest("GET", o.URL+"/data?n=100", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	for _, resp := range resps {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		resp.Body.Close() // twice is harmless
	}
	if n := tr.idleCount(); n != 2 {
		t.Fatalf("%d idle, want 2", n)
	}

	// Expired connections are not reused.
	tr.mu.Lock()
	for _, pc := range tr.idle[o.Listener.Addr().String()] {
		pc.idleAt = pc.idleAt.Add(-time.Hour)
	}
	tr.mu.Unlock()
	h1Get(t, tr, "GET", o.URL+"/data?n=1")
	if n := o.conns.Load(); n != 5 {
		t.Fatalf("server saw %d connections, want 5", n)
	}
	if n := tr.idleCount(); n != 1 {
		t.Fatalf("%d idle, want 1", n)
	}

	// The sweeper closes them too.
	tr.mu.Lock()
	for _, list := range tr.idle {
		for _, pc := range list {
			pc.idleAt = pc.idleAt.Add(-time.Hour)
		}
	}
	tr.mu.Unlock()
	tr.sweep()
	if n := tr.idleCount(); n != 0 || len(tr.idle) != 0 {
		t.Fatalf("%d idle in %d entries after sweep, want none", n, len(tr.idle))
	}

	// After CloseIdleConnections nothing is pooled, but requests still work.
	h1Get(t, tr, "GET", o.URL+"/data?n=1")
	if n := tr.idleCount(); n != 1 {
		t.Fatalf("%d idle, want 1", n)
	}
	tr.CloseIdleConnections()
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("%d idle after CloseIdleConnections", n)
	}
	h1Get(t, tr, "GET", o.URL+"/data?n=1")
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("%d idle after CloseIdleConnections and a request", n)
	}
}

func TestH1Stale408(t *testing.T) {
	// The server answers once; the next request on that connection gets a
	// 408 and a close, as when a server's idle timeout raced it.
	s := newRawServer(t, answerOnceThen(func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	}))
	tr := newH1(t)
	for range 2 {
		if resp, body := h1Get(t, tr, "GET", s.url("/")); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	}
	if n := s.accepts.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestH1UnsolicitedBytes(t *testing.T) {
	// Bytes after the response are never taken for the next response:
	// either they are seen at once (the connection is not pooled) or they
	// arrive later, as an unsolicited 408 on the idle connection, which is
	// retried.
	s := newRawServer(t, func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		if n == 1 {
			resp += "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
		}
		io.WriteString(c, resp)
		readReq(br)
	})
	tr := newH1(t)
	for range 2 {
		if resp, body := h1Get(t, tr, "GET", s.url("/")); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	}
}

func benchOrigin(b *testing.B) *httptest.Server {
	body := []byte(h1Payload(1024, "b"))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		w.Write(body)
	}))
	b.Cleanup(ts.Close)
	return ts
}

func benchRoundTrip(b *testing.B, tr http.RoundTripper) {
	ts := benchOrigin(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// A cancellable context, as server request contexts are.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		buf := make([]byte, 4096)
		for pb.Next() {
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/", nil)
			req.Header["User-Agent"] = nil
			resp, err := tr.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.CopyBuffer(io.Discard, resp.Body, buf)
			resp.Body.Close()
			if n != 1024 {
				b.Errorf("read %d bytes", n)
				return
			}
		}
	})
}

func BenchmarkH1Transport(b *testing.B) {
	var d net.Dialer
	tr := &H1Transport{Dial: d.DialContext, Fallback: h1NoFallback{b}}
	defer tr.CloseIdleConnections()
	benchRoundTrip(b, tr)
}

// BenchmarkStdTransport is net/http.Transport configured as state.go does.
func BenchmarkStdTransport(b *testing.B) {
	var d net.Dialer
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     32 << 10,
		ReadBufferSize:      32 << 10,
	}
	defer tr.CloseIdleConnections()
	benchRoundTrip(b, tr)
}

// answerOnceThen returns a raw server handler whose first connection
// answers one request with "ok", reads a second request and then does
// second on the connection instead of answering; later connections answer
// one request.
func answerOnceThen(second func(c net.Conn)) func(n int, c net.Conn, br *bufio.Reader) {
	return func(n int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if n > 1 {
			return
		}
		if _, err := readReq(br); err != nil {
			return
		}
		second(c)
	}
}

// TestWriteRequestHead checks the transport's own request writer against
// net/http's Request.Write: the same request line and the same fields, in
// any order, for every kind of request the transport handles.
func TestWriteRequestHead(t *testing.T) {
	type tc struct {
		name   string
		method string
		url    string
		host   string
		header http.Header
		close  bool
	}
	cases := []tc{
		{name: "plain", method: "GET", url: "http://o.test/a/b?x=1&y=%20"},
		{name: "empty method and path", url: "http://o.test"},
		{name: "host override", method: "HEAD", url: "http://10.0.0.1:8080/p", host: "app.example"},
		{name: "zone removed", method: "GET", url: "http://o.test/", host: "[fe80::1%25en0]:80"},
		{name: "escaped path", method: "DELETE", url: "http://o.test/a%2Fb/c%20d"},
		{name: "no user agent", method: "GET", url: "http://o.test/", header: http.Header{"User-Agent": {""}}},
		{name: "nil user agent", method: "GET", url: "http://o.test/", header: http.Header{"User-Agent": nil}},
		{name: "user agent trimmed", method: "OPTIONS", url: "http://o.test/", header: http.Header{"User-Agent": {" ua/1 "}}},
		{name: "close", method: "GET", url: "http://o.test/", close: true},
		{name: "close already said", method: "GET", url: "http://o.test/", close: true, header: http.Header{"Connection": {"close"}}},
		{name: "many fields", method: "GET", url: "http://o.test/", header: http.Header{
			"Accept":          {"text/html", "application/json"},
			"X-Forwarded-For": {"192.0.2.1, 198.51.100.2"},
			"Forwarded":       {`for=192.0.2.1;host="a.example";proto=https`},
			"Cookie":          {"a=1; b=2"},
			"X-Empty":         {""},
			"X-Spaced":        {"\tv\t"},
			"Te":              {"trailers"},
		}},
		{name: "framing fields left out", method: "GET", url: "http://o.test/", header: http.Header{
			"Host": {"ignored.test"}, "Content-Length": {"5"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mk := func() *http.Request {
				req, err := http.NewRequest(c.method, c.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				if c.host != "" {
					h, _ := url.PathUnescape(c.host)
					req.Host = h
				}
				for k, v := range c.header {
					req.Header[k] = v
				}
				req.Close = c.close
				return req
			}
			var want, got bytes.Buffer
			if err := mk().Write(&want); err != nil {
				t.Fatal(err)
			}
			bw := bufio.NewWriter(&got)
			if err := writeRequestHead(bw, mk()); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			wantLine, _, _ := strings.Cut(want.String(), "\r\n")
			gotLine, _, _ := strings.Cut(got.String(), "\r\n")
			if gotLine != wantLine {
				t.Fatalf("request line %q, want %q", gotLine, wantLine)
			}
			if !strings.HasSuffix(got.String(), "\r\n\r\n") {
				t.Fatalf("head does not end with an empty line: %q", got.String())
			}
			wr, err := http.ReadRequest(bufio.NewReader(&want))
			if err != nil {
				t.Fatal(err)
			}
			gr, err := http.ReadRequest(bufio.NewReader(&got))
			if err != nil {
				t.Fatalf("%v in %q", err, got.String())
			}
			if gr.Host != wr.Host || gr.Close != wr.Close {
				t.Fatalf("host %q close %v, want %q %v", gr.Host, gr.Close, wr.Host, wr.Close)
			}
			if !reflect.DeepEqual(gr.Header, wr.Header) {
				t.Fatalf("fields %v, want %v", gr.Header, wr.Header)
			}
		})
	}
	bad, _ := http.NewRequest("GET", "http://o.test/", nil)
	bad.URL.RawQuery = "a=\x01"
	if err := writeRequestHead(bufio.NewWriter(io.Discard), bad); err == nil {
		t.Fatal("a control character in the URL was written")
	}
}
