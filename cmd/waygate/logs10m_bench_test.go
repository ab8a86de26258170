package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"waygate/audit"
	auditsqlite "waygate/audit/sqlite"
	"waygate/webui"
)

// roSearcher searches a read-only audit database with the same query code
// as the gateway's store (auditsqlite.Store.Search calls Search).
type roSearcher struct{ db *sql.DB }

func (r roSearcher) Search(ctx context.Context, q audit.Query) (audit.Page, error) {
	return auditsqlite.Search(ctx, r.db, q)
}

// BenchmarkLogsAPI10M measures the logs page and the searches it makes
// through GET /api/v1/logs, over real HTTP with an API token, on the
// 10-million-event database that audit/sqlite's BenchmarkQueries10M builds
// (30 days, 2,000 users, 50,000 hosts). It reports the p50 and p95 of each
// kind of search in milliseconds (target: p95 within 200 ms). It skips
// unless that database exists: build it with
//
//	go test -run XXX -bench Queries10M ./audit/sqlite
//
// or point WAYGATE_BENCH_DB at a copy.
func BenchmarkLogsAPI10M(b *testing.B) {
	path := os.Getenv("WAYGATE_BENCH_DB")
	if path == "" {
		path = filepath.Join(os.TempDir(), "waygate-bench-10m.db")
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("no 10-million-event database at %s (go test -run XXX -bench Queries10M ./audit/sqlite builds it)", path)
	}
	db, err := auditsqlite.OpenReadOnly(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	admin, err := auditsqlite.OpenAdmin(filepath.Join(b.TempDir(), "admin.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateAccount(ctx, auditsqlite.Account{Name: "bench", Role: webui.RoleAuditor}); err != nil {
		b.Fatal(err)
	}
	secret := webui.TokenPrefix + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	tok := auditsqlite.Token{ID: "benchbenchbench1", Name: "bench", User: "bench", ReadOnly: true,
		Created: time.Now(), Expires: time.Now().Add(time.Hour)}
	if err := admin.CreateToken(ctx, sha256.Sum256([]byte(secret)), tok); err != nil {
		b.Fatal(err)
	}
	srv, err := webui.New(webui.Options{Accounts: adminAccounts{admin}, Tokens: adminAccounts{admin}, Logs: roSearcher{db}})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	get := func(path string) (time.Duration, []byte) {
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		t0 := time.Now()
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirects: a redirect to /login is a failure
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v: %.200s", path, resp.StatusCode, err, body)
		}
		return d, body
	}
	// The data spans May 2024; each search looks at one random day of it
	// (or none), as an admin does on the logs page.
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	day := func(i int) url.Values {
		d := start.AddDate(0, 0, (i*7)%30)
		return url.Values{"since": {d.Format(time.RFC3339)}, "until": {d.Add(24 * time.Hour).Format(time.RFC3339)}}
	}
	with := func(v url.Values, kv ...string) url.Values {
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	client := func(u int) string { return fmt.Sprintf("10.%d.%d.%d", u/65536, u/256%256, u%256+1) }
	searches := []struct {
		name string
		q    func(i int) url.Values
	}{
		{"newest", func(int) url.Values { return url.Values{} }},
		{"day", day},
		{"user-day", func(i int) url.Values { return with(day(i), "user", fmt.Sprintf("user%04d", (i*37)%2000)) }},
		{"user-all", func(i int) url.Values { return url.Values{"user": {fmt.Sprintf("user%04d", (i*37)%2000)}} }},
		{"client-day", func(i int) url.Values { return with(day(i), "client", client((i*37)%2000)) }},
		{"host-day", func(i int) url.Values { return with(day(i), "host", fmt.Sprintf("www.site%d.com", (i*3)%40*7)) }},
		{"suffix-day", func(i int) url.Values { return with(day(i), "host_suffix", ".de") }},
		{"category-day", func(i int) url.Values { return with(day(i), "category", "gambling") }},
		{"blocked-day", func(i int) url.Values { return with(day(i), "action", "block") }},
		{"status-day", func(i int) url.Values { return with(day(i), "status", "403") }},
		{"kind-day", func(i int) url.Values { return with(day(i), "kind", "http") }},
		{"text-day", func(i int) url.Values { return with(day(i), "q", fmt.Sprintf("/p/%d/", i%1000)) }},
		{"text-all", func(i int) url.Values { return url.Values{"q": {"curl/8"}} }},
	}
	const rounds = 20
	lat := map[string][]time.Duration{}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range rounds {
			d, _ := get("/logs")
			lat["page"] = append(lat["page"], d)
			for _, s := range searches {
				v := s.q(i)
				d, body := get("/api/v1/logs?" + v.Encode())
				lat[s.name] = append(lat[s.name], d)
				// The next page, as the page's "older" button asks for it.
				var page struct {
					Next string `json:"next"`
				}
				if err := json.Unmarshal(body, &page); err != nil {
					b.Fatal(err)
				}
				if page.Next != "" && i%4 == 0 {
					v.Set("before", page.Next)
					d, _ := get("/api/v1/logs?" + v.Encode())
					lat["next-page"] = append(lat["next-page"], d)
				}
			}
		}
	}
	b.StopTimer()
	names := []string{"page", "next-page"}
	for _, s := range searches {
		names = append(names, s.name)
	}
	for _, name := range names {
		ds := lat[name]
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		p50, p95 := ds[len(ds)/2], ds[(len(ds)*95+99)/100-1]
		b.ReportMetric(float64(p95)/float64(time.Millisecond), name+"-p95-ms")
		b.Logf("%-13s p50 %7.1f ms  p95 %7.1f ms  (%d)", name, float64(p50)/1e6, float64(p95)/1e6, len(ds))
	}
}
