package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docora/docora/internal/github"
	"github.com/docora/docora/internal/githubtest"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

// webBase is the GitHub web host of the tests; the fake API answers for it.
const webBase = "https://github.example"

const privateToken = "ghp_privateTokenValue0123456789"

// syncBuffer is a log sink that tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// env is a server over a real SQLite store and registry, with a fake GitHub API.
type env struct {
	t     *testing.T
	st    *store.Store
	reg   *registry.Service
	api   *githubtest.Server
	srv   *Server
	h     http.Handler
	wakes atomic.Int32
	logs  *syncBuffer
}

type envOption func(e *env, o *Options)

// strictNetwork applies the production network guard to base URLs and git remotes.
func strictNetwork(e *env, _ *Options) {
	e.reg.Policy = netguard.Policy{}
	v, err := github.NewVerifier(e.api.URL(), nil, gitsource.BranchLister{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.reg.Verifier = v
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
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
	api := githubtest.NewServer(t)
	api.SetWebURL(webBase)
	api.AddRepo("acme/docs", githubtest.RepoOpts{DefaultBranch: "main"})
	api.AddRepo("acme/Trunk-Repo", githubtest.RepoOpts{DefaultBranch: "trunk"})
	api.AddRepo("acme/private", githubtest.RepoOpts{Private: true, Token: privateToken})
	allow := netguard.Policy{AllowPrivate: true}
	v, err := github.NewVerifier(api.URL(), nil, gitsource.BranchLister{Policy: allow})
	if err != nil {
		t.Fatal(err)
	}
	gh, _ := url.Parse(webBase)
	e := &env{t: t, st: st, api: api, logs: &syncBuffer{}}
	e.reg = &registry.Service{Store: st, Verifier: v, Caches: gitsource.Open(t.TempDir()), GitHubURL: gh, Policy: allow}
	o := Options{
		Store: st, Registry: e.reg, Wake: func() { e.wakes.Add(1) },
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:    VersionInfo{Version: "1.2.3", Commit: "abc123", Date: "2026-01-01T00:00:00Z"},
		AdminToken: "admin-secret-token", RateLimit: -1,
	}
	for _, opt := range opts {
		opt(e, &o)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(st, o.Logger, nil)
	}
	e.reg.Logger = o.Logger
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.h = srv, srv.Handler()
	return e
}

func withOptions(f func(*Options)) envOption {
	return func(_ *env, o *Options) { f(o) }
}

// req is one request to the handler.
type req struct {
	method, path, body string
	token              string // Authorization: Bearer token ("" none)
	contentType        string // default application/json when body is set
	client             string // RemoteAddr host (default 192.0.2.1)
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	client := r.client
	if client == "" {
		client = "192.0.2.1"
	}
	hr.RemoteAddr = client + ":40000"
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	return w
}

// expect checks the status and that the body is JSON; it returns the decoded body.
func expect(t *testing.T, w *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body.String())
	}
	if status == http.StatusNoContent {
		if w.Body.Len() != 0 {
			t.Fatalf("204 with a body: %q", w.Body.String())
		}
		return nil
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var v map[string]any
	if strings.HasPrefix(strings.TrimSpace(w.Body.String()), "[") {
		return nil
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, w.Body.String())
	}
	return v
}

// expectError checks the status and that the body is {"error": msg} with msg containing want.
func expectError(t *testing.T, w *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	v := expect(t, w, status)
	msg, ok := v["error"].(string)
	if !ok || len(v) != 1 {
		t.Fatalf("body %s, want {\"error\": ...}", w.Body.String())
	}
	if !strings.Contains(msg, want) {
		t.Fatalf("error %q, want it to contain %q", msg, want)
	}
}

// app onboards an app directly through the registry and returns its id and token.
func (e *env) app(name string) (id, token string) {
	e.t.Helper()
	out, err := e.reg.Onboard(context.Background(), registry.AppInput{Name: name, Email: "ops@example.com",
		BaseURL: "https://hooks.example.com/" + strings.ReplaceAll(name, " ", "-"), ClientAuthKey: "0123456789abcdef-key"})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.App.ID, out.Token
}

// register makes the app watch owner/name through the API and returns the repository id.
func (e *env) register(token, repo string) string {
	e.t.Helper()
	w := e.do(req{method: "POST", path: "/api/repositories", token: token, body: `{"github_url":"` + repo + `"}`})
	v := expect(e.t, w, http.StatusCreated)
	return v["repository_id"].(string)
}

func (e *env) links(appID string) []store.LinkView {
	e.t.Helper()
	l, err := e.st.ListLinks(context.Background(), store.LinkFilter{AppID: appID})
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

func (e *env) apps() []store.App {
	e.t.Helper()
	a, err := e.st.ListApps(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// openCircuit opens the repository's circuit breaker until until.
func (e *env) openCircuit(repoID string, until time.Time) {
	e.t.Helper()
	if _, err := e.st.DB().Exec(`UPDATE repositories SET consecutive_failures = 5, circuit_open_until = ? WHERE repository_id = ?`,
		until.UTC().Format(store.TimeLayout), repoID); err != nil {
		e.t.Fatal(err)
	}
}
