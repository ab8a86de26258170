package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the configuration file at path; see Parse. An error
// reading the file is returned wrapped (errors.Is(err, fs.ErrNotExist) works)
// and names the path; an invalid file gives an *Error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a configuration file whose contents are data; name is used
// only in error messages. It returns a complete, valid Config: keys the file
// leaves out keep the values of Default, zeros that mean "the default" are
// replaced by it, DNS servers are normalised to "ip:port" and direct domains
// to lower case. An explicitly empty list ([]) stays empty.
//
// The file must be a single YAML mapping with schema_version: 1. Unknown or
// repeated keys, values of the wrong type and invalid values are errors. On
// failure Parse returns a nil Config and an *Error listing up to 20 problems,
// each with file, line and column.
func Parse(name string, data []byte) (*Config, error) {
	d := &decoder{
		file:  name,
		nodes: make(map[string]*yaml.Node),
		bad:   make(map[string]bool),
	}
	cfg := d.parse(data)
	if len(d.probs) > 0 {
		return nil, &Error{Problems: d.finish()}
	}
	return cfg, nil
}

// decoder walks a yaml.Node tree against the schema, filling a Config and
// collecting problems.
type decoder struct {
	file  string
	probs []Problem
	// nodes maps a key path ("proxy.allow_clients[2]") to the node of its
	// value, so that validation problems can be given a line.
	nodes map[string]*yaml.Node
	// bad holds the paths that already have a decoding problem; validation
	// problems at or below them are not reported twice.
	bad map[string]bool
}

