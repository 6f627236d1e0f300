// Command detectbench runs docora's change-detection benchmarks (docs/performance.md) against
// the docora binary, on repositories it generates deterministically and serves on 127.0.0.1:
//
//   - unchanged: a dry-run pass over N synced links whose heads did not move, beside N
//     `git ls-remote` runs against the same server (git http-backend and internal/gitserve);
//   - first: the first dry-run pass over a repository of 20,000 files / 300 MB (time and peak
//     RSS of the docora process), beside `git clone --depth 1` + `sha256sum` of every file;
//   - onechange: the next pass after a commit that changes one file.
//
// Run it from the module root: go run ./internal/benchmark/cmd/detectbench (or make bench).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docora/docora/internal/benchmark"
	"github.com/docora/docora/internal/store"
)

type options struct {
	dir       string
	docora    string
	runs      int
	repos     int
	files     int
	mb        int64
	large     int
	largeMB   int64
	scenarios string
	keep      bool
	gitserve  bool
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", filepath.Join(os.TempDir(), "docora-bench"), "work directory (generated repositories, docora homes)")
	flag.StringVar(&o.docora, "docora", "", "docora binary to measure (default: build ./cmd/docora into -dir)")
	flag.IntVar(&o.runs, "runs", 3, "measured runs per row (the median is reported)")
	flag.IntVar(&o.repos, "repos", 100, "unchanged: number of repositories")
	flag.IntVar(&o.files, "files", benchmark.DefaultTree.Files, "first: number of files")
	flag.Int64Var(&o.mb, "mb", benchmark.DefaultTree.Bytes>>20, "first: total size in MiB")
	flag.IntVar(&o.large, "large", benchmark.DefaultTree.Large, "first: number of large files")
	flag.Int64Var(&o.largeMB, "large-mb", benchmark.DefaultTree.LargeSize>>20, "first: size of each large file in MiB")
	flag.StringVar(&o.scenarios, "scenarios", "unchanged,first,onechange", "comma-separated scenarios to run")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (generated repositories are reused by the next run)")
	flag.BoolVar(&o.gitserve, "gitserve-big", false, "first/onechange: also serve the big repository with internal/gitserve")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "detectbench:", err)
		os.Exit(1)
	}
}

type row struct {
	scenario, server, what string
	stats                  benchmark.Stats
	note                   string
}

type bench struct {
	o        options
	root     string // GIT_PROJECT_ROOT of the servers
	docora   string
	receiver string
	rows     []row
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options) error {
	if o.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if !o.keep {
		defer func() {
			logf("removing %s (use -keep to reuse the generated repositories)", o.dir)
			_ = os.RemoveAll(o.dir)
		}()
	}
	b := &bench{o: o, root: filepath.Join(o.dir, "served")}
	if err := os.MkdirAll(filepath.Join(b.root, "bench"), 0o755); err != nil {
		return err
	}
	b.docora = o.docora
	if b.docora == "" {
		b.docora = filepath.Join(o.dir, "docora")
		logf("building docora into %s", b.docora)
		if _, err := benchmark.Run(ctx, benchmark.Command{Args: []string{"go", "build", "-trimpath", "-o", b.docora, "./cmd/docora"}}); err != nil {
			return err
		}
	}
	recv, err := startReceiver()
	if err != nil {
		return err
	}
	defer recv.Close()
	b.receiver = "http://" + recv.Addr().String()

	want := map[string]bool{}
	for _, s := range strings.Split(o.scenarios, ",") {
		want[strings.TrimSpace(s)] = true
	}
	if want["unchanged"] {
		if err := b.unchanged(ctx); err != nil {
			return fmt.Errorf("unchanged: %w", err)
		}
	}
	if want["first"] || want["onechange"] {
		if err := b.bigRepo(ctx, want["first"], want["onechange"]); err != nil {
			return fmt.Errorf("first pass: %w", err)
		}
	}
	b.print(os.Stdout)
	return nil
}

// startReceiver accepts every webhook (2xx) and discards it: the benchmarks measure docora,
// not a receiver.
func startReceiver() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
	}()
	return ln, nil
}

// --- docora homes ---

type home struct {
	b     *bench
	dir   string
	appID string
}

