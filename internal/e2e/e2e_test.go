// Package e2e holds docora's end-to-end tests: the real CLI (run in-process) syncing a real git
// server into real `docora receive` mirrors, checked byte for byte against git after every
// commit.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/docora/docora/internal/cli"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/output"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is the environment every in-process docora sees: its own home, local targets allowed.
type env struct {
	t    *testing.T
	ctx  context.Context
	vars map[string]string
}

func newEnv(t *testing.T, ctx context.Context) *env {
	return &env{t: t, ctx: ctx, vars: map[string]string{
		"DOCORA_HOME":                   filepath.Join(t.TempDir(), "home"),
		"DOCORA_ALLOW_PRIVATE_NETWORKS": "1",
		"NO_COLOR":                      "1",
	}}
}

func (e *env) getenv(k string) string { return e.vars[k] }

// docora runs the CLI in-process and returns its exit code, stdout and stderr.
func (e *env) docora(args ...string) (int, string, string) {
	e.t.Helper()
	var out, errOut syncBuffer
	code := cli.Run(e.ctx, args, &output.IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, e.getenv)
	return code, out.String(), errOut.String()
}

// mustJSON runs docora, requires exit code 0 and decodes its JSON output into v.
func (e *env) mustJSON(v any, args ...string) {
	e.t.Helper()
	code, out, errOut := e.docora(args...)
	if code != 0 {
		e.t.Fatalf("docora %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("docora %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

var listening = regexp.MustCompile(`listening on (http://[^,\s]+),`)

// receiver is a real `docora receive`, run in-process until the test ends.
type receiver struct {
	url    string
	dir    string
	stderr *syncBuffer
}

func (e *env) startReceive(name, key string) *receiver {
	e.t.Helper()
	base := e.t.TempDir()
	keyFile := filepath.Join(base, "key.txt")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	r := &receiver{dir: filepath.Join(base, name), stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(ctx, []string{"receive", "--addr", "127.0.0.1:0", "--dir", r.dir, "--client-auth-key-file", keyFile},
			&output.IO{In: strings.NewReader(""), Out: &syncBuffer{}, ErrOut: r.stderr}, e.getenv)
	}()
	e.t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			e.t.Errorf("docora receive %s exited with %d: %s", name, code, r.stderr.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := listening.FindStringSubmatch(r.stderr.String()); m != nil {
			r.url = m[1]
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("docora receive %s did not start: %s", name, r.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flaky is a reverse proxy in front of a receiver that answers 503 while down is set.
type flaky struct {
	down      atomic.Bool
	refused   atomic.Int64
	forwarded atomic.Int64
	proxy     *httputil.ReverseProxy
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() {
		f.refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"down for maintenance"}`))
		return
	}
	f.forwarded.Add(1)
	f.proxy.ServeHTTP(w, r)
}

// expectedTree returns what a mirror of the commit at HEAD holds: every regular and executable
// file (path → git blob id), without symlinks, submodules and what the commit's .docoraignore
// ignores. It asks git, independently of docora's own tree walk and ignore matcher.
func expectedTree(t *testing.T, repo *gittest.Repo) map[string]string {
	t.Helper()
	out := map[string]string{}
	for rec := range strings.SplitSeq(repo.Git("ls-tree", "-r", "-z", "--full-tree", "HEAD"), "\x00") {
		if rec == "" {
			continue
		}
		meta, path, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			t.Fatalf("ls-tree record %q", rec)
		}
		if f[0] == "100644" || f[0] == "100755" {
			out[path] = f[2]
		}
	}
	if _, ok := out[".docoraignore"]; !ok {
		return out
	}
	rules := filepath.Join(t.TempDir(), "docoraignore")
	if err := os.WriteFile(rules, []byte(repo.Git("show", "HEAD:.docoraignore")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for p := range out {
		in.WriteString(p)
		in.WriteByte(0)
	}
	cmd := exec.Command("git", "-c", "core.excludesFile="+rules, "check-ignore", "--no-index", "--stdin", "-z")
	cmd.Dir = repo.Dir()
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "HOME="+t.TempDir())
	cmd.Stdin = &in
	ignored, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		err = nil // nothing ignored
	}
	if err != nil {
		t.Fatalf("git check-ignore: %v", err)
	}
	for p := range strings.SplitSeq(string(ignored), "\x00") {
		delete(out, p)
	}
	return out
}

// mirrorTree returns every file of dir with its git blob id, and fails on anything that is not
// a regular file or directory and on empty directories (git has none, and the receiver removes
// the directories a delete empties).
func mirrorTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			if entries, err := os.ReadDir(p); err == nil && len(entries) == 0 && rel != "." {
				t.Errorf("mirror %s: empty directory %s", dir, rel)
			}
			return nil
		case !d.Type().IsRegular():
			t.Errorf("mirror %s: %s is not a regular file (%v)", dir, rel, d.Type())
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00", len(b))
		h.Write(b)
		out[rel] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails the test when got differs from want, listing the differences.
func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for p, id := range want {
		switch g, ok := got[p]; {
		case !ok:
			diffs = append(diffs, "missing "+p)
		case g != id:
			diffs = append(diffs, "different "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "extra "+p)
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Fatalf("%s differs from the commit (%d files expected): %q", what, len(want), diffs)
	}
}

// syncResult is the part of `docora sync --json` the test checks.
type syncResult struct {
	AppID     string `json:"app_id"`
	Outcome   string `json:"outcome"`
	CommitSHA string `json:"commit_sha"`
	Files     int    `json:"files"`
	Delivered struct {
		Created int `json:"created"`
		Updated int `json:"updated"`
		Deleted int `json:"deleted"`
	} `json:"delivered"`
	Error string `json:"error"`
}

// content helpers

func randomBytes(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// textOf returns numbered copies of line, cut to at most n bytes on a character boundary.
func textOf(line string, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%05d %s\n", i, line)
	}
	s := b.String()
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
