// Remote lists.
//
// A Fetcher keeps one copy of each remote list in its Dir, named after the
// URL so that no URL text (or credentials in it) appears in a file name:
//
//	Dir/<h>.list        the body of the last good 200 response, as sent
//	Dir/<h>.meta        JSON: url (redacted), fetched_at, etag,
//	                    last_modified, size, sha256 (hex) of <h>.list
//	Dir/<h>.list.tmp-*  a download in progress (removed when it fails)
//	Dir/<h>.meta.tmp-*  metadata being written
//
// where <h> is the first 16 hex digits of the SHA-256 of the URL exactly as
// given. Both files are replaced only by renaming a complete, fsynced
// temporary file over them, so a reader sees either the old copy or the new
// one, never a part. The list is renamed before its metadata; if the process
// dies in between, the metadata's sha256 no longer matches the list and the
// next Fetch downloads the list unconditionally and reports it changed.

package lists

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultMaxBytes bounds one download when Fetcher.MaxBytes is zero.
const DefaultMaxBytes int64 = 256 << 20

// Fetcher downloads remote lists into Dir and keeps the last good copy of
// each. Its methods may be called concurrently; calls for different URLs run
// in parallel, calls for the same URL one after the other (also across
// Fetchers sharing a Dir in one process). Several processes must not share a
// Dir.
type Fetcher struct {
	// Client makes the requests. It must not be nil. (The caller gives one
	// whose transport dials through the gateway's guarded dialer.) Its
	// redirect policy applies.
	Client *http.Client
	// Dir holds the copies; created (0o750) if missing.
	Dir string
	// MaxBytes bounds one download; zero (or less) means DefaultMaxBytes. A
	// larger body is an error and the old copy stays.
	MaxBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// fetchMeta is the content of a .meta file.
type fetchMeta struct {
	URL          string    `json:"url"` // redacted, for people looking at Dir
	FetchedAt    time.Time `json:"fetched_at"`
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256"`
}

// fetchLocks maps a list path to a chan struct{} of capacity 1 that
// serializes Fetch calls for it. Entries are never removed: there is one per
// configured URL.
var fetchLocks sync.Map

// fetchLock takes the lock for path, or gives up when ctx ends.
func fetchLock(ctx context.Context, path string) (unlock func(), err error) {
	v, _ := fetchLocks.LoadOrStore(path, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Path returns the file that holds (or will hold) the copy of url:
// Dir/<first 16 hex digits of sha256(url)>.list. Its metadata is in the same
// name with ".meta" for ".list". Different spellings of one URL get
// different files.
func (f *Fetcher) Path(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(f.Dir, hex.EncodeToString(sum[:8])+".list")
}

// fetchMetaPath returns the metadata file for the list file path.
func fetchMetaPath(path string) string {
	return path[:len(path)-len(".list")] + ".meta"
}

// Cached reports the copy of url on disk and when it was last fetched
// successfully (or checked with a 304), if any. ok is false if there is no
// copy or its metadata is missing or unreadable. It makes no request.
func (f *Fetcher) Cached(url string) (path string, fetched time.Time, ok bool) {
	path = f.Path(url)
	m, err := readFetchMeta(fetchMetaPath(path))
	if err != nil {
		return "", time.Time{}, false
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return "", time.Time{}, false
	}
	return path, m.FetchedAt, true
}

func readFetchMeta(path string) (*fetchMeta, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m fetchMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// fetchRedactURL is u.Redacted, except that a user name is hidden as well as a
// password: list URLs often carry an access token as the user name.
func fetchRedactURL(u *neturl.URL) string {
	if u.User == nil {
		return u.Redacted()
	}
	c := *u
	c.User = neturl.User("xxxxx")
	return c.String()
}

// Fetch downloads url unless its copy is younger than maxAge (maxAge 0
// means always fetch; a copy whose fetched time is in the future counts as
// old). It returns the path of the copy and whether its content differs (by
// SHA-256) from the copy before the call; changed is also true when there was
// no usable previous copy.
//
// The request carries If-None-Match / If-Modified-Since from the last copy.
// A 304 keeps the copy and updates its fetched time (and validators). A 200
// body is streamed to a temporary file in Dir, fsynced and renamed over the
// copy, and the metadata is replaced the same way, so a reader never sees a
// half-written file.
//
// Only http and https URLs are accepted. Any failure (bad URL, network
// error, status other than 200 or 304, body larger than MaxBytes, empty
// body, disk error) returns "", false and an error naming the URL without
// credentials; the previous copy, if any, is left untouched and Cached still
// reports it. An empty 200 body is an error ("empty list") so that a broken
// server cannot wipe a list: a list that is really meant to be empty should
// hold at least a comment line.
func (f *Fetcher) Fetch(ctx context.Context, url string, maxAge time.Duration) (path string, changed bool, err error) {
	u, err := neturl.Parse(url)
	if err != nil {
		// The parse error quotes the URL; do not repeat it.
		return "", false, errors.New("lists: fetching list: invalid URL")
	}
	name := fetchRedactURL(u)
	fail := func(format string, a ...any) (string, bool, error) {
		return "", false, fmt.Errorf("lists: fetching %s: "+format, append([]any{name}, a...)...)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail("only http and https URLs are supported")
	}
	if u.Host == "" {
		return fail("no host in URL")
	}
	if f.Client == nil {
		return fail("no HTTP client")
	}
	if f.Dir == "" {
		return fail("no directory for lists")
	}

	path = f.Path(url)
	metaPath := fetchMetaPath(path)
	unlock, err := fetchLock(ctx, path)
	if err != nil {
		return fail("%w", err)
	}
	defer unlock()

	now := time.Now
	if f.Now != nil {
		now = f.Now
	}

	// What is on disk, and can it be trusted for a conditional request?
	old, merr := readFetchMeta(metaPath)
	fi, serr := os.Stat(path)
	haveCopy := serr == nil && fi.Mode().IsRegular()
	if old != nil && merr == nil && haveCopy && fi.Size() == old.Size && maxAge > 0 {
		if age := now().Sub(old.FetchedAt); age >= 0 && age < maxAge {
			return path, false, nil
		}
	}
	var prevSum string // hash of the copy, if the metadata describes it
	if old != nil && haveCopy && fi.Size() == old.Size {
		if sum, err := fetchFileSum(path); err == nil && sum == old.SHA256 {
			prevSum = sum
		}
	}

	if err := os.MkdirAll(f.Dir, 0o750); err != nil {
		return fail("creating directory: %w", err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail("building request: %w", fetchUnwrapURLError(err))
	}
	if prevSum != "" {
		if old.ETag != "" {
			req.Header.Set("If-None-Match", old.ETag)
		}
		if old.LastModified != "" {
			req.Header.Set("If-Modified-Since", old.LastModified)
		}
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return fail("%w", fetchUnwrapURLError(err))
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		if prevSum == "" {
			return fail("304 Not Modified without a previous copy")
		}
		m := *old
		m.URL = name
		m.FetchedAt = now().UTC()
		if v := resp.Header.Get("ETag"); v != "" {
			m.ETag = v
		}
		if v := resp.Header.Get("Last-Modified"); v != "" {
			m.LastModified = v
		}
		tmp, err := writeFetchMeta(f.Dir, metaPath, &m)
		if err == nil {
			err = os.Rename(tmp, metaPath)
			if err != nil {
				os.Remove(tmp)
			}
		}
		if err != nil {
			return fail("saving metadata: %w", err)
		}
		fetchSyncDir(f.Dir)
		return path, false, nil
	default:
		return fail("unexpected status %s", resp.Status)
	}

	limit := f.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	if resp.ContentLength > limit {
		return fail("list too large (%d bytes, limit %d)", resp.ContentLength, limit)
	}

	tmpList, size, sum, err := fetchBody(f.Dir, path, resp.Body, limit)
	if err != nil {
		return fail("%w", err)
	}
	defer func() {
		if tmpList != "" {
			os.Remove(tmpList)
		}
	}()
	if size > limit {
		return fail("list too large (more than %d bytes)", limit)
	}
	if size == 0 {
		return fail("empty list")
	}

	changed = sum != prevSum
	m := fetchMeta{
		URL:          name,
		FetchedAt:    now().UTC(),
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		Size:         size,
		SHA256:       sum,
	}
	tmpMeta, err := writeFetchMeta(f.Dir, metaPath, &m)
	if err != nil {
		return fail("saving metadata: %w", err)
	}
	if changed {
		if err := os.Rename(tmpList, path); err != nil {
			os.Remove(tmpMeta)
			return fail("saving list: %w", err)
		}
		tmpList = ""
	}
	if err := os.Rename(tmpMeta, metaPath); err != nil {
		os.Remove(tmpMeta)
		// The list may be new but the metadata still describes the old
		// one: the next Fetch sees the mismatch and starts afresh.
		return fail("saving metadata: %w", err)
	}
	fetchSyncDir(f.Dir)
	return path, changed, nil
}

// fetchUnwrapURLError drops the *url.Error wrapper of net/http, whose text
// holds the URL with its user name.
func fetchUnwrapURLError(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// fetchBody copies at most limit+1 bytes of body to a new temporary file
// next to path and fsyncs it. It returns the file's name, the number of
// bytes copied and their hex SHA-256. On error the file is already removed.
func fetchBody(dir, path string, body io.Reader, limit int64) (tmp string, size int64, sum string, err error) {
	fh, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", 0, "", fmt.Errorf("saving list: %w", err)
	}
	name := fh.Name()
	defer func() {
		if err != nil {
			fh.Close()
			os.Remove(name)
		}
	}()
	if err = fh.Chmod(0o640); err != nil {
		return "", 0, "", fmt.Errorf("saving list: %w", err)
	}
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(fh, h), io.LimitReader(body, limit+1))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", 0, "", fmt.Errorf("saving list: %w", err)
		}
		return "", 0, "", fmt.Errorf("reading body: %w", err)
	}
	if err = fh.Sync(); err != nil {
		return "", 0, "", fmt.Errorf("saving list: %w", err)
	}
	if err = fh.Close(); err != nil {
		return "", 0, "", fmt.Errorf("saving list: %w", err)
	}
	return name, size, hex.EncodeToString(h.Sum(nil)), nil
}

// writeFetchMeta writes m to a new fsynced temporary file next to metaPath
// and returns its name.
func writeFetchMeta(dir, metaPath string, m *fetchMeta) (string, error) {
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	fh, err := os.CreateTemp(dir, filepath.Base(metaPath)+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := fh.Name()
	err = fh.Chmod(0o640)
	if err == nil {
		_, err = fh.Write(b)
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// fetchFileSum returns the hex SHA-256 of the file at path.
func fetchFileSum(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fetchSyncDir makes renames in dir durable. Errors are ignored: some file
// systems cannot sync a directory, and the files themselves are complete.
func fetchSyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
