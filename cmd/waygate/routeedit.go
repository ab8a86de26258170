package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"waygate/cmd/waygate/internal/config"
	"waygate/webui"
)

// routeEditor lets the web UI read and replace the reverse proxy's routes
// (reverse.routes of the config file). It works like policyEditor, whose
// machinery it uses: a save rewrites only that list, keeping the rest of
// the file and its comments (and the text of routes it leaves as they
// were), validates the result with the code of `waygate check` and by
// compiling it for the running reverse proxy, writes it atomically, keeps
// it as a config revision with its author, and reloads.
type routeEditor struct {
	// file edits the config file; its gateway is the running one.
	file policyEditor
}

// errRoutesNoConfigFile is the answer to a save while running on the
// embedded defaults.
var errRoutesNoConfigFile = errors.New("running on the embedded defaults: start with -config FILE to edit the routes")

// Routes returns reverse.routes as the config file has them, with the
// file's version and its reverse listen addresses. On the embedded
// defaults there are no routes and no version.
func (r routeEditor) Routes(context.Context) (webui.RoutesDoc, error) {
	data, version, err := r.file.read()
	switch {
	case errors.Is(err, errNoConfigFile):
		return webui.RoutesDoc{Routes: []webui.RouteDoc{}}, nil
	case err != nil:
		return webui.RoutesDoc{}, err
	}
	cfg, err := config.Parse(r.file.g.path, data)
	if err != nil {
		return webui.RoutesDoc{}, err
	}
	routes, err := routesInFile(data)
	if err != nil {
		return webui.RoutesDoc{}, fmt.Errorf("%s: reverse.routes: %w", r.file.g.path, err)
	}
	doc := webui.RoutesDoc{Version: version, Routes: make([]webui.RouteDoc, 0, len(routes))}
	for _, rt := range routes {
		doc.Routes = append(doc.Routes, rt.doc())
	}
	for _, l := range []string{cfg.Reverse.Listen, cfg.Reverse.TLS.Listen} {
		if l != "" {
			doc.Listeners = append(doc.Listeners, l)
		}
	}
	return doc, nil
}

// Validate returns the problems that saving doc would meet, nil if none.
func (r routeEditor) Validate(_ context.Context, doc webui.RoutesDoc) []webui.Problem {
	if r.file.g.path == "" {
		return []webui.Problem{{Message: errRoutesNoConfigFile.Error()}}
	}
	data, _, err := r.file.read()
	if err != nil {
		return []webui.Problem{{Message: err.Error()}}
	}
	_, probs := r.prepare(data, doc)
	return probs
}

// Save writes doc's routes into the config file (if doc.Version is still
// its version), keeps the file as a revision by author, and reloads.
func (r routeEditor) Save(ctx context.Context, author string, doc webui.RoutesDoc) (string, error) {
	if r.file.g.path == "" {
		return "", &webui.InvalidPolicyError{Problems: []webui.Problem{{Message: errRoutesNoConfigFile.Error()}}}
	}
	return r.file.save(ctx, author, "routes saved from the web UI", doc.Version, func(data []byte) ([]byte, []webui.Problem) {
		return r.prepare(data, doc)
	})
}

// prepare returns the config file data with reverse.routes replaced by
// doc's routes, and the problems found in it: those `waygate check` would
// report (route paths relative to the document: "routes[1].name"), and
// those of compiling it for the running reverse proxy (backend TLS files,
// say), which would otherwise make the reload after the save fail.
func (r routeEditor) prepare(data []byte, doc webui.RoutesDoc) ([]byte, []webui.Problem) {
	out, err := replaceRoutes(data, doc.Routes)
	if err != nil {
		return nil, []webui.Problem{{Message: err.Error()}}
	}
	cfg, probs := r.file.parse(out)
	if len(probs) > 0 {
		for i := range probs {
			probs[i].Path = routeProblemPath(probs[i].Path)
		}
		return nil, probs
	}
	// The policy as the reload builds it (not with the policy editor's
	// stricter checks: the routes must not be refused for entries that
	// `waygate check` only reports).
	if _, err := policyEngine(cfg, r.file.g.path, cachedCopies(cfg), false); err != nil {
		return nil, []webui.Problem{{Message: err.Error()}}
	}
	if err := r.compile(cfg); err != nil {
		return nil, []webui.Problem{{Path: "routes", Message: err.Error()}}
	}
	return out, nil
}

// compile builds cfg's reverse configuration for the running reverse
// proxy, and drops it: the check the reload would make. Without a running
// reverse proxy (no listener at start) there is nothing to compile for:
// the routes are checked again when a restart starts it.
func (r routeEditor) compile(cfg *config.Config) error {
	g := r.file.g
	g.mu.Lock() // reload's Prepare and Commit hold it too
	defer g.mu.Unlock()
	if g.rev.srv == nil {
		return nil
	}
	rcfg, err := reverseConfig(cfg, g.path, g.rev.tlsPort())
	if err != nil {
		return err
	}
	prepared, err := g.rev.srv.Prepare(rcfg)
	if err != nil {
		return err
	}
	g.rev.srv.Discard(prepared)
	return nil
}

