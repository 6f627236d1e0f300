package delivery

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/docora/docora/pkg/webhook"
)

var testRepo = webhook.Repository{
	RepositoryID: "repo_0123456789abcdef01234567",
	GitHubURL:    "https://github.com/acme/docs",
	Owner:        "acme",
	Name:         "docs",
}

const repoJSON = `{"repository_id":"repo_0123456789abcdef01234567","github_url":"https://github.com/acme/docs","owner":"acme","name":"docs"}`

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// change returns a FileChange over content; opens counts the calls of Open.
func change(kind Kind, path string, content []byte, opens *atomic.Int32) FileChange {
	return FileChange{
		Kind: kind, Path: path, SHA: shaHex(content), Size: int64(len(content)),
		Open: func() (io.ReadCloser, error) {
			if opens != nil {
				opens.Add(1)
			}
			return io.NopCloser(bytes.NewReader(content)), nil
		},
		DeliveryID: "dlv-" + path,
	}
}

// The wire format, byte for byte (SPEC §6).
func TestDeliverGoldenBodies(t *testing.T) {
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{ChunkThreshold: 8, ChunkSize: 8})
	ctx := privateCtx(t)

	create := change(Create, "docs/a.md", []byte("hello\n"), nil)
	if err := c.DeliverFile(ctx, rv.target(), testRepo, "c0ffee", create); err != nil {
		t.Fatal(err)
	}
	update := change(Update, "img/x.bin", []byte("\x00\x01\xff"), nil)
	update.PreviousSHA = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	if err := c.DeliverFile(ctx, rv.target(), testRepo, "c0ffee", update); err != nil {
		t.Fatal(err)
	}
	if err := c.DeliverDelete(ctx, rv.target(), testRepo, "c0ffee", Deletion{Path: "old.txt", SHA: "abc", DeliveryID: "dlv-del"}); err != nil {
		t.Fatal(err)
	}
	ev := webhook.SyncFailedEvent{
		Repository:     testRepo,
		Error:          webhook.SyncError{Type: "git_failure", Message: "fetch failed: <x> & \"y\"\u2028"},
		CircuitBreaker: webhook.CircuitBreaker{Status: "open", ConsecutiveFailures: 5, Threshold: 5, CooldownUntil: "2026-01-11T12:30:00.000Z"},
		RetryCount:     5,
	}
	if err := c.SendSyncFailed(ctx, rv.target(), ev, "dlv-sf"); err != nil {
		t.Fatal(err)
	}
	chunked := change(Create, "big.txt", []byte("0123456789"), nil)
	chunked.ChunkID = "11111111-2222-4333-8444-555555555555"
	if err := c.DeliverFile(ctx, rv.target(), testRepo, "c0ffee", chunked); err != nil {
		t.Fatal(err)
	}

	const ts = `"timestamp":"2026-01-11T12:00:00.000Z"`
	want := []struct{ path, delivery, body string }{
		{"/create", "dlv-docs/a.md", `{"repository":` + repoJSON + `,"file":{"path":"docs/a.md","sha":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03","size":6,"content":"hello\n"},"commit_sha":"c0ffee",` + ts + `}`},
		{"/update", "dlv-img/x.bin", `{"repository":` + repoJSON + `,"file":{"path":"img/x.bin","sha":"26a66b061e8f48f39927c312f25293959729eee95978e2892d49d3512a5cc092","size":3,"content":"AAH/","content_encoding":"base64"},"previous_sha":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03","commit_sha":"c0ffee",` + ts + `}`},
		{"/delete", "dlv-del", `{"repository":` + repoJSON + `,"file":{"path":"old.txt","sha":"abc"},"commit_sha":"c0ffee",` + ts + `}`},
		{"/sync_failed", "dlv-sf", `{"event":"sync_failed","repository":` + repoJSON + `,"error":{"type":"git_failure","message":"fetch failed: <x> & \"y\"` + "\u2028" + `"},"circuit_breaker":{"status":"open","consecutive_failures":5,"threshold":5,"cooldown_until":"2026-01-11T12:30:00.000Z"},"retry_count":5,` + ts + `}`},
		{"/create", "dlv-big.txt", `{"repository":` + repoJSON + `,"file":{"path":"big.txt","sha":"84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882","size":10,"content":"MDEyMzQ1","content_encoding":"base64","chunk":{"id":"11111111-2222-4333-8444-555555555555","index":0,"total":2,"offset":0}},"commit_sha":"c0ffee",` + ts + `}`},
		{"/create", "dlv-big.txt", `{"repository":` + repoJSON + `,"file":{"path":"big.txt","sha":"84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882","size":10,"content":"Njc4OQ==","content_encoding":"base64","chunk":{"id":"11111111-2222-4333-8444-555555555555","index":1,"total":2,"offset":6}},"commit_sha":"c0ffee",` + ts + `}`},
	}
	got := rv.requests()
	if len(got) != len(want) {
		t.Fatalf("got %d requests, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Path != w.path || got[i].Header.Get(webhook.HeaderDelivery) != w.delivery {
			t.Errorf("request %d: %s delivery %q, want %s %q", i, got[i].Path, got[i].Header.Get(webhook.HeaderDelivery), w.path, w.delivery)
		}
		if string(got[i].Body) != w.body {
			t.Errorf("request %d body:\n got %s\nwant %s", i, got[i].Body, w.body)
		}
		if sig := Sign(testKey, testNow.Unix(), got[i].Body); got[i].Header.Get(webhook.HeaderSignature) != sig {
			t.Errorf("request %d: bad signature", i)
		}
	}
}

