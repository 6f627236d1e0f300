// Package changes decides what an app must receive: which files of a commit's tree are
// delivered (ignore rules, include/exclude patterns), what their content facts are (sha256,
// size, text or binary, each blob hashed once ever), and how the tree differs from what the app
// has confirmed (SPEC §4).
package changes

import (
	"bufio"
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"github.com/docora/docora/internal/gitsource"
)

// IgnoreFile is the name of the ignore file read from the repository root.
const IgnoreFile = ".docoraignore"

// Filter decides which paths of a tree are delivered.
type Filter struct {
	ignore  gitignore.Matcher // .docoraignore; nil: none
	include gitignore.Matcher // nil: everything is included
	exclude gitignore.Matcher // nil: nothing is excluded
}

// NewFilter builds a filter from the content of .docoraignore (nil when absent) and the link's
// include and exclude patterns, all in gitignore syntax.
func NewFilter(docoraignore []byte, include, exclude []string) *Filter {
	f := &Filter{}
	if len(docoraignore) > 0 {
		var lines []string
		sc := bufio.NewScanner(bytes.NewReader(docoraignore))
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.ignore = matcher(lines)
	}
	if len(include) > 0 {
		f.include = matcher(include)
	}
	if len(exclude) > 0 {
		f.exclude = matcher(exclude)
	}
	return f
}

func matcher(lines []string) gitignore.Matcher {
	var ps []gitignore.Pattern
	for _, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(l, nil))
	}
	if len(ps) == 0 {
		return nil
	}
	return gitignore.NewMatcher(ps)
}

// matches reports whether the file at parts, or one of its parent directories, matches m. A
// file below a matched directory matches, as in git: it cannot be re-included.
func matches(m gitignore.Matcher, parts []string) bool {
	for i := 1; i < len(parts); i++ {
		if m.Match(parts[:i], true) {
			return true
		}
	}
	return m.Match(parts, false)
}

// Delivered reports whether the file at path is delivered.
func (f *Filter) Delivered(path string) bool {
	parts := strings.Split(path, "/")
	if f.ignore != nil && matches(f.ignore, parts) {
		return false
	}
	if f.include != nil && !matches(f.include, parts) {
		return false
	}
	if f.exclude != nil && matches(f.exclude, parts) {
		return false
	}
	return true
}

// Selection is the part of a tree that is delivered.
type Selection struct {
	Files   []gitsource.Entry
	Invalid []string // paths skipped because they are not valid UTF-8 (quoted for logs)
}

// Select keeps the regular and executable files that the filter delivers; symlinks,
// submodules and paths that are not valid UTF-8 are skipped.
func Select(entries []gitsource.Entry, f *Filter) Selection {
	var s Selection
	for _, e := range entries {
		if e.Kind != gitsource.KindFile && e.Kind != gitsource.KindExecutable {
			continue
		}
		if !utf8.ValidString(e.Path) {
			s.Invalid = append(s.Invalid, e.Path)
			continue
		}
		if f.Delivered(e.Path) {
			s.Files = append(s.Files, e)
		}
	}
	return s
}

// IgnoreBlob returns the blob id of the root .docoraignore among entries, "" when there is none.
func IgnoreBlob(entries []gitsource.Entry) string {
	for _, e := range entries {
		if e.Path == IgnoreFile && (e.Kind == gitsource.KindFile || e.Kind == gitsource.KindExecutable) {
			return e.Blob
		}
	}
	return ""
}
