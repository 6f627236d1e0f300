package webhook_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/docora/docora/pkg/webhook"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const repoJSON = `{"repository_id":"repo_0123456789abcdef01234567","github_url":"https://github.com/acme/docs","owner":"acme","name":"docs"}`

var helloSHA = sha([]byte("hello\n"))

func TestParse(t *testing.T) {
	create := `{"repository":` + repoJSON + `,"file":{"path":"a/b.md","sha":"` + helloSHA + `","size":6,"content":"hello\n"},"commit_sha":"abc","timestamp":"2026-01-11T12:00:00.000Z"}`
	update := `{"repository":` + repoJSON + `,"file":{"path":"a/b.md","sha":"` + helloSHA + `","size":6,"content":"aGVsbG8K","content_encoding":"base64"},"previous_sha":"` + sha(nil) + `","commit_sha":"abc","timestamp":"2026-01-11T12:00:00.000Z"}`
	del := `{"repository":` + repoJSON + `,"file":{"path":"a/b.md","sha":"` + helloSHA + `"},"commit_sha":"abc","timestamp":"2026-01-11T12:00:00.000Z"}`
	failed := `{"event":"sync_failed","repository":` + repoJSON + `,"error":{"type":"git_failure","message":"boom"},"circuit_breaker":{"status":"open","consecutive_failures":5,"threshold":5,"cooldown_until":"2026-01-11T12:30:00.000Z"},"retry_count":5,"timestamp":"2026-01-11T12:00:00.000Z"}`
	chunked := func(chunk string) string {
		return `{"repository":` + repoJSON + `,"file":{"path":"big.bin","sha":"` + helloSHA + `","size":6,"content":"aGVsbG8K","content_encoding":"base64","chunk":` + chunk + `},"commit_sha":"abc","timestamp":"t"}`
	}
	withFile := func(file string) string {
		return `{"repository":` + repoJSON + `,"file":` + file + `,"commit_sha":"abc","timestamp":"t"}`
	}

	tests := []struct {
		name     string
		endpoint string
		body     string
		want     error
		wantType webhook.Event
	}{
		{name: "create", endpoint: "create", body: create, wantType: &webhook.CreateEvent{}},
		{name: "create with slash", endpoint: "/create", body: create, wantType: &webhook.CreateEvent{}},
		{name: "update", endpoint: "update", body: update, wantType: &webhook.UpdateEvent{}},
		{name: "delete", endpoint: "delete", body: del, wantType: &webhook.DeleteEvent{}},
		{name: "sync_failed", endpoint: "sync_failed", body: failed, wantType: &webhook.SyncFailedEvent{}},
		{name: "unknown fields ignored", endpoint: "create", body: strings.Replace(create, `"commit_sha"`, `"future":[1,{}],"commit_sha"`, 1), wantType: &webhook.CreateEvent{}},
		{name: "chunk", endpoint: "create", body: chunked(`{"id":"c1","index":1,"total":2,"offset":3}`), wantType: &webhook.CreateEvent{}},
		{name: "unknown endpoint", endpoint: "rename", body: create, want: webhook.ErrUnknownEndpoint},
		{name: "empty endpoint", endpoint: "", body: create, want: webhook.ErrUnknownEndpoint},
		{name: "malformed JSON", endpoint: "create", body: `{"repository":`, want: webhook.ErrInvalidPayload},
		{name: "trailing garbage", endpoint: "create", body: create + `x`, want: webhook.ErrInvalidPayload},
		{name: "empty body", endpoint: "create", body: ``, want: webhook.ErrInvalidPayload},
		{name: "null", endpoint: "delete", body: `null`, want: webhook.ErrInvalidPayload},
		{name: "array", endpoint: "sync_failed", body: `[]`, want: webhook.ErrInvalidPayload},
		{name: "empty object", endpoint: "create", body: `{}`, want: webhook.ErrInvalidPayload},
		{name: "wrong type", endpoint: "create", body: withFile(`{"path":"a","sha":"` + helloSHA + `","size":"6","content":""}`), want: webhook.ErrInvalidPayload},
		{name: "empty path", endpoint: "create", body: withFile(`{"path":"","sha":"` + helloSHA + `","size":6,"content":"hello\n"}`), want: webhook.ErrInvalidPayload},
		{name: "uppercase sha", endpoint: "create", body: withFile(`{"path":"a","sha":"` + strings.ToUpper(helloSHA) + `","size":6,"content":"hello\n"}`), want: webhook.ErrInvalidPayload},
		{name: "short sha", endpoint: "delete", body: withFile(`{"path":"a","sha":"abc"}`), want: webhook.ErrInvalidPayload},
		{name: "negative size", endpoint: "create", body: withFile(`{"path":"a","sha":"` + helloSHA + `","size":-1,"content":""}`), want: webhook.ErrInvalidPayload},
		{name: "unknown encoding", endpoint: "update", body: withFile(`{"path":"a","sha":"` + helloSHA + `","size":6,"content":"","content_encoding":"hex"}`), want: webhook.ErrInvalidPayload},
		{name: "chunk index past total", endpoint: "create", body: chunked(`{"id":"c1","index":2,"total":2,"offset":0}`), want: webhook.ErrInvalidPayload},
		{name: "chunk negative index", endpoint: "create", body: chunked(`{"id":"c1","index":-1,"total":2,"offset":0}`), want: webhook.ErrInvalidPayload},
		{name: "chunk total zero", endpoint: "create", body: chunked(`{"id":"c1","index":0,"total":0,"offset":0}`), want: webhook.ErrInvalidPayload},
		{name: "chunk without id", endpoint: "create", body: chunked(`{"id":"","index":0,"total":2,"offset":0}`), want: webhook.ErrInvalidPayload},
		{name: "chunk offset past size", endpoint: "create", body: chunked(`{"id":"c1","index":1,"total":2,"offset":7}`), want: webhook.ErrInvalidPayload},
		{name: "sync_failed with another event", endpoint: "sync_failed", body: strings.Replace(failed, `"event":"sync_failed"`, `"event":"create"`, 1), want: webhook.ErrInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := webhook.Parse(tt.endpoint, []byte(tt.body))
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Parse = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if reflect.TypeOf(ev) != reflect.TypeOf(tt.wantType) {
				t.Fatalf("Parse = %T, want %T", ev, tt.wantType)
			}
			if got := ev.Endpoint(); got != strings.TrimPrefix(tt.endpoint, "/") {
				t.Fatalf("Endpoint() = %q", got)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	body := `{"repository":` + repoJSON + `,"file":{"path":"docs/é.md","sha":"` + helloSHA + `","size":6,"content":"aGVsbG8K","content_encoding":"base64"},"previous_sha":"` + sha(nil) + `","commit_sha":"abc","timestamp":"2026-01-11T12:00:00.000Z"}`
	ev, err := webhook.Parse("update", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := &webhook.UpdateEvent{
		Repository:  webhook.Repository{RepositoryID: "repo_0123456789abcdef01234567", GitHubURL: "https://github.com/acme/docs", Owner: "acme", Name: "docs"},
		File:        webhook.File{Path: "docs/é.md", SHA: helloSHA, Size: 6, Content: "aGVsbG8K", ContentEncoding: "base64"},
		PreviousSHA: sha(nil), CommitSHA: "abc", Timestamp: "2026-01-11T12:00:00.000Z",
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", ev, want)
	}
}

func TestFileBytes(t *testing.T) {
	binary := []byte{0, 1, 2, 0xff, 'x'}
	tests := []struct {
		name string
		file webhook.File
		want []byte
		err  error
	}{
		{name: "text", file: webhook.File{SHA: helloSHA, Size: 6, Content: "hello\n"}, want: []byte("hello\n")},
		{name: "unicode text", file: webhook.File{SHA: sha([]byte("héllo ✓")), Size: int64(len("héllo ✓")), Content: "héllo ✓"}, want: []byte("héllo ✓")},
		{name: "empty", file: webhook.File{SHA: sha(nil), Size: 0}, want: []byte{}},
		{name: "base64", file: webhook.File{SHA: sha(binary), Size: 5, Content: base64.StdEncoding.EncodeToString(binary), ContentEncoding: "base64"}, want: binary},
		{name: "bad base64", file: webhook.File{SHA: sha(binary), Size: 5, Content: "!!!!", ContentEncoding: "base64"}, err: webhook.ErrInvalidPayload},
		{name: "unpadded base64", file: webhook.File{SHA: helloSHA, Size: 6, Content: "aGVsbG8", ContentEncoding: "base64"}, err: webhook.ErrInvalidPayload},
		{name: "unknown encoding", file: webhook.File{SHA: helloSHA, Size: 6, Content: "hello\n", ContentEncoding: "gzip"}, err: webhook.ErrInvalidPayload},
		{name: "sha mismatch", file: webhook.File{SHA: sha([]byte("other")), Size: 6, Content: "hello\n"}, err: webhook.ErrSHAMismatch},
		{name: "size mismatch", file: webhook.File{SHA: helloSHA, Size: 7, Content: "hello\n"}, err: webhook.ErrSizeMismatch},
		{name: "chunk: no whole-file check", file: webhook.File{SHA: helloSHA, Size: 6, Content: "aGVs", ContentEncoding: "base64",
			Chunk: &webhook.Chunk{ID: "c", Index: 0, Total: 2}}, want: []byte("hel")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.file.Bytes()
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Bytes = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("Bytes = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