func (d *decoder) parse(data []byte) *Config {
	if p, ok := checkText(data); !ok {
		p.File = d.file
		d.probs = append(d.probs, p)
		return nil
	}
	doc, more, err := decodeDocuments(data)
	if err != nil {
		d.probs = append(d.probs, d.yamlProblem(err, data))
		return nil
	}
	if more != nil {
		d.errorf(more, "", "only one YAML document is allowed")
		return nil
	}
	var root *yaml.Node
	if doc != nil && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root == nil || isNull(root) {
		d.probs = append(d.probs, Problem{File: d.file, Line: 1, Msg: "schema_version is required"})
		return nil
	}
	d.nodes[""] = root
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "the file must be a mapping of keys (such as \"schema_version: 1\"), not %s", describe(root))
		return nil
	}

	cfg := Default()
	// Limits the file leaves out are filled in by applyDefaults, because a
	// per-client default depends on the total the file may set.
	cfg.Proxy.Limits = Limits{}
	// schema_version first: other keys mean nothing under another version.
	var version *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "schema_version" {
			version = root.Content[i+1]
			break
		}
	}
	if version == nil {
		d.probs = append(d.probs, Problem{File: d.file, Line: root.Line, Column: root.Column, Msg: "schema_version is required"})
	} else {
		v := 0
		if !d.integer("schema_version", version, &v) {
			return nil
		}
		if v != 1 {
			d.errorf(version, "schema_version", "unsupported schema_version %d (this build supports 1)", v)
			return nil
		}
	}
	d.mapping("", root, []field{
		{"schema_version", func(string, *yaml.Node) {}}, // checked above
		{"data_dir", d.str(&cfg.DataDir)},
		{"log", d.section([]field{
			{"level", d.str(&cfg.Log.Level)},
			{"format", d.str(&cfg.Log.Format)},
		})},
		{"proxy", d.section([]field{
			{"listen", d.str(&cfg.Proxy.Listen)},
			{"allow_clients", d.prefixes(&cfg.Proxy.AllowClients)},
			{"allow_destinations", d.prefixes(&cfg.Proxy.AllowDestinations)},
			{"connect_ports", d.ports(&cfg.Proxy.ConnectPorts)},
			{"forwarded_for", d.boolean(&cfg.Proxy.ForwardedFor)},
			{"parent", d.str(&cfg.Proxy.Parent)},
			{"extra_ca_files", d.strings(&cfg.Proxy.ExtraCAFiles)},
			{"auth", d.section([]field{
				{"realm", d.str(&cfg.Proxy.Auth.Realm)},
				{"users", d.users(&cfg.Proxy.Auth.Users)},
				{"failures_per_minute", d.intField(&cfg.Proxy.Auth.FailuresPerMinute)},
			})},
			{"limits", d.section([]field{
				{"max_connections", d.intField(&cfg.Proxy.Limits.MaxConnections)},
				{"max_connections_per_client", d.intField(&cfg.Proxy.Limits.MaxConnectionsPerClient)},
				{"max_tunnels", d.intField(&cfg.Proxy.Limits.MaxTunnels)},
				{"max_tunnels_per_client", d.intField(&cfg.Proxy.Limits.MaxTunnelsPerClient)},
				{"max_header_bytes", d.intField(&cfg.Proxy.Limits.MaxHeaderBytes)},
			})},
			{"timeouts", d.section([]field{
				{"read_header", d.duration(&cfg.Proxy.Timeouts.ReadHeader)},
				{"idle", d.duration(&cfg.Proxy.Timeouts.Idle)},
				{"tunnel_idle", d.duration(&cfg.Proxy.Timeouts.TunnelIdle)},
				{"dial", d.duration(&cfg.Proxy.Timeouts.Dial)},
				{"response_header", d.duration(&cfg.Proxy.Timeouts.ResponseHeader)},
				{"shutdown", d.duration(&cfg.Proxy.Timeouts.Shutdown)},
			})},
			{"pac", d.section([]field{
				{"proxy_address", d.str(&cfg.Proxy.PAC.ProxyAddress)},
				{"direct_domains", d.strings(&cfg.Proxy.PAC.DirectDomains)},
				{"direct_networks", d.prefixes(&cfg.Proxy.PAC.DirectNetworks)},
			})},
		})},
		{"dns", d.section([]field{
			{"servers", d.strings(&cfg.DNS.Servers)},
			{"hosts_file", d.str(&cfg.DNS.HostsFile)},
			{"timeout", d.duration(&cfg.DNS.Timeout)},
			{"attempts", d.intField(&cfg.DNS.Attempts)},
			{"min_ttl", d.duration(&cfg.DNS.MinTTL)},
			{"max_ttl", d.duration(&cfg.DNS.MaxTTL)},
			{"negative_ttl", d.duration(&cfg.DNS.NegativeTTL)},
		})},
		{"admin", d.section([]field{
			{"listen", d.str(&cfg.Admin.Listen)},
			{"tls", d.section([]field{
				{"enabled", d.boolean(&cfg.Admin.TLS.Enabled)},
				{"certificates", d.certPairs(&cfg.Admin.TLS.Certificates)},
			})},
		})},
		{"reverse", d.reverse(&cfg.Reverse)},
		{"categories", d.categories(&cfg.Categories)},
		{"category_dirs", d.categoryDirs(&cfg.CategoryDirs)},
		{"groups", d.groups(&cfg.Groups)},
		{"rules", d.rules(&cfg.Rules)},
		{"filter", d.section([]field{
			{"default_action", d.str(&cfg.Filter.DefaultAction)},
			{"block_page", d.str(&cfg.Filter.BlockPage)},
			{"warn_page", d.str(&cfg.Filter.WarnPage)},
		})},
		{"audit", d.section([]field{
			{"enabled", d.boolean(&cfg.Audit.Enabled)},
			{"queue_size", d.intField(&cfg.Audit.QueueSize)},
			{"max_age", d.duration(&cfg.Audit.MaxAge)},
			{"max_bytes", d.int64Field(&cfg.Audit.MaxBytes)},
			{"privacy", d.section([]field{
				{"hash_users", d.boolean(&cfg.Audit.Privacy.HashUsers)},
				{"hash_clients", d.boolean(&cfg.Audit.Privacy.HashClients)},
				{"query", d.str(&cfg.Audit.Privacy.Query)},
				{"exclude_categories", d.strings(&cfg.Audit.Privacy.ExcludeCategories)},
				{"key_file", d.str(&cfg.Audit.Privacy.KeyFile)},
			})},
		})},
	})
	if len(d.probs) > maxProblems {
		return nil
	}
	cfg.applyDefaults()
	for _, p := range cfg.problems() {
		d.validationProblem(p)
	}
	return cfg
}

