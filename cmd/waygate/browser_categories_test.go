package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"waygate/cmd/waygate/internal/config"
	"waygate/filter/lists"
)

func intp(n int) *int { return &n }

// writeFiles writes files (path relative to dir -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListCategories checks GET /api/v1/categories' listing against a
// policy with every kind of source: inline entries (one malformed), a list
// file with a malformed line, a remote list with a copy and one without, a
// squidGuard folder; and the same config without rules, when no policy is
// in force.
func TestListCategories(t *testing.T) {
	dir := t.TempDir()
	listSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "r1.example\nr2.example\n")
	}))
	defer listSrv.Close()
	writeFiles(t, dir, map[string]string{
		"lists/listed":       "one.example\ntwo.example\nbad..line\nthree.example\n",
		"dirs/adult/domains": "adult1.example\nadult2.example\n",
		"dirs/adult/urls":    "adult1.example/x\n",
	})
	policy := fmt.Sprintf(`schema_version: 1
data_dir: %s
categories:
  - name: custom
    domains: [casino.example, "bad..example", 192.0.2.1]
    urls: [news.example/sport]
  - name: listed
    files: [lists/listed]
  - name: remote
    remote:
      - url: %s/list.txt
        refresh: 2h
      - url: http://user:secret@127.0.0.1:1/missing.txt
category_dirs:
  - path: dirs
`, filepath.Join(dir, "data"), listSrv.URL)
	const rules = "rules:\n  - name: r\n    categories: [custom]\n    action: block\n"
	fetched := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

	load := func(t *testing.T, text string) categoriesAnswer {
		t.Helper()
		path := filepath.Join(dir, "waygate.yaml")
		cfg, err := config.Parse(path, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		f := &lists.Fetcher{Client: listSrv.Client(), Dir: listsDir(cfg), Now: func() time.Time { return fetched }}
		if _, _, err := f.Fetch(context.Background(), listSrv.URL+"/list.txt", 0); err != nil {
			t.Fatal(err)
		}
		// As `waygate check` does: the list without a copy is left out.
		e, err := policyEngine(cfg, path, cachedCopies(cfg), true)
		if err != nil {
			t.Fatal(err)
		}
		return listCategories(cfg, baseDir(path), e)
	}

	t.Run("active", func(t *testing.T) {
		got := load(t, policy+rules)
		if !got.Active || got.Policy == "" || got.Domains != 8 || got.Entries != 11 || got.Malformed != 2 || len(got.Problems) != 2 {
			t.Errorf("totals: active %v policy %q domains %d entries %d malformed %d problems %d",
				got.Active, got.Policy, got.Domains, got.Entries, got.Malformed, len(got.Problems))
		}
		want := []categoryInfo{
			{Name: "custom", Origin: "config", Entries: 3, Domains: 1, URLs: 1, IPs: 1, Malformed: 1,
				Sources: []categorySource{
					{Kind: "inline", Format: "domains", Entries: intp(2), Malformed: 1},
					{Kind: "inline", Format: "urls", Entries: intp(1)},
				},
				Problems: []listProblem{{File: "inline", Line: 2, Text: "bad..example", Path: "categories[0].domains[1]"}}},
			{Name: "listed", Origin: "config", Entries: 3, Domains: 3, Malformed: 1,
				Sources:  []categorySource{{Kind: "file", Format: "domains", Path: "lists/listed", Entries: intp(3), Malformed: 1}},
				Problems: []listProblem{{File: "lists/listed", Line: 3, Text: "bad..line"}}},
			{Name: "remote", Origin: "config", Entries: 2, Domains: 2,
				Sources: []categorySource{
					{Kind: "remote", Format: "domains", URL: listSrv.URL + "/list.txt", Refresh: "2h0m0s", Entries: intp(2), Fetched: &fetched},
					{Kind: "remote", Format: "domains", URL: "http://user:xxxxx@127.0.0.1:1/missing.txt", Refresh: "24h0m0s", Entries: intp(0),
						Error: "no copy downloaded yet"},
				},
				Problems: []listProblem{}},
			{Name: "adult", Origin: "folder", Dir: "dirs/adult", Entries: 3, Domains: 2, URLs: 1,
				Sources: []categorySource{
					{Kind: "folder", Format: "domains", Path: "dirs/adult/domains", Entries: intp(2)},
					{Kind: "folder", Format: "urls", Path: "dirs/adult/urls", Entries: intp(1)},
				},
				Problems: []listProblem{}},
		}
		compareCategories(t, got.Categories, want)
	})

	t.Run("no policy in force", func(t *testing.T) {
		got := load(t, policy)
		if got.Active || got.Policy != "" || got.Domains != 0 || got.Entries != 0 || len(got.Problems) != 0 {
			t.Errorf("totals %+v", got)
		}
		// The config's categories, with no counts; folders are not read.
		want := []categoryInfo{
			{Name: "custom", Origin: "config", Problems: []listProblem{},
				Sources: []categorySource{{Kind: "inline", Format: "domains"}, {Kind: "inline", Format: "urls"}}},
			{Name: "listed", Origin: "config", Problems: []listProblem{},
				Sources: []categorySource{{Kind: "file", Format: "domains", Path: "lists/listed"}}},
			{Name: "remote", Origin: "config", Problems: []listProblem{},
				Sources: []categorySource{
					{Kind: "remote", Format: "domains", URL: listSrv.URL + "/list.txt", Refresh: "2h0m0s", Fetched: &fetched},
					{Kind: "remote", Format: "domains", URL: "http://user:xxxxx@127.0.0.1:1/missing.txt", Refresh: "24h0m0s", Error: "no copy downloaded yet"},
				}},
		}
		compareCategories(t, got.Categories, want)
	})
}

