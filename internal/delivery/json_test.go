package delivery

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/docora/docora/pkg/webhook"
)

func TestMarshal(t *testing.T) {
	type pair struct {
		B string `json:"b"`
		A int    `json:"a"`
	}
	for _, tc := range []struct {
		name string
		in   any
		want string
	}{
		{"struct order, compact, no newline", pair{B: "x", A: 1}, `{"b":"x","a":1}`},
		{"no HTML escaping", "<a href=\"x\">&amp;</a>", `"<a href=\"x\">&amp;</a>"`},
		{"line separators raw", "a\u2028b\u2029c", "\"a\u2028b\u2029c\""},
		{"escaped backslash before u2028 text", `\u2028`, `"\\u2028"`},
		{"double escaped backslash then separator", "\\\u2028", "\"\\\\\u2028\""},
		{"control characters", "\x00\x01\b\t\n\x0b\f\r\x1f\x7f", `"\u0000\u0001\b\t\n\u000b\f\r\u001f` + "\x7f\""},
		{"invalid UTF-8 becomes raw U+FFFD", "a\xffb", "\"a\ufffdb\""},
		{"real U+FFFD stays raw", "\ufffd", "\"\ufffd\""},
		{"escaped backslash then ufffd text", `\ufffd`, `"\\ufffd"`},
		{"emoji and non-BMP", "😀𝄞é", `"😀𝄞é"`},
		{"omitempty chunk", webhook.File{Path: "p", SHA: "s", Size: 1, Content: "c"}, `{"path":"p","sha":"s","size":1,"content":"c"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Marshal = %s\nwant      %s", got, tc.want)
			}
		})
	}
	if _, err := Marshal(func() {}); err == nil {
		t.Error("Marshal(func) succeeded")
	}
}

// nastyStrings are strings whose encoding differs between naive encoders and JSON.stringify.
var nastyStrings = []string{
	"", "plain", "<script>alert('x')</script>", "a&b<c>d", "\u2028", "\u2029", "x\u2028y\u2029z",
	`\u2028`, `\\u2028`, "\\\u2028", `\ufffd`, "\ufffd", "\xff\xfe", "\xed\xa0\x80", "caf\xc3",
	"\x00", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", "\x10\x1e\x1f\x7f",
	"\u0080\u0085\u009f", "\u00a0\u00ad", "\ufeffBOM", "\u200b\u200c\u200d\u200e\u200f", "\u202e\u2066",
	"\"quoted\" \\back\\slash/ /", "😀👩‍👩‍👧‍👦🇫🇷", "𝄞\U0010ffff", "\uffff\ufffe", "日本語のパス/ファイル.md",
	"line\r\nbreak", strings.Repeat("\u2028\\", 100), "</script><!--", "\\", `"`, "\t\t\t",
}

func TestMarshalMatchesNode(t *testing.T) {
	lookNode(t)
	var bodies [][]byte
	for i, s := range nastyStrings {
		repo := webhook.Repository{RepositoryID: "repo_" + s, GitHubURL: "https://github.com/o/" + s, Owner: s, Name: s}
		for _, ev := range []any{
			webhook.CreateEvent{Repository: repo, File: webhook.File{Path: s, SHA: "s", Size: int64(i), Content: s}, CommitSHA: s, Timestamp: s},
			webhook.UpdateEvent{Repository: repo, File: webhook.File{Path: "p", SHA: "s", Size: 1 << 40, Content: s, ContentEncoding: "base64",
				Chunk: &webhook.Chunk{ID: s, Index: i, Total: i + 1, Offset: int64(i) * 393216}}, PreviousSHA: s, CommitSHA: "c", Timestamp: "t"},
			webhook.DeleteEvent{Repository: repo, File: webhook.DeletedFile{Path: s, SHA: s}},
			webhook.SyncFailedEvent{Event: "sync_failed", Repository: repo, Error: webhook.SyncError{Type: "git_failure", Message: s}},
		} {
			b, err := Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(b), jsEncode(ev); got != want {
				t.Errorf("Marshal differs from the reference encoder:\n got %q\nwant %q", got, want)
			}
			bodies = append(bodies, b)
		}
	}
	js := nodeRoundTrip(t, bodies)
	for i := range bodies {
		if !bytes.Equal(bodies[i], js[i]) {
			t.Errorf("body %d differs from JSON.stringify(JSON.parse(body)):\n  go %q\nnode %q", i, bodies[i], js[i])
		}
	}
}

func FuzzMarshalMatchesJS(f *testing.F) {
	for _, s := range nastyStrings {
		f.Add(s, s, int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, path, text string, n int64) {
		repo := webhook.Repository{RepositoryID: text, GitHubURL: path, Owner: text, Name: path}
		for _, ev := range []any{
			webhook.CreateEvent{Repository: repo, File: webhook.File{Path: path, SHA: text, Size: n, Content: text}, CommitSHA: path, Timestamp: text},
			webhook.UpdateEvent{Repository: repo, File: webhook.File{Path: path, Content: text, ContentEncoding: path,
				Chunk: &webhook.Chunk{ID: text, Index: int(n % 1000), Total: 1, Offset: n}}, PreviousSHA: text},
			webhook.DeleteEvent{Repository: repo, File: webhook.DeletedFile{Path: path, SHA: text}},
			webhook.SyncFailedEvent{Event: path, Repository: repo, Error: webhook.SyncError{Type: path, Message: text},
				CircuitBreaker: webhook.CircuitBreaker{Status: text, ConsecutiveFailures: int(n % 100), CooldownUntil: path}},
		} {
			b, err := Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON: %q", b)
			}
			if bytes.HasSuffix(b, []byte("\n")) {
				t.Fatalf("trailing newline: %q", b)
			}
			if got, want := string(b), jsEncode(ev); got != want {
				t.Fatalf("Marshal differs from the JS-rule encoder:\n got %q\nwant %q", got, want)
			}
			// Decoding gives back the value (invalid UTF-8 bytes read back as U+FFFD).
			var back struct {
				Repository webhook.Repository `json:"repository"`
				Error      webhook.SyncError  `json:"error"`
			}
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.Repository.Owner != validString(text) || back.Repository.Name != validString(path) {
				t.Fatalf("round trip: got %q %q, want %q %q", back.Repository.Owner, back.Repository.Name, text, path)
			}
		}
	})
}

func TestUnescapeForJSLeavesOtherEscapes(t *testing.T) {
	for in, want := range map[string]string{
		`"\u2028"`:        "\"\u2028\"",
		`"\\u2028"`:       `"\\u2028"`,
		`"\\\u2029"`:      "\"\\\\\u2029\"",
		`"\u0000\u2027"`:  `"\u0000\u2027"`,
		`"\u202"`:         `"\u202"`,
		`"\ufffd\ufffe"`:  "\"\ufffd\\ufffe\"",
		`"no escapes"`:    `"no escapes"`,
		`"\"\u2028\""`:    "\"\\\"\u2028\\\"\"",
		`["\\","\u2029"]`: "[\"\\\\\",\"\u2029\"]",
	} {
		if got := string(unescapeForJS([]byte(in))); got != want {
			t.Errorf("unescapeForJS(%s) = %q, want %q", in, got, want)
		}
	}
}
