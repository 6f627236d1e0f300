package github_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/github"
	"github.com/docora/docora/internal/githubtest"
)

const (
	secretToken = "tok-secret-1234567890"
	otherToken  = "tok-other-0987654321"
	wrongToken  = "tok-wrong-5555555555"
)

func newVerifier(t *testing.T, apiBase string, refs github.RefLister) *github.Verifier {
	t.Helper()
	v, err := github.NewVerifier(apiBase, &http.Client{Timeout: 5 * time.Second}, refs)
	if err != nil {
		t.Fatalf("NewVerifier(%q): %v", apiBase, err)
	}
	return v
}

func parse(t *testing.T, raw string) github.RepoURL {
	t.Helper()
	u, err := github.ParseRepoURL(raw, nil)
	if err != nil {
		t.Fatalf("ParseRepoURL(%q): %v", raw, err)
	}
	return u
}

func TestVerifyGitHub(t *testing.T) {
	srv := githubtest.NewServer(t)
	srv.AddRepo("Octo-Org/Hello-World", githubtest.RepoOpts{})
	srv.AddRepo("acme/secret", githubtest.RepoOpts{Private: true, Token: secretToken})
	srv.AddRepo("acme/other", githubtest.RepoOpts{Private: true, Token: otherToken})
	srv.AddRepo("vercel/next.js", githubtest.RepoOpts{DefaultBranch: "canary"})
	srv.AddRepo("svn/legacy", githubtest.RepoOpts{DefaultBranch: "trunk"})
	v := newVerifier(t, srv.URL(), nil)

	hello := github.RepoInfo{
		URL: "https://github.com/Octo-Org/Hello-World", CloneURL: "https://github.com/Octo-Org/Hello-World.git",
		Owner: "Octo-Org", Name: "Hello-World", DefaultBranch: "main",
	}
	tests := []struct {
		name, raw, token string
		want             github.RepoInfo
		wantErr          error
		wantMsg          string
	}{
		{name: "public", raw: "https://github.com/Octo-Org/Hello-World", want: hello},
		{name: "case-different spelling", raw: "https://github.com/octo-org/HELLO-WORLD", want: hello},
		{name: "shorthand", raw: "octo-org/hello-world", want: hello},
		{name: ".git suffix", raw: "https://github.com/octo-org/hello-world.git/", want: hello},
		{name: "scp-like", raw: "git@github.com:OCTO-ORG/hello-world.git", want: hello},
		{name: "public with a valid token", raw: "octo-org/hello-world", token: otherToken, want: hello},
		{name: "dotted name", raw: "vercel/next.js", want: github.RepoInfo{
			URL: "https://github.com/vercel/next.js", CloneURL: "https://github.com/vercel/next.js.git",
			Owner: "vercel", Name: "next.js", DefaultBranch: "canary"}},
		{name: "default branch trunk", raw: "svn/legacy", want: github.RepoInfo{
			URL: "https://github.com/svn/legacy", CloneURL: "https://github.com/svn/legacy.git",
			Owner: "svn", Name: "legacy", DefaultBranch: "trunk"}},
		{name: "private with token", raw: "ACME/Secret", token: secretToken, want: github.RepoInfo{
			URL: "https://github.com/acme/secret", CloneURL: "https://github.com/acme/secret.git",
			Owner: "acme", Name: "secret", Private: true, DefaultBranch: "main"}},
		{name: "private without token", raw: "acme/secret", wantErr: github.ErrNotFound,
			wantMsg: "repository acme/secret not found on github.com; check the URL, or pass a token if the repository is private"},
		{name: "private with another repository's token", raw: "acme/secret", token: otherToken, wantErr: github.ErrNotFound,
			wantMsg: "repository acme/secret not found on github.com, or the token has no access to it"},
		{name: "wrong token", raw: "acme/secret", token: wrongToken, wantErr: github.ErrBadCredentials,
			wantMsg: "GitHub rejected the token (401 Bad credentials)"},
		{name: "wrong token on a public repository", raw: "octo-org/hello-world", token: wrongToken, wantErr: github.ErrBadCredentials},
		{name: "unknown", raw: "nobody/nothing", wantErr: github.ErrNotFound, wantMsg: "repository nobody/nothing not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Requests()
			got, err := v.Verify(context.Background(), parse(t, tt.raw), tt.token)
			if n := srv.Requests() - before; n != 1 {
				t.Errorf("API requests = %d, want 1", n)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify(%q) = %+v, %v; want %v", tt.raw, got, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not contain %q", err, tt.wantMsg)
				}
				for _, tok := range []string{secretToken, otherToken, wrongToken} {
					if strings.Contains(err.Error(), tok) {
						t.Errorf("error %q contains the token", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("Verify(%q)\n got  %+v\n want %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestVerifyCustomGitHubBase(t *testing.T) {
	srv := githubtest.NewServer(t)
	srv.AddRepo("Owner/Repo", githubtest.RepoOpts{DefaultBranch: "trunk"})
	base, err := github.ParseGitHubBase("http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	u, err := github.ParseRepoURL("owner/repo.git", base)
	if err != nil {
		t.Fatal(err)
	}
	// Without the trailing slash: NewVerifier adds it.
	v := newVerifier(t, strings.TrimSuffix(srv.URL(), "/"), nil)
	got, err := v.Verify(context.Background(), u, "")
	if err != nil {
		t.Fatal(err)
	}
	want := github.RepoInfo{URL: "http://127.0.0.1:8080/Owner/Repo", CloneURL: "http://127.0.0.1:8080/Owner/Repo.git",
		Owner: "Owner", Name: "Repo", DefaultBranch: "trunk"}
	if got != want {
		t.Errorf("Verify\n got  %+v\n want %+v", got, want)
	}
}

func TestVerifyRateLimited(t *testing.T) {
	srv := githubtest.NewServer(t)
	srv.AddRepo("owner/repo", githubtest.RepoOpts{})
	v := newVerifier(t, srv.URL(), nil)
	reset := time.Now().Add(42 * time.Minute).Truncate(time.Second)
	srv.RateLimit(reset)

	_, err := v.Verify(context.Background(), parse(t, "owner/repo"), "")
	var rle *github.RateLimitError
	if !errors.As(err, &rle) || !errors.Is(err, github.ErrRateLimited) {
		t.Fatalf("err = %v, want a *RateLimitError", err)
	}
	if !rle.Reset.Equal(reset) || rle.Secondary || rle.Authenticated {
		t.Errorf("RateLimitError = %+v, want Reset %v, primary, anonymous", rle, reset)
	}
	for _, want := range []string{reset.UTC().Format(time.RFC3339), "pass a token"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if errors.Is(err, github.ErrNotFound) {
		t.Errorf("a rate limit must not look like not found: %v", err)
	}

	// Lifted: the same verifier works again (no rate-limit state kept across calls).
	srv.RateLimit(time.Time{})
	if _, err := v.Verify(context.Background(), parse(t, "owner/repo"), ""); err != nil {
		t.Errorf("after the limit was lifted: %v", err)
	}
}

// apiStub answers GET /repos/... with a fixed status, headers and body.
func apiStub(t *testing.T, status int, header map[string]string, body string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	return s.URL + "/"
}

func TestVerifyStatusMapping(t *testing.T) {
	resetUnix := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		wantErr   error
		wantReset time.Duration // for rate limits: the reset ≈ now + this; -1: the X-RateLimit-Reset above
		secondary bool
		wantMsg   string
	}{
		{name: "secondary limit with Retry-After", status: 403,
			header:  map[string]string{"Retry-After": "60"},
			body:    `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`,
			wantErr: github.ErrRateLimited, wantReset: time.Minute, secondary: true, wantMsg: "secondary rate limit"},
		{name: "403 with Retry-After, other documentation", status: 403,
			header:  map[string]string{"Retry-After": "120"},
			body:    `{"message":"slow down"}`,
			wantErr: github.ErrRateLimited, wantReset: 2 * time.Minute, secondary: true},
		{name: "429 primary", status: 429,
			header:  map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(resetUnix, 10)},
			body:    `{"message":"API rate limit exceeded"}`,
			wantErr: github.ErrRateLimited, wantReset: -1},
		{name: "403 without rate limit", status: 403,
			body:    `{"message":"Resource protected by organization SAML enforcement."}`,
			wantErr: github.ErrForbidden, wantMsg: "403 Resource protected by organization SAML enforcement."},
		{name: "502", status: 502, body: `<html>bad gateway</html>`, wantErr: github.ErrUnreachable, wantMsg: "answered 502 Bad Gateway; try again later"},
		{name: "503", status: 503, body: ``, wantErr: github.ErrUnreachable},
		{name: "200 with HTML", status: 200, body: `<html>not the API</html>`, wantMsg: "unexpected answer from the GitHub API"},
		{name: "200 without full_name", status: 200, body: `{}`, wantMsg: "unexpected answer from the GitHub API"},
		{name: "451", status: 451, body: `{"message":"Repository access blocked"}`, wantMsg: "answered 451 Unavailable For Legal Reasons: Repository access blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, apiStub(t, tt.status, tt.header, tt.body), nil)
			_, err := v.Verify(context.Background(), parse(t, "owner/repo"), secretToken)
			if err == nil {
				t.Fatal("Verify succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, s := range []error{github.ErrNotFound, github.ErrBadCredentials} {
				if errors.Is(err, s) {
					t.Errorf("err = %v must not match %v", err, s)
				}
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("error %q contains the token", err)
			}
			if tt.wantErr != github.ErrRateLimited {
				return
			}
			var rle *github.RateLimitError
			if !errors.As(err, &rle) {
				t.Fatalf("err = %v, want a *RateLimitError", err)
			}
			want := time.Now().Add(tt.wantReset)
			if tt.wantReset < 0 {
				want = time.Unix(resetUnix, 0)
			}
			if d := rle.Reset.Sub(want); d < -5*time.Second || d > 5*time.Second {
				t.Errorf("Reset = %v, want about %v", rle.Reset, want)
			}
			if rle.Secondary != tt.secondary || !rle.Authenticated {
				t.Errorf("RateLimitError = %+v, want Secondary %v, Authenticated", rle, tt.secondary)
			}
		})
	}
}

func TestVerifyUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()

	tests := []struct {
		name string
		v    *github.Verifier
		ctx  func() (context.Context, context.CancelFunc)
		msg  string
	}{
		{"connection refused", newVerifier(t, closed, nil), noDeadline, "cannot reach the GitHub API at " + closed},
		{"client timeout", mustVerifier(t, slow.URL+"/", &http.Client{Timeout: 100 * time.Millisecond}), noDeadline, "did not answer in time"},
		{"context deadline", newVerifier(t, slow.URL+"/", nil), func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, "did not answer in time"},
		// The resolver's answer is simulated: tests stay on loopback.
		{"unknown host", mustVerifier(t, "http://docora-no-such-host.invalid/", &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "docora-no-such-host.invalid", IsNotFound: true}}
			},
		}}), noDeadline, "no such host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			_, err := tt.v.Verify(ctx, parse(t, "owner/repo"), secretToken)
			if !errors.Is(err, github.ErrUnreachable) {
				t.Fatalf("err = %v, want ErrUnreachable", err)
			}
			if errors.Is(err, github.ErrNotFound) || !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), secretToken) {
				t.Errorf("error %q: want it to contain %q, not match ErrNotFound, not contain the token", err, tt.msg)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newVerifier(t, slow.URL+"/", nil).Verify(ctx, parse(t, "owner/repo"), "")
		if !errors.Is(err, context.Canceled) || errors.Is(err, github.ErrUnreachable) {
			t.Errorf("err = %v, want context.Canceled only", err)
		}
	})
}

