// Package sqlite stores the audit trail in a SQLite database (WAL mode) and
// is the only package of waygate that imports go-sqlite3. A Store is an
// audit.Sink that never drops an event: one writer goroutine commits
// batches, each event chained to the previous one by SHA-256 (see Verify),
// and whatever the database cannot take right now goes to an append-only
// spool file that is replayed, exactly once, when it can. The read side
// (Search, Top, Series, Export, ...) queries the same file, which also
// keeps the admin UI's accounts, sessions, API tokens and config revisions
// (AdminStore).
package sqlite
