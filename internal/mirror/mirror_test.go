package mirror_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/docora/docora/internal/mirror"
	"github.com/docora/docora/pkg/webhook"
)

const testKey = "receiver-test-key-0123456789"

var repo = webhook.Repository{
	RepositoryID: "repo_0123456789abcdef01234567",
	GitHubURL:    "https://github.com/acme/docs",
	Owner:        "acme",
	Name:         "docs",
}

type receiver struct {
	t    *testing.T
	base string // holds dir and nothing else, to see escapes
	dir  string
	url  string
	now  time.Time
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newReceiver(t *testing.T, change func(*mirror.Options)) *receiver {
	t.Helper()
	base := t.TempDir()
	r := &receiver{t: t, base: base, dir: filepath.Join(base, "mirror"), now: time.Now(), logs: &syncBuffer{}}
	opts := mirror.Options{
		Dir:         r.dir,
		Key:         []byte(testKey),
		Logger:      slog.New(slog.NewTextHandler(r.logs, nil)),
		Reassembler: webhook.ReassemblerOptions{Dir: t.TempDir(), MaxMemory: 1000},
	}
	if change != nil {
		change(&opts)
	}
	h, err := mirror.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	r.url = srv.URL
	return r
}

type response struct {
	code int
	body map[string]any
}

// send posts body to endpoint, signed like docora signs, then lets edit change the request.
func (r *receiver) send(endpoint string, body []byte, delivery string, edit func(*http.Request)) response {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+"/"+endpoint, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	ts := strconv.FormatInt(r.now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderAppID, "app_0123456789abcdef01234567")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(testKey), ts, body))
	if delivery != "" {
		req.Header.Set(webhook.HeaderDelivery, delivery)
	}
	if edit != nil {
		edit(req)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	res := response{code: resp.StatusCode}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		r.t.Fatalf("Content-Type %q", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&res.body); err != nil {
		r.t.Fatalf("response body: %v", err)
	}
	return res
}

