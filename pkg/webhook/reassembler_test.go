package webhook_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/pkg/webhook"
)

// chunks splits content the way docora does: base64 text cut every chunkChars characters (a
// multiple of 4), each chunk carrying the whole file's path, sha and size.
func chunks(path, id string, content []byte, chunkChars int) []webhook.File {
	text := base64.StdEncoding.EncodeToString(content)
	n := max((len(text)+chunkChars-1)/chunkChars, 1)
	files := make([]webhook.File, n)
	for i := range files {
		part := text[min(i*chunkChars, len(text)):min((i+1)*chunkChars, len(text))]
		files[i] = webhook.File{
			Path: path, SHA: sha(content), Size: int64(len(content)),
			Content: part, ContentEncoding: webhook.EncodingBase64,
			Chunk: &webhook.Chunk{ID: id, Index: i, Total: n, Offset: int64(i * chunkChars / 4 * 3)},
		}
	}
	return files
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newReassembler(t *testing.T, opts webhook.ReassemblerOptions) *webhook.Reassembler {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	r := webhook.NewReassembler(opts)
	t.Cleanup(func() { r.Close() })
	return r
}

func readAssembled(t *testing.T, a *webhook.Assembled) []byte {
	t.Helper()
	rc, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestReassemblerInOrder(t *testing.T) {
	content := randomBytes(t, 10_000)
	tests := []struct {
		name      string
		maxMemory int64
		spilled   bool
	}{
		{name: "in memory", maxMemory: 1 << 20},
		{name: "exactly max memory", maxMemory: 10_000},
		{name: "spilled", maxMemory: 9_999, spilled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := newReassembler(t, webhook.ReassemblerOptions{Dir: dir, MaxMemory: tt.maxMemory})
			parts := chunks("data/blob.bin", "id-1", content, 1024)
			for i, f := range parts[:len(parts)-1] {
				if a, err := r.Add(f); a != nil || err != nil {
					t.Fatalf("chunk %d: Add = %v, %v; want nil, nil", i, a, err)
				}
			}
			if got := len(dirEntries(t, dir)); got != map[bool]int{false: 0, true: 1}[tt.spilled] {
				t.Fatalf("%d files in the spill dir mid-transfer", got)
			}
			a, err := r.Add(parts[len(parts)-1])
			if err != nil || a == nil {
				t.Fatalf("last chunk: Add = %v, %v", a, err)
			}
			if a.Path != "data/blob.bin" || a.SHA != sha(content) || a.Size != 10_000 || a.ChunkID != "id-1" {
				t.Fatalf("Assembled = %+v", a)
			}
			if (a.TempFile() != "") != tt.spilled {
				t.Fatalf("TempFile() = %q, spilled = %v", a.TempFile(), tt.spilled)
			}
			if got := readAssembled(t, a); !bytes.Equal(got, content) {
				t.Fatal("assembled content differs")
			}
			if r.Pending() != 0 {
				t.Fatalf("Pending() = %d after completion", r.Pending())
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if got := dirEntries(t, dir); len(got) != 0 {
				t.Fatalf("spill dir not empty after Close: %v", got)
			}
		})
	}
}

func TestReassemblerUnchunked(t *testing.T) {
	r := newReassembler(t, webhook.ReassemblerOptions{MaxFileSize: 10})
	a, err := r.Add(webhook.File{Path: "a.txt", SHA: helloSHA, Size: 6, Content: "hello\n"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAssembled(t, a); string(got) != "hello\n" || a.ChunkID != "" || a.TempFile() != "" {
		t.Fatalf("Assembled = %+v, content %q", a, got)
	}
	if _, err := r.Add(webhook.File{Path: "a.txt", SHA: helloSHA, Size: 6, Content: "hallo\n"}); !errors.Is(err, webhook.ErrSHAMismatch) {
		t.Fatalf("Add with wrong sha = %v", err)
	}
	big := []byte("0123456789a")
	if _, err := r.Add(webhook.File{Path: "b", SHA: sha(big), Size: 11, Content: string(big)}); !errors.Is(err, webhook.ErrFileTooLarge) {
		t.Fatalf("Add above MaxFileSize = %v", err)
	}
}

func TestReassemblerErrors(t *testing.T) {
	content := randomBytes(t, 3000)
	other := randomBytes(t, 3000)
	const chunkChars = 1024 // 768 bytes: 4 chunks

	// Each case feeds a sequence of chunks; only the last Add may fail, with want.
	tests := []struct {
		name string
		seq  func(p []webhook.File) []webhook.File
		want error
	}{
		{name: "skipped chunk", want: webhook.ErrChunkOutOfOrder,
			seq: func(p []webhook.File) []webhook.File { return []webhook.File{p[0], p[2]} }},
		{name: "no chunk 0", want: webhook.ErrChunkOutOfOrder,
			seq: func(p []webhook.File) []webhook.File { return []webhook.File{p[1]} }},
		{name: "going back", want: webhook.ErrChunkOutOfOrder,
			seq: func(p []webhook.File) []webhook.File { return []webhook.File{p[0], p[1], p[2], p[1]} }},
		{name: "wrong offset", want: webhook.ErrChunkOffset,
			seq: func(p []webhook.File) []webhook.File {
				c := withChunk(p[1], func(c *webhook.Chunk) { c.Offset++ })
				return []webhook.File{p[0], c}
			}},
		{name: "chunk 0 with offset", want: webhook.ErrChunkOffset,
			seq: func(p []webhook.File) []webhook.File {
				return []webhook.File{withChunk(p[0], func(c *webhook.Chunk) { c.Offset = 1 })}
			}},
		{name: "total changes", want: webhook.ErrChunkMismatch,
			seq: func(p []webhook.File) []webhook.File {
				return []webhook.File{p[0], withChunk(p[1], func(c *webhook.Chunk) { c.Total = 5 })}
			}},
		{name: "sha changes", want: webhook.ErrChunkMismatch,
			seq: func(p []webhook.File) []webhook.File {
				c := p[1]
				c.SHA = sha(other)
				return []webhook.File{p[0], c}
			}},
		{name: "size changes", want: webhook.ErrChunkMismatch,
			seq: func(p []webhook.File) []webhook.File {
				c := p[1]
				c.Size--
				return []webhook.File{p[0], c}
			}},
		{name: "wrong content: sha mismatch", want: webhook.ErrSHAMismatch,
			seq: func(p []webhook.File) []webhook.File {
				bad := chunks("f", "id", other, chunkChars)
				for i := range bad {
					bad[i].SHA = p[i].SHA
				}
				return bad
			}},
		{name: "size larger than content", want: webhook.ErrSizeMismatch,
			seq: func(p []webhook.File) []webhook.File {
				for i := range p {
					p[i].Size++
				}
				return p
			}},
		{name: "size smaller than content", want: webhook.ErrSizeMismatch,
			seq: func(p []webhook.File) []webhook.File {
				for i := range p {
					p[i].Size = 2000
				}
				return p[:3] // chunk 2 goes past byte 2000
			}},
		{name: "bad base64", want: webhook.ErrInvalidPayload,
			seq: func(p []webhook.File) []webhook.File {
				p[1].Content = "%%%%"
				return p[:2]
			}},
		{name: "invalid chunk", want: webhook.ErrInvalidPayload,
			seq: func(p []webhook.File) []webhook.File {
				return []webhook.File{withChunk(p[0], func(c *webhook.Chunk) { c.Index = c.Total })}
			}},
		{name: "above MaxFileSize", want: webhook.ErrFileTooLarge,
			seq: func(p []webhook.File) []webhook.File {
				big := chunks("f", "id", randomBytes(t, 5000), chunkChars)
				return big[:1]
			}},
	}
	for _, tt := range tests {
		for _, maxMemory := range []int64{1 << 20, 100} {
			t.Run(fmt.Sprintf("%s/maxmem=%d", tt.name, maxMemory), func(t *testing.T) {
				dir := t.TempDir()
				r := newReassembler(t, webhook.ReassemblerOptions{Dir: dir, MaxMemory: maxMemory, MaxFileSize: 4000})
				seq := tt.seq(chunks("f", "id", content, chunkChars))
				for i, f := range seq {
					a, err := r.Add(f)
					if i < len(seq)-1 {
						if err != nil || a != nil {
							t.Fatalf("Add #%d = %v, %v; want nil, nil", i, a, err)
						}
						continue
					}
					if !errors.Is(err, tt.want) || a != nil {
						t.Fatalf("Add #%d = %v, %v; want %v", i, a, err, tt.want)
					}
				}
				// Whatever happened, a fresh start from chunk 0 completes the file.
				var a *webhook.Assembled
				for _, f := range chunks("f", "id", content, chunkChars) {
					var err error
					if a, err = r.Add(f); err != nil {
						t.Fatalf("retry: %v", err)
					}
				}
				if a == nil || !bytes.Equal(readAssembled(t, a), content) {
					t.Fatal("retry did not assemble the file")
				}
				a.Close()
				if got := dirEntries(t, dir); len(got) != 0 {
					t.Fatalf("temporary files left: %v", got)
				}
			})
		}
	}
}

func withChunk(f webhook.File, change func(*webhook.Chunk)) webhook.File {
	c := *f.Chunk
	change(&c)
	f.Chunk = &c
	return f
}

func TestReassemblerRestart(t *testing.T) {
	dir := t.TempDir()
	r := newReassembler(t, webhook.ReassemblerOptions{Dir: dir, MaxMemory: 100})
	content := randomBytes(t, 3000)
	p := chunks("f", "id", content, 1024)
	for _, f := range p[:3] {
		if _, err := r.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	// Re-delivery of the chunk just accepted is harmless.
	if a, err := r.Add(p[2]); a != nil || err != nil {
		t.Fatalf("repeated chunk: Add = %v, %v", a, err)
	}
	// A retry starts again from chunk 0 with the same id; the first attempt's file goes.
	var a *webhook.Assembled
	for i, f := range p {
		var err error
		if a, err = r.Add(f); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if got := dirEntries(t, dir); len(got) != 1 {
				t.Fatalf("after restart: spill dir holds %v, want one file", got)
			}
		}
	}
	if a == nil || !bytes.Equal(readAssembled(t, a), content) {
		t.Fatal("restarted transfer did not assemble the file")
	}
	a.Close()
	if got := dirEntries(t, dir); len(got) != 0 {
		t.Fatalf("temporary files left: %v", got)
	}
}

// The same chunk id with another path is another transfer.
func TestReassemblerKeyIncludesPath(t *testing.T) {
	r := newReassembler(t, webhook.ReassemblerOptions{})
	x, y := randomBytes(t, 2000), randomBytes(t, 2000)
	px, py := chunks("x", "same", x, 1024), chunks("y", "same", y, 1024)
	for i := range px {
		ax, err := r.Add(px[i])
		if err != nil {
			t.Fatal(err)
		}
		ay, err := r.Add(py[i])
		if err != nil {
			t.Fatal(err)
		}
		if i == len(px)-1 {
			if !bytes.Equal(readAssembled(t, ax), x) || !bytes.Equal(readAssembled(t, ay), y) {
				t.Fatal("contents mixed up")
			}
		}
	}
}

func TestReassemblerSpillsAboveMaxMemory(t *testing.T) {
	dir := t.TempDir()
	r := newReassembler(t, webhook.ReassemblerOptions{Dir: dir, MaxMemory: 1000})
	content := randomBytes(t, 4000)
	p := chunks("big", "id", content, 1024)
	for i, f := range p[:3] {
		if _, err := r.Add(f); err != nil {
			t.Fatal(err)
		}
		names := dirEntries(t, dir)
		if len(names) != 1 {
			t.Fatalf("after chunk %d: spill dir holds %v", i, names)
		}
		fi, err := os.Stat(filepath.Join(dir, names[0]))
		if err != nil {
			t.Fatal(err)
		}
		if want := int64((i + 1) * 768); fi.Size() != want {
			t.Fatalf("after chunk %d: temp file has %d bytes, want %d", i, fi.Size(), want)
		}
	}
	if got := webhook.BufferedBytes(r); got != 0 {
		t.Fatalf("%d bytes held in memory for a spilled transfer", got)
	}
}

func TestReassemblerExpire(t *testing.T) {
	dir := t.TempDir()
	r := newReassembler(t, webhook.ReassemblerOptions{Dir: dir, MaxMemory: 100, Expiry: time.Hour})
	p := chunks("f", "id", randomBytes(t, 3000), 1024)
	if _, err := r.Add(p[0]); err != nil {
		t.Fatal(err)
	}
	if n := r.Expire(time.Now().Add(30 * time.Minute)); n != 0 {
		t.Fatalf("Expire before Expiry dropped %d", n)
	}
	if n := r.Expire(time.Now().Add(2 * time.Hour)); n != 1 {
		t.Fatalf("Expire dropped %d, want 1", n)
	}
	if got := dirEntries(t, dir); len(got) != 0 {
		t.Fatalf("temporary files left after expiry: %v", got)
	}
	if _, err := r.Add(p[1]); !errors.Is(err, webhook.ErrChunkOutOfOrder) {
		t.Fatalf("chunk after expiry: %v, want ErrChunkOutOfOrder", err)
	}
}

func TestReassemblerExpiresOnItsOwn(t *testing.T) {
	dir := t.TempDir()
	r := newReassembler(t, webhook.ReassemblerOptions{Dir: dir, MaxMemory: 100, Expiry: 50 * time.Millisecond})
	if _, err := r.Add(chunks("f", "id", randomBytes(t, 3000), 1024)[0]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Pending() != 0 || len(dirEntries(t, dir)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("incomplete transfer not expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReassemblerClose(t *testing.T) {
	dir := t.TempDir()
	r := webhook.NewReassembler(webhook.ReassemblerOptions{Dir: dir, MaxMemory: 100})
	p := chunks("f", "id", randomBytes(t, 3000), 1024)
	if _, err := r.Add(p[0]); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dirEntries(t, dir); len(got) != 0 {
		t.Fatalf("temporary files left after Close: %v", got)
	}
	if _, err := r.Add(p[0]); !errors.Is(err, webhook.ErrReassemblerClosed) {
		t.Fatalf("Add after Close = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestReassemblerConcurrent(t *testing.T) {
	dir := t.TempDir()
	r := newReassembler(t, webhook.ReassemblerOptions{Dir: dir, MaxMemory: 2000})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			content := randomBytes(t, 1000+g*300) // half in memory, half spilled
			var a *webhook.Assembled
			for _, f := range chunks(fmt.Sprintf("dir/file-%d", g), fmt.Sprintf("id-%d", g%4), content, 256) {
				var err error
				if a, err = r.Add(f); err != nil {
					errs <- err
					return
				}
				r.Expire(time.Now()) // nothing is stale; exercises the locks
			}
			if a == nil {
				errs <- fmt.Errorf("file %d not assembled", g)
				return
			}
			defer a.Close()
			rc, err := a.Open()
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			got, _ := io.ReadAll(rc)
			if !bytes.Equal(got, content) {
				errs <- fmt.Errorf("file %d: content differs", g)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := dirEntries(t, dir); len(got) != 0 {
		t.Fatalf("temporary files left: %v", got)
	}
}