// decodeDocuments decodes the first YAML document of data into a node and
// returns the node of a second document if there is one. yaml.v3 reports
// errors by panicking internally and recovers them itself; anything else it
// panics with is turned into an error here, so that Parse never panics on
// bad input.
func decodeDocuments(data []byte) (doc, more *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, more, err = nil, nil, fmt.Errorf("YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case errors.Is(err, io.EOF):
		return &first, nil, nil
	case err != nil:
		return nil, nil, err
	}
	return &first, &second, nil
}

// finish sorts the problems into file order and caps their number.
func (d *decoder) finish() []Problem {
	probs := d.probs
	slices.SortStableFunc(probs, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return capProblems(probs, d.file)
}

// errorf records a problem at node n (nil: no position) and marks path bad.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.keyErrorf(n, path, format, args...)
}

// keyErrorf records a problem with a key of the mapping at path. Unlike
// errorf it does not mark path bad: the mapping's other values still count.
func (d *decoder) keyErrorf(n *yaml.Node, path, format string, args ...any) {
	if len(d.probs) > maxProblems {
		return
	}
	p := Problem{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.probs = append(d.probs, p)
}

// validationProblem records a problem found by Config.problems, locating it
// at the node of its path or of the nearest ancestor present in the file. It
// is dropped if decoding already reported a problem at or above its path.
func (d *decoder) validationProblem(p Problem) {
	for q := p.Path; ; q = parentPath(q) {
		if d.bad[q] {
			return
		}
		if q == "" {
			break
		}
	}
	p.File = d.file
	for q := p.Path; ; q = parentPath(q) {
		if n, ok := d.nodes[q]; ok {
			p.Line, p.Column = n.Line, n.Column
			break
		}
		if q == "" {
			break
		}
	}
	if len(d.probs) <= maxProblems {
		d.probs = append(d.probs, p)
	}
}

// parentPath strips the last component of a key path: "a.b[2]" → "a.b" →
// "a" → "".
func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// field is one known key of a mapping and the function that decodes its
// value.
type field struct {
	key    string
	decode func(path string, n *yaml.Node)
}

// section returns a field decoder for a nested mapping.
func (d *decoder) section(fields []field) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) { d.mapping(path, n, fields) }
}

// mapping decodes the mapping n at path. A null value (a key with nothing
// under it, or only comments) sets nothing.
func (d *decoder) mapping(path string, n *yaml.Node, fields []field) {
	d.dict(path, n, "keys", func(k *yaml.Node, child string, v *yaml.Node) {
		i := slices.IndexFunc(fields, func(f field) bool { return f.key == k.Value })
		if i < 0 {
			d.keyErrorf(k, path, "unknown key %q%s", k.Value, keyHint(k.Value, fields))
			return
		}
		fields[i].decode(child, v)
	})
}

// dict walks the mapping n at path, calling value for each entry with its
// key node and path (the mapping's path, ".", and the key); what names the
// expected contents in the error for a non-mapping. Keys must be strings
// and appear once. A null value (a key with nothing under it, or only
// comments) walks nothing. dict reports whether n was a mapping.
func (d *decoder) dict(path string, n *yaml.Node, what string, value func(k *yaml.Node, path string, v *yaml.Node)) bool {
	n = resolve(n)
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of %s, got %s", what, describe(n))
		return false
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				d.keyErrorf(k, path, "merge keys (<<) are not supported")
			} else {
				d.keyErrorf(k, path, "keys must be strings, got %s", describe(k))
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.keyErrorf(k, path, "duplicate key %q (first at line %d)", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		child := joinPath(path, k.Value)
		d.nodes[child] = v
		value(k, child, v)
	}
	return true
}

