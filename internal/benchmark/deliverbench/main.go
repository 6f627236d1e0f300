// Command deliverbench measures docora's delivery side (docs/reliability.md) with the docora
// binary, against a local receiver on 127.0.0.1 that reads each body and answers 200 at once:
//
//   - throughput: `docora sync` delivering a generated repository (default 20,000 files /
//     300 MB, five files of 20 MB, text and binary mixed) — files/s, MB/s and the peak RSS of
//     the docora process — beside the floor: a plain Go loop, in a process of its own as docora
//     is, POSTing the very same bodies (as the receiver recorded them) one after another on one
//     keep-alive connection. The floor and docora take turns, run by run. The same loop inside
//     the receiver's process is reported for reference (it skips the process wake-ups).
//     "cold" is the first sync (fetch, hashing and delivery); "warm" syncs a new app watching
//     the same repository (object cache and blob facts warm: mostly delivery).
//   - unchanged: `docora sync` over N links whose heads did not move, beside N ref listings
//     (go-git, in process) against the same git server, one at a time and five at a time.
//
// Run it from the module root: go run ./internal/benchmark/deliverbench (-h for the sizes).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docora/docora/internal/benchmark"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/netguard"
)

type options struct {
	dir       string
	docora    string
	runs      int
	files     int
	mb        int64
	large     int
	largeMB   int64
	links     int
	scenarios string
	keep      bool
	gitserve  bool
	// floorBodies and floorURL run this program as the floor's sender process (internal).
	floorBodies, floorURL string
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", filepath.Join(os.TempDir(), "docora-deliverbench"), "work directory (generated repositories, docora homes)")
	flag.StringVar(&o.docora, "docora", "", "docora binary to measure (default: build ./cmd/docora into -dir)")
	flag.IntVar(&o.runs, "runs", 3, "measured runs per row (the median is reported)")
	flag.IntVar(&o.files, "files", benchmark.DefaultTree.Files, "throughput: number of files")
	flag.Int64Var(&o.mb, "mb", benchmark.DefaultTree.Bytes>>20, "throughput: total size in MiB")
	flag.IntVar(&o.large, "large", benchmark.DefaultTree.Large, "throughput: number of large files")
	flag.Int64Var(&o.largeMB, "large-mb", benchmark.DefaultTree.LargeSize>>20, "throughput: size of each large file in MiB")
	flag.IntVar(&o.links, "links", 100, "unchanged: number of links (one repository each)")
	flag.StringVar(&o.scenarios, "scenarios", "unchanged,throughput", "comma-separated scenarios to run, in order")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (the generated repository is reused by the next run)")
	flag.BoolVar(&o.gitserve, "gitserve", false, "serve the repositories with internal/gitserve instead of git http-backend")
	flag.StringVar(&o.floorBodies, "floor-bodies", "", "internal: POST the bodies of this file to -floor-url and print the time taken")
	flag.StringVar(&o.floorURL, "floor-url", "", "internal: see -floor-bodies")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.floorBodies != "" {
		if err := floorSender(ctx, o.floorBodies, o.floorURL); err != nil {
			fmt.Fprintln(os.Stderr, "deliverbench floor:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "deliverbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

type bench struct {
	o      options
	root   string // GIT_PROJECT_ROOT
	git    *benchmark.Server
	docora string
	recv   *receiver
	out    strings.Builder
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
			logf("removing %s (use -keep to reuse the generated repository)", o.dir)
			_ = os.RemoveAll(o.dir)
		}()
	}
	b := &bench{o: o, root: filepath.Join(o.dir, "served")}
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return err
	}
	b.docora = o.docora
	if b.docora == "" {
		b.docora = filepath.Join(o.dir, "docora")
		logf("building docora into %s", b.docora)
		if _, err := benchmark.Run(ctx, benchmark.Command{Args: []string{"go", "build", "-trimpath", "-o", b.docora, "./cmd/docora"},
			Env: []string{"CGO_ENABLED=0"}}); err != nil {
			return err
		}
	}
	var err error
	if o.gitserve {
		b.git, err = benchmark.NewGitserve(b.root)
	} else {
		b.git, err = benchmark.NewHTTPBackend(b.root)
	}
	if err != nil {
		return err
	}
	defer b.git.Close()
	if b.recv, err = startReceiver(); err != nil {
		return err
	}
	defer b.recv.Close()

	fmt.Fprintf(&b.out, "machine: %d CPUs (GOMAXPROCS of docora), git server: %s, runs per row: %d (median)\n\n",
		runtime.NumCPU(), b.git.Name, o.runs)
	for _, s := range strings.Split(o.scenarios, ",") {
		switch strings.TrimSpace(s) {
		case "throughput":
			err = b.throughput(ctx)
		case "unchanged":
			err = b.unchanged(ctx)
		default:
			err = fmt.Errorf("unknown scenario %q", s)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	fmt.Print(b.out.String())
	return nil
}

// --- the receiver ---

// receiver reads every body and answers 200; while recording it writes the bodies (and the
// headers docora sent) to a file for the floor loop, so that this process never holds them
// (its peak RSS would count in every later child's: see throughput).
type receiver struct {
	ln        net.Listener
	requests  atomic.Int64
	bodyBytes atomic.Int64
	mu        sync.Mutex
	rec       *bodyWriter // nil: not recording
}

type recorded struct { // exported fields: gob writes them for the floor's process
	Path   string
	Header http.Header
	Body   []byte
}

// bodyWriter writes recorded requests to a file, one gob value each.
type bodyWriter struct {
	f   *os.File
	w   *bufio.Writer
	enc *gob.Encoder
	err error
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rv := &receiver{ln: ln}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rv.mu.Lock()
			recording := rv.rec != nil
			rv.mu.Unlock()
			var n int64
			if recording {
				body, _ := io.ReadAll(r.Body)
				n = int64(len(body))
				rv.mu.Lock()
				if bw := rv.rec; bw != nil && bw.err == nil {
					bw.err = bw.enc.Encode(recorded{Path: r.URL.Path, Header: r.Header, Body: body})
				}
				rv.mu.Unlock()
			} else {
				n, _ = io.Copy(io.Discard, r.Body)
			}
			rv.requests.Add(1)
			rv.bodyBytes.Add(n)
			w.WriteHeader(http.StatusOK)
		}))
	}()
	return rv, nil
}

