package lists_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"waygate/filter/lists"
)

// fetchClock is an injected clock.
type fetchClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fetchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fetchClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// How fetchServer answers.
const (
	fetchModeNormal            = iota // 200 with body, or 304 if If-None-Match matches
	fetchModeIgnoreCond               // always 200 with body
	fetchModeStatus500                // 500
	fetchModeEmpty                    // 200 with an empty body
	fetchModeHuge                     // 200 with a body over the limit, Content-Length set
	fetchModeHugeChunked              // 200 with a body over the limit, chunked
	fetchModeCutLength                // Content-Length 100, part of the body, then the connection dies
	fetchModeCutChunked               // chunked, part of the body, then the connection dies
	fetchModeNotModifiedAlways        // 304 even to an unconditional request
)

// fetchServer serves body at every path, with an ETag derived from it.
type fetchServer struct {
	*httptest.Server

	mu       sync.Mutex
	body     map[string]string // path -> body; "" path is the default
	mode     int
	requests int
	inm      []string // If-None-Match of each request
	ims      []string // If-Modified-Since of each request
	auth     []string // Authorization of each request
}

const fetchLastModified = "Mon, 02 Jan 2006 15:04:05 GMT"

func newFetchServer(t *testing.T, body string) *fetchServer {
	t.Helper()
	s := &fetchServer{body: map[string]string{"": body}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func fetchETag(body string) string {
	sum := sha256.Sum256([]byte(body))
	return `"` + hex.EncodeToString(sum[:4]) + `"`
}

func (s *fetchServer) set(body string, mode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body[""] = body
	s.mode = mode
}

func (s *fetchServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *fetchServer) last() (inm, ims, auth string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.inm) - 1
	return s.inm[n], s.ims[n], s.auth[n]
}

func (s *fetchServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.inm = append(s.inm, r.Header.Get("If-None-Match"))
	s.ims = append(s.ims, r.Header.Get("If-Modified-Since"))
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	body, ok := s.body[r.URL.Path]
	if !ok {
		body = s.body[""]
	}
	mode := s.mode
	s.mu.Unlock()

	etag := fetchETag(body)
	switch mode {
	case fetchModeNormal, fetchModeIgnoreCond:
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", fetchLastModified)
		if mode == fetchModeNormal && r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, body)
	case fetchModeStatus500:
		http.Error(w, "boom", http.StatusInternalServerError)
	case fetchModeEmpty:
		w.Header().Set("ETag", fetchETag(""))
		w.WriteHeader(http.StatusOK)
	case fetchModeHuge:
		big := strings.Repeat("x.example\n", 100)
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		fmt.Fprint(w, big)
	case fetchModeHugeChunked:
		for range 100 {
			fmt.Fprint(w, "x.example\n")
			w.(http.Flusher).Flush()
		}
	case fetchModeCutLength, fetchModeCutChunked:
		if mode == fetchModeCutLength {
			w.Header().Set("Content-Length", "100")
		}
		w.Header().Set("ETag", `"cut"`)
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "partial.example\nhalf")
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	case fetchModeNotModifiedAlways:
		w.WriteHeader(http.StatusNotModified)
	}
}

type fetchEnv struct {
	f     *lists.Fetcher
	clock *fetchClock
	dir   string
}

func newFetchEnv(t *testing.T) *fetchEnv {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	clock := &fetchClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	dir := filepath.Join(t.TempDir(), "remote") // Fetch creates it
	return &fetchEnv{
		f:     &lists.Fetcher{Client: &http.Client{Transport: tr}, Dir: dir, MaxBytes: 500, Now: clock.Now},
		clock: clock,
		dir:   dir,
	}
}

func fetchReadString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fetchCheckDir fails if dir holds anything but .list and .meta files.
func fetchCheckDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return
		}
		t.Fatal(err)
	}
	for _, e := range ents {
		if ext := filepath.Ext(e.Name()); ext != ".list" && ext != ".meta" {
			t.Errorf("leftover file %s in %s", e.Name(), dir)
		}
	}
}

