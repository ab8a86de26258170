package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Errors of AdminStore, always returned wrapped with context: test them
// with errors.Is.
var (
	// ErrNotFound: the account, session, token or revision does not
	// exist (or, for sessions and tokens, no longer counts: expired, or
	// its account is disabled or gone).
	ErrNotFound = errors.New("not found")
	// ErrExists: an account of that name, a session of that key or a
	// token of that id or secret already exists.
	ErrExists = errors.New("already exists")
	// ErrLastAdmin: the change would leave no enabled account with the
	// admin role.
	ErrLastAdmin = errors.New("would leave no enabled admin account")
	// ErrInvalid: an argument is out of its domain (empty name, unknown
	// role, zero expiry, ...).
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge: a revision's config is larger than MaxRevisionConfig.
	ErrTooLarge = errors.New("too large")
)

// The roles of admin accounts.
const (
	RoleAdmin   = "admin"   // may read and change everything
	RoleAuditor = "auditor" // may read
)

// MaxRevisionConfig is the largest Config AddRevision accepts, in bytes.
const MaxRevisionConfig = 4 << 20

// AdminStore keeps the admin UI's accounts, sessions, API tokens and
// config revisions, in the audit database (tables of migration 4). It is
// safe for concurrent use.
//
// Reads are plain queries on a pool of readers (WAL: they never wait for
// a writer). Writes are synchronous: each is one transaction begun with
// BEGIN IMMEDIATE, which waits up to the busy timeout (5 s) for SQLite's
// write lock, so that a check and the change it guards (the last admin,
// an account's existence) are atomic. Writes never go through the audit
// writer's queue.
//
// Times are stored in Unix nanoseconds and returned in UTC; a zero
// time.Time is stored as 0 and comes back zero.
type AdminStore struct {
	rdb *sql.DB // reads
	wdb *sql.DB // writes: _txlock=immediate, busy timeout
	// own is the database OpenAdmin opened (rdb and wdb both), closed by
	// Close; nil for Store.Admin.
	own    *sql.DB
	closed atomic.Bool
}

// Account is an admin UI account.
type Account struct {
	Name         string // unique, case-sensitive, not empty
	Role         string // RoleAdmin or RoleAuditor; anything else is ErrInvalid
	PasswordHash string // bcrypt hash, made by the caller
	// Created is when the account was made; zero in CreateAccount means
	// now.
	Created time.Time
	// PasswordSet is the last password change; zero in CreateAccount
	// means Created, in UpdateAccount now if PasswordHash changed and the
	// stored value otherwise.
	PasswordSet time.Time
	Disabled    bool // a disabled account has no sessions and its tokens do not work
}

// Session is a logged-in browser session of the admin UI.
type Session struct {
	User string // the account
	// Role is the account's role when the session is read (ignored by
	// CreateSession): a demoted admin's sessions lose rights at once.
	Role      string
	CSRF      string    // the session's CSRF token (random, made by the caller)
	Created   time.Time // zero in CreateSession means now
	LastSeen  time.Time // zero in CreateSession means Created
	Expires   time.Time // required: a session ends at Expires
	Client    string    // address it was created from
	UserAgent string    // bounded by the caller
}

// Token is an API token of the admin UI. Its secret is never stored, only
// its SHA-256.
type Token struct {
	ID       string // public identifier shown in the UI (e.g. "tok_abc123"), made by the caller; not empty
	Name     string // what it is for
	User     string // owner; the token has the owner's current role, or RoleAuditor if ReadOnly
	ReadOnly bool
	Created  time.Time // zero in CreateToken means now
	LastUsed time.Time // zero = never used
	Expires  time.Time // zero = never
}

// Revision is a saved version of the config file.
type Revision struct {
	ID      int64     // assigned by AddRevision, increasing, never reused
	Time    time.Time // zero in AddRevision means now
	Author  string
	Comment string
	Config  []byte   // the whole config file as saved; nil in Revisions
	SHA256  [32]byte // of Config, computed by AddRevision
}

// Admin returns the admin store on the Store's database. Reads use the
// Store's readers (DB()); writes use the writer's pool (BEGIN IMMEDIATE,
// Options' busy timeout), to which Admin adds a third connection so that
// admin writes never wait for a Prune in progress; they do wait, up to the
// busy timeout, for a write transaction of the audit writer or of Prune,
// which are kept short. The AdminStore works until Store.Close; its Close
// does nothing. Admin may be called any number of times.
func (s *Store) Admin() *AdminStore {
	// One connection is the audit writer's own (wconn), one Prune's;
	// the third is for admin writes.
	if s.wdb.Stats().MaxOpenConnections < 3 {
		s.wdb.SetMaxOpenConns(3)
	}
	return &AdminStore{rdb: s.db, wdb: s.wdb}
}

