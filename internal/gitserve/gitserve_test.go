package gitserve_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/internal/gitserve"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/netguard"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return netguard.WithPolicy(ctx, netguard.Policy{AllowPrivate: true})
}

// serve serves the bare repository of repo (made without a gittest server) with a Handler.
func serve(t *testing.T, repo *gittest.Repo) *httptest.Server {
	root := strings.TrimSuffix(repo.BareDir(), filepath.FromSlash(repo.Name()))
	srv := httptest.NewServer(gitserve.NewHandler(root))
	t.Cleanup(srv.Close)
	return srv
}

func readAll(t *testing.T, ctx context.Context, c *gitsource.Cache, key, commit string) map[string]string {
	t.Helper()
	entries, err := c.Tree(ctx, key, commit)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		rc, _, err := c.ReadBlob(ctx, key, e.Blob)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Path] = string(b)
	}
	return out
}

func TestCloneThroughGitsource(t *testing.T) {
	ctx := testCtx(t)
	repo := gittest.NewRepo(t, nil, "owner/demo.git", gittest.WithBranch("trunk"))
	srv := serve(t, repo)
	c := gitsource.Open(t.TempDir())

	for _, url := range []string{srv.URL + "/owner/demo.git", srv.URL + "/owner/demo"} {
		if _, err := c.RemoteHead(ctx, url, "trunk", gitsource.Credentials{}); !errors.Is(err, gitsource.ErrEmptyRepository) {
			t.Fatalf("RemoteHead of an empty repository: %v", err)
		}
	}
	url := srv.URL + "/owner/demo"

	repo.WriteFile("README.md", "hello\n")
	repo.WriteFile("docs/a.md", "a1\n")
	first := repo.Commit("one")
	repo.Push()
	repo.WriteFile("docs/a.md", "a2\n")
	repo.WriteFile("big.bin", strings.Repeat("0123456789", 300_000))
	second := repo.Commit("two")
	repo.Push()

	refs, err := gitsource.ListRefs(ctx, url, gitsource.Credentials{})
	if err != nil || refs.Head != "trunk" || refs.Branches["trunk"] != second {
		t.Fatalf("ListRefs = %+v, %v", refs, err)
	}
	steps := []struct {
		name  string
		edit  func() string
		files map[string]string
	}{
		{"clone", func() string { return second },
			map[string]string{"README.md": "hello\n", "docs/a.md": "a2\n", "big.bin": strings.Repeat("0123456789", 300_000)}},
		{"new commit", func() string {
			repo.Remove("big.bin")
			repo.WriteFile("docs/b.md", "b\n")
			c := repo.Commit("three")
			repo.Push()
			return c
		}, map[string]string{"README.md": "hello\n", "docs/a.md": "a2\n", "docs/b.md": "b\n"}},
		{"force-push backwards", func() string {
			repo.Reset(first)
			repo.ForcePush()
			return first
		}, map[string]string{"README.md": "hello\n", "docs/a.md": "a1\n"}},
		{"unrelated history, old objects gone", func() string {
			repo.Orphan()
			repo.WriteFile("new.txt", "new\n")
			c := repo.Commit("root")
			repo.ForcePush()
			repo.GC()
			return c
		}, map[string]string{"new.txt": "new\n"}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			want := step.edit()
			if head, err := c.RemoteHead(ctx, url, "trunk", gitsource.Credentials{}); err != nil || head != want {
				t.Fatalf("RemoteHead = %s, %v; want %s", head, err, want)
			}
			got, err := c.Fetch(ctx, "repo_demo", url, "trunk", gitsource.Credentials{})
			if err != nil || got != want {
				t.Fatalf("Fetch = %s, %v; want %s", got, err, want)
			}
			files := readAll(t, ctx, c, "repo_demo", got)
			if len(files) != len(step.files) {
				t.Errorf("files: %d, want %d", len(files), len(step.files))
			}
			for p, content := range step.files {
				if files[p] != content {
					t.Errorf("%s: %d bytes, want %d", p, len(files[p]), len(content))
				}
			}
		})
	}
}

func TestHandlerRequests(t *testing.T) {
	repo := gittest.NewRepo(t, nil, "owner/demo.git")
	repo.Commit("c")
	repo.Push()
	srv := serve(t, repo)

	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/owner/demo.git/info/refs?service=git-upload-pack", 200},
		{"GET", "/owner/demo/info/refs?service=git-upload-pack", 200},
		{"GET", "/owner/nope.git/info/refs?service=git-upload-pack", 404},
		{"GET", "/owner/../../etc/info/refs?service=git-upload-pack", 404},
		{"GET", "/owner/demo.git/info/refs", 403},
		{"GET", "/owner/demo.git/info/refs?service=git-receive-pack", 403},
		{"POST", "/owner/demo.git/git-receive-pack", 403},
		{"GET", "/owner/demo.git/git-upload-pack", 405},
		{"POST", "/owner/demo.git/git-upload-pack", 400},
		{"GET", "/owner/demo.git/HEAD", 404},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(""))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
	}
}

// TestGitClient: the git binary can clone from the handler, and fetch from it again.
func TestGitClient(t *testing.T) {
	repo := gittest.NewRepo(t, nil, "demo.git")
	repo.WriteFile("a.txt", "a\n")
	repo.Commit("one")
	repo.Push()
	srv := serve(t, repo)

	dir := filepath.Join(t.TempDir(), "clone")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_TERMINAL_PROMPT=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("clone", "-q", srv.URL+"/demo.git", dir)
	if b, err := os.ReadFile(filepath.Join(dir, "a.txt")); err != nil || string(b) != "a\n" {
		t.Fatalf("cloned a.txt = %q, %v", b, err)
	}
	repo.WriteFile("a.txt", "b\n")
	second := repo.Commit("two")
	repo.Push()
	git("-C", dir, "pull", "-q", "--ff-only")
	if head := strings.TrimSpace(git("-C", dir, "rev-parse", "HEAD")); head != second {
		t.Fatalf("after pull: HEAD %s, want %s", head, second)
	}
}
