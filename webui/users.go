package webui

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
)

// Password rules of accounts made or changed through the API.
const (
	// MinPasswordChars is the shortest password accepted, in characters.
	MinPasswordChars = 12
	// MaxPasswordBytes is the longest password accepted, in bytes: bcrypt
	// ignores anything past 72 bytes.
	MaxPasswordBytes = 72
	// maxUserNameLen bounds the :name of PATCH and DELETE, which may name
	// accounts made outside the API (by `waygate passwd`) with names the
	// API would not accept for a new account.
	maxUserNameLen = 256
)

// ErrLastAdmin is what UserStore.UpdateAccount and DeleteAccount return
// (possibly wrapped) when the change would leave no enabled admin account;
// the API answers 409.
var ErrLastAdmin = errors.New("webui: would leave no enabled admin")

// UserStore manages admin accounts for the /api/v1/users endpoints and
// POST /api/v1/password. It keeps the same accounts AccountStore looks up.
type UserStore interface {
	// Accounts lists every account.
	Accounts(ctx context.Context) ([]Account, error)
	// CreateAccount adds an account, or returns an error wrapping
	// ErrConflict when one with that name exists.
	CreateAccount(ctx context.Context, a Account) error
	// UpdateAccount replaces the account named a.Name, or returns an error
	// wrapping ErrNotFound when there is none, or ErrLastAdmin when the
	// change would leave no enabled admin.
	UpdateAccount(ctx context.Context, a Account) error
	// DeleteAccount deletes the named account, with the errors of
	// UpdateAccount.
	DeleteAccount(ctx context.Context, name string) error
	// DeleteSessions ends every session of user (after a password change,
	// a disable or a role change); none is not an error.
	DeleteSessions(ctx context.Context, user string) error
}

// accountsMu serializes the read-modify-write changes of accounts made by
// this process, so that two concurrent changes of one account (say its
// role and its password) do not undo each other.
var accountsMu sync.Mutex

// userJSON is an account as the API shows it: never its password hash.
type userJSON struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Disabled bool   `json:"disabled"`
}

type createUserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

type updateUserRequest struct {
	Role     *string `json:"role"`
	Password *string `json:"password"`
	Disabled *bool   `json:"disabled"`
}

type passwordRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// validUserName reports whether name is 1 to 64 characters of
// [A-Za-z0-9._@-], the names the API gives new accounts.
func validUserName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '@' || r == '-') {
			return false
		}
	}
	return true
}

// checkRole answers 400 unless role is admin or auditor.
func checkRole(c *gin.Context, role string) bool {
	if role != RoleAdmin && role != RoleAuditor {
		fail(c, http.StatusBadRequest, "role: %q is not %s or %s", clip(role, 64), RoleAdmin, RoleAuditor)
		return false
	}
	return true
}

// checkPassword answers 400 (naming field) unless pw satisfies the
// password rules.
func checkPassword(c *gin.Context, field, pw string) bool {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordChars:
		fail(c, http.StatusBadRequest, "%s: at least %d characters", field, MinPasswordChars)
		return false
	case len(pw) > MaxPasswordBytes:
		fail(c, http.StatusBadRequest, "%s: at most %d bytes (the bcrypt limit)", field, MaxPasswordBytes)
		return false
	}
	return true
}

// hashPassword hashes a password that passed checkPassword.
func hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// userParam returns the :name of a user route.
func userParam(c *gin.Context) (string, bool) {
	name := c.Param("name")
	if name == "" || len(name) > maxUserNameLen || !utf8.ValidString(name) {
		fail(c, http.StatusBadRequest, "name: not an account name")
		return "", false
	}
	return name, true
}

// findAccount returns the named account from the UserStore, or an error
// wrapping ErrNotFound.
func (s *Server) findAccount(ctx context.Context, name string) (Account, error) {
	accts, err := s.opts.Users.Accounts(ctx)
	if err != nil {
		return Account{}, err
	}
	for _, a := range accts {
		if a.Name == name {
			return a, nil
		}
	}
	return Account{}, ErrNotFound
}

// endSessions ends the sessions of user. With keep, the caller's own
// session (p's) survives: it is read before and stored again after.
func (s *Server) endSessions(ctx context.Context, p *principal, user string, keep bool) error {
	var (
		own  Session
		have bool
	)
	if keep && p.Session && p.User == user && s.opts.Sessions != nil {
		sess, err := s.opts.Sessions.Session(ctx, p.key, s.now())
		switch {
		case err == nil:
			own, have = sess, true
		case !errors.Is(err, ErrNotFound):
			return err
		}
	}
	if err := s.opts.Users.DeleteSessions(ctx, user); err != nil {
		return err
	}
	if have {
		return s.opts.Sessions.CreateSession(ctx, p.key, own)
	}
	return nil
}

