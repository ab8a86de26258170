package sqlite

// migrations are applied in order, each once, inside a transaction; the
// number applied is kept in PRAGMA user_version. Never edit one that has
// shipped: add a new one.
var migrations = []string{
	// 1: events, the hash chain, rollups.
	`
CREATE TABLE events (
	id           INTEGER PRIMARY KEY,  -- insertion order; the chain follows it
	time         INTEGER NOT NULL,     -- Unix nanoseconds, UTC
	duration     INTEGER NOT NULL,     -- nanoseconds
	kind         TEXT NOT NULL,
	request_id   TEXT NOT NULL,
	client       TEXT NOT NULL,
	user         TEXT NOT NULL,
	groups       TEXT NOT NULL,        -- comma-separated
	method       TEXT NOT NULL,
	scheme       TEXT NOT NULL,
	host         TEXT NOT NULL,
	port         INTEGER NOT NULL,
	path         TEXT NOT NULL,
	query        TEXT NOT NULL,
	status       INTEGER NOT NULL,
	bytes_in     INTEGER NOT NULL,
	bytes_out    INTEGER NOT NULL,
	action       TEXT NOT NULL,
	rule         TEXT NOT NULL,
	categories   TEXT NOT NULL,        -- comma-separated, sorted
	category     TEXT NOT NULL,
	entry        TEXT NOT NULL,
	source       TEXT NOT NULL,
	reason       TEXT NOT NULL,
	policy       TEXT NOT NULL,
	cache        TEXT NOT NULL,
	upstream     TEXT NOT NULL,
	user_agent   TEXT NOT NULL,
	content_type TEXT NOT NULL,
	error        TEXT NOT NULL,
	detail       TEXT NOT NULL,
	hash         BLOB NOT NULL         -- SHA-256(previous hash || canonical event)
);
CREATE INDEX events_time        ON events(time, id);
CREATE INDEX events_user_time   ON events(user, time, id);
CREATE INDEX events_client_time ON events(client, time, id);
CREATE INDEX events_host_time   ON events(host, time, id);

-- The chain's anchor: the hash of the last event removed by retention, so
-- that the first remaining event still verifies.
CREATE TABLE chain_anchor (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	event_id INTEGER NOT NULL,         -- id of the last removed event
	hash     BLOB NOT NULL
);

-- Rollups, kept up to date in the same transaction as the inserts.
-- dim is 'total', 'host', 'user', 'category' or 'action'; key is '' for
-- 'total'. An event with several categories counts once per category.
CREATE TABLE rollup_hour (
	hour      INTEGER NOT NULL,        -- Unix seconds at the start of the hour
	dim       TEXT NOT NULL,
	key       TEXT NOT NULL,
	requests  INTEGER NOT NULL,
	blocked   INTEGER NOT NULL,
	bytes_in  INTEGER NOT NULL,
	bytes_out INTEGER NOT NULL,
	PRIMARY KEY (dim, hour, key)
) WITHOUT ROWID;
CREATE TABLE rollup_minute (
	minute    INTEGER PRIMARY KEY,     -- Unix seconds at the start of the minute
	requests  INTEGER NOT NULL,
	blocked   INTEGER NOT NULL,
	bytes_in  INTEGER NOT NULL,
	bytes_out INTEGER NOT NULL
) WITHOUT ROWID;
`,
	// 2: progress of the spool replay, committed with each replayed
	// chunk so that a crash mid-replay neither loses nor repeats events.
	`
CREATE TABLE spool_replay (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	file       TEXT NOT NULL,          -- base name of the rotated spool file
	done_bytes INTEGER NOT NULL        -- bytes of it committed to events
);
`,
	// 3: no (client, time) or (host, time) index on events: keeping them
	// up to date was about half of the writer's cost (clients and hosts
	// arrive in random order; the time index only ever grows at its end).
	// A client's or a host's events are found through the hours it was
	// active, from rollup_hour ('client' is a new dimension, kept by the
	// writer and backfilled here; 'host' was there), then through the time
	// index within those hours; that index now carries host and client, so
	// rows of other hosts and clients are skipped without reading them.
	// The rollups get an index by key for that and for per-user reports.
	`
DROP INDEX events_client_time;
DROP INDEX events_host_time;
DROP INDEX events_time;
CREATE INDEX events_time ON events(time, id, host, client);
INSERT INTO rollup_hour (hour, dim, key, requests, blocked, bytes_in, bytes_out)
	SELECT (time / 3600000000000 - (time < 0 AND time % 3600000000000 <> 0)) * 3600, 'client', client,
		count(*), sum(action IN ('block', 'warn') AND reason <> 'warn_accepted'), sum(bytes_in), sum(bytes_out)
	FROM events GROUP BY 1, 3;
CREATE INDEX rollup_hour_key ON rollup_hour(dim, key, hour);
`,
	// 4: the admin UI's accounts, sessions, API tokens and config
	// revisions (see AdminStore). Times are Unix nanoseconds, UTC, 0 for a
	// zero time.Time. No foreign keys: AdminStore deletes an account's
	// sessions and tokens in the transaction that deletes the account.
	`
CREATE TABLE admin_accounts (
	name          TEXT PRIMARY KEY,    -- case-sensitive (BINARY)
	role          TEXT NOT NULL,       -- 'admin' or 'auditor' (checked in Go)
	password_hash TEXT NOT NULL,       -- bcrypt, made by the caller
	created       INTEGER NOT NULL,
	password_set  INTEGER NOT NULL,    -- last password change
	disabled      INTEGER NOT NULL     -- 0 or 1
);
CREATE TABLE admin_sessions (
	key        BLOB PRIMARY KEY,       -- SHA-256 of the session cookie
	user       TEXT NOT NULL,          -- admin_accounts.name
	csrf       TEXT NOT NULL,
	created    INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	expires    INTEGER NOT NULL,
	client     TEXT NOT NULL,
	user_agent TEXT NOT NULL
);
CREATE INDEX admin_sessions_user    ON admin_sessions(user);
CREATE INDEX admin_sessions_expires ON admin_sessions(expires);
CREATE TABLE admin_tokens (
	id          TEXT PRIMARY KEY,      -- public identifier, made by the caller
	secret_hash BLOB NOT NULL UNIQUE,  -- SHA-256 of the secret
	name        TEXT NOT NULL,
	user        TEXT NOT NULL,         -- owner: admin_accounts.name
	read_only   INTEGER NOT NULL,      -- 0 or 1
	created     INTEGER NOT NULL,
	last_used   INTEGER NOT NULL,      -- 0 = never
	expires     INTEGER NOT NULL       -- 0 = never
);
CREATE INDEX admin_tokens_user ON admin_tokens(user, created);
-- AUTOINCREMENT: a revision id is never reused, even after the newest
-- row is deleted by hand.
CREATE TABLE config_revisions (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	time    INTEGER NOT NULL,
	author  TEXT NOT NULL,
	comment TEXT NOT NULL,
	config  BLOB NOT NULL,             -- the whole config file as saved
	sha256  BLOB NOT NULL              -- SHA-256 of config
);
`,
	// 5: upstream failures rolled up by cause ('error' dimension: the
	// Error of requests, tunnels and reverse requests), for the
	// dashboard; backfilled from the events kept so far.
	`
INSERT INTO rollup_hour (hour, dim, key, requests, blocked, bytes_in, bytes_out)
	SELECT (time / 3600000000000 - (time < 0 AND time % 3600000000000 <> 0)) * 3600, 'error', error,
		count(*), sum(action IN ('block', 'warn') AND reason <> 'warn_accepted'), sum(bytes_in), sum(bytes_out)
	FROM events WHERE error <> '' AND kind IN ('http', 'connect', 'reverse') GROUP BY 1, 3;
`,
}
