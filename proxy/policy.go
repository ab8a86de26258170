package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"waygate/filter"
)

// continuePath is the path, on any host, of the link on the warn page. The
// proxy answers it itself; it never reaches an origin.
const continuePath = "/.waygate/continue"

// tokenLifetime is how long the continue link on a warn page stays valid.
const tokenLifetime = 15 * time.Minute

// PageData is what the block and warn templates are executed with. Every
// field is escaped by html/template.
type PageData struct {
	Status     int
	Title      string
	URL        string
	Host       string
	Categories []string
	Category   string
	Rule       string
	Reason     string
	Entry      string
	Source     string
	Policy     string
	Time       string
	RequestID  string
	// ContinueURL and WarnFor are set on warn pages.
	ContinueURL string
	WarnFor     string
}

// decide applies the policy to a request. It answers blocked and warned
// requests itself and returns false for them; for the rest it returns true
// and the request goes on.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, rs *reqState, host string, port uint16) bool {
	st := rs.st
	if st.filter == nil {
		return true
	}
	path := ""
	if r.Method != http.MethodConnect {
		path = r.URL.EscapedPath()
	}
	now := st.now()
	d := st.filter.Decide(&filter.Request{
		Client: rs.client, User: rs.user, Method: r.Method, Host: host, Port: port, Path: path, Time: now,
	})
	rs.decision = &d
	switch d.Action {
	case filter.ActionAllow:
		return true
	case filter.ActionMonitor:
		s.log.Info("policy would block (monitor)", "request_id", rs.id, "client", rs.client, "user", rs.user,
			"host", d.Host, "rule", d.Rule, "category", d.Category, "entry", d.Entry)
		return true
	case filter.ActionWarn:
		if s.grants.allowed(grantKey{rs.client, rs.user, d.Rule, warnScope(&d)}, now) {
			d.Reason = filter.ReasonWarnAccepted
			return true
		}
		if r.Method != http.MethodConnect {
			s.writePolicyPage(w, r, rs, &d, true, now)
			return false
		}
		// No page can be shown inside a tunnel: warn falls back to block.
	}
	rs.denied = denyPolicy
	s.writePolicyPage(w, r, rs, &d, false, now)
	return false
}

// warnScope is what a "continue" lets through: the list entry that matched
// (so a site's subdomains come with it), or the host.
func warnScope(d *filter.Decision) string {
	if d.Entry != "" {
		return d.Entry
	}
	return d.Host
}

func (s *Server) writePolicyPage(w http.ResponseWriter, r *http.Request, rs *reqState, d *filter.Decision, warn bool, now time.Time) {
	data := PageData{
		Status: http.StatusForbidden, Title: "Blocked by policy", URL: pageURL(r), Host: d.Host,
		Categories: d.Categories, Category: d.Category, Rule: d.Rule, Reason: d.Reason.String(),
		Entry: d.Entry, Source: d.Source, Policy: d.PolicyVersion,
		Time: now.UTC().Format(time.RFC3339), RequestID: rs.id,
	}
	tmpl := rs.st.blockPage
	if warn {
		data.Title = "Are you sure?"
		data.WarnFor = d.WarnFor.String()
		data.ContinueURL = s.continueURL(r, rs, d, now)
		tmpl = rs.st.warnPage
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		s.log.Error("policy page template failed; answering with the built-in page", "error", err)
		buf.Reset()
		builtin := blockTemplate
		if warn {
			builtin = warnTemplate
		}
		builtin.Execute(&buf, data)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusForbidden)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// continueURL builds the link of the warn page: on the same host, so the
// browser sends it through the proxy, with a token that binds it to this
// client, user, rule and scope for a short time.
func (s *Server) continueURL(r *http.Request, rs *reqState, d *filter.Decision, now time.Time) string {
	exp := now.Add(tokenLifetime).Unix()
	q := url.Values{}
	q.Set("u", r.URL.String())
	q.Set("r", d.Rule)
	q.Set("s", warnScope(d))
	q.Set("e", strconv.FormatInt(exp, 10))
	q.Set("t", s.grants.sign(rs.client, rs.user, d.Rule, warnScope(d), exp))
	return "http://" + r.URL.Host + continuePath + "?" + q.Encode()
}

// serveContinue handles the warn page's link: it checks the token, lets
// the client through for the rule's warn time and sends it back to the URL.
func (s *Server) serveContinue(w http.ResponseWriter, r *http.Request, rs *reqState) {
	q := r.URL.Query()
	target, rule, scope := q.Get("u"), q.Get("r"), q.Get("s")
	exp, err := strconv.ParseInt(q.Get("e"), 10, 64)
	now := rs.st.now()
	u, uerr := url.Parse(target)
	switch {
	case err != nil || uerr != nil || u.Scheme != "http" || !strings.EqualFold(u.Host, r.URL.Host):
		// Only back to the same host: the link must not be an open redirect.
		s.writePage(w, r, rs, http.StatusBadRequest, "Invalid link", "This continue link is not valid.", "")
		return
	case now.Unix() > exp:
		s.writePage(w, r, rs, http.StatusBadRequest, "Link expired", "This continue link has expired. Load the page again.", "")
		return
	case !hmac.Equal([]byte(q.Get("t")), []byte(s.grants.sign(rs.client, rs.user, rule, scope, exp))):
		s.writePage(w, r, rs, http.StatusForbidden, "Invalid link", "This continue link was not issued to you.", "")
		return
	}
	d := rs.st.filter.Decide(&filter.Request{Client: rs.client, User: rs.user, Method: http.MethodGet,
		Host: u.Hostname(), Path: u.EscapedPath(), Time: now})
	if d.Action != filter.ActionWarn || d.Rule != rule {
		// The policy changed since the page was shown: decide afresh.
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	s.grants.grant(grantKey{rs.client, rs.user, rule, scope}, now.Add(d.WarnFor))
	s.log.Info("user continued past a warning", "request_id", rs.id, "client", rs.client, "user", rs.user,
		"rule", rule, "scope", scope, "for", d.WarnFor)
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// grantKey identifies what a "continue" allowed.
type grantKey struct {
	client netip.Addr
	user   string
	rule   string
	scope  string
}

// grants remembers who continued past which warning until when. It lives
// as long as the Server, so a reload does not bring warnings back.
type grants struct {
	key []byte // HMAC key of continue tokens, random per process

	mu    sync.Mutex
	until map[grantKey]time.Time
}

const maxGrants = 100000

func newGrants() *grants {
	k := make([]byte, 32)
	rand.Read(k)
	return &grants{key: k, until: map[grantKey]time.Time{}}
}

func (g *grants) allowed(k grantKey, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.until[k]
	return ok && now.Before(t)
}

func (g *grants) grant(k grantKey, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.until) >= maxGrants {
		now := time.Now()
		for k, t := range g.until {
			if now.After(t) {
				delete(g.until, k)
			}
		}
		if len(g.until) >= maxGrants {
			clear(g.until)
		}
	}
	g.until[k] = until
}

// sign returns the token for a continue link.
func (g *grants) sign(client netip.Addr, user, rule, scope string, exp int64) string {
	m := hmac.New(sha256.New, g.key)
	b, _ := client.MarshalBinary()
	m.Write(b)
	for _, s := range []string{user, rule, scope} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(exp))
	m.Write(e[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var (
	blockTemplate = template.Must(template.ParseFS(pageFS, "pages/block.html", "pages/layout.html"))
	warnTemplate  = template.Must(template.ParseFS(pageFS, "pages/warn.html", "pages/layout.html"))
)
