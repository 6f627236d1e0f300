// Package testscripts runs the *.txtar scripts in this folder against docora, in-process (the
// test binary re-executes itself as `docora`), with a real git smart-HTTP server and a local
// server speaking the GitHub REST API on 127.0.0.1.
package testscripts

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

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
const (
	privateToken  = "ghp_privateTokenValue0123456789"
	metadataToken = "github_pat_metadataOnly0123456789"
)

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

	// A private repository whose token GitHub's API accepts but git refuses (a fine-grained
	// token with metadata access and no contents access): registration succeeds, fetching
	// fails with an authentication error.
	locked := gittest.NewRepo(t, git, "acme/locked.git")
	locked.WriteFile("secret.md", "classified\n")
	locked.Commit("first")
	locked.Push()
	git.RequireToken("acme/locked.git", privateToken)
	api.AddRepo("acme/locked", githubtest.RepoOpts{Private: true, Token: metadataToken})

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
			env.Setenv("METADATA_TOKEN", metadataToken)
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"jsonget":  cmdJSONGet,
			"freeport": cmdFreePort,
			"http":     cmdHTTP,
			"waithttp": cmdWaitHTTP,
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

// freeport VAR sets VAR to a TCP port on 127.0.0.1 that was free a moment ago (for a server
// started in the background, e.g. `docora serve --addr 127.0.0.1:$PORT &`).
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	ts.Check(l.Close())
	ts.Setenv(args[0], port)
}

// httpFlags parses the options of http and waithttp: -H 'Name: value' (repeatable),
// -body FILE or -data STRING (sent with Content-Type: application/json unless -H sets one),
// -match REGEX.
func httpFlags(ts *testscript.TestScript, args []string) (hdr http.Header, body, match string, rest []string) {
	hdr = http.Header{}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && len(args) > 1 {
		switch args[0] {
		case "-H":
			k, v, ok := strings.Cut(args[1], ":")
			if !ok {
				ts.Fatalf("http: header %q is not 'Name: value'", args[1])
			}
			hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-body", "-data":
			body = args[1]
			if args[0] == "-body" {
				body = ts.ReadFile(args[1])
			}
			if hdr.Get("Content-Type") == "" {
				hdr.Set("Content-Type", "application/json")
			}
		case "-match":
			match = args[1]
		default:
			ts.Fatalf("http: unknown option %s", args[0])
		}
		args = args[2:]
	}
	return hdr, body, match, args
}

// http [-H 'Name: value']... [-body FILE | -data STRING] METHOD URL makes one request and writes the response
// body to stdout, and "HTTP <status>" followed by the response headers ("Name: value", sorted)
// to stderr. Any status is a success: check it with `stderr '^HTTP 201$'`.
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	hdr, body, _, rest := httpFlags(ts, args)
	if neg || len(rest) != 2 {
		ts.Fatalf("usage: http [-H 'Name: value']... [-body FILE | -data STRING] METHOD URL")
	}
	req, err := http.NewRequest(rest[0], rest[1], strings.NewReader(body))
	ts.Check(err)
	req.Header = hdr
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	ts.Check(err)
	fmt.Fprintf(ts.Stderr(), "HTTP %d\n", resp.StatusCode)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(ts.Stderr(), "%s: %s\n", k, v)
		}
	}
	_, err = ts.Stdout().Write(data)
	ts.Check(err)
}

// waithttp [-H 'Name: value']... [-match REGEX] URL polls GET URL until it answers 200 (with a
// body matching REGEX, when given), for up to 30 s; the last body is written to stdout.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	hdr, _, match, rest := httpFlags(ts, args)
	if neg || len(rest) != 1 {
		ts.Fatalf("usage: waithttp [-H 'Name: value']... [-match REGEX] URL")
	}
	var re *regexp.Regexp
	if match != "" {
		var err error
		re, err = regexp.Compile(match)
		ts.Check(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		req, err := http.NewRequest("GET", rest[0], nil)
		ts.Check(err)
		req.Header = hdr.Clone()
		if resp, err := client.Do(req); err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, data)
			if resp.StatusCode == http.StatusOK && (re == nil || re.Match(data)) {
				_, err = ts.Stdout().Write(data)
				ts.Check(err)
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("waithttp %s: gave up after 30 s; last: %s", rest[0], last)
}
