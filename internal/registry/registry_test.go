package registry

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/internal/github"
	"github.com/docora/docora/internal/githubtest"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

type env struct {
	svc   *Service
	api   *githubtest.Server
	git   *gittest.Server
	appID string
}

const privateToken = "ghp_privateToken0123456789"

// newEnv wires the registry to a real store, a real git smart-HTTP server and a local server
// speaking the GitHub REST API, with a few repositories on both.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "docora.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secrets.NewBox(bytes.Repeat([]byte{9}, 32))
	if err := st.UseKey(ctx, box); err != nil {
		t.Fatal(err)
	}
	git := gittest.NewServer(t)
	api := githubtest.NewServer(t)
	api.SetWebURL(git.BaseURL())
	for _, r := range []struct {
		name, branch string
		private      bool
	}{{"acme/docs", "main", false}, {"acme/trunk", "trunk", false}, {"vercel/next.js", "main", false}, {"acme/private", "main", true}} {
		repo := gittest.NewRepo(t, git, r.name+".git", gittest.WithBranch(r.branch))
		repo.WriteFile("a.txt", "a\n")
		repo.Commit("first")
		repo.Push()
		opts := githubtest.RepoOpts{DefaultBranch: r.branch}
		if r.private {
			git.RequireToken(r.name+".git", privateToken)
			opts.Private, opts.Token = true, privateToken
		}
		api.AddRepo(r.name, opts)
	}
	plain := gittest.NewRepo(t, git, "team/plain.git", gittest.WithBranch("develop"))
	plain.WriteFile("x", "x\n")
	plain.Commit("first")
	plain.Push()

	policy := netguard.Policy{AllowPrivate: true}
	v, err := github.NewVerifier(api.URL(), nil, gitsource.BranchLister{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(git.BaseURL())
	svc := &Service{Store: st, Verifier: v, GitHubURL: base, Policy: policy}
	res, err := svc.Onboard(ctx, AppInput{Name: "Docs app", Email: "ops@example.com", BaseURL: "https://docs.example.com/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, api: api, git: git, appID: res.App.ID}
}

func TestAddRepository(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := "http://localhost:" + e.git.BaseURL()[strings.LastIndexByte(e.git.BaseURL(), ':')+1:]
	tests := []struct {
		name       string
		in         RepoInput
		wantURL    string
		wantBranch string
		private    bool
		wantErr    error
	}{
		{name: "public owner/repo shorthand", in: RepoInput{URL: "acme/docs"}, wantURL: "/acme/docs", wantBranch: "main"},
		{name: ".git suffix and letter case", in: RepoInput{URL: e.git.BaseURL() + "/ACME/Docs.git"}, wantURL: "/acme/docs", wantBranch: "main"},
		{name: "default branch trunk", in: RepoInput{URL: "acme/trunk"}, wantURL: "/acme/trunk", wantBranch: "trunk"},
		{name: "dotted name", in: RepoInput{URL: "vercel/next.js"}, wantURL: "/vercel/next.js", wantBranch: "main"},
		{name: "private with token", in: RepoInput{URL: "acme/private", Token: privateToken}, wantURL: "/acme/private", wantBranch: "main", private: true},
		{name: "private without token", in: RepoInput{URL: "acme/private"}, wantErr: github.ErrNotFound},
		{name: "wrong token", in: RepoInput{URL: "acme/private", Token: "ghp_wrong_token_value"}, wantErr: github.ErrBadCredentials},
		{name: "404", in: RepoInput{URL: "acme/missing"}, wantErr: github.ErrNotFound},
		{name: "generic remote", in: RepoInput{URL: other + "/team/plain.git"}, wantURL: other + "/team/plain.git", wantBranch: "develop"},
		{name: "generic remote 404", in: RepoInput{URL: other + "/team/missing.git"}, wantErr: gitsource.ErrNotFound},
		{name: "malformed URL", in: RepoInput{URL: "ftp://example.com/a/b"}, wantErr: github.ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := e.svc.AddRepository(ctx, e.appID, tt.in)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want %v", tt.wantErr)
				}
				var ve *ValidationError
				if !errors.Is(err, tt.wantErr) && !(errors.As(err, &ve) && errors.Is(tt.wantErr, github.ErrInvalidURL)) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.in.Token != "" && strings.Contains(err.Error(), tt.in.Token) {
					t.Fatalf("error leaks the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantURL
			if strings.HasPrefix(want, "/") {
				want = e.git.BaseURL() + want
			}
			if v.Repo.URL != want || v.Repo.Branch != tt.wantBranch || v.Repo.Private != tt.private {
				t.Fatalf("registered %s@%s private=%v, want %s@%s private=%v", v.Repo.URL, v.Repo.Branch, v.Repo.Private,
					want, tt.wantBranch, tt.private)
			}
		})
	}
	// Three spellings of acme/docs are one repository.
	links, err := e.svc.Store.ListLinks(ctx, store.LinkFilter{AppID: e.appID})
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 5 {
		t.Fatalf("%d links, want 5 (acme/docs once, trunk, next.js, private, plain)", len(links))
	}
}

func TestAddRepositoryRateLimited(t *testing.T) {
	e := newEnv(t)
	reset := time.Now().Add(17 * time.Minute).Truncate(time.Second)
	e.api.RateLimit(reset)
	_, _, err := e.svc.AddRepository(context.Background(), e.appID, RepoInput{URL: "acme/docs"})
	var rl *github.RateLimitError
	if !errors.As(err, &rl) || !rl.Reset.Equal(reset) {
		t.Fatalf("err = %v, want a rate limit error resetting at %v", err, reset)
	}
	if !strings.Contains(err.Error(), reset.UTC().Format("15:04")) {
		t.Errorf("message does not give the reset time: %v", err)
	}
	if links, _ := e.svc.Store.ListLinks(context.Background(), store.LinkFilter{}); len(links) != 0 {
		t.Fatalf("a rate-limited registration stored %d links", len(links))
	}
}

func TestOnboardValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	strict := &Service{Store: e.svc.Store, Policy: netguard.Policy{}}
	tests := []struct {
		name  string
		in    AppInput
		field string
	}{
		{"short name", AppInput{Name: "ab", Email: "a@example.com", BaseURL: "https://a.example.com"}, "name"},
		{"long name", AppInput{Name: strings.Repeat("n", 101), Email: "a@example.com", BaseURL: "https://a.example.com"}, "name"},
		{"bad email", AppInput{Name: "App", Email: "nope", BaseURL: "https://a.example.com"}, "email"},
		{"long description", AppInput{Name: "App", Email: "a@example.com", BaseURL: "https://a.example.com", Description: strings.Repeat("d", 501)}, "description"},
		{"http base URL", AppInput{Name: "App", Email: "a@example.com", BaseURL: "http://a.example.com"}, "base_url"},
		{"private IP", AppInput{Name: "App", Email: "a@example.com", BaseURL: "https://192.168.1.10"}, "base_url"},
		{"metadata IP", AppInput{Name: "App", Email: "a@example.com", BaseURL: "https://169.254.169.254"}, "base_url"},
		{"IPv4-mapped loopback", AppInput{Name: "App", Email: "a@example.com", BaseURL: "https://[::ffff:127.0.0.1]"}, "base_url"},
		{"short key", AppInput{Name: "App", Email: "a@example.com", BaseURL: "https://a.example.com", ClientAuthKey: "short"}, "client_auth_key"},
		{"long key", AppInput{Name: "App", Email: "a@example.com", BaseURL: "https://a.example.com", ClientAuthKey: strings.Repeat("k", 501)}, "client_auth_key"},
		{"bad website", AppInput{Name: "App", Email: "a@example.com", BaseURL: "https://a.example.com", Website: "javascript:alert(1)"}, "website"},
	}
	before, _ := e.svc.Store.ListApps(ctx)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := strict.Onboard(ctx, tt.in)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("err = %v, want a validation error on %s", err, tt.field)
			}
		})
	}
	after, _ := e.svc.Store.ListApps(ctx)
	if len(after) != len(before) {
		t.Fatalf("invalid onboarding stored apps: %d -> %d", len(before), len(after))
	}
}