// keyHint suggests the known key closest to an unknown one, or lists them
// all.
func keyHint(key string, fields []field) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		names = append(names, f.key)
		if dist := editDistance(strings.ToLower(key), f.key, bestDist); dist < bestDist {
			best, bestDist = f.key, dist
		}
		// "password" for "password_hash", "allow" for "allow_clients"...
		if best == "" && len(key) >= 4 && (strings.HasPrefix(f.key, key) || strings.HasPrefix(key, f.key)) {
			best = f.key
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

// editDistance is the Levenshtein distance of a and b, or limit if it is at
// least limit (long keys are not compared at all).
func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 || abs(len(a)-len(b)) >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// scalar resolves n and checks that it is a non-null scalar, reporting what
// was wanted otherwise. nullHint is added to the message for a null value.
func (d *decoder) scalar(path string, n *yaml.Node, want, nullHint string) (*yaml.Node, bool) {
	n = resolve(n)
	switch {
	case isNull(n):
		d.errorf(n, path, "expected %s, got null%s", want, nullHint)
		return nil, false
	case n.Kind != yaml.ScalarNode:
		d.errorf(n, path, "expected %s, got %s", want, describe(n))
		return nil, false
	}
	return n, true
}

// stringValue decodes a scalar that must be a YAML string. secret values
// are not echoed in messages.
func (d *decoder) stringValue(path string, n *yaml.Node, secret bool) (string, bool) {
	s, ok := d.scalar(path, n, "a string", ` (write "" for an empty string)`)
	if !ok {
		return "", false
	}
	if s.ShortTag() != "!!str" {
		what := describe(s)
		if secret {
			what = "a " + strings.TrimPrefix(s.ShortTag(), "!!")
		}
		d.errorf(s, path, "expected a string, got %s (put it in quotes)", what)
		return "", false
	}
	return s.Value, true
}

func (d *decoder) str(dst *string) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		if s, ok := d.stringValue(path, n, false); ok {
			*dst = s
		}
	}
}

// integer decodes a YAML integer into dst.
func (d *decoder) integer(path string, n *yaml.Node, dst *int) bool {
	s, ok := d.scalar(path, n, "an integer", "")
	if !ok {
		return false
	}
	if s.ShortTag() != "!!int" {
		d.errorf(s, path, "expected an integer, got %s", describe(s))
		return false
	}
	var v int
	if err := s.Decode(&v); err != nil {
		d.errorf(s, path, "integer %s is out of range", abbrev(s.Value))
		return false
	}
	*dst = v
	return true
}

func (d *decoder) intField(dst *int) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) { d.integer(path, n, dst) }
}

func (d *decoder) int64Field(dst *int64) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		var v int
		if d.integer(path, n, &v) {
			*dst = int64(v)
		}
	}
}

func (d *decoder) boolean(dst *bool) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		s, ok := d.scalar(path, n, "true or false", "")
		if !ok {
			return
		}
		var v bool
		if s.ShortTag() != "!!bool" || s.Decode(&v) != nil {
			d.errorf(s, path, "expected true or false, got %s", describe(s))
			return
		}
		*dst = v
	}
}

// duration decodes a Go duration string such as "10s" or "1m30s". A bare
// integer 0 is accepted too.
func (d *decoder) duration(dst *time.Duration) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		const want = `a duration such as "10s", "1m30s" or "2h"`
		s, ok := d.scalar(path, n, want, "")
		if !ok {
			return
		}
		switch s.ShortTag() {
		case "!!str":
		case "!!int":
			var v int
			if s.Decode(&v) == nil && v == 0 {
				*dst = 0
				return
			}
			d.errorf(s, path, "expected %s, got %s (a duration needs a unit)", want, describe(s))
			return
		default:
			d.errorf(s, path, "expected %s, got %s", want, describe(s))
			return
		}
		v, err := time.ParseDuration(s.Value)
		if err != nil {
			d.errorf(s, path, "%q is not a duration (want %s)", abbrev(s.Value), want)
			return
		}
		*dst = v
	}
}

