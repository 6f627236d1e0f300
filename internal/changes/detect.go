package changes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unicode/utf8"

	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/store"
)

// Source is the git side of detection (gitsource.Cache).
type Source interface {
	RemoteHead(ctx context.Context, url, branch string, cred gitsource.Credentials) (string, error)
	Fetch(ctx context.Context, key, url, branch string, cred gitsource.Credentials) (string, error)
	Tree(ctx context.Context, key, commit string) ([]gitsource.Entry, error)
	ReadBlob(ctx context.Context, key, blob string) (io.ReadCloser, int64, error)
}

// BlobCache remembers content facts by git blob id (store.Store).
type BlobCache interface {
	Blobs(ctx context.Context, ids []string) (map[string]store.Blob, error)
	PutBlobs(ctx context.Context, blobs map[string]store.Blob) error
}

// Progress receives progress reports; nil is allowed.
type Progress func(stage string, done, total int)

// Plan is what one link must receive for one commit.
type Plan struct {
	Commit    string   `json:"commit_sha"`
	Unchanged bool     `json:"unchanged"` // head equals the completed commit: nothing was fetched
	Files     int      `json:"files"`     // delivered files in the tree
	Invalid   []string `json:"-"`         // skipped paths that are not valid UTF-8
	Changes   []Change `json:"changes"`
	Hashed    int      `json:"-"` // blobs read and hashed in this pass (not found in the cache)
}

// Detector computes plans.
type Detector struct {
	Source   Source
	Blobs    BlobCache
	State    func(ctx context.Context, appID, repoID string) (map[string]store.StateEntry, error)
	Workers  int // blobs hashed at once; 0: GOMAXPROCS
	Progress Progress
}

// Detect asks the remote for the branch head with the link's own credentials; when it equals
// the commit the link completed and the link is synced, it returns an unchanged plan without
// fetching. Otherwise it fetches, lists the tree, applies the ignore rules, hashes blobs it has
// never seen and diffs against the link's delivery state.
func (d *Detector) Detect(ctx context.Context, l store.LinkView) (Plan, error) {
	head, err := d.Source.RemoteHead(ctx, l.Repo.CloneURL, l.Repo.Branch, gitsource.Credentials{Token: l.GitToken})
	return d.DetectAt(ctx, l, head, err)
}

// DetectAt is Detect for a caller that already asked the remote for the branch head: head and
// err are what RemoteHead returned, so the remote is not asked twice.
func (d *Detector) DetectAt(ctx context.Context, l store.LinkView, head string, err error) (Plan, error) {
	cred := gitsource.Credentials{Token: l.GitToken}
	empty := errors.Is(err, gitsource.ErrEmptyRepository)
	if err != nil && !empty {
		return Plan{}, err
	}
	if !empty && head == l.CommitSHA && l.Status == store.StatusSynced {
		return Plan{Commit: head, Unchanged: true, Files: l.FilesDelivered}, nil
	}
	var files []File
	var invalid []string
	var hashed int
	if !empty {
		commit, err := d.Source.Fetch(ctx, l.Repo.ID, l.Repo.CloneURL, l.Repo.Branch, cred)
		if err != nil {
			return Plan{}, err
		}
		head = commit // deliver what was actually fetched
		files, invalid, hashed, err = d.files(ctx, l, commit)
		if err != nil {
			return Plan{}, err
		}
	}
	state, err := d.State(ctx, l.AppID, l.Repo.ID)
	if err != nil {
		return Plan{}, err
	}
	return Plan{Commit: head, Files: len(files), Invalid: invalid, Changes: Diff(files, state), Hashed: hashed}, nil
}

