package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func runCLI(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"good.yaml", "schema_version: 1\nproxy:\n  listen: \"127.0.0.1:3128\"\n", 0, "ok"},
		{"unknown.yaml", "schema_version: 1\nproxy:\n  listen: \":3128\"\n  colour: blue\n", 1, "unknown.yaml:4"},
		{"cidr.yaml", "schema_version: 1\nproxy:\n  allow_clients: [10.0.0.0/33]\n", 1, "cidr.yaml:3"},
		{"schema.yaml", "proxy:\n  listen: \":3128\"\n", 1, "schema_version"},
		{"ca.yaml", "schema_version: 1\nproxy:\n  extra_ca_files: [/nonexistent/ca.pem]\n", 1, "extra_ca_files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI("", "check", "-config", write(tt.name, tt.body))
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d (want %d), output %q, want it to contain %q", code, tt.code, out+errOut, tt.want)
			}
		})
	}
	if code, _, errOut := runCLI("", "check", "-config", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCLI("", "check"); code != 2 {
		t.Errorf("check without -config: exit %d, want 2", code)
	}
}

func TestPasswd(t *testing.T) {
	code, out, errOut := runCLI("correct horse\n", "passwd")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	hash := strings.TrimSpace(out)
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")); err != nil {
		t.Fatalf("printed hash does not verify: %v", err)
	}
	if code, _, _ := runCLI("\n", "passwd"); code != 1 {
		t.Errorf("empty password accepted")
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCLI("", "version"); code != 0 || !strings.HasPrefix(out, "waygate ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := runCLI("", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, out, _ := runCLI("", "defaults"); code != 0 || !strings.Contains(out, "schema_version: 1") {
		t.Errorf("defaults: %d", code)
	}
}
