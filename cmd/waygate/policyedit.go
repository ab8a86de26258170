package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	auditsqlite "waygate/audit/sqlite"
	"waygate/cmd/waygate/internal/config"
	"waygate/filter"
	"waygate/filter/lists"
	"waygate/webui"
)

// policyEditor lets the web UI read and replace the policy sections of the
// config file (categories, category_dirs, groups, rules and
// filter.default_action). A save rewrites those sections in the file,
// keeping everything else (and the comments around it), validates the
// result with the code of `waygate check`, writes it atomically, keeps it
// as a config revision with its author, and reloads.
type policyEditor struct {
	g     *gateway
	store *auditsqlite.AdminStore
}

// errNoConfigFile is the answer to a save while running on the embedded
// defaults.
var errNoConfigFile = errors.New("running on the embedded defaults: start with -config FILE to edit the policy")

// read returns the config file and its version (SHA-256, hex).
func (p policyEditor) read() ([]byte, string, error) {
	if p.g.path == "" {
		return nil, "", errNoConfigFile
	}
	data, err := os.ReadFile(p.g.path)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:]), nil
}

func (p policyEditor) Policy(context.Context) (webui.PolicyDoc, error) {
	data, version, err := p.read()
	var cfg *config.Config
	switch {
	case errors.Is(err, errNoConfigFile):
		cfg = config.Default()
	case err != nil:
		return webui.PolicyDoc{}, err
	default:
		if cfg, err = config.Parse(p.g.path, data); err != nil {
			return webui.PolicyDoc{}, err
		}
	}
	doc := policyDocOf(cfg)
	doc.Version = version
	return doc, nil
}

func (p policyEditor) Validate(_ context.Context, doc webui.PolicyDoc) []webui.Problem {
	data, _, err := p.read()
	if err != nil {
		return []webui.Problem{{Message: err.Error()}}
	}
	_, probs := p.prepare(data, doc)
	return probs
}

func (p policyEditor) Save(ctx context.Context, author string, doc webui.PolicyDoc) (string, error) {
	return p.save(ctx, author, "policy saved from the web UI", doc.Version, func(data []byte) ([]byte, []webui.Problem) {
		return p.prepare(data, doc)
	})
}

// editMu serialises the web UI's changes of the config file (policy,
// routes, rollbacks), from reading its version to the reload.
var editMu sync.Mutex

// save replaces the config file with change's rewrite of it, provided
// version is still the file's version (an empty version means "whatever
// is there"), and returns the new version. change returns the new file, or
// the problems that keep it from being saved (an *InvalidPolicyError).
func (p policyEditor) save(ctx context.Context, author, comment, version string, change func(data []byte) ([]byte, []webui.Problem)) (string, error) {
	editMu.Lock()
	defer editMu.Unlock()
	data, current, err := p.read()
	if err != nil {
		return "", fmt.Errorf("%w: %w", webui.ErrConflict, err)
	}
	if version != "" && version != current {
		return "", fmt.Errorf("%w: the config file changed since version %.12s", webui.ErrConflict, version)
	}
	out, probs := change(data)
	if len(probs) > 0 {
		return "", &webui.InvalidPolicyError{Problems: probs}
	}
	if _, err := p.commit(ctx, author, comment, data, out); err != nil {
		return "", err
	}
	sum := sha256.Sum256(out)
	return hex.EncodeToString(sum[:]), nil
}

// commit writes out as the config file (before is what it holds now),
// keeps it as a revision by author, and reloads. The first commit also
// keeps the file as it was before it.
func (p policyEditor) commit(ctx context.Context, author, comment string, before, out []byte) (int64, error) {
	if _, err := p.store.LatestRevision(ctx); errors.Is(err, auditsqlite.ErrNotFound) {
		if _, err := p.store.AddRevision(ctx, auditsqlite.Revision{Author: "(file before the first save)", Config: before}); err != nil {
			return 0, err
		}
	}
	if err := writeFileAtomic(p.g.path, out); err != nil {
		return 0, err
	}
	id, err := p.store.AddRevision(ctx, auditsqlite.Revision{Author: author, Comment: comment, Config: out})
	if err != nil {
		return 0, err
	}
	p.g.reload(comment + " by " + author)
	return id, nil
}

// Revisions, Revision and Rollback serve the config revisions.
func (p policyEditor) Revisions(ctx context.Context, before int64, limit int) ([]webui.Revision, error) {
	revs, err := p.store.Revisions(ctx, before, limit)
	out := make([]webui.Revision, len(revs))
	for i, r := range revs {
		out[i] = uiRevision(r)
	}
	return out, err
}