// OpenAdmin opens (creating if needed) the database at path and applies
// the migrations like Open does, for commands that run without the audit
// writer (resetting a password, ...). The gateway may be running: both
// wait for each other's write locks (5 s at most). Close it when done.
func OpenAdmin(path string) (*AdminStore, error) {
	if path == "" {
		return nil, errors.New("admin store: path is empty")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("admin store: create directory: %w", err)
	}
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("admin store: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("admin store: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	// The same journal, synchronous and auto_vacuum settings as Open, so
	// that a database this creates is one Open would have created.
	db, err := sql.Open("sqlite3", u.String()+"?_busy_timeout=5000&_txlock=immediate&_journal_mode=WAL&_synchronous=NORMAL&_auto_vacuum=incremental")
	if err != nil {
		return nil, fmt.Errorf("admin store: open %s: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("admin store: %s: %w", path, err)
	}
	return &AdminStore{rdb: db, wdb: db, own: db}, nil
}

// Close closes the database of an AdminStore from OpenAdmin; for one from
// Store.Admin it does nothing. Closing twice returns nil.
func (a *AdminStore) Close() error {
	if a.own == nil || a.closed.Swap(true) {
		return nil
	}
	if err := a.own.Close(); err != nil {
		return fmt.Errorf("admin store: close: %w", err)
	}
	return nil
}

// ---- accounts

const adminAccountColumns = `name, role, password_hash, created, password_set, disabled`

// Account returns the account called name.
func (a *AdminStore) Account(ctx context.Context, name string) (Account, error) {
	acc, err := scanAccount(a.rdb.QueryRowContext(ctx, `SELECT `+adminAccountColumns+` FROM admin_accounts WHERE name = ?`, name))
	if err != nil {
		return Account{}, fmt.Errorf("admin store: account %q: %w", name, err)
	}
	return acc, nil
}

// Accounts returns all accounts, disabled ones too, by name (byte order).
func (a *AdminStore) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := a.rdb.QueryContext(ctx, `SELECT `+adminAccountColumns+` FROM admin_accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("admin store: accounts: %w", err)
	}
	defer rows.Close()
	var accs []Account
	for rows.Next() {
		acc, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("admin store: accounts: %w", err)
		}
		accs = append(accs, acc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("admin store: accounts: %w", err)
	}
	return accs, nil
}

// CreateAccount adds acc; ErrExists if an account of that name exists.
func (a *AdminStore) CreateAccount(ctx context.Context, acc Account) error {
	if err := checkAccount(acc); err != nil {
		return fmt.Errorf("admin store: create account %q: %w", acc.Name, err)
	}
	if acc.Created.IsZero() {
		acc.Created = time.Now()
	}
	if acc.PasswordSet.IsZero() {
		acc.PasswordSet = acc.Created
	}
	_, err := a.wdb.ExecContext(ctx, `INSERT INTO admin_accounts (`+adminAccountColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		acc.Name, acc.Role, acc.PasswordHash, adminNanos(acc.Created), adminNanos(acc.PasswordSet), acc.Disabled)
	if isConstraint(err) {
		err = ErrExists
	}
	if err != nil {
		return fmt.Errorf("admin store: create account %q: %w", acc.Name, err)
	}
	return nil
}

// UpdateAccount sets the Role, PasswordHash, PasswordSet (see Account)
// and Disabled of the account called acc.Name; Created does not change.
// ErrNotFound if there is none; ErrLastAdmin if it is the last enabled
// admin and acc demotes or disables it. Disabling an account deletes its
// sessions (its tokens stay, refused while it is disabled). Sessions and
// tokens take a new role at once; a password change keeps them (delete
// them with DeleteSessions if that is wanted).
func (a *AdminStore) UpdateAccount(ctx context.Context, acc Account) error {
	if err := checkAccount(acc); err != nil {
		return fmt.Errorf("admin store: update account %q: %w", acc.Name, err)
	}
	err := a.write(ctx, func(tx *sql.Tx) error {
		old, err := scanAccount(tx.QueryRowContext(ctx, `SELECT `+adminAccountColumns+` FROM admin_accounts WHERE name = ?`, acc.Name))
		if err != nil {
			return err
		}
		if enabledAdmin(old) && !enabledAdmin(acc) {
			if err := checkNotLastAdmin(ctx, tx); err != nil {
				return err
			}
		}
		set := acc.PasswordSet
		if set.IsZero() {
			set = old.PasswordSet
			if acc.PasswordHash != old.PasswordHash {
				set = time.Now()
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE admin_accounts SET role = ?, password_hash = ?, password_set = ?, disabled = ? WHERE name = ?`,
			acc.Role, acc.PasswordHash, adminNanos(set), acc.Disabled, acc.Name); err != nil {
			return err
		}
		if acc.Disabled && !old.Disabled {
			if _, err := tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE user = ?`, acc.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("admin store: update account %q: %w", acc.Name, err)
	}
	return nil
}

// DeleteAccount deletes the account called name with its sessions and
// tokens, in one transaction. ErrNotFound if there is none; ErrLastAdmin
// if it is the last enabled admin.
func (a *AdminStore) DeleteAccount(ctx context.Context, name string) error {
	err := a.write(ctx, func(tx *sql.Tx) error {
		old, err := scanAccount(tx.QueryRowContext(ctx, `SELECT `+adminAccountColumns+` FROM admin_accounts WHERE name = ?`, name))
		if err != nil {
			return err
		}
		if enabledAdmin(old) {
			if err := checkNotLastAdmin(ctx, tx); err != nil {
				return err
			}
		}
		for _, q := range []string{
			`DELETE FROM admin_sessions WHERE user = ?`,
			`DELETE FROM admin_tokens WHERE user = ?`,
			`DELETE FROM admin_accounts WHERE name = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("admin store: delete account %q: %w", name, err)
	}
	return nil
}

// CountAccounts returns the number of accounts, disabled ones included
// (0: the admin UI has not been set up).
func (a *AdminStore) CountAccounts(ctx context.Context) (int, error) {
	var n int
	if err := a.rdb.QueryRowContext(ctx, `SELECT count(*) FROM admin_accounts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("admin store: count accounts: %w", err)
	}
	return n, nil
}

func checkAccount(acc Account) error {
	if acc.Name == "" {
		return fmt.Errorf("%w: empty account name", ErrInvalid)
	}
	if !validRole(acc.Role) {
		return fmt.Errorf("%w: role %q is neither %q nor %q", ErrInvalid, acc.Role, RoleAdmin, RoleAuditor)
	}
	return nil
}

func validRole(r string) bool { return r == RoleAdmin || r == RoleAuditor }

func enabledAdmin(acc Account) bool { return acc.Role == RoleAdmin && !acc.Disabled }

// checkNotLastAdmin returns ErrLastAdmin unless there are at least two
// enabled admins (one of which is about to go).
func checkNotLastAdmin(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM admin_accounts WHERE role = ? AND disabled = 0`, RoleAdmin).Scan(&n); err != nil {
		return err
	}
	if n <= 1 {
		return ErrLastAdmin
	}
	return nil
}

// adminScanner is *sql.Row or *sql.Rows.
type adminScanner interface{ Scan(dest ...any) error }

// scanAccount scans adminAccountColumns; sql.ErrNoRows becomes
// ErrNotFound.
func scanAccount(r adminScanner) (Account, error) {
	var (
		acc          Account
		created, set int64
	)
	err := r.Scan(&acc.Name, &acc.Role, &acc.PasswordHash, &created, &set, &acc.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	if err != nil {
		return Account{}, err
	}
	acc.Created, acc.PasswordSet = adminTime(created), adminTime(set)
	return acc, nil
}

// ---- sessions

// CreateSession stores s under key, the SHA-256 of the session cookie
// (the store never sees the cookie). s.Expires is required. ErrNotFound if
// s.User is not an enabled account; ErrExists if key is taken.
func (a *AdminStore) CreateSession(ctx context.Context, key [32]byte, s Session) error {
	if s.Expires.IsZero() {
		return fmt.Errorf("admin store: create session for %q: %w: zero expiry", s.User, ErrInvalid)
	}
	if s.Created.IsZero() {
		s.Created = time.Now()
	}
	if s.LastSeen.IsZero() {
		s.LastSeen = s.Created
	}
	err := a.write(ctx, func(tx *sql.Tx) error {
		if err := checkEnabled(ctx, tx, s.User); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO admin_sessions (key, user, csrf, created, last_seen, expires, client, user_agent)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			key[:], s.User, s.CSRF, adminNanos(s.Created), adminNanos(s.LastSeen), adminNanos(s.Expires), s.Client, s.UserAgent)
		if isConstraint(err) {
			err = ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("admin store: create session for %q: %w", s.User, err)
	}
	return nil
}

// Session returns the session stored under key, with Role the account's
// current role. ErrNotFound if there is none, if it has expired at now
// (Expires <= now; PruneSessions deletes it later), or if its account is
// disabled or gone. It only reads.
func (a *AdminStore) Session(ctx context.Context, key [32]byte, now time.Time) (Session, error) {
	var (
		s                         Session
		created, lastSeen, expiry int64
	)
	err := a.rdb.QueryRowContext(ctx, `SELECT s.user, a.role, s.csrf, s.created, s.last_seen, s.expires, s.client, s.user_agent
	FROM admin_sessions s JOIN admin_accounts a ON a.name = s.user
	WHERE s.key = ? AND s.expires > ? AND a.disabled = 0`, key[:], adminNanos(now)).
		Scan(&s.User, &s.Role, &s.CSRF, &created, &lastSeen, &expiry, &s.Client, &s.UserAgent)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("admin store: session: %w", err)
	}
	s.Created, s.LastSeen, s.Expires = adminTime(created), adminTime(lastSeen), adminTime(expiry)
	return s, nil
}

// TouchSession sets the LastSeen and Expires of the session stored under
// key. ErrNotFound if there is none or it had expired at lastSeen (an
// expired session is not revived). It is a write: callers should not
// touch a session on every request (once a minute is plenty).
func (a *AdminStore) TouchSession(ctx context.Context, key [32]byte, lastSeen, expires time.Time) error {
	if expires.IsZero() {
		return fmt.Errorf("admin store: touch session: %w: zero expiry", ErrInvalid)
	}
	res, err := a.wdb.ExecContext(ctx, `UPDATE admin_sessions SET last_seen = ?, expires = ? WHERE key = ? AND expires > ?`,
		adminNanos(lastSeen), adminNanos(expires), key[:], adminNanos(lastSeen))
	if err := oneRow(res, err); err != nil {
		return fmt.Errorf("admin store: touch session: %w", err)
	}
	return nil
}

// DeleteSession deletes the session stored under key (log out).
// ErrNotFound if there is none.
func (a *AdminStore) DeleteSession(ctx context.Context, key [32]byte) error {
	res, err := a.wdb.ExecContext(ctx, `DELETE FROM admin_sessions WHERE key = ?`, key[:])
	if err := oneRow(res, err); err != nil {
		return fmt.Errorf("admin store: delete session: %w", err)
	}
	return nil
}

// DeleteSessions deletes all sessions of user (nil if there were none).
func (a *AdminStore) DeleteSessions(ctx context.Context, user string) error {
	if _, err := a.wdb.ExecContext(ctx, `DELETE FROM admin_sessions WHERE user = ?`, user); err != nil {
		return fmt.Errorf("admin store: delete sessions of %q: %w", user, err)
	}
	return nil
}

// PruneSessions deletes the sessions expired at now and those whose
// account is disabled or gone (none Session would return), and returns
// how many it deleted.
func (a *AdminStore) PruneSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := a.wdb.ExecContext(ctx, `DELETE FROM admin_sessions
	WHERE expires <= ? OR user NOT IN (SELECT name FROM admin_accounts WHERE disabled = 0)`, adminNanos(now))
	if err != nil {
		return 0, fmt.Errorf("admin store: prune sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("admin store: prune sessions: %w", err)
	}
	return int(n), nil
}

// checkEnabled returns ErrNotFound unless user is an enabled account.
func checkEnabled(ctx context.Context, tx *sql.Tx, user string) error {
	var disabled bool
	err := tx.QueryRowContext(ctx, `SELECT disabled FROM admin_accounts WHERE name = ?`, user).Scan(&disabled)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("account %q: %w", user, ErrNotFound)
	case err != nil:
		return err
	case disabled:
		return fmt.Errorf("account %q is disabled: %w", user, ErrNotFound)
	}
	return nil
}

// ---- tokens

const adminTokenColumns = `t.id, t.name, t.user, t.read_only, t.created, t.last_used, t.expires`

// CreateToken stores t, looked up later by secret, the SHA-256 of the
// token's secret (the store never sees the secret). ErrNotFound if t.User
// is not an enabled account; ErrExists if t.ID or secret is taken.
func (a *AdminStore) CreateToken(ctx context.Context, secret [32]byte, t Token) error {
	if t.ID == "" {
		return fmt.Errorf("admin store: create token for %q: %w: empty id", t.User, ErrInvalid)
	}
	if t.Created.IsZero() {
		t.Created = time.Now()
	}
	err := a.write(ctx, func(tx *sql.Tx) error {
		if err := checkEnabled(ctx, tx, t.User); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO admin_tokens (id, secret_hash, name, user, read_only, created, last_used, expires)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, secret[:], t.Name, t.User, t.ReadOnly, adminNanos(t.Created), adminNanos(t.LastUsed), adminNanos(t.Expires))
		if isConstraint(err) {
			err = ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("admin store: create token %q: %w", t.ID, err)
	}
	return nil
}

// TokenBySecret returns the token whose secret has the SHA-256 secret,
// and its effective role: RoleAuditor if it is ReadOnly, its owner's
// current role otherwise. ErrNotFound if there is none, if it has expired
// at now, or if its owner is disabled or gone. It sets LastUsed to now
// when the stored LastUsed is a minute or more before now (so a token in
// constant use costs one write a minute), and returns the token as
// updated.
func (a *AdminStore) TokenBySecret(ctx context.Context, secret [32]byte, now time.Time) (Token, string, error) {
	var role string
	row := a.rdb.QueryRowContext(ctx, `SELECT `+adminTokenColumns+`, a.role
	FROM admin_tokens t JOIN admin_accounts a ON a.name = t.user
	WHERE t.secret_hash = ? AND (t.expires = 0 OR t.expires > ?) AND a.disabled = 0`, secret[:], adminNanos(now))
	t, err := scanToken(row, &role)
	if err != nil {
		return Token{}, "", fmt.Errorf("admin store: token: %w", err)
	}
	if now.Sub(t.LastUsed) >= time.Minute {
		// The condition keeps concurrent lookups from moving it back.
		_, err := a.wdb.ExecContext(ctx, `UPDATE admin_tokens SET last_used = ? WHERE id = ? AND last_used <= ?`,
			adminNanos(now), t.ID, adminNanos(now.Add(-time.Minute)))
		if err != nil {
			return Token{}, "", fmt.Errorf("admin store: token %q: update last use: %w", t.ID, err)
		}
		t.LastUsed = adminTime(adminNanos(now))
	}
	if t.ReadOnly {
		role = RoleAuditor
	}
	return t, role, nil
}

// Tokens returns the tokens of user ("" for all tokens), by owner, then
// creation time, then id.
func (a *AdminStore) Tokens(ctx context.Context, user string) ([]Token, error) {
	q, args := `SELECT `+adminTokenColumns+` FROM admin_tokens t ORDER BY t.user, t.created, t.id`, []any(nil)
	if user != "" {
		q, args = `SELECT `+adminTokenColumns+` FROM admin_tokens t WHERE t.user = ? ORDER BY t.created, t.id`, []any{user}
	}
	rows, err := a.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("admin store: tokens: %w", err)
	}
	defer rows.Close()
	var toks []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("admin store: tokens: %w", err)
		}
		toks = append(toks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("admin store: tokens: %w", err)
	}
	return toks, nil
}

// DeleteToken deletes the token id. ErrNotFound if there is none.
func (a *AdminStore) DeleteToken(ctx context.Context, id string) error {
	res, err := a.wdb.ExecContext(ctx, `DELETE FROM admin_tokens WHERE id = ?`, id)
	if err := oneRow(res, err); err != nil {
		return fmt.Errorf("admin store: delete token %q: %w", id, err)
	}
	return nil
}

// scanToken scans adminTokenColumns then extra; sql.ErrNoRows becomes
// ErrNotFound.
func scanToken(r adminScanner, extra ...any) (Token, error) {
	var (
		t                        Token
		created, used, expiresAt int64
	)
	err := r.Scan(append([]any{&t.ID, &t.Name, &t.User, &t.ReadOnly, &created, &used, &expiresAt}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, err
	}
	t.Created, t.LastUsed, t.Expires = adminTime(created), adminTime(used), adminTime(expiresAt)
	return t, nil
}

// ---- config revisions

// AddRevision stores r (its ID and SHA256 are ignored) and returns its ID.
// ErrTooLarge if r.Config is larger than MaxRevisionConfig. A nil Config
// is stored empty.
func (a *AdminStore) AddRevision(ctx context.Context, r Revision) (int64, error) {
	if len(r.Config) > MaxRevisionConfig {
		return 0, fmt.Errorf("admin store: add revision: %w: config of %d bytes (at most %d)", ErrTooLarge, len(r.Config), MaxRevisionConfig)
	}
	if r.Config == nil {
		r.Config = []byte{} // nil would bind as NULL
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	sum := sha256.Sum256(r.Config)
	res, err := a.wdb.ExecContext(ctx, `INSERT INTO config_revisions (time, author, comment, config, sha256) VALUES (?, ?, ?, ?, ?)`,
		adminNanos(r.Time), r.Author, r.Comment, r.Config, sum[:])
	if err != nil {
		return 0, fmt.Errorf("admin store: add revision: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("admin store: add revision: %w", err)
	}
	return id, nil
}

// Revisions returns up to limit revisions with an ID below before
// (before <= 0: from the newest), newest first, without their Config.
// limit <= 0 means 50; at most 500 are returned.
func (a *AdminStore) Revisions(ctx context.Context, before int64, limit int) ([]Revision, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	rows, err := a.rdb.QueryContext(ctx, `SELECT id, time, author, comment, sha256 FROM config_revisions
	WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("admin store: revisions: %w", err)
	}
	defer rows.Close()
	var revs []Revision
	for rows.Next() {
		r, err := scanRevision(rows, nil)
		if err != nil {
			return nil, fmt.Errorf("admin store: revisions: %w", err)
		}
		revs = append(revs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("admin store: revisions: %w", err)
	}
	return revs, nil
}

// Revision returns the revision id with its Config.
func (a *AdminStore) Revision(ctx context.Context, id int64) (Revision, error) {
	var config []byte
	r, err := scanRevision(a.rdb.QueryRowContext(ctx, `SELECT id, time, author, comment, sha256, config FROM config_revisions WHERE id = ?`, id), &config)
	if err != nil {
		return Revision{}, fmt.Errorf("admin store: revision %d: %w", id, err)
	}
	return r, nil
}

// LatestRevision returns the newest revision with its Config; ErrNotFound
// if there is none.
func (a *AdminStore) LatestRevision(ctx context.Context) (Revision, error) {
	var config []byte
	r, err := scanRevision(a.rdb.QueryRowContext(ctx, `SELECT id, time, author, comment, sha256, config FROM config_revisions ORDER BY id DESC LIMIT 1`), &config)
	if err != nil {
		return Revision{}, fmt.Errorf("admin store: latest revision: %w", err)
	}
	return r, nil
}

// scanRevision scans id, time, author, comment, sha256 and, if config is
// not nil, config into it and the revision's Config (never nil then).
// sql.ErrNoRows becomes ErrNotFound.
func scanRevision(r adminScanner, config *[]byte) (Revision, error) {
	var (
		rev  Revision
		when int64
		sum  []byte
	)
	dest := []any{&rev.ID, &when, &rev.Author, &rev.Comment, &sum}
	if config != nil {
		dest = append(dest, config)
	}
	err := r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return Revision{}, ErrNotFound
	}
	if err != nil {
		return Revision{}, err
	}
	if len(sum) != len(rev.SHA256) {
		return Revision{}, fmt.Errorf("revision %d: stored SHA-256 has %d bytes", rev.ID, len(sum))
	}
	copy(rev.SHA256[:], sum)
	rev.Time = adminTime(when)
	if config != nil {
		rev.Config = *config
		if rev.Config == nil {
			rev.Config = []byte{}
		}
	}
	return rev, nil
}

// ---- helpers

// write runs f in a transaction on the writers' pool (BEGIN IMMEDIATE):
// committed if f returns nil, rolled back otherwise.
func (a *AdminStore) write(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := a.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// oneRow turns the result of an UPDATE or DELETE of one row by key into
// nil, the error, or ErrNotFound when no row changed.
func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// isConstraint reports whether err is a PRIMARY KEY or UNIQUE violation.
func isConstraint(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) &&
		(se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey || se.ExtendedCode == sqlite3.ErrConstraintUnique)
}

// adminNanos is t in Unix nanoseconds (clamped), 0 for the zero time.
func adminNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return nanos(t)
}

// adminTime is the inverse of adminNanos, in UTC.
func adminTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
