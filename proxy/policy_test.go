package proxy_test

import (
	"encoding/base64"
	"html"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"waygate/filter"
	"waygate/proxy"
)

// testClock is an injected clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// withPolicy compiles a policy for the env. The test origins all live on
// 127.0.0.1, so names are given to them through the env's DNS server.
func withPolicy(p *filter.Policy, clock *testClock) envConfig {
	return func(o *proxy.Options, e *env) {
		for _, name := range []string{"casino.test", "www.casino.test", "fine.test", "adult.test", "social.test", "news.test", "staffonly.test"} {
			e.dns.Set(name, netip.MustParseAddr("127.0.0.1"))
		}
		eng, err := filter.Compile(p)
		if err != nil {
			e.t.Fatal(err)
		}
		o.Filter = eng
		if clock != nil {
			o.Now = clock.now
		}
		// The TLS origin's port is allowed for CONNECT already.
	}
}

func basePolicy() *filter.Policy {
	return &filter.Policy{
		Version: "test-1",
		Categories: []filter.Category{
			{Name: "gambling", Domains: []string{"casino.test"}},
			{Name: "adult", Domains: []string{"adult.test"}},
			{Name: "social", Domains: []string{"social.test"}},
			{Name: "news", Domains: []string{"news.test"}},
			{Name: "staffonly", Domains: []string{"staffonly.test"}},
		},
		Groups: []filter.Group{
			{Name: "staff", Clients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Users: []string{"alice"}},
		},
		Rules: []filter.Rule{
			{Name: "no-gambling", Categories: []string{"gambling"}, Action: filter.ActionBlock},
			{Name: "adult-warn", Categories: []string{"adult"}, Action: filter.ActionWarn, WarnFor: time.Hour},
			{Name: "social-weekdays", Categories: []string{"social"}, Action: filter.ActionBlock,
				Schedules: []filter.Schedule{{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, From: 9 * 60, To: 17 * 60}}},
			{Name: "news-stage", Categories: []string{"news"}, Action: filter.ActionMonitor},
			{Name: "staff-allowed", Groups: []string{"staff"}, Categories: []string{"staffonly"}, Action: filter.ActionAllow},
			{Name: "staffonly-others", Categories: []string{"staffonly"}, Action: filter.ActionBlock},
		},
	}
}

func TestPolicyBlockPage(t *testing.T) {
	e := newEnv(t, withGuard("127.0.0.0/8"), withPolicy(basePolicy(), nil), withMetrics())
	port := ":" + strings.Split(e.origin.Listener.Addr().String(), ":")[1]
	for _, host := range []string{"casino.test", "www.casino.test", "WWW.Casino.Test.", "fine.test@casino.test"} {
		resp, body := e.raw("GET http://" + host + port + "/<script>x</script> HTTP/1.1\r\nHost: fine.test\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: status %d", host, resp.StatusCode)
		}
		for _, want := range []string{"gambling", "no-gambling", "casino.test", "Request ID"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: block page lacks %q", host, want)
			}
		}
		if strings.Contains(body, "<script>x") {
			t.Errorf("%s: the URL is not escaped on the block page", host)
		}
	}
	select {
	case <-e.seen:
		t.Fatal("a blocked request reached the origin")
	default:
	}
	if resp, body := e.raw("GET http://fine.test" + port + "/ HTTP/1.1\r\nHost: fine.test\r\n\r\n"); resp.StatusCode != 200 || body != "hello from origin" {
		t.Fatalf("allowed host: %d %q", resp.StatusCode, body)
	}
	if n := e.metric("waygate_policy_decisions_total", map[string]string{"action": "block"}); n != 4 {
		t.Errorf("block decisions counted %v, want 4", n)
	}
}

