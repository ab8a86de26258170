package proxy

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"time"

	"waygate/proxy/upstream"
)

//go:embed pages/*.html
var pageFS embed.FS

var errorTemplate = template.Must(template.ParseFS(pageFS, "pages/error.html", "pages/layout.html"))

// page is what the error template shows. Every field is escaped by
// html/template.
type page struct {
	Status    int
	Title     string
	Message   string
	Detail    string
	URL       string
	Time      string
	RequestID string
}

func renderPage(p page) []byte {
	var buf bytes.Buffer
	if err := errorTemplate.Execute(&buf, p); err != nil {
		// The template is fixed and tested; fall back to plain text rather
		// than an empty reply.
		return []byte(strconv.Itoa(p.Status) + " " + p.Title + "\n" + p.Message + "\n")
	}
	return buf.Bytes()
}

// pageURL is the address shown on a page: the request's URL for forwarded
// requests, the authority for CONNECT.
func pageURL(r *http.Request) string {
	if r.Method == http.MethodConnect {
		return r.Host
	}
	return r.URL.String()
}

// writePage answers a request with an HTML page.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, rs *reqState, status int, title, msg, detail string) {
	body := renderPage(page{
		Status: status, Title: title, Message: msg, Detail: detail, URL: pageURL(r),
		Time: time.Now().UTC().Format(time.RFC3339), RequestID: rs.id,
	})
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// describeUpstreamError turns an upstream failure into a status and words
// for the user. It records the cause on rs.
func describeUpstreamError(r *http.Request, rs *reqState, err error) (status int, title, msg, detail string) {
	cause := upstream.CauseOf(err)
	if r.Context().Err() != nil {
		cause = upstream.CauseCanceled
	}
	rs.cause, rs.err = cause, err
	host := r.URL.Hostname()
	if r.Method == http.MethodConnect {
		host = r.Host
	}
	switch cause {
	case upstream.CauseNotFound:
		return http.StatusBadGateway, "Name not found", "The name " + host + " does not exist (DNS: not found).", ""
	case upstream.CauseDNS:
		return http.StatusBadGateway, "Name could not be resolved", "The DNS servers did not answer properly for " + host + ".", ""
	case upstream.CauseDenied:
		var de *upstream.DeniedError
		if errors.As(err, &de) {
			detail = de.Error()
		}
		return http.StatusForbidden, "Destination not allowed",
			"The proxy does not connect to " + host + ": it is an internal or reserved address.", detail
	case upstream.CauseRefused:
		return http.StatusBadGateway, "Connection refused", host + " refused the connection.", ""
	case upstream.CauseUnreachable:
		return http.StatusBadGateway, "Host unreachable", "There is no route to " + host + ".", ""
	case upstream.CauseTimeout:
		return http.StatusGatewayTimeout, "Timed out", host + " did not answer in time.", ""
	case upstream.CauseTLS:
		return http.StatusBadGateway, "Secure connection failed",
			"The certificate of " + host + " could not be verified, or the TLS handshake failed.", tlsDetail(err)
	case upstream.CauseReset:
		return http.StatusBadGateway, "Connection reset", host + " closed the connection unexpectedly.", ""
	case upstream.CauseBadAddress:
		return http.StatusBadRequest, "Invalid address", "The address " + host + " cannot be used.", ""
	case upstream.CauseCanceled:
		return 499, "Client closed request", "The request was abandoned by the client.", ""
	}
	return http.StatusBadGateway, "Upstream error", "The request to " + host + " failed.", ""
}

// tlsDetail extracts the part of a TLS error a user can act on.
func tlsDetail(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e.(type) {
		case *upstream.DialError:
			continue
		}
		if s := e.Error(); len(s) < 300 {
			return s
		}
	}
	return ""
}

// upstreamErrorResponse builds the response goproxy sends when the origin
// could not be reached.
func (s *Server) upstreamErrorResponse(r *http.Request, rs *reqState, err error) *http.Response {
	if err == nil {
		err = errors.New("no response")
	}
	status, title, msg, detail := describeUpstreamError(r, rs, err)
	body := renderPage(page{
		Status: status, Title: title, Message: msg, Detail: detail, URL: pageURL(r),
		Time: time.Now().UTC().Format(time.RFC3339), RequestID: rs.id,
	})
	return &http.Response{
		Status:     strconv.Itoa(status) + " " + title,
		StatusCode: status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":           {"text/html; charset=utf-8"},
			"Cache-Control":          {"no-store"},
			"X-Content-Type-Options": {"nosniff"},
		},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// writeUpstreamError answers directly (outside goproxy) with the page for
// an upstream failure.
func (s *Server) writeUpstreamError(w http.ResponseWriter, r *http.Request, rs *reqState, err error) {
	status, title, msg, detail := describeUpstreamError(r, rs, err)
	if status == 499 {
		return
	}
	s.writePage(w, r, rs, status, title, msg, detail)
}