func (b *bench) newHome(ctx context.Context, name string) (*home, error) {
	dir := filepath.Join(b.o.dir, "homes", name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	h := &home{b: b, dir: dir}
	out, err := h.docora(ctx, "app", "onboard", "--name", "Benchmark", "--base-url", b.receiver, "--email", "bench@example.com", "--json")
	if err != nil {
		return nil, err
	}
	var app struct {
		AppID string `json:"app_id"`
	}
	if err := json.Unmarshal(out, &app); err != nil {
		return nil, err
	}
	h.appID = app.AppID
	return h, nil
}

func (h *home) env() []string {
	return []string{"DOCORA_HOME=" + h.dir, "DOCORA_DB=", "DOCORA_ALLOW_PRIVATE_NETWORKS=1", "NO_COLOR=1",
		"DOCORA_LOG_LEVEL=warn", "DOCORA_ENCRYPTION_KEY="}
}

// docora runs the docora binary in this home and returns its standard output.
func (h *home) docora(ctx context.Context, args ...string) ([]byte, error) {
	var out bytes.Buffer
	_, err := benchmark.Run(ctx, benchmark.Command{Args: append([]string{h.b.docora}, args...), Env: h.env(), Stdout: &out})
	return out.Bytes(), err
}

// measure runs docora with args, its stdout written to out (nil: discarded).
func (h *home) measure(ctx context.Context, out io.Writer, args ...string) (benchmark.Measurement, error) {
	if out == nil {
		out = io.Discard
	}
	return benchmark.Run(ctx, benchmark.Command{Args: append([]string{h.b.docora}, args...), Env: h.env(), Stdout: out})
}

func (h *home) addRepo(ctx context.Context, url string) (string, error) {
	out, err := h.docora(ctx, "repo", "add", url, "--app", h.appID, "--json")
	if err != nil {
		return "", err
	}
	var r struct {
		ID string `json:"repository_id"`
	}
	return r.ID, json.Unmarshal(out, &r)
}

type result struct {
	Outcome   string `json:"outcome"`
	CommitSHA string `json:"commit_sha"`
	Files     int    `json:"files"`
	Error     string `json:"error"`
	Planned   *struct {
		Created, Updated, Deleted int
	} `json:"planned"`
	Changes []struct {
		Type string `json:"type"`
		Path string `json:"path"`
		SHA  string `json:"sha"`
	} `json:"changes"`
}

func parseResults(b []byte) ([]result, error) {
	var rs []result
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("sync output: %w", err)
	}
	for _, r := range rs {
		if r.Error != "" {
			return nil, fmt.Errorf("sync: %s", r.Error)
		}
	}
	return rs, nil
}

// --- git helpers ---

var gitEnv = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_TERMINAL_PROMPT=0",
	"GIT_AUTHOR_NAME=Bench", "GIT_AUTHOR_EMAIL=bench@docora.invalid", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
	"GIT_COMMITTER_NAME=Bench", "GIT_COMMITTER_EMAIL=bench@docora.invalid", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z",
	"LC_ALL=C"}

func git(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	var out bytes.Buffer
	_, err := benchmark.Run(ctx, benchmark.Command{Args: append([]string{"git"}, args...), Dir: dir,
		Env: append(append([]string(nil), gitEnv...), env...), Stdout: &out})
	return strings.TrimSpace(out.String()), err
}

// --- scenario: unchanged heads ---

func (b *bench) unchanged(ctx context.Context) error {
	names, err := b.smallRepos(ctx)
	if err != nil {
		return err
	}
	servers := []func(string) (*benchmark.Server, error){benchmark.NewHTTPBackend, benchmark.NewGitserve}
	for _, newServer := range servers {
		srv, err := newServer(b.root)
		if err != nil {
			return err
		}
		err = b.unchangedOn(ctx, srv, names)
		srv.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", srv.Name, err)
		}
	}
	return nil
}