func (rv *receiver) URL() string  { return "http://" + rv.ln.Addr().String() + "/" }
func (rv *receiver) Close() error { return rv.ln.Close() }

// record starts writing the requests to file; stop with stopRecording.
func (rv *receiver) record(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.rec = &bodyWriter{f: f, w: w, enc: gob.NewEncoder(w)}
	return nil
}

func (rv *receiver) stopRecording() error {
	rv.mu.Lock()
	bw := rv.rec
	rv.rec = nil
	rv.mu.Unlock()
	if bw == nil {
		return nil
	}
	err := bw.err
	if ferr := bw.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := bw.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (rv *receiver) counts() (requests, bytes int64) { return rv.requests.Load(), rv.bodyBytes.Load() }

// The floor POSTs the recorded bodies one after another, as a minimal sender would: one
// client, keep-alive, the same headers, each response read and closed before the next request.
// Its sender is a process of its own, as docora is (floorProcess): a loop inside the
// receiver's process (floorInProcess, reported for reference) hands each request over between
// goroutines of one process and skips the two process wake-ups per request that any real
// sender pays — on this 2-core VM that alone makes it 2-3× faster. The bodies are loaded
// before the clock starts.

func loadBodies(file string) ([]recorded, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	var bodies []recorded
	for {
		var r recorded
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return bodies, nil
		} else if err != nil {
			return nil, err
		}
		bodies = append(bodies, r)
	}
}

// floorProcess runs the floor's loop in a process of its own.
func (rv *receiver) floorProcess(ctx context.Context, file string) (time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	var out bytes.Buffer
	if _, err := benchmark.Run(ctx, benchmark.Command{Args: []string{self, "-floor-bodies", file, "-floor-url", rv.URL()}, Stdout: &out}); err != nil {
		return 0, err
	}
	return time.ParseDuration(strings.TrimSpace(out.String()))
}