func noDeadline() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func mustVerifier(t *testing.T, api string, hc *http.Client) *github.Verifier {
	t.Helper()
	v, err := github.NewVerifier(api, hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A redirect to another host is refused, so the token never leaves the API host; a redirect
// on the same host (GitHub's answer for a renamed repository) is followed and the new
// full_name becomes canonical.
func TestVerifyRedirects(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		fmt.Fprint(w, `{"full_name":"evil/repo"}`)
	}))
	defer elsewhere.Close()

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/repos/old-owner/old-name":
			http.Redirect(w, r, "/repositories/42", http.StatusMovedPermanently)
		case "/repositories/42":
			if r.Header.Get("Authorization") != "Bearer "+secretToken {
				http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
				return
			}
			fmt.Fprint(w, `{"full_name":"New-Owner/New-Name","private":true,"default_branch":"dev"}`)
		case "/repos/owner/away":
			http.Redirect(w, r, elsewhere.URL+"/repos/owner/away", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	v := newVerifier(t, api.URL+"/", nil)

	got, err := v.Verify(context.Background(), parse(t, "old-owner/old-name"), secretToken)
	if err != nil {
		t.Fatal(err)
	}
	want := github.RepoInfo{URL: "https://github.com/New-Owner/New-Name", CloneURL: "https://github.com/New-Owner/New-Name.git",
		Owner: "New-Owner", Name: "New-Name", Private: true, DefaultBranch: "dev"}
	if got != want {
		t.Errorf("renamed repository\n got  %+v\n want %+v", got, want)
	}

	_, err = v.Verify(context.Background(), parse(t, "owner/away"), secretToken)
	if err == nil || strings.Contains(err.Error(), secretToken) {
		t.Errorf("redirect to another host: err = %v, want an error without the token", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) != 0 {
		t.Errorf("the other host received %d requests (Authorization %q)", len(leaked), leaked)
	}
}

type fakeRefs struct {
	branch string
	err    error

	mu         sync.Mutex
	url, token string
	calls      int
}

func (f *fakeRefs) DefaultBranch(ctx context.Context, url, token string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.url, f.token = url, token
	return f.branch, f.err
}

var errRemoteNotFound = errors.New("remote repository not found")

func TestVerifyOtherRemote(t *testing.T) {
	srv := githubtest.NewServer(t)

	t.Run("default branch", func(t *testing.T) {
		refs := &fakeRefs{branch: "develop"}
		v := newVerifier(t, srv.URL(), refs)
		got, err := v.Verify(context.Background(), parse(t, "git@gitlab.example.com:group/sub/repo.git"), secretToken)
		if err != nil {
			t.Fatal(err)
		}
		want := github.RepoInfo{URL: "git@gitlab.example.com:group/sub/repo.git", CloneURL: "git@gitlab.example.com:group/sub/repo.git",
			Owner: "sub", Name: "repo", Private: true, DefaultBranch: "develop"}
		if got != want {
			t.Errorf("Verify\n got  %+v\n want %+v", got, want)
		}
		if refs.url != want.CloneURL || refs.token != secretToken {
			t.Errorf("RefLister got (%q, %q), want (%q, the token)", refs.url, refs.token, want.CloneURL)
		}
		if srv.Requests() != 0 {
			t.Errorf("the GitHub API was asked %d times for a non-GitHub remote", srv.Requests())
		}
	})

	t.Run("anonymous, empty remote", func(t *testing.T) {
		v := newVerifier(t, srv.URL(), &fakeRefs{})
		got, err := v.Verify(context.Background(), parse(t, "https://git.example.com/a/b.git"), "")
		if err != nil {
			t.Fatal(err)
		}
		if got.Private || got.DefaultBranch != "" || got.URL != "https://git.example.com/a/b.git" {
			t.Errorf("Verify = %+v, want public, no default branch", got)
		}
	})

	t.Run("errors pass through, without the token", func(t *testing.T) {
		refs := &fakeRefs{err: fmt.Errorf("list refs of https://x-access-token:%s@git.example.com/a/b.git: %w", secretToken, errRemoteNotFound)}
		v := newVerifier(t, srv.URL(), refs)
		_, err := v.Verify(context.Background(), parse(t, "https://git.example.com/a/b.git"), secretToken)
		if !errors.Is(err, errRemoteNotFound) {
			t.Fatalf("err = %v, want the RefLister's sentinel", err)
		}
		if strings.Contains(err.Error(), secretToken) || !strings.Contains(err.Error(), "verify https://git.example.com/a/b.git") {
			t.Errorf("error %q: want context and no token", err)
		}
	})

	t.Run("no RefLister", func(t *testing.T) {
		v := newVerifier(t, srv.URL(), nil)
		if _, err := v.Verify(context.Background(), parse(t, "https://git.example.com/a/b.git"), ""); err == nil {
			t.Error("Verify without a RefLister succeeded")
		}
	})
}

func TestVerifyRejectsHandMadeRepoURL(t *testing.T) {
	srv := githubtest.NewServer(t)
	v := newVerifier(t, srv.URL(), nil)
	for _, u := range []github.RepoURL{
		{URL: "https://github.com/a/../b", Owner: "a", Name: "../b", GitHub: true},
		{URL: "https://github.com/o/r", Owner: "x", Name: "y", GitHub: true},
	} {
		if _, err := v.Verify(context.Background(), u, ""); !errors.Is(err, github.ErrInvalidURL) {
			t.Errorf("Verify(%+v) = %v, want ErrInvalidURL", u, err)
		}
	}
	if srv.Requests() != 0 {
		t.Errorf("invalid input reached the API (%d requests)", srv.Requests())
	}
}

func TestNewVerifier(t *testing.T) {
	for _, api := range []string{"", "api.github.com", "ftp://api.github.com/", "https://u:p@api.github.com/", "https://api.github.com/?x=1", "http:///"} {
		if _, err := github.NewVerifier(api, nil, nil); err == nil {
			t.Errorf("NewVerifier(%q) succeeded", api)
		}
	}
	for _, api := range []string{github.DefaultAPIURL, "https://ghe.example.com/api/v3", "http://127.0.0.1:1234"} {
		if _, err := github.NewVerifier(api, nil, nil); err != nil {
			t.Errorf("NewVerifier(%q): %v", api, err)
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	srv := githubtest.NewServer(t)
	srv.AddRepo("acme/secret", githubtest.RepoOpts{Private: true, Token: secretToken})
	v := newVerifier(t, srv.URL(), nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := secretToken
			if i%2 == 1 {
				tok = ""
			}
			_, err := v.Verify(context.Background(), parse(t, "acme/secret"), tok)
			if (tok == "") != errors.Is(err, github.ErrNotFound) {
				t.Errorf("token %v: err = %v", tok != "", err)
			}
		}()
	}
	wg.Wait()
}