// compareCategories compares listings, ignoring the wording of problems'
// reasons (only that there is one) and time zones.
func compareCategories(t *testing.T, got, want []categoryInfo) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d categories, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		g.Problems = append([]listProblem{}, g.Problems...)
		for j := range g.Problems {
			if g.Problems[j].Reason == "" {
				t.Errorf("%s: problem %d has no reason", g.Name, j)
			}
			g.Problems[j].Reason = ""
		}
		g.Sources = append([]categorySource{}, g.Sources...)
		for j, s := range g.Sources {
			if j < len(want[i].Sources) && s.Fetched != nil && want[i].Sources[j].Fetched != nil && s.Fetched.Equal(*want[i].Sources[j].Fetched) {
				g.Sources[j].Fetched = want[i].Sources[j].Fetched
			}
		}
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("category %d:\n got %s\nwant %s", i, describe(g), describe(want[i]))
		}
	}
}

// describe prints a categoryInfo with its pointers followed.
func describe(c categoryInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s %s) entries %d domains %d urls %d ips %d nets %d exprs %d malformed %d; sources:",
		c.Name, c.Origin, c.Dir, c.Entries, c.Domains, c.URLs, c.IPs, c.Networks, c.Expressions, c.Malformed)
	for _, s := range c.Sources {
		n := "null"
		if s.Entries != nil {
			n = fmt.Sprint(*s.Entries)
		}
		f := "-"
		if s.Fetched != nil {
			f = s.Fetched.String()
		}
		fmt.Fprintf(&b, " [%s %s %s%s entries %s malformed %d fetched %s refresh %s error %q]", s.Kind, s.Format, s.Path, s.URL, n, s.Malformed, f, s.Refresh, s.Error)
	}
	fmt.Fprintf(&b, "; problems: %+v", c.Problems)
	return b.String()
}

