package changes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/store"
)

func TestDiff(t *testing.T) {
	files := []File{
		{Path: "a.txt", SHA: "a2"}, // updated
		{Path: "b.txt", SHA: "b1"}, // unchanged
		{Path: "c.txt", SHA: "c1"}, // created
		{Path: "d.txt", SHA: "d1"}, // uncertain, confirmed d1: sent again as update
		{Path: "e.txt", SHA: "e2"}, // uncertain, never confirmed: create
		{Path: "dir", SHA: "f1"},   // a file replacing directory dir/
	}
	state := map[string]store.StateEntry{
		"a.txt":     {SHA: "a1"},
		"b.txt":     {SHA: "b1"},
		"d.txt":     {SHA: "d1", InFlightSHA: "d1"},
		"e.txt":     {InFlightSHA: "e1"},
		"dir/x.txt": {SHA: "x1"},                    // deleted
		"g.txt":     {SHA: "g1", InFlightSHA: "g2"}, // uncertain and gone: delete with the confirmed sha
		"h.txt":     {InFlightSHA: "h1"},            // never confirmed and gone: delete with the in-flight sha
	}
	got := Diff(files, state)
	want := []string{
		"delete dir/x.txt x1", "delete g.txt g1", "delete h.txt h1",
		"create c.txt c1", "create dir f1", "create e.txt e2",
		"update a.txt a2 prev=a1", "update d.txt d1 prev=d1",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d changes %+v, want %d", len(got), got, len(want))
	}
	for i, c := range got {
		s := fmt.Sprintf("%s %s %s", c.Type, c.Path, c.SHA)
		if c.PreviousSHA != "" {
			s += " prev=" + c.PreviousSHA
		}
		if s != want[i] {
			t.Errorf("change %d = %q, want %q", i, s, want[i])
		}
	}
	if c := Count(got); c != (Counts{Created: 3, Updated: 2, Deleted: 3}) {
		t.Errorf("Count = %+v", c)
	}
	if len(Diff(nil, nil)) != 0 {
		t.Error("empty tree and state must give no changes")
	}
}

func TestFilter(t *testing.T) {
	ignore := []byte("# comment\nbuild/\n*.log\n!keep.log\n/root-only.txt\r\n")
	tests := []struct {
		name             string
		include, exclude []string
		path             string
		want             bool
	}{
		{"plain file", nil, nil, "docs/a.md", true},
		{"ignore file itself", nil, nil, ".docoraignore", true},
		{"ignored dir", nil, nil, "build/out.js", false},
		{"ignored nested dir", nil, nil, "a/build/out.js", false},
		{"ignored glob", nil, nil, "x/y/debug.log", false},
		{"negated", nil, nil, "keep.log", true},
		{"anchored", nil, nil, "root-only.txt", false},
		{"anchored elsewhere", nil, nil, "sub/root-only.txt", true},
		{"include dir glob", []string{"docs/**"}, nil, "docs/a/b.md", true},
		{"include misses", []string{"docs/**"}, nil, "src/main.go", false},
		{"include dir pattern", []string{"docs/"}, nil, "docs/a.md", true},
		{"include ext", []string{"*.md"}, nil, "src/readme.md", true},
		{"exclude", nil, []string{"*.tmp"}, "a/b.tmp", false},
		{"exclude beats include", []string{"docs/"}, []string{"docs/private/"}, "docs/private/x.md", false},
		{"unicode and spaces", nil, []string{"drafts/"}, "naïve dir/ünïcødé file.md", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFilter(ignore, tt.include, tt.exclude)
			if got := f.Delivered(tt.path); got != tt.want {
				t.Errorf("Delivered(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	entries := []gitsource.Entry{
		{Path: "a.txt", Blob: "1", Kind: gitsource.KindFile},
		{Path: "run.sh", Blob: "2", Kind: gitsource.KindExecutable},
		{Path: "link", Blob: "3", Kind: gitsource.KindSymlink},
		{Path: "sub", Blob: "4", Kind: gitsource.KindSubmodule},
		{Path: "bad\xffname", Blob: "5", Kind: gitsource.KindFile},
		{Path: ".docoraignore", Blob: "6", Kind: gitsource.KindFile},
	}
	s := Select(entries, NewFilter(nil, nil, nil))
	var paths []string
	for _, f := range s.Files {
		paths = append(paths, f.Path)
	}
	if fmt.Sprint(paths) != "[a.txt run.sh .docoraignore]" || len(s.Invalid) != 1 {
		t.Fatalf("Select = %v, invalid %q", paths, s.Invalid)
	}
	if IgnoreBlob(entries) != "6" {
		t.Fatal("IgnoreBlob did not find .docoraignore")
	}
}

func TestFacts(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		binary bool
	}{
		{"empty", nil, false},
		{"ascii", []byte("hello <world> & friends\n"), false},
		{"utf8", []byte("naïve – emoji 🎉 and \u2028 separators"), false},
		{"nul", []byte("abc\x00def"), true},
		{"invalid utf8", []byte{'a', 0xff, 'b'}, true},
		{"truncated rune at end", []byte("abc\xe2\x82"), true},
		{"png header", []byte("\x89PNG\r\n\x1a\n"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := sha256.Sum256(tt.data)
			for _, r := range []func() *bytes.Reader{func() *bytes.Reader { return bytes.NewReader(tt.data) }} {
				// One byte at a time puts every rune across write boundaries.
				for _, rd := range []interface{ Read([]byte) (int, error) }{r(), iotest.OneByteReader(r())} {
					b, err := Facts(rd)
					if err != nil {
						t.Fatal(err)
					}
					if b.SHA256 != hex.EncodeToString(sum[:]) || b.Size != int64(len(tt.data)) || b.Binary != tt.binary {
						t.Errorf("Facts = %+v, want binary=%v size=%d", b, tt.binary, len(tt.data))
					}
				}
			}
		})
	}
}

func FuzzFactsTextRule(f *testing.F) {
	f.Add([]byte("plain"), 3)
	f.Add([]byte("é🎉\u2028"), 1)
	f.Add([]byte{0xf0, 0x9f, 0x8e}, 2)
	f.Fuzz(func(t *testing.T, data []byte, step int) {
		if step <= 0 {
			step = 1
		}
		td := &textDetector{}
		for i := 0; i < len(data); i += step {
			td.Write(data[i:min(i+step, len(data))])
		}
		want := utf8.Valid(data) && bytes.IndexByte(data, 0) < 0
		if td.text() != want {
			t.Fatalf("text() = %v, want %v for %q in steps of %d", td.text(), want, data, step)
		}
	})
}
