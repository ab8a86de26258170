package proxy

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// AuthOptions configure proxy authentication (HTTP Basic, RFC 7617).
type AuthOptions struct {
	// Realm is sent in Proxy-Authenticate. Empty means "Waygate".
	Realm string
	// Users maps a user name to its bcrypt hash. Nil or empty turns
	// authentication off.
	Users map[string]string
	// FailuresPerMinute is how many wrong passwords one client address may
	// send per minute; after that it is answered 429 without a check. Zero
	// means 10.
	FailuresPerMinute int
}

// authenticator checks Proxy-Authorization. bcrypt is deliberately slow,
// so a credential that verified is remembered (by a SHA-256 of user,
// password and hash) for verifiedTTL; a reload builds a new authenticator
// and so forgets them all.
type authenticator struct {
	realmHeader string
	users       map[string][]byte
	perMinute   int

	mu       sync.Mutex
	verified map[[32]byte]time.Time
	limiters map[netip.Addr]*rate.Limiter
}

const (
	verifiedTTL    = 5 * time.Minute
	maxVerified    = 10000
	maxLimiterAddr = 10000
)

// dummyHash is compared against when the user does not exist, so that the
// answer takes as long as for a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("waygate-dummy"), bcrypt.MinCost)

func newAuthenticator(o AuthOptions) (*authenticator, error) {
	realm := o.Realm
	if realm == "" {
		realm = "Waygate"
	}
	if strings.ContainsAny(realm, "\"\\\r\n") {
		return nil, errors.New("proxy: auth realm must not contain quotes, backslashes or line breaks")
	}
	a := &authenticator{
		realmHeader: `Basic realm="` + realm + `", charset="UTF-8"`,
		users:       make(map[string][]byte, len(o.Users)),
		perMinute:   orInt(o.FailuresPerMinute, 10),
		verified:    map[[32]byte]time.Time{},
		limiters:    map[netip.Addr]*rate.Limiter{},
	}
	for name, hash := range o.Users {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, errors.New("proxy: user " + name + ": password hash is not a bcrypt hash")
		}
		a.users[name] = []byte(hash)
	}
	return a, nil
}

type authResult int

const (
	authOK authResult = iota
	authMissing
	authWrong
	authThrottled
)

// check verifies the Proxy-Authorization header value for client.
func (a *authenticator) check(header string, client netip.Addr, now time.Time) (string, authResult) {
	user, pass, ok := parseBasic(header)
	if !ok {
		return "", authMissing
	}
	hash, known := a.users[user]
	key := credentialKey(user, pass, hash)
	a.mu.Lock()
	if exp, ok := a.verified[key]; ok && known && now.Before(exp) {
		a.mu.Unlock()
		return user, authOK
	}
	lim := a.limiters[client]
	if lim != nil && lim.TokensAt(now) < 1 {
		a.mu.Unlock()
		return user, authThrottled
	}
	a.mu.Unlock()

	if !known {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(pass))
		a.fail(client, now)
		return user, authWrong
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		a.fail(client, now)
		return user, authWrong
	}
	a.mu.Lock()
	if len(a.verified) >= maxVerified {
		clear(a.verified)
	}
	a.verified[key] = now.Add(verifiedTTL)
	a.mu.Unlock()
	return user, authOK
}

// fail spends one of client's allowed failures.
func (a *authenticator) fail(client netip.Addr, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lim := a.limiters[client]
	if lim == nil {
		if len(a.limiters) >= maxLimiterAddr {
			clear(a.limiters)
		}
		lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(a.perMinute)), a.perMinute)
		a.limiters[client] = lim
	}
	lim.AllowN(now, 1)
}

func credentialKey(user, pass string, hash []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	h.Write([]byte{0})
	h.Write(hash)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// parseBasic decodes "Basic base64(user:pass)".
func parseBasic(v string) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	return user, pass, true
}

// authenticate enforces proxy authentication; it answers the request and
// returns false when the client may not go on.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, rs *reqState) bool {
	a := rs.st.auth
	user, res := a.check(r.Header.Get("Proxy-Authorization"), rs.client, time.Now())
	switch res {
	case authOK:
		rs.user = user
		r.Header.Del("Proxy-Authorization")
		return true
	case authThrottled:
		rs.denied = denyAuth
		s.log.Warn("proxy login throttled", "client", rs.client, "user", user, "request_id", rs.id)
		w.Header().Set("Retry-After", "60")
		s.writePage(w, r, rs, http.StatusTooManyRequests, "Too many failed logins",
			"Too many wrong passwords were sent from your address. Wait a minute and try again.", "")
		return false
	case authWrong:
		s.log.Info("proxy login failed", "client", rs.client, "user", user, "request_id", rs.id)
	}
	rs.denied = denyAuth
	w.Header().Set("Proxy-Authenticate", a.realmHeader)
	s.writePage(w, r, rs, http.StatusProxyAuthRequired, "Proxy authentication required",
		"Sign in with your proxy user name and password.", "")
	return false
}
