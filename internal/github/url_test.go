package github

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func mustBase(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := ParseGitHubBase(raw)
	if err != nil {
		t.Fatalf("ParseGitHubBase(%q): %v", raw, err)
	}
	return u
}

func TestParseRepoURL(t *testing.T) {
	gh := func(url, owner, name string) RepoURL {
		return RepoURL{URL: url, CloneURL: url + ".git", Host: "github.com", Owner: owner, Name: name, GitHub: true}
	}
	other := func(url, host, owner, name string) RepoURL {
		return RepoURL{URL: url, CloneURL: url, Host: host, Owner: owner, Name: name}
	}
	tests := []struct {
		raw  string
		want RepoURL
	}{
		// GitHub, every accepted spelling.
		{"https://github.com/owner/repo", gh("https://github.com/owner/repo", "owner", "repo")},
		{"https://github.com/owner/repo.git", gh("https://github.com/owner/repo", "owner", "repo")},
		{"https://github.com/owner/repo/", gh("https://github.com/owner/repo", "owner", "repo")},
		{"https://github.com/owner/repo.git/", gh("https://github.com/owner/repo", "owner", "repo")},
		{"github.com/owner/repo", gh("https://github.com/owner/repo", "owner", "repo")},
		{"github.com/owner/repo.git", gh("https://github.com/owner/repo", "owner", "repo")},
		{"GitHub.com/Owner/Repo", gh("https://github.com/Owner/Repo", "Owner", "Repo")},
		{"owner/repo", gh("https://github.com/owner/repo", "owner", "repo")},
		{"owner/repo.git", gh("https://github.com/owner/repo", "owner", "repo")},
		{"owner/repo/", gh("https://github.com/owner/repo", "owner", "repo")},
		{"OWNER/Repo", gh("https://github.com/OWNER/Repo", "OWNER", "Repo")},
		{"git@github.com:owner/repo.git", gh("https://github.com/owner/repo", "owner", "repo")},
		{"git@github.com:owner/repo", gh("https://github.com/owner/repo", "owner", "repo")},
		{"git@GitHub.com:/owner/repo.git", gh("https://github.com/owner/repo", "owner", "repo")},
		{"ssh://git@github.com/owner/repo.git", gh("https://github.com/owner/repo", "owner", "repo")},
		{"HTTPS://GITHUB.COM/Owner/Repo", gh("https://github.com/Owner/Repo", "Owner", "Repo")},
		{"https://github.com:443/owner/repo", gh("https://github.com/owner/repo", "owner", "repo")},
		{"vercel/next.js", gh("https://github.com/vercel/next.js", "vercel", "next.js")},
		{"https://github.com/vercel/next.js.git", gh("https://github.com/vercel/next.js", "vercel", "next.js")},
		{"octo-org/.github", gh("https://github.com/octo-org/.github", "octo-org", ".github")},
		{"octocat_acme/my_repo-2", gh("https://github.com/octocat_acme/my_repo-2", "octocat_acme", "my_repo-2")},
		{"owner/repo.GIT", gh("https://github.com/owner/repo", "owner", "repo")},
		{"https://github.com/o%77ner/repo", gh("https://github.com/owner/repo", "owner", "repo")},

		// Other remotes: scheme and host lowercased, one trailing slash removed, path kept.
		{"https://gitlab.com/group/sub/repo.git", other("https://gitlab.com/group/sub/repo.git", "gitlab.com", "sub", "repo")},
		{"HTTPS://GitLab.COM/Group/Repo.git/", other("https://gitlab.com/Group/Repo.git", "gitlab.com", "Group", "Repo")},
		{"https://host.example/repo.git", other("https://host.example/repo.git", "host.example", "host.example", "repo")},
		{"https://git.example.com:8443/a/b", other("https://git.example.com:8443/a/b", "git.example.com:8443", "a", "b")},
		{"https://git.example.com:8443/repo", other("https://git.example.com:8443/repo", "git.example.com:8443", "git.example.com", "repo")},
		{"https://git.example.com:443/a/b", other("https://git.example.com/a/b", "git.example.com", "a", "b")},
		{"http://git.example.com/a/b", other("http://git.example.com/a/b", "git.example.com", "a", "b")},
		{"http://git.example.com:80/a/b", other("http://git.example.com/a/b", "git.example.com", "a", "b")},
		{"http://github.com/owner/repo", other("http://github.com/owner/repo", "github.com", "owner", "repo")},
		{"https://www.github.com/owner/repo", other("https://www.github.com/owner/repo", "www.github.com", "owner", "repo")},
		{"https://[::1]:3000/a/b.git", other("https://[::1]:3000/a/b.git", "[::1]:3000", "a", "b")},
		{"http://127.0.0.1:9418/x/y", other("http://127.0.0.1:9418/x/y", "127.0.0.1:9418", "x", "y")},
		{"https://git.example.com/%C3%BCn/repo", other("https://git.example.com/%C3%BCn/repo", "git.example.com", "ün", "repo")},
		{"https://git.example.com/ün/repo", other("https://git.example.com/%C3%BCn/repo", "git.example.com", "ün", "repo")},
		{"ssh://git@gitlab.example.com:2222/group/repo.git", other("ssh://git@gitlab.example.com:2222/group/repo.git", "gitlab.example.com:2222", "group", "repo")},
		{"ssh://git@gitlab.example.com:22/group/repo.git", other("ssh://git@gitlab.example.com/group/repo.git", "gitlab.example.com", "group", "repo")},
		{"ssh://gitlab.example.com/group/repo.git", other("ssh://gitlab.example.com/group/repo.git", "gitlab.example.com", "group", "repo")},
		{"git@gitlab.example.com:group/sub/repo.git", other("git@gitlab.example.com:group/sub/repo.git", "gitlab.example.com", "sub", "repo")},
		{"git@GitLab.Example.com:group/repo.git/", other("git@gitlab.example.com:group/repo.git", "gitlab.example.com", "group", "repo")},
		{"git@gitlab.example.com:/srv/repo.git", other("git@gitlab.example.com:/srv/repo.git", "gitlab.example.com", "srv", "repo")},
		{"gitlab+deploy-token-1@host.example:repo", other("gitlab+deploy-token-1@host.example:repo", "host.example", "host.example", "repo")},
		{"git@[::1]:repo.git", other("git@[::1]:repo.git", "[::1]", "::1", "repo")},
		{"file:///srv/git/repo.git", other("file:///srv/git/repo.git", "", "git", "repo")},
		{"FILE://localhost/srv/repo/", other("file:///srv/repo", "", "srv", "repo")},
		{"https://h.example/a/b.GIT", other("https://h.example/a/b.GIT", "h.example", "a", "b")},
		{"file:///repo.git", other("file:///repo.git", "", "", "repo")},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseRepoURL(tt.raw, nil)
			if err != nil {
				t.Fatalf("ParseRepoURL(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("ParseRepoURL(%q)\n got  %+v\n want %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseRepoURLRejects(t *testing.T) {
	tests := []struct {
		raw    string
		reason string // a substring of the error
	}{
		{"", "empty"},
		{" owner/repo", "whitespace at byte 0"},
		{"owner/repo ", "whitespace"},
		{"owner/re po", "whitespace at byte 8"},
		{"owner/repo\n", "whitespace"},
		{"owner/repo\x00", "control character"},
		{"owner/repo\x7f", "control character"},
		{"owner/repo\u00a0", "whitespace"},
		{"owner/\xffrepo", "UTF-8"},
		{"owner\\repo", "backslash"},
		{strings.Repeat("a", 2049), "longer than"},
		{"ftp://host.example/repo.git", `unsupported scheme "ftp"`},
		{"javascript:alert(1)", `unsupported scheme "javascript"`},
		{"JavaScript:alert(1)", `unsupported scheme "javascript"`},
		{"git://host.example/repo.git", `unsupported scheme "git"`},
		{"mailto:someone", `unsupported scheme "mailto"`},
		{"C:/repo", `unsupported scheme "c"`},
		{":/repo", "not a repository URL"},
		{"https://github.com/owner/repo/tree/main", "extra path after owner/name (/tree/main)"},
		{"https://github.com/owner/repo/issues", "extra path"},
		{"github.com/owner/repo/pulls/1", "extra path"},
		{"git@github.com:owner/repo/extra.git", "extra path"},
		{"https://github.com/owner", "missing repository name"},
		{"https://github.com/owner/", "missing repository name"},
		{"https://github.com/owner/.git", "missing repository name"},
		{"https://github.com/", "missing owner and repository name"},
		{"https://github.com", "missing owner and repository name"},
		{"github.com/owner", "missing repository name"},
		{"owner/.git", "missing repository name"},
		{"owner//", "missing repository name"},
		{"https://github.com/owner/repo?tab=readme", "query strings"},
		{"https://github.com/owner/repo?", "query strings"},
		{"https://github.com/owner/repo#readme", "fragments"},
		{"owner/repo#x", "fragments"},
		{"https://user:s3cret@github.com/o/r", "password"},
		{"https://user:s3cret@git.example.com/o/r", "password"},
		{"ssh://git:s3cret@git.example.com/o/r", "password"},
		{"git:s3cret@git.example.com:o/r", "user:password@"},
		{"https://s3cret@github.com/o/r", "user name in an https:// URL"},
		{"http://s3cret@git.example.com/o/r", "user name in an http:// URL"},
		{"https://git.example.com/a/../b", "segments . and .."},
		{"https://git.example.com/a/./b", "segments . and .."},
		{"https://git.example.com/a/%2e%2e/b", "segments . and .."},
		{"git@git.example.com:a/../b", "segments . and .."},
		{"https://github.com/owner/..", "segments . and .."},
		{"owner/repo.git.git", "not a valid GitHub repository name"},
		{"0/.git.git", "not a valid GitHub repository name"},
		{"owner/..", "not a valid GitHub repository name"},
		{"https://git.example.com/a%2Fb/repo", "encodes a slash"},
		{"https://git.example.com/a%20b/repo", "forbidden character"},
		{"https://git.example.com/a%zz/repo", "invalid URL escape"},
		{"https://github.com/own.er/repo", `"own.er" is not a valid GitHub owner`},
		{"-owner/repo", "not a valid GitHub owner"},
		{"own$er/repo", "not a valid GitHub owner"},
		{"owner/re$po", "not a valid GitHub repository name"},
		{"owner/" + strings.Repeat("r", 101), "not a valid GitHub repository name"},
		{"gitlab.com/repo", `"gitlab.com" is not a valid GitHub owner`},
		{"/srv/repo.git", "file:// URL"},
		{"./repo", "file:// URL"},
		{"../repo", "file:// URL"},
		{"~/repo", "file:// URL"},
		{"gitlab.com/group/repo", "missing scheme: write https://gitlab.com/group/repo"},
		{"a/b/c", "expected owner/name"},
		{"repo", "expected owner/name"},
		{"https:///repo", "missing host"},
		{"https://git.example.com", "missing repository path"},
		{"https://git.example.com/", "missing repository path"},
		{"https://git.example.com//repo", "empty path segment"},
		{"https://git.example.com/a//repo", "empty path segment"},
		{"https://git.example.com/repo//", "empty path segment"},
		{"https://git.example.com/.git", "missing repository name"},
		{"file://server/share/repo", "must not name a host"},
		{"file:///", "missing repository path"},
		{"git@github.com/owner/repo", "user@host:path"},
		{"git@git.example.com:", "missing repository path"},
		{"git@:repo", "missing host"},
		{"@git.example.com:repo", "empty user name"},
		{"-oProxyCommand=x@git.example.com:repo", "must not start with '-'"},
		{"git@-oProxyCommand=x:repo", "invalid host"},
		{"g/it@git.example.com:repo", "not a valid GitHub repository name"},
		{"git@[::1:repo", "user@host:path"},
		{"git@[zz]:repo", "invalid IPv6 host"},
		{"https://git.example.com:99999/a/b", "invalid port"},
		{"https://git.example.com:0/a/b", "invalid port"},
		{"https://-host.example/a/b", "invalid host"},
		{"https://host..example/a/b", "invalid host"},
		{"https://bücher.example/a/b", "xn--"},
		{"https://[fe80::1%25eth0]/a/b", "invalid IPv6 host"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseRepoURL(tt.raw, nil)
			if err == nil {
				t.Fatalf("ParseRepoURL(%q) = %+v, want an error containing %q", tt.raw, got, tt.reason)
			}
			if !errors.Is(err, ErrInvalidURL) {
				t.Errorf("error %q does not wrap ErrInvalidURL", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not contain %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q repeats a credential", err)
			}
		})
	}
}

func TestParseRepoURLCustomBase(t *testing.T) {
	base := mustBase(t, "http://127.0.0.1:8080")
	gh := func(owner, name string) RepoURL {
		u := "http://127.0.0.1:8080/" + owner + "/" + name
		return RepoURL{URL: u, CloneURL: u + ".git", Host: "127.0.0.1:8080", Owner: owner, Name: name, GitHub: true}
	}
	tests := []struct {
		raw  string
		want RepoURL
	}{
		{"http://127.0.0.1:8080/owner/repo", gh("owner", "repo")},
		{"http://127.0.0.1:8080/owner/repo.git/", gh("owner", "repo")},
		{"127.0.0.1:8080/owner/repo", gh("owner", "repo")},
		{"owner/repo", gh("owner", "repo")},
		{"git@127.0.0.1:owner/repo.git", gh("owner", "repo")},
		// scheme, host and port must all match
		{"https://127.0.0.1:8080/owner/repo", RepoURL{URL: "https://127.0.0.1:8080/owner/repo", CloneURL: "https://127.0.0.1:8080/owner/repo", Host: "127.0.0.1:8080", Owner: "owner", Name: "repo"}},
		{"http://127.0.0.1:9090/owner/repo", RepoURL{URL: "http://127.0.0.1:9090/owner/repo", CloneURL: "http://127.0.0.1:9090/owner/repo", Host: "127.0.0.1:9090", Owner: "owner", Name: "repo"}},
		{"http://localhost:8080/owner/repo", RepoURL{URL: "http://localhost:8080/owner/repo", CloneURL: "http://localhost:8080/owner/repo", Host: "localhost:8080", Owner: "owner", Name: "repo"}},
		{"https://github.com/owner/repo", RepoURL{URL: "https://github.com/owner/repo", CloneURL: "https://github.com/owner/repo", Host: "github.com", Owner: "owner", Name: "repo"}},
		{"git@github.com:owner/repo.git", RepoURL{URL: "git@github.com:owner/repo.git", CloneURL: "git@github.com:owner/repo.git", Host: "github.com", Owner: "owner", Name: "repo"}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := ParseRepoURL(tt.raw, base)
			if err != nil {
				t.Fatalf("ParseRepoURL(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("ParseRepoURL(%q)\n got  %+v\n want %+v", tt.raw, got, tt.want)
			}
		})
	}
	if _, err := ParseRepoURL("http://127.0.0.1:8080/owner/repo/tree/main", base); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("extra segments on a custom base: err = %v, want ErrInvalidURL", err)
	}
}

func TestParseGitHubBase(t *testing.T) {
	for raw, want := range map[string]string{
		"https://github.com":     "https://github.com",
		"https://github.com/":    "https://github.com",
		"HTTPS://GitHub.COM:443": "https://github.com",
		"http://127.0.0.1:8080/": "http://127.0.0.1:8080",
		"http://[::1]:80":        "http://[::1]",
		"https://ghe.corp:8443":  "https://ghe.corp:8443",
	} {
		got, err := ParseGitHubBase(raw)
		if err != nil || got.String() != want {
			t.Errorf("ParseGitHubBase(%q) = %v, %v; want %s", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "github.com", "ftp://github.com", "https://github.com/enterprise",
		"https://u:p@github.com", "https://github.com?x=1", "https://github.com#x", "https://:443", "https://gh.corp:0"} {
		if got, err := ParseGitHubBase(raw); !errors.Is(err, ErrInvalidBaseURL) {
			t.Errorf("ParseGitHubBase(%q) = %v, %v; want ErrInvalidBaseURL", raw, got, err)
		}
	}
	bad := &url.URL{Scheme: "ftp", Host: "x"}
	if _, err := ParseRepoURL("owner/repo", bad); !errors.Is(err, ErrInvalidBaseURL) || errors.Is(err, ErrInvalidURL) {
		t.Errorf("ParseRepoURL with a bad base: err = %v, want ErrInvalidBaseURL only", err)
	}
}

func TestRepoURLKey(t *testing.T) {
	key := func(raw string) string {
		t.Helper()
		u, err := ParseRepoURL(raw, nil)
		if err != nil {
			t.Fatalf("ParseRepoURL(%q): %v", raw, err)
		}
		return u.Key()
	}
	same := [][]string{
		{"owner/repo", "OWNER/Repo", "https://github.com/Owner/REPO.git/", "git@github.com:owner/repo.git", "GITHUB.com/owner/repo"},
		{"https://GitLab.com/group/repo.git", "https://gitlab.com/group/repo.git/", "HTTPS://gitlab.com:443/group/repo.git"},
	}
	for _, group := range same {
		for _, raw := range group[1:] {
			if a, b := key(group[0]), key(raw); a != b {
				t.Errorf("Key(%q) = %q, Key(%q) = %q; want equal", group[0], a, raw, b)
			}
		}
	}
	// Paths of other remotes are case-sensitive.
	if a, b := key("https://gitlab.com/group/repo"), key("https://gitlab.com/Group/repo"); a == b {
		t.Errorf("non-GitHub keys differing in path case are equal: %q", a)
	}
}

func FuzzParseRepoURL(f *testing.F) {
	for _, s := range []string{
		"owner/repo", "https://github.com/owner/repo.git/", "git@github.com:owner/repo.git",
		"vercel/next.js", "git@gitlab.example.com:group/sub/repo.git", "https://host.example/repo.git",
		"ssh://git@h.example:2222/a/b", "file:///srv/repo.git", "https://[::1]:3000/a/b",
		"https://git.example.com/%C3%BCn/repo", "127.0.0.1:8080/o/r", "http://127.0.0.1:8080/o/r",
		"https://u:p@h.example/a", "javascript:alert(1)", "git@[::1]:r",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	defaultBase := mustBase(f, DefaultBaseURL)
	customBase := mustBase(f, "http://127.0.0.1:8080")
	f.Fuzz(func(t *testing.T, raw string, custom bool) {
		base := defaultBase
		if custom {
			base = customBase
		}
		u, err := ParseRepoURL(raw, base)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("ParseRepoURL(%q): error %v does not wrap ErrInvalidURL", raw, err)
			}
			return
		}
		if u.Name == "" || u.URL == "" || u.CloneURL == "" {
			t.Fatalf("ParseRepoURL(%q) = %+v: empty field", raw, u)
		}
		again, err := ParseRepoURL(u.URL, base)
		if err != nil {
			t.Fatalf("canonical %q of %q does not re-parse: %v", u.URL, raw, err)
		}
		if again != u {
			t.Fatalf("canonical %q of %q re-parses differently:\n first %+v\n again %+v", u.URL, raw, u, again)
		}
		fromClone, err := ParseRepoURL(u.CloneURL, base)
		if err != nil || fromClone != u {
			t.Fatalf("clone URL %q of %q re-parses to %+v, %v; want %+v", u.CloneURL, raw, fromClone, err, u)
		}
	})
}
