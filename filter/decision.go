package filter

import (
	"net/netip"
	"time"
)

// Action is what the policy says to do with a request.
type Action uint8

// Actions. The zero value is ActionAllow.
const (
	ActionAllow   Action = iota // forward the request
	ActionBlock                 // refuse it with the block page
	ActionWarn                  // show an interstitial; the user may continue
	ActionMonitor               // forward it, recorded as "would block"
)

var actionNames = [...]string{"allow", "block", "warn", "monitor"}

// String returns the action's stable name, as written in the config.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "unknown"
}

// ParseAction parses an action name from the config.
func ParseAction(s string) (Action, bool) {
	for i, n := range actionNames {
		if n == s {
			return Action(i), true
		}
	}
	return 0, false
}

// Reason says why a decision came out as it did. Its names are stable:
// they are stored in the audit trail and shown in the UI.
type Reason uint8

// Reasons.
const (
	ReasonDefault       Reason = iota // no rule matched: the default action
	ReasonRule                        // the rule named in Decision.Rule matched
	ReasonInvalidTarget               // the host or URL cannot be normalized: blocked, failing closed
	ReasonWarnAccepted                // a warn rule matched and the user chose to continue (set by the proxy)
	ReasonGateway                     // the gateway answered the request itself without asking the policy (set by the proxy)
)

var reasonNames = [...]string{"default", "rule", "invalid_target", "warn_accepted", "gateway"}

// String returns the reason's stable name.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Request is what a decision is made about. Host, Path and Query are taken
// as received: Decide normalizes them, so that no spelling of a name or
// path escapes the policy.
type Request struct {
	// Client is the client's address. The zero Addr matches no client
	// network.
	Client netip.Addr
	// User is the authenticated proxy user; empty when there is none.
	User string
	// Method is the HTTP method ("CONNECT" for tunnels).
	Method string
	// Host is the destination host: a name or an IP literal in any
	// spelling, without port.
	Host string
	// Port is the destination port; zero means the scheme's default.
	Port uint16
	// Path is the request path as sent (percent-encoded); empty for
	// CONNECT, which is decided on host and port alone.
	Path string
	// Time is when the request was made, for schedules. The zero Time
	// means time.Now().
	Time time.Time
}

// Decision is the outcome of Decide and the explanation of it.
type Decision struct {
	// Action is what to do.
	Action Action
	// Reason says why.
	Reason Reason
	// Rule is the name of the rule that matched; empty for the default.
	Rule string
	// Categories lists every category the target belongs to, in policy
	// order. The slice is shared: do not modify it.
	Categories []string
	// Category is the category through which the rule matched; empty when
	// the rule matched on something else or no rule matched.
	Category string
	// Entry is the most specific list entry that matched the target (for
	// the rule's category when there is one): a domain, host/path prefix,
	// IP or network. Empty when none did.
	Entry string
	// Source names the list Entry came from: a file path, a URL, or
	// "inline" for entries written in the config.
	Source string
	// WarnFor is how long a user who continues past a warn page may go on
	// without seeing it again; zero for other actions.
	WarnFor time.Duration
	// PolicyVersion identifies the policy that decided.
	PolicyVersion string
	// Host is the normalized host the decision was made on.
	Host string
}

// Blocks reports whether the request must not be forwarded as it is:
// block, or warn (which shows the interstitial first).
func (d *Decision) Blocks() bool {
	return d.Action == ActionBlock || d.Action == ActionWarn
}
