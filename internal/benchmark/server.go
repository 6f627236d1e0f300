package benchmark

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/docora/docora/internal/gitserve"
)

// Server is a smart-HTTP git server on 127.0.0.1 serving the bare repositories below a root
// directory, counting ref advertisements and pack requests.
type Server struct {
	Name string // "http-backend" or "gitserve"
	URL  string // http://127.0.0.1:PORT

	srv         *http.Server
	infoRefs    atomic.Int64
	uploadPacks atomic.Int64
	mu          sync.Mutex
	stderr      bytes.Buffer
}

// NewHTTPBackend serves root with `git http-backend` behind net/http/cgi: the test server of
// docora's integration tests (a CGI process per request).
func NewHTTPBackend(root string) (*Server, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git --exec-path: %w", err)
	}
	s := &Server{Name: "http-backend"}
	h := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull, "HOME=" + root},
		Stderr: writerFunc(func(p []byte) (int, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.stderr.Write(p)
		}),
	}
	return s, s.start(h)
}

// NewGitserve serves root with docora's pure-Go server (internal/gitserve).
func NewGitserve(root string) (*Server, error) {
	s := &Server{Name: "gitserve"}
	return s, s.start(gitserve.NewHandler(root))
}

func (s *Server) start(h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.URL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/info/refs"):
			s.infoRefs.Add(1)
		case strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			s.uploadPacks.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Counts returns the ref advertisements and upload-pack requests served so far.
func (s *Server) Counts() (infoRefs, uploadPacks int64) {
	return s.infoRefs.Load(), s.uploadPacks.Load()
}

// Stderr returns what the git backend wrote to its standard error.
func (s *Server) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
