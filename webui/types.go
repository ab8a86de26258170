package webui

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"waygate/audit"
)

// Roles of admin accounts. An account with any other role cannot log in
// and its tokens are refused.
const (
	// RoleAdmin may read and change everything.
	RoleAdmin = "admin"
	// RoleAuditor may read everything (GET) and change nothing.
	RoleAuditor = "auditor"
)

// ErrNotFound is what stores return (possibly wrapped) for an account,
// session or token that does not exist, or a session or token that has
// expired. Any other error is treated as a failure of the store: the
// request gets 500 (not 401), and the error is logged.
var ErrNotFound = errors.New("webui: not found")

// ErrConflict is what PolicyEditor.Save returns (possibly wrapped) when the
// policy changed since the version the caller edited (PolicyDoc.Version);
// the API answers 409.
var ErrConflict = errors.New("webui: conflict")

// Account is an admin account. Its field names and order match the
// audit store's account type, so that an adapter can convert with a plain
// type conversion.
type Account struct {
	// Name is the login name.
	Name string
	// Role is RoleAdmin or RoleAuditor; anything else cannot log in.
	Role string
	// PasswordHash is a bcrypt hash (as made by `waygate passwd`). Empty
	// means the account cannot log in with a password.
	PasswordHash string
	// Disabled accounts cannot log in, and their sessions and tokens stop
	// working at the next request.
	Disabled bool
}

// Session is a browser login session. The store keeps it under the SHA-256
// of the cookie value, never the cookie value itself.
type Session struct {
	// User is the account name.
	User string
	// Role is the account's role when the session was created, kept for
	// the record; requests use the account's current role.
	Role string
	// CSRF is the token state-changing requests must echo in X-CSRF-Token.
	CSRF string
	// Created is when the user logged in. The session ends at
	// Created + Options.SessionTTL whatever happens.
	Created time.Time
	// LastSeen is the time of the last request (updated at most once a
	// minute).
	LastSeen time.Time
	// Expires is when the session ends unless it is used:
	// min(LastSeen + Options.SessionIdle, Created + Options.SessionTTL).
	// The zero Time is treated as already expired.
	Expires time.Time
	// Client is the client address that logged in.
	Client string
	// UserAgent is the browser's User-Agent at login (at most 256 bytes).
	UserAgent string
}

// Token is an API token, used as "Authorization: Bearer <secret>". The
// store keeps it under the SHA-256 of the secret; the secret itself is
// shown once, when the token is created, and never stored.
type Token struct {
	// ID identifies the token in listings and in DELETE
	// /api/v1/tokens/:id; webui makes it (16 URL-safe characters).
	ID string
	// Name is the admin's label for it.
	Name string
	// User is the account the token acts as (its creator).
	User string
	// ReadOnly tokens may only read (GET), whatever the user's role.
	ReadOnly bool
	// Created is when it was made.
	Created time.Time
	// LastUsed is when it was last used, as the store tracks it; the zero
	// Time means never.
	LastUsed time.Time
	// Expires is when it stops working; the zero Time means never (webui
	// always sets one).
	Expires time.Time
}

// AccountStore looks up admin accounts.
type AccountStore interface {
	// Account returns the named account, or an error wrapping ErrNotFound.
	Account(ctx context.Context, name string) (Account, error)
}

// SessionStore keeps browser sessions, keyed by the SHA-256 of the cookie
// value.
type SessionStore interface {
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, key [32]byte, s Session) error
	// Session returns the session, or an error wrapping ErrNotFound when
	// there is none or it has expired at now.
	Session(ctx context.Context, key [32]byte, now time.Time) (Session, error)
	// TouchSession records use of the session: its new LastSeen and
	// Expires.
	TouchSession(ctx context.Context, key [32]byte, lastSeen, expires time.Time) error
	// DeleteSession ends the session; deleting a missing session is not
	// an error.
	DeleteSession(ctx context.Context, key [32]byte) error
}

// TokenStore keeps API tokens, keyed by the SHA-256 of the secret.
type TokenStore interface {
	// CreateToken stores a new token.
	CreateToken(ctx context.Context, secret [32]byte, t Token) error
	// TokenBySecret returns the token and the role of its user, or an
	// error wrapping ErrNotFound when there is none, it has expired at
	// now, or its user is gone. It may update Token.LastUsed.
	TokenBySecret(ctx context.Context, secret [32]byte, now time.Time) (Token, string, error)
	// Tokens lists the tokens of user, or of every user when user is
	// empty.
	Tokens(ctx context.Context, user string) ([]Token, error)
	// DeleteToken deletes the token with this ID, or returns an error
	// wrapping ErrNotFound.
	DeleteToken(ctx context.Context, id string) error
}