// smallRepos creates (once) o.repos bare repositories of a few files each.
func (b *bench) smallRepos(ctx context.Context) ([]string, error) {
	var names []string
	for i := range b.o.repos {
		names = append(names, fmt.Sprintf("bench/small-%03d.git", i))
	}
	marker := filepath.Join(b.root, "bench", fmt.Sprintf(".small-%d.done", b.o.repos))
	if _, err := os.Stat(marker); err == nil {
		return names, nil
	}
	logf("unchanged: creating %d repositories", b.o.repos)
	work := filepath.Join(b.o.dir, "small-work")
	_ = os.RemoveAll(work)
	if _, err := git(ctx, "", nil, "init", "-q", "-b", "main", work); err != nil {
		return nil, err
	}
	for i, name := range names {
		bare := filepath.Join(b.root, filepath.FromSlash(name))
		_ = os.RemoveAll(bare)
		if _, err := git(ctx, "", nil, "init", "-q", "--bare", "-b", "main", bare); err != nil {
			return nil, err
		}
		files := map[string]string{
			"README.md":      fmt.Sprintf("# Repository %d\n", i),
			"docs/guide.md":  strings.Repeat("Some documentation.\n", 50),
			"docs/index.txt": strconv.Itoa(i) + "\n",
		}
		for p, c := range files {
			full := filepath.Join(work, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				return nil, err
			}
		}
		if _, err := git(ctx, work, nil, "add", "-A"); err != nil {
			return nil, err
		}
		if _, err := git(ctx, work, nil, "commit", "-q", "-m", fmt.Sprintf("repository %d", i)); err != nil {
			return nil, err
		}
		if _, err := git(ctx, work, nil, "push", "-q", bare, "HEAD:refs/heads/main"); err != nil {
			return nil, err
		}
	}
	_ = os.RemoveAll(work)
	return names, os.WriteFile(marker, nil, 0o644)
}

func (b *bench) unchangedOn(ctx context.Context, srv *benchmark.Server, names []string) error {
	logf("unchanged/%s: registering %d repositories and syncing them", srv.Name, len(names))
	h, err := b.newHome(ctx, "unchanged-"+srv.Name)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := h.addRepo(ctx, srv.URL+"/"+n); err != nil {
			return err
		}
	}
	if _, err := h.docora(ctx, "sync", "--json"); err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	n := len(names)
	scenario := fmt.Sprintf("unchanged heads, %d repositories", n)

	// The floor: one `git ls-remote` per repository, one after the other, then 5 at a time.
	for _, par := range []int{1, 5} {
		var ms []benchmark.Measurement
		for range b.o.runs {
			start := time.Now()
			if err := forEach(ctx, names, par, func(name string) error {
				_, err := benchmark.Run(ctx, benchmark.Command{Args: []string{"git", "ls-remote", srv.URL + "/" + name, "refs/heads/main"},
					Env: gitEnv, Stdout: io.Discard})
				return err
			}); err != nil {
				return err
			}
			ms = append(ms, benchmark.Measurement{Wall: time.Since(start)})
		}
		what := fmt.Sprintf("floor: %d × git ls-remote, sequential", n)
		if par > 1 {
			what = fmt.Sprintf("floor: %d × git ls-remote, %d at a time", n, par)
		}
		b.add(row{scenario: scenario, server: srv.Name, what: what, stats: benchmark.Summarise(ms)})
	}
	floorSeq, floorPar := b.rows[len(b.rows)-2].stats.Median, b.rows[len(b.rows)-1].stats.Median

	type variant struct {
		what  string
		args  []string
		floor time.Duration
	}
	for _, v := range []variant{
		{"docora sync --dry-run --concurrency 1", []string{"sync", "--dry-run", "--json", "--concurrency", "1"}, floorSeq},
		{"docora sync --dry-run (concurrency 5)", []string{"sync", "--dry-run", "--json"}, floorPar},
		{"docora sync (concurrency 5)", []string{"sync", "--json"}, floorPar},
	} {
		var ms []benchmark.Measurement
		for range b.o.runs {
			refs0, packs0 := srv.Counts()
			var out bytes.Buffer
			m, err := h.measure(ctx, &out, v.args...)
			if err != nil {
				return err
			}
			refs, packs := srv.Counts()
			if refs-refs0 != int64(n) || packs != packs0 {
				return fmt.Errorf("%s: %d ref listings and %d fetches, want %d and 0", v.what, refs-refs0, packs-packs0, n)
			}
			rs, err := parseResults(out.Bytes())
			if err != nil {
				return err
			}
			for _, r := range rs {
				if r.Outcome != "dry_run" && r.Outcome != "unchanged" || len(r.Changes) != 0 {
					return fmt.Errorf("%s: outcome %s with %d changes", v.what, r.Outcome, len(r.Changes))
				}
			}
			ms = append(ms, m)
		}
		st := benchmark.Summarise(ms)
		b.add(row{scenario: scenario, server: srv.Name, what: v.what, stats: st,
			note: fmt.Sprintf("%.2f× floor (%s); 1 ref listing and 0 fetches per repository", ratio(st.Median, v.floor), fmtDur(v.floor))})
	}
	return nil
}

