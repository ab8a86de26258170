package upstream

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestHostsParse(t *testing.T) {
	const text = `# comment line
127.0.0.1	localhost Localhost.localdomain   # trailing comment
::1 localhost ip6-localhost
192.0.2.1 Foo.Example. foo
192.0.2.1 foo.example
2001:db8::1 foo.example
::ffff:192.0.2.2 mapped.example
not-an-ip bogus.example
192.0.2.3
   # indented comment
192.0.2.4 last.example`
	got := parseHosts([]byte(text))
	want := map[string][]string{
		"localhost":             {"127.0.0.1", "::1"},
		"localhost.localdomain": {"127.0.0.1"},
		"ip6-localhost":         {"::1"},
		"foo.example":           {"192.0.2.1", "2001:db8::1"},
		"foo":                   {"192.0.2.1"},
		"mapped.example":        {"192.0.2.2"},
		"last.example":          {"192.0.2.4"},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %d names, want %d: %v", len(got), len(want), got)
	}
	for name, addrs := range want {
		var w []netip.Addr
		for _, a := range addrs {
			w = append(w, netip.MustParseAddr(a))
		}
		if !slices.Equal(got[name], w) {
			t.Errorf("%s: got %v, want %v", name, got[name], w)
		}
		if cap(got[name]) != len(got[name]) {
			t.Errorf("%s: slice not clipped", name)
		}
	}
}

func writeHosts(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestResolverHostsFile(t *testing.T) {
	srv := startTestDNS(t, newTestZone(t,
		"foo.example. 300 IN A 198.51.100.1",
		"bar.example. 300 IN A 198.51.100.2",
	), nil)
	path := filepath.Join(t.TempDir(), "hosts")
	mtime := time.Now().Add(-time.Hour)
	writeHosts(t, path, "192.0.2.10 Foo.Example bar.example\n2001:db8::10 foo.example\n", mtime)
	r, clock := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}, HostsFile: path})

	wantAddrs(t, mustLookup(t, r, "foo.example"), "192.0.2.10", "2001:db8::10")
	wantAddrs(t, mustLookup(t, r, "bar.example"), "192.0.2.10")
	if n := srv.queries(); n != 0 {
		t.Fatalf("names in the hosts file were queried (%d queries)", n)
	}
	if st := r.Stats(); st != (ResolverStats{HostsHits: 2}) {
		t.Fatalf("stats: %+v", st)
	}

	// Changed file: not seen before the recheck interval, seen after it.
	writeHosts(t, path, "192.0.2.11 foo.example\n", mtime.Add(time.Minute))
	clock.Advance(defaultHostsRecheck - time.Second)
	wantAddrs(t, mustLookup(t, r, "foo.example"), "192.0.2.10", "2001:db8::10")
	clock.Advance(time.Second)
	wantAddrs(t, mustLookup(t, r, "foo.example"), "192.0.2.11")
	// bar.example left the file: DNS answers it now.
	wantAddrs(t, mustLookup(t, r, "bar.example"), "198.51.100.2")
	if n := srv.queries(); n != 2 {
		t.Fatalf("%d queries, want 2 (for bar.example)", n)
	}

	// A removed file empties the table.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clock.Advance(defaultHostsRecheck)
	wantAddrs(t, mustLookup(t, r, "foo.example"), "198.51.100.1")
}

func TestResolverHostsFileAppears(t *testing.T) {
	srv := startTestDNS(t, newTestZone(t, "late.example. 300 IN A 198.51.100.3"), nil)
	path := filepath.Join(t.TempDir(), "hosts")
	r, clock := newTestResolver(t, ResolverConfig{Servers: []string{srv.Addr}, HostsFile: path, MinTTL: time.Second})

	wantAddrs(t, mustLookup(t, r, "late.example"), "198.51.100.3")
	writeHosts(t, path, "192.0.2.30 late.example\n", time.Now())
	clock.Advance(defaultHostsRecheck)
	wantAddrs(t, mustLookup(t, r, "late.example"), "192.0.2.30")
}

func TestResolverHostsNone(t *testing.T) {
	r, _ := newTestResolver(t, ResolverConfig{Servers: []string{"127.0.0.1:1"}, HostsFile: "none"})
	if r.hosts != nil {
		t.Fatal(`HostsFile "none" did not disable the hosts file`)
	}
	r, err := NewResolver(ResolverConfig{Servers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.hosts == nil || r.hosts.path != "/etc/hosts" {
		t.Fatal("hosts file does not default to /etc/hosts")
	}
}

// TestHostsConcurrentReload runs lookups while the file changes, for the
// race detector.
func TestHostsConcurrentReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	base := time.Now().Add(-time.Hour)
	writeHosts(t, path, "192.0.2.1 a.example\n", base)
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHostsFile(path, time.Second, start)

	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				now := start.Add(time.Duration(g*200+i) * 100 * time.Millisecond)
				if addrs, ok := h.lookup("a.example", now); !ok || len(addrs) != 1 {
					t.Errorf("lookup: %v %v", addrs, ok)
					return
				}
			}
		}()
	}
	for i := range 20 { // replace atomically, as editors and tools do
		tmp := path + ".tmp"
		writeHosts(t, tmp, "192.0.2.1 a.example\n# "+time.Duration(i).String()+"\n", base.Add(time.Duration(i+1)*time.Second))
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		select {
		case <-done:
		case <-time.After(testGuard):
			t.Fatal("lookups did not finish")
		}
	}
}
