// Package gittest provides test helpers for code that talks to git remotes: a real
// `git http-backend` server on 127.0.0.1 with request counters and private repositories, and
// fixture repositories scripted with the git binary. Tests that use it are skipped when git is
// not installed.
package gittest

import (
	"bytes"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Server is a smart-HTTP git server (`git http-backend` behind net/http/cgi) on 127.0.0.1
// serving the bare repositories below Root. It is closed when the test ends.
type Server struct {
	t    testing.TB
	root string
	srv  *httptest.Server

	mu          sync.Mutex
	uploadPacks int
	infoRefs    int
	tokens      map[string]string // repository name → required token
	failures    map[string]int    // repository name → forced status code
	stderr      bytes.Buffer
}

// NewServer starts a git http-backend server with an empty project root.
func NewServer(t testing.TB) *Server {
	t.Helper()
	execPath := gitExecPath(t)
	s := &Server{
		t:        t,
		root:     t.TempDir(),
		tokens:   map[string]string{},
		failures: map[string]int{},
	}
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull,
			"HOME=" + s.root,
		},
		Stderr: lockedWriter{mu: &s.mu, w: &s.stderr},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, backend)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, backend http.Handler) {
	name := repoName(r.URL.Path)
	s.mu.Lock()
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
		s.uploadPacks++
	case strings.HasSuffix(r.URL.Path, "/info/refs"):
		s.infoRefs++
	}
	token, private := s.tokens[name]
	status := s.failures[name]
	s.mu.Unlock()

	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if private {
		_, pass, ok := r.BasicAuth()
		if !ok || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="gittest"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
	}
	backend.ServeHTTP(w, r)
}

// repoName extracts "owner/repo.git" from a smart-HTTP request path.
func repoName(p string) string {
	p = strings.TrimPrefix(p, "/")
	for _, suffix := range []string{"/info/refs", "/git-upload-pack", "/git-receive-pack", "/HEAD"} {
		if name, ok := strings.CutSuffix(p, suffix); ok {
			return name
		}
	}
	if i := strings.Index(p, "/objects/"); i >= 0 {
		return p[:i]
	}
	return p
}

// URL returns the clone URL of the repository name ("owner/repo.git").
func (s *Server) URL(name string) string {
	return s.srv.URL + "/" + strings.TrimPrefix(name, "/")
}

// BaseURL returns the server's base URL, http://127.0.0.1:PORT.
func (s *Server) BaseURL() string { return s.srv.URL }

// Root returns the directory holding the served bare repositories (GIT_PROJECT_ROOT).
func (s *Server) Root() string { return s.root }

// Dir returns the on-disk path of the bare repository name.
func (s *Server) Dir(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(strings.TrimPrefix(name, "/")))
}

// RequireToken makes name private: requests without HTTP Basic credentials whose password is
// token get 401 with a WWW-Authenticate header. An empty token makes it public again.
func (s *Server) RequireToken(name, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token == "" {
		delete(s.tokens, name)
		return
	}
	s.tokens[name] = token
}

// Fail makes every request for name answer status (for example 500 or 503); 0 restores
// normal service.
func (s *Server) Fail(name string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.failures, name)
		return
	}
	s.failures[name] = status
}

// UploadPacks returns how many POST .../git-upload-pack requests (fetches) the server received.
func (s *Server) UploadPacks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uploadPacks
}

// InfoRefs returns how many .../info/refs requests (ref advertisements) the server received.
func (s *Server) InfoRefs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.infoRefs
}

// Stderr returns what git http-backend wrote to its standard error so far.
func (s *Server) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// gitExecPath returns `git --exec-path`, skipping the test when git is not installed.
func gitExecPath(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	return strings.TrimSpace(string(out))
}
