// Package filter is Waygate's policy engine: named categories of domains,
// URLs and networks loaded from squidGuard, hosts, plain and Adblock lists,
// groups of clients and users, and rules (first match wins) that decide
// allow, block, warn or monitor. Compile does the I/O; Decide is pure,
// allocation-free on the common path, safe for concurrent use, and explains
// every decision: rule, categories, list entry, source and policy version.
package filter