func (p policyEditor) Revision(ctx context.Context, id int64) (webui.Revision, error) {
	r, err := p.store.Revision(ctx, id)
	if err != nil {
		return webui.Revision{}, uiErr(err)
	}
	return uiRevision(r), nil
}

func (p policyEditor) Rollback(ctx context.Context, author string, id int64) (webui.Revision, error) {
	editMu.Lock()
	defer editMu.Unlock()
	rev, err := p.store.Revision(ctx, id)
	if err != nil {
		return webui.Revision{}, uiErr(err)
	}
	data, _, err := p.read()
	if err != nil {
		return webui.Revision{}, fmt.Errorf("%w: %w", webui.ErrConflict, err)
	}
	if probs := p.check(rev.Config); len(probs) > 0 {
		return webui.Revision{}, &webui.InvalidPolicyError{Problems: probs}
	}
	newID, err := p.commit(ctx, author, fmt.Sprintf("rollback to revision %d", id), data, rev.Config)
	if err != nil {
		return webui.Revision{}, err
	}
	return p.Revision(ctx, newID)
}

func uiRevision(r auditsqlite.Revision) webui.Revision {
	return webui.Revision{ID: r.ID, Time: r.Time, Author: r.Author, Comment: r.Comment,
		SHA256: hex.EncodeToString(r.SHA256[:]), Config: string(r.Config)}
}

// prepare returns the config file data with the policy sections replaced
// by doc, and the problems `waygate check` would report for it.
func (p policyEditor) prepare(data []byte, doc webui.PolicyDoc) ([]byte, []webui.Problem) {
	out, err := replacePolicy(data, doc)
	if err != nil {
		return nil, []webui.Problem{{Message: err.Error()}}
	}
	if probs := p.check(out); len(probs) > 0 {
		return nil, probs
	}
	return out, nil
}

// check returns the problems `waygate check` would report for the config
// file data out, and those of list paths outside the allowed folders.
func (p policyEditor) check(out []byte) []webui.Problem {
	cfg, probs := p.parse(out)
	if len(probs) > 0 {
		return probs
	}
	if probs := p.confined(cfg); len(probs) > 0 {
		return probs
	}
	return p.buildPolicy(cfg)
}

// parse parses the config file data out as `waygate check` does, and
// returns it, or the problems found (a nil Config).
func (p policyEditor) parse(out []byte) (*config.Config, []webui.Problem) {
	cfg, err := config.Parse(p.g.path, out)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			probs := make([]webui.Problem, 0, len(ce.Problems))
			for _, pr := range ce.Problems {
				probs = append(probs, webui.Problem{Path: pr.Path, Message: pr.Msg})
			}
			return nil, probs
		}
		return nil, []webui.Problem{{Message: err.Error()}}
	}
	return cfg, nil
}

// buildPolicy builds cfg's policy engine, reading its list files, and
// returns the error as a problem if that fails.
func (p policyEditor) buildPolicy(cfg *config.Config) []webui.Problem {
	// Built even without rules (when the gateway runs no engine), so
	// that entries typed into the UI are checked all the same.
	pol, err := buildPolicy(cfg, baseDir(p.g.path), cachedCopies(cfg), false)
	if err != nil {
		return []webui.Problem{{Message: err.Error()}}
	}
	e, err := filter.Compile(pol)
	if err != nil {
		return []webui.Problem{{Message: "policy: " + err.Error()}}
	}
	return inlineProblems(cfg, e)
}

// inlineProblems turns the malformed inline entries of cfg's categories,
// which a config file may have (they are skipped and reported by
// `waygate check`), into problems with their paths: from the UI they are
// refused, next to the entry.
func inlineProblems(cfg *config.Config, e *filter.Engine) []webui.Problem {
	index := make(map[string]int, len(cfg.Categories))
	for i, c := range cfg.Categories {
		index[c.Name] = i
	}
	var probs []webui.Problem
	for _, cs := range e.CategoryStats() {
		i, ok := index[cs.Name]
		if !ok {
			continue
		}
		for _, src := range cs.Sources {
			if src.Path != "" {
				continue
			}
			field := "domains"
			if src.Format == lists.FormatURLs {
				field = "urls"
			}
			for _, pr := range src.Problems {
				probs = append(probs, webui.Problem{
					Path:    fmt.Sprintf("categories[%d].%s[%d]", i, field, pr.Line-1),
					Message: fmt.Sprintf("%s: %q", pr.Reason, pr.Text),
				})
			}
		}
	}
	return probs
}

