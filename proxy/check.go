package proxy

import (
	"bytes"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"waygate/filter"
)

// CheckHost is the name the proxy answers itself, so that a browser can
// find out whether it goes through Waygate: http://check.waygate.invalid/.
// The top-level domain "invalid" never resolves (RFC 6761 section 6.4), so
// without a proxy that knows the name the request fails, and with Waygate
// it is answered without any lookup or dial.
const CheckHost = "check.waygate.invalid"

// CheckPixelPath is the path, on CheckHost, of a tiny image for pages
// that test the way through the proxy with an <img>: it loads through
// Waygate and fails everywhere else.
const CheckPixelPath = "/pixel.png"

// checkData is what the check page shows. Every field is escaped by
// html/template.
type checkData struct {
	Title     string
	Client    string
	User      string // empty when the proxy does not authenticate
	Proxy     string // the proxy address the client connected to; empty if unknown
	Time      string
	RequestID string
}

// checkTemplate is the check page, in the layout of the proxy's other
// pages.
var checkTemplate = template.Must(template.Must(template.New("check").Parse(`{{template "head" .}}<body>
<main>
<h1>You are going through Waygate</h1>
<p>This page was answered by the Waygate forward proxy itself. The name
<strong>`+CheckHost+`</strong> exists nowhere else, so only a proxy can answer it: this browser sends
its plain-HTTP requests through Waygate.</p>
<p>Secure (https) sites go through the proxy too when the HTTPS proxy (or the PAC file) is set as well:
most settings use the same proxy for both.</p>
<dl>
<dt>Your address, as the proxy sees it</dt><dd>{{.Client}}</dd>
<dt>Proxy user</dt><dd>{{if .User}}{{.User}}{{else}}none (the proxy did not ask for a sign-in){{end}}</dd>
{{if .Proxy}}<dt>Proxy address used</dt><dd>{{.Proxy}}</dd>{{end}}
<dt>Time</dt><dd>{{.Time}}</dd>
<dt>Request ID</dt><dd>{{.RequestID}}</dd>
</dl>
</main>
</body>
</html>
`)).ParseFS(pageFS, "pages/layout.html"))

// checkPixel is CheckPixelPath's image: one pixel in Waygate green.
var checkPixel = func() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.NRGBA{R: 0x1a, G: 0x7f, B: 0x37, A: 0xff})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic("proxy: encoding the check pixel: " + err.Error()) // cannot happen for an in-memory image
	}
	return b.Bytes()
}()

// isCheckHost reports whether hostport (a request URL's host, with an
// optional port) is CheckHost on port 80. It is on the path of every
// forwarded request, so it compares lengths before anything else.
func isCheckHost(hostport string) bool {
	if len(hostport) < len(CheckHost) || len(hostport) > len(CheckHost)+len(".:80") {
		return false
	}
	h := strings.TrimSuffix(hostport, ":80")
	h = strings.TrimSuffix(h, ".")
	return strings.EqualFold(h, CheckHost)
}

// serveCheck answers a request for CheckHost: the check page at "/", the
// pixel at CheckPixelPath. It runs after the client was admitted and
// authenticated like any other request and never looks anything up or
// dials. The audit trail records it as an allowed request with reason
// gateway (the policy is not asked, since nothing leaves the gateway), so
// that admins can see who checked.
func (s *Server) serveCheck(w http.ResponseWriter, r *http.Request, rs *reqState) {
	rs.decision = &filter.Decision{Action: filter.ActionAllow, Reason: filter.ReasonGateway, Host: CheckHost}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.writePage(w, r, rs, http.StatusMethodNotAllowed, "Method not allowed", "The Waygate check answers GET only.", "")
		return
	}
	var body []byte
	var contentType string
	switch r.URL.Path {
	case "", "/":
		data := checkData{
			Title:     "You are going through Waygate",
			Client:    rs.client.String(),
			User:      rs.user,
			Time:      time.Now().UTC().Format(time.RFC3339),
			RequestID: rs.id,
		}
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			data.Proxy = la.String()
		}
		var b bytes.Buffer
		if err := checkTemplate.Execute(&b, data); err != nil {
			// The template is fixed and tested; say the essential in
			// plain words rather than nothing.
			s.log.Error("check page template failed", "error", err)
			b.Reset()
			b.WriteString("You are going through Waygate.\n")
			contentType = "text/plain; charset=utf-8"
		} else {
			contentType = "text/html; charset=utf-8"
		}
		body = b.Bytes()
	case CheckPixelPath:
		body, contentType = checkPixel, "image/png"
	default:
		s.writePage(w, r, rs, http.StatusNotFound, "Not found",
			"The Waygate check has a page at / and an image at "+CheckPixelPath+", nothing else.", "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	// Every check must reach the proxy: a cached answer would say "yes"
	// for a browser that no longer goes through it.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
