package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/internal/engine"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

const validApp = `{"base_url":"https://hooks.example.com/docs","app_name":"Docs site","email":"ops@example.com",` +
	`"website":"https://example.com","description":"The docs","client_auth_key":"0123456789abcdef-key"}`

func TestHealth(t *testing.T) {
	e := newEnv(t)
	v := expect(t, e.do(req{method: "GET", path: "/health"}), http.StatusOK)
	if v["status"] != "ok" || v["mode"] != "all" || v["version"] != "1.2.3" {
		t.Fatalf("health = %v", v)
	}
	e.st.Close()
	v = expect(t, e.do(req{method: "GET", path: "/health"}), http.StatusServiceUnavailable)
	if v["status"] != "unavailable" || v["error"] != "store unreachable" {
		t.Fatalf("health with a closed store = %v", v)
	}
}

func TestVersion(t *testing.T) {
	e := newEnv(t)
	v := expect(t, e.do(req{method: "GET", path: "/version"}), http.StatusOK)
	if v["version"] != "1.2.3" || v["commit"] != "abc123" || v["build_date"] != "2026-01-01T00:00:00Z" ||
		!strings.HasPrefix(v["go_version"].(string), "go") {
		t.Fatalf("version = %v", v)
	}
}

func TestOnboardModes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		admin     string
		public    bool
		token     string
		status    int
		challenge bool
		msg       string
	}{
		{name: "admin token", admin: "admin-secret-token", token: "admin-secret-token", status: 201},
		{name: "missing admin token", admin: "admin-secret-token", status: 401, challenge: true, msg: "admin token"},
		{name: "wrong admin token", admin: "admin-secret-token", token: "admin-secret-tokeN", status: 401, challenge: true, msg: "invalid admin token"},
		{name: "an app token is not the admin token", admin: "admin-secret-token", token: "app", status: 401, challenge: true},
		{name: "public", public: true, status: 201},
		{name: "public ignores a token", admin: "admin-secret-token", public: true, token: "whatever", status: 201},
		{name: "disabled", status: 403, msg: "--public-onboarding"},
		{name: "disabled says how", token: "x", status: 403, msg: "DOCORA_ADMIN_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withOptions(func(o *Options) { o.AdminToken, o.PublicOnboarding = tc.admin, tc.public }))
			token := tc.token
			if token == "app" {
				_, token = e.app("Other app")
			}
			w := e.do(req{method: "POST", path: "/api/apps/onboard", body: validApp, token: token})
			if tc.status != 201 {
				expectError(t, w, tc.status, tc.msg)
				if got := w.Header().Get("WWW-Authenticate"); tc.challenge != strings.HasPrefix(got, "Bearer ") {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if n := len(e.apps()); n > 1 || n == 1 && tc.token != "app" {
					t.Errorf("%d apps stored after a refused onboarding", n)
				}
				return
			}
			v := expect(t, w, 201)
			if len(v) != 3 || !strings.HasPrefix(v["app_id"].(string), "app_") ||
				!strings.HasPrefix(v["token"].(string), "docora_") || v["created_at"] == "" {
				t.Fatalf("onboarded = %v", v)
			}
			apps := e.apps()
			if len(apps) != 1 || apps[0].ID != v["app_id"] || apps[0].Name != "Docs site" || apps[0].Website != "https://example.com" ||
				string(apps[0].ClientAuthKey) != "0123456789abcdef-key" || apps[0].TokenHash != secrets.HashToken(v["token"].(string)) {
				t.Fatalf("stored %+v", apps)
			}
			// The token works at once.
			expect(t, e.do(req{method: "GET", path: "/api/repositories", token: v["token"].(string)}), 200)
		})
	}
}