func (d *Detector) files(ctx context.Context, l store.LinkView, commit string) ([]File, []string, int, error) {
	entries, err := d.Source.Tree(ctx, l.Repo.ID, commit)
	if err != nil {
		return nil, nil, 0, err
	}
	var ignore []byte
	if blob := IgnoreBlob(entries); blob != "" {
		if ignore, err = d.readAll(ctx, l.Repo.ID, blob, 1<<20); err != nil {
			return nil, nil, 0, fmt.Errorf("read %s: %w", IgnoreFile, err)
		}
	}
	sel := Select(entries, NewFilter(ignore, l.Include, l.Exclude))
	facts, hashed, err := d.facts(ctx, l.Repo.ID, sel.Files)
	if err != nil {
		return nil, nil, 0, err
	}
	files := make([]File, len(sel.Files))
	for i, e := range sel.Files {
		b := facts[e.Blob]
		files[i] = File{Path: e.Path, Blob: e.Blob, SHA: b.SHA256, Size: b.Size, Binary: b.Binary}
	}
	return files, sel.Invalid, hashed, nil
}

func (d *Detector) readAll(ctx context.Context, key, blob string, limit int64) ([]byte, error) {
	rc, _, err := d.Source.ReadBlob(ctx, key, blob)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// facts returns content facts for every blob of files: from the cache, or by streaming and
// hashing the blobs never seen before (each once, in parallel), then caching them.
func (d *Detector) facts(ctx context.Context, key string, files []gitsource.Entry) (map[string]store.Blob, int, error) {
	ids := make([]string, 0, len(files))
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if !seen[f.Blob] {
			seen[f.Blob] = true
			ids = append(ids, f.Blob)
		}
	}
	known, err := d.Blobs.Blobs(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	var todo []string
	for _, id := range ids {
		if _, ok := known[id]; !ok {
			todo = append(todo, id)
		}
	}
	if len(todo) == 0 {
		return known, 0, nil
	}
	workers := d.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan string)
	var (
		mu       sync.Mutex
		firstErr error
		fresh    = make(map[string]store.Blob, len(todo))
		wg       sync.WaitGroup
	)
	for range min(workers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				b, err := HashBlob(ctx, d.Source, key, id)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("hash blob %s: %w", id, err)
					cancel()
				}
				fresh[id] = b
				done := len(fresh)
				mu.Unlock()
				if d.Progress != nil {
					d.Progress("hashing", done, len(todo))
				}
			}
		}()
	}
feed:
	for _, id := range todo {
		select {
		case jobs <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := d.Blobs.PutBlobs(ctx, fresh); err != nil {
		return nil, 0, err
	}
	for id, b := range fresh {
		known[id] = b
	}
	return known, len(fresh), nil
}

// HashBlob streams one blob and returns its SHA-256, size and text/binary verdict.
func HashBlob(ctx context.Context, src Source, key, blob string) (store.Blob, error) {
	rc, _, err := src.ReadBlob(ctx, key, blob)
	if err != nil {
		return store.Blob{}, err
	}
	defer rc.Close()
	return Facts(rc)
}

// Facts reads r to the end and returns its SHA-256, size and text/binary verdict (SPEC §6:
// text is valid UTF-8 without a NUL byte).
func Facts(r io.Reader) (store.Blob, error) {
	h := sha256.New()
	td := &textDetector{}
	n, err := io.Copy(io.MultiWriter(h, td), r)
	if err != nil {
		return store.Blob{}, err
	}
	return store.Blob{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Binary: !td.text()}, nil
}

// textDetector checks the SPEC's text rule on a stream: valid UTF-8 across write boundaries,
// no NUL byte.
type textDetector struct {
	binary  bool
	pending []byte // an incomplete UTF-8 sequence at the end of the last write
}

func (t *textDetector) Write(p []byte) (int, error) {
	n := len(p)
	if t.binary {
		return n, nil
	}
	data := p
	if len(t.pending) > 0 {
		data = append(t.pending, p...)
		t.pending = nil
	}
	// Hold back a trailing rune that the next write may complete.
	cut := len(data)
	for back := 1; back <= utf8.UTFMax-1 && back <= len(data); back++ {
		c := data[len(data)-back]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(data[len(data)-back:]) {
				cut = len(data) - back
			}
			break
		}
	}
	if bytes.IndexByte(data[:cut], 0) >= 0 || !utf8.Valid(data[:cut]) {
		t.binary = true
		return n, nil
	}
	if cut < len(data) {
		t.pending = append([]byte(nil), data[cut:]...)
	}
	return n, nil
}

func (t *textDetector) text() bool { return !t.binary && len(t.pending) == 0 }