func TestPolicyConnectBlockedBeforeDial(t *testing.T) {
	// A raw listener as the tunnel's destination counts every connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := portOf(t, "http://"+ln.Addr().String())
	e := newEnv(t, withGuard("127.0.0.0/8"), withPolicy(basePolicy(), nil), func(o *proxy.Options, _ *env) {
		o.ConnectPorts = append(o.ConnectPorts, port)
	})
	p := strconv.Itoa(int(port))
	for _, target := range []string{"casino.test:" + p, "www.casino.test:" + p, "adult.test:" + p} {
		conn, resp := e.connect(target, "")
		if conn != nil {
			conn.Close()
			t.Fatalf("CONNECT %s: tunnel opened", target)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Blocked by policy") {
			t.Fatalf("CONNECT %s: %d %q", target, resp.StatusCode, body)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the destination saw %d connections for blocked tunnels", n)
	}
	conn, _ := e.connect("fine.test:"+p, "")
	if conn == nil {
		t.Fatal("allowed CONNECT refused")
	}
	conn.Close()
	eventually(t, "the allowed tunnel reaches the destination", func() bool { return accepted.Load() == 1 })
}

func TestPolicyWarnAndContinue(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, withGuard("127.0.0.0/8"), withPolicy(basePolicy(), clock))
	port := ":" + strings.Split(e.origin.Listener.Addr().String(), ":")[1]
	page := "http://adult.test" + port + "/page?q=1"
	// A client that does not follow redirects, so each step is visible.
	c := e.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := c.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Continue to the page") {
		t.Fatalf("warn page: %d %q", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`href="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatal("no continue link")
	}
	link := html.UnescapeString(string(m[1]))

	// A forged token is refused.
	forged := strings.Replace(link, "t=", "t=AAAA", 1)
	if resp, err := c.Get(forged); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged continue link: %v %v", resp, err)
	}
	// The real one redirects back and lets the user through.
	resp, err = c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page {
		t.Fatalf("continue: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from origin" {
		t.Fatalf("after continue: %d %q", resp.StatusCode, body)
	}
	// After the warn time the page is shown again.
	clock.set(clock.now().Add(2 * time.Hour))
	if resp, err := c.Get(page); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after the warn time: %v %v", resp, err)
	}
	// An open redirect through the continue link is refused.
	u, _ := url.Parse(link)
	q := u.Query()
	q.Set("u", "http://elsewhere.test/")
	u.RawQuery = q.Encode()
	if resp, err := c.Get(u.String()); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("continue link to another host: %v %v", resp, err)
	}
}

func TestPolicyScheduleWithClock(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)} // Monday 10:00
	e := newEnv(t, withGuard("127.0.0.0/8"), withPolicy(basePolicy(), clock))
	port := ":" + strings.Split(e.origin.Listener.Addr().String(), ":")[1]
	get := "GET http://social.test" + port + "/ HTTP/1.1\r\nHost: social.test\r\n\r\n"
	if resp, _ := e.raw(get); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Monday 10:00: %d, want blocked", resp.StatusCode)
	}
	clock.set(time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC))
	if resp, _ := e.raw(get); resp.StatusCode != 200 {
		t.Fatalf("Monday 18:00: %d, want allowed", resp.StatusCode)
	}
	clock.set(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)) // Sunday
	if resp, _ := e.raw(get); resp.StatusCode != 200 {
		t.Fatalf("Sunday: %d, want allowed", resp.StatusCode)
	}
}

func TestPolicyGroupsAndMonitor(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	e := newEnv(t, withGuard("127.0.0.0/8"), withPolicy(basePolicy(), nil), withMetrics(), func(o *proxy.Options, _ *env) {
		o.Auth = proxy.AuthOptions{Users: map[string]string{"alice": string(hash), "bob": string(hash)}}
	})
	port := ":" + strings.Split(e.origin.Listener.Addr().String(), ":")[1]
	auth := func(u string) string {
		return "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u+":pw")) + "\r\n"
	}
	staffonly := "GET http://staffonly.test" + port + "/ HTTP/1.1\r\nHost: staffonly.test\r\n"
	// The client address 127.0.0.1 is not in the staff network: the group
	// comes from the user.
	if resp, _ := e.raw(staffonly + auth("alice") + "\r\n"); resp.StatusCode != 200 {
		t.Fatalf("alice (staff by user): %d", resp.StatusCode)
	}
	if resp, _ := e.raw(staffonly + auth("bob") + "\r\n"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob (not staff): %d", resp.StatusCode)
	}
	// Monitor: passes, and is counted as a monitor decision.
	resp, body := e.raw("GET http://news.test" + port + "/ HTTP/1.1\r\nHost: news.test\r\n" + auth("bob") + "\r\n")
	if resp.StatusCode != 200 || body != "hello from origin" {
		t.Fatalf("monitor rule: %d %q", resp.StatusCode, body)
	}
	if n := e.metric("waygate_policy_decisions_total", map[string]string{"action": "monitor"}); n != 1 {
		t.Errorf("monitor decisions %v, want 1", n)
	}
}

func TestPolicyGroupByClientAddress(t *testing.T) {
	p := basePolicy()
	p.Groups[0].Clients = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	e := newEnv(t, withGuard("127.0.0.0/8"), withPolicy(p, nil))
	port := ":" + strings.Split(e.origin.Listener.Addr().String(), ":")[1]
	if resp, _ := e.raw("GET http://staffonly.test" + port + "/ HTTP/1.1\r\nHost: staffonly.test\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("client in the staff network: %d", resp.StatusCode)
	}
}

func TestPolicyCustomBlockPage(t *testing.T) {
	tmpl := template.Must(template.New("b").Parse(`<p>Nope: {{.Category}} by {{.Rule}} for {{.URL}}</p>`))
	e := newEnv(t, withGuard("127.0.0.0/8"), withPolicy(basePolicy(), nil), func(o *proxy.Options, _ *env) { o.BlockPage = tmpl })
	port := ":" + strings.Split(e.origin.Listener.Addr().String(), ":")[1]
	_, body := e.raw("GET http://casino.test" + port + "/?a=<b> HTTP/1.1\r\nHost: casino.test\r\n\r\n")
	if !strings.Contains(body, "Nope: gambling by no-gambling for http://casino.test") || strings.Contains(body, "<b>") {
		t.Fatalf("custom block page: %q", body)
	}
}
