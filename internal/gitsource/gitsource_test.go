package gitsource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/netguard"
)

// testCtx allows loopback remotes and bounds the test in time.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return netguard.WithPolicy(ctx, netguard.Policy{AllowPrivate: true})
}

type want struct {
	content string // file content, symlink target, or submodule commit
	kind    Kind
}

// checkTree compares the cache's tree of commit with files, and reads every blob back.
func checkTree(t *testing.T, ctx context.Context, c *Cache, key, commit string, files map[string]want) {
	t.Helper()
	entries, err := c.Tree(ctx, key, commit)
	if err != nil {
		t.Fatalf("Tree: %v", err)
	}
	var got, exp []string
	for _, e := range entries {
		got = append(got, e.Path+" "+e.Kind.String())
	}
	for p, w := range files {
		exp = append(exp, p+" "+w.kind.String())
	}
	sort.Strings(exp)
	if !sort.SliceIsSorted(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path }) {
		t.Errorf("Tree is not sorted by path: %q", got)
	}
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Fatalf("Tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
	for _, e := range entries {
		w := files[e.Path]
		if e.Kind == KindSubmodule {
			if e.Blob != w.content {
				t.Errorf("submodule %s: commit %s, want %s", e.Path, e.Blob, w.content)
			}
			continue
		}
		rc, size, err := c.ReadBlob(ctx, key, e.Blob)
		if err != nil {
			t.Fatalf("ReadBlob %s: %v", e.Path, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", e.Path, err)
		}
		if size != int64(len(w.content)) || string(b) != w.content {
			t.Errorf("%s: got %d bytes (size %d), want %d bytes", e.Path, len(b), size, len(w.content))
		}
	}
}

func TestHistory(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/history.git", gittest.WithBranch("trunk"))
	c := Open(t.TempDir())
	const key = "repo_0123456789abcdef01234567"

	big := make([]byte, 3<<20) // above the streaming threshold, incompressible
	for i := range big {
		big[i] = byte(rand.Uint32())
	}
	files := map[string]want{}
	write := func(p, content string) {
		repo.WriteFile(p, content)
		files[p] = want{content, KindFile}
	}
	remove := func(p string) {
		repo.Remove(p)
		delete(files, p)
	}
	var first, second, parent string
	var firstFiles, secondFiles, parentFiles map[string]want
	clone := func(m map[string]want) map[string]want {
		out := map[string]want{}
		for k, v := range m {
			out[k] = v
		}
		return out
	}

	steps := []struct {
		name string
		edit func()
		push func()
	}{
		{"create", func() {
			write("README.md", "# hello\n")
			write("docs/guide.md", "guide v1\n")
			write("with space/file name.txt", "spaces\n")
			write("ünïcödé/日本語.md", "こんにちは\n")
			write("empty.txt", "")
			write("big.bin", string(big))
			write("run.sh", "#!/bin/sh\necho hi\n")
			repo.Chmod("run.sh", true)
			files["run.sh"] = want{"#!/bin/sh\necho hi\n", KindExecutable}
			repo.Symlink("link", "README.md")
			files["link"] = want{"README.md", KindSymlink}
			const sub = "1234567890abcdef1234567890abcdef12345678"
			repo.AddSubmodule("vendor/lib", sub)
			files["vendor/lib"] = want{sub, KindSubmodule}
		}, repo.Push},
		{"update", func() {
			write("docs/guide.md", "guide v2\n")
			repo.Chmod("run.sh", false)
			files["run.sh"] = want{files["run.sh"].content, KindFile}
			big[0]++
			write("big.bin", string(big))
		}, repo.Push},
		{"delete", func() {
			remove("docs/guide.md")
			remove("link")
			write("docs/other.md", "other\n")
		}, repo.Push},
		{"force-push backwards", func() {
			repo.Reset(first)
			files = clone(firstFiles)
		}, repo.ForcePush},
		{"forwards again", func() {
			repo.Reset(second)
			files = clone(secondFiles)
		}, repo.ForcePush},
		{"two commits at once", func() {
			write("docs/other.md", "other v2\n")
			parent = repo.Commit("parent never fetched")
			parentFiles = clone(files)
			write("docs/other.md", "other v3\n")
		}, repo.Push},
		{"force-push backwards to a commit never fetched", func() {
			repo.Reset(parent)
			files = clone(parentFiles)
		}, repo.ForcePush},
		{"force-push unrelated history", func() {
			repo.Orphan()
			files = map[string]want{}
			write("fresh.txt", "new root\n")
		}, repo.ForcePush},
		{"unrelated history after gc", func() {
			repo.Orphan()
			files = map[string]want{}
			write("again.txt", "another root\n")
		}, func() { repo.ForcePush(); repo.GC() }},
		{"empty tree", func() {
			for p := range files {
				remove(p)
			}
		}, repo.Push},
	}
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			step.edit()
			var commit string
			if strings.HasPrefix(step.name, "force-push backwards") || step.name == "forwards again" {
				commit = repo.Head()
			} else {
				commit = repo.Commit(step.name)
			}
			step.push()
			switch i {
			case 0:
				first, firstFiles = commit, clone(files)
			case 1:
				second, secondFiles = commit, clone(files)
			}

			head, err := c.RemoteHead(ctx, repo.URL(), "trunk", Credentials{})
			if err != nil || head != commit {
				t.Fatalf("RemoteHead = %s, %v; want %s", head, err, commit)
			}
			got, err := c.Fetch(ctx, key, repo.URL(), "trunk", Credentials{})
			if err != nil || got != commit {
				t.Fatalf("Fetch = %s, %v; want %s", got, err, commit)
			}
			checkTree(t, ctx, c, key, commit, files)
		})
	}
	t.Logf("rebuilds of the cache: %d", c.rebuilds.Load())
}

