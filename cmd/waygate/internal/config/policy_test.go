package config_test

import (
	"strings"
	"testing"
	"time"

	"waygate/cmd/waygate/internal/config"
)

func TestParsePolicy(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte(`schema_version: 1
categories:
  - name: gambling
    domains: [casino.example]
    urls: [news.example/bets]
    files:
      - lists/gambling/domains
      - {path: lists/ads.txt, format: adblock}
category_dirs:
  - /var/lib/ut1
  - {path: /opt/lists, only: [adult], expressions: true}
groups:
  - {name: staff, clients: [10.1.0.0/16], users: [alice]}
rules:
  - name: r1
    groups: [staff]
    categories: [gambling]
    methods: [GET]
    ports: [80]
    schedule:
      - {days: [mon, Friday], from: "22:00", to: "06:00", time_zone: Europe/Berlin}
    action: warn
    warn_for: 30m
filter:
  default_action: monitor
`))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Categories[0]
	if c.Name != "gambling" || len(c.Files) != 2 || c.Files[1].Format != "adblock" || c.Files[0].Path != "lists/gambling/domains" {
		t.Errorf("category: %+v", c)
	}
	if len(cfg.CategoryDirs) != 2 || cfg.CategoryDirs[0].Path != "/var/lib/ut1" || !cfg.CategoryDirs[1].Expressions {
		t.Errorf("category_dirs: %+v", cfg.CategoryDirs)
	}
	r := cfg.Rules[0]
	if r.Action != "warn" || r.WarnFor != 30*time.Minute || len(r.Schedule) != 1 {
		t.Errorf("rule: %+v", r)
	}
	s, err := r.Schedule[0].Compile()
	if err != nil || s.From != 22*60 || s.To != 6*60 || len(s.Days) != 2 || s.Location.String() != "Europe/Berlin" {
		t.Errorf("schedule: %+v %v", s, err)
	}
	if cfg.Filter.DefaultAction != "monitor" {
		t.Errorf("default action %q", cfg.Filter.DefaultAction)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"bad action", "rules:\n  - name: a\n    action: deny\n", `p.yaml:4:13: rules[0].action: "deny" is not an action`},
		{"no action", "rules:\n  - name: a\n", "rules[0].action: a rule needs an action"},
		{"unknown group", "rules:\n  - name: a\n    groups: [x]\n    action: block\n", `rules[0].groups[0]: unknown group "x"`},
		{"bad day", "rules:\n  - name: a\n    action: block\n    schedule: [{days: [funday]}]\n", `"funday" is not a day of the week`},
		{"bad zone", "rules:\n  - name: a\n    action: block\n    schedule: [{time_zone: Mars/Olympus}]\n", `"Mars/Olympus" is not a known IANA time zone`},
		{"bad clock", "rules:\n  - name: a\n    action: block\n    schedule: [{from: \"25:00\", to: \"26:00\"}]\n", "is not a time of day"},
		{"half window", "rules:\n  - name: a\n    action: block\n    schedule: [{from: \"09:00\"}]\n", "give both from and to"},
		{"duplicate rule", "rules:\n  - {name: a, action: block}\n  - {name: a, action: allow}\n", `rule "a" is defined twice`},
		{"duplicate category", "categories:\n  - {name: a}\n  - {name: a}\n", `category "a" is defined twice`},
		{"bad format", "categories:\n  - name: a\n    files: [{path: x, format: csv}]\n", `"csv" is not a list format`},
		{"unknown rule key", "rules:\n  - name: a\n    action: block\n    category: [x]\n", `p.yaml:5:5: rules[0]: unknown key "category"`},
		{"bad method", "rules:\n  - {name: a, action: block, methods: [get]}\n", `"get" is not an HTTP method`},
		{"bad default", "filter:\n  default_action: maybe\n", `filter.default_action: "maybe" is not an action`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("p.yaml", []byte("schema_version: 1\n"+tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
