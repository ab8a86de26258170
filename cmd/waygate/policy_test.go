package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"waygate/cmd/waygate/internal/config"
	"waygate/filter"
	"waygate/filter/lists"
)

func TestBuildPolicyCategoryDirs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct{ path, body string }{
		{"sg/adult/domains", "adult.example\n"},
		{"sg/adult/expressions", "(sex|porn)\n"},
		{"sg/news/urls", "news.example/sport\n"},
		{"sg/news/domains", "news.example\n"},
		{"sg/empty-dir-ignored/README", "x"},
	} {
		p := filepath.Join(dir, f.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(f.body), 0o600)
	}
	none := func(string) (string, bool) { return "", false }
	formatsOf := func(p *filter.Policy, name string) []lists.Format {
		for _, c := range p.Categories {
			if c.Name == name {
				var fs []lists.Format
				for _, l := range c.Lists {
					fs = append(fs, l.Format)
				}
				return fs
			}
		}
		return nil
	}

	cfg := config.Default()
	cfg.CategoryDirs = []config.CategoryDir{{Path: "sg"}}
	p, err := buildPolicy(cfg, dir, none, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatsOf(p, "adult"); !slices.Equal(got, []lists.Format{lists.FormatDomains}) {
		t.Errorf("adult lists without expressions enabled: %v", got)
	}
	if got := formatsOf(p, "news"); !slices.Equal(got, []lists.Format{lists.FormatDomains, lists.FormatURLs}) {
		t.Errorf("news lists: %v", got)
	}

	cfg.CategoryDirs = []config.CategoryDir{{Path: "sg", Only: []string{"adult"}, Expressions: true}}
	p, err = buildPolicy(cfg, dir, none, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Categories) != 1 || !slices.Contains(formatsOf(p, "adult"), lists.FormatExpressions) {
		t.Errorf("only adult, with expressions: %+v", p.Categories)
	}
	v1 := p.Version

	cfg.CategoryDirs = []config.CategoryDir{{Path: "sg", Only: []string{"nope"}}}
	if _, err := buildPolicy(cfg, dir, none, false); err == nil {
		t.Error("unknown category in only accepted")
	}

	// Changing a list changes the policy version.
	os.WriteFile(filepath.Join(dir, "sg/adult/domains"), []byte("adult.example\nmore.example\n"), 0o600)
	cfg.CategoryDirs = []config.CategoryDir{{Path: "sg", Only: []string{"adult"}, Expressions: true}}
	p, _ = buildPolicy(cfg, dir, none, false)
	if p.Version == v1 {
		t.Error("policy version did not change with the list")
	}

	// A remote list with no copy is an error when serving, skipped by check.
	cfg = config.Default()
	cfg.Categories = []config.Category{{Name: "r", Remote: []config.RemoteList{{URL: "https://lists.example/x"}}}}
	if _, err := buildPolicy(cfg, dir, none, false); err == nil {
		t.Error("missing remote copy accepted when serving")
	}
	if _, err := buildPolicy(cfg, dir, none, true); err != nil {
		t.Errorf("check with a missing remote copy: %v", err)
	}
}
