package config_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"waygate/cmd/waygate/internal/config"
)

func TestZZTiming(t *testing.T) {
	dir := os.Getenv("FUZZDIR")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		// format: go test fuzz v1\n[]byte("...")
		lines := string(b)
		i := len("go test fuzz v1\n[]byte(")
		s, err := strconv.Unquote(lines[i : len(lines)-2])
		if err != nil {
			t.Log(f, err)
			continue
		}
		start := time.Now()
		done := make(chan struct{})
		go func() { config.Parse("x", []byte(s)); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Errorf("%s hangs: %q", f, s)
			continue
		}
		t.Logf("%v %q", time.Since(start), s)
	}
}
