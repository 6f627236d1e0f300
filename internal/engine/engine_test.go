package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/delivery"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

// fixture is a store with one app whose base URL is a real mirror receiver (behind a
// recording, fault-injecting front), watching one repository on a real git server. The store
// and the engine share a clock the test moves; the engine's retry sleeps are recorded and
// return at once.
type fixture struct {
	t      testing.TB
	st     *store.Store
	dbPath string
	eng    *Engine
	repo   *gittest.Repo
	git    *gittest.Server
	rec    *recorder // app_1's receiver
	mirror string    // app_1's mirror directory
	appID  string
	repoID string
	clock  *clock

	mu     sync.Mutex
	sleeps []time.Duration
}

// fixtureConfig is what a test may change before the fixture is built.
type fixtureConfig struct {
	client delivery.ClientOptions
	engine Options
}

func newFixture(t testing.TB, opts ...func(*fixtureConfig)) *fixture {
	t.Helper()
	cfg := fixtureConfig{
		client: delivery.ClientOptions{Version: "test", Timeout: 5 * time.Second},
		engine: Options{BackoffBase: time.Millisecond},
	}
	for _, o := range opts {
		o(&cfg)
	}
	dbPath := filepath.Join(t.TempDir(), "docora.db")
	clk := &clock{now: time.Now()}
	st := openStore(t, dbPath, clk)

	git := gittest.NewServer(t)
	repo := gittest.NewRepo(t, git, "acme/docs.git")
	client, err := delivery.NewClient(cfg.client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	f := &fixture{t: t, st: st, dbPath: dbPath, repo: repo, git: git, clock: clk}
	f.eng = &Engine{Store: st, Git: gitsource.Open(t.TempDir()), Client: client,
		Policy: netguard.Policy{AllowPrivate: true}, Options: cfg.engine, Now: clk.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			f.sleeps = append(f.sleeps, d)
			f.mu.Unlock()
			return ctx.Err()
		}}
	f.rec = f.addApp("app_1")
	f.mirror = f.rec.dir
	f.appID = "app_1"
	f.repoID = f.link("app_1", "")
	return f
}

// openStore opens the store at path with the fixture's key and clock.
func openStore(t testing.TB, path string, clk *clock) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secrets.NewBox(bytes.Repeat([]byte{3}, 32))
	if err := st.UseKey(ctx, box); err != nil {
		t.Fatal(err)
	}
	st.SetClock(clk.Now)
	return st
}

// restart simulates a new docora process after the old one died: the store is reopened from
// its file and a new engine (another lease owner) runs over it.
func (f *fixture) restart() {
	f.t.Helper()
	f.st.Close()
	f.st = openStore(f.t, f.dbPath, f.clock)
	old := f.eng
	f.eng = &Engine{Store: f.st, Git: old.Git, Client: old.Client, Policy: old.Policy, Options: old.Options,
		Now: old.Now, Sleep: old.Sleep}
}

// addApp creates an app whose base URL is a new recording mirror receiver.
func (f *fixture) addApp(id string) *recorder {
	f.t.Helper()
	key := []byte("0123456789abcdef-key-of-" + id)
	rec := newRecorder(f.t, key)
	app := &store.App{ID: id, Name: "App " + id, Email: id + "@example.com", BaseURL: rec.URL() + "/",
		ClientAuthKey: key, TokenHash: "hash-" + id}
	if err := f.st.CreateApp(context.Background(), app); err != nil {
		f.t.Fatal(err)
	}
	return rec
}

