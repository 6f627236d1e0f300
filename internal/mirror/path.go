package mirror

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// ErrUnsafePath is returned (wrapped) by CheckPath for a path the mirror refuses to write.
var ErrUnsafePath = errors.New("unsafe path")

// CheckPath accepts a repository path only when writing it under the mirror directory cannot
// touch anything outside that directory or inside a .git directory: a relative, slash-separated
// path of non-empty components, none of them "." or "..", ".git" (in any letter case, or with
// the trailing dots and spaces Windows ignores), and no NUL or backslash anywhere. Git itself
// never produces such paths; a webhook that carries one is refused before anything is written.
func CheckPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrUnsafePath)
	case !utf8.ValidString(p):
		return fmt.Errorf("%w: not UTF-8", ErrUnsafePath)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("%w: contains NUL", ErrUnsafePath)
	case strings.IndexByte(p, '\\') >= 0:
		return fmt.Errorf("%w: contains a backslash", ErrUnsafePath)
	case p[0] == '/':
		return fmt.Errorf("%w: absolute", ErrUnsafePath)
	}
	for c := range strings.SplitSeq(p, "/") {
		switch {
		case c == "":
			return fmt.Errorf("%w: empty path component", ErrUnsafePath)
		case c == "." || c == "..":
			return fmt.Errorf("%w: %q component", ErrUnsafePath, c)
		case strings.EqualFold(strings.TrimRight(c, ". "), ".git"):
			return fmt.Errorf("%w: .git component", ErrUnsafePath)
		}
	}
	// On Windows this also refuses drive letters and reserved names such as NUL or COM1.
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return fmt.Errorf("%w: not a local path", ErrUnsafePath)
	}
	return nil
}
