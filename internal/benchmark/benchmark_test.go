package benchmark

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// TestTreeSpec: the generator is deterministic, hits the requested total exactly and writes
// text that is text by SPEC §6 (valid UTF-8, no NUL).
func TestTreeSpec(t *testing.T) {
	spec := TreeSpec{Files: 60, Bytes: 600 << 10, Large: 2, LargeSize: 100 << 10, Seed: 3}
	a, b := t.TempDir(), t.TempDir()
	files, err := spec.Write(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Write(b); err != nil {
		t.Fatal(err)
	}
	if len(files) != spec.Files {
		t.Fatalf("%d files, want %d", len(files), spec.Files)
	}
	var total int64
	binaries := 0
	for _, f := range files {
		x, err := os.ReadFile(filepath.Join(a, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		y, _ := os.ReadFile(filepath.Join(b, filepath.FromSlash(f.Path)))
		if !bytes.Equal(x, y) {
			t.Fatalf("%s differs between two runs", f.Path)
		}
		if int64(len(x)) != f.Size {
			t.Fatalf("%s: %d bytes, planned %d", f.Path, len(x), f.Size)
		}
		if !f.Binary && (!utf8.Valid(x) || bytes.IndexByte(x, 0) >= 0) {
			t.Fatalf("%s is not text", f.Path)
		}
		if f.Binary {
			binaries++
		}
		total += f.Size
	}
	if total != spec.Bytes {
		t.Errorf("total %d bytes, want %d", total, spec.Bytes)
	}
	if binaries == 0 || binaries == len(files) {
		t.Errorf("%d of %d files binary", binaries, len(files))
	}
}