func TestEmptyRepository(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/empty.git", gittest.WithBranch("trunk"))
	c := Open(t.TempDir())

	refs, err := ListRefs(ctx, repo.URL(), Credentials{})
	if err != nil || refs.Head != "" || len(refs.Branches) != 0 {
		t.Fatalf("ListRefs = %+v, %v; want empty", refs, err)
	}
	if _, err := c.RemoteHead(ctx, repo.URL(), "trunk", Credentials{}); !errors.Is(err, ErrEmptyRepository) {
		t.Fatalf("RemoteHead: %v, want ErrEmptyRepository", err)
	}
	if _, err := c.Fetch(ctx, "repo_empty", repo.URL(), "trunk", Credentials{}); !errors.Is(err, ErrEmptyRepository) {
		t.Fatalf("Fetch: %v, want ErrEmptyRepository", err)
	}

	// The first commit arrives.
	repo.WriteFile("a.txt", "a")
	commit := repo.Commit("first")
	repo.Push()
	got, err := c.Fetch(ctx, "repo_empty", repo.URL(), "trunk", Credentials{})
	if err != nil || got != commit {
		t.Fatalf("Fetch = %s, %v; want %s", got, err, commit)
	}
	checkTree(t, ctx, c, "repo_empty", commit, map[string]want{"a.txt": {"a", KindFile}})
}