func TestDeliverTextOrBinary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		text    bool
	}{
		{"text", "héllo <world> & \u2028 😀\n", true},
		{"empty", "", true},
		{"control characters are text", "\x01\x1b[0m\x7f", true},
		{"NUL makes binary", "a\x00b", false},
		{"invalid UTF-8", "caf\xe9", false},
		{"surrogate encoded in UTF-8", "\xed\xa0\x80", false},
		{"truncated rune", "ok\xe2\x82", false},
		{"PNG header", "\x89PNG\r\n\x1a\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if IsText([]byte(tc.content)) != tc.text {
				t.Fatalf("IsText = %v", !tc.text)
			}
			rv := newReceiver(t, nil)
			c := newTestClient(t, ClientOptions{})
			if err := c.DeliverFile(privateCtx(t), rv.target(), testRepo, "c", change(Create, "f", []byte(tc.content), nil)); err != nil {
				t.Fatal(err)
			}
			var ev webhook.CreateEvent
			if err := json.Unmarshal(rv.requests()[0].Body, &ev); err != nil {
				t.Fatal(err)
			}
			if tc.text {
				if ev.File.ContentEncoding != "" || ev.File.Content != tc.content {
					t.Errorf("text sent as %q encoding %q", ev.File.Content, ev.File.ContentEncoding)
				}
				return
			}
			if ev.File.ContentEncoding != "base64" {
				t.Fatalf("binary sent with encoding %q", ev.File.ContentEncoding)
			}
			raw, err := base64.StdEncoding.DecodeString(ev.File.Content)
			if err != nil || string(raw) != tc.content || shaHex(raw) != ev.File.SHA {
				t.Errorf("binary content does not decode to the file: %q, %v", raw, err)
			}
		})
	}
}