func TestOnboardInvalidInput(t *testing.T) {
	long := strings.Repeat("x", 501)
	tests := []struct {
		name, body string
		status     int
		msg        string
		ct         string
	}{
		{"malformed", `{"app_name": "Docs`, 400, "malformed JSON", ""},
		{"syntax error", `{"app_name" "Docs"}`, 400, "malformed JSON at byte", ""},
		{"empty body", ``, 400, "empty", ""},
		{"two objects", validApp + validApp, 400, "single JSON object", ""},
		{"not an object", `["Docs site"]`, 422, "must be a JSON object", ""},
		{"wrong type", strings.Replace(validApp, `"app_name":"Docs site"`, `"app_name":42`, 1), 422, "app_name: must be a string, not a number", ""},
		{"null is absent", strings.Replace(validApp, `"email":"ops@example.com"`, `"email":null`, 1), 422, "email: is required", ""},
		{"unknown field", strings.Replace(validApp, `{`, `{"admin":true,`, 1), 422, `unknown field "admin"`, ""},
		{"missing fields", `{}`, 422, "missing required fields: base_url, app_name, email, client_auth_key", ""},
		{"missing key", strings.Replace(validApp, `,"client_auth_key":"0123456789abcdef-key"`, ``, 1), 422, "client_auth_key: is required", ""},
		{"short name", strings.Replace(validApp, `"Docs site"`, `"Do"`, 1), 422, "app_name: must be 3 to 100 characters", ""},
		{"long name", strings.Replace(validApp, `"Docs site"`, `"`+long[:101]+`"`, 1), 422, "app_name: must be 3 to 100", ""},
		{"long description", strings.Replace(validApp, `"The docs"`, `"`+long+`"`, 1), 422, "description: must be at most 500", ""},
		{"short key", strings.Replace(validApp, `0123456789abcdef-key`, `short`, 1), 422, "client_auth_key: must be 16 to 500", ""},
		{"long key", strings.Replace(validApp, `0123456789abcdef-key`, long, 1), 422, "client_auth_key: must be 16 to 500", ""},
		{"bad email", strings.Replace(validApp, `ops@example.com`, `not-an-email`, 1), 422, "email:", ""},
		{"bad website", strings.Replace(validApp, `https://example.com"`, `javascript:alert(1)"`, 1), 422, "website:", ""},
		{"http base URL", strings.Replace(validApp, `https://hooks.example.com/docs`, `http://hooks.example.com/docs`, 1), 422, "base_url:", ""},
		{"private base URL", strings.Replace(validApp, `https://hooks.example.com/docs`, `https://10.0.0.1/docs`, 1), 422, "base_url:", ""},
		{"metadata base URL", strings.Replace(validApp, `https://hooks.example.com/docs`, `https://169.254.169.254/`, 1), 422, "base_url:", ""},
		{"credentials in base URL", strings.Replace(validApp, `https://hooks.example.com/docs`, `https://u:p@hooks.example.com/`, 1), 422, "base_url:", ""},
		{"oversized", strings.Replace(validApp, `"The docs"`, `"`+strings.Repeat("x", 70<<10)+`"`, 1), 413, "larger than 65536 bytes", ""},
		{"oversized trailing data", validApp + strings.Repeat(" ", 70<<10) + "x", 413, "larger than", ""},
		{"form post", `base_url=x`, 415, "application/json", "application/x-www-form-urlencoded"},
		{"text/plain", validApp, 415, "application/json", "text/plain"},
	}
	e := newEnv(t, strictNetwork)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := req{method: "POST", path: "/api/apps/onboard", body: tc.body, token: "admin-secret-token", contentType: tc.ct}
			if tc.body == "" {
				r.contentType = "application/json"
			}
			w := e.do(r)
			if tc.body == "" {
				hr := httptest.NewRequest("POST", "/api/apps/onboard", nil)
				hr.Header.Set("Content-Type", "application/json")
				hr.Header.Set("Authorization", "Bearer admin-secret-token")
				w = httptest.NewRecorder()
				e.h.ServeHTTP(w, hr)
			}
			expectError(t, w, tc.status, tc.msg)
		})
	}
	if n := len(e.apps()); n != 0 {
		t.Fatalf("%d apps stored from invalid requests", n)
	}
	// The same body with the charset parameter is accepted.
	w := e.do(req{method: "POST", path: "/api/apps/onboard", body: validApp, token: "admin-secret-token",
		contentType: "application/json; charset=utf-8"})
	expect(t, w, 201)
}

