package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docora/docora/internal/gittest"
)

// step is one commit of the scripted history, followed by one `docora sync`.
type step struct {
	name   string
	change func(r *gittest.Repo)
	// bDown makes app B's receiver answer 503 during this step's sync.
	bDown bool
	// defaultChunks syncs with the default chunking (1 MiB threshold, 512 KiB chunks) instead
	// of the test's small one (4096 bytes, 1024 characters).
	defaultChunks bool
	// chunked says that some file of this step is sent in chunks: B receives more requests
	// than changes.
	chunked bool
	// check inspects the sync's results (by app: "a", "b").
	check func(t *testing.T, results map[string]syncResult)
}

const (
	keyA = "key-of-app-a-0123456789"
	keyB = "key-of-app-b-9876543210-different"
)

func history() []step {
	special := "<script>alert('x')</script> & &amp; \u2028 \u2029 😀 \"quoted\" \\ back\tslash\n"
	return []step{
		{name: "initial", change: func(r *gittest.Repo) {
			r.WriteFile("README.md", "# Site\n")
			r.WriteFile("docs/guide.md", textOf("the guide", 300))
			r.WriteFile("docs/a b/space name.md", "spaces in the path\n")
			r.WriteFile("unicodé/naïve 日本語 🎉.md", "unicode names\n")
			r.WriteFile("odd/100% #1 ?.md", "characters that mean something in URLs\n")
			r.WriteFile("empty.txt", "")
			r.WriteFile("special.txt", special)
			r.WriteFile("img/logo.bin", "\x00PNG"+randomBytes(1, 300))
			r.WriteFile("latin1.txt", "caf\xe9\n") // not UTF-8: binary
			r.WriteFile("crlf.txt", "one\r\ntwo\r\n")
			r.WriteFile("bom.txt", "\ufeffwith a byte order mark\n")
			r.WriteFile("tree/x.md", "x\n")
			r.WriteFile("tree/sub/y.md", "y\n")
			r.WriteFile("notes", "a file that becomes a directory\n")
			r.WriteFile("drafts/wip.md", "work in progress\n")
			r.WriteFile("secret.txt", "not secret yet\n")
			r.WriteFile("debug.log", "a log line\n")
		}},
		{name: "files above the chunk threshold", chunked: true, change: func(r *gittest.Repo) {
			r.WriteFile("big/text.md", textOf("ünïcødé text above the threshold ✓ <&> \u2028", 10_000))
			r.WriteFile("big/blob.bin", "\x00"+randomBytes(2, 9000))
			r.WriteFile("big/edge-4096.txt", textOf("x", 4096)) // exactly the threshold: one request
			r.WriteFile("big/edge-4097.txt", textOf("y", 4097))
		}},
		{name: "updates", change: func(r *gittest.Repo) {
			r.WriteFile("special.txt", special+"and one more line 🎉\n")
			r.WriteFile("img/logo.bin", "\x00PNG"+randomBytes(3, 400))
			r.WriteFile("big/text.md", textOf("changed text above the threshold ✓", 12_000))
			r.WriteFile("empty.txt", "no longer empty\n")
			r.WriteFile("README.md", "") // now empty
		}},
		{name: "deletes", change: func(r *gittest.Repo) {
			r.Remove("docs/a b/space name.md") // its directory goes too
			r.Remove("latin1.txt")
			r.Remove("big/edge-4096.txt")
		}},
		{name: "renames", change: func(r *gittest.Repo) {
			if err := os.MkdirAll(filepath.Join(r.Dir(), "docs", "handbook"), 0o755); err != nil {
				panic(err)
			}
			r.Git("mv", "docs/guide.md", "docs/handbook/guide.md")
			r.Git("mv", "unicodé/naïve 日本語 🎉.md", "unicodé/renamed ✓.md")
		}},
		{name: "a directory becomes a file", change: func(r *gittest.Repo) {
			r.Remove("tree")
			r.WriteFile("tree", "now a file\n")
		}},
		{name: "a file becomes a directory", change: func(r *gittest.Repo) {
			r.Remove("notes")
			r.WriteFile("notes/today.md", "now a directory\n")
		}},
		{name: ".docoraignore added", change: func(r *gittest.Repo) {
			r.WriteFile(".docoraignore", "# generated output\nbuild/\n*.log\ndrafts/\n")
			r.WriteFile("build/out.txt", "built\n")
			r.WriteFile("logs/app.log", "ignored from the start\n")
		}, check: func(t *testing.T, res map[string]syncResult) {
			// debug.log and drafts/wip.md were delivered before: now they are deleted.
			if d := res["a"].Delivered; d.Deleted != 2 || d.Created != 1 {
				t.Fatalf("app a: %+v", d)
			}
		}},
		{name: ".docoraignore changed", change: func(r *gittest.Repo) {
			r.WriteFile(".docoraignore", "build/\nsecret.txt\n*.log\n!debug.log\n")
		}},
		{name: "symlinks and a submodule", change: func(r *gittest.Repo) {
			r.Symlink("link-to-readme", "README.md")
			r.Symlink("docs/link-dir", "../img")
			r.AddSubmodule("vendor/lib", r.Head())
			r.WriteFile("docs/changelog.md", "v1\n")
		}, check: func(t *testing.T, res map[string]syncResult) {
			if d := res["a"].Delivered; d.Created != 1 || d.Updated+d.Deleted != 0 {
				t.Fatalf("app a: %+v", d)
			}
		}},
		{name: "files above 1 MiB", defaultChunks: true, chunked: true, change: func(r *gittest.Repo) {
			r.WriteFile("assets/large.bin", randomBytes(4, 1536<<10))
			r.WriteFile("assets/large.txt", textOf("a large text file, chunked as base64 ✓", 1200<<10))
			r.WriteFile("assets/exact-1mib.txt", textOf("exactly one mebibyte", 1<<20))
		}},
		{name: "B down: edits", bDown: true, change: func(r *gittest.Repo) {
			r.WriteFile("README.md", "# Site\n\nback to text\n")
			r.WriteFile("new/one.md", "one\n")
			r.Remove("bom.txt")
		}},
		{name: "B down: a chunked update and a mode change", bDown: true, change: func(r *gittest.Repo) {
			r.WriteFile("big/text.md", textOf("third version of the large text", 9_000))
			r.WriteFile("docs/changelog.md", "v1\nv2\n")
			r.Chmod("docs/changelog.md", true)
		}},
		{name: "B down: a directory deleted, a symlink becomes a file", bDown: true, change: func(r *gittest.Repo) {
			r.Remove("unicodé")
			r.Remove("link-to-readme")
			r.WriteFile("link-to-readme", "a regular file now\n")
		}},
		{name: "B recovers", change: func(r *gittest.Repo) {
			r.WriteFile("recovered.md", "B is back\n")
		}, check: func(t *testing.T, res map[string]syncResult) {
			if d := res["a"].Delivered; d.Created != 1 || d.Updated+d.Deleted != 0 {
				t.Fatalf("app a: %+v", d)
			}
			// B receives what it missed in one go: new/one.md, link-to-readme and
			// recovered.md; README.md, big/text.md and docs/changelog.md; bom.txt and
			// unicodé/renamed ✓.md.
			if d := res["b"].Delivered; d.Created != 3 || d.Updated != 3 || d.Deleted != 2 {
				t.Fatalf("app b: %+v", d)
			}
		}},
		{name: "a mode change only", change: func(r *gittest.Repo) {
			r.Chmod("README.md", true)
		}, check: func(t *testing.T, res map[string]syncResult) {
			for app, r := range res {
				if d := r.Delivered; d.Created+d.Updated+d.Deleted != 0 {
					t.Fatalf("app %s received a mode-only change: %+v", app, d)
				}
			}
		}},
		{name: ".docoraignore and the submodule removed", change: func(r *gittest.Repo) {
			r.Remove(".docoraignore")
			r.Remove("vendor/lib")
		}},
		{name: "almost everything deleted", change: func(r *gittest.Repo) {
			r.Git("rm", "-r", "-q", "-f", "--", ".")
			r.WriteFile("README.md", "the end\n")
		}},
	}
}