func (r *receiver) mustSend(endpoint string, body []byte, delivery string) response {
	r.t.Helper()
	res := r.send(endpoint, body, delivery, nil)
	if res.code != http.StatusOK {
		r.t.Fatalf("POST /%s: %d %v", endpoint, res.code, res.body)
	}
	return res
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// file builds a File the way docora does: text when valid UTF-8 without NUL, base64 otherwise.
func file(path string, content []byte) webhook.File {
	f := webhook.File{Path: path, SHA: sum(content), Size: int64(len(content))}
	if utf8.Valid(content) && !bytes.ContainsRune(content, 0) {
		f.Content = string(content)
	} else {
		f.Content = base64.StdEncoding.EncodeToString(content)
		f.ContentEncoding = webhook.EncodingBase64
	}
	return f
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func createBody(t *testing.T, f webhook.File) []byte {
	return marshal(t, webhook.CreateEvent{Repository: repo, File: f, CommitSHA: "c1", Timestamp: webhook.FormatTimestamp(time.Now())})
}

func updateBody(t *testing.T, f webhook.File, previous string) []byte {
	return marshal(t, webhook.UpdateEvent{Repository: repo, File: f, PreviousSHA: previous, CommitSHA: "c2", Timestamp: webhook.FormatTimestamp(time.Now())})
}

func deleteBody(t *testing.T, path, sha string) []byte {
	return marshal(t, webhook.DeleteEvent{Repository: repo, File: webhook.DeletedFile{Path: path, SHA: sha}, CommitSHA: "c3", Timestamp: webhook.FormatTimestamp(time.Now())})
}

// tree returns every file under dir with its content, and every directory with a trailing /.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			got[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		got[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantTree(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := tree(t, dir)
	if len(got) != len(want) {
		t.Fatalf("tree = %v, want %v", keys(got), keys(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Fatalf("tree[%q] = %q (present %v), want %q; tree %v", k, g, ok, v, keys(got))
		}
	}
}

func keys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestCreateUpdateDelete(t *testing.T) {
	r := newReceiver(t, nil)
	v1, v2 := []byte("# Title\n\nfirst\n"), []byte("# Title\n\nsecond\n")

	res := r.mustSend("create", createBody(t, file("docs/guide/intro.md", v1)), "d1")
	if res.body["status"] != "applied" {
		t.Fatalf("create: %v", res.body)
	}
	r.mustSend("create", createBody(t, file("README.md", []byte("hi\n"))), "d2")
	wantTree(t, r.dir, map[string]string{"docs/": "", "docs/guide/": "", "docs/guide/intro.md": string(v1), "README.md": "hi\n"})

	r.mustSend("update", updateBody(t, file("docs/guide/intro.md", v2), sum(v1)), "d3")
	wantTree(t, r.dir, map[string]string{"docs/": "", "docs/guide/": "", "docs/guide/intro.md": string(v2), "README.md": "hi\n"})

	res = r.mustSend("delete", deleteBody(t, "docs/guide/intro.md", sum(v2)), "d4")
	if res.body["status"] != "deleted" {
		t.Fatalf("delete: %v", res.body)
	}
	// The emptied directories go too, the mirror directory stays.
	wantTree(t, r.dir, map[string]string{"README.md": "hi\n"})
	r.mustSend("delete", deleteBody(t, "README.md", sum([]byte("hi\n"))), "d5")
	wantTree(t, r.dir, map[string]string{})
	if _, err := os.Stat(r.dir); err != nil {
		t.Fatalf("mirror directory: %v", err)
	}

	logs := r.logs.String()
	if !strings.Contains(logs, "msg=applied") || !strings.Contains(logs, "path=docs/guide/intro.md") {
		t.Fatalf("no applied log lines:\n%s", logs)
	}
	if strings.Contains(logs, testKey) {
		t.Fatal("the key appears in the logs")
	}
}

func TestContentKinds(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0, 0, 0x0d, 0xff, 0xfe}
	tests := []struct {
		path    string
		content []byte
	}{
		{"docs/héllo wörld.md", []byte("unicode path\n")},
		{"日本語/ファイル 名.txt", []byte("日本語のテキスト\n")},
		{"with space/and  two.txt", []byte("x")},
		{"images/logo.png", binary},
		{"invalid-utf8.txt", []byte{'a', 0xc3, 0x28, 'b'}},
		{"empty.txt", nil},
		{"crlf.txt", []byte("a\r\nb\r\n")},
		{".docoraignore", []byte("*.tmp\n")},
		{"a/.gitignore", []byte("x\n")},
		{"html.txt", []byte("<a href=\"x\">&amp;</a>\u2028\n")},
	}
	r := newReceiver(t, nil)
	want := map[string]string{}
	for i, tt := range tests {
		r.mustSend("create", createBody(t, file(tt.path, tt.content)), fmt.Sprint("d", i))
		want[tt.path] = string(tt.content)
		for dir := filepath.ToSlash(filepath.Dir(tt.path)); dir != "."; dir = filepath.ToSlash(filepath.Dir(dir)) {
			want[dir+"/"] = ""
		}
	}
	wantTree(t, r.dir, want)
}

func TestChunkedFile(t *testing.T) {
	r := newReceiver(t, nil) // MaxMemory 1000: this file is spilled
	content := make([]byte, 5000)
	for i := range content {
		content[i] = byte(i * 7)
	}
	text := base64.StdEncoding.EncodeToString(content)
	const chunkChars = 2048
	total := (len(text) + chunkChars - 1) / chunkChars
	send := func(upTo int) {
		for i := range upTo {
			part := text[i*chunkChars : min((i+1)*chunkChars, len(text))]
			f := webhook.File{Path: "assets/big.bin", SHA: sum(content), Size: int64(len(content)),
				Content: part, ContentEncoding: webhook.EncodingBase64,
				Chunk: &webhook.Chunk{ID: "6f1c7a52-7c55-4f7e-9f61-1b7c8a1e0c01", Index: i, Total: total, Offset: int64(i * chunkChars / 4 * 3)}}
			res := r.mustSend("create", createBody(t, f), "d-chunked")
			want := "chunk_received"
			if i == total-1 {
				want = "applied"
			}
			if res.body["status"] != want {
				t.Fatalf("chunk %d: %v, want status %s", i, res.body, want)
			}
			if i < total-1 {
				wantTree(t, r.dir, map[string]string{})
			}
		}
	}
	send(2) // an attempt that fails after chunk 1 ...
	send(total)
	wantTree(t, r.dir, map[string]string{"assets/": "", "assets/big.bin": string(content)})

	// A re-delivery of the whole change (its delivery id is known) changes nothing.
	if res := r.mustSend("create", createBody(t, webhook.File{Path: "assets/big.bin", SHA: sum(content), Size: 5000,
		Content: text[:chunkChars], ContentEncoding: webhook.EncodingBase64,
		Chunk: &webhook.Chunk{ID: "6f1c7a52-7c55-4f7e-9f61-1b7c8a1e0c01", Index: 0, Total: total}}), "d-chunked"); res.body["status"] != "duplicate" {
		t.Fatalf("re-delivered chunk 0: %v", res.body)
	}

	// A corrupt chunked file is refused when its last chunk is in.
	bad := append([]byte{}, content...)
	bad[4999]++
	badText := base64.StdEncoding.EncodeToString(bad)
	for i := range total {
		f := webhook.File{Path: "assets/big.bin", SHA: sum(make([]byte, 5000)), Size: 5000,
			Content: badText[i*chunkChars : min((i+1)*chunkChars, len(badText))], ContentEncoding: webhook.EncodingBase64,
			Chunk: &webhook.Chunk{ID: "other-id", Index: i, Total: total, Offset: int64(i * chunkChars / 4 * 3)}}
		res := r.send("update", updateBody(t, f, sum(content)), "d-bad", nil)
		if i < total-1 && res.code != http.StatusOK || i == total-1 && res.code != http.StatusBadRequest {
			t.Fatalf("bad chunk %d: %d %v", i, res.code, res.body)
		}
	}
	wantTree(t, r.dir, map[string]string{"assets/": "", "assets/big.bin": string(content)})
}

func TestRefused(t *testing.T) {
	good := createBody(t, file("a.txt", []byte("a\n")))
	tests := []struct {
		name     string
		endpoint string
		body     []byte
		edit     func(*http.Request)
		want     int
	}{
		{name: "bad signature", endpoint: "create", body: good, want: 401, edit: func(r *http.Request) {
			r.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte("another-key-0123456789"), r.Header.Get(webhook.HeaderTimestamp), good))
		}},
		{name: "missing signature", endpoint: "create", body: good, want: 401, edit: func(r *http.Request) { r.Header.Del(webhook.HeaderSignature) }},
		{name: "garbled signature", endpoint: "create", body: good, want: 401, edit: func(r *http.Request) { r.Header.Set(webhook.HeaderSignature, "sha256=xyz") }},
		{name: "missing timestamp", endpoint: "create", body: good, want: 401, edit: func(r *http.Request) { r.Header.Del(webhook.HeaderTimestamp) }},
		{name: "stale", endpoint: "create", body: good, want: 401, edit: resign(good, -10*time.Minute)},
		{name: "future", endpoint: "create", body: good, want: 401, edit: resign(good, 10*time.Minute)},
		{name: "signature of another endpoint's body", endpoint: "delete", body: deleteBody(t, "a.txt", sum(nil)), want: 401, edit: func(r *http.Request) {
			r.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(testKey), r.Header.Get(webhook.HeaderTimestamp), good))
		}},
		{name: "malformed JSON", endpoint: "create", body: []byte(`{"repository":{`), want: 400},
		{name: "not an object", endpoint: "update", body: []byte(`"x"`), want: 400},
		{name: "invalid payload", endpoint: "create", body: []byte(`{"file":{"path":"a.txt","sha":"nope"}}`), want: 400},
		{name: "sha mismatch", endpoint: "create", want: 400, body: createBody(t, webhook.File{Path: "a.txt", SHA: sum([]byte("b\n")), Size: 2, Content: "a\n"})},
		{name: "size mismatch", endpoint: "update", want: 400, body: updateBody(t, webhook.File{Path: "a.txt", SHA: sum([]byte("a\n")), Size: 3, Content: "a\n"}, "")},
		{name: "bad base64", endpoint: "create", want: 400, body: createBody(t, webhook.File{Path: "a.txt", SHA: sum([]byte("a\n")), Size: 2, Content: "a\n", ContentEncoding: "base64"})},
		{name: "chunk out of order", endpoint: "create", want: 400, body: createBody(t, webhook.File{Path: "a.txt", SHA: sum([]byte("a\n")), Size: 2, Content: "YQ==",
			ContentEncoding: "base64", Chunk: &webhook.Chunk{ID: "x", Index: 1, Total: 2, Offset: 1}})},
	}
	for _, p := range []string{"../x", "/etc/x", "a/../../x", "a/../x", "a\x00b", ".git/config", "sub/.git/hooks/pre-commit", ".GIT/config", "a\\..\\..\\x", "..\\x", "", ".", "a//b", "a/", "./a"} {
		tests = append(tests,
			struct {
				name     string
				endpoint string
				body     []byte
				edit     func(*http.Request)
				want     int
			}{name: fmt.Sprintf("create %q", p), endpoint: "create", body: createBody(t, file(p, []byte("pwned\n"))), want: 400},
			struct {
				name     string
				endpoint string
				body     []byte
				edit     func(*http.Request)
				want     int
			}{name: fmt.Sprintf("delete %q", p), endpoint: "delete", body: deleteBody(t, p, sum([]byte("pwned\n"))), want: 400})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, nil)
			// Something for a delete to find, outside and inside the mirror.
			os.WriteFile(filepath.Join(r.base, "x"), []byte("outside\n"), 0o644)
			os.MkdirAll(filepath.Join(r.dir, ".git"), 0o755)
			os.WriteFile(filepath.Join(r.dir, ".git", "config"), []byte("[core]\n"), 0o644)
			os.WriteFile(filepath.Join(r.dir, "x"), []byte("inside\n"), 0o644)
			before := tree(t, r.base)

			res := r.send(tt.endpoint, tt.body, "d1", tt.edit)
			if res.code != tt.want {
				t.Fatalf("status %d %v, want %d", res.code, res.body, tt.want)
			}
			if msg, _ := res.body["error"].(string); msg == "" {
				t.Fatalf("no error message: %v", res.body)
			}
			after := tree(t, r.base)
			if !maps(before, after) {
				t.Fatalf("files changed: before %v, after %v", keys(before), keys(after))
			}
		})
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// resign signs body with a timestamp shifted by d.
func resign(body []byte, d time.Duration) func(*http.Request) {
	return func(r *http.Request) {
		ts := strconv.FormatInt(time.Now().Add(d).Unix(), 10)
		r.Header.Set(webhook.HeaderTimestamp, ts)
		r.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(testKey), ts, body))
	}
}

