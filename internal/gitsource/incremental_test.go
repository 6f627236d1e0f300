package gitsource

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docora/docora/internal/gittest"
)

// TestIncrementalFetchIsSmall: a fetch after a commit brings the objects that changed, not the
// whole tree again. (Without thin packs, git's upload-pack answers a depth-1 fetch with the
// complete tree of the new commit every time.)
func TestIncrementalFetchIsSmall(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/incremental.git")
	random := func(seed, n int) string {
		b := make([]byte, n)
		rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
		return string(b)
	}
	for i := range 40 {
		repo.WriteFile(fmt.Sprintf("dir%d/file%02d.txt", i%4, i), base64.StdEncoding.EncodeToString([]byte(random(i, 12000))))
	}
	big := random(1000, 2<<20) // incompressible, above the streaming threshold
	repo.WriteFile("big.bin", big)
	repo.Commit("one")
	repo.Push()

	// Count the bytes of every pack the server sends.
	target, _ := url.Parse(srv.BaseURL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var packs []int
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			proxy.ServeHTTP(w, r)
			return
		}
		cw := &countingWriter{ResponseWriter: w}
		proxy.ServeHTTP(cw, r)
		mu.Lock()
		packs = append(packs, cw.n)
		mu.Unlock()
	}))
	t.Cleanup(counting.Close)
	u := counting.URL + "/owner/incremental.git"
	last := func() int {
		mu.Lock()
		defer mu.Unlock()
		return packs[len(packs)-1]
	}

	c := Open(t.TempDir())
	if _, err := c.Fetch(ctx, "repo_i", u, "main", Credentials{}); err != nil {
		t.Fatal(err)
	}
	full := last()
	if full < 2<<20 {
		t.Fatalf("first fetch: %d bytes", full)
	}

	files := map[string]want{}
	for _, line := range strings.Split(repo.Git("ls-files"), "\n") {
		files[line] = want{repo.Git("show", "HEAD:"+line), KindFile}
	}
	files["big.bin"] = want{big, KindFile}
	for i, edit := range []func(){
		func() { // one small file
			repo.WriteFile("dir1/file05.txt", "changed\n")
			files["dir1/file05.txt"] = want{"changed\n", KindFile}
		},
		func() { // one byte of the big file: a delta against the blob the cache has
			b := []byte(big)
			b[len(b)/2]++
			repo.WriteFile("big.bin", string(b))
			files["big.bin"] = want{string(b), KindFile}
		},
		func() { // two commits at once, one of them adding a file
			repo.WriteFile("new.txt", "new\n")
			repo.Commit("intermediate")
			repo.WriteFile("dir2/file06.txt", "changed too\n")
			files["new.txt"] = want{"new\n", KindFile}
			files["dir2/file06.txt"] = want{"changed too\n", KindFile}
		},
	} {
		edit()
		commit := repo.Commit(fmt.Sprintf("edit %d", i))
		repo.Push()
		got, err := c.Fetch(ctx, "repo_i", u, "main", Credentials{})
		if err != nil || got != commit {
			t.Fatalf("edit %d: Fetch = %s, %v; want %s", i, got, err, commit)
		}
		if n := last(); n > 20000 {
			t.Errorf("edit %d: the fetch brought %d bytes (the first one %d)", i, n, full)
		}
		checkTree(t, ctx, c, "repo_i", commit, files)
	}
	if c.rebuilds.Load() != 0 {
		t.Errorf("%d rebuilds", c.rebuilds.Load())
	}
}

type countingWriter struct {
	http.ResponseWriter
	n int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += n
	return n, err
}

// TestLargeIncrementalFetchRebuilds: an incremental fetch past the loose-object limits stops
// and the cache is rebuilt by one fresh fetch, with the right content.
func TestLargeIncrementalFetchRebuilds(t *testing.T) {
	ctx := testCtx(t)
	srv := gittest.NewServer(t)
	repo := gittest.NewRepo(t, srv, "owner/rewrite.git")
	files := map[string]want{}
	write := func(round int) {
		for i := range 6 {
			p := fmt.Sprintf("f%d.txt", i)
			content := fmt.Sprintf("file %d, round %d\n", i, round)
			repo.WriteFile(p, content)
			files[p] = want{content, KindFile}
		}
	}
	write(0)
	repo.Commit("one")
	repo.Push()
	c := Open(t.TempDir())
	c.maxIncr = limits{objects: 4, bytes: 1 << 20}
	if _, err := c.Fetch(ctx, "repo_r", repo.URL(), "main", Credentials{}); err != nil {
		t.Fatal(err)
	}
	// Two files: within the limits, loose objects.
	repo.WriteFile("f0.txt", "small change\n")
	files["f0.txt"] = want{"small change\n", KindFile}
	commit := repo.Commit("two")
	repo.Push()
	if got, err := c.Fetch(ctx, "repo_r", repo.URL(), "main", Credentials{}); err != nil || got != commit {
		t.Fatalf("Fetch = %s, %v", got, err)
	}
	checkTree(t, ctx, c, "repo_r", commit, files)
	if n := c.rebuilds.Load(); n != 0 {
		t.Fatalf("%d rebuilds after a small change", n)
	}
	// Every file: past the limits.
	write(1)
	commit = repo.Commit("three")
	repo.Push()
	if got, err := c.Fetch(ctx, "repo_r", repo.URL(), "main", Credentials{}); err != nil || got != commit {
		t.Fatalf("Fetch = %s, %v", got, err)
	}
	checkTree(t, ctx, c, "repo_r", commit, files)
	if n := c.rebuilds.Load(); n != 1 {
		t.Fatalf("%d rebuilds after rewriting every file, want 1", n)
	}
	if n := looseObjects(filepath.Join(c.root, "repo_r.git")); n != 0 {
		t.Errorf("%d loose objects after the rebuild", n)
	}
}
