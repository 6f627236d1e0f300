package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// sampleRepo is the demo's source repository: a work tree with .git, written with go-git (the
// demo must not need a git binary) and served by gitserve.
type sampleRepo struct {
	dir  string
	repo *git.Repository
	wt   *git.Worktree
}

type commitSpec struct {
	message string
	write   map[string][]byte
	remove  []string
}

type commitInfo struct {
	sha, message string
}

func newSampleRepo(dir string) (*sampleRepo, error) {
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		return nil, fmt.Errorf("create the sample repository: %w", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, err
	}
	return &sampleRepo{dir: dir, repo: repo, wt: wt}, nil
}

// commit applies spec to the work tree and commits it.
func (r *sampleRepo) commit(spec commitSpec) (commitInfo, error) {
	paths := make([]string, 0, len(spec.write))
	for p := range spec.write {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(r.dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return commitInfo{}, err
		}
		if err := os.WriteFile(full, spec.write[p], 0o644); err != nil {
			return commitInfo{}, err
		}
		if _, err := r.wt.Add(p); err != nil {
			return commitInfo{}, fmt.Errorf("stage %s: %w", p, err)
		}
	}
	for _, p := range spec.remove {
		if _, err := r.wt.Remove(p); err != nil {
			return commitInfo{}, fmt.Errorf("remove %s: %w", p, err)
		}
	}
	sig := &object.Signature{Name: "Docora Demo", Email: "demo@example.com", When: time.Now()}
	h, err := r.wt.Commit(spec.message, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return commitInfo{}, fmt.Errorf("commit: %w", err)
	}
	return commitInfo{sha: h.String(), message: spec.message}, nil
}

// verify compares dir with the delivered files of commit's tree (regular and executable files;
// the demo has no symlinks, submodules or .docoraignore) by SHA-256 of the content.
func verify(r *sampleRepo, commit, dir string) (Verification, error) {
	v := Verification{CommitSHA: commit, Differences: []string{}}
	c, err := r.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return v, err
	}
	tree, err := c.Tree()
	if err != nil {
		return v, err
	}
	want := map[string]string{}
	err = tree.Files().ForEach(func(f *object.File) error {
		if f.Mode != filemode.Regular && f.Mode != filemode.Executable {
			return nil
		}
		rc, err := f.Reader()
		if err != nil {
			return err
		}
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			return err
		}
		want[f.Name] = hex.EncodeToString(h.Sum(nil))
		v.Files++
		v.Bytes += n
		return nil
	})
	if err != nil {
		return v, fmt.Errorf("read commit %s: %w", short(commit), err)
	}
	got := map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			v.Differences = append(v.Differences, "not a regular file: "+rel)
			return nil
		}
		sum, err := fileSHA(p)
		if err != nil {
			return err
		}
		got[rel] = sum
		return nil
	})
	if err != nil {
		return v, fmt.Errorf("read the mirror: %w", err)
	}
	for p, sum := range want {
		switch g, ok := got[p]; {
		case !ok:
			v.Differences = append(v.Differences, "missing: "+p)
		case g != sum:
			v.Differences = append(v.Differences, "different content: "+p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			v.Differences = append(v.Differences, "not in the commit: "+p)
		}
	}
	sort.Strings(v.Differences)
	v.Matches = len(v.Differences) == 0
	return v, nil
}

func fileSHA(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// The sample history: a first commit of four text files, then a commit that updates one,
// creates a binary file and a text file above the 1 MiB chunk threshold, and deletes one.
var (
	firstCommit = commitSpec{
		message: "Add the handbook",
		write: map[string][]byte{
			"README.md": []byte("# Acme handbook\n\nServed by `docora demo` from a local git server. Every change to\n" +
				"this repository reaches the apps that watch it as a signed webhook.\n"),
			"docs/getting-started.md": []byte("# Getting started\n\n1. Clone the repository.\n2. Read the guide.\n"),
			"docs/guide.md": []byte("# Guide\n\nWrite in UTF-8: café, naïve, 日本語, 🎉.\n" +
				"Markup stays as it is: <b>bold</b> & \"quotes\".\n"),
			"notes/todo.txt": []byte("- write the guide\n- add a logo\n"),
		},
	}
	secondCommit = commitSpec{
		message: "Revise the guide, add a logo and a data set, drop the notes",
		write: map[string][]byte{
			"docs/guide.md": []byte("# Guide\n\nWrite in UTF-8: café, naïve, 日本語, 🎉.\n" +
				"Markup stays as it is: <b>bold</b> & \"quotes\".\n\n## Data\n\nSee data/measurements.csv.\n"),
			"assets/logo.png":       logo(),
			"data/measurements.csv": measurements(),
		},
		remove: []string{"notes/todo.txt"},
	}
)

// logo returns a small PNG image: a binary file (it contains NUL bytes), sent base64-encoded.
func logo() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.Set(x, y, color.NRGBA{R: uint8(x * 16), G: 0x66, B: uint8(y * 16), A: 0xff})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img) // writing to memory cannot fail
	return b.Bytes()
}

// measurements returns about 1.3 MiB of CSV: above the default chunk threshold (1 MiB), so it
// is delivered base64-encoded in 512 KiB chunks and reassembled by the receiver.
func measurements() []byte {
	var b strings.Builder
	b.WriteString("time,sensor,celsius\n")
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; b.Len() < 1300<<10; i++ {
		c := 180 + (i*37)%90
		fmt.Fprintf(&b, "%s,sensor-%02d,%d.%d\n", t.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i%16, c/10, c%10)
	}
	return []byte(b.String())
}
