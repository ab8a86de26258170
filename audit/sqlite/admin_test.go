package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

var atT0 = time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)

// atStore opens a Store in a fresh directory and returns its admin store.
func atStore(t testing.TB) (*Store, *AdminStore) {
	t.Helper()
	s := openTest(t, filepath.Join(t.TempDir(), "audit.db"), nil)
	return s, s.Admin()
}

// atOpen opens an admin store on a fresh database with OpenAdmin.
func atOpen(t testing.TB) *AdminStore {
	t.Helper()
	a, err := OpenAdmin(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatalf("OpenAdmin: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func atAccount(name, role string) Account {
	return Account{Name: name, Role: role, PasswordHash: "$2a$10$" + name, Created: atT0, PasswordSet: atT0}
}

func atMustCreate(t testing.TB, a *AdminStore, accs ...Account) {
	t.Helper()
	for _, acc := range accs {
		if err := a.CreateAccount(context.Background(), acc); err != nil {
			t.Fatalf("CreateAccount(%q): %v", acc.Name, err)
		}
	}
}

func atKey(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// atCount counts the rows of table where user = user.
func atCount(t testing.TB, a *AdminStore, table, user string) int {
	t.Helper()
	var n int
	if err := a.rdb.QueryRow(`SELECT count(*) FROM `+table+` WHERE user = ?`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func atErrIs(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func TestAdminAccounts(t *testing.T) {
	ctx := context.Background()
	_, a := atStore(t)
	if n, err := a.CountAccounts(ctx); n != 0 || err != nil {
		t.Fatalf("CountAccounts on a new database = %d, %v", n, err)
	}
	bob := atAccount("bob", RoleAuditor)
	bob.Disabled = true
	atMustCreate(t, a, atAccount("root", RoleAdmin), bob, atAccount("Root", RoleAuditor))

	for _, c := range []struct {
		name string
		acc  Account
		want error
	}{
		{"duplicate", atAccount("root", RoleAuditor), ErrExists},
		{"duplicate disabled", atAccount("bob", RoleAdmin), ErrExists},
		{"bad role", atAccount("eve", "superuser"), ErrInvalid},
		{"empty role", atAccount("eve", ""), ErrInvalid},
		{"role case", atAccount("eve", "Admin"), ErrInvalid},
		{"empty name", atAccount("", RoleAdmin), ErrInvalid},
		{"new", atAccount("carol", RoleAdmin), nil},
	} {
		atErrIs(t, "CreateAccount "+c.name, a.CreateAccount(ctx, c.acc), c.want)
	}
	if n, err := a.CountAccounts(ctx); n != 4 || err != nil {
		t.Fatalf("CountAccounts = %d, %v; want 4", n, err)
	}
	accs, err := a.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, acc := range accs {
		names = append(names, acc.Name)
	}
	if want := []string{"Root", "bob", "carol", "root"}; !slices.Equal(names, want) {
		t.Fatalf("Accounts = %q, want %q", names, want)
	}
	got, err := a.Account(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, bob) {
		t.Fatalf("Account(bob) = %+v, want %+v", got, bob)
	}
	_, err = a.Account(ctx, "BOB")
	atErrIs(t, "Account(BOB)", err, ErrNotFound)

	// Zero times: Created is now, PasswordSet is Created.
	before := time.Now()
	atMustCreate(t, a, Account{Name: "dave", Role: RoleAuditor, PasswordHash: "h"})
	dave, err := a.Account(ctx, "dave")
	if err != nil {
		t.Fatal(err)
	}
	if dave.Created.Before(before.Add(-time.Second)) || dave.Created.After(time.Now()) || !dave.PasswordSet.Equal(dave.Created) || dave.Created.Location() != time.UTC {
		t.Fatalf("dave created %v, password set %v", dave.Created, dave.PasswordSet)
	}

	// UpdateAccount: role, hash, disabled; Created never changes;
	// PasswordSet follows the hash unless given.
	later := atT0.Add(time.Hour)
	for _, c := range []struct {
		name    string
		acc     Account
		want    error
		wantSet time.Time // zero: about now
	}{
		{"missing", atAccount("nobody", RoleAdmin), ErrNotFound, time.Time{}},
		{"bad role", Account{Name: "bob", Role: "root"}, ErrInvalid, time.Time{}},
		{"same hash keeps PasswordSet", Account{Name: "bob", Role: RoleAdmin, PasswordHash: bob.PasswordHash, Created: later}, nil, atT0},
		{"explicit PasswordSet", Account{Name: "bob", Role: RoleAdmin, PasswordHash: "new", PasswordSet: later}, nil, later},
		{"new hash sets PasswordSet", Account{Name: "bob", Role: RoleAuditor, PasswordHash: "newer"}, nil, time.Time{}},
	} {
		err := a.UpdateAccount(ctx, c.acc)
		atErrIs(t, "UpdateAccount "+c.name, err, c.want)
		if err != nil {
			continue
		}
		got, err := a.Account(ctx, c.acc.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Role != c.acc.Role || got.PasswordHash != c.acc.PasswordHash || got.Disabled != c.acc.Disabled || !got.Created.Equal(atT0) {
			t.Errorf("%s: stored %+v after update %+v", c.name, got, c.acc)
		}
		if !c.wantSet.IsZero() && !got.PasswordSet.Equal(c.wantSet) || c.wantSet.IsZero() && time.Since(got.PasswordSet) > time.Minute {
			t.Errorf("%s: PasswordSet %v, want %v", c.name, got.PasswordSet, c.wantSet)
		}
	}

	atErrIs(t, "DeleteAccount(nobody)", a.DeleteAccount(ctx, "nobody"), ErrNotFound)
	atErrIs(t, "DeleteAccount(bob)", a.DeleteAccount(ctx, "bob"), nil)
	_, err = a.Account(ctx, "bob")
	atErrIs(t, "Account after delete", err, ErrNotFound)
	if n, err := a.CountAccounts(ctx); n != 4 || err != nil {
		t.Fatalf("CountAccounts = %d, %v; want 4", n, err)
	}
}

// The last enabled admin can be neither deleted, demoted nor disabled.
func TestAdminLastAdmin(t *testing.T) {
	ctx := context.Background()
	disabledAdmin := atAccount("old", RoleAdmin)
	disabledAdmin.Disabled = true
	demote, disable := atAccount("root", RoleAuditor), atAccount("root", RoleAdmin)
	disable.Disabled = true
	for _, c := range []struct {
		name   string
		extra  []Account // besides root (enabled admin), old (disabled admin), aud (auditor)
		op     func(*AdminStore) error
		want   error
		admins int // enabled admins after op
	}{
		{"delete last", nil, func(a *AdminStore) error { return a.DeleteAccount(ctx, "root") }, ErrLastAdmin, 1},
		{"demote last", nil, func(a *AdminStore) error { return a.UpdateAccount(ctx, demote) }, ErrLastAdmin, 1},
		{"disable last", nil, func(a *AdminStore) error { return a.UpdateAccount(ctx, disable) }, ErrLastAdmin, 1},
		{"update last keeping role", nil, func(a *AdminStore) error { return a.UpdateAccount(ctx, atAccount("root", RoleAdmin)) }, nil, 1},
		{"delete disabled admin", nil, func(a *AdminStore) error { return a.DeleteAccount(ctx, "old") }, nil, 1},
		{"delete auditor", nil, func(a *AdminStore) error { return a.DeleteAccount(ctx, "aud") }, nil, 1},
		{"enable other then disable last", nil, func(a *AdminStore) error {
			if err := a.UpdateAccount(ctx, atAccount("old", RoleAdmin)); err != nil {
				return err
			}
			return a.UpdateAccount(ctx, disable)
		}, nil, 1},
		{"delete one of two", []Account{atAccount("root2", RoleAdmin)}, func(a *AdminStore) error { return a.DeleteAccount(ctx, "root") }, nil, 1},
		{"demote one of two", []Account{atAccount("root2", RoleAdmin)}, func(a *AdminStore) error { return a.UpdateAccount(ctx, demote) }, nil, 1},
		{"demote both of two", []Account{atAccount("root2", RoleAdmin)}, func(a *AdminStore) error {
			if err := a.UpdateAccount(ctx, demote); err != nil {
				return err
			}
			return a.UpdateAccount(ctx, atAccount("root2", RoleAuditor))
		}, ErrLastAdmin, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := atOpen(t)
			atMustCreate(t, a, append([]Account{atAccount("root", RoleAdmin), disabledAdmin, atAccount("aud", RoleAuditor)}, c.extra...)...)
			atErrIs(t, c.name, c.op(a), c.want)
			var n int
			if err := a.rdb.QueryRow(`SELECT count(*) FROM admin_accounts WHERE role = 'admin' AND disabled = 0`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != c.admins {
				t.Errorf("%d enabled admins, want %d", n, c.admins)
			}
		})
	}
}

// Deleting an account deletes its sessions and tokens, and only those.
func TestAdminDeleteAccountCascade(t *testing.T) {
	ctx := context.Background()
	_, a := atStore(t)
	atMustCreate(t, a, atAccount("root", RoleAdmin), atAccount("bob", RoleAuditor))
	exp := atT0.Add(time.Hour)
	for i, u := range []string{"root", "bob", "bob"} {
		if err := a.CreateSession(ctx, atKey(fmt.Sprint("s", i)), Session{User: u, Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateToken(ctx, atKey(fmt.Sprint("t", i)), Token{ID: fmt.Sprint("tok_", i), User: u}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.DeleteAccount(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table, user string
		want        int
	}{
		{"admin_sessions", "bob", 0}, {"admin_tokens", "bob", 0},
		{"admin_sessions", "root", 1}, {"admin_tokens", "root", 1},
	} {
		if n := atCount(t, a, c.table, c.user); n != c.want {
			t.Errorf("%s of %s: %d rows, want %d", c.table, c.user, n, c.want)
		}
	}
}

func TestAdminSessions(t *testing.T) {
	ctx := context.Background()
	_, a := atStore(t)
	atMustCreate(t, a, atAccount("root", RoleAdmin), atAccount("root2", RoleAdmin), atAccount("bob", RoleAuditor))
	k1, k2, k3 := atKey("cookie1"), atKey("cookie2"), atKey("cookie3")
	s1 := Session{
		User: "root", Role: "ignored", CSRF: "csrf-1", Created: atT0, LastSeen: atT0.Add(time.Second),
		Expires: atT0.Add(time.Hour), Client: "192.0.2.1:5000", UserAgent: "curl/8",
	}
	if err := a.CreateSession(ctx, k1, s1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		key  [32]byte
		s    Session
		want error
	}{
		{"duplicate key", k1, Session{User: "root", Expires: atT0.Add(time.Hour)}, ErrExists},
		{"missing account", k2, Session{User: "nobody", Expires: atT0.Add(time.Hour)}, ErrNotFound},
		{"zero expiry", k2, Session{User: "root"}, ErrInvalid},
		{"second", k2, Session{User: "root", Created: atT0, Expires: atT0.Add(2 * time.Hour)}, nil},
		{"auditor", k3, Session{User: "bob", Created: atT0, Expires: atT0.Add(time.Hour)}, nil},
	} {
		atErrIs(t, "CreateSession "+c.name, a.CreateSession(ctx, c.key, c.s), c.want)
	}

	got, err := a.Session(ctx, k1, atT0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := s1
	want.Role = RoleAdmin
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Session =\n%+v, want\n%+v", got, want)
	}
	if got, err := a.Session(ctx, k2, atT0); err != nil || !got.LastSeen.Equal(atT0) {
		t.Fatalf("Session(k2) = %+v, %v; want LastSeen = Created", got, err)
	}
	for _, c := range []struct {
		name string
		key  [32]byte
		now  time.Time
		want error
	}{
		{"just before expiry", k1, atT0.Add(time.Hour - 1), nil},
		{"at expiry", k1, atT0.Add(time.Hour), ErrNotFound},
		{"after expiry", k1, atT0.Add(2 * time.Hour), ErrNotFound},
		{"unknown key", atKey("nope"), atT0, ErrNotFound},
	} {
		_, err := a.Session(ctx, c.key, c.now)
		atErrIs(t, "Session "+c.name, err, c.want)
	}

	// Touch extends; an expired session is not revived.
	atErrIs(t, "TouchSession", a.TouchSession(ctx, k1, atT0.Add(30*time.Minute), atT0.Add(3*time.Hour)), nil)
	got, err = a.Session(ctx, k1, atT0.Add(2*time.Hour))
	if err != nil || !got.LastSeen.Equal(atT0.Add(30*time.Minute)) || !got.Expires.Equal(atT0.Add(3*time.Hour)) {
		t.Fatalf("after touch: %+v, %v", got, err)
	}
	atErrIs(t, "TouchSession expired", a.TouchSession(ctx, k1, atT0.Add(3*time.Hour), atT0.Add(4*time.Hour)), ErrNotFound)
	atErrIs(t, "TouchSession unknown", a.TouchSession(ctx, atKey("nope"), atT0, atT0.Add(time.Hour)), ErrNotFound)
	atErrIs(t, "TouchSession zero expiry", a.TouchSession(ctx, k1, atT0, time.Time{}), ErrInvalid)

	// Demotion is reflected at once; disabling ends the sessions.
	if err := a.UpdateAccount(ctx, atAccount("root", RoleAuditor)); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Session(ctx, k1, atT0); err != nil || got.Role != RoleAuditor {
		t.Fatalf("after demotion: role %q, %v", got.Role, err)
	}
	dis := atAccount("bob", RoleAuditor)
	dis.Disabled = true
	if err := a.UpdateAccount(ctx, dis); err != nil {
		t.Fatal(err)
	}
	_, err = a.Session(ctx, k3, atT0)
	atErrIs(t, "Session of disabled account", err, ErrNotFound)
	dis.Disabled = false
	if err := a.UpdateAccount(ctx, dis); err != nil {
		t.Fatal(err)
	}
	_, err = a.Session(ctx, k3, atT0)
	atErrIs(t, "Session of re-enabled account", err, ErrNotFound)

	// A session whose account is gone (deleted behind the store's back).
	if err := a.CreateSession(ctx, k3, Session{User: "bob", Expires: atT0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.wdb.Exec(`DELETE FROM admin_accounts WHERE name = 'bob'`); err != nil {
		t.Fatal(err)
	}
	_, err = a.Session(ctx, k3, atT0)
	atErrIs(t, "Session of deleted account", err, ErrNotFound)

	// Delete, DeleteSessions, Prune.
	atErrIs(t, "DeleteSession", a.DeleteSession(ctx, k2), nil)
	atErrIs(t, "DeleteSession again", a.DeleteSession(ctx, k2), ErrNotFound)
	_, err = a.Session(ctx, k2, atT0)
	atErrIs(t, "Session after delete", err, ErrNotFound)
	for i := range 5 {
		u := []string{"root", "root2"}[i%2]
		if err := a.CreateSession(ctx, atKey(fmt.Sprint("p", i)), Session{User: u, Expires: atT0.Add(time.Duration(i+1) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	atErrIs(t, "DeleteSessions(root2)", a.DeleteSessions(ctx, "root2"), nil) // p1, p3
	atErrIs(t, "DeleteSessions(nobody)", a.DeleteSessions(ctx, "nobody"), nil)
	if n := atCount(t, a, "admin_sessions", "root2"); n != 0 {
		t.Fatalf("%d sessions of root2 after DeleteSessions", n)
	}
	// Left: k1 (root, until +3h), p0 (+1m), p2 (+3m), p4 (+5m), k3 (bob, gone).
	for _, c := range []struct {
		now  time.Time
		want int
	}{
		{atT0, 1},                      // k3
		{atT0.Add(3 * time.Minute), 2}, // p0, p2
		{atT0.Add(3 * time.Minute), 0},
		{atT0.Add(time.Hour), 1}, // p4
		{atT0.Add(time.Hour), 0},
	} {
		n, err := a.PruneSessions(ctx, c.now)
		if err != nil || n != c.want {
			t.Fatalf("PruneSessions(%v) = %d, %v; want %d", c.now, n, err, c.want)
		}
	}
	if _, err := a.Session(ctx, k1, atT0.Add(time.Hour)); err != nil {
		t.Fatalf("k1 pruned: %v", err)
	}
}

func TestAdminTokens(t *testing.T) {
	ctx := context.Background()
	_, a := atStore(t)
	dis := atAccount("dis", RoleAdmin)
	dis.Disabled = true
	atMustCreate(t, a, atAccount("root", RoleAdmin), atAccount("bob", RoleAuditor), dis)
	secret := func(i int) [32]byte { return atKey(fmt.Sprint("secret", i)) }
	toks := []Token{
		{ID: "tok_0", Name: "ci", User: "root", Created: atT0},
		{ID: "tok_1", Name: "grafana", User: "root", ReadOnly: true, Created: atT0.Add(time.Second), Expires: atT0.Add(time.Hour)},
		{ID: "tok_2", Name: "report", User: "bob", Created: atT0},
	}
	for i, tok := range toks {
		if err := a.CreateToken(ctx, secret(i), tok); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		secret [32]byte
		tok    Token
		want   error
	}{
		{"duplicate id", secret(9), Token{ID: "tok_0", User: "root"}, ErrExists},
		{"duplicate secret", secret(0), Token{ID: "tok_9", User: "root"}, ErrExists},
		{"empty id", secret(9), Token{User: "root"}, ErrInvalid},
		{"missing owner", secret(9), Token{ID: "tok_9", User: "nobody"}, ErrNotFound},
		{"disabled owner", secret(9), Token{ID: "tok_9", User: "dis"}, ErrNotFound},
	} {
		atErrIs(t, "CreateToken "+c.name, a.CreateToken(ctx, c.secret, c.tok), c.want)
	}

	for _, c := range []struct {
		name     string
		secret   [32]byte
		now      time.Time
		wantID   string
		wantRole string
		want     error
	}{
		{"admin", secret(0), atT0, "tok_0", RoleAdmin, nil},
		{"read-only", secret(1), atT0, "tok_1", RoleAuditor, nil},
		{"auditor", secret(2), atT0, "tok_2", RoleAuditor, nil},
		{"just before expiry", secret(1), atT0.Add(time.Hour - 1), "tok_1", RoleAuditor, nil},
		{"at expiry", secret(1), atT0.Add(time.Hour), "", "", ErrNotFound},
		{"never expires", secret(0), atT0.AddDate(10, 0, 0), "tok_0", RoleAdmin, nil},
		{"unknown", secret(9), atT0, "", "", ErrNotFound},
	} {
		tok, role, err := a.TokenBySecret(ctx, c.secret, c.now)
		atErrIs(t, "TokenBySecret "+c.name, err, c.want)
		if tok.ID != c.wantID || role != c.wantRole {
			t.Errorf("TokenBySecret %s = %q, %q; want %q, %q", c.name, tok.ID, role, c.wantID, c.wantRole)
		}
	}

	// LastUsed moves at most once a minute, never back.
	a2 := atOpen(t)
	atMustCreate(t, a2, atAccount("root", RoleAdmin))
	if err := a2.CreateToken(ctx, secret(0), Token{ID: "tok", User: "root", Created: atT0}); err != nil {
		t.Fatal(err)
	}
	stored := func() time.Time {
		t.Helper()
		ts, err := a2.Tokens(ctx, "root")
		if err != nil || len(ts) != 1 {
			t.Fatalf("Tokens = %v, %v", ts, err)
		}
		return ts[0].LastUsed
	}
	if !stored().IsZero() {
		t.Fatal("new token has a LastUsed")
	}
	for _, c := range []struct {
		now, want time.Time
	}{
		{atT0, atT0},
		{atT0.Add(30 * time.Second), atT0},
		{atT0.Add(time.Minute - 1), atT0},
		{atT0.Add(time.Minute), atT0.Add(time.Minute)},
		{atT0.Add(90 * time.Second), atT0.Add(time.Minute)},
		{atT0.Add(-time.Hour), atT0.Add(time.Minute)},
		{atT0.Add(time.Hour), atT0.Add(time.Hour)},
	} {
		tok, _, err := a2.TokenBySecret(ctx, secret(0), c.now)
		if err != nil {
			t.Fatal(err)
		}
		if !tok.LastUsed.Equal(c.want) || !stored().Equal(c.want) {
			t.Fatalf("at %v: LastUsed returned %v, stored %v; want %v", c.now, tok.LastUsed, stored(), c.want)
		}
	}

	// Listing, by owner then creation; no secrets.
	all, err := a.Tokens(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tok := range all {
		ids = append(ids, tok.ID)
	}
	if want := []string{"tok_2", "tok_0", "tok_1"}; !slices.Equal(ids, want) {
		t.Fatalf("Tokens(\"\") = %q, want %q", ids, want)
	}
	rootToks, err := a.Tokens(ctx, "root")
	if err != nil || len(rootToks) != 2 {
		t.Fatalf("Tokens(root) = %+v, %v", rootToks, err)
	}
	w := toks[1]
	w.LastUsed = atT0.Add(time.Hour - 1)
	if !reflect.DeepEqual(rootToks[1], w) {
		t.Fatalf("Tokens(root)[1] =\n%+v, want\n%+v", rootToks[1], w)
	}
	if none, err := a.Tokens(ctx, "nobody"); err != nil || len(none) != 0 {
		t.Fatalf("Tokens(nobody) = %v, %v", none, err)
	}

	// Demotion, disabling, deletion of the owner; DeleteToken.
	if err := a.UpdateAccount(ctx, atAccount("bob", RoleAdmin)); err != nil {
		t.Fatal(err)
	}
	if _, role, err := a.TokenBySecret(ctx, secret(2), atT0); err != nil || role != RoleAdmin {
		t.Fatalf("after promotion: %q, %v", role, err)
	}
	if err := a.UpdateAccount(ctx, atAccount("root", RoleAuditor)); err != nil {
		t.Fatal(err)
	}
	if _, role, err := a.TokenBySecret(ctx, secret(0), atT0); err != nil || role != RoleAuditor {
		t.Fatalf("after demotion: %q, %v", role, err)
	}
	rootDis := atAccount("root", RoleAuditor)
	rootDis.Disabled = true
	if err := a.UpdateAccount(ctx, rootDis); err != nil {
		t.Fatal(err)
	}
	_, _, err = a.TokenBySecret(ctx, secret(0), atT0)
	atErrIs(t, "token of disabled owner", err, ErrNotFound)
	if err := a.DeleteAccount(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	_, _, err = a.TokenBySecret(ctx, secret(0), atT0)
	atErrIs(t, "token of deleted owner", err, ErrNotFound)
	atErrIs(t, "DeleteToken", a.DeleteToken(ctx, "tok_2"), nil)
	atErrIs(t, "DeleteToken again", a.DeleteToken(ctx, "tok_2"), ErrNotFound)
	_, _, err = a.TokenBySecret(ctx, secret(2), atT0)
	atErrIs(t, "deleted token", err, ErrNotFound)
}

func TestAdminRevisions(t *testing.T) {
	ctx := context.Background()
	_, a := atStore(t)
	_, err := a.LatestRevision(ctx)
	atErrIs(t, "LatestRevision of none", err, ErrNotFound)
	if revs, err := a.Revisions(ctx, 0, 0); err != nil || len(revs) != 0 {
		t.Fatalf("Revisions of none = %v, %v", revs, err)
	}

	const n = 120
	for i := 1; i <= n; i++ {
		cfg := fmt.Appendf(nil, "listen: :%d\n", 3000+i)
		id, err := a.AddRevision(ctx, Revision{ID: 999, Time: atT0.Add(time.Duration(i) * time.Minute), Author: "root", Comment: fmt.Sprint("change ", i), Config: cfg, SHA256: [32]byte{1}})
		if err != nil || id != int64(i) {
			t.Fatalf("AddRevision %d = %d, %v", i, id, err)
		}
	}
	for _, c := range []struct {
		name   string
		before int64
		limit  int
		want   []int64 // first and last id; nil = none
		count  int
	}{
		{"default", 0, 0, []int64{120, 71}, 50},
		{"negative", -5, -1, []int64{120, 71}, 50},
		{"page", 71, 50, []int64{70, 21}, 50},
		{"last page", 21, 50, []int64{20, 1}, 20},
		{"past the end", 1, 50, nil, 0},
		{"small", 100, 3, []int64{99, 97}, 3},
		{"capped", 0, 1000, []int64{120, 1}, 120},
	} {
		revs, err := a.Revisions(ctx, c.before, c.limit)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(revs) != c.count || c.count > 0 && (revs[0].ID != c.want[0] || revs[len(revs)-1].ID != c.want[1]) {
			t.Fatalf("%s: %d revisions, want %d from %v", c.name, len(revs), c.count, c.want)
		}
		for i, r := range revs {
			if r.Config != nil || i > 0 && r.ID != revs[i-1].ID-1 {
				t.Fatalf("%s: revision %d: config %q, previous %d", c.name, r.ID, r.Config, revs[max(i-1, 0)].ID)
			}
			wantSum := sha256.Sum256(fmt.Appendf(nil, "listen: :%d\n", 3000+r.ID))
			if r.SHA256 != wantSum || r.Author != "root" || r.Comment != fmt.Sprint("change ", r.ID) || !r.Time.Equal(atT0.Add(time.Duration(r.ID)*time.Minute)) {
				t.Fatalf("%s: revision %+v", c.name, r)
			}
		}
	}
	// More than 500 are capped at 500.
	big := bytes.Repeat([]byte("x"), 10)
	for range 400 {
		if _, err := a.AddRevision(ctx, Revision{Config: big}); err != nil {
			t.Fatal(err)
		}
	}
	if revs, err := a.Revisions(ctx, 0, 10000); err != nil || len(revs) != 500 || revs[0].ID != 520 {
		t.Fatalf("Revisions(0, 10000): %d, %v", len(revs), err)
	}

	r, err := a.Revision(ctx, 7)
	if err != nil || string(r.Config) != "listen: :3007\n" || r.SHA256 != sha256.Sum256(r.Config) || r.ID != 7 {
		t.Fatalf("Revision(7) = %+v, %v", r, err)
	}
	_, err = a.Revision(ctx, 10000)
	atErrIs(t, "Revision(10000)", err, ErrNotFound)

	// Size cap; an empty (or nil) config; zero time is now.
	for _, c := range []struct {
		name string
		size int
		want error
	}{
		{"max", MaxRevisionConfig, nil},
		{"over", MaxRevisionConfig + 1, ErrTooLarge},
		{"empty", 0, nil},
	} {
		cfg := bytes.Repeat([]byte{'#'}, c.size)
		if c.size == 0 {
			cfg = nil
		}
		id, err := a.AddRevision(ctx, Revision{Author: "a", Config: cfg})
		atErrIs(t, "AddRevision "+c.name, err, c.want)
		if err != nil {
			continue
		}
		latest, err := a.LatestRevision(ctx)
		if err != nil || latest.ID != id || !bytes.Equal(latest.Config, cfg) || latest.Config == nil || latest.SHA256 != sha256.Sum256(cfg) || time.Since(latest.Time) > time.Minute {
			t.Fatalf("%s: LatestRevision = id %d (want %d), %d bytes, %v", c.name, latest.ID, id, len(latest.Config), err)
		}
	}
}

// OpenAdmin creates and migrates a new database that Open then accepts,
// and works on a database a running Store has open.
func TestOpenAdmin(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "audit.db")
	a, err := OpenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	var v, av int
	if err := a.rdb.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", v, err, len(migrations))
	}
	if err := a.rdb.QueryRow(`PRAGMA auto_vacuum`).Scan(&av); err != nil || av != 2 {
		t.Fatalf("auto_vacuum = %d, %v; want 2 (incremental)", av, err)
	}
	atMustCreate(t, a, atAccount("root", RoleAdmin))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s := openTest(t, path, nil)
	s.Record(testEvent(1))
	// Both at once: the CLI changes a password while the gateway runs.
	a, err = OpenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.UpdateAccount(ctx, atAccount("root", RoleAdmin)); err != nil {
		t.Fatal(err)
	}
	if acc, err := s.Admin().Account(ctx, "root"); err != nil || acc.Role != RoleAdmin {
		t.Fatalf("Account via Store = %+v, %v", acc, err)
	}
	if err := s.Admin().Close(); err != nil {
		t.Fatalf("Close of Store.Admin: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, 1)

	if _, err := OpenAdmin(""); err == nil {
		t.Fatal("OpenAdmin(\"\") succeeded")
	}
}

// Migration 4 applies to a database written at migration 3, keeping its
// events and their chain.
func TestAdminMigrationFrom3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	all := migrations
	migrations = all[:3]
	s, err := Open(Options{Path: path, Logger: quietLogger()})
	if err != nil {
		migrations = all
		t.Fatal(err)
	}
	for i := range 100 {
		s.Record(testEvent(i))
	}
	err = s.Close()
	migrations = all
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != 3 {
		t.Fatalf("user_version = %d, %v; want 3", v, err)
	}
	if _, err := db.Exec(`SELECT 1 FROM admin_accounts`); err == nil {
		t.Fatal("admin_accounts exists at version 3")
	}

	s = openTest(t, path, nil)
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", v, err, len(migrations))
	}
	a := s.Admin()
	atMustCreate(t, a, atAccount("root", RoleAdmin))
	if _, err := a.AddRevision(context.Background(), Revision{Config: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	s.Record(testEvent(100))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, path, 101)
}

// Sessions created and read by 8 goroutines while another prunes them and
// the audit writer writes events: no error, no lost session.
func TestAdminConcurrent(t *testing.T) {
	ctx := context.Background()
	s, a := atStore(t)
	atMustCreate(t, a, atAccount("root", RoleAdmin), atAccount("bob", RoleAuditor))
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers+2)
	stop := make(chan struct{})
	pruned := make(chan int, 1)
	go func() {
		total := 0
		defer func() { pruned <- total }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// Sessions expire at atT0 + their index in minutes; prune
			// the first ones, which no worker reads again.
			n, err := a.PruneSessions(ctx, atT0.Add(5*time.Minute))
			if err != nil {
				errs <- fmt.Errorf("prune: %w", err)
				return
			}
			total += n
			if i%10 == 0 {
				s.Record(testEvent(i))
				// The audit Prune shares the writer's pool with admin
				// writes.
				if _, err := s.Prune(ctx, testT0.Add(time.Minute), 0); err != nil {
					errs <- fmt.Errorf("audit prune: %w", err)
					return
				}
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := []string{"root", "bob"}[w%2]
			role := []string{RoleAdmin, RoleAuditor}[w%2]
			for i := range each {
				key := atKey(fmt.Sprint(w, "/", i))
				exp := atT0.Add(time.Duration(i+1) * time.Minute)
				if err := a.CreateSession(ctx, key, Session{User: user, CSRF: fmt.Sprint(i), Expires: exp}); err != nil {
					errs <- fmt.Errorf("worker %d: create %d: %w", w, i, err)
					return
				}
				if i < 5 {
					continue // may be pruned already
				}
				got, err := a.Session(ctx, key, atT0)
				if err != nil || got.User != user || got.Role != role || got.CSRF != fmt.Sprint(i) || !got.Expires.Equal(exp) {
					errs <- fmt.Errorf("worker %d: session %d = %+v, %v", w, i, got, err)
					return
				}
				if err := a.TouchSession(ctx, key, atT0, exp.Add(time.Hour)); err != nil {
					errs <- fmt.Errorf("worker %d: touch %d: %w", w, i, err)
					return
				}
				if i%4 == 0 {
					if err := a.DeleteSession(ctx, key); err != nil {
						errs <- fmt.Errorf("worker %d: delete %d: %w", w, i, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	total := <-pruned
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	n, err := a.PruneSessions(ctx, atT0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	total += n
	if total != workers*5 {
		t.Errorf("pruned %d sessions, want %d", total, workers*5)
	}
	var left int
	if err := a.rdb.QueryRow(`SELECT count(*) FROM admin_sessions`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	// Of i in 5..39 per worker, those with i%4 == 0 were deleted (8, 12, ..., 36: 8).
	if want := workers * (each - 5 - 8); left != want {
		t.Errorf("%d sessions left, want %d", left, want)
	}
	if got := s.wdb.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("writer pool allows %d connections, want 3", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(ctx, s.opt.Path)
	if err != nil || !res.OK {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
}