// floorSender is the floor's process: it loads the bodies, POSTs them all and prints the time
// the loop took.
// floorInProcess runs the floor's loop runs times inside this process, the receiver's.
func (rv *receiver) floorInProcess(ctx context.Context, file string, runs int) ([]benchmark.Measurement, error) {
	bodies, err := loadBodies(file)
	if err != nil {
		return nil, err
	}
	var ms []benchmark.Measurement
	for range runs {
		d, err := postAll(ctx, strings.TrimSuffix(rv.URL(), "/"), bodies)
		if err != nil {
			return nil, err
		}
		ms = append(ms, benchmark.Measurement{Wall: d})
	}
	return ms, nil
}

func floorSender(ctx context.Context, file, url string) error {
	bodies, err := loadBodies(file)
	if err != nil {
		return err
	}
	d, err := postAll(ctx, strings.TrimSuffix(url, "/"), bodies)
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}

func postAll(ctx context.Context, base string, bodies []recorded) (time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	start := time.Now()
	for _, b := range bodies {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+b.Path, bytes.NewReader(b.Body))
		if err != nil {
			return 0, err
		}
		req.Header = b.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("floor: HTTP %d", resp.StatusCode)
		}
	}
	return time.Since(start), nil
}

// --- docora homes ---

type home struct {
	b   *bench
	dir string
}