// routeProblemPath names a problem of the config file the way the routes
// document does: "reverse.routes[1].name" is "routes[1].name"; paths
// outside reverse.routes are kept.
func routeProblemPath(path string) string {
	if rest, ok := strings.CutPrefix(path, "reverse."); ok && (rest == "routes" || strings.HasPrefix(rest, "routes[")) {
		return rest
	}
	return path
}

// The YAML shapes of a route, as written in the file: the webui document's
// fields with the config file's keys. Empty fields are left out, so that a
// route reads as a hand-written one; the pointers tell a key left out
// (nil) from a zero value given.
type (
	yamlRoute struct {
		Name                  string                   `yaml:"name"`
		Hosts                 []string                 `yaml:"hosts,omitempty"`
		PathPrefix            string                   `yaml:"path_prefix,omitempty"`
		StripPrefix           bool                     `yaml:"strip_prefix,omitempty"`
		Headers               map[string]string        `yaml:"headers,omitempty"`
		Cookies               map[string]string        `yaml:"cookies,omitempty"`
		Priority              int                      `yaml:"priority,omitempty"`
		Backends              []yamlBackend            `yaml:"backends"`
		Balance               string                   `yaml:"balance,omitempty"`
		HashOn                string                   `yaml:"hash_on,omitempty"`
		Health                *yamlHealth              `yaml:"health,omitempty"`
		Passive               *yamlPassive             `yaml:"passive,omitempty"`
		Retries               *int                     `yaml:"retries,omitempty"`
		BackendTLS            *yamlBackendTLS          `yaml:"backend_tls,omitempty"`
		AllowClients          []string                 `yaml:"allow_clients,omitempty"`
		DenyClients           []string                 `yaml:"deny_clients,omitempty"`
		RateLimit             *yamlRateLimit           `yaml:"rate_limit,omitempty"`
		MaxBodyBytes          int64                    `yaml:"max_body_bytes,omitempty"`
		Compress              *bool                    `yaml:"compress,omitempty"`
		SecurityHeaders       *yamlRouteSecurityHeader `yaml:"security_headers,omitempty"`
		ResponseHeaderTimeout string                   `yaml:"response_header_timeout,omitempty"`
	}
	// yamlBackend is written as a bare URL unless it has a weight or a
	// cap, and read in either form.
	yamlBackend struct {
		URL      string `yaml:"url"`
		Weight   int    `yaml:"weight,omitempty"`
		MaxConns int    `yaml:"max_conns,omitempty"`
	}
	yamlHealth struct {
		Path         string `yaml:"path,omitempty"`
		Interval     string `yaml:"interval,omitempty"`
		Timeout      string `yaml:"timeout,omitempty"`
		Rise         int    `yaml:"rise,omitempty"`
		Fall         int    `yaml:"fall,omitempty"`
		ExpectStatus string `yaml:"expect_status,omitempty"`
		Host         string `yaml:"host,omitempty"`
	}
	yamlPassive struct {
		Failures int    `yaml:"failures,omitempty"`
		Cooldown string `yaml:"cooldown,omitempty"`
	}
	yamlBackendTLS struct {
		CAFile     string `yaml:"ca_file,omitempty"`
		ServerName string `yaml:"server_name,omitempty"`
		CertFile   string `yaml:"cert_file,omitempty"`
		KeyFile    string `yaml:"key_file,omitempty"`
	}
	yamlRateLimit struct {
		RequestsPerSecond float64 `yaml:"requests_per_second,omitempty"`
		Burst             int     `yaml:"burst,omitempty"`
	}
	yamlRouteSecurityHeader struct {
		HSTS                  *string `yaml:"hsts,omitempty"`
		ContentTypeOptions    *string `yaml:"content_type_options,omitempty"`
		FrameOptions          *string `yaml:"frame_options,omitempty"`
		ReferrerPolicy        *string `yaml:"referrer_policy,omitempty"`
		ContentSecurityPolicy *string `yaml:"content_security_policy,omitempty"`
	}
)

// UnmarshalYAML reads a backend written as a URL or as a mapping.
func (b *yamlBackend) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode {
		*b = yamlBackend{}
		return n.Decode(&b.URL)
	}
	type plain yamlBackend // without this method
	return n.Decode((*plain)(b))
}

// MarshalYAML writes a backend with only a URL as that URL.
func (b yamlBackend) MarshalYAML() (any, error) {
	if b.Weight == 0 && b.MaxConns == 0 {
		return b.URL, nil
	}
	type plain yamlBackend
	return plain(b), nil
}

