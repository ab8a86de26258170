package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	auditsqlite "waygate/audit/sqlite"
	"waygate/cmd/waygate/internal/config"
	"waygate/filter"
	"waygate/webui"
)

// The web UI's explain request is filter's request, field for field.
var _ = filter.Request(webui.ExplainRequest{})

// adminPasswordFile is where a generated first admin password is written
// (0600, in data_dir).
const adminPasswordFile = "admin-password"

// adminStoreOf returns the admin store: on the audit database, through
// the running audit store when there is one.
func adminStoreOf(cfg *config.Config, st *auditsqlite.Store) (*auditsqlite.AdminStore, error) {
	if st != nil {
		return st.Admin(), nil
	}
	return auditsqlite.OpenAdmin(auditPath(cfg))
}

// ensureFirstAdmin creates the account "admin" when there is no account
// at all. Its password is WAYGATE_ADMIN_PASSWORD, or a generated one that
// is printed once to w and written to data_dir/admin-password (0600).
func ensureFirstAdmin(ctx context.Context, a *auditsqlite.AdminStore, dataDir string, w io.Writer) error {
	n, err := a.CountAccounts(ctx)
	if err != nil || n > 0 {
		return err
	}
	password := os.Getenv("WAYGATE_ADMIN_PASSWORD")
	generated := password == ""
	if generated {
		var b [18]byte
		rand.Read(b[:])
		password = base64.RawURLEncoding.EncodeToString(b[:])
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("first admin account: %w", err)
	}
	if err := a.CreateAccount(ctx, auditsqlite.Account{Name: "admin", Role: auditsqlite.RoleAdmin, PasswordHash: string(hash)}); err != nil {
		return fmt.Errorf("first admin account: %w", err)
	}
	if !generated {
		fmt.Fprintln(w, "waygate: created the admin account \"admin\" with the password from WAYGATE_ADMIN_PASSWORD")
		return nil
	}
	path := filepath.Join(dataDir, adminPasswordFile)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("first admin account: %w", err)
	}
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("first admin account: %w", err)
	}
	fmt.Fprintf(w, "waygate: created the admin account \"admin\" with the password %s (also in %s; change it after logging in)\n", password, path)
	return nil
}

// adminAccounts adapts the admin store to the web UI's interfaces.
type adminAccounts struct{ a *auditsqlite.AdminStore }

// uiErr maps the admin store's errors to the web UI's.
func uiErr(err error) error {
	switch {
	case errors.Is(err, auditsqlite.ErrNotFound):
		return fmt.Errorf("%w: %w", webui.ErrNotFound, err)
	case errors.Is(err, auditsqlite.ErrExists):
		return fmt.Errorf("%w: %w", webui.ErrConflict, err)
	case errors.Is(err, auditsqlite.ErrLastAdmin):
		return fmt.Errorf("%w: %w", webui.ErrLastAdmin, err)
	}
	return err
}

func (s adminAccounts) Account(ctx context.Context, name string) (webui.Account, error) {
	acc, err := s.a.Account(ctx, name)
	if err != nil {
		return webui.Account{}, uiErr(err)
	}
	return webui.Account{Name: acc.Name, Role: acc.Role, PasswordHash: acc.PasswordHash, Disabled: acc.Disabled}, nil
}

func (s adminAccounts) CreateSession(ctx context.Context, key [32]byte, se webui.Session) error {
	return uiErr(s.a.CreateSession(ctx, key, auditsqlite.Session(se)))
}

func (s adminAccounts) Session(ctx context.Context, key [32]byte, now time.Time) (webui.Session, error) {
	se, err := s.a.Session(ctx, key, now)
	return webui.Session(se), uiErr(err)
}

func (s adminAccounts) TouchSession(ctx context.Context, key [32]byte, lastSeen, expires time.Time) error {
	return uiErr(s.a.TouchSession(ctx, key, lastSeen, expires))
}

func (s adminAccounts) DeleteSession(ctx context.Context, key [32]byte) error {
	return uiErr(s.a.DeleteSession(ctx, key))
}

func (s adminAccounts) CreateToken(ctx context.Context, secret [32]byte, t webui.Token) error {
	return uiErr(s.a.CreateToken(ctx, secret, auditsqlite.Token(t)))
}

func (s adminAccounts) TokenBySecret(ctx context.Context, secret [32]byte, now time.Time) (webui.Token, string, error) {
	t, role, err := s.a.TokenBySecret(ctx, secret, now)
	return webui.Token(t), role, uiErr(err)
}