// confined keeps list files and category folders given from the UI inside
// the config file's folder or data_dir: the explain answer shows list
// entries, which must not become a way to read other files.
func (p policyEditor) confined(cfg *config.Config) []webui.Problem {
	base := baseDir(p.g.path)
	roots := []string{base, cfg.DataDir}
	inside := func(path string) bool {
		if !filepath.IsAbs(path) {
			path = filepath.Join(base, path)
		}
		path = filepath.Clean(path)
		for _, r := range roots {
			if r, err := filepath.Abs(r); err == nil {
				if rel, err := filepath.Rel(r, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
					return true
				}
			}
		}
		return false
	}
	var probs []webui.Problem
	for i, c := range cfg.Categories {
		for j, f := range c.Files {
			if !inside(f.Path) {
				probs = append(probs, webui.Problem{Path: fmt.Sprintf("categories[%d].files[%d]", i, j),
					Message: "list files must be inside the config file's folder or data_dir"})
			}
		}
	}
	for i, d := range cfg.CategoryDirs {
		if !inside(d.Path) {
			probs = append(probs, webui.Problem{Path: fmt.Sprintf("category_dirs[%d].path", i),
				Message: "category folders must be inside the config file's folder or data_dir"})
		}
	}
	return probs
}

// writeFileAtomic replaces path with data (write, sync, rename), keeping
// its mode.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".waygate-config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// policyDocOf is the policy of cfg as the web UI edits it.
func policyDocOf(cfg *config.Config) webui.PolicyDoc {
	doc := webui.PolicyDoc{DefaultAction: cfg.Filter.DefaultAction, Categories: []webui.PolicyCategory{}, Rules: []webui.PolicyRule{}}
	for _, c := range cfg.Categories {
		pc := webui.PolicyCategory{Name: c.Name, Domains: c.Domains, URLs: c.URLs}
		for _, f := range c.Files {
			pc.Files = append(pc.Files, webui.PolicyListFile{Path: f.Path, Format: f.Format})
		}
		for _, r := range c.Remote {
			pc.Remote = append(pc.Remote, webui.PolicyRemoteList{URL: r.URL, Format: r.Format, Refresh: r.Refresh.String()})
		}
		doc.Categories = append(doc.Categories, pc)
	}
	for _, d := range cfg.CategoryDirs {
		doc.CategoryDirs = append(doc.CategoryDirs, webui.PolicyCategoryDir{Path: d.Path, Only: d.Only, Expressions: d.Expressions})
	}
	for _, g := range cfg.Groups {
		pg := webui.PolicyGroup{Name: g.Name, Users: g.Users}
		for _, c := range g.Clients {
			pg.Clients = append(pg.Clients, c.String())
		}
		doc.Groups = append(doc.Groups, pg)
	}
	for _, r := range cfg.Rules {
		pr := webui.PolicyRule{Name: r.Name, Groups: r.Groups, Users: r.Users, Categories: r.Categories,
			Domains: r.Domains, URLs: r.URLs, Methods: r.Methods, Action: r.Action}
		for _, c := range r.Clients {
			pr.Clients = append(pr.Clients, c.String())
		}
		for _, p := range r.Ports {
			pr.Ports = append(pr.Ports, int(p))
		}
		for _, w := range r.Schedule {
			pr.Schedule = append(pr.Schedule, webui.PolicyWindow{Days: w.Days, From: w.From, To: w.To, TimeZone: w.TimeZone})
		}
		if r.WarnFor > 0 {
			pr.WarnFor = r.WarnFor.String()
		}
		doc.Rules = append(doc.Rules, pr)
	}
	return doc
}