// chunkedFile decodes the chunk requests of one change and checks their invariants.
func chunkedFile(t *testing.T, reqs []request) []byte {
	t.Helper()
	var whole []byte
	var id string
	for i, r := range reqs {
		var ev webhook.CreateEvent
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		f := ev.File
		if f.Chunk == nil || f.ContentEncoding != "base64" {
			t.Fatalf("request %d is not a base64 chunk: %+v", i, f.Chunk)
		}
		if f.Chunk.Index != i || f.Chunk.Total != len(reqs) || f.Chunk.Offset != int64(len(whole)) {
			t.Fatalf("chunk %d: index %d total %d offset %d, want %d %d %d", i, f.Chunk.Index, f.Chunk.Total, f.Chunk.Offset, i, len(reqs), len(whole))
		}
		if i == 0 {
			id = f.Chunk.ID
		} else if f.Chunk.ID != id {
			t.Fatalf("chunk %d id %s, want %s", i, f.Chunk.ID, id)
		}
		part, err := base64.StdEncoding.DecodeString(f.Content) // each chunk decodes on its own
		if err != nil {
			t.Fatalf("chunk %d does not decode alone: %v", i, err)
		}
		if i < len(reqs)-1 && len(f.Content) != DefaultChunkSize {
			t.Fatalf("chunk %d has %d characters, want %d", i, len(f.Content), DefaultChunkSize)
		}
		whole = append(whole, part...)
		if f.Size != int64(len(whole)) && i == len(reqs)-1 {
			t.Fatalf("chunks add up to %d bytes, size says %d", len(whole), f.Size)
		}
		if shaHex(whole) != f.SHA && i == len(reqs)-1 {
			t.Fatal("reassembled sha differs from the file sha")
		}
	}
	return whole
}

func TestChunkThreshold(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name   string
		size   int
		fill   byte
		chunks int
	}{
		{"exactly 1 MiB text is not chunked", mib, 'a', 0},
		{"exactly 1 MiB binary is not chunked", mib, 0, 0},
		{"1 MiB + 1 is chunked", mib + 1, 'a', 3},
		{"3 chunks exactly", 3 * 393216, 'b', 3},
		{"one byte more", 3*393216 + 1, 'b', 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := newReceiver(t, nil)
			c := newTestClient(t, ClientOptions{})
			content := bytes.Repeat([]byte{tc.fill}, tc.size)
			if err := c.DeliverFile(privateCtx(t), rv.target(), testRepo, "c", change(Update, "f", content, nil)); err != nil {
				t.Fatal(err)
			}
			reqs := rv.requests()
			if tc.chunks == 0 {
				var ev webhook.UpdateEvent
				if len(reqs) != 1 || json.Unmarshal(reqs[0].Body, &ev) != nil || ev.File.Chunk != nil {
					t.Fatalf("got %d requests, want one unchunked", len(reqs))
				}
				if (ev.File.ContentEncoding == "") != (tc.fill != 0) {
					t.Fatalf("encoding %q for fill %d", ev.File.ContentEncoding, tc.fill)
				}
				return
			}
			if len(reqs) != tc.chunks {
				t.Fatalf("got %d requests, want %d chunks", len(reqs), tc.chunks)
			}
			if !bytes.Equal(chunkedFile(t, reqs), content) {
				t.Fatal("reassembled content differs")
			}
		})
	}
}

