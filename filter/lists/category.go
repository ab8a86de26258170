package lists

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Category is one squidGuard category folder. The zero Category has no
// lists.
type Category struct {
	Name string // folder name, e.g. "adult"
	Dir  string // dir joined with Name, as listed (a symlink is not resolved)

	// Full paths of the list files, "" where the folder has none. A file
	// that exists but is empty still counts.
	Domains, URLs, Expressions string

	// Usage holds the lower-cased words of the folder's usage file, without
	// "#" comments, in order; nil if there is none. By UT1 convention
	// "black" and/or "white" say whether the list is meant to block or to
	// allow; other words are aliases or descriptions.
	Usage []string
}

// maxUsageSize is how much of a usage file is read.
const maxUsageSize = 64 << 10

// ReadSquidGuardDir lists the categories under dir: every direct
// subdirectory holding at least one of the files domains, urls or
// expressions (regular files). Names starting with "." are ignored.
// Symbolic links (to category folders or to list files) are followed only
// if they resolve to somewhere inside dir. The result is sorted by name. It
// is an error if dir cannot be read or holds no category.
func ReadSquidGuardDir(dir string) ([]Category, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lists: reading category directory: %w", err)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err == nil {
		root, err = filepath.Abs(root)
	}
	if err != nil {
		return nil, fmt.Errorf("lists: reading category directory: %w", err)
	}
	var cats []Category
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		catDir := filepath.Join(dir, name)
		switch t := e.Type(); {
		case t.IsDir():
		case t&fs.ModeSymlink != 0:
			if fi, ok := inside(root, catDir); !ok || !fi.IsDir() {
				continue
			}
		default:
			continue
		}
		c := Category{
			Name:        name,
			Dir:         catDir,
			Domains:     listFile(root, catDir, "domains"),
			URLs:        listFile(root, catDir, "urls"),
			Expressions: listFile(root, catDir, "expressions"),
		}
		if c.Domains == "" && c.URLs == "" && c.Expressions == "" {
			continue
		}
		if u := listFile(root, catDir, "usage"); u != "" {
			c.Usage = readUsage(u)
		}
		cats = append(cats, c)
	}
	if len(cats) == 0 {
		return nil, fmt.Errorf("lists: no category folder (with domains, urls or expressions) in %s", dir)
	}
	slices.SortFunc(cats, func(a, b Category) int { return strings.Compare(a.Name, b.Name) })
	return cats, nil
}

// inside resolves the symbolic link at path and reports whether its target
// is strictly inside root (an absolute, resolved path), with the target's
// FileInfo.
func inside(root, path string) (fs.FileInfo, bool) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, false
	}
	if target, err = filepath.Abs(target); err != nil {
		return nil, false
	}
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return nil, false
	}
	fi, err := os.Stat(target)
	if err != nil {
		return nil, false
	}
	return fi, true
}

// listFile returns catDir/base if it is a regular file (or a link to one
// inside root), else "".
func listFile(root, catDir, base string) string {
	path := filepath.Join(catDir, base)
	fi, err := os.Lstat(path)
	if err != nil {
		return ""
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if fi, ok := inside(root, path); !ok || !fi.Mode().IsRegular() {
			return ""
		}
		return path
	}
	if !fi.Mode().IsRegular() {
		return ""
	}
	return path
}

// readUsage returns the words of a usage file; nil if it cannot be read or
// has none.
func readUsage(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var words []string
	sc := bufio.NewScanner(io.LimitReader(f, maxUsageSize))
	for sc.Scan() {
		line, _, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "\ufeff"), "#")
		for _, w := range strings.Fields(line) {
			words = append(words, strings.ToLower(w))
		}
	}
	return words // a read error just ends the words
}
