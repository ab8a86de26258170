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
	// 3: no (client, time) index on events: keeping it up to date was a
	// third of the writer's cost (client addresses arrive in random order).
	// A client's events are found through the hours it was active, from a
	// 'client' dimension of rollup_hour (kept by the writer, backfilled
	// here), then through the time index within those hours. The rollups
	// get an index by key for that and for per-user reports.
	`
DROP INDEX events_client_time;
INSERT INTO rollup_hour (hour, dim, key, requests, blocked, bytes_in, bytes_out)
	SELECT (time / 3600000000000 - (time < 0 AND time % 3600000000000 <> 0)) * 3600, 'client', client,
		count(*), sum(action IN ('block', 'warn') AND reason <> 'warn_accepted'), sum(bytes_in), sum(bytes_out)
	FROM events GROUP BY 1, 3;
CREATE INDEX rollup_hour_key ON rollup_hour(dim, key, hour);
`,
}