// A failed chunk stops the change; the retry starts again at chunk 0 with the same ids.
func TestChunkRetryKeepsIDs(t *testing.T) {
	rv := newReceiver(t, func(n int, _ request, w http.ResponseWriter) {
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c := newTestClient(t, ClientOptions{})
	content := make([]byte, 1<<20+1000)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(content)
	var opens atomic.Int32
	fc := change(Create, "blob.bin", content, &opens)

	err := c.DeliverFile(privateCtx(t), rv.target(), testRepo, "c", fc)
	var de *DeliveryError
	if !errors.As(err, &de) || de.StatusCode != http.StatusBadGateway || !strings.Contains(err.Error(), "chunk 2/3") {
		t.Fatalf("first attempt: %v, want a 502 DeliveryError naming chunk 2/3", err)
	}
	if n := len(rv.requests()); n != 2 {
		t.Fatalf("first attempt sent %d requests, want 2 (nothing after the failure)", n)
	}
	if err := c.DeliverFile(privateCtx(t), rv.target(), testRepo, "c", fc); err != nil {
		t.Fatalf("retry: %v", err)
	}
	reqs := rv.requests()
	if len(reqs) != 5 || opens.Load() != 2 {
		t.Fatalf("%d requests, %d opens; want 5 and 2", len(reqs), opens.Load())
	}
	if !bytes.Equal(chunkedFile(t, reqs[2:]), content) {
		t.Fatal("retry did not deliver the whole file from chunk 0")
	}
	wantID := ChunkID(fc.DeliveryID)
	for i, r := range reqs {
		var ev webhook.CreateEvent
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if r.Header.Get(webhook.HeaderDelivery) != fc.DeliveryID || ev.File.Chunk.ID != wantID {
			t.Errorf("request %d: delivery %q chunk id %q, want %q %q", i, r.Header.Get(webhook.HeaderDelivery), ev.File.Chunk.ID, fc.DeliveryID, wantID)
		}
	}
	if ChunkID("a") == ChunkID("b") || len(ChunkID("a")) != 36 {
		t.Error("derived chunk ids are not distinct UUIDs")
	}
}

// countingReader counts the bytes handed out.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// A 20 MB file is streamed: when chunk i arrives, no more than i+5 chunks' worth of bytes has
// been read from the source, and the live heap stays far below the file size.
func TestDeliverFileStreamsLargeFile(t *testing.T) {
	const size = 20_000_000
	seed := [32]byte{7}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(rand.NewChaCha8(seed), size)); err != nil {
		t.Fatal(err)
	}
	sha := hex.EncodeToString(h.Sum(nil))

	src := &countingReader{r: io.LimitReader(rand.NewChaCha8(seed), size)}
	const rawPerChunk = DefaultChunkSize / 4 * 3
	var (
		mu       sync.Mutex
		got      = sha256.New()
		next     int
		maxHeap  uint64
		problems []string
	)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev webhook.CreateEvent
		err := json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || ev.File.Chunk == nil || ev.File.Chunk.Index != next {
			problems = append(problems, fmt.Sprintf("bad chunk request: %v", err))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// Streaming: while chunk n is sent, chunk n+1 waits signed, n+2 is encoded, n+3 waits
		// to be, and n+4 is read.
		if read := src.n.Load(); read > int64(next+5)*rawPerChunk {
			problems = append(problems, fmt.Sprintf("chunk %d arrived after %d bytes were read", next, read))
		}
		part, err := base64.StdEncoding.DecodeString(ev.File.Content)
		if err != nil || ev.File.Chunk.Offset != int64(next)*rawPerChunk {
			problems = append(problems, fmt.Sprintf("chunk %d: offset %d, %v", next, ev.File.Chunk.Offset, err))
		}
		got.Write(part)
		next++
		ev = webhook.CreateEvent{}
		part = nil
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		maxHeap = max(maxHeap, ms.HeapAlloc)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	c := newTestClient(t, ClientOptions{})
	fc := FileChange{
		Kind: Create, Path: "big.bin", SHA: sha, Size: size, DeliveryID: "d",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(src), nil },
	}
	if err := c.DeliverFile(privateCtx(t), Target{BaseURL: srv.URL, AppID: "app", Key: testKey}, testRepo, "c", fc); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	if want := (size + rawPerChunk - 1) / rawPerChunk; next != want {
		t.Errorf("received %d chunks, want %d", next, want)
	}
	if hex.EncodeToString(got.Sum(nil)) != sha {
		t.Error("reassembled sha differs")
	}
	grown := int64(maxHeap) - int64(baseline)
	t.Logf("live heap grew by at most %d KiB while streaming %d MB", grown>>10, size/1_000_000)
	if grown > 8<<20 {
		t.Errorf("live heap grew by %d bytes while streaming a %d-byte file", grown, size)
	}
}

// The content must match the announced size and sha; a complete mismatched file never goes out.
func TestDeliverContentMismatch(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1<<20+10) // 3 chunks
	for _, tc := range []struct {
		name     string
		announce []byte
		actual   []byte
		sent     int
	}{
		{"small, other bytes", []byte("hello"), []byte("jello"), 0},
		{"small, shorter", []byte("hello"), []byte("hell"), 0},
		{"small, longer", []byte("hello"), []byte("hello!"), 0},
		{"chunked, other bytes", big, append(bytes.Clone(big[:len(big)-1]), 'y'), 2},
		{"chunked, shorter", big, big[:len(big)-1], 2},
		{"chunked, much shorter", big, big[:500_000], 1},
		{"chunked, longer", big, append(bytes.Clone(big), 'x'), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := newReceiver(t, nil)
			c := newTestClient(t, ClientOptions{})
			fc := change(Create, "f", tc.announce, nil)
			fc.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tc.actual)), nil }
			err := c.DeliverFile(privateCtx(t), rv.target(), testRepo, "c", fc)
			if !errors.Is(err, ErrContentMismatch) {
				t.Fatalf("error %v, want ErrContentMismatch", err)
			}
			if n := len(rv.requests()); n != tc.sent {
				t.Fatalf("%d requests sent, want %d", n, tc.sent)
			}
		})
	}
}