// link makes app watch the fixture's repository (with a git token when token is set) and
// returns the repository id.
func (f *fixture) link(appID, token string) string {
	f.t.Helper()
	v, _, err := f.st.RegisterLink(context.Background(), store.Registration{AppID: appID, GitToken: token,
		Repo: store.Repository{ID: "repo_1", URL: f.git.URL("acme/docs.git"), URLKey: "k",
			CloneURL: f.git.URL("acme/docs.git"), Owner: "acme", Name: "docs", Branch: "main"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return v.Repo.ID
}

func (f *fixture) sync() Result {
	f.t.Helper()
	return f.eng.SyncLink(context.Background(), f.appID, f.repoID)
}

func (f *fixture) linkView(appID string) store.LinkView {
	f.t.Helper()
	l, err := f.st.GetLink(context.Background(), appID, f.repoID)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func (f *fixture) sleepsSoFar() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

func (f *fixture) mirrorFiles() map[string]string { return f.rec.files() }

// commit writes files (path → content; "" removes the path), commits and pushes.
func (f *fixture) commit(files map[string]string) {
	f.t.Helper()
	for p, c := range files {
		if c == "" {
			f.repo.Remove(p)
		} else {
			f.repo.WriteFile(p, c)
		}
	}
	f.repo.Commit("change")
	f.repo.Push()
}

// treeFiles is what the mirror must hold for the repository's current head.
func (f *fixture) treeFiles() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	root := f.repo.Dir()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out
}

// assertMirrorExact fails unless dir holds exactly the repository's files.
func assertMirrorExact(t *testing.T, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("mirror lacks %s", p)
		} else if g != w {
			t.Errorf("mirror has a different %s (%d bytes, want %d)", p, len(g), len(w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("mirror has %s, which is not in the repository", p)
		}
	}
}

// clock is the store's and the engine's time. It stands still unless running is set, and
// the test moves it forward with Advance.
type clock struct {
	mu      sync.Mutex
	now     time.Time
	running bool // follow the wall clock (plus what Advance added)
	offset  time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.offset)
	}
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.offset += d
}

// run makes the clock follow the wall clock.
func (c *clock) run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = true
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
	f.clock.Advance(time.Minute)
	refs, packs := f.git.InfoRefs(), f.git.UploadPacks()
	if r := f.sync(); r.Outcome != OutcomeUnchanged || r.Files != 3 || r.CommitSHA != f.repo.Head() {
		t.Fatalf("second sync: %+v", r)
	}
	// An unchanged head: one ref listing, no fetch; the link scanned now, its lease released.
	if f.git.InfoRefs()-refs != 1 || f.git.UploadPacks() != packs {
		t.Errorf("unchanged sync: %d ref listings, %d fetches", f.git.InfoRefs()-refs, f.git.UploadPacks()-packs)
	}
	if l := f.linkView(f.appID); l.Status != store.StatusSynced || l.LastScannedAt == nil ||
		!l.LastScannedAt.Equal(f.clock.Now().Truncate(time.Millisecond)) || l.LeaseOwner != "" {
		t.Errorf("link after an unchanged sync: %+v", l.Link)
	}
	f.repo.Remove("docs/a b.md")
	f.repo.WriteFile("README.md", "changed\n")
	f.repo.Commit("second")
	f.repo.Push()
	refsBefore, packsBefore := f.git.InfoRefs(), f.git.UploadPacks()
	r = f.sync()
	if r.Outcome != OutcomeSynced || r.Delivered.Updated != 1 || r.Delivered.Deleted != 1 {
		t.Fatalf("third sync: %+v", r)
	}
	// A moved head costs the head query and the fetch's own ref advertisement: no third one.
	if refs, packs := f.git.InfoRefs()-refsBefore, f.git.UploadPacks()-packsBefore; refs != 2 || packs != 1 {
		t.Fatalf("sync of a new commit made %d ref listings and %d upload-packs, want 2 and 1", refs, packs)
	}
	got = f.mirrorFiles()
	if _, ok := got["docs/a b.md"]; ok || got["README.md"] != "changed\n" || len(got) != 2 {
		t.Fatalf("mirror after third sync: %v", len(got))
	}
	l, _ := f.st.GetLink(context.Background(), f.appID, f.repoID)
	if l.Status != store.StatusSynced || l.CommitSHA != f.repo.Head() || l.FilesDelivered != 2 {
		t.Fatalf("link after sync: %+v", l.Link)
	}
	for _, rq := range f.rec.requests() {
		if !rq.SigOK {
			t.Errorf("%s %s: signature does not verify", rq.Endpoint, rq.Path)
		}
	}
}