func TestRepositoryLifecycle(t *testing.T) {
	e := newEnv(t)
	appID, tok := e.app("Docs site")

	w := e.do(req{method: "POST", path: "/api/repositories", token: tok, body: `{"github_url":"acme/docs"}`})
	v := expect(t, w, http.StatusCreated)
	id, _ := v["repository_id"].(string)
	want := map[string]any{"github_url": webBase + "/acme/docs", "owner": "acme", "name": "docs", "branch": "main", "is_private": false}
	for k, val := range want {
		if v[k] != val {
			t.Errorf("%s = %v, want %v", k, v[k], val)
		}
	}
	if len(v) != 7 || !strings.HasPrefix(id, "repo_") || v["created_at"] == nil {
		t.Errorf("registered = %v", v)
	}
	if loc := w.Header().Get("Location"); loc != "/api/repositories/"+id {
		t.Errorf("Location = %q", loc)
	}

	// Another spelling, a branch, a private repository with its token.
	v = expect(t, e.do(req{method: "POST", path: "/api/repositories", token: tok,
		body: `{"github_url":"` + webBase + `/ACME/Trunk-repo.git","branch":"release"}`}), 201)
	if v["branch"] != "release" || v["name"] != "Trunk-Repo" {
		t.Errorf("registered = %v", v)
	}
	expectError(t, e.do(req{method: "POST", path: "/api/repositories", token: tok, body: `{"github_url":"acme/private"}`}), 404, "not found")
	v = expect(t, e.do(req{method: "POST", path: "/api/repositories", token: tok,
		body: `{"github_url":"acme/private","github_token":"` + privateToken + `"}`}), 201)
	priv := v["repository_id"].(string)
	if v["is_private"] != true {
		t.Errorf("private repository: %v", v)
	}

	// List and get: the app's links with their status.
	w = e.do(req{method: "GET", path: "/api/repositories", token: tok})
	expect(t, w, 200)
	var list []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list) != 3 {
		t.Fatalf("list = %s (%v)", w.Body.String(), err)
	}
	v = expect(t, e.do(req{method: "GET", path: "/api/repositories/" + id, token: tok}), 200)
	if v["status"] != "pending_snapshot" || v["repository_id"] != id || v["commit_sha"] != nil || v["retry_count"] != 0.0 {
		t.Errorf("get = %v", v)
	}
	if strings.Contains(e.do(req{method: "GET", path: "/api/repositories", token: tok}).Body.String(), privateToken) {
		t.Error("a git token is in the listing")
	}

	// Sync now: recorded, and the worker woken.
	v = expect(t, e.do(req{method: "POST", path: "/api/repositories/" + id + "/sync", token: tok}), http.StatusAccepted)
	if v["repository_id"] != id || e.wakes.Load() != 1 {
		t.Errorf("sync = %v, wakes %d", v, e.wakes.Load())
	}
	l, err := e.st.GetLink(context.Background(), appID, id)
	if err != nil || l.SyncRequestedAt == nil {
		t.Fatalf("sync not recorded: %+v %v", l.SyncRequestedAt, err)
	}

	// Token rotation: verified first.
	expectError(t, e.do(req{method: "PATCH", path: "/api/repositories/" + priv + "/token", token: tok,
		body: `{"github_token":"ghp_wrong"}`}), 422, "github_token:")
	l, _ = e.st.GetLink(context.Background(), appID, priv)
	if l.GitToken != privateToken {
		t.Fatalf("a refused token was stored")
	}
	e.openCircuit(priv, time.Now().Add(time.Hour))
	v = expect(t, e.do(req{method: "PATCH", path: "/api/repositories/" + priv + "/token", token: tok,
		body: `{"github_token":"` + privateToken + `"}`}), 200)
	if len(v) != 1 || v["message"] != "Token updated successfully" {
		t.Errorf("set token = %v", v)
	}
	if l, _ := e.st.GetLink(context.Background(), appID, priv); l.Repo.CircuitOpenUntil != nil {
		t.Error("the circuit breaker was not reset")
	}

	// Unwatch.
	expect(t, e.do(req{method: "DELETE", path: "/api/repositories/" + id, token: tok}), http.StatusNoContent)
	expectError(t, e.do(req{method: "GET", path: "/api/repositories/" + id, token: tok}), 404, "not watched by this app")
	expectError(t, e.do(req{method: "DELETE", path: "/api/repositories/" + id, token: tok}), 404, "not watched by this app")
	if n := len(e.links(appID)); n != 2 {
		t.Fatalf("%d links left, want 2", n)
	}
	if _, err := e.st.GetRepository(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unwatched repository is kept: %v", err)
	}
}

