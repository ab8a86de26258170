// Package reverse is the gateway's reverse-proxy module: it fronts a
// company's internal apps with TLS termination (certificates per host name),
// a compiled router (host, path prefix, headers, cookies), load balancing
// over health-checked backends, compression, security headers, client
// allow/deny lists, rate and body limits, and one audit event per request.
//
// Every connection to a backend goes through the gateway's one dialer
// (package upstream), so the destination guard applies to backends too.
// A Server's routes are swapped atomically on reload; listeners stay open
// and requests in flight finish on the routes they started with.
package reverse