// list decodes a YAML sequence into *dst, one element at a time. Elements
// that fail to decode are kept as zero values so that indexes stay right; the
// problem is reported anyway.
func list[T any](d *decoder, path string, n *yaml.Node, dst *[]T, elem func(path string, n *yaml.Node) (T, bool)) {
	n = resolve(n)
	switch {
	case isNull(n):
		d.errorf(n, path, "expected a list, got null (write [] for an empty list)")
		return
	case n.Kind == yaml.ScalarNode:
		d.errorf(n, path, "expected a list, got %s (write [%s] for a list of one)", describe(n), abbrev(n.Value))
		return
	case n.Kind != yaml.SequenceNode:
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return
	}
	out := make([]T, 0, len(n.Content))
	for i, e := range n.Content {
		p := path + "[" + strconv.Itoa(i) + "]"
		d.nodes[p] = e
		v, _ := elem(p, e)
		out = append(out, v)
	}
	*dst = out
}

func (d *decoder) strings(dst *[]string) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (string, bool) {
			return d.stringValue(p, e, false)
		})
	}
}

func (d *decoder) prefixes(dst *[]netip.Prefix) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (netip.Prefix, bool) {
			s, ok := d.stringValue(p, e, false)
			if !ok {
				return netip.Prefix{}, false
			}
			pfx, err := parsePrefix(s)
			if err != nil {
				d.errorf(resolve(e), p, "%v", err)
				return netip.Prefix{}, false
			}
			return pfx, true
		})
	}
}

func (d *decoder) ports(dst *[]uint16) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (uint16, bool) {
			var v int
			if !d.integer(p, e, &v) {
				return 0, false
			}
			if v < 1 || v > 65535 {
				d.errorf(resolve(e), p, "%d is not a port (want 1 to 65535)", v)
				return 0, false
			}
			return uint16(v), true
		})
	}
}

func (d *decoder) users(dst *[]User) func(string, *yaml.Node) {
	return func(path string, n *yaml.Node) {
		list(d, path, n, dst, func(p string, e *yaml.Node) (User, bool) {
			var u User
			if isNull(resolve(e)) {
				d.errorf(resolve(e), p, "expected a user (name and password_hash), got null")
				return u, false
			}
			d.mapping(p, e, []field{
				{"name", d.str(&u.Name)},
				{"password_hash", func(path string, n *yaml.Node) {
					if s, ok := d.stringValue(path, n, true); ok {
						u.PasswordHash = s
					}
				}},
			})
			return u, true
		})
	}
}

// parsePrefix parses a CIDR ("10.0.0.0/8") or a bare IP address (a /32 or
// /128). A CIDR with host bits set is an error.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or IP address", abbrev(s))
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %q?)", s, m.String())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or IP address", abbrev(s))
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: an IPv6 zone is not allowed here", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is missing or a YAML null.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind and value of n for messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.AliasNode:
		return "an alias"
	case n.Kind == yaml.DocumentNode:
		return "a document"
	}
	v := abbrev(n.Value)
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("the string %q", v)
	case "!!int":
		return "the integer " + v
	case "!!float":
		return "the number " + v
	case "!!bool":
		return "the boolean " + v
	case "!!timestamp":
		return "the timestamp " + v
	}
	return fmt.Sprintf("a %s value %q", abbrev(n.ShortTag()), v)
}

// abbrev shortens s for an error message.
func abbrev(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// checkText rejects what the YAML reader would reject without a usable
// position: invalid UTF-8 and control characters.
func checkText(data []byte) (Problem, bool) {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return Problem{Line: line, Column: col, Msg: "the file is not valid UTF-8"}, false
		case r == '\n':
			line, col = line+1, 0
		case r == '\t', r == '\r', r == 0x85:
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r == 0xfffe, r == 0xffff:
			return Problem{Line: line, Column: col, Msg: fmt.Sprintf("control character %U is not allowed", r)}, false
		}
		i += size
		col++
	}
	return Problem{}, true
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)
var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// yamlParserErrors are the messages of yaml.v3's parser (as opposed to its
// scanner). It reports their line 0-based, so one is added.
var yamlParserErrors = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// yamlProblem turns a yaml.v3 syntax error into a Problem with a line.
// yaml.v3 leaves the line out when it is the first.
func (d *decoder) yamlProblem(err error, data []byte) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(yamlParserErrors, msg) {
			line++
		}
	} else if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
	}
	return Problem{File: d.file, Line: line, Msg: "invalid YAML: " + msg}
}
