// Package githubtest serves the part of the GitHub REST API that docora uses, on 127.0.0.1, so
// tests across the project can verify repositories without contacting github.com.
package githubtest

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RepoOpts describes a repository served by a Server.
type RepoOpts struct {
	Private bool
	// DefaultBranch defaults to "main".
	DefaultBranch string
	// Token grants access to this repository; required for a private one. Any token added to
	// the server is valid (no 401), but only a repository's own token sees it when private.
	Token string
}

// Server is a fake GitHub REST API. Lookups of owner/name are case-insensitive, like GitHub's.
type Server struct {
	srv      *httptest.Server
	requests atomic.Int64

	mu        sync.Mutex
	repos     map[string]repo // key: lowercased full name
	tokens    map[string]bool
	limitedAt time.Time // rate limited until; zero: not limited
	webURL    string
}

type repo struct {
	fullName string
	opts     RepoOpts
}

// NewServer starts a Server on 127.0.0.1; it is closed when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{repos: map[string]repo{}, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}", s.getRepo)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("githubtest: listen: %v", err)
	}
	s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: s.count(mux)}}
	s.srv.Start()
	s.webURL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base URL, with the trailing slash go-github requires.
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close stops the server early (it is closed at the end of the test anyway).
func (s *Server) Close() { s.srv.Close() }

// SetWebURL sets the web base used for html_url and clone_url (default: the server's own URL),
// e.g. the URL of a test git server passed as DOCORA_GITHUB_URL.
func (s *Server) SetWebURL(base string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webURL = strings.TrimSuffix(base, "/")
}

// AddRepo serves the repository fullName ("owner/name", in its canonical case).
func (s *Server) AddRepo(fullName string, opts RepoOpts) {
	if opts.Private && opts.Token == "" {
		panic("githubtest: a private repository needs a Token")
	}
	if opts.DefaultBranch == "" {
		opts.DefaultBranch = "main"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[strings.ToLower(fullName)] = repo{fullName: fullName, opts: opts}
	if opts.Token != "" {
		s.tokens[opts.Token] = true
	}
}

// RateLimit makes every request fail with GitHub's primary rate-limit answer (403,
// X-RateLimit-Remaining: 0, X-RateLimit-Reset) until resetAt; the zero time lifts it.
// The limit is lifted by this call only, not by the clock.
func (s *Server) RateLimit(resetAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitedAt = resetAt
}

// Requests is the number of requests served so far.
func (s *Server) Requests() int { return int(s.requests.Load()) }

func (s *Server) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	limited := s.limitedAt
	rp, found := s.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
	token, hasToken := bearer(r)
	validToken := s.tokens[token]
	web := s.webURL
	s.mu.Unlock()

	limit := 60
	if hasToken {
		limit = 5000
	}
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(limit))
	w.Header().Set("X-RateLimit-Resource", "core")
	if !limited.IsZero() {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Used", strconv.Itoa(limit))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(limited.Unix(), 10))
		writeJSON(w, http.StatusForbidden, map[string]string{
			"message":           "API rate limit exceeded for 127.0.0.1.",
			"documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
		})
		return
	}
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(limit-1))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))

	if hasToken && !validToken {
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"message":           "Bad credentials",
			"documentation_url": "https://docs.github.com/rest",
		})
		return
	}
	if !found || rp.opts.Private && token != rp.opts.Token {
		writeJSON(w, http.StatusNotFound, map[string]string{
			"message":           "Not Found",
			"documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
		})
		return
	}
	owner, name, _ := strings.Cut(rp.fullName, "/")
	visibility := "public"
	if rp.opts.Private {
		visibility = "private"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":             len(rp.fullName),
		"name":           name,
		"full_name":      rp.fullName,
		"owner":          map[string]any{"login": owner},
		"private":        rp.opts.Private,
		"visibility":     visibility,
		"default_branch": rp.opts.DefaultBranch,
		"html_url":       web + "/" + rp.fullName,
		"clone_url":      web + "/" + rp.fullName + ".git",
	})
}

// bearer returns the token of an "Authorization: Bearer T" or "token T" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	for _, p := range []string{"Bearer ", "bearer ", "token "} {
		if t, ok := strings.CutPrefix(h, p); ok {
			return t, true
		}
	}
	return h, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a client that went away is not the server's failure
}