func forEach(ctx context.Context, items []string, par int, fn func(string) error) error {
	ch := make(chan string)
	errs := make(chan error, par)
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				if err := fn(it); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, it := range items {
		select {
		case ch <- it:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(ch)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// --- scenarios: first pass and one changed file ---

type bigRepo struct {
	name, bare, work, base string
	files                  []benchmark.File
	edit                   benchmark.File // the file the one-change scenario edits
}

func (b *bench) spec() benchmark.TreeSpec {
	return benchmark.TreeSpec{Files: b.o.files, Bytes: b.o.mb << 20, Large: b.o.large, LargeSize: b.o.largeMB << 20, Seed: 1}
}

// makeBigRepo generates the synthetic repository (once per spec) and returns it at its base
// commit.
func (b *bench) makeBigRepo(ctx context.Context) (*bigRepo, error) {
	spec := b.spec()
	id := fmt.Sprintf("big-%d-%d-%d-%d", spec.Files, spec.Bytes>>20, spec.Large, spec.LargeSize>>20)
	r := &bigRepo{name: "bench/" + id + ".git", work: filepath.Join(b.o.dir, id+"-work")}
	r.bare = filepath.Join(b.root, filepath.FromSlash(r.name))
	env := []string{"GIT_DIR=" + r.bare, "GIT_WORK_TREE=" + r.work}
	marker := r.bare + ".base"
	if base, err := os.ReadFile(marker); err == nil {
		r.base = strings.TrimSpace(string(base))
		r.files = spec.Plan()
	} else {
		logf("generating %d files, %d MiB in %s", spec.Files, spec.Bytes>>20, r.work)
		_ = os.RemoveAll(r.work)
		_ = os.RemoveAll(r.bare)
		start := time.Now()
		if r.files, err = spec.Write(r.work); err != nil {
			return nil, err
		}
		logf("  written in %s; committing", fmtDur(time.Since(start)))
		if _, err := git(ctx, "", nil, "init", "-q", "--bare", "-b", "main", r.bare); err != nil {
			return nil, err
		}
		if _, err := git(ctx, r.work, env, "add", "-A"); err != nil {
			return nil, err
		}
		if _, err := git(ctx, r.work, env, "commit", "-q", "-m", "synthetic tree"); err != nil {
			return nil, err
		}
		logf("  committed in %s; packing", fmtDur(time.Since(start)))
		// Served from a pack, as a real host serves it (no loose objects to compress per clone).
		if _, err := git(ctx, "", env, "repack", "-a", "-d", "-q"); err != nil {
			return nil, err
		}
		logf("  packed in %s", fmtDur(time.Since(start)))
		if r.base, err = git(ctx, "", env, "rev-parse", "HEAD"); err != nil {
			return nil, err
		}
		if err := os.WriteFile(marker, []byte(r.base+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	// Back to the base commit, whatever an interrupted run left behind.
	if _, err := git(ctx, "", env, "update-ref", "refs/heads/main", r.base); err != nil {
		return nil, err
	}
	if _, err := git(ctx, "", env, "read-tree", r.base); err != nil {
		return nil, err
	}
	for _, f := range r.files {
		if !f.Binary && f.Size > 1000 && f.Size < 100000 {
			r.edit = f
			break
		}
	}
	return r, nil
}

func (b *bench) bigRepo(ctx context.Context, first, oneChange bool) error {
	r, err := b.makeBigRepo(ctx)
	if err != nil {
		return err
	}
	var total int64
	for _, f := range r.files {
		total += f.Size
	}
	servers := []func(string) (*benchmark.Server, error){benchmark.NewHTTPBackend}
	if b.o.gitserve {
		servers = append(servers, benchmark.NewGitserve)
	}
	for _, newServer := range servers {
		srv, err := newServer(b.root)
		if err != nil {
			return err
		}
		err = b.bigOn(ctx, srv, r, total, first, oneChange)
		srv.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", srv.Name, err)
		}
	}
	return nil
}

func (b *bench) bigOn(ctx context.Context, srv *benchmark.Server, r *bigRepo, total int64, first, oneChange bool) error {
	url := srv.URL + "/" + r.name
	scenario := fmt.Sprintf("first pass, %d files, %d MiB", len(r.files), total>>20)
	var firstMedian time.Duration
	var h *home
	var plan []byte
	runs := b.o.runs
	if !first {
		runs = 1 // one untimed pass to set up the one-change scenario
	}
	if first {
		// The floor: a depth-1 clone with checkout, then sha256sum of every file.
		var clones, sums, both []benchmark.Measurement
		for i := range b.o.runs {
			dst := filepath.Join(b.o.dir, "floor-clone")
			_ = os.RemoveAll(dst)
			logf("first/%s: floor run %d", srv.Name, i+1)
			c, err := benchmark.Run(ctx, benchmark.Command{Args: []string{"git", "clone", "-q", "--depth", "1", "--no-tags", url, dst}, Env: gitEnv})
			if err != nil {
				return err
			}
			s, err := benchmark.Run(ctx, benchmark.Command{Dir: dst, Env: gitEnv, Stdout: io.Discard,
				Args: []string{"sh", "-c", "git ls-files -z | xargs -0 sha256sum"}})
			if err != nil {
				return err
			}
			_ = os.RemoveAll(dst)
			clones, sums = append(clones, c), append(sums, s)
			both = append(both, benchmark.Measurement{Wall: c.Wall + s.Wall, MaxRSS: max(c.MaxRSS, s.MaxRSS)})
		}
		b.add(row{scenario: scenario, server: srv.Name, what: "floor: git clone --depth 1", stats: benchmark.Summarise(clones)})
		b.add(row{scenario: scenario, server: srv.Name, what: "floor: sha256sum of every file", stats: benchmark.Summarise(sums)})
		b.add(row{scenario: scenario, server: srv.Name, what: "floor: clone + sha256sum", stats: benchmark.Summarise(both)})
	}
	floor := time.Duration(0)
	if first {
		floor = b.rows[len(b.rows)-1].stats.Median
	}
	var ms []benchmark.Measurement
	for i := range runs {
		var err error
		if h, err = b.newHome(ctx, "big-"+srv.Name); err != nil {
			return err
		}
		if _, err := h.addRepo(ctx, url); err != nil {
			return err
		}
		logf("first/%s: docora run %d", srv.Name, i+1)
		var out bytes.Buffer
		m, err := h.measure(ctx, &out, "sync", "--dry-run", "--json")
		if err != nil {
			return err
		}
		rs, err := parseResults(out.Bytes())
		if err != nil {
			return err
		}
		if len(rs) != 1 || rs[0].Files != len(r.files) || rs[0].Planned.Created != len(r.files) {
			return fmt.Errorf("first pass: unexpected plan %+v", rs)
		}
		plan = out.Bytes()
		ms = append(ms, m)
	}
	if first {
		st := benchmark.Summarise(ms)
		firstMedian = st.Median
		b.add(row{scenario: scenario, server: srv.Name, what: "docora sync --dry-run (first pass)", stats: st,
			note: fmt.Sprintf("%.2f× floor; target ≤ 1.5× and ≤ 150 MB", ratio(st.Median, floor))})
	}
	if !oneChange {
		return nil
	}
	return b.oneChange(ctx, srv, r, h, plan, firstMedian)
}

// oneChange records the first pass as delivered (what a successful sync would have recorded),
// then measures passes after commits that each change one file.
func (b *bench) oneChange(ctx context.Context, srv *benchmark.Server, r *bigRepo, h *home, plan []byte, firstMedian time.Duration) error {
	rs, err := parseResults(plan)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, filepath.Join(h.dir, "docora.db"))
	if err != nil {
		return err
	}
	links, err := st.ListLinks(ctx, store.LinkFilter{})
	if err != nil || len(links) != 1 {
		st.Close()
		return fmt.Errorf("links: %v (%d)", err, len(links))
	}
	l := links[0]
	rec := st.Run(l.AppID, l.Repo.ID, l.Generation)
	for _, c := range rs[0].Changes {
		if err := rec.ConfirmDelivered(ctx, c.Path, c.SHA, nil); err != nil {
			rec.Close()
			st.Close()
			return err
		}
	}
	err = rec.FinishSynced(ctx, rs[0].CommitSHA, rs[0].Files, 0)
	rec.Close()
	st.Close()
	if err != nil {
		return err
	}

	env := []string{"GIT_DIR=" + r.bare, "GIT_WORK_TREE=" + r.work}
	full := filepath.Join(r.work, filepath.FromSlash(r.edit.Path))
	original, err := os.ReadFile(full)
	if err != nil {
		return err
	}
	defer func() {
		_ = os.WriteFile(full, original, 0o644)
		_, _ = git(context.WithoutCancel(ctx), "", env, "update-ref", "refs/heads/main", r.base)
		_, _ = git(context.WithoutCancel(ctx), "", env, "read-tree", r.base)
	}()
	scenario := fmt.Sprintf("one file changed, %d files", len(r.files))
	var dry, real []benchmark.Measurement
	var dryReq, realReq [2]int64 // ref listings, upload-packs of the last run
	for i := range 2 * b.o.runs {
		edited := append(append([]byte(nil), original...), fmt.Sprintf("\nedit %d\n", i)...)
		if err := os.WriteFile(full, edited, 0o644); err != nil {
			return err
		}
		if _, err := git(ctx, r.work, env, "add", "--", r.edit.Path); err != nil {
			return err
		}
		if _, err := git(ctx, r.work, env, "commit", "-q", "-m", fmt.Sprintf("edit %d", i)); err != nil {
			return err
		}
		// Dry runs first (the link stays at the first commit: the plan is one update), then
		// real syncs, each of which delivers its one update.
		args, into, req := []string{"sync", "--dry-run", "--json"}, &dry, &dryReq
		if i >= b.o.runs {
			args, into, req = []string{"sync", "--json"}, &real, &realReq
		}
		refs0, packs0 := srv.Counts()
		var out bytes.Buffer
		m, err := h.measure(ctx, &out, args...)
		if err != nil {
			return err
		}
		res, err := parseResults(out.Bytes())
		if err != nil {
			return err
		}
		if len(res) != 1 || len(res[0].Changes) > 1 || res[0].Outcome == "dry_run" && (res[0].Planned.Updated != 1 || len(res[0].Changes) != 1) {
			return fmt.Errorf("one change: unexpected result %+v", res)
		}
		refs, packs := srv.Counts()
		*req = [2]int64{refs - refs0, packs - packs0}
		*into = append(*into, m)
	}
	for _, v := range []struct {
		what string
		ms   []benchmark.Measurement
		req  [2]int64
	}{{"docora sync --dry-run (next pass)", dry, dryReq}, {"docora sync (next pass, delivers 1 update)", real, realReq}} {
		s := benchmark.Summarise(v.ms)
		note := "target ≤ 5 % of the first pass"
		if firstMedian > 0 {
			note = fmt.Sprintf("%.1f %% of the first pass; target ≤ 5 %%", 100*ratio(s.Median, firstMedian))
		}
		note += fmt.Sprintf("; %d ref listings and %d fetch per pass", v.req[0], v.req[1])
		b.add(row{scenario: scenario, server: srv.Name, what: v.what, stats: s, note: note})
	}
	return nil
}

// --- output ---

func (b *bench) add(r row) {
	logf("%s | %s | %s: median %s, peak RSS %s", r.scenario, r.server, r.what, fmtDur(r.stats.Median), fmtMB(r.stats.MaxRSS))
	b.rows = append(b.rows, r)
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
}

func fmtMB(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MB", float64(b)/1e6)
}

func (b *bench) print(w io.Writer) {
	fmt.Fprintf(w, "\nMachine: %s, %d CPUs, %s; %s; %s\n\n", cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), gitVersion())
	fmt.Fprintln(w, "| scenario | server | what | runs | median | min | peak RSS | note |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range b.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s | %s |\n", r.scenario, r.server, r.what, r.stats.Runs,
			fmtDur(r.stats.Median), fmtDur(r.stats.Min), fmtMB(r.stats.MaxRSS), r.note)
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return "? RAM"
}

func gitVersion() string {
	out, err := exec.Command("git", "--version").Output()
	if err != nil {
		return "git ?"
	}
	return strings.TrimSpace(string(out))
}
