// Package lists reads URL-category lists in the formats that squidGuard,
// e2guardian and UT1 users already have: squidGuard `domains`, `urls` and
// `expressions` files, hosts files and Adblock-style `||name^` lists. Parsing
// is streaming and allocation-lean, bad lines are counted instead of failing,
// and every value comes out in one canonical spelling (lower-case punycode
// names, canonical IP addresses and prefixes) so that it compares equal to
// what waygate/filter/hostname makes of a request's host.
package lists
