package changes_test

// Acceptance tests of change detection (SPEC §4): a real git http-backend server over a
// scripted history, the real object cache, a real SQLite store. Delivery is simulated by
// applying each plan to the store the way the engine records a successful delivery
// (ConfirmDelivered / ConfirmDeleted, then FinishSynced).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/docora/docora/internal/changes"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

// harness is one store and one object cache, watching one repository on a real git server.
type harness struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	git   *gittest.Server
	repo  *gittest.Repo
	cache *gitsource.Cache
	src   *countingSource
	apps  int
}

func newHarness(t *testing.T, name string) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	ctx = netguard.WithPolicy(ctx, netguard.Policy{AllowPrivate: true})
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "docora.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secrets.NewBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.UseKey(ctx, box); err != nil {
		t.Fatal(err)
	}
	git := gittest.NewServer(t)
	cache := gitsource.Open(t.TempDir())
	return &harness{t: t, ctx: ctx, st: st, git: git, repo: gittest.NewRepo(t, git, name), cache: cache,
		src: &countingSource{Source: cache, reads: map[string]int{}}}
}

// link registers a new app watching the harness's repository and returns the app id.
func (h *harness) link(token string, include, exclude []string) string {
	h.t.Helper()
	h.apps++
	app := &store.App{ID: fmt.Sprintf("app_%024d", h.apps), Name: "App", Email: "a@example.com",
		BaseURL: "https://app.example.com/", ClientAuthKey: []byte("0123456789abcdef"), TokenHash: fmt.Sprint("hash", h.apps)}
	if err := h.st.CreateApp(h.ctx, app); err != nil {
		h.t.Fatal(err)
	}
	url := h.repo.URL()
	_, _, err := h.st.RegisterLink(h.ctx, store.Registration{AppID: app.ID, GitToken: token, Include: include, Exclude: exclude,
		Repo: store.Repository{ID: "repo_000000000000000000000001", URL: url, URLKey: url, CloneURL: url,
			Owner: "acme", Name: "docs", Branch: h.repo.Branch()}})
	if err != nil {
		h.t.Fatal(err)
	}
	return app.ID
}

func (h *harness) view(appID string) store.LinkView {
	h.t.Helper()
	l, err := h.st.GetLink(h.ctx, appID, "repo_000000000000000000000001")
	if err != nil {
		h.t.Fatal(err)
	}
	return l
}

func (h *harness) detector() *changes.Detector {
	return &changes.Detector{Source: h.src, Blobs: h.st, State: h.st.DeliveryState}
}

// detect runs detection for the app's link as it is in the store.
func (h *harness) detect(appID string) (changes.Plan, error) {
	return h.detector().Detect(h.ctx, h.view(appID))
}

