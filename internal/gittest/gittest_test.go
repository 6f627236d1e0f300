package gittest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.SetBasicAuth("x-access-token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	srv := NewServer(t)
	repo := NewRepo(t, srv, "owner/repo.git", WithBranch("trunk"))
	repo.WriteFile("dir/a file.txt", "a")
	repo.Symlink("link", "dir/a file.txt")
	repo.WriteFile("run.sh", "#!/bin/sh\n")
	repo.Chmod("run.sh", true)
	repo.AddSubmodule("sub", strings.Repeat("ab", 20))
	c1 := repo.Commit("one")
	repo.Push()

	ls := repo.Git("ls-tree", "-r", "HEAD")
	for _, want := range []string{"120000 blob", "100755 blob", "160000 commit " + strings.Repeat("ab", 20), "dir/a file.txt"} {
		if !strings.Contains(ls, want) {
			t.Errorf("ls-tree lacks %q:\n%s", want, ls)
		}
	}

	refs := repo.URL() + "/info/refs?service=git-upload-pack"
	status, body := get(t, refs, "")
	if status != 200 || !strings.Contains(body, c1+" refs/heads/trunk") || !strings.Contains(body, "symref=HEAD:refs/heads/trunk") {
		t.Fatalf("info/refs: %d\n%s", status, body)
	}
	if srv.InfoRefs() != 1 || srv.UploadPacks() != 0 {
		t.Errorf("counters: %d info/refs, %d upload-packs", srv.InfoRefs(), srv.UploadPacks())
	}

	srv.RequireToken("owner/repo.git", "tok")
	if status, _ := get(t, refs, ""); status != 401 {
		t.Errorf("without token: %d", status)
	}
	if status, _ := get(t, refs, "bad"); status != 401 {
		t.Errorf("wrong token: %d", status)
	}
	if status, _ := get(t, refs, "tok"); status != 200 {
		t.Errorf("right token: %d", status)
	}
	srv.Fail("owner/repo.git", 503)
	if status, _ := get(t, refs, "tok"); status != 503 {
		t.Errorf("failing: %d", status)
	}
	srv.Fail("owner/repo.git", 0)
	srv.RequireToken("owner/repo.git", "")

	// History rewriting helpers.
	repo.WriteFile("b.txt", "b")
	repo.Commit("two")
	repo.Push()
	repo.Reset(c1)
	repo.ForcePush()
	repo.Orphan()
	repo.WriteFile("c.txt", "c")
	c3 := repo.Commit("root")
	repo.ForcePush()
	repo.GC()
	if got := repo.Git("ls-remote", "origin", "refs/heads/trunk"); !strings.HasPrefix(got, c3) {
		t.Errorf("after the orphan push, trunk is %q, want %s", got, c3)
	}
	if got := repo.Git("rev-list", "--count", "HEAD"); got != "1" {
		t.Errorf("orphan history has %s commits", got)
	}

	if status, _ := get(t, srv.URL("owner/missing.git")+"/info/refs?service=git-upload-pack", ""); status != 404 {
		t.Errorf("missing repository: %d", status)
	}
	if srv.Stderr() == "" {
		t.Log("git http-backend wrote nothing to stderr")
	}
}

func TestDeterministicCommits(t *testing.T) {
	var heads []string
	for range 2 {
		repo := NewRepo(t, nil, "r.git")
		repo.WriteFile("a", "a")
		heads = append(heads, repo.Commit("one"))
	}
	if heads[0] != heads[1] {
		t.Errorf("same script, different commits: %v", heads)
	}
}