func TestListRefs(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/refs.git", gittest.WithBranch("trunk"))
	c1 := repo.Commit("one")
	repo.Push()
	c2 := repo.Commit("two")
	repo.PushBranch("feature/x")

	refs, err := ListRefs(ctx, repo.URL(), Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if refs.Head != "trunk" || len(refs.Branches) != 2 || refs.Branches["trunk"] != c1 || refs.Branches["feature/x"] != c2 {
		t.Fatalf("ListRefs = %+v", refs)
	}
	repo.SetRemoteHEAD("feature/x")
	if refs, err = ListRefs(ctx, repo.URL(), Credentials{}); err != nil || refs.Head != "feature/x" {
		t.Fatalf("after SetRemoteHEAD: %+v, %v", refs, err)
	}

	c := Open(t.TempDir())
	if _, err := c.RemoteHead(ctx, repo.URL(), "nope", Credentials{}); !errors.Is(err, ErrBranchNotFound) {
		t.Errorf("RemoteHead of a missing branch: %v", err)
	}
	if _, err := c.Fetch(ctx, "repo_x", repo.URL(), "nope", Credentials{}); !errors.Is(err, ErrBranchNotFound) {
		t.Errorf("Fetch of a missing branch: %v", err)
	}
	if got, err := c.Fetch(ctx, "repo_x", repo.URL(), "feature/x", Credentials{}); err != nil || got != c2 {
		t.Errorf("Fetch feature/x = %s, %v", got, err)
	}
}

func TestRemoteErrors(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	const token = "ghp_s3cr3tT0kenValue"
	repo := gittest.NewRepo(t, srv, "owner/private.git")
	repo.WriteFile("secret.txt", "s")
	commit := repo.Commit("c")
	repo.Push()
	srv.RequireToken("owner/private.git", token)
	down := srv.URL("owner/down.git")
	gittest.NewRepo(t, srv, "owner/down.git")
	srv.Fail("owner/down.git", 503)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/owner/repo.git"
	ln.Close()

	withUser := strings.Replace(repo.URL(), "http://", "http://x-access-token:"+token+"x@", 1)
	tests := []struct {
		name string
		url  string
		cred Credentials
		want error
	}{
		{"right token", repo.URL(), Credentials{Token: token}, nil},
		{"token in URL", strings.Replace(repo.URL(), "http://", "http://x-access-token:"+token+"@", 1), Credentials{}, nil},
		{"wrong token", repo.URL(), Credentials{Token: token + "x"}, ErrAuthentication},
		{"wrong token in URL", withUser, Credentials{}, ErrAuthentication},
		{"missing token", repo.URL(), Credentials{}, ErrAuthentication},
		{"unknown repository", srv.URL("owner/nope.git"), Credentials{}, ErrNotFound},
		{"unknown repository with token", srv.URL("owner/nope.git"), Credentials{Token: token}, ErrNotFound},
		{"server error", down, Credentials{}, ErrUnreachable},
		{"closed port", closedURL, Credentials{Token: token}, ErrUnreachable},
		{"ssh", "ssh://git@example.com/o/r.git", Credentials{}, ErrUnsupportedURL},
		{"scp-like", "git@example.com:o/r.git", Credentials{}, ErrUnsupportedURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Open(t.TempDir())
			check := func(op string, got string, err error) {
				t.Helper()
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Errorf("%s: %v, want %v", op, err, tt.want)
				}
				if err != nil && strings.Contains(err.Error(), token) {
					t.Errorf("%s: token in error text: %v", op, err)
				}
				if err != nil && strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("%s: part of the token in error text: %v", op, err)
				}
				if err == nil && got != commit {
					t.Errorf("%s = %s, want %s", op, got, commit)
				}
				if err != nil {
					t.Logf("%s: %v", op, err)
				}
			}
			refs, err := ListRefs(ctx, tt.url, tt.cred)
			check("ListRefs", refs.Branches["main"], err)
			head, err := c.RemoteHead(ctx, tt.url, "main", tt.cred)
			check("RemoteHead", head, err)
			got, err := c.Fetch(ctx, "repo_err", tt.url, "main", tt.cred)
			check("Fetch", got, err)

			// The token is never written to disk.
			filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte("127.0.0.1")) {
					t.Errorf("%s contains the token or the remote URL:\n%s", p, b)
				}
				return nil
			})
			if tt.want == nil {
				if _, err := os.Stat(filepath.Join(c.root, "repo_err.git", "config")); err != nil {
					t.Errorf("no config file in the cache: %v", err)
				}
			}
		})
	}
}