// evalJS evaluates the JavaScript expression js in b's page and returns
// its result, failing the test on error.
func evalJS[T any](b *browser, js string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// TestBrowserCategories drives the categories page in headless Chromium
// against a real gateway: both categories with their counts, the list
// file and its malformed line; a domain added to the inline category
// through the page and saved makes the next proxied request to it blocked
// by the rule that uses the category; a refused save (a duplicate name)
// shows its problem next to the field and changes nothing; a category is
// added and deleted (after an in-page confirmation); a save after
// the file changed elsewhere is refused and keeps the edit; an entry the
// gateway cannot read is shown next to the list; an auditor sees it all
// read-only; the page fits a phone's screen.
func TestBrowserCategories(t *testing.T) {
	chromium(t)
	s := newSite(t)
	writeFiles(t, s.dir, map[string]string{"lists/listed": "one.example\ntwo.example\nbad..line\nthree.example\n"})
	s.writeConfig(t, "127.0.0.0/8", `categories:
  - name: blocked-sites
    domains: [casino.example]
  - name: listed
    files: [lists/listed]
rules:
  - name: no-blocked-sites
    categories: [blocked-sites]
    action: block
  - name: watch-listed
    categories: [listed]
    action: monitor
`)
	t.Setenv("WAYGATE_ADMIN_PASSWORD", "browser test password")
	p := startProcess(t, s.config)
	b := newBrowser(t, "http://"+p.admin)
	b.login("admin", "browser test password")

	port := s.origin.URL[strings.LastIndex(s.origin.URL, ":")+1:]
	target := "http://origin.test:" + port + "/"
	if code, _ := proxyGet(t, p.proxy, target); code != http.StatusOK {
		t.Fatalf("before the change: %d, want 200", code)
	}

	open := func() {
		t.Helper()
		b.do("categories page", chromedp.Navigate(b.base+"/categories"), chromedp.WaitVisible(chromedp.ID("cat-1")))
	}
	text := func(sel string) string {
		t.Helper()
		return b.text(chromedp.Text(chromedp.CSS(sel)))
	}
	save := chromedp.Click(chromedp.CSS("#cat-0 form.cat-edit button[type=submit]"))
	open()
	if got := text("#cat-0 h2"); got != "blocked-sites" {
		t.Errorf("first category %q", got)
	}
	if got := text("#cat-0-total"); got != "1 entry" {
		t.Errorf("blocked-sites: %q, want 1 entry", got)
	}
	if got := text("#cat-1-total"); got != "3 entries" {
		t.Errorf("listed: %q, want 3 entries", got)
	}
	listed := text("#cat-1")
	for _, want := range []string{"lists/listed", "lists/listed:3", "bad..line", "Used by watch-listed (monitor)."} {
		if !strings.Contains(listed, want) {
			t.Errorf("the listed category does not show %q: %q", want, listed)
		}
	}
	if got := text("#t-malformed"); got != "1" {
		t.Errorf("malformed total %q", got)
	}
	// The name filter.
	b.do("filtering", chromedp.SendKeys(chromedp.ID("find"), "LIST"))
	if !b.until(`document.querySelector("#cat-0").hidden && !document.querySelector("#cat-1").hidden`, 5*time.Second) ||
		text("#shown") != "1 of 2 categories shown." {
		t.Errorf("filtering by name: %q", text("#shown"))
	}
	b.do("clearing the filter", chromedp.Evaluate[chromedp.Void](`(() => { const f = document.getElementById("find"); f.value = ""; f.dispatchEvent(new Event("input")); })()`))
	if !b.until(`!document.querySelector("#cat-0").hidden`, 5*time.Second) {
		t.Error("clearing the filter does not show every category")
	}
	// A list file's entries are not edited here: the category's editors
	// are for inline entries, which it has none of yet.
	if got := evalJS[string](b, `Array.from(document.querySelectorAll("#cat-1 textarea")).map(t => t.name + "=" + t.value).join(",")`); got != "domains=,urls=" {
		t.Errorf("the listed category's editors: %q", got)
	}

	// Add the origin's name to the inline category and save.
	b.do("editing", chromedp.SetValue(chromedp.CSS("#cat-0-domains"), "casino.example\norigin.test"), save)
	if !b.until(`document.querySelector("#cat-0-total").textContent === "2 entries"`, 15*time.Second) {
		t.Fatalf("the count did not become 2 entries: %q; notice %q; category %q", text("#cat-0-total"), text("#notice"), text("#cat-0"))
	}
	if n := text("#notice"); !strings.Contains(n, "blocked-sites saved") {
		t.Errorf("notice %q", n)
	}
	b.shot("categories")
	code, body := 0, ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if code, body = proxyGet(t, p.proxy, target); code == http.StatusForbidden {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusForbidden || !strings.Contains(body, "no-blocked-sites") || !strings.Contains(body, "blocked-sites") {
		t.Fatalf("after the save: %d %q, want the block page of rule no-blocked-sites", code, body)
	}
	saved, err := os.ReadFile(s.config)
	if err != nil || !strings.Contains(string(saved), "origin.test") || !strings.Contains(string(saved), "lists/listed") {
		t.Errorf("config file after the save: %v\n%s", err, saved)
	}

	// A new category named like an existing one: the problem is shown next
	// to the name, and nothing is saved.
	b.do("adding a duplicate", chromedp.SendKeys(chromedp.ID("new-name"), "listed"),
		chromedp.SendKeys(chromedp.ID("new-domains"), "dup.example"),
		chromedp.Click(chromedp.ID("new-add")))
	if !b.until(`!document.querySelector("#new-name-err").hidden`, 10*time.Second) {
		t.Fatalf("no error next to the name: %q", text("#new-cat"))
	}
	if got := text("#new-name-err"); !strings.Contains(got, `"listed"`) || !strings.Contains(got, "twice") {
		t.Errorf("name error %q", got)
	}
	if v := evalJS[string](b, `document.querySelector("#new-name").getAttribute("aria-invalid") || ""`); v != "true" {
		t.Errorf("name field aria-invalid=%q", v)
	}
	if now, _ := os.ReadFile(s.config); string(now) != string(saved) {
		t.Error("a refused save changed the config file")
	}

	// With a name of its own it is added, and it can be deleted again
	// after an in-page confirmation.
	b.do("adding a category", chromedp.SetValue(chromedp.ID("new-name"), "extra"), chromedp.Click(chromedp.ID("new-add")))
	if !b.until(`document.querySelector("#cat-2 h2") !== null && document.querySelector("#cat-2 h2").textContent === "extra" &&
		document.querySelector("#cat-2-total").textContent === "1 entry"`, 15*time.Second) {
		t.Fatalf("the new category is not shown: %q; form %q", text("#cats"), text("#new-cat"))
	}
	if v := b.text(chromedp.Value(chromedp.ID("new-name"))); v != "" || !evalJS[bool](b, `document.querySelector("#new-name-err").hidden`) {
		t.Errorf("the form was not cleared after adding: name %q, error %q", v, text("#new-name-err"))
	}
	b.do("deleting", chromedp.Click(chromedp.CSS("#cat-2 .cat-actions button.secondary.danger")))
	if !evalJS[bool](b, `document.querySelector("#cat-2 .cat-confirm").hidden === false && document.activeElement.textContent === "Keep it"`) {
		t.Errorf("no confirmation with the focus on keeping: %q", text("#cat-2 .cat-actions"))
	}
	if got := evalJS[int](b, `document.querySelectorAll("section.cat").length`); got != 3 {
		t.Errorf("%d categories before confirming", got)
	}
	b.do("confirming", chromedp.Click(chromedp.CSS("#cat-2 .cat-confirm button.danger")))
	if !b.until(`document.querySelector("#cat-2") === null && document.querySelectorAll("section.cat").length === 2`, 15*time.Second) {
		t.Fatalf("the category was not deleted: %q", text("#cats"))
	}
	if saved, err = os.ReadFile(s.config); err != nil || strings.Contains(string(saved), "extra") {
		t.Fatalf("config file after the deletion: %v\n%s", err, saved)
	}

	// The file changes behind the page's back: the save is refused, with
	// a way to load the current policy that keeps the edit.
	open()
	b.do("editing again", chromedp.SetValue(chromedp.CSS("#cat-0-domains"), "casino.example\norigin.test\nmore.example"))
	if err := os.WriteFile(s.config, append(saved, []byte("# edited by hand\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	b.do("saving a stale page", save)
	if !b.until(`document.querySelector("#cat-0 .cat-edit .error").textContent.includes("changed elsewhere")`, 10*time.Second) {
		t.Fatalf("no conflict message: %q", text("#cat-0"))
	}
	b.do("loading the current policy", chromedp.Click(chromedp.CSS("#cat-0 .cat-edit .error button")))
	if !b.until(`document.querySelector("#notice").textContent.includes("Loaded the current policy")`, 10*time.Second) {
		t.Fatalf("notice %q", text("#notice"))
	}
	if kept := b.text(chromedp.Value(chromedp.CSS("#cat-0-domains"))); kept != "casino.example\norigin.test\nmore.example" {
		t.Fatalf("the edit was not kept: %q", kept)
	}
	b.do("saving", save)
	if !b.until(`document.querySelector("#cat-0-total").textContent === "3 entries"`, 15*time.Second) {
		t.Fatalf("the save did not take: %q", text("#cat-0"))
	}
	handEdited, _ := os.ReadFile(s.config)
	if !strings.Contains(string(handEdited), "# edited by hand") || !strings.Contains(string(handEdited), "more.example") {
		t.Error("the save lost the change made by hand, or the edit")
	}
	// An entry the gateway cannot read is refused next to the list, by
	// its line, and nothing is saved.
	b.do("entering a bad entry", chromedp.SetValue(chromedp.CSS("#cat-0-domains"), "casino.example\norigin.test\nbad..entry"), save)
	if !b.until(`document.querySelector("#cat-0-domains-err").textContent.includes("Line 3")`, 15*time.Second) {
		t.Fatalf("the unreadable entry is not shown: %q", text("#cat-0"))
	}
	if got := text("#cat-0-domains-err"); !strings.Contains(got, "bad..entry") {
		t.Errorf("entry error: %q", got)
	}
	if now, _ := os.ReadFile(s.config); string(now) != string(handEdited) {
		t.Error("a refused entry changed the config file")
	}

	// An auditor reads everything and can change nothing.
	status := evalJS[int](b, `fetch("/api/v1/users", {method: "POST", credentials: "same-origin",
		headers: {"Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content},
		body: JSON.stringify({name: "audrey", role: "auditor", password: "auditor test password"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise)
	if status != http.StatusCreated {
		t.Fatalf("creating an auditor: %d", status)
	}
	b.do("logging out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("username")))
	b.login("audrey", "auditor test password")
	open()
	if n := evalJS[int](b, `document.querySelectorAll("form, textarea, #main button").length`); n != 0 {
		t.Errorf("the auditor's page has %d forms, text areas or buttons", n)
	}
	if got := text("#cat-0 .cat-inline"); !strings.Contains(got, "Inline entries (3)") {
		t.Errorf("the auditor does not see the inline entries: %q", got)
	}
	b.do("opening the inline entries", chromedp.Click(chromedp.CSS("#cat-0 .cat-inline summary")))
	if got := text("#cat-0 .cat-inline"); !strings.Contains(got, "origin.test") {
		t.Errorf("inline entries %q", got)
	}
	b.shot("categories-auditor")

	// A phone-sized window: the page still fits.
	b.do("narrow window", chromedp.EmulateViewport(390, 844), chromedp.Navigate(b.base+"/categories"),
		chromedp.WaitVisible(chromedp.ID("cat-1")))
	if evalJS[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("the page is wider than a phone's screen")
	}
	b.shot("categories-phone")
}
