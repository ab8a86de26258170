package webui

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
)

// Token lifetimes. A token that never expires is not offered.
const (
	// DefaultTokenLifetime is the lifetime of a token created without
	// expires_in (or with expires_in null).
	DefaultTokenLifetime = 90 * 24 * time.Hour
	// MaxTokenLifetime is the longest expires_in accepted.
	MaxTokenLifetime = 366 * 24 * time.Hour
	// minTokenLifetime is the shortest.
	minTokenLifetime = time.Minute
)

type createTokenRequest struct {
	Name     string `json:"name"`
	ReadOnly bool   `json:"read_only"`
	// ExpiresIn is a number of seconds, or a string: a Go duration
	// ("720h") or days ("30d").
	ExpiresIn json.RawMessage `json:"expires_in"`
}

// tokenJSON is a token as the API shows it; the secret appears only in
// the answer to its creation.
type tokenJSON struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	User     string     `json:"user"`
	ReadOnly bool       `json:"read_only"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
	Secret   string     `json:"secret,omitempty"`
}

func tokenView(t *Token) tokenJSON {
	v := tokenJSON{ID: t.ID, Name: t.Name, User: t.User, ReadOnly: t.ReadOnly, Created: t.Created}
	if !t.LastUsed.IsZero() {
		v.LastUsed = &t.LastUsed
	}
	if !t.Expires.IsZero() {
		v.Expires = &t.Expires
	}
	return v
}

// parseLifetime parses expires_in; empty means the default.
func parseLifetime(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return DefaultTokenLifetime, nil
	}
	var d time.Duration
	var secs float64
	var str string
	switch {
	case json.Unmarshal(raw, &secs) == nil:
		if secs != secs || secs > MaxTokenLifetime.Seconds() || secs < 0 {
			return 0, fmt.Errorf("at most %d seconds (%s)", int64(MaxTokenLifetime.Seconds()), "366 days")
		}
		d = time.Duration(secs * float64(time.Second))
	case json.Unmarshal(raw, &str) == nil:
		if n, ok := strings.CutSuffix(str, "d"); ok {
			days, err := strconv.Atoi(n)
			if err != nil || days < 0 || days > 366 {
				return 0, fmt.Errorf("%q: want a number of days up to 366 (\"30d\")", str)
			}
			d = time.Duration(days) * 24 * time.Hour
		} else {
			var err error
			if d, err = time.ParseDuration(str); err != nil {
				return 0, fmt.Errorf("%q: want seconds, a duration (\"720h\") or days (\"30d\")", str)
			}
		}
	default:
		return 0, errors.New("want seconds, a duration (\"720h\") or days (\"30d\")")
	}
	if d < minTokenLifetime || d > MaxTokenLifetime {
		return 0, fmt.Errorf("must be between 1 minute and 366 days, not %v", d)
	}
	return d, nil
}

// validName reports whether a token name is 1 to 64 printable characters.
func validName(s string) bool {
	if s == "" || len(s) > 64 || strings.TrimSpace(s) == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// validID reports whether id can be a token ID: 1 to 64 URL-safe
// characters.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// needSession refuses requests made with API tokens: API tokens and
// accounts are managed from browser sessions only, so a leaked token can
// neither make new tokens nor a lasting account. what names the managed
// thing in the error.
func needSession(c *gin.Context, p *principal, what string) bool {
	if !p.Session {
		fail(c, http.StatusForbidden, "%s can be managed only from a browser session, not with an API token", what)
		return false
	}
	return true
}

// createToken is POST /api/v1/tokens (admin, session).
func (s *Server) createToken(c *gin.Context) {
	p := who(c)
	if !needSession(c, p, "API tokens") {
		return
	}
	if s.opts.Tokens == nil {
		unavailable(c, "API token management")
		return
	}
	var req createTokenRequest
	if !decodeJSON(c, &req) {
		return
	}
	if !validName(req.Name) {
		fail(c, http.StatusBadRequest, "name: give 1 to 64 printable characters")
		return
	}
	life, err := parseLifetime(req.ExpiresIn)
	if err != nil {
		fail(c, http.StatusBadRequest, "expires_in: %v", err)
		return
	}
	now := s.now()
	secret := TokenPrefix + randomString(32)
	t := Token{
		ID:       randomString(12),
		Name:     req.Name,
		User:     p.User,
		ReadOnly: req.ReadOnly,
		Created:  now,
		Expires:  now.Add(life),
	}
	if err := s.opts.Tokens.CreateToken(c.Request.Context(), sha256.Sum256([]byte(secret)), t); err != nil {
		s.internal(c, "creating the token", err)
		return
	}
	detail, _ := json.Marshal(map[string]any{"id": t.ID, "name": t.Name, "read_only": t.ReadOnly, "expires": t.Expires})
	s.record(c, p.User, "token_create", http.StatusCreated, "", string(detail))
	v := tokenView(&t)
	v.Secret = secret
	c.JSON(http.StatusCreated, v)
}

// listTokens is GET /api/v1/tokens: every token for admins, the caller's
// own for auditors.
func (s *Server) listTokens(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Tokens == nil {
		unavailable(c, "API token management")
		return
	}
	p := who(c)
	user := p.User
	if p.Role == RoleAdmin {
		user = ""
	}
	ts, err := s.opts.Tokens.Tokens(c.Request.Context(), user)
	if err != nil {
		s.internal(c, "listing tokens", err)
		return
	}
	out := make([]tokenJSON, 0, len(ts))
	for i := range ts {
		out = append(out, tokenView(&ts[i]))
	}
	c.JSON(http.StatusOK, gin.H{"tokens": out})
}

// deleteToken is DELETE /api/v1/tokens/:id (admin, session).
func (s *Server) deleteToken(c *gin.Context) {
	p := who(c)
	if !needSession(c, p, "API tokens") {
		return
	}
	if s.opts.Tokens == nil {
		unavailable(c, "API token management")
		return
	}
	id := c.Param("id")
	if !validID(id) {
		fail(c, http.StatusBadRequest, "id: not a token ID")
		return
	}
	err := s.opts.Tokens.DeleteToken(c.Request.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusNotFound, "no token with ID %s", id)
		return
	case err != nil:
		s.internal(c, "deleting the token", err)
		return
	}
	detail, _ := json.Marshal(map[string]string{"id": id})
	s.record(c, p.User, "token_delete", http.StatusOK, "", string(detail))
	c.JSON(http.StatusOK, gin.H{"deleted": id})
}