// LogQuery selects audit events (see audit.Query: zero fields do not
// filter). It is audit.Query itself, so that the audit store satisfies
// LogSearcher directly.
type LogQuery = audit.Query

// LogPage is one page of LogSearcher results (audit.Page).
type LogPage = audit.Page

// LogCursor is a position in the newest-first order of events
// (audit.Cursor); the zero LogCursor means "from the newest".
type LogCursor = audit.Cursor

// LogSearcher searches the audit trail. The audit store's Search method
// satisfies it.
type LogSearcher interface {
	// Search returns the page of events q selects, newest first.
	Search(ctx context.Context, q LogQuery) (LogPage, error)
}

// StatsBucket is one time bucket of a series (audit.Bucket).
type StatsBucket = audit.Bucket

// StatsCount is one row of a top list (audit.Count).
type StatsCount = audit.Count

// StatsSource gives aggregates of the audit trail for GET /api/v1/stats.
// The audit store's Series and Top methods satisfy it.
type StatsSource interface {
	// Series returns the totals per step (a minute or an hour) between
	// since (inclusive) and until (exclusive), oldest first.
	Series(ctx context.Context, step time.Duration, since, until time.Time) ([]StatsBucket, error)
	// Top returns the n keys with the most requests between since and
	// until for dim: "host", "user", "category" or "action".
	Top(ctx context.Context, dim string, since, until time.Time, n int) ([]StatsCount, error)
}

// ExplainRequest is the request an explanation is made for. Its fields
// have the names, types and order of filter.Request, so an adapter can
// convert it with filter.Request(r). webui builds it from a URL the way the
// proxy would see it: an https URL becomes CONNECT to host:port with no
// path, as the proxy sees only that without TLS inspection.
type ExplainRequest struct {
	// Client is the client address; the zero Addr when not given.
	Client netip.Addr
	// User is the proxy user; empty when not given.
	User string
	// Method is the HTTP method, upper case ("CONNECT" for https URLs).
	Method string
	// Host is the URL's host, as written, without port.
	Host string
	// Port is the URL's port; zero when the URL names none (the scheme's
	// default). https URLs always have it set (443 by default).
	Port uint16
	// Path is the escaped path; empty for CONNECT.
	Path string
	// Time is when the request is made, for schedules; never zero
	// (Options.Now when not given).
	Time time.Time
}

// Explanation is a policy decision and why, mirroring filter.Decision with
// the action and reason as their stable names.
type Explanation struct {
	// Action is allow, block, warn or monitor.
	Action string
	// Reason is default, rule, invalid_target, warn_accepted or gateway.
	Reason string
	// Rule names the rule that matched; empty for the default.
	Rule string
	// Categories lists every category the target belongs to.
	Categories []string
	// Category is the category through which the rule matched; may be
	// empty.
	Category string
	// Entry is the list entry that matched and Source the list it came
	// from; empty when none did.
	Entry  string
	Source string
	// WarnFor is how long a user who continues past a warn page is let
	// through; zero unless Action is warn.
	WarnFor time.Duration
	// PolicyVersion identifies the policy that decided.
	PolicyVersion string
	// Host is the normalized host the decision was made on.
	Host string
}

// Explainer explains what the current policy decides for a request.
type Explainer interface {
	// Explain returns the decision for r. An error is a failure (500), not
	// a verdict: invalid targets are decisions (Reason invalid_target).
	Explain(ctx context.Context, r ExplainRequest) (Explanation, error)
}

// PolicyDoc is the editable policy, as JSON: the policy sections of the
// config file with the same names. Values that need parsing (networks,
// durations, times) are strings, so that PolicyEditor.Validate can report
// each bad one with its path.
type PolicyDoc struct {
	// Version identifies the policy this document was read from. On save
	// it is the version the author edited: the editor answers ErrConflict
	// when the policy has changed since. Empty on save means "replace
	// whatever is there".
	Version string `json:"version,omitempty"`
	// DefaultAction is filter.default_action: allow, block, warn or
	// monitor; empty means allow.
	DefaultAction string              `json:"default_action,omitempty"`
	Categories    []PolicyCategory    `json:"categories"`
	CategoryDirs  []PolicyCategoryDir `json:"category_dirs,omitempty"`
	Groups        []PolicyGroup       `json:"groups,omitempty"`
	Rules         []PolicyRule        `json:"rules"`
}