// listUsers is GET /api/v1/users.
func (s *Server) listUsers(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	if s.opts.Users == nil {
		unavailable(c, "account management")
		return
	}
	accts, err := s.opts.Users.Accounts(c.Request.Context())
	if err != nil {
		s.internal(c, "listing accounts", err)
		return
	}
	out := make([]userJSON, 0, len(accts))
	for _, a := range accts {
		out = append(out, userJSON{Name: a.Name, Role: a.Role, Disabled: a.Disabled})
	}
	slices.SortFunc(out, func(a, b userJSON) int { return strings.Compare(a.Name, b.Name) })
	c.JSON(http.StatusOK, gin.H{"users": out})
}

// createUser is POST /api/v1/users (admin).
func (s *Server) createUser(c *gin.Context) {
	if !s.canManageAccounts(c) {
		return
	}
	var req createUserRequest
	if !decodeJSON(c, &req) {
		return
	}
	if !validUserName(req.Name) {
		fail(c, http.StatusBadRequest, "name: give 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '@' and '-'")
		return
	}
	if !checkRole(c, req.Role) || !checkPassword(c, "password", req.Password) {
		return
	}
	hash, err := hashPassword(req.Password)
	if err != nil {
		s.internal(c, "hashing the password", err)
		return
	}
	p := who(c)
	detail, _ := json.Marshal(map[string]any{"name": req.Name, "role": req.Role})
	err = s.opts.Users.CreateAccount(c.Request.Context(), Account{Name: req.Name, Role: req.Role, PasswordHash: hash})
	switch {
	case errors.Is(err, ErrConflict):
		s.record(c, p.User, "user_create", http.StatusConflict, "exists", string(detail))
		fail(c, http.StatusConflict, "an account named %q exists", req.Name)
		return
	case err != nil:
		s.record(c, p.User, "user_create", http.StatusInternalServerError, clip(err.Error(), 1024), string(detail))
		s.internal(c, "creating the account", err)
		return
	}
	s.record(c, p.User, "user_create", http.StatusCreated, "", string(detail))
	c.JSON(http.StatusCreated, userJSON{Name: req.Name, Role: req.Role})
}

// updateUser is PATCH /api/v1/users/:name (admin): any of role, password
// and disabled. A change of any of them ends the account's sessions, but
// for the caller's own session when they change only their own password.
func (s *Server) updateUser(c *gin.Context) {
	if !s.canManageAccounts(c) {
		return
	}
	name, ok := userParam(c)
	if !ok {
		return
	}
	var req updateUserRequest
	if !decodeJSON(c, &req) {
		return
	}
	if req.Role == nil && req.Password == nil && req.Disabled == nil {
		fail(c, http.StatusBadRequest, "nothing to change: give role, password or disabled")
		return
	}
	if req.Role != nil && !checkRole(c, *req.Role) {
		return
	}
	if req.Password != nil && !checkPassword(c, "password", *req.Password) {
		return
	}
	var hash string
	if req.Password != nil {
		var err error
		if hash, err = hashPassword(*req.Password); err != nil {
			s.internal(c, "hashing the password", err)
			return
		}
	}

	ctx := c.Request.Context()
	p := who(c)
	accountsMu.Lock()
	defer accountsMu.Unlock()
	a, err := s.findAccount(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusNotFound, "no account named %q", clip(name, 64))
		return
	case err != nil:
		s.internal(c, "reading the account", err)
		return
	}
	changes := map[string]any{"name": name}
	if req.Role != nil && *req.Role != a.Role {
		changes["role"], a.Role = *req.Role, *req.Role
	}
	if req.Disabled != nil && *req.Disabled != a.Disabled {
		changes["disabled"], a.Disabled = *req.Disabled, *req.Disabled
	}
	if req.Password != nil {
		changes["password_changed"], a.PasswordHash = true, hash
	}
	err = s.opts.Users.UpdateAccount(ctx, a)
	detail, _ := json.Marshal(changes)
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusNotFound, "no account named %q", clip(name, 64))
		return
	case errors.Is(err, ErrLastAdmin):
		s.record(c, p.User, "user_update", http.StatusConflict, "last admin", string(detail))
		fail(c, http.StatusConflict, "refused: this would leave no enabled admin account (make another account an admin first)")
		return
	case err != nil:
		s.record(c, p.User, "user_update", http.StatusInternalServerError, clip(err.Error(), 1024), string(detail))
		s.internal(c, "updating the account", err)
		return
	}
	var endErr error
	if len(changes) > 1 {
		onlyOwnPassword := name == p.User && len(changes) == 2 && req.Password != nil
		endErr = s.endSessions(ctx, p, name, onlyOwnPassword)
		changes["sessions_ended"] = endErr == nil
		detail, _ = json.Marshal(changes)
	}
	s.record(c, p.User, "user_update", http.StatusOK, "", string(detail))
	if endErr != nil {
		s.internal(c, "ending the account's sessions (the change itself was saved)", endErr)
		return
	}
	c.JSON(http.StatusOK, userJSON{Name: a.Name, Role: a.Role, Disabled: a.Disabled})
}

