package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"waygate/filter"
)

// cmdFilter runs "waygate filter test": the decision for one URL, and why.
func cmdFilter(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: waygate filter test -config FILE URL [-client IP] [-user NAME] [-method METHOD] [-at TIME]")
		return 2
	}
	fs := flag.NewFlagSet("filter test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	client := fs.String("client", "", "client IP address")
	user := fs.String("user", "", "proxy user name")
	method := fs.String("method", "GET", "HTTP method (https URLs are decided as CONNECT)")
	at := fs.String("at", "", `time of the request: RFC 3339 ("2026-11-30T10:00:00+01:00") or "2006-01-02 15:04" in UTC; default now`)
	// Flags may come before and after the URL.
	rest := args[1:]
	var target string
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		if target != "" {
			fmt.Fprintf(stderr, "waygate filter test: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
		target, rest = fs.Arg(0), fs.Args()[1:]
	}
	if target == "" {
		fmt.Fprintln(stderr, "waygate filter test: give the URL to test")
		return 2
	}
	req, shown, err := filterRequest(target, *client, *user, *method, *at)
	if err != nil {
		fmt.Fprintln(stderr, "waygate filter test:", err)
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	engine, err := policyEngine(cfg, *path, cachedCopies(cfg), true)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	d := engine.Decide(req)
	printDecision(stdout, shown, req, &d)
	return 0
}

// filterRequest builds the request the proxy would decide for target.
func filterRequest(target, client, user, method, at string) (*filter.Request, string, error) {
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", fmt.Errorf("URL %q: %w", target, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", fmt.Errorf("URL %q: the proxy carries http and https only", target)
	}
	if u.Hostname() == "" {
		return nil, "", fmt.Errorf("URL %q has no host", target)
	}
	req := &filter.Request{User: user, Method: strings.ToUpper(method), Host: u.Hostname(), Path: u.EscapedPath()}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, "", fmt.Errorf("URL %q: invalid port", target)
		}
		req.Port = uint16(n)
	}
	if u.Scheme == "https" {
		// Without TLS inspection the proxy sees only CONNECT host:port.
		req.Method, req.Path = "CONNECT", ""
		if req.Port == 0 {
			req.Port = 443
		}
	}
	if client != "" {
		a, err := netip.ParseAddr(client)
		if err != nil {
			return nil, "", fmt.Errorf("-client %q is not an IP address", client)
		}
		req.Client = a.Unmap()
	}
	req.Time = time.Now()
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t, err = time.Parse("2006-01-02 15:04", at)
		}
		if err != nil {
			return nil, "", errors.New(`-at: want RFC 3339 ("2026-11-30T10:00:00+01:00") or "2006-01-02 15:04" (UTC)`)
		}
		req.Time = t
	}
	u.User = nil // never echo credentials
	return req, u.String(), nil
}

func printDecision(w io.Writer, shown string, req *filter.Request, d *filter.Decision) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	line("URL", shown)
	target := d.Host
	if req.Method == "CONNECT" {
		target = net.JoinHostPort(d.Host, strconv.Itoa(int(req.Port))) + " (CONNECT)"
	}
	line("Target", target)
	if req.Client.IsValid() {
		line("Client", req.Client.String())
	}
	line("User", req.User)
	line("Time", req.Time.Format(time.RFC3339))
	line("Decision", d.Action.String())
	line("Reason", d.Reason.String())
	line("Rule", d.Rule)
	line("Category", d.Category)
	line("Categories", strings.Join(d.Categories, ", "))
	if d.Entry != "" {
		line("Entry", d.Entry+" ("+d.Source+")")
	}
	if d.Action == filter.ActionWarn {
		line("Warn for", d.WarnFor.String())
	}
	line("Policy", d.PolicyVersion)
	tw.Flush()
}
