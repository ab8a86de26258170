package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A watched file counts as changed when its size or modification time
// differs from the stamp taken when the configuration was loaded, or when
// it appears or disappears; a file left alone does not.
func TestFilesChanged(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.list")
	write := func(p, text string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "one")
	write(b, "x\n")
	g := &gateway{}
	if !g.filesChanged() {
		t.Error("without stamps, every event must count as a change")
	}
	g.stamps = stampFiles([]string{a, b})
	if g.filesChanged() {
		t.Error("nothing changed, but filesChanged says so")
	}
	tests := []struct {
		name   string
		change func()
	}{
		{"rewritten with the same size", func() {
			write(a, "two")
			future := time.Now().Add(time.Hour) // a different mtime, whatever the clock's resolution
			os.Chtimes(a, future, future)
		}},
		{"grown", func() { write(b, "x\ny\n") }},
		{"removed", func() { os.Remove(b) }},
	}
	for _, tt := range tests {
		g.stamps = stampFiles([]string{a, b})
		tt.change()
		if !g.filesChanged() {
			t.Errorf("%s: not seen as a change", tt.name)
		}
	}
}
