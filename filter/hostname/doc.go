// Package hostname parses the host part of a URL or CONNECT target into one
// canonical spelling: a lower-case name, or an IP address recognised in every
// numeric form browsers and C libraries accept (127.1, 2130706433, 0x7f.1,
// 0177.0.0.1, IPv4-mapped IPv6). The policy engine and the upstream dialer
// both use it, so that what is checked is what is dialed.
package hostname