// The YAML shapes of the policy sections, as written into the file; empty
// fields are left out so the file stays as short as a hand-written one.
type (
	yamlCategory struct {
		Name    string           `yaml:"name"`
		Domains []string         `yaml:"domains,omitempty"`
		URLs    []string         `yaml:"urls,omitempty"`
		Files   []yamlListFile   `yaml:"files,omitempty"`
		Remote  []yamlRemoteList `yaml:"remote,omitempty"`
	}
	yamlListFile struct {
		Path   string `yaml:"path"`
		Format string `yaml:"format,omitempty"`
	}
	yamlRemoteList struct {
		URL     string `yaml:"url"`
		Format  string `yaml:"format,omitempty"`
		Refresh string `yaml:"refresh,omitempty"`
	}
	yamlCategoryDir struct {
		Path        string   `yaml:"path"`
		Only        []string `yaml:"only,omitempty"`
		Expressions bool     `yaml:"expressions,omitempty"`
	}
	yamlGroup struct {
		Name    string   `yaml:"name"`
		Clients []string `yaml:"clients,omitempty"`
		Users   []string `yaml:"users,omitempty"`
	}
	yamlRule struct {
		Name       string       `yaml:"name"`
		Groups     []string     `yaml:"groups,omitempty"`
		Users      []string     `yaml:"users,omitempty"`
		Clients    []string     `yaml:"clients,omitempty"`
		Categories []string     `yaml:"categories,omitempty"`
		Domains    []string     `yaml:"domains,omitempty"`
		URLs       []string     `yaml:"urls,omitempty"`
		Methods    []string     `yaml:"methods,omitempty"`
		Ports      []int        `yaml:"ports,omitempty"`
		Schedule   []yamlWindow `yaml:"schedule,omitempty"`
		Action     string       `yaml:"action"`
		WarnFor    string       `yaml:"warn_for,omitempty"`
	}
	yamlWindow struct {
		Days     []string `yaml:"days,omitempty"`
		From     string   `yaml:"from,omitempty"`
		To       string   `yaml:"to,omitempty"`
		TimeZone string   `yaml:"time_zone,omitempty"`
	}
)

// replacePolicy returns the config file data with its policy sections
// replaced by doc's; the rest of the file is kept.
func replacePolicy(data []byte, doc webui.PolicyDoc) ([]byte, error) {
	return editMapping(data, func(m *yaml.Node) error {
		return setPolicy(m, doc)
	})
}

// editMapping returns the config file data as edit changes its top-level
// mapping; the rest of the file, comments included, is kept.
func editMapping(data []byte, edit func(m *yaml.Node) error) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the config file is not a mapping of keys")
	}
	if err := edit(root.Content[0]); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// setPolicy replaces the policy sections of the config file's top-level
// mapping m with doc's.
func setPolicy(m *yaml.Node, doc webui.PolicyDoc) error {
	sections := []struct {
		key string
		val any
	}{
		{"categories", yamlCategories(doc.Categories)},
		{"category_dirs", yamlCategoryDirs(doc.CategoryDirs)},
		{"groups", yamlGroups(doc.Groups)},
		{"rules", yamlRules(doc.Rules)},
	}
	for _, s := range sections {
		var n yaml.Node
		if err := n.Encode(s.val); err != nil {
			return err
		}
		setKey(m, s.key, &n)
	}
	filterNode := getKey(m, "filter")
	if filterNode == nil || filterNode.Kind != yaml.MappingNode {
		filterNode = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setKey(m, "filter", filterNode)
	}
	action := doc.DefaultAction
	if action == "" {
		action = "allow"
	}
	setKey(filterNode, "default_action", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: action})
	return nil
}

func getKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setKey sets key in mapping m to v, in place when present (keeping the
// comments before the key), else at the end.
func setKey(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

func yamlCategories(cs []webui.PolicyCategory) []yamlCategory {
	out := []yamlCategory{}
	for _, c := range cs {
		yc := yamlCategory{Name: c.Name, Domains: c.Domains, URLs: c.URLs}
		for _, f := range c.Files {
			yc.Files = append(yc.Files, yamlListFile(f))
		}
		for _, r := range c.Remote {
			yc.Remote = append(yc.Remote, yamlRemoteList(r))
		}
		out = append(out, yc)
	}
	return out
}

func yamlCategoryDirs(ds []webui.PolicyCategoryDir) []yamlCategoryDir {
	out := []yamlCategoryDir{}
	for _, d := range ds {
		out = append(out, yamlCategoryDir(d))
	}
	return out
}

func yamlGroups(gs []webui.PolicyGroup) []yamlGroup {
	out := []yamlGroup{}
	for _, g := range gs {
		out = append(out, yamlGroup(g))
	}
	return out
}

func yamlRules(rs []webui.PolicyRule) []yamlRule {
	out := []yamlRule{}
	for _, r := range rs {
		yr := yamlRule{Name: r.Name, Groups: r.Groups, Users: r.Users, Clients: r.Clients, Categories: r.Categories,
			Domains: r.Domains, URLs: r.URLs, Methods: r.Methods, Ports: r.Ports, Action: r.Action, WarnFor: r.WarnFor}
		for _, w := range r.Schedule {
			yr.Schedule = append(yr.Schedule, yamlWindow(w))
		}
		out = append(out, yr)
	}
	return out
}
