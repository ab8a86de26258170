package audit_test

import (
	"strings"
	"testing"

	"waygate/audit"
)

func TestPrivacy(t *testing.T) {
	p := &audit.Privacy{Key: []byte("0123456789abcdef0123456789abcdef"), HashUsers: true, HashClients: true,
		Query: audit.QueryHash, ExcludeCategories: []string{"health"}}
	e := &audit.Event{User: "alice", Client: "10.1.2.3", Query: "q=secret", Host: "example.com"}
	if !p.Apply(e) {
		t.Fatal("event without an excluded category left out")
	}
	for _, leaked := range []string{"alice", "10.1.2.3", "secret"} {
		if strings.Contains(e.User+e.Client+e.Query, leaked) {
			t.Errorf("%q readable after pseudonymization: %+v", leaked, e)
		}
	}
	if !strings.HasPrefix(e.User, "~") || e.Host != "example.com" {
		t.Errorf("pseudonym %q, host %q", e.User, e.Host)
	}
	// Stable for one key, different under another.
	e2 := &audit.Event{User: "alice"}
	p.Apply(e2)
	if e2.User != e.User {
		t.Errorf("pseudonym not stable: %q vs %q", e2.User, e.User)
	}
	other := &audit.Privacy{Key: []byte("another key, another pseudonym!!"), HashUsers: true}
	e3 := &audit.Event{User: "alice"}
	other.Apply(e3)
	if e3.User == e.User {
		t.Error("pseudonym does not depend on the key")
	}
	if p.Apply(&audit.Event{Categories: []string{"news", "health"}}) {
		t.Error("event in an excluded category kept")
	}
	drop := &audit.Privacy{Query: audit.QueryDrop}
	e4 := &audit.Event{Query: "a=1", User: "bob"}
	drop.Apply(e4)
	if e4.Query != "" || e4.User != "bob" {
		t.Errorf("drop: %+v", e4)
	}
	var none *audit.Privacy
	if !none.Apply(&audit.Event{}) {
		t.Error("nil privacy leaves events out")
	}
}

func TestParseQueryMode(t *testing.T) {
	for in, want := range map[string]audit.QueryMode{"": audit.QueryKeep, "keep": audit.QueryKeep, "drop": audit.QueryDrop, "hash": audit.QueryHash} {
		if got, err := audit.ParseQueryMode(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := audit.ParseQueryMode("encrypt"); err == nil {
		t.Error("unknown mode accepted")
	}
}
