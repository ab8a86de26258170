package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"waygate/audit"
	auditsqlite "waygate/audit/sqlite"
	"waygate/cmd/waygate/internal/config"
)

// auditPath is the audit database of cfg.
func auditPath(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "audit.db")
}

// openAudit opens the audit store of cfg and returns the sink the proxy
// writes to (privacy rules applied first). A disabled trail gives
// audit.Discard and a nil store.
func openAudit(cfg *config.Config, g *gateway) (audit.Sink, *auditsqlite.Store, error) {
	if !cfg.Audit.Enabled {
		return audit.Discard, nil, nil
	}
	priv, err := auditPrivacy(cfg)
	if err != nil {
		return nil, nil, err
	}
	st, err := auditsqlite.Open(auditsqlite.Options{
		Path:      auditPath(cfg),
		QueueSize: cfg.Audit.QueueSize,
		Logger:    g.log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	if cfg.Audit.MaxAge > 0 || cfg.Audit.MaxBytes > 0 {
		st.StartRetention(cfg.Audit.MaxAge, cfg.Audit.MaxBytes, 10*time.Minute)
	}
	stat := func(name, help string, get func(auditsqlite.Stats) float64) {
		g.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return get(st.Stats()) }))
	}
	stat("waygate_audit_queued_total", "Audit events accepted into the queue.", func(s auditsqlite.Stats) float64 { return float64(s.Queued) })
	stat("waygate_audit_written_total", "Audit events committed to the database.", func(s auditsqlite.Stats) float64 { return float64(s.Written) })
	stat("waygate_audit_spooled_total", "Audit events put in the spool file.", func(s auditsqlite.Stats) float64 { return float64(s.Spooled) })
	stat("waygate_audit_replayed_total", "Spooled audit events written to the database.", func(s auditsqlite.Stats) float64 { return float64(s.Replayed) })
	stat("waygate_audit_dropped_total", "Audit events lost (always 0).", func(s auditsqlite.Stats) float64 { return float64(s.Dropped) })
	var sink audit.Sink = st
	if priv != nil {
		sink = &audit.PrivacySink{Privacy: priv, Next: st}
	}
	return sink, st, nil
}

// auditPrivacy builds the privacy rules, loading (or creating) the key
// when pseudonyms are used. Nil means nothing to apply.
func auditPrivacy(cfg *config.Config) (*audit.Privacy, error) {
	p := cfg.Audit.Privacy
	mode, err := audit.ParseQueryMode(p.Query)
	if err != nil {
		return nil, fmt.Errorf("audit.privacy.query: %w", err)
	}
	priv := &audit.Privacy{HashUsers: p.HashUsers, HashClients: p.HashClients, Query: mode, ExcludeCategories: p.ExcludeCategories}
	if !priv.HashUsers && !priv.HashClients && mode != audit.QueryHash {
		if len(priv.ExcludeCategories) == 0 {
			return nil, nil
		}
		return priv, nil
	}
	keyFile := p.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "audit.key")
	}
	key, err := loadOrCreateKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("audit.privacy.key_file: %w", err)
	}
	priv.Key = key
	return priv, nil
}

// loadOrCreateKey reads a hex key, or writes a new random one (0600).
func loadOrCreateKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(key) < 16 {
			return nil, fmt.Errorf("%s: want at least 32 hex digits", path)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintln(f, hex.EncodeToString(key)); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// cmdAudit runs "waygate audit verify|export".
func cmdAudit(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: waygate audit verify [-config FILE | -db PATH]\n       waygate audit export [-config FILE | -db PATH] -format csv|jsonl|squid [-since TIME] [-until TIME] [-o FILE]"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("audit "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (its data_dir holds audit.db)")
	dbPath := fs.String("db", "", "audit database (instead of -config)")
	format := fs.String("format", "jsonl", "export format: csv, jsonl or squid")
	since := fs.String("since", "", "export events from this time (RFC 3339 or 2006-01-02)")
	until := fs.String("until", "", "export events before this time (RFC 3339 or 2006-01-02)")
	out := fs.String("o", "", "write the export to this file instead of standard output")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	path := *dbPath
	if path == "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		path = auditPath(cfg)
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "waygate audit: %v\n", err)
		return 1
	}
	ctx := context.Background()
	switch args[0] {
	case "verify":
		res, err := auditsqlite.Verify(ctx, path)
		if err != nil {
			fmt.Fprintln(stderr, "waygate audit verify:", err)
			return 1
		}
		if !res.OK {
			fmt.Fprintf(stdout, "%s: chain BROKEN at event %d: %s (%d events checked)\n", path, res.FirstBadID, res.Reason, res.Events)
			return 1
		}
		fmt.Fprintf(stdout, "%s: chain intact, %d events\n", path, res.Events)
		return 0
	case "export":
		from, err := parseTimeArg(*since, time.Time{})
		if err != nil {
			fmt.Fprintln(stderr, "waygate audit export: -since:", err)
			return 2
		}
		to, err := parseTimeArg(*until, time.Now().Add(time.Hour))
		if err != nil {
			fmt.Fprintln(stderr, "waygate audit export: -until:", err)
			return 2
		}
		db, err := auditsqlite.OpenReadOnly(path)
		if err != nil {
			fmt.Fprintln(stderr, "waygate audit export:", err)
			return 1
		}
		defer db.Close()
		w := stdout
		if *out != "" {
			f, err := os.Create(*out)
			if err != nil {
				fmt.Fprintln(stderr, "waygate audit export:", err)
				return 1
			}
			defer f.Close()
			w = f
		}
		n, err := auditsqlite.Export(ctx, db, w, *format, from, to)
		if err != nil {
			fmt.Fprintln(stderr, "waygate audit export:", err)
			return 1
		}
		fmt.Fprintf(stderr, "exported %d events\n", n)
		// The export is an admin action: it goes into the trail through
		// the spool, since a running gateway may own the database.
		who := os.Getenv("USER")
		if who == "" {
			who = "cli"
		}
		detail, _ := json.Marshal(map[string]any{"format": *format, "since": from, "until": to, "events": n, "to": *out})
		if err := auditsqlite.SpoolEvents(path, &audit.Event{Time: time.Now(), Kind: audit.KindAdmin, User: who,
			Method: "export", Detail: string(detail)}); err != nil {
			fmt.Fprintln(stderr, "waygate audit export: recording the export:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(stderr, usage)
	return 2
}

// parseTimeArg parses RFC 3339 or a date (UTC); "" gives def.
func parseTimeArg(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-11-30T10:00:00Z) or a date (2026-11-30)", s)
}