// doc is the route as the web UI edits it.
func (y yamlRoute) doc() webui.RouteDoc {
	d := webui.RouteDoc{
		Name: y.Name, Hosts: y.Hosts, PathPrefix: y.PathPrefix, StripPrefix: y.StripPrefix,
		Headers: y.Headers, Cookies: y.Cookies, Priority: y.Priority, Balance: y.Balance, HashOn: y.HashOn,
		Retries: y.Retries, AllowClients: y.AllowClients, DenyClients: y.DenyClients,
		MaxBodyBytes: y.MaxBodyBytes, Compress: y.Compress, ResponseHeaderTimeout: y.ResponseHeaderTimeout,
		Backends: make([]webui.RouteBackend, 0, len(y.Backends)),
	}
	for _, b := range y.Backends {
		d.Backends = append(d.Backends, webui.RouteBackend(b))
	}
	d.Health = (*webui.RouteHealth)(y.Health)
	d.Passive = (*webui.RoutePassive)(y.Passive)
	d.BackendTLS = (*webui.RouteBackendTLS)(y.BackendTLS)
	d.RateLimit = (*webui.RouteRateLimit)(y.RateLimit)
	d.SecurityHeaders = (*webui.RouteSecurityHeaders)(y.SecurityHeaders)
	return d
}

// yamlRouteOf is the route d as written in the file.
func yamlRouteOf(d webui.RouteDoc) yamlRoute {
	y := yamlRoute{
		Name: d.Name, Hosts: d.Hosts, PathPrefix: d.PathPrefix, StripPrefix: d.StripPrefix,
		Headers: d.Headers, Cookies: d.Cookies, Priority: d.Priority, Balance: d.Balance, HashOn: d.HashOn,
		Retries: d.Retries, AllowClients: d.AllowClients, DenyClients: d.DenyClients,
		MaxBodyBytes: d.MaxBodyBytes, Compress: d.Compress, ResponseHeaderTimeout: d.ResponseHeaderTimeout,
		Backends: make([]yamlBackend, 0, len(d.Backends)),
	}
	for _, b := range d.Backends {
		y.Backends = append(y.Backends, yamlBackend(b))
	}
	y.Health = (*yamlHealth)(d.Health)
	y.Passive = (*yamlPassive)(d.Passive)
	y.BackendTLS = (*yamlBackendTLS)(d.BackendTLS)
	y.RateLimit = (*yamlRateLimit)(d.RateLimit)
	y.SecurityHeaders = (*yamlRouteSecurityHeader)(d.SecurityHeaders)
	return y
}

// routesNode returns the node of reverse.routes in the config file's
// top-level mapping m, or nil when there is none.
func routesNode(m *yaml.Node) *yaml.Node {
	rev := getKey(m, "reverse")
	if rev == nil || rev.Kind != yaml.MappingNode {
		return nil
	}
	return getKey(rev, "routes")
}

// routesInFile reads reverse.routes of the config file data as written
// (no defaults filled in). The file is expected to be valid.
func routesInFile(data []byte) ([]yamlRoute, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, nil
	}
	n := routesNode(root.Content[0])
	if n == nil {
		return nil, nil
	}
	var routes []yamlRoute
	if err := n.Decode(&routes); err != nil {
		return nil, err
	}
	return routes, nil
}

// replaceRoutes returns the config file data with reverse.routes replaced
// by routes; the rest of the file is kept. A route the file already holds
// exactly as given keeps its text, comments included. Without routes, a
// file without reverse.routes is left without it.
func replaceRoutes(data []byte, routes []webui.RouteDoc) ([]byte, error) {
	return editMapping(data, func(m *yaml.Node) error {
		old := routesNode(m)
		if len(routes) == 0 && old == nil {
			return nil
		}
		// The YAML of each route the file has, to keep those unchanged.
		kept := map[string]*yaml.Node{}
		if old != nil && old.Kind == yaml.SequenceNode {
			for _, n := range old.Content {
				var y yamlRoute
				if n.Decode(&y) != nil {
					continue
				}
				if text, err := yaml.Marshal(y); err == nil {
					kept[string(text)] = n
				}
			}
		}
		list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if old != nil && old.Kind == yaml.SequenceNode {
			list.HeadComment, list.LineComment, list.FootComment = old.HeadComment, old.LineComment, old.FootComment
		}
		for _, d := range routes {
			y := yamlRouteOf(d)
			text, err := yaml.Marshal(y)
			if err != nil {
				return err
			}
			if n, ok := kept[string(text)]; ok {
				list.Content = append(list.Content, n)
				delete(kept, string(text)) // a second copy is written anew
				continue
			}
			var n yaml.Node
			if err := n.Encode(y); err != nil {
				return err
			}
			list.Content = append(list.Content, &n)
		}
		rev := getKey(m, "reverse")
		if rev == nil || rev.Kind != yaml.MappingNode {
			rev = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			setKey(m, "reverse", rev)
		}
		setKey(rev, "routes", list)
		return nil
	})
}