func (b *bench) newHome(name string) (*home, error) {
	dir := filepath.Join(b.o.dir, "homes", name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	return &home{b: b, dir: dir}, nil
}

func (h *home) env() []string {
	return []string{"DOCORA_HOME=" + h.dir, "DOCORA_DB=", "DOCORA_ALLOW_PRIVATE_NETWORKS=1", "NO_COLOR=1",
		"DOCORA_LOG_LEVEL=warn", "DOCORA_ENCRYPTION_KEY="}
}

func (h *home) docora(ctx context.Context, args ...string) ([]byte, benchmark.Measurement, error) {
	var out bytes.Buffer
	m, err := benchmark.Run(ctx, benchmark.Command{Args: append([]string{h.b.docora}, args...), Env: h.env(), Stdout: &out})
	return out.Bytes(), m, err
}

// onboard creates an app delivering to the receiver and returns its id.
func (h *home) onboard(ctx context.Context, name string) (string, error) {
	out, _, err := h.docora(ctx, "app", "onboard", "--name", name, "--base-url", h.b.recv.URL(), "--email", "bench@example.com", "--json")
	if err != nil {
		return "", err
	}
	var app struct {
		AppID string `json:"app_id"`
	}
	return app.AppID, json.Unmarshal(out, &app)
}

// --- throughput ---

func (b *bench) throughput(ctx context.Context) error {
	spec := benchmark.TreeSpec{Files: b.o.files, Bytes: b.o.mb << 20, Large: b.o.large, LargeSize: b.o.largeMB << 20, Seed: 1}
	url, err := b.bigRepo(ctx, spec)
	if err != nil {
		return err
	}
	h, err := b.newHome("throughput")
	if err != nil {
		return err
	}
	sync := func(name, recordTo string) (benchmark.Measurement, int64, int64, error) {
		app, err := h.onboard(ctx, name)
		if err != nil {
			return benchmark.Measurement{}, 0, 0, err
		}
		if _, _, err := h.docora(ctx, "repo", "add", url, "--app", app); err != nil {
			return benchmark.Measurement{}, 0, 0, err
		}
		if recordTo != "" {
			if err := b.recv.record(recordTo); err != nil {
				return benchmark.Measurement{}, 0, 0, err
			}
		}
		r0, b0 := b.recv.counts()
		out, m, err := h.docora(ctx, "sync", "--app", app, "--json")
		if serr := b.recv.stopRecording(); err == nil {
			err = serr
		}
		if err != nil {
			return m, 0, 0, err
		}
		if !bytes.Contains(out, []byte(`"outcome": "synced"`)) {
			return m, 0, 0, fmt.Errorf("sync did not complete: %s", out)
		}
		r1, b1 := b.recv.counts()
		return m, r1 - r0, b1 - b0, nil
	}

	// The peak RSS of a child includes what this process held when it started the child
	// (ru_maxrss counts the memory it shared until exec): the bodies are never all in this
	// process's memory until the last docora run is done (floorInProcess comes last).
	logf("cold sync (fetch, hash, deliver) of %d files, %d MiB", spec.Files, spec.Bytes>>20)
	cold, reqs, bodyBytes, err := sync("cold", "")
	if err != nil {
		return err
	}
	logf("cold: %s, peak RSS %d MiB, %d requests, %d MiB of bodies", cold.Wall.Round(time.Millisecond), cold.MaxRSS>>20, reqs, bodyBytes>>20)

	// The bodies of one delivery, for the floor; the floor and docora then take turns, so that
	// both meet the same conditions on a shared machine.
	bodiesFile := filepath.Join(b.o.dir, "floor-bodies.gob")
	defer os.Remove(bodiesFile)
	if _, _, _, err := sync("record", bodiesFile); err != nil {
		return err
	}

	var warms, dries, floors, inProcess []benchmark.Measurement
	for i := range b.o.runs {
		d, err := b.recv.floorProcess(ctx, bodiesFile)
		if err != nil {
			return err
		}
		floors = append(floors, benchmark.Measurement{Wall: d})
		// Detection alone (a dry run of a new app: the whole tree is planned, nothing sent).
		app, err := h.onboard(ctx, fmt.Sprintf("dry-%d", i))
		if err != nil {
			return err
		}
		if _, _, err := h.docora(ctx, "repo", "add", url, "--app", app); err != nil {
			return err
		}
		_, dry, err := h.docora(ctx, "sync", "--dry-run", "--app", app)
		if err != nil {
			return err
		}
		dries = append(dries, dry)
		m, r, _, err := sync(fmt.Sprintf("warm-%d", i), "")
		if err != nil {
			return err
		}
		if r != reqs {
			return fmt.Errorf("warm run sent %d requests, the cold one %d", r, reqs)
		}
		warms = append(warms, m)
		logf("floor %d: %s; docora warm %d: %s (detection alone %s), peak RSS %d MiB", i+1, d.Round(time.Millisecond),
			i+1, m.Wall.Round(time.Millisecond), dry.Wall.Round(time.Millisecond), m.MaxRSS>>20)
	}
	if inProcess, err = b.recv.floorInProcess(ctx, bodiesFile, b.o.runs); err != nil {
		return err
	}
	debug.FreeOSMemory()

	raw := float64(spec.Bytes) / (1 << 20)
	files := float64(spec.Files)
	row := func(name string, wall time.Duration, rss int64) {
		s := wall.Seconds()
		rssText := "-"
		if rss > 0 {
			rssText = fmt.Sprintf("%d MiB", rss>>20)
		}
		fmt.Fprintf(&b.out, "| %s | %.2f s | %.0f files/s | %.1f MB/s | %s |\n", name, s, files/s, raw/s, rssText)
	}
	fs, ws, ds := benchmark.Summarise(floors), benchmark.Summarise(warms), benchmark.Summarise(dries)
	ips := benchmark.Summarise(inProcess)
	fmt.Fprintf(&b.out, "### throughput: %d files, %d MiB (%d of %d MiB), %d requests, %d MiB of request bodies\n\n",
		spec.Files, spec.Bytes>>20, spec.Large, spec.LargeSize>>20, reqs, bodyBytes>>20)
	fmt.Fprintf(&b.out, "| run | time | files/s | MiB/s (raw file bytes) | peak RSS |\n|---|---|---|---|---|\n")
	row("floor: plain Go loop POSTing the same bodies (a process of its own)", fs.Median, 0)
	row("for reference: the same loop inside the receiver's process", ips.Median, 0)
	row("docora sync, warm (process start + detection + delivery)", ws.Median, ws.MaxRSS)
	row("docora sync, warm, delivery alone (warm − dry run)", ws.Median-ds.Median, 0)
	row("docora sync, cold (fetch + hash + delivery)", cold.Wall, cold.MaxRSS)
	fmt.Fprintf(&b.out, "\nwarm docora / floor throughput: %.0f %% (delivery alone: %.0f %%; target ≥ 80 %%); "+
		"peak RSS %d MiB (target ≤ 150 MiB); dry run (detection alone) %s; "+
		"against the loop inside the receiver's process: %.0f %%\n\n",
		100*fs.Median.Seconds()/ws.Median.Seconds(), 100*fs.Median.Seconds()/(ws.Median-ds.Median).Seconds(),
		max(ws.MaxRSS, cold.MaxRSS)>>20, ds.Median.Round(time.Millisecond),
		100*ips.Median.Seconds()/ws.Median.Seconds())
	return nil
}

// bigRepo generates the repository of spec (once per spec: a marker file remembers it) and
// returns its URL on the git server.
func (b *bench) bigRepo(ctx context.Context, spec benchmark.TreeSpec) (string, error) {
	name := fmt.Sprintf("deliver-%d-%d-%d-%d.git", spec.Files, spec.Bytes>>20, spec.Large, spec.LargeSize>>20)
	bare := filepath.Join(b.root, name)
	if _, err := os.Stat(filepath.Join(bare, "docora-bench-ready")); err == nil {
		logf("reusing %s", bare)
		return b.git.URL + "/" + name, nil
	}
	work := filepath.Join(b.o.dir, "work-"+strings.TrimSuffix(name, ".git"))
	_ = os.RemoveAll(work)
	_ = os.RemoveAll(bare)
	logf("generating %d files, %d MiB in %s", spec.Files, spec.Bytes>>20, work)
	if _, err := spec.Write(work); err != nil {
		return "", err
	}
	gitEnv := []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_AUTHOR_NAME=bench",
		"GIT_AUTHOR_EMAIL=bench@example.com", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com"}
	for _, args := range [][]string{
		{"git", "-C", work, "init", "-q", "-b", "main"},
		{"git", "-C", work, "add", "-A"},
		{"git", "-C", work, "commit", "-q", "-m", "benchmark tree"},
		{"git", "clone", "-q", "--bare", work, bare},
		{"git", "-C", bare, "repack", "-a", "-d", "-q"},
	} {
		logf("%s", strings.Join(args, " "))
		if _, err := benchmark.Run(ctx, benchmark.Command{Args: args, Env: gitEnv}); err != nil {
			return "", err
		}
	}
	_ = os.RemoveAll(work)
	if err := os.WriteFile(filepath.Join(bare, "docora-bench-ready"), nil, 0o644); err != nil {
		return "", err
	}
	return b.git.URL + "/" + name, nil
}

// --- unchanged ---

func (b *bench) unchanged(ctx context.Context) error {
	n := b.o.links
	logf("unchanged: %d repositories, one link each", n)
	dir := filepath.Join(b.root, "links")
	work := filepath.Join(b.o.dir, "links-work")
	_ = os.RemoveAll(dir)
	_ = os.RemoveAll(work)
	gitEnv := []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_AUTHOR_NAME=bench",
		"GIT_AUTHOR_EMAIL=bench@example.com", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com"}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("# one file\n"), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"git", "-C", work, "init", "-q", "-b", "main"},
		{"git", "-C", work, "add", "-A"},
		{"git", "-C", work, "commit", "-q", "-m", "one file"},
	} {
		if _, err := benchmark.Run(ctx, benchmark.Command{Args: args, Env: gitEnv}); err != nil {
			return err
		}
	}
	urls := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("r%03d.git", i)
		if _, err := benchmark.Run(ctx, benchmark.Command{Args: []string{"git", "clone", "-q", "--bare", work, filepath.Join(dir, name)},
			Env: gitEnv}); err != nil {
			return err
		}
		urls[i] = b.git.URL + "/links/" + name
	}
	h, err := b.newHome("unchanged")
	if err != nil {
		return err
	}
	app, err := h.onboard(ctx, "unchanged")
	if err != nil {
		return err
	}
	for _, u := range urls {
		if _, _, err := h.docora(ctx, "repo", "add", u, "--app", app); err != nil {
			return err
		}
	}
	if _, _, err := h.docora(ctx, "sync"); err != nil {
		return err
	}

	// One docora pass and the ref listings it is compared with, in process.
	pass := func(concurrency string) (benchmark.Measurement, error) {
		out, m, err := h.docora(ctx, "sync", "--json", "--concurrency", concurrency)
		if err != nil {
			return m, err
		}
		if c := bytes.Count(out, []byte(`"outcome": "unchanged"`)); c != n {
			return m, fmt.Errorf("%d of %d links unchanged", c, n)
		}
		return m, nil
	}
	pctx := netguard.WithPolicy(ctx, netguard.Policy{AllowPrivate: true})
	listings := func(parallel int) (benchmark.Measurement, error) {
		start := time.Now()
		sem := make(chan struct{}, parallel)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for _, u := range urls {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := gitsource.ListRefs(pctx, u, gitsource.Credentials{}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		return benchmark.Measurement{Wall: time.Since(start)}, <-errs
	}
	// The four rows are measured in turn, run after run, so that the load of the machine
	// weighs on all of them alike.
	refs0, packs0 := b.git.Counts()
	var mseq, mpar, mlseq, mlpar []benchmark.Measurement
	for range b.o.runs {
		for _, step := range []struct {
			into *[]benchmark.Measurement
			run  func() (benchmark.Measurement, error)
		}{
			{&mlseq, func() (benchmark.Measurement, error) { return listings(1) }},
			{&mseq, func() (benchmark.Measurement, error) { return pass("1") }},
			{&mlpar, func() (benchmark.Measurement, error) { return listings(5) }},
			{&mpar, func() (benchmark.Measurement, error) { return pass("5") }},
		} {
			m, err := step.run()
			if err != nil {
				return err
			}
			*step.into = append(*step.into, m)
		}
	}
	refs1, packs := b.git.Counts()
	seq, par, lseq, lpar := benchmark.Summarise(mseq), benchmark.Summarise(mpar), benchmark.Summarise(mlseq), benchmark.Summarise(mlpar)
	refs1 -= int64(b.o.runs) * 2 * int64(n) // the listings'
	fmt.Fprintf(&b.out, "### unchanged: `docora sync` over %d links whose heads did not move\n\n", n)
	fmt.Fprintf(&b.out, "| run | time | per link | peak RSS | ratio to the listings |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b.out, "| %d ref listings, one at a time | %s | %s | - | |\n", n, lseq.Median.Round(time.Millisecond), (lseq.Median / time.Duration(n)).Round(10*time.Microsecond))
	fmt.Fprintf(&b.out, "| docora sync --concurrency 1 | %s | %s | %d MiB | %.2f× |\n", seq.Median.Round(time.Millisecond),
		(seq.Median / time.Duration(n)).Round(10*time.Microsecond), seq.MaxRSS>>20, seq.Median.Seconds()/lseq.Median.Seconds())
	fmt.Fprintf(&b.out, "| %d ref listings, five at a time | %s | %s | - | |\n", n, lpar.Median.Round(time.Millisecond), (lpar.Median / time.Duration(n)).Round(10*time.Microsecond))
	fmt.Fprintf(&b.out, "| docora sync (--concurrency 5, the default) | %s | %s | %d MiB | %.2f× |\n", par.Median.Round(time.Millisecond),
		(par.Median / time.Duration(n)).Round(10*time.Microsecond), par.MaxRSS>>20, par.Median.Seconds()/lpar.Median.Seconds())
	fmt.Fprintf(&b.out, "\ngit requests during the %d docora runs: %d ref listings (%d per run), %d fetches; target: docora within 1.5× of the listings\n\n",
		2*b.o.runs, refs1-refs0, (refs1-refs0)/int64(2*b.o.runs), packs-packs0)
	return nil
}