// deleteUser is DELETE /api/v1/users/:name (admin); nobody deletes their
// own account.
func (s *Server) deleteUser(c *gin.Context) {
	if !s.canManageAccounts(c) {
		return
	}
	name, ok := userParam(c)
	if !ok {
		return
	}
	p := who(c)
	if name == p.User {
		fail(c, http.StatusConflict, "you cannot delete your own account")
		return
	}
	ctx := c.Request.Context()
	detail, _ := json.Marshal(map[string]any{"name": name})
	accountsMu.Lock()
	err := s.opts.Users.DeleteAccount(ctx, name)
	accountsMu.Unlock()
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusNotFound, "no account named %q", clip(name, 64))
		return
	case errors.Is(err, ErrLastAdmin):
		s.record(c, p.User, "user_delete", http.StatusConflict, "last admin", string(detail))
		fail(c, http.StatusConflict, "refused: this would leave no enabled admin account")
		return
	case err != nil:
		s.record(c, p.User, "user_delete", http.StatusInternalServerError, clip(err.Error(), 1024), string(detail))
		s.internal(c, "deleting the account", err)
		return
	}
	// The account is gone, so its sessions no longer work anyway; do not
	// leave them lying around.
	endErr := s.opts.Users.DeleteSessions(ctx, name)
	if endErr != nil {
		s.log.Warn("webui: ending the sessions of a deleted account", "user", clip(name, 128), "error", endErr)
	}
	s.record(c, p.User, "user_delete", http.StatusOK, "", string(detail))
	c.JSON(http.StatusOK, gin.H{"deleted": name})
}

// changePassword is POST /api/v1/password: the caller changes their own
// password, from a browser session only. Wrong current passwords count as
// failed logins of the name and the client address, and are throttled
// like them.
func (s *Server) changePassword(c *gin.Context) {
	if !onlyParams(c) {
		return
	}
	p := who(c)
	if !p.Session {
		fail(c, http.StatusForbidden, "passwords can be changed only from a browser session, not with an API token")
		return
	}
	if s.opts.Users == nil {
		unavailable(c, "changing passwords")
		return
	}
	var req passwordRequest
	if !decodeJSON(c, &req) {
		return
	}
	if req.Current == "" {
		fail(c, http.StatusBadRequest, "current: required (your current password)")
		return
	}
	if len(req.Current) > 1024 {
		fail(c, http.StatusForbidden, "wrong current password")
		return
	}
	if !checkPassword(c, "new", req.New) {
		return
	}
	now := s.now()
	ckey, ukey := clientKey(c.Request.RemoteAddr), "u:"+p.User
	if wait := max(s.limiter.retryAfter(ckey, now), s.limiter.retryAfter(ukey, now)); wait > 0 {
		secs := int64(math.Ceil(wait.Seconds()))
		c.Header("Retry-After", strconv.FormatInt(secs, 10))
		fail(c, http.StatusTooManyRequests, "too many failed attempts; try again in %d seconds", secs)
		return
	}

	ctx := c.Request.Context()
	accountsMu.Lock()
	defer accountsMu.Unlock()
	a, err := s.findAccount(ctx, p.User)
	switch {
	case errors.Is(err, ErrNotFound):
		fail(c, http.StatusUnauthorized, "account unknown or disabled")
		return
	case err != nil:
		s.internal(c, "reading the account", err)
		return
	}
	if a.PasswordHash == "" || s.compare([]byte(a.PasswordHash), []byte(req.Current)) != nil {
		s.limiter.fail(ckey, now)
		s.limiter.fail(ukey, now)
		s.record(c, p.User, "password_change", http.StatusForbidden, "wrong current password", "")
		fail(c, http.StatusForbidden, "wrong current password")
		return
	}
	if a.PasswordHash, err = hashPassword(req.New); err != nil {
		s.internal(c, "hashing the password", err)
		return
	}
	if err := s.opts.Users.UpdateAccount(ctx, a); err != nil {
		s.record(c, p.User, "password_change", http.StatusInternalServerError, clip(err.Error(), 1024), "")
		s.internal(c, "changing the password", err)
		return
	}
	s.limiter.reset(ukey)
	endErr := s.endSessions(ctx, p, p.User, true)
	detail, _ := json.Marshal(map[string]any{"sessions_ended": endErr == nil})
	s.record(c, p.User, "password_change", http.StatusOK, "", string(detail))
	if endErr != nil {
		s.internal(c, "ending your other sessions (the password was changed)", endErr)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "password changed"})
}

// canManageAccounts checks what every account change needs: no query
// parameters, an account store, and a browser session (never an API
// token). It answers the request when one is missing.
func (s *Server) canManageAccounts(c *gin.Context) bool {
	if !onlyParams(c) {
		return false
	}
	if s.opts.Users == nil {
		unavailable(c, "account management")
		return false
	}
	return needSession(c, who(c), "Accounts")
}
