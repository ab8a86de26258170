package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// navPage is one entry of the navigation bar.
type navPage struct{ Title, Path string }

// navPages are the pages in the navigation bar, in order. A page's
// pageData.Title is its Title here, which marks it as the current page.
var navPages = []navPage{
	{"Start", "/"}, {"Dashboard", "/dashboard"}, {"Logs", "/logs"}, {"Policy", "/policy"},
	{"Categories", "/categories"}, {"Reverse", "/reverse"}, {"Setup", "/setup"},
	{"Admin log", "/admin-log"}, {"Proxy lab", "/lab"},
}

// topPanel is one top list of the dashboard (template "top" in
// dashboard.html), filled by dashboard.js from GET /api/v1/stats.
type topPanel struct {
	Dim   string // the stats dimension; the table's id is "top-" + Dim
	Title string // the panel's heading
	Key   string // the heading of the key column
	Count string // the heading of the count column
	Note  string // a line under the heading; may be empty
}

var topPanels = map[string]topPanel{
	"host":     {Dim: "host", Title: "Top hosts", Key: "Host", Count: "Requests"},
	"user":     {Dim: "user", Title: "Top users", Key: "User", Count: "Requests"},
	"category": {Dim: "category", Title: "Top categories", Key: "Category", Count: "Requests"},
	"error": {Dim: "error", Title: "Upstream errors, last hour", Key: "Cause", Count: "Failures",
		Note: "Requests and tunnels that failed on the way to the site or backend, by cause."},
}

// topPanelOf is the template function topPanel: the panel of dim, or an
// error (a broken template, caught by the tests) for an unknown one.
func topPanelOf(dim string) (topPanel, error) {
	p, ok := topPanels[dim]
	if !ok {
		return topPanel{}, fmt.Errorf("no dashboard panel %q", dim)
	}
	return p, nil
}

// staticFile is an embedded asset, served with an ETag.
type staticFile struct {
	data        []byte
	contentType string
	etag        string
}

var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
	".ico": "image/x-icon",
}

// loadAssets parses the page templates and reads the static files.
func loadAssets() (*template.Template, map[string]*staticFile, error) {
	t, err := template.New("").Funcs(template.FuncMap{"navPages": func() []navPage { return navPages }, "topPanel": topPanelOf}).
		ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, nil, fmt.Errorf("webui: templates: %w", err)
	}
	files := map[string]*staticFile{}
	err = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for this extension", p)
		}
		sum := sha256.Sum256(data)
		files[strings.TrimPrefix(p, "static/")] = &staticFile{data: data, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("webui: static files: %w", err)
	}
	return t, files, nil
}

// serveStatic is GET /static/*file: the embedded assets, nothing else (no
// directory listings).
func (s *Server) serveStatic(c *gin.Context) {
	f, ok := s.static[strings.TrimPrefix(c.Param("file"), "/")]
	if !ok {
		s.notFound(c)
		return
	}
	c.Header("Content-Type", f.contentType)
	c.Header("ETag", f.etag)
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, bytes.NewReader(f.data))
}

// render executes a page template into a buffer first, so that a template
// error is a clean 500, never half a page.
func (s *Server) render(c *gin.Context, status int, name string, data any) {
	var b bytes.Buffer
	if err := s.pages.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error("webui: rendering a page", "template", name, "error", err)
		c.Header("Content-Type", "text/plain; charset=utf-8")
		c.AbortWithStatus(http.StatusInternalServerError)
		_, _ = c.Writer.WriteString("Internal error; see the gateway log.\n")
		return
	}
	c.Data(status, "text/html; charset=utf-8", b.Bytes())
}

// loginPage is GET /login. A visitor who is already logged in goes on to
// the start page.
func (s *Server) loginPage(c *gin.Context) {
	if _, err := c.Request.Cookie(CookieName); err == nil {
		if p, ae := s.authenticate(c); ae == nil && p.Session {
			c.Redirect(http.StatusSeeOther, "/")
			return
		}
	}
	s.render(c, http.StatusOK, "login.html", pageData{Title: "Log in"})
}

// pageData is what a page shows. Every value is escaped by html/template.
type pageData struct {
	Title   string
	User    string
	Role    string
	CSRF    string
	Session bool
	Expires string
}

// page is the pageData of a page titled title for the logged-in user.
func page(c *gin.Context, title string) pageData {
	p := who(c)
	d := pageData{Title: title, User: p.User, Role: p.Role, CSRF: p.CSRF, Session: p.Session}
	if !p.Expires.IsZero() {
		d.Expires = p.Expires.UTC().Format("2006-01-02 15:04 UTC")
	}
	return d
}

// indexPage is GET /: who is logged in, and a way out.
func (s *Server) indexPage(c *gin.Context) {
	s.render(c, http.StatusOK, "index.html", page(c, "Start"))
}

// logFilter is the search form of the logs page: the parameters of GET
// /api/v1/logs that the form offers, as given in the page's query string.
type logFilter struct {
	Since, Until, User, Client, Host, HostSuffix, Category, Action, Status, Kind, Q string
}

// option is one choice of a select.
type option struct {
	Value, Label string
	Selected     bool
}

// logsData is what the logs page shows.
type logsData struct {
	pageData
	F       logFilter
	Actions []option
	Kinds   []option
}

// selectOptions lists "any" and values as options, with cur selected; a
// cur that is none of them (a hand-edited URL) is kept as an option of its
// own, so that the form shows the filter the page searches with.
func selectOptions(cur string, values ...string) []option {
	opts := []option{{Value: "", Label: "any", Selected: cur == ""}}
	found := cur == ""
	for _, v := range values {
		opts = append(opts, option{Value: v, Label: v, Selected: v == cur})
		found = found || v == cur
	}
	if !found {
		opts = append(opts, option{Value: cur, Label: cur, Selected: true})
	}
	return opts
}

// logsPage is GET /logs: the log search form, filled in from the query
// string (so that a search is a bookmarkable URL); logs.js runs the search
// through /api/v1/logs, which validates the parameters.
func (s *Server) logsPage(c *gin.Context) {
	q := func(name string) string { return clip(c.Query(name), maxParamLen) }
	f := logFilter{Since: q("since"), Until: q("until"), User: q("user"), Client: q("client"), Host: q("host"),
		HostSuffix: q("host_suffix"), Category: q("category"), Action: q("action"), Status: q("status"),
		Kind: q("kind"), Q: q("q")}
	d := logsData{
		pageData: page(c, "Logs"),
		F:        f,
		Actions:  selectOptions(f.Action, "allow", "block", "warn", "monitor", "deny"),
		Kinds:    selectOptions(f.Kind, "http", "connect", "reverse", "dns", "admin"),
	}
	s.render(c, http.StatusOK, "logs.html", d)
}

// dashboardPage is GET /dashboard: the shell of the live dashboard. The
// figures are fetched by static/dashboard.js from /api/v1/stats and
// /api/v1/events, so the page itself holds nothing but who is logged in.
func (s *Server) dashboardPage(c *gin.Context) {
	s.render(c, http.StatusOK, "dashboard.html", page(c, "Dashboard"))
}
