// Package webui is Waygate's admin web UI and REST API: a Gin server with
// login sessions, API tokens, CSRF protection, roles, login throttling,
// strict security headers, server-rendered pages (html/template, embedded
// templates and assets, no inline script) and the JSON endpoints under
// /api/v1/.
//
// The pages: Start, Dashboard (live figures and charts), Logs (search,
// event details, export, live tail), Policy (rules and "test a URL"),
// Categories (sources, counts, inline lists), Reverse (routes, backends'
// health, route editing), Setup (client setup and the "am I going through
// Waygate?" check), Admin log (admin events, revisions, rollback) and Proxy
// lab (forward and reverse proxying demonstrated side by side). Each is an
// html/template shell; its script in static/ fills it from the API.
//
// It is the only package of the module that imports Gin, and nothing else
// in the module imports it. It reaches the rest of the gateway only through
// the small interfaces it defines (AccountStore, SessionStore, TokenStore,
// LogSearcher, StatsSource, Explainer, PolicyEditor, RevisionSource,
// EventStream, AuditRecorder, UserStore, ReverseStatus, CategoryLister,
// RouteEditor, SetupInfo, Lab),
// which cmd/waygate implements with thin adapters over the real stores. It
// imports waygate/audit, which holds only data types (Event, Query, Page,
// Bucket, Count) and no storage code, so that the audit store satisfies
// LogSearcher, StatsSource and AuditRecorder without any adapter; it never
// imports waygate/filter or waygate/audit/sqlite.
//
// # Security model
//
// Every route except GET /login, GET /static/..., GET /healthz and
// POST /api/v1/session (the login itself) needs a session cookie
// (waygate_session) or an "Authorization: Bearer wgt_..." API token.
// Missing or invalid credentials give 401 with a JSON error on /api/ and a
// redirect to /login on pages. The account behind a session or token is
// looked up on every request, so disabling an account or changing its role
// takes effect at once.
//
// State-changing requests (POST, PUT, PATCH, DELETE) authenticated by a
// session cookie must carry the session's CSRF token in the X-CSRF-Token
// header and must not come from another site (Origin, Sec-Fetch-Site);
// bearer-token requests carry no ambient credentials and are exempt. Every
// state-changing route needs the admin role and a token that is not
// read-only, except logging out and changing one's own password (POST
// /api/v1/password, which any role may do, from a browser session only);
// API tokens and accounts can be created, changed and deleted only from a
// browser session, so a leaked token can mint neither new tokens nor a
// lasting account. The login needs Content-Type: application/json (which
// a cross-site form cannot send) and is refused when Origin or
// Sec-Fetch-Site says cross-site.
// Failed logins are throttled per client address (per /64 for IPv6) and
// per user name.
//
// Every response carries a strict Content-Security-Policy (the setup
// page's also lets images come from the proxy's check host), nosniff,
// Referrer-Policy no-referrer and X-Frame-Options DENY; API responses and
// pages are Cache-Control: no-store. Request bodies are limited to 1 MiB.
package webui
