package githubtest_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/internal/githubtest"
)

func get(t *testing.T, url, token string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp, body
}

func TestServer(t *testing.T) {
	s := githubtest.NewServer(t)
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/") {
		t.Fatalf("URL() = %q, want http://127.0.0.1:PORT/", s.URL())
	}
	s.AddRepo("Octo-Org/Hello.World", githubtest.RepoOpts{DefaultBranch: "trunk"})
	s.AddRepo("acme/secret", githubtest.RepoOpts{Private: true, Token: "tok"})
	s.SetWebURL("http://git.test/")

	resp, body := get(t, s.URL()+"repos/octo-org/HELLO.WORLD", "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, body %v", resp.StatusCode, body)
	}
	want := map[string]any{
		"full_name": "Octo-Org/Hello.World", "name": "Hello.World", "private": false, "default_branch": "trunk",
		"html_url": "http://git.test/Octo-Org/Hello.World", "clone_url": "http://git.test/Octo-Org/Hello.World.git",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	if owner, _ := body["owner"].(map[string]any); owner["login"] != "Octo-Org" {
		t.Errorf("owner = %v, want login Octo-Org", body["owner"])
	}

	for _, tt := range []struct {
		path, token string
		status      int
		message     string
	}{
		{"repos/acme/secret", "tok", 200, ""},
		{"repos/acme/secret", "", 404, "Not Found"},
		{"repos/acme/secret", "nope", 401, "Bad credentials"},
		{"repos/octo-org/hello.world", "nope", 401, "Bad credentials"},
		{"repos/nobody/nothing", "", 404, "Not Found"},
		{"user", "", 404, "Not Found"},
	} {
		resp, body := get(t, s.URL()+tt.path, tt.token)
		if resp.StatusCode != tt.status || tt.message != "" && body["message"] != tt.message {
			t.Errorf("GET %s (token %q) = %d %v, want %d %q", tt.path, tt.token, resp.StatusCode, body["message"], tt.status, tt.message)
		}
	}
	if n := s.Requests(); n != 7 {
		t.Errorf("Requests() = %d, want 7", n)
	}

	reset := time.Now().Add(time.Hour)
	s.RateLimit(reset)
	resp, _ = get(t, s.URL()+"repos/octo-org/hello.world", "")
	if resp.StatusCode != 403 || resp.Header.Get("X-RateLimit-Remaining") != "0" ||
		resp.Header.Get("X-RateLimit-Reset") != strconv.FormatInt(reset.Unix(), 10) {
		t.Errorf("rate limited: %d, headers %v", resp.StatusCode, resp.Header)
	}
	s.RateLimit(time.Time{})
	if resp, _ := get(t, s.URL()+"repos/octo-org/hello.world", ""); resp.StatusCode != 200 {
		t.Errorf("after lifting the limit: %d", resp.StatusCode)
	}
}
