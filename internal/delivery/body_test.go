package delivery

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/docora/docora/pkg/webhook"
)

// marshalFileBody is the reference: the body through Marshal of the event type.
func marshalFileBody(t *testing.T, p *bodyParts, repo webhook.Repository) []byte {
	t.Helper()
	f := webhook.File{Path: p.path, SHA: p.sha, Size: p.size, Chunk: p.chunk}
	switch p.how {
	case contentText:
		f.Content = string(p.content)
	case contentBase64:
		f.Content = encodeBase64(p.content)
		f.ContentEncoding = webhook.EncodingBase64
	case contentRaw:
		f.Content = string(p.content)
		f.ContentEncoding = webhook.EncodingBase64
	}
	var b []byte
	var err error
	if p.kind == Update {
		b, err = Marshal(webhook.UpdateEvent{Repository: repo, File: f, PreviousSHA: p.previousSHA, CommitSHA: p.commitSHA, Timestamp: p.timestamp})
	} else {
		b, err = Marshal(webhook.CreateEvent{Repository: repo, File: f, CommitSHA: p.commitSHA, Timestamp: p.timestamp})
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkFileBody(t *testing.T, p *bodyParts, repo webhook.Repository) {
	t.Helper()
	var err error
	if p.repo, err = Marshal(repo); err != nil {
		t.Fatal(err)
	}
	want := marshalFileBody(t, p, repo)
	got := appendFileBody(nil, p)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendFileBody differs from Marshal:\n got %q\nwant %q", got, want)
	}
	// Appending to a non-empty buffer gives the same bytes after it.
	pre := []byte("xyz")
	if got := appendFileBody(pre, p); !bytes.Equal(got[3:], want) || string(got[:3]) != "xyz" {
		t.Fatalf("appendFileBody after a prefix differs")
	}
}

// allBytes is every byte value, and every control character, quote and backslash again.
func allBytes() []byte {
	var b []byte
	for i := range 256 {
		b = append(b, byte(i))
	}
	return b
}

// TestFileBodyMatchesMarshal: every event shape — create and update; text, binary and raw base64
// content; with and without a chunk — is byte-identical to Marshal's encoding of the event.
func TestFileBodyMatchesMarshal(t *testing.T) {
	ts := webhook.FormatTimestamp(time.Date(2026, 1, 11, 12, 0, 0, 0, time.UTC))
	repos := []webhook.Repository{testRepo, {RepositoryID: "r\u2028", GitHubURL: "https://x/<a>&b", Owner: "\xff\"o\\", Name: "日本\x01"}}
	texts := [][]byte{nil, {}, []byte("hello\n"), []byte("<&>\u2028\u2029 \"q\" \\ \t\r\n\b\f\x01\x1f\x7f é 日本 \U0001F600"),
		[]byte(`\u2028 \ufffd \\u2028`)}
	for i := 1; i < 0x20; i++ {
		texts = append(texts, []byte{'a', byte(i), 'b'})
	}
	binaries := [][]byte{{0}, {0xff, 0xfe}, allBytes(), bytes.Repeat([]byte{0xe2, 0x80}, 100)}
	chunks := []*webhook.Chunk{nil, {ID: "5b0c6a52-3f0e-4d53-9a43-6a1f0d0c0d0a", Index: 3, Total: 54, Offset: 1 << 40}, {ID: "\u2028\"\xff", Index: 0, Total: 1}}
	paths := []string{"docs/readme.md", "a\u2028b\u2029c", "日本/\"q\"\\\t", "\xff\xfe/x", "<script>&amp;"}
	for _, kind := range []Kind{Create, Update} {
		for _, repo := range repos {
			for _, path := range paths {
				for _, ch := range chunks {
					for _, c := range texts {
						checkFileBody(t, &bodyParts{kind: kind, path: path, sha: shaHex(c), size: int64(len(c)), content: c, how: contentText,
							chunk: ch, previousSHA: "prev\u2028" + path, commitSHA: "c0ffee", timestamp: ts}, repo)
					}
					for _, c := range append(binaries, texts...) {
						checkFileBody(t, &bodyParts{kind: kind, path: path, sha: shaHex(c), size: -1, content: c, how: contentBase64,
							chunk: ch, previousSHA: "", commitSHA: "\xffc", timestamp: ts}, repo)
						raw := []byte(encodeBase64(c))
						checkFileBody(t, &bodyParts{kind: kind, path: path, sha: "", size: 0, content: raw, how: contentRaw,
							chunk: ch, commitSHA: "c", timestamp: ts}, repo)
					}
				}
			}
		}
	}
}

func FuzzFileBody(f *testing.F) {
	f.Add("docs/readme.md", []byte("hello\n"), "prev", "commit", "id", uint8(0), int64(6))
	f.Add("a\u2028b", []byte("\x00\x01\xff"), "\xff", "\u2029", "\"", uint8(7), int64(-1))
	f.Add("日本/\"q\"\\", []byte("<&>\u2029\t\b\f"), "", "", "", uint8(5), int64(1<<62))
	f.Fuzz(func(t *testing.T, path string, content []byte, prev, commit, id string, shape uint8, n int64) {
		p := &bodyParts{kind: Create, path: path, sha: prev + commit, size: n, content: content, previousSHA: prev,
			commitSHA: commit, timestamp: id + commit}
		if shape&1 != 0 {
			p.kind = Update
		}
		switch {
		case shape&2 != 0:
			p.chunk = &webhook.Chunk{ID: id, Index: int(n % 1000), Total: int(n % 7), Offset: n}
		}
		switch {
		case shape&4 != 0 || !IsText(content):
			p.how = contentBase64
		default:
			p.how = contentText
		}
		checkFileBody(t, p, webhook.Repository{RepositoryID: id, GitHubURL: path, Owner: prev, Name: commit})
		if shape&8 != 0 {
			p.content, p.how = []byte(encodeBase64(content)), contentRaw
			checkFileBody(t, p, testRepo)
		}
	})
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// needsEscape agrees with the byte-by-byte rule for every byte at every place of a word, and
// for random words; appendEscaped then agrees with Marshal whatever the escapes' positions.
func TestNeedsEscape(t *testing.T) {
	escapes := func(b []byte) bool {
		for _, c := range b {
			if c < 0x20 || c == '"' || c == '\\' {
				return true
			}
		}
		return false
	}
	word := func(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
	for c := range 256 {
		for p := range 8 {
			for _, fill := range []byte{'a', 0x7f, 0x80, 0xff, 0x20, 0x21} {
				b := bytes.Repeat([]byte{fill}, 8)
				b[p] = byte(c)
				if got, want := needsEscape(word(b)), escapes(b); got != want {
					t.Fatalf("needsEscape(% x) = %v, want %v", b, got, want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, 8)
	for range 200_000 {
		binary.LittleEndian.PutUint64(b, rng.Uint64()|0x4040404040404040*uint64(rng.IntN(2)))
		if got, want := needsEscape(word(b)), escapes(b); got != want {
			t.Fatalf("needsEscape(% x) = %v, want %v", b, got, want)
		}
	}
	for n := range 40 {
		for p := range n {
			text := bytes.Repeat([]byte("abcdefghij"), 4)[:n]
			text[p] = '\n'
			if p > 2 {
				text[p-3] = '"'
			}
			want, _ := Marshal(string(text))
			if got := append(append([]byte{'"'}, appendEscaped(nil, text)...), '"'); !bytes.Equal(got, want) {
				t.Fatalf("appendEscaped(%q) = %s, want %s", text, got, want)
			}
		}
	}
}