func TestDeliverFileErrors(t *testing.T) {
	c := newTestClient(t, ClientOptions{})
	tg := Target{BaseURL: "http://127.0.0.1:1", AppID: "app", Key: testKey}
	openErr := errors.New("object missing")
	fc := change(Create, "f", []byte("x"), nil)
	fc.Open = func() (io.ReadCloser, error) { return nil, openErr }
	if err := c.DeliverFile(privateCtx(t), tg, testRepo, "c", fc); !errors.Is(err, openErr) {
		t.Errorf("open failure: %v", err)
	}
	readErr := errors.New("disk on fire")
	fc.Open = func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(strings.NewReader("ab"), iotestErr(readErr))), nil
	}
	fc.Size = 3
	if err := c.DeliverFile(privateCtx(t), tg, testRepo, "c", fc); !errors.Is(err, readErr) {
		t.Errorf("read failure: %v", err)
	}
	for name, mutate := range map[string]func(*FileChange){
		"kind":     func(f *FileChange) { f.Kind = "delete" },
		"path":     func(f *FileChange) { f.Path = "" },
		"sha":      func(f *FileChange) { f.SHA = "" },
		"size":     func(f *FileChange) { f.Size = -1 },
		"open":     func(f *FileChange) { f.Open = nil },
		"delivery": func(f *FileChange) { f.DeliveryID = "" },
	} {
		f := change(Create, "f", []byte("x"), nil)
		mutate(&f)
		if err := c.DeliverFile(privateCtx(t), tg, testRepo, "c", f); err == nil {
			t.Errorf("invalid %s accepted", name)
		}
	}
	if err := c.DeliverDelete(privateCtx(t), tg, testRepo, "c", Deletion{Path: "p"}); err == nil {
		t.Error("delete without delivery id accepted")
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func iotestErr(err error) io.Reader { return errReader{err} }

// Any path and content: every body is valid JSON, identical to its JavaScript re-serialisation,
// and its content decodes back to the file with the announced sha.
func FuzzDeliverEncoding(f *testing.F) {
	f.Add("docs/readme.md", []byte("hello\n"), uint16(1024), uint8(3))
	f.Add("a\u2028b", []byte("\x00\x01\xff"), uint16(0), uint8(0))
	f.Add("日本/\"q\"\\", []byte("<&>\u2029"), uint16(2), uint8(1))
	f.Add("\xff", bytes.Repeat([]byte{0xe2, 0x80, 0xa8}, 40), uint16(16), uint8(2))
	f.Fuzz(func(t *testing.T, path string, content []byte, threshold uint16, quads uint8) {
		if path == "" {
			return
		}
		c, err := NewClient(ClientOptions{Now: fixedNow, ChunkThreshold: int64(threshold % 256), ChunkSize: 4 * (1 + int(quads%16))})
		if err != nil {
			t.Fatal(err)
		}
		if threshold%256 == 0 {
			c.opts.ChunkThreshold = 0 // NewClient turns 0 into the default; test "chunk everything" too
		}
		fc := change(Update, path, content, nil)
		fc.PreviousSHA = path
		var whole []byte
		err = c.fileParts(fc, func(file webhook.File) error {
			body, err := fileBody(fc, testRepo, "c", file, testNow)
			if err != nil {
				return err
			}
			if !json.Valid(body) {
				t.Fatalf("invalid JSON %q", body)
			}
			var ev webhook.UpdateEvent
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatal(err)
			}
			if js := jsEncode(ev); js != string(body) {
				t.Fatalf("body differs from its JS re-serialisation:\n got %q\nwant %q", body, js)
			}
			if ev.File.Path != validString(path) || ev.File.SHA != fc.SHA || ev.File.Size != fc.Size {
				t.Fatalf("file fields %q %s %d", ev.File.Path, ev.File.SHA, ev.File.Size)
			}
			part := []byte(ev.File.Content)
			if ev.File.ContentEncoding == "base64" {
				if part, err = base64.StdEncoding.DecodeString(ev.File.Content); err != nil {
					t.Fatal(err)
				}
			} else if !IsText(content) || ev.File.Chunk != nil {
				t.Fatalf("binary or chunked content sent as text")
			}
			if ch := ev.File.Chunk; ch != nil && ch.Offset != int64(len(whole)) {
				t.Fatalf("chunk %d offset %d, want %d", ch.Index, ch.Offset, len(whole))
			}
			whole = append(whole, part...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(whole, content) || shaHex(whole) != fc.SHA {
			t.Fatalf("delivered %q, want %q", whole, content)
		}
	})
}

// A prepared request is the request DeliverFile sends, byte for byte and header for header;
// preparing sends nothing, and refuses what DeliverFile would refuse.
func TestPrepareFile(t *testing.T) {
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{})
	text, binary := change(Create, "a.md", []byte("# a <b>\n"), nil), change(Update, "b.bin", []byte{0, 1, 2}, nil)
	binary.PreviousSHA = shaHex([]byte("old"))
	for i, fc := range []FileChange{text, binary} {
		p, err := c.PrepareFile(rv.target(), testRepo, "c", fc)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(rv.requests()); n != 2*i {
			t.Fatalf("preparing sent %d requests", n)
		}
		if err := c.SendPrepared(privateCtx(t), rv.target(), p); err != nil {
			t.Fatal(err)
		}
		if err := c.DeliverFile(privateCtx(t), rv.target(), testRepo, "c", fc); err != nil {
			t.Fatal(err)
		}
		reqs := rv.requests()
		prepared, delivered := reqs[len(reqs)-2], reqs[len(reqs)-1]
		if !bytes.Equal(prepared.Body, delivered.Body) || prepared.Path != delivered.Path {
			t.Errorf("%s: prepared %s %s\ndelivered %s %s", fc.Path, prepared.Path, prepared.Body, delivered.Path, delivered.Body)
		}
		for _, h := range []string{webhook.HeaderSignature, webhook.HeaderTimestamp, webhook.HeaderDelivery, webhook.HeaderAppID, "Content-Type", "User-Agent"} {
			if prepared.Header.Get(h) != delivered.Header.Get(h) || prepared.Header.Get(h) == "" {
				t.Errorf("%s: header %s prepared %q delivered %q", fc.Path, h, prepared.Header.Get(h), delivered.Header.Get(h))
			}
		}
	}

	bad := change(Create, "c.txt", []byte("hello"), nil)
	bad.Content = []byte("jello")
	if _, err := c.PrepareFile(rv.target(), testRepo, "c", bad); !errors.Is(err, ErrContentMismatch) {
		t.Errorf("mismatched content: %v, want ErrContentMismatch", err)
	}
	big := change(Create, "big.bin", make([]byte, DefaultChunkThreshold+1), nil)
	if _, err := c.PrepareFile(rv.target(), testRepo, "c", big); err == nil {
		t.Error("a file above the chunk threshold was prepared whole")
	}
	invalid := change(Create, "", []byte("x"), nil)
	if _, err := c.PrepareFile(rv.target(), testRepo, "c", invalid); err == nil {
		t.Error("a change without a path was prepared")
	}
	if n := len(rv.requests()); n != 4 {
		t.Errorf("%d requests in all, want 4", n)
	}
}
