package gittest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a work repository whose pushes go straight to a bare repository on disk (the one a
// Server serves). Every method fails the test on error. Commits are deterministic: fixed author,
// committer and dates that advance by one minute per commit.
type Repo struct {
	t      testing.TB
	srv    *Server
	name   string
	dir    string // work tree
	bare   string
	branch string
	env    []string
	ticks  int
	orphan int
}

// Option configures NewRepo.
type Option func(*repoOptions)

type repoOptions struct {
	branch string
}

// WithBranch sets the default branch (the bare repository's HEAD and the branch Push updates);
// the default is "main".
func WithBranch(branch string) Option {
	return func(o *repoOptions) { o.branch = branch }
}

// NewRepo creates the bare repository name ("owner/repo.git") below srv's root, with no commits,
// and a work repository to script its history. srv may be nil: the bare repository is then
// created in a temporary directory and URL returns its file:// URL.
func NewRepo(t testing.TB, srv *Server, name string, opts ...Option) *Repo {
	t.Helper()
	gitExecPath(t) // skips without git
	o := repoOptions{branch: "main"}
	for _, opt := range opts {
		opt(&o)
	}
	home := t.TempDir()
	r := &Repo{
		t:      t,
		srv:    srv,
		name:   name,
		dir:    filepath.Join(home, "work"),
		branch: o.branch,
		env: append(os.Environ(),
			"HOME="+home,
			"XDG_CONFIG_HOME="+home,
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL="+os.DevNull,
			"GIT_TERMINAL_PROMPT=0",
			"GIT_LITERAL_PATHSPECS=1",
			"GIT_AUTHOR_NAME=Docora Test",
			"GIT_AUTHOR_EMAIL=test@docora.invalid",
			"GIT_COMMITTER_NAME=Docora Test",
			"GIT_COMMITTER_EMAIL=test@docora.invalid",
			"LC_ALL=C",
		),
	}
	if srv != nil {
		r.bare = srv.Dir(name)
	} else {
		r.bare = filepath.Join(home, "remote", filepath.FromSlash(name))
	}
	if err := os.MkdirAll(filepath.Dir(r.bare), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.gitIn("", "-c", "init.defaultBranch="+o.branch, "init", "-q", "--bare", r.bare)
	r.Git("-c", "init.defaultBranch="+o.branch, "init", "-q")
	r.Git("config", "core.autocrlf", "false")
	r.Git("config", "core.symlinks", "true")
	r.Git("config", "commit.gpgsign", "false")
	r.Git("remote", "add", "origin", r.bare)
	return r
}

// Git runs git with args in the work tree and returns its trimmed standard output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return r.gitIn(r.dir, args...)
}

func (r *Repo) gitIn(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(r.env,
		fmt.Sprintf("GIT_AUTHOR_DATE=2026-01-01T00:%02d:00Z", r.ticks%60),
		fmt.Sprintf("GIT_COMMITTER_DATE=2026-01-01T%02d:%02d:00Z", r.ticks/60, r.ticks%60))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// Name returns the repository name given to NewRepo.
func (r *Repo) Name() string { return r.name }

// Dir returns the work tree.
func (r *Repo) Dir() string { return r.dir }

// BareDir returns the bare repository pushes go to.
func (r *Repo) BareDir() string { return r.bare }

// Branch returns the default branch.
func (r *Repo) Branch() string { return r.branch }

// URL returns the clone URL: the server's URL, or a file:// URL without a server.
func (r *Repo) URL() string {
	if r.srv != nil {
		return r.srv.URL(r.name)
	}
	return "file://" + filepath.ToSlash(r.bare)
}

func (r *Repo) path(p string) string {
	full := filepath.Join(r.dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	return full
}

// WriteFile writes content to path (slash-separated, created with its directories) and stages it.
func (r *Repo) WriteFile(path, content string) {
	r.t.Helper()
	if err := os.WriteFile(r.path(path), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.Git("add", "--", path)
}

// Remove deletes path (a file or a directory) and stages the deletion.
func (r *Repo) Remove(path string) {
	r.t.Helper()
	r.Git("rm", "-r", "-q", "--cached", "--", path)
	if err := os.RemoveAll(filepath.Join(r.dir, filepath.FromSlash(path))); err != nil {
		r.t.Fatal(err)
	}
}

// Symlink creates a symbolic link at path pointing to target and stages it.
func (r *Repo) Symlink(path, target string) {
	r.t.Helper()
	full := r.path(path)
	_ = os.Remove(full)
	if err := os.Symlink(target, full); err != nil {
		r.t.Fatal(err)
	}
	r.Git("add", "--", path)
}

// Chmod sets or clears the executable bit of path in the index (and on disk).
func (r *Repo) Chmod(path string, executable bool) {
	r.t.Helper()
	mode, flag := os.FileMode(0o644), "-x"
	if executable {
		mode, flag = 0o755, "+x"
	}
	if err := os.Chmod(filepath.Join(r.dir, filepath.FromSlash(path)), mode); err != nil {
		r.t.Fatal(err)
	}
	r.Git("update-index", "--chmod="+flag, "--", path)
}

// AddSubmodule stages a gitlink (mode 160000) at path pointing to commit, without a .gitmodules
// entry or a checkout: enough for a tree to contain a submodule.
func (r *Repo) AddSubmodule(path, commit string) {
	r.t.Helper()
	r.Git("update-index", "--add", "--cacheinfo", "160000,"+commit+","+path)
}

// Commit commits everything staged (an empty commit when nothing is) and returns its hash.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	r.ticks++
	r.Git("commit", "-q", "--allow-empty", "--no-verify", "-m", msg)
	return r.Head()
}

// Head returns the hash of the work repository's current commit.
func (r *Repo) Head() string {
	r.t.Helper()
	return r.Git("rev-parse", "HEAD")
}

// Push updates the remote's default branch to the current commit (fast-forward only).
func (r *Repo) Push() {
	r.t.Helper()
	r.Git("push", "-q", "origin", "HEAD:refs/heads/"+r.branch)
}

// ForcePush updates the remote's default branch to the current commit, whatever it was.
func (r *Repo) ForcePush() {
	r.t.Helper()
	r.Git("push", "-q", "--force", "origin", "HEAD:refs/heads/"+r.branch)
}

// PushBranch sets the remote branch to the current commit (forced).
func (r *Repo) PushBranch(branch string) {
	r.t.Helper()
	r.Git("push", "-q", "--force", "origin", "HEAD:refs/heads/"+branch)
}

// DeleteBranch removes branch from the remote.
func (r *Repo) DeleteBranch(branch string) {
	r.t.Helper()
	r.Git("push", "-q", "origin", "--delete", branch)
}

// Reset moves the work repository to commit (work tree and index too); ForcePush then moves the
// remote backwards.
func (r *Repo) Reset(commit string) {
	r.t.Helper()
	r.Git("reset", "-q", "--hard", commit)
}

// Orphan starts an unrelated history: a new local branch with no commits and an empty index and
// work tree. The next Commit is a root commit; ForcePush then replaces the remote's history.
func (r *Repo) Orphan() {
	r.t.Helper()
	r.orphan++
	r.Git("checkout", "-q", "--orphan", fmt.Sprintf("orphan-%d", r.orphan))
	r.Git("rm", "-r", "-q", "-f", "--ignore-unmatch", "--", ".")
}

// SetRemoteHEAD points the remote's HEAD (its default branch) at branch.
func (r *Repo) SetRemoteHEAD(branch string) {
	r.t.Helper()
	r.gitIn(r.bare, "symbolic-ref", "HEAD", "refs/heads/"+branch)
}

// GC runs git gc --prune=now on the remote, so that objects no longer reachable (after a
// force-push) are really gone.
func (r *Repo) GC() {
	r.t.Helper()
	r.gitIn(r.bare, "reflog", "expire", "--expire=now", "--all")
	r.gitIn(r.bare, "gc", "-q", "--prune=now")
}