// PolicyCategory is one category: inline entries and list files. Nil and
// empty lists are the same: no entries of that kind.
type PolicyCategory struct {
	// Name is unique among categories.
	Name string `json:"name"`
	// Domains are inline domains (matching their subdomains), IPs and
	// CIDR networks.
	Domains []string `json:"domains,omitempty"`
	// URLs are inline host/path prefixes.
	URLs []string `json:"urls,omitempty"`
	// Files are list files on the gateway.
	Files []PolicyListFile `json:"files,omitempty"`
	// Remote are lists downloaded by URL.
	Remote []PolicyRemoteList `json:"remote,omitempty"`
}

// PolicyListFile is a list file (a path on the gateway); an empty Format
// means "from the file name".
type PolicyListFile struct {
	Path   string `json:"path"`
	Format string `json:"format,omitempty"`
}

// PolicyRemoteList is a list downloaded by URL; Refresh is a Go duration
// ("24h"), empty meaning the default.
type PolicyRemoteList struct {
	URL     string `json:"url"`
	Format  string `json:"format,omitempty"`
	Refresh string `json:"refresh,omitempty"`
}

// PolicyCategoryDir is a squidGuard-layout folder of categories; empty
// Only means all of them.
type PolicyCategoryDir struct {
	Path        string   `json:"path"`
	Only        []string `json:"only,omitempty"`
	Expressions bool     `json:"expressions,omitempty"`
}

// PolicyGroup is a named set of client networks (CIDR) and users; nil
// lists hold nobody.
type PolicyGroup struct {
	Name    string   `json:"name"`
	Clients []string `json:"clients,omitempty"`
	Users   []string `json:"users,omitempty"`
}

// PolicyRule is one rule, as in the config file; nil or empty conditions
// always hold. Ports are ints (not uint16) so that out-of-range values
// reach Validate and come back as problems with their path.
type PolicyRule struct {
	Name       string         `json:"name"`
	Groups     []string       `json:"groups,omitempty"`
	Users      []string       `json:"users,omitempty"`
	Clients    []string       `json:"clients,omitempty"`
	Categories []string       `json:"categories,omitempty"`
	Domains    []string       `json:"domains,omitempty"`
	URLs       []string       `json:"urls,omitempty"`
	Methods    []string       `json:"methods,omitempty"`
	Ports      []int          `json:"ports,omitempty"`
	Schedule   []PolicyWindow `json:"schedule,omitempty"`
	Action     string         `json:"action"`
	// WarnFor is a Go duration; empty means the default (1h).
	WarnFor string `json:"warn_for,omitempty"`
}

// PolicyWindow is a weekly time window; empty Days means every day, empty
// From and To the whole day, empty TimeZone UTC.
type PolicyWindow struct {
	Days     []string `json:"days,omitempty"`
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
	TimeZone string   `json:"time_zone,omitempty"`
}

// Problem is one thing wrong with a policy document.
type Problem struct {
	// Path names the field, as in "rules[2].action"; empty for the
	// document as a whole.
	Path string `json:"path"`
	// Message says what is wrong, for a person.
	Message string `json:"message"`
}

// InvalidPolicyError is what PolicyEditor.Save returns (possibly wrapped)
// when the policy fails a check that Validate could not make (a list file
// went missing, say); the API answers 422 with its Problems.
type InvalidPolicyError struct {
	Problems []Problem
}

// Error lists the problems.
func (e *InvalidPolicyError) Error() string {
	var b strings.Builder
	b.WriteString("invalid policy")
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// PolicyEditor reads, checks and saves the policy, with the same checks as
// the config file.
type PolicyEditor interface {
	// Policy returns the current policy, with its Version set.
	Policy(ctx context.Context) (PolicyDoc, error)
	// Validate checks doc without saving it. It returns nil when doc is
	// valid, else every problem found.
	Validate(ctx context.Context, doc PolicyDoc) []Problem
	// Save makes doc the policy (written to the config file and applied
	// with a reload), recording author, and returns the new version. It
	// returns an error wrapping ErrConflict when doc.Version is set and
	// is not the current version, and an *InvalidPolicyError when the
	// policy cannot be applied.
	Save(ctx context.Context, author string, doc PolicyDoc) (version string, err error)
}

// AuditRecorder records admin actions (Kind audit.KindAdmin events) in the
// audit trail: logins (ok and failed), logouts, tokens created and
// deleted, policies saved. audit.Sink satisfies it, and so the audit store
// does. webui never changes an Event after passing it to Record.
type AuditRecorder interface {
	Record(e *audit.Event)
}

// EventStream is a live feed of audit events, for GET /api/v1/events. An
// *audit.Broadcaster satisfies it; see its Subscribe for the meaning of
// the results. webui subscribes once per stream and always cancels.
type EventStream interface {
	Subscribe(buffer int) (<-chan audit.Event, func() uint64, func())
}
