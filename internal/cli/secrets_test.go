package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docora/docora/internal/githubtest"
	"github.com/docora/docora/internal/gittest"
	"github.com/docora/docora/internal/output"
)

// run runs docora in-process with env and returns its stdout, failing the test on a non-zero
// exit.
func run(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	ios := &output.IO{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	code := Run(context.Background(), args, ios, func(k string) string { return env[k] })
	if code != 0 {
		t.Fatalf("docora %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

// After onboarding with a client auth key and registering a private repository with a git
// token, none of the three secrets is anywhere on disk in plain text: not in the database, its
// WAL, nor any other file of the home.
func TestNoSecretInPlainTextOnDisk(t *testing.T) {
	git := gittest.NewServer(t)
	api := githubtest.NewServer(t)
	api.SetWebURL(git.BaseURL())
	const gitToken = "ghp_SuperSecretGitToken0123456789"
	repo := gittest.NewRepo(t, git, "acme/private.git")
	repo.WriteFile("a.txt", "a\n")
	repo.Commit("first")
	repo.Push()
	git.RequireToken("acme/private.git", gitToken)
	api.AddRepo("acme/private", githubtest.RepoOpts{Private: true, Token: gitToken})

	home := t.TempDir()
	const clientKey = "client-auth-key-that-must-stay-secret"
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte(clientKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DOCORA_HOME": home, "DOCORA_GITHUB_URL": git.BaseURL(), "DOCORA_GITHUB_API_URL": api.URL(),
		"GIT_TOKEN": gitToken,
	}
	out := run(t, env, "app", "onboard", "--name", "Secret app", "--base-url", "https://a.example.com",
		"--email", "a@example.com", "--client-auth-key-file", keyFile)
	var appID, appToken string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == "app_id:" {
			appID = fields[1]
		}
		if len(fields) == 2 && fields[0] == "token:" {
			appToken = fields[1]
		}
	}
	if appID == "" || appToken == "" {
		t.Fatalf("onboard output without id or token:\n%s", out)
	}
	run(t, env, "repo", "add", "acme/private", "--app", appID, "--token-env", "GIT_TOKEN")

	files := 0
	err := filepath.Walk(home, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for name, secret := range map[string]string{"client auth key": clientKey, "git token": gitToken, "app token": appToken} {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s found in plain text in %s", name, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no files in the home: nothing was checked")
	}
	if _, err := os.Stat(filepath.Join(home, "docora.db")); err != nil {
		t.Fatalf("database not where expected: %v", err)
	}
}
