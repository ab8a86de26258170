package reverse

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"waygate/proxy/upstream"
)

// The fast path forwards the bulk of reverse traffic, bodyless GET and
// HEAD requests without upgrades, without httputil.ReverseProxy: no request
// clone, no context copy, no per-response media-type parsing. It keeps
// ReverseProxy's rules: hop-by-hop headers and those named in Connection
// are removed both ways, TE: trailers is kept, the client's Host is kept,
// X-Forwarded-* and Forwarded are set as in rewrite, a Go default
// User-Agent is never added, announced trailers are passed on, event
// streams and bodies of unknown length are flushed as they come, and a
// backend that fails mid-body aborts the response (http.ErrAbortHandler)
// rather than ending it as if it were complete. Everything else takes
// ReverseProxy.

// hopHeaders are removed from messages forwarded either way (RFC 9110
// section 7.6.1), besides the headers Connection names.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// fastEligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if (r.Body != nil && r.Body != http.NoBody) || r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	h := r.Header
	_, up := h["Upgrade"]
	_, expect := h["Expect"]
	_, trailer := h["Trailer"]
	return !up && !expect && !trailer
}

// dispatch is the route's innermost handler: the fast path when it can,
// ReverseProxy otherwise (with the request state in the context, where
// ReverseProxy's hooks find it).
type dispatch struct {
	rt *route
	s  *Server
}

func (d dispatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs := stateFromWriter(w)
	if rs == nil {
		// Not through Server.ServeHTTP (cannot happen): no state to keep.
		rs = &reqState{}
	}
	if fastEligible(r) {
		d.s.serveFast(w, r, d.rt, rs)
		return
	}
	d.rt.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, rs)))
}

// stateFromWriter finds the request state carried by the statusWriter at
// the bottom of w's wrappers.
func stateFromWriter(w http.ResponseWriter) *reqState {
	for {
		if sw, ok := w.(*statusWriter); ok {
			return sw.rs
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

// serveFast forwards r to a backend of rt and streams the answer back.
func (s *Server) serveFast(w http.ResponseWriter, r *http.Request, rt *route, rs *reqState) {
	u := &url.URL{Scheme: "http", Host: rt.cfg.Name, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if rt.cfg.StripPrefix {
		StripPrefix(u, rt.cfg.Match.PathPrefix)
	}
	out := newOutRequest(r, u, make(http.Header, len(r.Header)+5))
	copyEndToEnd(out.Header, r.Header)
	if teTrailers(r.Header) {
		out.Header["Te"] = []string{"trailers"}
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // no Go default
	}
	out.Header.Del("X-Forwarded-For")
	out.Header.Del("X-Forwarded-Host")
	out.Header.Del("X-Forwarded-Proto")
	setForwarded(out.Header, r, rs)

	resp, err := rt.transport.roundTrip(out, rs)
	if err != nil {
		s.handleError(w, r, rs, err)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	removeHop(h, resp.Header)
	rt.security.apply(h, rs.tls)
	var announced []string
	for k := range resp.Trailer {
		announced = append(announced, k)
	}
	if len(announced) > 0 {
		h["Trailer"] = []string{strings.Join(announced, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	flush := resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if err := copyBody(w, resp.Body, flush); err != nil {
		if r.Context().Err() == nil && !errors.Is(err, errClientWrite) {
			// The backend failed mid-body: the client must not take a
			// truncated body for a whole one.
			rs.err, rs.cause = err, upstream.CauseOf(err)
			panic(http.ErrAbortHandler)
		}
		return
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
}

// newOutRequest is the request to forward for in: in's method, context
// and Host, with url and header, and nothing else of in's (a client
// request in every other field). It costs one allocation where
// http.NewRequestWithContext costs several (it parses a URL and makes a
// header that would be replaced).
func newOutRequest(in *http.Request, u *url.URL, h http.Header) *http.Request {
	var empty http.Request
	out := empty.WithContext(in.Context()) // the only way to set the context
	out.Method = in.Method
	out.URL = u
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Header = h
	out.Host = in.Host
	return out
}

// errClientWrite marks a failed write to the client.
var errClientWrite = errors.New("writing to the client failed")

// copyBody copies a backend body to the client with a pooled buffer,
// flushing after every read when flush is set.
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	buf := bufferPool.Get()
	defer bufferPool.Put(buf)
	var f http.Flusher
	if flush {
		f, _ = w.(http.Flusher)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errClientWrite
			}
			if f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// copyEndToEnd copies the headers of src that are not hop-by-hop into dst
// (which must be empty), sharing the value slices.
func copyEndToEnd(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
	removeHop(dst, src)
}

// removeHop deletes from h the hop-by-hop headers and those that src's
// Connection header names.
func removeHop(h, src http.Header) {
	for _, v := range src["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				delete(h, http.CanonicalHeaderKey(f))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// teTrailers reports whether the client said TE: trailers, which is passed
// on (gRPC needs it).
func teTrailers(h http.Header) bool {
	return upstream.HeaderHasToken(h, "Te", "trailers")
}
