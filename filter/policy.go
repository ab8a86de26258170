package filter

import (
	"net/netip"
	"time"

	"waygate/filter/lists"
)

// Policy is what Compile turns into an Engine: categories with their
// lists, groups of clients and users, and rules, first match wins.
type Policy struct {
	// Version identifies this policy in every decision (for example a hash
	// of the config file). Empty is allowed.
	Version string
	// Categories are the named sets of domains, URLs, IPs and expressions.
	Categories []Category
	// Groups name sets of client networks and proxy users.
	Groups []Group
	// Rules are tried in order; the first whose conditions all hold
	// decides.
	Rules []Rule
	// Default is the action when no rule matches. The zero value is allow.
	Default Action
}

// Category is one named category.
type Category struct {
	// Name is unique among categories.
	Name string
	// Domains are entries written in the config: domains (matching their
	// subdomains too), IP addresses and CIDR networks.
	Domains []string
	// URLs are host/path prefixes written in the config.
	URLs []string
	// Lists are files of entries.
	Lists []List
}

// List is one list file of a category.
type List struct {
	// Path is the local file. Remote lists are downloaded by the caller and
	// given here as the file they were saved to.
	Path string
	// Source names the list in decisions. Empty means Path.
	Source string
	// Format is how the file is written. Expression lists are used only
	// when listed explicitly with lists.FormatExpressions.
	Format lists.Format
}

// Group is a named set of clients and users. A request belongs to the group
// when its client address is in Clients or its user is in Users.
type Group struct {
	Name    string
	Clients []netip.Prefix
	Users   []string
}

// Rule is one policy rule. Its conditions are ANDed; empty conditions
// always hold. Groups, Users and Clients together form one condition (the
// request's client or user is any of them).
type Rule struct {
	// Name is unique among rules and shown in decisions.
	Name string
	// Groups, Users and Clients say whom the rule is for.
	Groups  []string
	Users   []string
	Clients []netip.Prefix
	// Categories: the target belongs to one of them.
	Categories []string
	// Domains: the target host is one of them or a subdomain of one.
	Domains []string
	// URLs: host/path prefixes, matched like a category's urls list.
	URLs []string
	// Methods: the request method is one of them (upper case).
	Methods []string
	// Ports: the destination port is one of them.
	Ports []uint16
	// Schedules: the request time is inside one of them.
	Schedules []Schedule
	// Action is what the rule decides.
	Action Action
	// WarnFor is how long a user who continued past the warn page is let
	// through; zero means one hour. Used only with ActionWarn.
	WarnFor time.Duration
}