// TestRepositoryRequestErrors sends every app endpoint bad requests and checks the precise
// status, and that nothing changed in the store.
func TestRepositoryRequestErrors(t *testing.T) {
	e := newEnv(t)
	appA, tokA := e.app("App A")
	appB, tokB := e.app("App B")
	idA := e.register(tokA, "acme/docs")
	idB := e.register(tokB, "acme/trunk-repo")
	before := func() (a, b []store.LinkView) { return e.links(appA), e.links(appB) }
	a0, b0 := before()

	huge := `{"github_url":"` + strings.Repeat("a", 70<<10) + `"}`
	type tc struct {
		name   string
		r      req
		status int
		msg    string
	}
	var cases []tc
	bodyRoutes := []struct{ method, path, valid, field string }{
		{"POST", "/api/repositories", `{"github_url":"acme/private"}`, "github_url"},
		{"PATCH", "/api/repositories/" + idA + "/token", `{"github_token":"ghp_x"}`, "github_token"},
	}
	for _, br := range bodyRoutes {
		n := br.method + " " + br.path + ": "
		cases = append(cases,
			tc{n + "malformed", req{method: br.method, path: br.path, token: tokA, body: `{"` + br.field + `":`}, 400, "malformed JSON"},
			tc{n + "wrong type", req{method: br.method, path: br.path, token: tokA, body: `{"` + br.field + `":["x"]}`}, 422, br.field + ": must be a string, not an array"},
			tc{n + "missing field", req{method: br.method, path: br.path, token: tokA, body: `{}`}, 422, br.field + ": is required"},
			tc{n + "empty field", req{method: br.method, path: br.path, token: tokA, body: `{"` + br.field + `":""}`}, 422, br.field + ": is required"},
			tc{n + "unknown field", req{method: br.method, path: br.path, token: tokA, body: strings.Replace(br.valid, "{", `{"include":["*"],`, 1)}, 422, `unknown field "include"`},
			tc{n + "oversized", req{method: br.method, path: br.path, token: tokA, body: huge}, 413, "larger than"},
			tc{n + "not JSON", req{method: br.method, path: br.path, token: tokA, body: br.valid, contentType: "text/plain"}, 415, "application/json"},
			tc{n + "wrong token", req{method: br.method, path: br.path, token: "docora_" + strings.Repeat("0", 64), body: br.valid}, 401, "invalid token"},
			tc{n + "no token", req{method: br.method, path: br.path, body: br.valid}, 401, "missing bearer token"},
		)
	}
	for _, p := range []struct{ method, path, body string }{
		{"GET", "/api/repositories/" + idB, ""},
		{"DELETE", "/api/repositories/" + idB, ""},
		{"PATCH", "/api/repositories/" + idB + "/token", `{"github_token":"` + privateToken + `"}`},
		{"POST", "/api/repositories/" + idB + "/sync", ""},
		{"GET", "/api/repositories/repo_000000000000000000000000", ""},
		{"POST", "/api/repositories/repo_000000000000000000000000/sync", ""},
	} {
		cases = append(cases,
			tc{p.method + " " + p.path + ": another app's or unknown repository", req{method: p.method, path: p.path, token: tokA, body: p.body}, 404, "not watched by this app"},
			tc{p.method + " " + p.path + ": wrong token", req{method: p.method, path: p.path, token: "nope", body: p.body}, 401, "invalid token"},
			tc{p.method + " " + p.path + ": basic auth", req{method: p.method, path: p.path, body: p.body}, 401, "missing bearer token"},
		)
	}
	cases = append(cases,
		tc{"GET list: wrong token", req{method: "GET", path: "/api/repositories", token: tokA + "0"}, 401, "invalid token"},
		tc{"GET list: overlong token", req{method: "GET", path: "/api/repositories", token: strings.Repeat("t", 4000)}, 401, "invalid token"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.do(c.r)
			expectError(t, w, c.status, c.msg)
			if c.status == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="docora"`) {
				t.Errorf("401 without WWW-Authenticate: %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	// Basic credentials are not a bearer token.
	hr := httptest.NewRequest("GET", "/api/repositories", nil)
	hr.SetBasicAuth("x", tokA)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	expectError(t, w, 401, "missing bearer token")

	a1, b1 := before()
	if !sameLinks(a0, a1) || !sameLinks(b0, b1) {
		t.Fatalf("bad requests changed the store:\nA %+v\n→ %+v\nB %+v\n→ %+v", a0, a1, b0, b1)
	}
	if e.wakes.Load() != 0 {
		t.Errorf("bad requests woke the worker %d times", e.wakes.Load())
	}
	if n := len(e.apps()); n != 2 {
		t.Errorf("%d apps", n)
	}
}

func sameLinks(a, b []store.LinkView) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.AppID != y.AppID || x.Repo.ID != y.Repo.ID || x.GitToken != y.GitToken || x.Status != y.Status ||
			x.Generation != y.Generation || !x.UpdatedAt.Equal(y.UpdatedAt) || (x.SyncRequestedAt == nil) != (y.SyncRequestedAt == nil) {
			return false
		}
	}
	return true
}

func TestRegisterUpstreamErrors(t *testing.T) {
	e := newEnv(t)
	_, tok := e.app("Docs site")
	post := func(body string) *httptest.ResponseRecorder {
		return e.do(req{method: "POST", path: "/api/repositories", token: tok, body: body})
	}
	expectError(t, post(`{"github_url":"acme/nope"}`), 404, "not found")
	expectError(t, post(`{"github_url":"acme/private"}`), 404, "not found")
	expectError(t, post(`{"github_url":"acme/private","github_token":"ghp_unknown"}`), 422, "github_token:")
	expectError(t, post(`{"github_url":"https://github.example/acme"}`), 422, "github_url:")
	expectError(t, post(`{"github_url":"ftp://example.com/x.git"}`), 422, "github_url:")
	expectError(t, post(`{"github_url":"acme/docs","branch":"../x"}`), 422, "branch:")
	// A generic remote nobody answers at.
	expectError(t, post(`{"github_url":"http://127.0.0.1:1/team/plain.git"}`), 502, "")

	e.api.RateLimit(time.Now().Add(90 * time.Second))
	w := post(`{"github_url":"acme/docs"}`)
	expectError(t, w, 503, "rate limit")
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	e.api.RateLimit(time.Time{})
	e.api.Close()
	expectError(t, post(`{"github_url":"acme/docs"}`), 502, "cannot reach the GitHub API")

	if n := len(e.links("")); n != 0 {
		t.Fatalf("%d links stored", n)
	}
}

func TestRegisterGuardsGitRemotes(t *testing.T) {
	e := newEnv(t, strictNetwork)
	_, tok := e.app("Docs site")
	w := e.do(req{method: "POST", path: "/api/repositories", token: tok, body: `{"github_url":"http://127.0.0.1:1/team/plain.git"}`})
	expectError(t, w, 422, "github_url:")
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newEnv(t)
	_, tok := e.app("Docs site")
	for _, r := range []req{
		{method: "GET", path: "/api/nope"},
		{method: "GET", path: "/api/nope", token: tok},
		{method: "GET", path: "/api/apps", token: "wrong"},
		{method: "GET", path: "/api/repositories/x/y", token: tok},
		{method: "GET", path: "/"},
		{method: "GET", path: "/.env"},
	} {
		w := e.do(r)
		expectError(t, w, 404, "not found")
		if w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("%s %s: a 404 asks for credentials", r.method, r.path)
		}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/api/repositories", "GET, HEAD, POST"},
		{"GET", "/api/apps/onboard", "POST"},
		{"POST", "/api/repositories/repo_x", "DELETE, GET, HEAD"},
		{"GET", "/api/repositories/repo_x/sync", "POST"},
		{"POST", "/health", "GET, HEAD"},
	} {
		w := e.do(req{method: tc.method, path: tc.path, token: tok})
		expectError(t, w, 405, "method not allowed")
		if got := w.Header().Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}

	// Worker mode serves only the operational routes.
	w := newEnv(t, withOptions(func(o *Options) { o.Mode, o.Registry = ModeWorker, nil }))
	expect(t, w.do(req{method: "GET", path: "/health"}), 200)
	expect(t, w.do(req{method: "GET", path: "/version"}), 200)
	if r := w.do(req{method: "GET", path: "/metrics"}); r.Code != 200 {
		t.Errorf("worker /metrics: %d", r.Code)
	}
	expectError(t, w.do(req{method: "GET", path: "/api/repositories", token: tok}), 404, "not found")
	expectError(t, w.do(req{method: "GET", path: "/openapi.json"}), 404, "not found")
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	}
	for _, r := range []req{
		{method: "GET", path: "/health"},
		{method: "GET", path: "/api/repositories"},
		{method: "GET", path: "/api/repositories", token: "x"},
		{method: "GET", path: "/nope"},
		{method: "DELETE", path: "/health"},
		{method: "POST", path: "/api/apps/onboard", token: "admin-secret-token", body: validApp},
	} {
		w := e.do(r)
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s %s (%d): %s = %q, want %q", r.method, r.path, w.Code, k, got, v)
			}
		}
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 11, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, withOptions(func(o *Options) {
		o.RateLimit, o.RateBurst = 1, 3
		o.Now = func() time.Time { return now }
	}))
	_, tok := e.app("Docs site")
	list := req{method: "GET", path: "/api/repositories", token: tok, client: "198.51.100.7"}
	for i := range 3 {
		if w := e.do(list); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := e.do(list)
	expectError(t, w, http.StatusTooManyRequests, "too many requests")
	if ra := w.Header().Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	// Bad tokens cost the same: the limit is applied before authentication.
	expectError(t, e.do(req{method: "GET", path: "/api/repositories", token: "guess", client: "198.51.100.7"}), 429, "")
	// Other clients are not affected; health and metrics are exempt.
	expect(t, e.do(req{method: "GET", path: "/api/repositories", token: tok, client: "198.51.100.8"}), 200)
	expect(t, e.do(req{method: "GET", path: "/health", client: "198.51.100.7"}), 200)
	if w := e.do(req{method: "GET", path: "/metrics", client: "198.51.100.7"}); w.Code != 200 {
		t.Errorf("/metrics: %d", w.Code)
	}
	// Tokens come back with time.
	now = now.Add(1100 * time.Millisecond)
	expect(t, e.do(list), 200)
	expectError(t, e.do(list), 429, "")
}

func TestRateLimitClientIPHeader(t *testing.T) {
	e := newEnv(t, withOptions(func(o *Options) {
		o.RateLimit, o.RateBurst, o.ClientIPHeader = 0.001, 1, "X-Forwarded-For"
	}))
	get := func(xff string) int {
		hr := httptest.NewRequest("GET", "/version", nil)
		hr.RemoteAddr = "10.0.0.1:1234" // the proxy
		if xff != "" {
			hr.Header.Set("X-Forwarded-For", xff)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, hr)
		return w.Code
	}
	if get("1.1.1.1, 203.0.113.1") != 200 || get("203.0.113.2") != 200 || get("9.9.9.9, 203.0.113.1") != 429 {
		t.Fatal("clients behind the proxy are not told apart by the last X-Forwarded-For address")
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: "GET", path: "/openapi.json"})
	expect(t, w, 200)
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Version string `json:"version"`
		} `json:"info"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info.Version != "1.2.3" {
		t.Errorf("openapi %q, version %q", doc.OpenAPI, doc.Info.Version)
	}
	var documented, registered []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
			var o struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(op, &o); err != nil || len(o.Responses) == 0 {
				t.Errorf("%s %s: no responses", method, path)
			}
		}
	}
	for _, rt := range e.srv.routeTable {
		registered = append(registered, rt.method+" "+rt.path)
	}
	slices.Sort(documented)
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		t.Fatalf("OpenAPI paths differ from the routes:\ndocumented %q\nregistered %q", documented, registered)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	appID, tok := e.app("Docs site")
	id := e.register(tok, "acme/docs")
	e.register(tok, "acme/trunk-repo")
	e.openCircuit(id, time.Now().Add(time.Hour))
	if _, err := e.st.DB().Exec(`UPDATE links SET status = 'failed' WHERE app_id = ? AND repository_id = ?`, appID, id); err != nil {
		t.Fatal(err)
	}
	m := e.srv.metrics
	m.Delivered("create", nil, 20*time.Millisecond)
	m.Delivered("create", nil, 30*time.Millisecond)
	m.Delivered("update", errors.New("503"), time.Second)
	m.LinkFinished(engine.Result{Outcome: engine.OutcomeFailed, DurationMS: 1500})
	m.LinkFinished(engine.Result{Outcome: engine.OutcomeSynced, DurationMS: 10})
	expect(t, e.do(req{method: "GET", path: "/health"}), 200)

	w := e.do(req{method: "GET", path: "/metrics"})
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, line := range []string{
		`docora_deliveries_total{kind="create",result="success"} 2`,
		`docora_deliveries_total{kind="update",result="failure"} 1`,
		`docora_deliveries_total{kind="delete",result="success"} 0`,
		`docora_delivery_duration_seconds_count{kind="create"} 2`,
		`docora_delivery_duration_seconds_bucket{kind="update",le="1"} 1`,
		`docora_link_runs_total{outcome="failed"} 1`,
		`docora_link_runs_total{outcome="synced"} 1`,
		`docora_link_run_duration_seconds_count 2`,
		`docora_links{status="failed"} 1`,
		`docora_links{status="pending_snapshot"} 1`,
		`docora_links{status="synced"} 0`,
		`docora_circuits_open 1`,
		`docora_apps 1`,
		`docora_repositories 2`,
		`docora_store_up 1`,
		`docora_http_requests_total{code="200",route="GET /health"} 1`,
		`docora_http_requests_total{code="201",route="POST /api/repositories"} 2`,
		"# TYPE docora_delivery_duration_seconds histogram",
		"go_goroutines ",
	} {
		if !strings.Contains(body, "\n"+line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	// A closed circuit is not counted; a failing store is reported, not fatal.
	e.openCircuit(id, time.Now().Add(-time.Minute))
	if body := e.do(req{method: "GET", path: "/metrics"}).Body.String(); !strings.Contains(body, "\ndocora_circuits_open 0") {
		t.Error("an expired circuit is counted as open")
	}
	e.st.Close()
	w = e.do(req{method: "GET", path: "/metrics"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), "\ndocora_store_up 0") ||
		!strings.Contains(w.Body.String(), `docora_deliveries_total{kind="create",result="success"} 2`) {
		t.Errorf("metrics with a closed store: %d\n%s", w.Code, w.Body.String())
	}
}

func TestTokenLookupUsesAnIndex(t *testing.T) {
	e := newEnv(t)
	rows, err := e.st.DB().Query(`EXPLAIN QUERY PLAN SELECT app_id FROM apps WHERE token_hash = ?`, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX") || !strings.Contains(plan[0], "token_hash=?") {
		t.Fatalf("the token lookup is not an index search: %q", plan)
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	e := newEnv(t)
	w := e.do(req{method: "POST", path: "/api/apps/onboard", token: "admin-secret-token", body: validApp})
	tok := expect(t, w, 201)["token"].(string)
	e.do(req{method: "POST", path: "/api/repositories", token: tok,
		body: `{"github_url":"acme/private","github_token":"` + privateToken + `"}`})
	e.do(req{method: "POST", path: "/api/repositories", token: tok,
		body: `{"github_url":"acme/private","github_token":"ghp_wrongSecretValue"}`})
	e.do(req{method: "GET", path: "/api/repositories?token=" + tok, token: tok})
	e.do(req{method: "GET", path: "/api/repositories", token: "docora_guessedSecretValue"})
	logs := e.logs.String()
	if !strings.Contains(logs, "msg=request") || !strings.Contains(logs, `route="POST /api/repositories"`) {
		t.Fatalf("no access log:\n%s", logs)
	}
	for _, secret := range []string{tok, "admin-secret-token", privateToken, "ghp_wrongSecretValue", "0123456789abcdef-key",
		"docora_guessedSecretValue", "Bearer"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q:\n%s", secret, logs)
		}
	}
}

func TestPanicsAreRecovered(t *testing.T) {
	e := newEnv(t)
	h := e.srv.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	expectError(t, w, 500, "internal error")
	if !strings.Contains(e.logs.String(), "handler panicked") {
		t.Error("the panic was not logged")
	}
}