func TestGuard(t *testing.T) {
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/guarded.git")
	commit := repo.Commit("c")
	repo.Push()
	c := Open(t.TempDir())

	allowed := testCtx(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	strict := netguard.WithPolicy(ctx, netguard.Policy{})

	// Allowed first, so that a pooled loopback connection exists when the strict call is made.
	if head, err := c.RemoteHead(allowed, repo.URL(), "main", Credentials{}); err != nil || head != commit {
		t.Fatalf("allowed RemoteHead = %s, %v", head, err)
	}
	before := srv.InfoRefs()
	for name, f := range map[string]func() error{
		"ListRefs":   func() error { _, err := ListRefs(strict, repo.URL(), Credentials{}); return err },
		"RemoteHead": func() error { _, err := c.RemoteHead(strict, repo.URL(), "main", Credentials{}); return err },
		"Fetch":      func() error { _, err := c.Fetch(strict, "repo_g", repo.URL(), "main", Credentials{}); return err },
		"file URL":   func() error { _, err := ListRefs(strict, "file://"+repo.BareDir(), Credentials{}); return err },
		"local path": func() error { _, err := c.Fetch(strict, "repo_g", repo.BareDir(), "main", Credentials{}); return err },
		"no policy":  func() error { _, err := ListRefs(ctx, repo.URL(), Credentials{}); return err },
	} {
		err := f()
		if !errors.Is(err, ErrUnreachable) || !errors.Is(err, netguard.ErrForbiddenAddress) ||
			!strings.Contains(err.Error(), "network guard") {
			t.Errorf("%s without AllowPrivate: %v; want a guard refusal", name, err)
		}
	}
	if n := srv.InfoRefs(); n != before {
		t.Errorf("the server received %d requests despite the guard", n-before)
	}
	if got, err := c.Fetch(allowed, "repo_g", repo.URL(), "main", Credentials{}); err != nil || got != commit {
		t.Fatalf("allowed Fetch = %s, %v", got, err)
	}
}

func TestRemoteHeadDoesNotFetch(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/count.git")
	repo.WriteFile("a", "a")
	repo.Commit("c")
	repo.Push()
	c := Open(t.TempDir())

	if _, err := c.RemoteHead(ctx, repo.URL(), "main", Credentials{}); err != nil {
		t.Fatal(err)
	}
	if up, refs := srv.UploadPacks(), srv.InfoRefs(); up != 0 || refs != 1 {
		t.Fatalf("RemoteHead made %d upload-packs and %d info/refs requests; want 0 and 1", up, refs)
	}
	if _, err := c.Fetch(ctx, "repo_c", repo.URL(), "main", Credentials{}); err != nil {
		t.Fatal(err)
	}
	if up := srv.UploadPacks(); up != 1 {
		t.Fatalf("Fetch made %d upload-packs, want 1", up)
	}
	// Nothing new: no pack is requested.
	if _, err := c.Fetch(ctx, "repo_c", repo.URL(), "main", Credentials{}); err != nil {
		t.Fatal(err)
	}
	if up := srv.UploadPacks(); up != 1 {
		t.Fatalf("an up-to-date Fetch made %d upload-packs, want 1 in total", up)
	}
}

// TestLocalRemotes reads file:// URLs and plain paths, bare and not, without a git binary.
func TestLocalRemotes(t *testing.T) {
	ctx := testCtx(t)
	repo := gittest.NewRepo(t, nil, "owner/local.git", gittest.WithBranch("trunk"))
	repo.WriteFile("dir/a.txt", "a\n")
	c1 := repo.Commit("one")
	repo.Push()

	t.Setenv("PATH", t.TempDir()) // no git binary from here on
	c := Open(t.TempDir())
	for i, url := range []string{repo.URL(), repo.BareDir(), repo.Dir(), "file://" + repo.Dir()} {
		refs, err := ListRefs(ctx, url, Credentials{})
		if err != nil || refs.Head != "trunk" || refs.Branches["trunk"] != c1 {
			t.Fatalf("ListRefs(%s) = %+v, %v", url, refs, err)
		}
		key := "repo_local" + string(rune('a'+i))
		got, err := c.Fetch(ctx, key, url, "trunk", Credentials{})
		if err != nil || got != c1 {
			t.Fatalf("Fetch(%s) = %s, %v", url, got, err)
		}
		checkTree(t, ctx, c, key, c1, map[string]want{"dir/a.txt": {"a\n", KindFile}})
	}
	if _, err := ListRefs(ctx, filepath.Join(t.TempDir(), "missing"), Credentials{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing local repository: %v, want ErrNotFound", err)
	}
}

func TestLocalRemoteHistory(t *testing.T) {
	ctx := testCtx(t)
	repo := gittest.NewRepo(t, nil, "owner/local.git")
	c := Open(t.TempDir())
	if _, err := c.Fetch(ctx, "repo_l", repo.URL(), "main", Credentials{}); !errors.Is(err, ErrEmptyRepository) {
		t.Fatalf("Fetch of an empty local repository: %v", err)
	}
	repo.WriteFile("a.txt", "1")
	first := repo.Commit("one")
	repo.Push()
	repo.WriteFile("a.txt", "2")
	repo.Commit("two")
	repo.Push()
	repo.Reset(first)
	repo.ForcePush()
	repo.Orphan()
	repo.WriteFile("b.txt", "b")
	unrelated := repo.Commit("unrelated")
	repo.ForcePush()
	repo.GC()
	for _, step := range []struct {
		commit string
		files  map[string]want
	}{
		{unrelated, map[string]want{"b.txt": {"b", KindFile}}},
	} {
		got, err := c.Fetch(ctx, "repo_l", repo.URL(), "main", Credentials{})
		if err != nil || got != step.commit {
			t.Fatalf("Fetch = %s, %v; want %s", got, err, step.commit)
		}
		checkTree(t, ctx, c, "repo_l", step.commit, step.files)
	}
}

func TestCompaction(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/packs.git")
	c := Open(t.TempDir())
	// A first fetch adds a pack, an incremental one loose objects (a commit, a tree, a blob).
	c.maxPacks, c.maxLoose = 2, 5
	for i := range 5 {
		repo.WriteFile("f.txt", strings.Repeat("x", i+1))
		commit := repo.Commit("c")
		repo.Push()
		got, err := c.Fetch(ctx, "repo_p", repo.URL(), "main", Credentials{})
		if err != nil || got != commit {
			t.Fatalf("Fetch %d = %s, %v", i, got, err)
		}
		checkTree(t, ctx, c, "repo_p", commit, map[string]want{"f.txt": {strings.Repeat("x", i+1), KindFile}})
		packs, _ := filepath.Glob(filepath.Join(c.root, "repo_p.git", "objects", "pack", "*.pack"))
		if len(packs) > c.maxPacks+1 {
			t.Fatalf("%d pack files after fetch %d", len(packs), i)
		}
		if n := looseObjects(filepath.Join(c.root, "repo_p.git")); n > c.maxLoose {
			t.Fatalf("%d loose objects after fetch %d", n, i)
		}
	}
	if c.rebuilds.Load() == 0 {
		t.Error("the cache was never compacted")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(c.root, ".*")); len(leftovers) != 0 {
		t.Errorf("temporary directories left: %v", leftovers)
	}
}

// TestRecoversDamagedCache: a damaged cache is rebuilt by a fetch, at the latest by the one
// after a read failed.
func TestRecoversDamagedCache(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/damaged.git")
	repo.WriteFile("keep/k.txt", "unchanged")
	repo.WriteFile("a.txt", "a")
	repo.Commit("one")
	repo.Push()
	files := map[string]want{"a.txt": {"a", KindFile}, "keep/k.txt": {"unchanged", KindFile}}
	cacheDir := func(c *Cache, p string) []string {
		m, _ := filepath.Glob(filepath.Join(c.root, "repo_d.git", p))
		return m
	}
	tests := []struct {
		name      string
		damage    func(c *Cache)
		readFails bool
	}{
		{"garbage shallow file", func(c *Cache) {
			os.WriteFile(cacheDir(c, "shallow")[0], []byte("garbage\n"), 0o644)
		}, false},
		{"garbage ref", func(c *Cache) {
			os.WriteFile(filepath.Join(c.root, "repo_d.git", "refs", "remotes", "origin", "main"), []byte("garbage\n"), 0o644)
		}, false},
		{"objects gone", func(c *Cache) {
			for _, p := range cacheDir(c, "objects/pack/*") {
				os.Remove(p)
			}
		}, false},
		{"truncated pack", func(c *Cache) {
			for _, p := range cacheDir(c, "objects/pack/*.pack") {
				os.Truncate(p, 40)
			}
		}, true},
		{"cache directory gone", func(c *Cache) {
			os.RemoveAll(filepath.Join(c.root, "repo_d.git"))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Open(t.TempDir())
			commit, err := c.Fetch(ctx, "repo_d", repo.URL(), "main", Credentials{})
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, ctx, c, "repo_d", commit, files)
			tt.damage(c)
			if tt.readFails {
				// The caller reads, and fails somewhere.
				entries, _ := c.Tree(ctx, "repo_d", commit)
				for _, e := range entries {
					if rc, _, err := c.ReadBlob(ctx, "repo_d", e.Blob); err == nil {
						rc.Close()
					}
				}
			}
			got, err := c.Fetch(ctx, "repo_d", repo.URL(), "main", Credentials{})
			if err != nil || got != commit {
				t.Fatalf("Fetch = %s, %v", got, err)
			}
			checkTree(t, ctx, c, "repo_d", commit, files)
			t.Logf("rebuilds: %d", c.rebuilds.Load())
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/busy.git")
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: streamed
	repo.WriteFile("big.txt", string(big))
	repo.WriteFile("small.txt", "small")
	commit := repo.Commit("c")
	repo.Push()
	c := Open(t.TempDir())
	if _, err := c.Fetch(ctx, "repo_b", repo.URL(), "main", Credentials{}); err != nil {
		t.Fatal(err)
	}
	entries, err := c.Tree(ctx, "repo_b", commit)
	if err != nil {
		t.Fatal(err)
	}
	// A reader opened before a rebuild of the cache keeps working.
	rc, _, err := c.ReadBlob(ctx, "repo_b", entries[0].Blob)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	c.maxPacks = 0 // every fetch rebuilds the cache directory
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 4 {
		wg.Go(func() {
			if _, err := c.Fetch(ctx, "repo_b", repo.URL(), "main", Credentials{}); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			for _, e := range entries {
				r, _, err := c.ReadBlob(ctx, "repo_b", e.Blob)
				if err != nil {
					errs <- err
					return
				}
				h := sha256.New()
				io.Copy(h, r)
				r.Close()
			}
			if _, err := c.Tree(ctx, "repo_b", commit); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c.rebuilds.Load() != 4 {
		t.Errorf("%d rebuilds, want 4", c.rebuilds.Load())
	}
	b, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(b, big) {
		t.Fatalf("reader opened before the rebuilds: %d bytes, %v", len(b), err)
	}
}

func TestCacheMisuse(t *testing.T) {
	ctx := testCtx(t)
	c := Open(t.TempDir())
	for _, key := range []string{"", "../x", "a/b", ".hidden", "a b"} {
		if _, err := c.Fetch(ctx, key, "https://example.com/r.git", "main", Credentials{}); err == nil {
			t.Errorf("Fetch with key %q: no error", key)
		}
		if err := c.Remove(key); err == nil {
			t.Errorf("Remove with key %q: no error", key)
		}
	}
	if _, err := c.Tree(ctx, "repo_none", strings.Repeat("a", 40)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Tree of a missing cache: %v", err)
	}
	if _, _, err := c.ReadBlob(ctx, "repo_none", "xyz"); err == nil {
		t.Error("ReadBlob with a bad id: no error")
	}
	if err := c.Remove("repo_none"); err != nil {
		t.Errorf("Remove of a missing cache: %v", err)
	}
}

func TestRemove(t *testing.T) {
	ctx := testCtx(t)
	repo := gittest.NewRepo(t, nil, "r.git")
	commit := repo.Commit("c")
	repo.Push()
	c := Open(t.TempDir())
	if _, err := c.Fetch(ctx, "repo_r", repo.URL(), "main", Credentials{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("repo_r"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c.root, "repo_r.git")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("cache still there: %v", err)
	}
	if _, err := c.Tree(ctx, "repo_r", commit); err == nil {
		t.Fatal("Tree after Remove: no error")
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		in      string
		secrets []string
		want    string
	}{
		{"fetch https://user:pa55@github.com/o/r: 401", nil, "fetch https://***@github.com/o/r: 401"},
		{"https://ghp_abc123@github.com/o/r", nil, "https://***@github.com/o/r"},
		{"HTTP://u:p@h/x and ssh://git@h/y", nil, "HTTP://***@h/x and ssh://***@h/y"},
		{"token ghp_abc123 refused", []string{"ghp_abc123"}, "token *** refused"},
		{"no secrets here: git@github.com:o/r.git", []string{"", "ab"}, "no secrets here: git@github.com:o/r.git"},
		{"mailto-like user@host stays", nil, "mailto-like user@host stays"},
	}
	for _, tt := range tests {
		if got := Scrub(tt.in, tt.secrets...); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkRemoteHead(b *testing.B) {
	ctx := testCtx(b)
	srv := gittest.NewServer(b)
	repo := gittest.NewRepo(b, srv, "owner/bench.git")
	repo.Commit("c")
	repo.Push()
	c := Open(b.TempDir())
	for b.Loop() {
		if _, err := c.RemoteHead(ctx, repo.URL(), "main", Credentials{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLockFile: the lock that keeps other processes out (flock works per open file, so two
// opens in one process exclude each other too).
func TestLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.lock")
	unlock, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: %v", err)
	}
	unlock()
	unlock2, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}
