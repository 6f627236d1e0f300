package engine

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/mirror"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
	"github.com/docora/docora/internal/webhook"
)

// fixture is a store with one app whose base URL is a real mirror receiver, watching one
// repository on a real git server.
type fixture struct {
	t      *testing.T
	st     *store.Store
	eng    *Engine
	repo   *gittest.Repo
	git    *gittest.Server
	mirror string
	appID  string
	repoID string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "docora.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secrets.NewBox(bytes.Repeat([]byte{3}, 32))
	if err := st.UseKey(ctx, box); err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef-client-key")
	dir := t.TempDir()
	h, err := mirror.New(mirror.Options{Dir: dir, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	recv := httptest.NewServer(h)
	t.Cleanup(recv.Close)

	git := gittest.NewServer(t)
	repo := gittest.NewRepo(t, git, "acme/docs.git")
	app := &store.App{ID: "app_1", Name: "App", Email: "a@example.com", BaseURL: recv.URL + "/",
		ClientAuthKey: key, TokenHash: "h1"}
	if err := st.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	v, _, err := st.RegisterLink(ctx, store.Registration{AppID: app.ID, Repo: store.Repository{ID: "repo_1",
		URL: git.URL("acme/docs.git"), URLKey: "k", CloneURL: git.URL("acme/docs.git"), Owner: "acme", Name: "docs", Branch: "main"}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := webhook.NewClient(webhook.ClientOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	eng := &Engine{Store: st, Git: gitsource.Open(t.TempDir()), Client: client,
		Policy: netguard.Policy{AllowPrivate: true}, Options: Options{BackoffBase: time.Millisecond}}
	return &fixture{t: t, st: st, eng: eng, repo: repo, git: git, mirror: dir, appID: app.ID, repoID: v.Repo.ID}
}

func (f *fixture) sync() Result {
	f.t.Helper()
	return f.eng.SyncLink(context.Background(), f.appID, f.repoID)
}

func (f *fixture) mirrorFiles() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	filepath.WalkDir(f.mirror, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(f.mirror, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out
}

func TestSyncSmoke(t *testing.T) {
	f := newFixture(t)
	f.repo.WriteFile("README.md", "# hi <&>\n")
	f.repo.WriteFile("docs/a b.md", "ünïcødé \u2028 🎉\n")
	f.repo.WriteFile("big.bin", strings.Repeat("\x00\x01", 1<<20)) // 2 MiB: chunked
	f.repo.Commit("first")
	f.repo.Push()

	r := f.sync()
	if r.Outcome != OutcomeSynced || r.Delivered.Created != 3 {
		t.Fatalf("first sync: %+v", r)
	}
	got := f.mirrorFiles()
	if got["README.md"] != "# hi <&>\n" || got["docs/a b.md"] != "ünïcødé \u2028 🎉\n" || len(got["big.bin"]) != 2<<20 {
		t.Fatalf("mirror after first sync: %d files", len(got))
	}
	if r := f.sync(); r.Outcome != OutcomeUnchanged {
		t.Fatalf("second sync: %+v", r)
	}
	f.repo.Remove("docs/a b.md")
	f.repo.WriteFile("README.md", "changed\n")
	f.repo.Commit("second")
	f.repo.Push()
	r = f.sync()
	if r.Outcome != OutcomeSynced || r.Delivered.Updated != 1 || r.Delivered.Deleted != 1 {
		t.Fatalf("third sync: %+v", r)
	}
	got = f.mirrorFiles()
	if _, ok := got["docs/a b.md"]; ok || got["README.md"] != "changed\n" || len(got) != 2 {
		t.Fatalf("mirror after third sync: %v", len(got))
	}
	l, _ := f.st.GetLink(context.Background(), f.appID, f.repoID)
	if l.Status != store.StatusSynced || l.CommitSHA != f.repo.Head() || l.FilesDelivered != 2 {
		t.Fatalf("link after sync: %+v", l.Link)
	}
}
