package mirror_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docora/docora/internal/mirror"
)

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"README.md", true},
		{"docs/guide/intro.md", true},
		{"héllo wörld/日本語.txt", true},
		{" leading space", true},
		{"..hidden", true},
		{"a..b/c", true},
		{".gitignore", true},
		{".github/workflows/ci.yml", true},
		{"x/.gitmodules", true},
		{"a/git/b", true},
		{"...", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/../x", false},
		{"a/./x", false},
		{"./x", false},
		{"a/..", false},
		{"/etc/x", false},
		{"//x", false},
		{"a//b", false},
		{"a/", false},
		{"a\x00b", false},
		{"a\\b", false},
		{"..\\x", false},
		{"a\\..\\..\\x", false},
		{"C:\\x", false},
		{".git", false},
		{".git/config", false},
		{"sub/.git/hooks/pre-commit", false},
		{".GIT/config", false},
		{".Git", false},
		{".git./config", false},
		{".git /config", false},
		{"a\xffb", false},
	}
	for _, tt := range tests {
		err := mirror.CheckPath(tt.path)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, mirror.ErrUnsafePath) {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
		}
	}
}

// FuzzCheckPath: whatever CheckPath accepts stays inside the directory and out of .git.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../x", "/x", "a/../b", ".git/x", "a\\b", "a\x00", "C:x", "a/./b", ".Git./x"} {
		f.Add(s)
	}
	const dir = "/srv/mirror"
	f.Fuzz(func(t *testing.T, p string) {
		if mirror.CheckPath(p) != nil {
			return
		}
		joined := filepath.Join(dir, filepath.FromSlash(p))
		if !strings.HasPrefix(joined, dir+string(filepath.Separator)) {
			t.Fatalf("%q escapes: %s", p, joined)
		}
		if rel, err := filepath.Rel(dir, joined); err != nil || filepath.ToSlash(rel) != p {
			t.Fatalf("%q is not canonical: %q", p, rel)
		}
		if strings.ContainsAny(p, "\x00\\") || !filepath.IsLocal(p) {
			t.Fatalf("accepted %q", p)
		}
		for c := range strings.SplitSeq(p, "/") {
			if strings.EqualFold(strings.TrimRight(c, ". "), ".git") {
				t.Fatalf("accepted .git component in %q", p)
			}
		}
	})
}
