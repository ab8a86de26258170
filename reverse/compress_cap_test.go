package reverse

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestCompressBusyCap runs more concurrent gzip responses than there are
// stateful encoders: every response must still decode, and every encoder
// slot must be free afterwards, also after handlers that panic.
func TestCompressBusyCap(t *testing.T) {
	c, err := NewCompressor(DefaultCompressConfig())
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat(`{"k":"value","n":12345},`, 2000)
	gate := make(chan struct{})
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body[:len(body)/2])
		w.(http.Flusher).Flush() // committed to compressing, encoder held
		<-gate
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, body[len(body)/2:])
	}))
	var gz *compressCoding
	for _, cc := range c.codings {
		if cc.name == codingGzip {
			gz = cc
		}
	}
	n := int(gz.maxBusy) * 3
	var wg sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := "/"
			if i%5 == 0 {
				path = "/panic"
			}
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.Header.Set("Accept-Encoding", "gzip")
			recs[i] = httptest.NewRecorder()
			defer func() { recover() }()
			h.ServeHTTP(recs[i], r)
		}()
	}
	close(gate)
	wg.Wait()
	for i, rec := range recs {
		if i%5 == 0 {
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || string(got) != body {
			t.Fatalf("response %d: %d bytes, %v", i, len(got), err)
		}
	}
	if b := gz.busy.Load(); b != 0 {
		t.Errorf("%d encoder slots still taken", b)
	}
}