// deliver records every change of plan as delivered, then the commit as completed: what the
// engine does after the app answered 2xx to each change.
func (h *harness) deliver(appID string, p changes.Plan) {
	h.t.Helper()
	rec := h.st.Run(appID, "repo_000000000000000000000001", h.view(appID).Generation)
	defer rec.Close()
	for _, c := range p.Changes {
		var err error
		if c.Type == changes.Delete {
			err = rec.ConfirmDeleted(h.ctx, c.Path)
		} else {
			err = rec.ConfirmDelivered(h.ctx, c.Path, c.SHA, nil)
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
	if err := rec.FinishSynced(h.ctx, p.Commit, p.Files, len(p.Invalid)); err != nil {
		h.t.Fatal(err)
	}
}

// step detects, checks the exact change list, and delivers it.
func (h *harness) step(appID string, want ...changes.Change) changes.Plan {
	h.t.Helper()
	p, err := h.detect(appID)
	if err != nil {
		h.t.Fatalf("Detect: %v", err)
	}
	checkChanges(h.t, p.Changes, want)
	h.deliver(appID, p)
	return p
}

func checkChanges(t *testing.T, got, want []changes.Change) {
	t.Helper()
	var g, w []string
	for _, c := range got {
		g = append(g, fmtChange(c))
		if c.Type != changes.Delete && c.Blob == "" {
			t.Errorf("%s %s has no blob id", c.Type, c.Path)
		}
	}
	for _, c := range want {
		w = append(w, fmtChange(c))
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Fatalf("changes:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

func fmtChange(c changes.Change) string {
	s := fmt.Sprintf("%s %q sha=%.12s", c.Type, c.Path, c.SHA)
	if c.Type != changes.Delete {
		s += fmt.Sprintf(" size=%d binary=%v", c.Size, c.Binary)
	}
	if c.PreviousSHA != "" {
		s += fmt.Sprintf(" prev=%.12s", c.PreviousSHA)
	}
	return s
}

func sum(content string) string {
	h := sha256.Sum256([]byte(content))
	return hex.EncodeToString(h[:])
}

// binary applies SPEC §6's rule directly: text is valid UTF-8 without a NUL byte.
func binary(content string) bool {
	return !utf8.ValidString(content) || strings.IndexByte(content, 0) >= 0
}

func create(path, content string) changes.Change {
	return changes.Change{Type: changes.Create, Path: path, SHA: sum(content), Size: int64(len(content)), Binary: binary(content)}
}

func update(path, content, previous string) changes.Change {
	c := create(path, content)
	c.Type, c.PreviousSHA = changes.Update, sum(previous)
	return c
}

func del(path, previous string) changes.Change {
	return changes.Change{Type: changes.Delete, Path: path, SHA: sum(previous)}
}

// countingSource counts what detection asks of the git side.
type countingSource struct {
	changes.Source
	mu    sync.Mutex
	reads map[string]int // blob id → ReadBlob calls
	trees int
	// afterRemoteHead, when set, runs once after the next RemoteHead (to move the remote).
	afterRemoteHead func()
}

func (s *countingSource) RemoteHead(ctx context.Context, url, branch string, cred gitsource.Credentials) (string, error) {
	head, err := s.Source.RemoteHead(ctx, url, branch, cred)
	s.mu.Lock()
	fn := s.afterRemoteHead
	s.afterRemoteHead = nil
	s.mu.Unlock()
	if fn != nil {
		fn()
	}
	return head, err
}

func (s *countingSource) Tree(ctx context.Context, key, commit string) ([]gitsource.Entry, error) {
	s.mu.Lock()
	s.trees++
	s.mu.Unlock()
	return s.Source.Tree(ctx, key, commit)
}

func (s *countingSource) ReadBlob(ctx context.Context, key, blob string) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	s.reads[blob]++
	s.mu.Unlock()
	return s.Source.ReadBlob(ctx, key, blob)
}

// counts returns the blob reads and tree listings so far and resets them.
func (s *countingSource) counts() (reads map[string]int, trees int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reads, trees = s.reads, s.trees
	s.reads, s.trees = map[string]int{}, 0
	return reads, trees
}

func (s *countingSource) totalReads() int {
	reads, _ := s.counts()
	n := 0
	for _, c := range reads {
		n += c
	}
	return n
}

// TestScriptedHistory walks one link through a history that exercises every rule of SPEC §4.
func TestScriptedHistory(t *testing.T) {
	h := newHarness(t, "acme/docs.git")
	r := h.repo
	app := h.link("", nil, nil)

	const (
		readme  = "# Docs\n"
		guide   = "Guide <one> & two\n"
		uni     = "ünïcødé \u2028 🎉\n"
		png     = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
		script  = "#!/bin/sh\necho hi\n"
		renamed = "moves without changing\n"
		v1, v2  = "version 1\n", "version 2\n"
		dirA    = "a\n"
		dirB    = "b\n"
	)
	invalid := "bad\xffname.txt"
	r.WriteFile("README.md", readme)
	r.WriteFile("docs/guide one.md", guide)
	r.WriteFile("docs/ünïcødé/文件.md", uni)
	r.WriteFile("docs/copy of guide.md", guide) // same blob as docs/guide one.md
	r.WriteFile("img/logo.png", png)
	r.WriteFile("run.sh", script)
	r.Chmod("run.sh", true)
	r.WriteFile("old/name.md", renamed)
	r.WriteFile("v.txt", v1)
	r.WriteFile("dir/a.txt", dirA)
	r.WriteFile("dir/b.txt", dirB)
	r.WriteFile("empty.txt", "")
	r.WriteFile(invalid, "skipped\n")
	r.Symlink("link-to-readme", "README.md")
	r.AddSubmodule("vendor/lib", strings.Repeat("ab", 20))
	c1 := r.Commit("first")
	r.Push()

	// First pass: every delivered file is created, in path (byte) order; the symlink, the
	// submodule and the path that is not UTF-8 are skipped, the last one counted.
	p := h.step(app,
		create("README.md", readme),
		create("dir/a.txt", dirA),
		create("dir/b.txt", dirB),
		create("docs/copy of guide.md", guide),
		create("docs/guide one.md", guide),
		create("docs/ünïcødé/文件.md", uni),
		create("empty.txt", ""),
		create("img/logo.png", png),
		create("old/name.md", renamed),
		create("run.sh", script),
		create("v.txt", v1),
	)
	if p.Commit != c1 || p.Files != 11 || p.Unchanged || len(p.Invalid) != 1 || p.Invalid[0] != invalid {
		t.Fatalf("first plan: commit %s files %d unchanged %v invalid %q", p.Commit, p.Files, p.Unchanged, p.Invalid)
	}
	if p.Hashed != 10 { // 11 files, two share a blob
		t.Errorf("first pass hashed %d blobs, want 10", p.Hashed)
	}
	if l := h.view(app); l.Status != store.StatusSynced || l.CommitSHA != c1 || l.FilesDelivered != 11 || l.SkippedPaths != 1 {
		t.Fatalf("link after first delivery: %+v", l.Link)
	}

	// An update, a rename (delete + create), a directory replaced by a file, a mode-only
	// change (nothing to send).
	r.WriteFile("README.md", readme+"more\n")
	r.Remove("old/name.md")
	r.WriteFile("new/name.md", renamed)
	r.Remove("dir")
	r.WriteFile("dir", "now a file\n")
	r.Chmod("run.sh", false)
	r.WriteFile("v.txt", v2)
	r.Commit("second")
	r.Push()
	p = h.step(app,
		del("dir/a.txt", dirA),
		del("dir/b.txt", dirB),
		del("old/name.md", renamed),
		create("dir", "now a file\n"),
		create("new/name.md", renamed),
		update("README.md", readme+"more\n", readme),
		update("v.txt", v2, v1),
	)
	if p.Hashed != 3 { // README.md, dir, v.txt; new/name.md's blob is known
		t.Errorf("second pass hashed %d blobs, want 3", p.Hashed)
	}

	// Content reverted to an earlier version: an update back to the old sha, read from the
	// blob cache (nothing hashed).
	r.WriteFile("v.txt", v1)
	c3 := r.Commit("revert")
	r.Push()
	if p = h.step(app, update("v.txt", v1, v2)); p.Hashed != 0 || p.Commit != c3 {
		t.Errorf("revert: hashed %d, commit %s", p.Hashed, p.Commit)
	}

	// A mode-only commit: a new head, no event.
	r.Chmod("run.sh", true)
	c4 := r.Commit("chmod")
	r.Push()
	if p = h.step(app); p.Commit != c4 || p.Hashed != 0 || p.Files != 10 {
		t.Errorf("mode-only: %+v", p)
	}

	// .docoraignore appears: files that become ignored are deleted; the ignore file itself is
	// delivered.
	ignore := "# generated\nimg/\n*.md\n!README.md\n"
	r.WriteFile(".docoraignore", ignore)
	r.Commit("ignore")
	r.Push()
	h.step(app,
		del("docs/copy of guide.md", guide),
		del("docs/guide one.md", guide),
		del("docs/ünïcødé/文件.md", uni),
		del("img/logo.png", png),
		del("new/name.md", renamed),
		create(".docoraignore", ignore),
	)

	// It changes: some files come back, others go.
	ignore2 := "docs/\n"
	r.WriteFile(".docoraignore", ignore2)
	r.Commit("ignore less")
	r.Push()
	p = h.step(app,
		create("img/logo.png", png),
		create("new/name.md", renamed),
		update(".docoraignore", ignore2, ignore),
	)
	if p.Hashed != 1 { // only the new .docoraignore
		t.Errorf("ignore change hashed %d blobs, want 1", p.Hashed)
	}

	// A force-push to an unrelated history, with the old objects gone from the remote: the
	// tree is compared with what the app holds, not with the previous commit.
	r.Orphan()
	r.WriteFile("README.md", readme+"more\n") // identical content: no event
	r.WriteFile("v.txt", "unrelated\n")
	r.WriteFile("fresh/start.txt", "fresh\n")
	c5 := r.Commit("unrelated root")
	r.ForcePush()
	r.GC()
	p = h.step(app,
		del(".docoraignore", ignore2),
		del("dir", "now a file\n"),
		del("empty.txt", ""),
		del("img/logo.png", png),
		del("new/name.md", renamed),
		del("run.sh", script),
		create("fresh/start.txt", "fresh\n"),
		update("v.txt", "unrelated\n", v1),
	)
	if p.Commit != c5 || p.Files != 3 || len(p.Invalid) != 0 {
		t.Errorf("unrelated history: commit %s files %d invalid %q", p.Commit, p.Files, p.Invalid)
	}

	// A force-push back to an older commit (go-git#1443 territory): its tree comes back.
	r.Reset(c3)
	r.ForcePush()
	p = h.step(app,
		del("fresh/start.txt", "fresh\n"),
		create("dir", "now a file\n"),
		create("docs/copy of guide.md", guide),
		create("docs/guide one.md", guide),
		create("docs/ünïcødé/文件.md", uni),
		create("empty.txt", ""),
		create("img/logo.png", png),
		create("new/name.md", renamed),
		create("run.sh", script),
		update("v.txt", v1, "unrelated\n"),
	)
	if p.Commit != c3 || p.Hashed != 0 {
		t.Errorf("back to %s: commit %s, hashed %d", c3, p.Commit, p.Hashed)
	}

	// A commit whose tree is empty: everything is deleted; zero files is not an error.
	r.Git("rm", "-r", "-q", "--", ".")
	r.Commit("empty tree")
	r.Push()
	p = h.step(app,
		del("README.md", readme+"more\n"),
		del("dir", "now a file\n"),
		del("docs/copy of guide.md", guide),
		del("docs/guide one.md", guide),
		del("docs/ünïcødé/文件.md", uni),
		del("empty.txt", ""),
		del("img/logo.png", png),
		del("new/name.md", renamed),
		del("run.sh", script),
		del("v.txt", v1),
	)
	if p.Files != 0 {
		t.Errorf("empty tree: %d files", p.Files)
	}
	if l := h.view(app); l.Status != store.StatusSynced || l.FilesDelivered != 0 {
		t.Errorf("link after the empty tree: %+v", l.Link)
	}
}

// TestIncludeExclude checks a link's patterns, next to a link without any on the same
// repository; each has its own delivery state.
func TestIncludeExclude(t *testing.T) {
	h := newHarness(t, "acme/patterns.git")
	r := h.repo
	r.WriteFile("README.md", "r\n")
	r.WriteFile("docs/a.md", "a\n")
	r.WriteFile("docs/draft.tmp", "t\n")
	r.WriteFile("docs/private/secret.md", "s\n")
	r.WriteFile("docs/sub dir/b.md", "b\n")
	r.WriteFile("src/main.go", "package main\n")
	r.Commit("first")
	r.Push()

	all := h.link("", nil, nil)
	docs := h.link("", []string{"docs/**", "/README.md"}, []string{"*.tmp", "docs/private/"})
	h.step(docs,
		create("README.md", "r\n"),
		create("docs/a.md", "a\n"),
		create("docs/sub dir/b.md", "b\n"),
	)
	h.step(all,
		create("README.md", "r\n"),
		create("docs/a.md", "a\n"),
		create("docs/draft.tmp", "t\n"),
		create("docs/private/secret.md", "s\n"),
		create("docs/sub dir/b.md", "b\n"),
		create("src/main.go", "package main\n"),
	)

	// Changes outside the patterns send nothing to the filtered link.
	r.WriteFile("src/main.go", "package main // 2\n")
	r.WriteFile("docs/draft.tmp", "t2\n")
	r.WriteFile("docs/a.md", "a2\n")
	r.Commit("second")
	r.Push()
	h.step(docs, update("docs/a.md", "a2\n", "a\n"))
	h.step(all,
		update("docs/a.md", "a2\n", "a\n"),
		update("docs/draft.tmp", "t2\n", "t\n"),
		update("src/main.go", "package main // 2\n", "package main\n"),
	)
}

// TestEmptyRepository: a remote without commits is zero files and synced, not an error; its
// first commit is then delivered.
func TestEmptyRepository(t *testing.T) {
	h := newHarness(t, "acme/empty.git")
	app := h.link("", nil, nil)
	p := h.step(app)
	if p.Commit != "" || p.Files != 0 || p.Unchanged {
		t.Fatalf("empty repository plan: %+v", p)
	}
	if up := h.git.UploadPacks(); up != 0 {
		t.Errorf("an empty repository was fetched (%d upload-packs)", up)
	}
	if l := h.view(app); l.Status != store.StatusSynced {
		t.Errorf("link status %q, want synced", l.Status)
	}
	h.repo.WriteFile("first.txt", "1\n")
	c := h.repo.Commit("first")
	h.repo.Push()
	if p = h.step(app, create("first.txt", "1\n")); p.Commit != c {
		t.Errorf("commit %s, want %s", p.Commit, c)
	}
}

// TestUnchangedHeadDoesNotFetch: a synced link whose remote head did not move costs one ref
// listing — no upload-pack request, no tree walk, no blob read.
func TestUnchangedHeadDoesNotFetch(t *testing.T) {
	h := newHarness(t, "acme/still.git")
	h.repo.WriteFile("a.txt", "a\n")
	h.repo.WriteFile("b.txt", "b\n")
	c := h.repo.Commit("first")
	h.repo.Push()
	app := h.link("", nil, nil)
	h.step(app, create("a.txt", "a\n"), create("b.txt", "b\n"))
	h.src.counts()

	refs, packs := h.git.InfoRefs(), h.git.UploadPacks()
	p, err := h.detect(app)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Unchanged || p.Commit != c || p.Files != 2 || len(p.Changes) != 0 || p.Hashed != 0 {
		t.Fatalf("plan for an unchanged head: %+v", p)
	}
	if d := h.git.InfoRefs() - refs; d != 1 {
		t.Errorf("%d info/refs requests, want exactly 1", d)
	}
	if d := h.git.UploadPacks() - packs; d != 0 {
		t.Errorf("%d upload-pack requests, want 0", d)
	}
	if reads, trees := h.src.counts(); len(reads) != 0 || trees != 0 {
		t.Errorf("unchanged head read %d blobs and listed %d trees", len(reads), trees)
	}

	// A link that is not synced (here: failed after the same commit) does fetch and diff.
	if _, err := h.st.RecordFailure(h.ctx, app, "repo_000000000000000000000001", "boom",
		func(int) time.Time { return time.Now() }); err != nil {
		t.Fatal(err)
	}
	if p, err = h.detect(app); err != nil || p.Unchanged || len(p.Changes) != 0 || p.Commit != c {
		t.Fatalf("failed link: plan %+v, err %v", p, err)
	}
	if _, trees := h.src.counts(); trees != 1 {
		t.Errorf("failed link: %d tree listings, want 1", trees)
	}
}

// TestDeliversTheFetchedCommit: when the branch moves between the ref listing and the fetch,
// the plan is for the commit actually fetched.
func TestDeliversTheFetchedCommit(t *testing.T) {
	h := newHarness(t, "acme/moving.git")
	h.repo.WriteFile("a.txt", "a\n")
	h.repo.Commit("first")
	h.repo.Push()
	app := h.link("", nil, nil)
	var moved string
	h.src.afterRemoteHead = func() {
		h.repo.WriteFile("b.txt", "b\n")
		moved = h.repo.Commit("second")
		h.repo.Push()
	}
	p := h.step(app, create("a.txt", "a\n"), create("b.txt", "b\n"))
	if p.Commit != moved {
		t.Fatalf("plan commit %s, want the fetched %s", p.Commit, moved)
	}
}

// TestBlobsHashedOnce: a blob's content is read and hashed once ever — not again for another
// link, nor for a later commit that keeps it.
func TestBlobsHashedOnce(t *testing.T) {
	h := newHarness(t, "acme/hash.git")
	for i := range 20 {
		h.repo.WriteFile(fmt.Sprintf("f%02d.txt", i), fmt.Sprintf("content %d\n", i))
	}
	h.repo.WriteFile("dup/f00.txt", "content 0\n") // same blob as f00.txt
	h.repo.WriteFile(".docoraignore", "*.log\n")
	h.repo.Commit("first")
	h.repo.Push()
	ignoreBlob := strings.Fields(h.repo.Git("ls-tree", "HEAD", ".docoraignore"))[2]

	first := h.link("", nil, nil)
	p := h.step(first, expectCreates(h, "HEAD")...)
	if p.Hashed != 21 { // 20 distinct contents and .docoraignore
		t.Errorf("first link hashed %d blobs, want 21", p.Hashed)
	}
	reads, _ := h.src.counts()
	for blob, n := range reads {
		// .docoraignore is read twice: once to parse its patterns, once to hash it.
		if want := map[bool]int{true: 2, false: 1}[blob == ignoreBlob]; n != want {
			t.Errorf("blob %s read %d times, want %d", blob, n, want)
		}
	}

	// Another link on the same repository reads no content but the ignore rules.
	second := h.link("", nil, nil)
	p = h.step(second, expectCreates(h, "HEAD")...)
	if p.Hashed != 0 {
		t.Errorf("second link hashed %d blobs, want 0", p.Hashed)
	}
	if reads, _ := h.src.counts(); len(reads) != 1 || reads[ignoreBlob] != 1 {
		t.Errorf("second link read blobs %v, want only .docoraignore once", reads)
	}

	// A commit changing one file: one blob read and hashed.
	h.repo.WriteFile("f07.txt", "content 7, edited\n")
	h.repo.Commit("edit")
	h.repo.Push()
	p = h.step(first, update("f07.txt", "content 7, edited\n", "content 7\n"))
	if p.Hashed != 1 {
		t.Errorf("one changed file: hashed %d blobs, want 1", p.Hashed)
	}
	if n := h.src.totalReads(); n != 2 { // the new blob, and .docoraignore's patterns
		t.Errorf("one changed file: %d blob reads, want 2", n)
	}
	p = h.step(second, update("f07.txt", "content 7, edited\n", "content 7\n"))
	if p.Hashed != 0 {
		t.Errorf("second link, one changed file: hashed %d blobs, want 0", p.Hashed)
	}
}

// expectCreates lists the create of every file of rev, from git itself.
func expectCreates(h *harness, rev string) []changes.Change {
	h.t.Helper()
	var out []changes.Change
	for _, p := range strings.Split(h.repo.Git("ls-tree", "-r", "--name-only", rev), "\n") {
		out = append(out, create(p, h.repo.Git("show", rev+":"+p)+"\n"))
	}
	changes.Sort(out)
	return out
}