func TestBodyTooLarge(t *testing.T) {
	r := newReceiver(t, func(o *mirror.Options) { o.MaxBodyBytes = 1000 })
	body := createBody(t, file("big.txt", bytes.Repeat([]byte("x"), 2000)))
	if res := r.send("create", body, "", nil); res.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d %v", res.code, res.body)
	}
	wantTree(t, r.dir, map[string]string{})
}

func TestRoutes(t *testing.T) {
	r := newReceiver(t, nil)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/create", http.StatusMethodNotAllowed},
		{http.MethodPost, "/rename", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusNotFound},
		{http.MethodPost, "/api/create", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, r.url+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || body["error"] == "" {
			t.Fatalf("%s %s: %d %v, want %d with an error", tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
	}
}

func TestSyncFailed(t *testing.T) {
	r := newReceiver(t, nil)
	body := marshal(t, webhook.SyncFailedEvent{
		Event: "sync_failed", Repository: repo,
		Error:          webhook.SyncError{Type: "git_failure", Message: "fetch: connection refused"},
		CircuitBreaker: webhook.CircuitBreaker{Status: "open", ConsecutiveFailures: 5, Threshold: 5, CooldownUntil: "2026-01-11T12:30:00.000Z"},
		RetryCount:     5, Timestamp: webhook.FormatTimestamp(time.Now()),
	})
	if res := r.mustSend("sync_failed", body, "d1"); res.body["status"] != "logged" {
		t.Fatalf("%v", res.body)
	}
	if !strings.Contains(r.logs.String(), "fetch: connection refused") {
		t.Fatalf("sync_failed not logged:\n%s", r.logs.String())
	}
	wantTree(t, r.dir, map[string]string{})
}

func TestIdempotent(t *testing.T) {
	r := newReceiver(t, nil)
	v1, v2 := []byte("one\n"), []byte("two\n")
	create := createBody(t, file("a/b.txt", v1))

	r.mustSend("create", create, "d1")
	if res := r.mustSend("create", create, "d1"); res.body["status"] != "duplicate" {
		t.Fatalf("same delivery again: %v", res.body)
	}
	// Without a known delivery id, identical content is left alone.
	if res := r.mustSend("create", create, "d1-other"); res.body["status"] != "unchanged" {
		t.Fatalf("identical create: %v", res.body)
	}
	if res := r.mustSend("create", create, ""); res.body["status"] != "unchanged" {
		t.Fatalf("identical create without delivery id: %v", res.body)
	}
	r.mustSend("update", updateBody(t, file("a/b.txt", v2), sum(v1)), "d2")
	// A late re-delivery of d1 must not bring back the old content.
	if res := r.mustSend("create", create, "d1"); res.body["status"] != "duplicate" {
		t.Fatalf("late re-delivery: %v", res.body)
	}
	wantTree(t, r.dir, map[string]string{"a/": "", "a/b.txt": "two\n"})

	del := deleteBody(t, "a/b.txt", sum(v2))
	r.mustSend("delete", del, "d3")
	if res := r.mustSend("delete", del, "d3"); res.body["status"] != "duplicate" {
		t.Fatalf("delete again: %v", res.body)
	}
	if res := r.mustSend("delete", del, "d3-other"); res.body["status"] != "absent" {
		t.Fatalf("delete of a missing file: %v", res.body)
	}
	if res := r.mustSend("delete", deleteBody(t, "never/was/here.txt", sum(nil)), ""); res.body["status"] != "absent" {
		t.Fatalf("delete of a missing file: %v", res.body)
	}
	// An update of a file the mirror lacks creates it: the current state wins.
	r.mustSend("update", updateBody(t, file("a/b.txt", v1), sum(v2)), "d4")
	wantTree(t, r.dir, map[string]string{"a/": "", "a/b.txt": "one\n"})
	// An edited file is replaced on re-delivery even with the same size.
	os.WriteFile(filepath.Join(r.dir, "a", "b.txt"), []byte("ONE\n"), 0o644)
	if res := r.mustSend("update", updateBody(t, file("a/b.txt", v1), sum(v2)), "d5"); res.body["status"] != "applied" {
		t.Fatalf("%v", res.body)
	}
	wantTree(t, r.dir, map[string]string{"a/": "", "a/b.txt": "one\n"})
}

func TestDirectoryBecomesFile(t *testing.T) {
	r := newReceiver(t, nil)
	r.mustSend("create", createBody(t, file("docs/api/v1.md", []byte("v1"))), "d1")
	r.mustSend("create", createBody(t, file("docs/api/v2.md", []byte("v2"))), "d2")
	r.mustSend("create", createBody(t, file("docs/index.md", []byte("i"))), "d3")

	// Deletes come first, then the create of the file that replaces the directory.
	r.mustSend("delete", deleteBody(t, "docs/api/v1.md", sum([]byte("v1"))), "d4")
	r.mustSend("delete", deleteBody(t, "docs/api/v2.md", sum([]byte("v2"))), "d5")
	r.mustSend("create", createBody(t, file("docs/api", []byte("now a file"))), "d6")
	wantTree(t, r.dir, map[string]string{"docs/": "", "docs/index.md": "i", "docs/api": "now a file"})

	// And back: the file is deleted, then a file under a directory of that name is created.
	r.mustSend("delete", deleteBody(t, "docs/api", sum([]byte("now a file"))), "d7")
	r.mustSend("create", createBody(t, file("docs/api/v3.md", []byte("v3"))), "d8")
	wantTree(t, r.dir, map[string]string{"docs/": "", "docs/index.md": "i", "docs/api/": "", "docs/api/v3.md": "v3"})

	// An empty directory left in the way is replaced too.
	os.MkdirAll(filepath.Join(r.dir, "empty", "dir"), 0o755)
	r.mustSend("create", createBody(t, file("empty/dir", []byte("x"))), "d9")

	// A directory that still holds files is not: 409, and nothing changes.
	before := tree(t, r.dir)
	if res := r.send("create", createBody(t, file("docs", []byte("x"))), "d10", nil); res.code != http.StatusConflict {
		t.Fatalf("create over a non-empty directory: %d %v", res.code, res.body)
	}
	if res := r.send("create", createBody(t, file("docs/index.md/x", []byte("x"))), "d11", nil); res.code != http.StatusConflict {
		t.Fatalf("create under a file: %d %v", res.code, res.body)
	}
	if res := r.send("delete", deleteBody(t, "docs", sum(nil)), "d12", nil); res.code != http.StatusConflict {
		t.Fatalf("delete of a directory: %d %v", res.code, res.body)
	}
	if after := tree(t, r.dir); !maps(before, after) {
		t.Fatalf("tree changed: %v -> %v", keys(before), keys(after))
	}
}

func TestNoTemporaryFilesLeft(t *testing.T) {
	r := newReceiver(t, nil)
	for i := range 20 {
		r.mustSend("create", createBody(t, file(fmt.Sprintf("d/f%d.txt", i%3), []byte(strconv.Itoa(i)))), "")
	}
	for name := range tree(t, r.dir) {
		if strings.Contains(name, ".docora-tmp-") {
			t.Fatalf("temporary file left: %s", name)
		}
	}
}

func TestConcurrentDeliveries(t *testing.T) {
	r := newReceiver(t, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				body := createBody(t, file(fmt.Sprintf("p%d/f%d.txt", i, j), []byte(fmt.Sprint(i, j))))
				req, _ := http.NewRequest(http.MethodPost, r.url+"/create", bytes.NewReader(body))
				ts := strconv.FormatInt(time.Now().Unix(), 10)
				req.Header.Set(webhook.HeaderTimestamp, ts)
				req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(testKey), ts, body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if got := len(tree(t, r.dir)); got != 8*5+8 {
		t.Fatalf("%d entries, want %d", got, 8*5+8)
	}
}

func TestNew(t *testing.T) {
	if _, err := mirror.New(mirror.Options{Key: []byte(testKey)}); err == nil {
		t.Fatal("New without Dir succeeded")
	}
	if _, err := mirror.New(mirror.Options{Dir: t.TempDir()}); err == nil {
		t.Fatal("New without Key succeeded")
	}
	dir := filepath.Join(t.TempDir(), "new", "mirror")
	h, err := mirror.New(mirror.Options{Dir: dir, Key: []byte(testKey)})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("mirror directory not created: %v", err)
	}
}
