package lists_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"waygate/filter/lists"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("symlinks not supported: %v", err)
	}
}

func TestReadSquidGuardDir(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "db")
	out := filepath.Join(base, "outside")
	writeFile(t, filepath.Join(out, "domains"), "evil.example\n")

	writeFile(t, filepath.Join(root, "adult", "domains"), "a.example\n")
	writeFile(t, filepath.Join(root, "adult", "urls"), "a.example/x\n")
	writeFile(t, filepath.Join(root, "adult", "usage"), "\ufeffBlack\n# a comment\nadult porn # aliases\n")
	writeFile(t, filepath.Join(root, "ads", "expressions"), "") // empty still counts
	writeFile(t, filepath.Join(root, "notes", "readme.txt"), "not a category\n")
	writeFile(t, filepath.Join(root, ".git", "domains"), "hidden.example\n")
	writeFile(t, filepath.Join(root, "file.txt"), "x\n")
	if err := os.MkdirAll(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "weird", "domains"), 0o755); err != nil { // a directory, not a list
		t.Fatal(err)
	}
	symlink(t, "adult", filepath.Join(root, "porn")) // alias inside: followed
	symlink(t, out, filepath.Join(root, "escape"))   // outside: ignored
	symlink(t, ".", filepath.Join(root, "self"))     // the root itself: ignored
	symlink(t, filepath.Join(root, "nowhere"), filepath.Join(root, "dangling"))
	if err := os.MkdirAll(filepath.Join(root, "linkin"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../adult/domains", filepath.Join(root, "linkin", "domains")) // inside: used
	if err := os.MkdirAll(filepath.Join(root, "linkout"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, filepath.Join(out, "domains"), filepath.Join(root, "linkout", "domains")) // outside: not used

	cats, err := lists.ReadSquidGuardDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cats {
		names = append(names, c.Name)
	}
	if want := []string{"ads", "adult", "linkin", "porn"}; !slices.Equal(names, want) {
		t.Fatalf("categories = %v, want %v", names, want)
	}
	adult := cats[1]
	want := lists.Category{
		Name:    "adult",
		Dir:     filepath.Join(root, "adult"),
		Domains: filepath.Join(root, "adult", "domains"),
		URLs:    filepath.Join(root, "adult", "urls"),
		Usage:   []string{"black", "adult", "porn"},
	}
	if adult.Name != want.Name || adult.Dir != want.Dir || adult.Domains != want.Domains ||
		adult.URLs != want.URLs || adult.Expressions != "" || !slices.Equal(adult.Usage, want.Usage) {
		t.Errorf("adult = %+v, want %+v", adult, want)
	}
	if c := cats[0]; c.Expressions != filepath.Join(root, "ads", "expressions") || c.Domains != "" || c.Usage != nil {
		t.Errorf("ads = %+v", c)
	}
	if c := cats[3]; c.Dir != filepath.Join(root, "porn") || c.Domains != filepath.Join(root, "porn", "domains") {
		t.Errorf("porn = %+v", c)
	}
}

func TestReadSquidGuardDirErrors(t *testing.T) {
	if _, err := lists.ReadSquidGuardDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing dir: no error")
	}
	empty := t.TempDir()
	writeFile(t, filepath.Join(empty, "x", "readme"), "")
	if _, err := lists.ReadSquidGuardDir(empty); err == nil {
		t.Error("dir without categories: no error")
	}
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, file, "")
	if _, err := lists.ReadSquidGuardDir(file); err == nil {
		t.Error("a file: no error")
	}
}
