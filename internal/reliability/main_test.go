package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/cli"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/mirror"
	"github.com/docora/docora/pkg/webhook"
)

// childEnv marks a re-execution of the test binary as docora.
const childEnv = "DOCORA_RELIABILITY_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(cli.Main())
	}
	os.Exit(m.Run())
}

// clientKey is every test app's client auth key.
const clientKey = "reliability-client-auth-key-0123456789"

// docoraCmd returns a docora process (this binary re-executed) over home.
func docoraCmd(ctx context.Context, home string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1", "DOCORA_HOME="+home, "DOCORA_ALLOW_PRIVATE_NETWORKS=1",
		"NO_COLOR=1", "DOCORA_LOG_LEVEL=warn")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run is one finished docora process.
type run struct {
	stdout, stderr string
	code           int
}

// docora runs docora to completion (bounded to two minutes).
func docora(t *testing.T, home string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := docoraCmd(ctx, home, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("docora %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustDocora runs docora and fails the test unless it exits 0.
func mustDocora(t *testing.T, home string, args ...string) run {
	t.Helper()
	r := docora(t, home, args...)
	if r.code != 0 {
		t.Fatalf("docora %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// setupLink onboards an app delivering to baseURL and registers cloneURL for it; it returns
// the app and repository ids.
func setupLink(t *testing.T, home, name, baseURL, cloneURL string) (appID, repoID string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(clientKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var app struct {
		AppID string `json:"app_id"`
	}
	out := mustDocora(t, home, "app", "onboard", "--name", name, "--base-url", baseURL,
		"--email", "ops@example.com", "--client-auth-key-file", keyFile, "--json")
	if err := json.Unmarshal([]byte(out.stdout), &app); err != nil {
		t.Fatalf("onboard output: %v\n%s", err, out.stdout)
	}
	var repo struct {
		RepositoryID string `json:"repository_id"`
	}
	out = mustDocora(t, home, "repo", "add", cloneURL, "--app", app.AppID, "--json")
	if err := json.Unmarshal([]byte(out.stdout), &repo); err != nil {
		t.Fatalf("repo add output: %v\n%s", err, out.stdout)
	}
	return app.AppID, repo.RepositoryID
}

// linkStatus is a row of `docora status --json`.
type linkStatus struct {
	AppID          string  `json:"app_id"`
	RepositoryID   string  `json:"repository_id"`
	Status         string  `json:"status"`
	CommitSHA      *string `json:"commit_sha"`
	FilesDelivered int     `json:"files_delivered"`
	RetryCount     int     `json:"retry_count"`
	LastError      *string `json:"last_error"`
}

func status(t *testing.T, home string) []linkStatus {
	t.Helper()
	var out []linkStatus
	r := mustDocora(t, home, "status", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("status output: %v\n%s", err, r.stdout)
	}
	return out
}

// syncResult is an element of `docora sync --json`.
type syncResult struct {
	AppID        string `json:"app_id"`
	RepositoryID string `json:"repository_id"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason"`
	Error        string `json:"error"`
	Delivered    struct {
		Created, Updated, Deleted int
	} `json:"delivered"`
}

func parseResults(t *testing.T, stdout string) []syncResult {
	t.Helper()
	var out []syncResult
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("sync --json output: %v\n%s", err, stdout)
	}
	return out
}

// request is one webhook request as the receiver saw it.
type request struct {
	Endpoint   string
	Delivery   string
	Path       string
	SHA        string
	ChunkIndex int // -1: not chunked
	ChunkTotal int
	Status     int
	At         time.Time // when it arrived
}

// complete reports whether the request finished its change: a 2xx on the only or last chunk.
func (r request) complete() bool {
	return r.Status >= 200 && r.Status < 300 && (r.ChunkIndex < 0 || r.ChunkIndex == r.ChunkTotal-1)
}

// receiver is a real mirror receiver on 127.0.0.1 that records every request. Its mirror can
// be replaced (a fresh directory for each trial) and a hook may hold or fail requests.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu    sync.Mutex
	h     *mirror.Handler
	dir   string
	reqs  []request
	hook  func(n int, r request) int // before handling; a non-zero status is answered instead
	delay time.Duration
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rv := &receiver{t: t}
	rv.reset()
	rv.srv = httptest.NewServer(http.HandlerFunc(rv.serve))
	t.Cleanup(rv.srv.Close)
	t.Cleanup(func() {
		rv.mu.Lock()
		defer rv.mu.Unlock()
		rv.h.Close()
	})
	return rv
}

func (rv *receiver) URL() string { return rv.srv.URL }

// reset gives the receiver an empty mirror directory and forgets the requests.
func (rv *receiver) reset() {
	dir := rv.t.TempDir()
	h, err := mirror.New(mirror.Options{Dir: dir, Key: []byte(clientKey),
		Reassembler: webhook.ReassemblerOptions{Dir: rv.t.TempDir()}})
	if err != nil {
		rv.t.Fatal(err)
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.h != nil {
		rv.h.Close()
	}
	rv.h, rv.dir, rv.reqs = h, dir, nil
}

func (rv *receiver) setHook(f func(n int, r request) int) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.hook = f
}

func (rv *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	rq := request{Endpoint: strings.TrimPrefix(r.URL.Path, "/"), Delivery: r.Header.Get(webhook.HeaderDelivery),
		ChunkIndex: -1, At: time.Now()}
	var ev struct {
		File struct {
			Path  string         `json:"path"`
			SHA   string         `json:"sha"`
			Chunk *webhook.Chunk `json:"chunk"`
		} `json:"file"`
	}
	if json.Unmarshal(body, &ev) == nil {
		rq.Path, rq.SHA = ev.File.Path, ev.File.SHA
		if ev.File.Chunk != nil {
			rq.ChunkIndex, rq.ChunkTotal = ev.File.Chunk.Index, ev.File.Chunk.Total
		}
	}
	rv.mu.Lock()
	n := len(rv.reqs)
	rv.reqs = append(rv.reqs, rq)
	h, hook, delay := rv.h, rv.hook, rv.delay
	rv.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	code := 0
	if hook != nil {
		code = hook(n, rq)
	}
	if code != 0 {
		w.WriteHeader(code)
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		code = sw.code
	}
	rv.mu.Lock()
	if n < len(rv.reqs) {
		rv.reqs[n].Status = code
	}
	rv.mu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (rv *receiver) requests() []request {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]request(nil), rv.reqs...)
}

func (rv *receiver) mirrorDir() string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.dir
}

// completions counts complete deliveries per delivery id.
func completions(reqs []request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		if r.complete() {
			out[r.Delivery]++
		}
	}
	return out
}

// readTree returns the regular files below dir (path → content), skipping .git.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mirrorDiff describes how the mirror differs from the repository's work tree ("" if exact).
func mirrorDiff(repo, mirror map[string]string) string {
	var b strings.Builder
	for p, c := range repo {
		if m, ok := mirror[p]; !ok {
			fmt.Fprintf(&b, "missing %s; ", p)
		} else if m != c {
			fmt.Fprintf(&b, "different %s; ", p)
		}
	}
	for p := range mirror {
		if _, ok := repo[p]; !ok {
			fmt.Fprintf(&b, "extra %s; ", p)
		}
	}
	return b.String()
}

// newRepo starts a git server with one repository holding files.
func newRepo(t *testing.T, name string, files map[string]string) (*gittest.Server, *gittest.Repo) {
	t.Helper()
	git := gittest.NewServer(t)
	repo := gittest.NewRepo(t, git, name)
	for p, c := range files {
		repo.WriteFile(p, c)
	}
	repo.Commit("fixture")
	repo.Push()
	return git, repo
}
