package reverse

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

//go:embed pages/error.html
var errorPageText string

var errorPage = template.Must(template.New("error").Parse(errorPageText))

// writePage answers a request with the gateway's own HTML page. Every value
// is escaped by html/template; the page is never cached or sniffed.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, rs *reqState, status int, title, msg string) {
	var buf bytes.Buffer
	err := errorPage.Execute(&buf, struct {
		Status                                int
		Title, Message, Host, Time, RequestID string
	}{status, title, msg, r.Host, s.now().UTC().Format(time.RFC3339), rs.id})
	if err != nil {
		buf.Reset()
		buf.WriteString(strconv.Itoa(status) + " " + title + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}
