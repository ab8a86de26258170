package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencyDirection enforces the import rules of DESIGN.md on every
// package of the module, from the source (tests excluded).
func TestDependencyDirection(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	imports := moduleImports(t, root)
	if len(imports) < 3 {
		t.Fatalf("found only %d packages under %s", len(imports), root)
	}
	under := func(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }
	for pkg, imps := range imports {
		for _, imp := range imps {
			var bad string
			switch {
			case under(imp, "waygate/cmd") && !under(pkg, "waygate/cmd"):
				bad = "only cmd/waygate may import cmd packages"
			case under(imp, "waygate/webui") && !under(pkg, "waygate/cmd") && !under(pkg, "waygate/webui"):
				bad = "only cmd/waygate imports webui"
			case under(pkg, "waygate/filter") && under(imp, "waygate") && !under(imp, "waygate/filter"):
				bad = "filter imports nothing else from this module"
			case under(pkg, "waygate/audit") && under(imp, "waygate") && !under(imp, "waygate/audit"):
				bad = "audit imports nothing else from this module"
			case under(pkg, "waygate/proxy") && (under(imp, "waygate/reverse") || under(imp, "waygate/webui")):
				bad = "proxy must not import reverse or webui"
			case under(pkg, "waygate/reverse") && under(imp, "waygate/proxy") &&
				!under(imp, "waygate/proxy/upstream") && !under(imp, "waygate/proxy/httpcache"):
				bad = "reverse may use proxy/upstream and proxy/httpcache, never proxy"
			case under(imp, "github.com/elazarl/goproxy") && pkg != "waygate/proxy":
				bad = "only package proxy imports goproxy"
			case under(imp, "github.com/mattn/go-sqlite3") && pkg != "waygate/audit/sqlite":
				bad = "only audit/sqlite imports go-sqlite3"
			case under(pkg, "waygate/webui") && under(imp, "waygate") && !under(imp, "waygate/webui") && imp != "waygate/audit":
				bad = "webui talks to the rest through its own interfaces; of this module it uses only audit's types"
			case under(imp, "github.com/gin-gonic/gin") && !under(pkg, "waygate/webui"):
				bad = "only webui imports gin"
			}
			if bad != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, bad)
			}
		}
	}
}

// moduleImports maps each package path of the module to the imports of its
// non-test files.
func moduleImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		pkg := path.Join("waygate", filepath.ToSlash(rel))
		for _, imp := range f.Imports {
			v, _ := strconv.Unquote(imp.Path.Value)
			out[pkg] = append(out[pkg], v)
		}
		if _, ok := out[pkg]; !ok {
			out[pkg] = nil
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}