// TestMirrorHistory pushes a scripted history commit by commit to a real git server, runs
// `docora sync` after each, and checks that two real `docora receive` mirrors (two apps with
// different keys) equal the commit byte for byte. App B's receiver is down for three commits;
// the first sync after it recovers converges it.
func TestMirrorHistory(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	e := newEnv(t, ctx)
	git := gittest.NewServer(t)
	repo := gittest.NewRepo(t, git, "acme/site.git")

	a := e.startReceive("mirror-a", keyA)
	b := e.startReceive("mirror-b", keyB)
	target, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	fb := &flaky{proxy: httputil.NewSingleHostReverseProxy(target)}
	proxy := httptest.NewServer(fb)
	defer proxy.Close()

	apps := map[string]string{} // app id → "a" or "b"
	for name, o := range map[string]struct{ url, key string }{"a": {a.url, keyA}, "b": {proxy.URL + "/", keyB}} {
		keyFile := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(keyFile, []byte(o.key+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var app struct {
			AppID string `json:"app_id"`
		}
		e.mustJSON(&app, "app", "onboard", "--name", "Mirror "+name, "--base-url", o.url, "--email", name+"@example.com",
			"--client-auth-key-file", keyFile, "--json")
		apps[app.AppID] = name
	}

	steps := history()
	for i, s := range steps {
		s.change(repo)
		repo.Commit(s.name)
		repo.Push()
		if i == 0 {
			for id := range apps {
				var added struct {
					RepositoryID string `json:"repository_id"`
					Branch       string `json:"branch"`
				}
				e.mustJSON(&added, "repo", "add", git.URL("acme/site.git"), "--app", id, "--json")
				if added.Branch != "main" {
					t.Fatalf("repo add: %+v", added)
				}
			}
		}
		head := repo.Head()
		fb.down.Store(s.bDown)

		args := []string{"sync", "--json", "--max-attempts", "1"}
		if !s.defaultChunks {
			args = append(args, "--chunk-threshold", "4096", "--chunk-size", "1024")
		}
		stepStart, forwarded := time.Now(), fb.forwarded.Load()
		code, out, errOut := e.docora(args...)
		var list []syncResult
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("step %d %q: sync output: %v\n%s\n%s", i, s.name, err, out, errOut)
		}
		results := map[string]syncResult{}
		for _, r := range list {
			results[apps[r.AppID]] = r
		}
		wantCode, wantB := 0, "synced"
		if s.bDown {
			wantCode, wantB = 3, "failed"
		}
		if code != wantCode || len(results) != 2 || results["a"].Outcome != "synced" || results["b"].Outcome != wantB ||
			results["a"].CommitSHA != head {
			t.Fatalf("step %d %q: sync exit %d, results %+v\n%s", i, s.name, code, results, errOut)
		}
		if s.bDown && fb.refused.Load() == 0 {
			t.Fatalf("step %d: receiver B was never called while down", i)
		}
		want := expectedTree(t, repo)
		sameTree(t, "mirror A after step "+s.name, mirrorTree(t, a.dir), want)
		if !s.bDown {
			if results["b"].CommitSHA != head {
				t.Fatalf("step %d %q: app b at %s, want %s", i, s.name, results["b"].CommitSHA, head)
			}
			sameTree(t, "mirror B after step "+s.name, mirrorTree(t, b.dir), want)
		}
		if d := results["b"].Delivered; s.chunked && fb.forwarded.Load()-forwarded <= int64(d.Created+d.Updated+d.Deleted) {
			t.Fatalf("step %d %q: %d requests for %+v: nothing was chunked", i, s.name, fb.forwarded.Load()-forwarded, d)
		}
		if s.check != nil {
			s.check(t, results)
		}
		t.Logf("step %2d %-50q %3d files, sync %v", i, s.name, len(want), time.Since(stepStart).Round(time.Millisecond))
	}

	// Nothing new: both links are unchanged and nothing is sent.
	code, out, _ := e.docora("sync", "--json")
	var list []syncResult
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 2 ||
		list[0].Outcome != "unchanged" || list[1].Outcome != "unchanged" {
		t.Fatalf("final sync: exit %d %v %s", code, err, out)
	}
	t.Logf("%d commits in %v", len(steps), time.Since(start).Round(time.Millisecond))
}
