// Package testscripts runs the *.txtar scripts in this folder against docora, in-process (the
// test binary re-executes itself as `docora`), with a real git smart-HTTP server and a local
// server speaking the GitHub REST API on 127.0.0.1.
package testscripts

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/docora/docora/internal/cli"
	"github.com/docora/docora/internal/githubtest"
	"github.com/docora/docora/internal/gittest"
)

var update = flag.Bool("update", false, "rewrite the scripts' golden files with the actual output")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"docora": func() { os.Exit(cli.Main()) }})
}

// Secrets the fixtures use; scripts check that they never show up where they must not.
const privateToken = "ghp_privateTokenValue0123456789"

func TestScripts(t *testing.T) {
	git := gittest.NewServer(t)
	api := githubtest.NewServer(t)
	api.SetWebURL(git.BaseURL())

	docs := gittest.NewRepo(t, git, "acme/docs.git")
	docs.WriteFile("README.md", "# Docs\n")
	docs.WriteFile("guide/intro.md", "Hello <world> & friends\n")
	docs.Commit("first")
	docs.Push()
	api.AddRepo("acme/docs", githubtest.RepoOpts{DefaultBranch: "main"})

	trunk := gittest.NewRepo(t, git, "acme/Trunk-Repo.git", gittest.WithBranch("trunk"))
	trunk.WriteFile("a.txt", "a\n")
	trunk.Commit("first")
	trunk.Push()
	api.AddRepo("acme/Trunk-Repo", githubtest.RepoOpts{DefaultBranch: "trunk"})

	next := gittest.NewRepo(t, git, "vercel/next.js.git")
	next.WriteFile("package.json", "{}\n")
	next.Commit("first")
	next.Push()
	api.AddRepo("vercel/next.js", githubtest.RepoOpts{DefaultBranch: "main"})

	priv := gittest.NewRepo(t, git, "acme/private.git")
	priv.WriteFile("secret.md", "classified\n")
	priv.Commit("first")
	priv.Push()
	git.RequireToken("acme/private.git", privateToken)
	api.AddRepo("acme/private", githubtest.RepoOpts{Private: true, Token: privateToken})

	// A generic remote: the same git server reached through another host name, so it is not
	// the configured GitHub host.
	plain := gittest.NewRepo(t, git, "team/plain.git", gittest.WithBranch("develop"))
	plain.WriteFile("x.txt", "x\n")
	plain.Commit("first")
	plain.Push()
	gittest.NewRepo(t, git, "team/empty.git")

	testscript.Run(t, testscript.Params{
		Dir:                 ".",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("DOCORA_HOME", env.WorkDir+"/home")
			env.Setenv("DOCORA_GITHUB_URL", git.BaseURL())
			env.Setenv("DOCORA_GITHUB_API_URL", api.URL())
			env.Setenv("GIT_BASE", git.BaseURL())
			env.Setenv("OTHER_GIT_BASE", "http://localhost:"+portOf(git.BaseURL()))
			env.Setenv("PRIVATE_TOKEN", privateToken)
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"jsonget":  cmdJSONGet,
		},
	})
}

// exitcode N command [args...] runs command like exec and checks that it exits with N.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// jsonget VAR PATH sets VAR to the value at PATH (dot-separated keys and array indexes, e.g.
// "0.app_id") in the JSON of the last command's stdout.
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonget VAR PATH")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile("stdout")), &v); err != nil {
		ts.Fatalf("jsonget: stdout is not JSON: %v", err)
	}
	for _, k := range strings.Split(args[1], ".") {
		switch node := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = node[k]; !ok {
				ts.Fatalf("jsonget: no key %q", k)
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(node) {
				ts.Fatalf("jsonget: bad index %q", k)
			}
			v = node[i]
		default:
			ts.Fatalf("jsonget: cannot index %T with %q", v, k)
		}
	}
	switch x := v.(type) {
	case string:
		ts.Setenv(args[0], x)
	default:
		b, _ := json.Marshal(x)
		ts.Setenv(args[0], string(b))
	}
}

func portOf(u string) string {
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] == ':' {
			return u[i+1:]
		}
	}
	return ""
}