func (s adminAccounts) Tokens(ctx context.Context, user string) ([]webui.Token, error) {
	ts, err := s.a.Tokens(ctx, user)
	out := make([]webui.Token, len(ts))
	for i, t := range ts {
		out[i] = webui.Token(t)
	}
	return out, uiErr(err)
}

func (s adminAccounts) DeleteToken(ctx context.Context, id string) error {
	return uiErr(s.a.DeleteToken(ctx, id))
}

func (s adminAccounts) Accounts(ctx context.Context) ([]webui.Account, error) {
	accs, err := s.a.Accounts(ctx)
	out := make([]webui.Account, len(accs))
	for i, acc := range accs {
		out[i] = webui.Account{Name: acc.Name, Role: acc.Role, PasswordHash: acc.PasswordHash, Disabled: acc.Disabled}
	}
	return out, uiErr(err)
}

func (s adminAccounts) CreateAccount(ctx context.Context, acc webui.Account) error {
	return uiErr(s.a.CreateAccount(ctx, auditsqlite.Account{Name: acc.Name, Role: acc.Role, PasswordHash: acc.PasswordHash, Disabled: acc.Disabled}))
}

func (s adminAccounts) UpdateAccount(ctx context.Context, acc webui.Account) error {
	return uiErr(s.a.UpdateAccount(ctx, auditsqlite.Account{Name: acc.Name, Role: acc.Role, PasswordHash: acc.PasswordHash, Disabled: acc.Disabled}))
}

func (s adminAccounts) DeleteAccount(ctx context.Context, name string) error {
	return uiErr(s.a.DeleteAccount(ctx, name))
}

func (s adminAccounts) DeleteSessions(ctx context.Context, user string) error {
	return uiErr(s.a.DeleteSessions(ctx, user))
}

// noPolicy is the engine of an empty policy, which allows everything
// (with host normalization and invalid targets as any engine has them).
var noPolicy = sync.OnceValues(func() (*filter.Engine, error) { return filter.Compile(&filter.Policy{}) })

// policyExplainer answers "explain" with the running policy.
type policyExplainer struct {
	engine *atomic.Pointer[filter.Engine]
}

func (p policyExplainer) Explain(_ context.Context, r webui.ExplainRequest) (webui.Explanation, error) {
	e := p.engine.Load()
	if e == nil {
		// No rules and allow by default: the proxy runs without an
		// engine, and an empty policy decides as it does.
		var err error
		if e, err = noPolicy(); err != nil {
			return webui.Explanation{}, err
		}
	}
	req := filter.Request(r)
	d := e.Decide(&req)
	return webui.Explanation{
		Action: d.Action.String(), Reason: d.Reason.String(), Rule: d.Rule, Categories: d.Categories,
		Category: d.Category, Entry: d.Entry, Source: d.Source, WarnFor: d.WarnFor,
		PolicyVersion: d.PolicyVersion, Host: d.Host,
	}, nil
}

// newAdminUI builds the web UI for the admin listener.
func (g *gateway) newAdminUI(cfg *config.Config, stderr io.Writer) (*webui.Server, error) {
	a, err := adminStoreOf(cfg, g.auditStore)
	if err != nil {
		return nil, fmt.Errorf("admin accounts: %w", err)
	}
	g.adminStore = a
	if err := ensureFirstAdmin(context.Background(), a, cfg.DataDir, stderr); err != nil {
		return nil, err
	}
	opts := webui.Options{
		Accounts:   adminAccounts{a},
		Sessions:   adminAccounts{a},
		Tokens:     adminAccounts{a},
		Explainer:  policyExplainer{&g.engine},
		Policy:     policyEditor{g: g, store: a},
		Revisions:  policyEditor{g: g, store: a},
		Users:      adminAccounts{a},
		Reverse:    reverseStatus{g},
		Routes:     routeEditor{file: policyEditor{g: g, store: a}},
		Categories: categoryLister{g},
		Setup:      setupInfo{g: g},
		Events:     g.events,
		Audit:      g.audit,
		Logger:     g.log,
		// HTTPS on the admin listener: Secure cookies and HSTS.
		Secure: g.adminTLS != nil,
	}
	if g.auditStore != nil {
		opts.Logs, opts.Stats = g.auditStore, g.auditStore
	}
	if g.lab != nil { // a nil *lab in the interface would not be nil
		opts.Lab = g.lab
	}
	return webui.New(opts)
}
