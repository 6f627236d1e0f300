// Package benchmark holds the pieces of docora's performance benchmarks: deterministic
// synthetic repositories, local smart-HTTP git servers with request counters, and process
// measurements (wall time, peak RSS). cmd/detectbench runs the change-detection benchmarks
// with them; see docs/performance.md.
package benchmark

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// TreeSpec describes a synthetic work tree. The same spec always gives the same bytes.
type TreeSpec struct {
	Files     int   // number of files, large ones included
	Bytes     int64 // total size of all files
	Large     int   // files of LargeSize bytes (half text, half binary)
	LargeSize int64
	Seed      uint64
}

// DefaultTree is the repository: 20,000 files, 300 MB, five files of 20 MB.
var DefaultTree = TreeSpec{Files: 20000, Bytes: 300 << 20, Large: 5, LargeSize: 20 << 20, Seed: 1}

// File is one generated file.
type File struct {
	Path   string
	Size   int64
	Binary bool
}

// Plan lists the files of spec (paths, sizes, kinds) without writing anything. About one
// small file in five is binary (random bytes); the rest is text: lines of
// words, some of them non-ASCII. Sizes follow an exponential distribution scaled so that the
// total is exactly spec.Bytes.
func (spec TreeSpec) Plan() []File {
	rng := rand.New(rand.NewPCG(spec.Seed, 0x646f636f7261))
	files := make([]File, 0, spec.Files)
	for i := range spec.Large {
		ext := ".txt"
		if i%2 == 0 {
			ext = ".bin"
		}
		files = append(files, File{Path: fmt.Sprintf("assets/large-%d%s", i, ext), Size: spec.LargeSize, Binary: ext == ".bin"})
	}
	small := spec.Files - spec.Large
	budget := spec.Bytes - int64(spec.Large)*spec.LargeSize
	if small <= 0 || budget < 0 {
		return files
	}
	weights := make([]float64, small)
	var total float64
	for i := range weights {
		weights[i] = -math.Log(1 - rng.Float64())
		total += weights[i]
	}
	var used int64
	exts := []string{".md", ".txt", ".go", ".json", ".html"}
	for i, w := range weights {
		size := int64(w / total * float64(budget))
		if i == small-1 {
			size = budget - used
		}
		used += size
		binary := rng.IntN(5) == 0
		ext := exts[rng.IntN(len(exts))]
		if binary {
			ext = ".bin"
		}
		// 20 top directories of 20 subdirectories: 50 files per directory at 20,000 files.
		p := fmt.Sprintf("src/m%02d/p%02d/file-%05d%s", i%20, (i/20)%20, i, ext)
		files = append(files, File{Path: p, Size: size, Binary: binary})
	}
	return files
}

// Write writes the files of spec below dir and returns them.
func (spec TreeSpec) Write(dir string) ([]File, error) {
	files := spec.Plan()
	for i, f := range files {
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(f.Path)), f, spec.Seed, uint64(i)); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func writeFile(path string, f File, seed, index uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 256<<10)
	if f.Binary {
		err = writeBinary(w, f.Size, seed, index)
	} else {
		err = writeText(w, f.Size, seed, index)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func chachaSeed(seed, index uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
		s[8+i] = byte(index >> (8 * i))
	}
	copy(s[16:], "docora-benchmark")
	return s
}

// writeBinary writes n random bytes (incompressible, like images or archives).
func writeBinary(w *bufio.Writer, n int64, seed, index uint64) error {
	src := rand.NewChaCha8(chachaSeed(seed, index))
	buf := make([]byte, 64<<10)
	for n > 0 {
		chunk := buf[:min(int64(len(buf)), n)]
		_, _ = src.Read(chunk)
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// vocabulary mixes ASCII words with multi-byte UTF-8 ones, so that text detection sees
// every rune length.
var vocabulary = func() []string {
	syll := []string{"do", "co", "ra", "git", "tree", "blob", "sync", "hook", "lo", "rem", "ip", "sum",
		"na", "ïve", "ça", "über", "文", "件", "データ", "🎉", "and", "the", "of", "to", "in"}
	rng := rand.New(rand.NewPCG(7, 7))
	words := make([]string, 1024)
	for i := range words {
		n := 1 + rng.IntN(3)
		w := ""
		for range n {
			w += syll[rng.IntN(len(syll))]
		}
		words[i] = w
	}
	return words
}()

// writeText writes n bytes of lines of words: valid UTF-8 without NUL (text by SPEC §6).
// The last bytes are padded with ASCII so that no rune is cut.
func writeText(w *bufio.Writer, n int64, seed, index uint64) error {
	rng := rand.New(rand.NewPCG(seed, index))
	var written int64
	col := 0
	for written < n {
		word := vocabulary[rng.IntN(len(vocabulary))]
		sep := " "
		if col > 60 {
			sep, col = "\n", 0
		}
		if written+int64(len(word))+1 > n {
			pad := n - written
			for range pad {
				if err := w.WriteByte('.'); err != nil {
					return err
				}
			}
			return nil
		}
		if _, err := w.WriteString(word); err != nil {
			return err
		}
		if _, err := w.WriteString(sep); err != nil {
			return err
		}
		written += int64(len(word)) + 1
		col += len(word) + 1
	}
	return nil
}