type fetchMetaFile struct {
	URL          string    `json:"url"`
	FetchedAt    time.Time `json:"fetched_at"`
	ETag         string    `json:"etag"`
	LastModified string    `json:"last_modified"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
}

func fetchReadMeta(t *testing.T, listPath string) fetchMetaFile {
	t.Helper()
	var m fetchMetaFile
	if err := json.Unmarshal([]byte(fetchReadString(t, strings.TrimSuffix(listPath, ".list")+".meta")), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const (
	fetchListV1 = "a.example\nb.example\n"
	fetchListV2 = "a.example\nc.example\n"
)

func TestFetchFirst(t *testing.T) {
	srv := newFetchServer(t, fetchListV1)
	e := newFetchEnv(t)
	url := srv.URL + "/list.txt"

	path, changed, err := e.f.Fetch(context.Background(), url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Error("changed = false on first fetch")
	}
	if path != e.f.Path(url) || filepath.Dir(path) != e.dir || !strings.HasSuffix(path, ".list") {
		t.Errorf("path = %q, Path = %q, dir %q", path, e.f.Path(url), e.dir)
	}
	if got := len(strings.TrimSuffix(filepath.Base(path), ".list")); got != 16 {
		t.Errorf("name %q: want 16 hex digits", filepath.Base(path))
	}
	if got := fetchReadString(t, path); got != fetchListV1 {
		t.Errorf("content = %q, want %q", got, fetchListV1)
	}
	fi, err := os.Stat(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o750 != 0 {
		t.Errorf("dir mode %v, want at most 0750", perm)
	}
	m := fetchReadMeta(t, path)
	sum := sha256.Sum256([]byte(fetchListV1))
	want := fetchMetaFile{
		URL:          url,
		FetchedAt:    e.clock.Now(),
		ETag:         fetchETag(fetchListV1),
		LastModified: fetchLastModified,
		Size:         int64(len(fetchListV1)),
		SHA256:       hex.EncodeToString(sum[:]),
	}
	if !m.FetchedAt.Equal(want.FetchedAt) {
		t.Errorf("fetched_at = %v, want %v", m.FetchedAt, want.FetchedAt)
	}
	m.FetchedAt = want.FetchedAt
	if m != want {
		t.Errorf("meta = %+v\nwant %+v", m, want)
	}
	cp, fetched, ok := e.f.Cached(url)
	if !ok || cp != path || !fetched.Equal(e.clock.Now()) {
		t.Errorf("Cached = %q, %v, %v", cp, fetched, ok)
	}
	if inm, ims, _ := srv.last(); inm != "" || ims != "" {
		t.Errorf("first request was conditional: %q %q", inm, ims)
	}
	fetchCheckDir(t, e.dir)
}

func TestFetchFreshMakesNoRequest(t *testing.T) {
	srv := newFetchServer(t, fetchListV1)
	e := newFetchEnv(t)
	url := srv.URL + "/l"
	ctx := context.Background()

	p1, _, err := e.f.Fetch(ctx, url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(59 * time.Minute)
	srv.set(fetchListV2, fetchModeNormal)
	p2, changed, err := e.f.Fetch(ctx, url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p2 != p1 || changed {
		t.Errorf("second Fetch = %q, %v; want %q, false", p2, changed, p1)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
	if got := fetchReadString(t, p2); got != fetchListV1 {
		t.Errorf("content = %q", got)
	}

	// maxAge 0 always asks.
	if _, changed, err = e.f.Fetch(ctx, url, 0); err != nil || !changed {
		t.Errorf("Fetch(maxAge 0) = %v, %v", changed, err)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestFetchFutureCopyIsStale(t *testing.T) {
	srv := newFetchServer(t, fetchListV1)
	e := newFetchEnv(t)
	url := srv.URL + "/l"
	if _, _, err := e.f.Fetch(context.Background(), url, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(-time.Minute) // the clock was set back
	if _, _, err := e.f.Fetch(context.Background(), url, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestFetchNotModified(t *testing.T) {
	srv := newFetchServer(t, fetchListV1)
	e := newFetchEnv(t)
	url := srv.URL + "/l"
	ctx := context.Background()

	p1, _, err := e.f.Fetch(ctx, url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	before := fetchReadMeta(t, p1)
	e.clock.Advance(time.Hour)
	p2, changed, err := e.f.Fetch(ctx, url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.count(); n != 2 {
		t.Fatalf("server saw %d requests, want 2", n)
	}
	inm, ims, _ := srv.last()
	if inm != fetchETag(fetchListV1) || ims != fetchLastModified {
		t.Errorf("conditional headers: If-None-Match %q, If-Modified-Since %q", inm, ims)
	}
	if p2 != p1 || changed {
		t.Errorf("Fetch = %q, %v; want %q, false", p2, changed, p1)
	}
	if got := fetchReadString(t, p2); got != fetchListV1 {
		t.Errorf("content = %q", got)
	}
	_, fetched, ok := e.f.Cached(url)
	if !ok || !fetched.Equal(e.clock.Now()) {
		t.Errorf("Cached fetched = %v, %v; want %v", fetched, ok, e.clock.Now())
	}
	after := fetchReadMeta(t, p2)
	if after.SHA256 != before.SHA256 || after.Size != before.Size || after.ETag != before.ETag {
		t.Errorf("meta changed by 304: %+v -> %+v", before, after)
	}
	fetchCheckDir(t, e.dir)
}

func TestFetchChanged(t *testing.T) {
	srv := newFetchServer(t, fetchListV1)
	e := newFetchEnv(t)
	url := srv.URL + "/l"
	ctx := context.Background()

	if _, _, err := e.f.Fetch(ctx, url, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	srv.set(fetchListV2, fetchModeNormal)
	path, changed, err := e.f.Fetch(ctx, url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Error("changed = false after new content")
	}
	if got := fetchReadString(t, path); got != fetchListV2 {
		t.Errorf("content = %q, want %q", got, fetchListV2)
	}
	if m := fetchReadMeta(t, path); m.ETag != fetchETag(fetchListV2) || m.Size != int64(len(fetchListV2)) {
		t.Errorf("meta = %+v", m)
	}

	// A 200 with the same content (a server ignoring If-None-Match) is not
	// a change.
	srv.set(fetchListV2, fetchModeIgnoreCond)
	e.clock.Advance(2 * time.Hour)
	if _, changed, err = e.f.Fetch(ctx, url, time.Hour); err != nil || changed {
		t.Errorf("same content again: changed %v, err %v", changed, err)
	}
	if _, fetched, _ := e.f.Cached(url); !fetched.Equal(e.clock.Now()) {
		t.Errorf("fetched = %v, want %v", fetched, e.clock.Now())
	}
	fetchCheckDir(t, e.dir)
}

// TestFetchMetaMismatch checks that a list that no longer matches its
// metadata (a crash between the two renames, or an admin's edit) is fetched
// unconditionally and reported as changed.
func TestFetchMetaMismatch(t *testing.T) {
	srv := newFetchServer(t, fetchListV1)
	e := newFetchEnv(t)
	url := srv.URL + "/l"
	ctx := context.Background()

	path, _, err := e.f.Fetch(ctx, url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("z.example\nz.example\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	_, changed, err := e.f.Fetch(ctx, url, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if inm, _, _ := srv.last(); inm != "" {
		t.Errorf("sent If-None-Match %q for a copy that does not match its metadata", inm)
	}
	if !changed || fetchReadString(t, path) != fetchListV1 {
		t.Errorf("changed %v, content %q", changed, fetchReadString(t, path))
	}
}

// fetchFailures lists ways a fetch fails. Each func sets up srv and returns the
// URL to fetch.
var fetchFailures = []struct {
	name string
	want string // in the error
	set  func(srv *fetchServer) string
}{
	{"status 500", "500", func(s *fetchServer) string { s.set(fetchListV2, fetchModeStatus500); return s.URL + "/l" }},
	{"connection refused", "refused", func(s *fetchServer) string { s.Close(); return s.URL + "/l" }},
	{"too large", "too large", func(s *fetchServer) string { s.set(fetchListV2, fetchModeHuge); return s.URL + "/l" }},
	{"too large chunked", "too large", func(s *fetchServer) string { s.set(fetchListV2, fetchModeHugeChunked); return s.URL + "/l" }},
	{"empty body", "empty list", func(s *fetchServer) string { s.set("", fetchModeEmpty); return s.URL + "/l" }},
	{"cut body", "reading body", func(s *fetchServer) string { s.set(fetchListV2, fetchModeCutLength); return s.URL + "/l" }},
	{"cut chunked body", "reading body", func(s *fetchServer) string { s.set(fetchListV2, fetchModeCutChunked); return s.URL + "/l" }},
}

func TestFetchFailureKeepsCopy(t *testing.T) {
	for _, tc := range fetchFailures {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFetchServer(t, fetchListV1)
			e := newFetchEnv(t)
			ctx := context.Background()
			url := srv.URL + "/l"

			path, _, err := e.f.Fetch(ctx, url, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			fetched := e.clock.Now()
			metaBefore := fetchReadMeta(t, path)
			e.clock.Advance(2 * time.Hour)

			url = tc.set(srv)
			p, changed, err := e.f.Fetch(ctx, url, time.Hour)
			if err == nil {
				t.Fatalf("Fetch succeeded: %q, %v", p, changed)
			}
			if p != "" || changed {
				t.Errorf("Fetch = %q, %v with error", p, changed)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), url) {
				t.Errorf("error %q does not say %q or name %s", err, tc.want, url)
			}
			if got := fetchReadString(t, path); got != fetchListV1 {
				t.Errorf("copy = %q, want %q", got, fetchListV1)
			}
			if m := fetchReadMeta(t, path); m != metaBefore {
				t.Errorf("meta changed: %+v -> %+v", metaBefore, m)
			}
			cp, cf, ok := e.f.Cached(url)
			if !ok || cp != path || !cf.Equal(fetched) {
				t.Errorf("Cached = %q, %v, %v; want %q, %v, true", cp, cf, ok, path, fetched)
			}
			fetchCheckDir(t, e.dir)
		})
	}
}

func TestFetchFailureWithoutCopy(t *testing.T) {
	cases := append(fetchFailures[:len(fetchFailures):len(fetchFailures)], struct {
		name string
		want string
		set  func(srv *fetchServer) string
	}{"304 without copy", "304", func(s *fetchServer) string { s.set(fetchListV1, fetchModeNotModifiedAlways); return s.URL + "/l" }})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFetchServer(t, fetchListV1)
			e := newFetchEnv(t)
			url := tc.set(srv)
			p, changed, err := e.f.Fetch(context.Background(), url, time.Hour)
			if err == nil || p != "" || changed {
				t.Fatalf("Fetch = %q, %v, %v; want an error", p, changed, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if cp, _, ok := e.f.Cached(url); ok {
				t.Errorf("Cached reports %q", cp)
			}
			if _, err := os.Stat(e.f.Path(url)); !os.IsNotExist(err) {
				t.Errorf("list file exists: %v", err)
			}
			fetchCheckDir(t, e.dir)
		})
	}
}

// fetchNoRequests fails the test if a request is made.
type fetchNoRequests struct{ t *testing.T }

func (ft fetchNoRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	ft.t.Errorf("unexpected request for %s", r.URL.Redacted())
	return nil, fmt.Errorf("no requests here")
}

func TestFetchRefusesOtherSchemes(t *testing.T) {
	dir := t.TempDir()
	f := &lists.Fetcher{Client: &http.Client{Transport: fetchNoRequests{t}}, Dir: dir}
	for _, url := range []string{
		"ftp://x",
		"file:///etc/passwd",
		"gopher://x.example/1",
		"javascript:alert(1)",
		"x.example/list",
		"//x.example/list",
		"http:///list",
		"https://",
		"http://x.example/%zz",
		"",
	} {
		p, changed, err := f.Fetch(context.Background(), url, 0)
		if err == nil || p != "" || changed {
			t.Errorf("Fetch(%q) = %q, %v, %v; want an error", url, p, changed, err)
		}
	}
	fetchCheckDir(t, dir)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files created: %v", ents)
	}
}

func TestFetchNilClient(t *testing.T) {
	f := &lists.Fetcher{Dir: t.TempDir()}
	if _, _, err := f.Fetch(context.Background(), "http://127.0.0.1:1/x", 0); err == nil {
		t.Error("Fetch with a nil Client succeeded")
	}
}

func TestFetchHidesCredentials(t *testing.T) {
	const user, pass = "alice-token", "s3cret-pw"
	secrets := func(t *testing.T, what, s string) {
		t.Helper()
		if strings.Contains(s, user) || strings.Contains(s, pass) {
			t.Errorf("%s holds credentials: %q", what, s)
		}
	}
	withCreds := func(base string) string {
		return strings.Replace(base, "://", "://"+user+":"+pass+"@", 1)
	}

	t.Run("success", func(t *testing.T) {
		srv := newFetchServer(t, fetchListV1)
		e := newFetchEnv(t)
		url := withCreds(srv.URL) + "/l"
		path, _, err := e.f.Fetch(context.Background(), url, 0)
		if err != nil {
			secrets(t, "error", err.Error())
			t.Fatal("Fetch failed")
		}
		if _, _, auth := srv.last(); !strings.HasPrefix(auth, "Basic ") {
			t.Errorf("Authorization = %q; want the URL's credentials", auth)
		}
		secrets(t, "meta", fetchReadString(t, strings.TrimSuffix(path, ".list")+".meta"))
		secrets(t, "path", path)
	})
	for _, tc := range fetchFailures {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFetchServer(t, fetchListV1)
			e := newFetchEnv(t)
			url := withCreds(tc.set(srv))
			_, _, err := e.f.Fetch(context.Background(), url, 0)
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			secrets(t, "error", err.Error())
			if !strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error %q does not name the host", err)
			}
		})
	}
	for _, url := range []string{
		"ftp://" + user + ":" + pass + "@x.example/l",
		"http://" + user + ":" + pass + "@x.example:bad/l",
		"http://" + user + ":" + pass + "@x.example/%zz",
	} {
		f := &lists.Fetcher{Client: &http.Client{Transport: fetchNoRequests{t}}, Dir: t.TempDir()}
		_, _, err := f.Fetch(context.Background(), url, 0)
		if err == nil {
			t.Fatalf("Fetch(%q) succeeded", url)
		}
		secrets(t, "error", err.Error())
	}
}

func TestFetchConcurrent(t *testing.T) {
	srv := newFetchServer(t, fetchListV1)
	for i := range 4 {
		srv.body[fmt.Sprintf("/%d", i)] = fmt.Sprintf("host%d.example\n", i)
	}
	e := newFetchEnv(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 4 {
		for range 4 {
			wg.Go(func() {
				url := fmt.Sprintf("%s/%d", srv.URL, i)
				path, _, err := e.f.Fetch(ctx, url, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if got, want := fetchReadString(t, path), fmt.Sprintf("host%d.example\n", i); got != want {
					t.Errorf("%s: content %q, want %q", url, got, want)
				}
			})
		}
	}
	wg.Wait()
	fetchCheckDir(t, e.dir)
	for i := range 4 {
		if _, _, ok := e.f.Cached(fmt.Sprintf("%s/%d", srv.URL, i)); !ok {
			t.Errorf("no copy of /%d", i)
		}
	}
}

func TestFetchCanceledContext(t *testing.T) {
	srv := newFetchServer(t, fetchListV1)
	e := newFetchEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := e.f.Fetch(ctx, srv.URL+"/l", 0); err == nil {
		t.Error("Fetch with a canceled context succeeded")
	}
}
