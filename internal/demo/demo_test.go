package demo

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	sum, err := Run(t.Context(), Options{Dir: dir, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("demo took %v", time.Since(start))
	if len(sum.Syncs) != 2 {
		t.Fatalf("syncs: %+v", sum.Syncs)
	}
	one, two := sum.Syncs[0], sum.Syncs[1]
	if one.Created != 4 || one.Updated+one.Deleted != 0 || one.Requests != 4 || len(one.Changes) != 4 {
		t.Fatalf("first sync: %+v", one)
	}
	if two.Created != 2 || two.Updated != 1 || two.Deleted != 1 || two.Outcome != "synced" {
		t.Fatalf("second sync: %+v", two)
	}
	// Delivery order: deletes, creates, updates; the large file in chunks, the logo as binary.
	var order []string
	for _, c := range two.Changes {
		order = append(order, c.Type+" "+c.Path)
		switch c.Path {
		case "data/measurements.csv":
			if c.Chunks < 2 || c.Size <= 1<<20 || c.Binary {
				t.Fatalf("large file: %+v", c)
			}
		case "assets/logo.png":
			if !c.Binary || c.Chunks != 0 {
				t.Fatalf("logo: %+v", c)
			}
		}
	}
	want := []string{"delete notes/todo.txt", "create assets/logo.png", "create data/measurements.csv", "update docs/guide.md"}
	if !slices.Equal(order, want) {
		t.Fatalf("changes %q, want %q", order, want)
	}
	if two.Requests != 3+two.Changes[2].Chunks {
		t.Fatalf("requests %d", two.Requests)
	}
	v := sum.Verification
	if !v.Matches || v.Files != 5 || v.CommitSHA != two.CommitSHA || len(v.Differences) != 0 {
		t.Fatalf("verification: %+v", v)
	}
	if sum.MirrorDir != filepath.Join(dir, "mirror") || sum.Home != filepath.Join(dir, "home") {
		t.Fatalf("layout: %+v", sum)
	}
	if _, err := os.Stat(filepath.Join(sum.Home, "docora.db")); err != nil {
		t.Fatalf("store: %v", err)
	}
}

func TestVerifyFindsDifferences(t *testing.T) {
	dir := t.TempDir()
	src, err := newSampleRepo(filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.commit(commitSpec{message: "m", write: map[string][]byte{"a.txt": []byte("a\n"), "d/b.txt": []byte("b\n"), "c.txt": nil}})
	if err != nil {
		t.Fatal(err)
	}
	mirror := filepath.Join(dir, "mirror")
	write := func(p, s string) {
		full := filepath.Join(mirror, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", "a\n")
	write("d/b.txt", "b\n")
	write("c.txt", "")
	v, err := verify(src, c.sha, mirror)
	if err != nil || !v.Matches || v.Files != 3 || v.Bytes != 4 {
		t.Fatalf("identical: %+v %v", v, err)
	}
	write("a.txt", "A\n")
	write("extra.txt", "x")
	os.Remove(filepath.Join(mirror, "c.txt"))
	os.Symlink("a.txt", filepath.Join(mirror, "link"))
	v, err = verify(src, c.sha, mirror)
	want := []string{"different content: a.txt", "missing: c.txt", "not a regular file: link", "not in the commit: extra.txt"}
	if err != nil || v.Matches || !slices.Equal(v.Differences, want) {
		t.Fatalf("differences %q, want %q (%v)", v.Differences, want, err)
	}
}
