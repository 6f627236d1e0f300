package gitsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

const (
	// largeObject is the size above which blobs are streamed from the pack file rather than
	// decoded into memory.
	largeObject = 1 << 20
	// objectCacheSize bounds each open repository's cache of decoded objects (trees mostly).
	objectCacheSize = 4 * cache.MiByte
	// defaultMaxPacks and defaultMaxLoose: a fetch into an empty cache adds a pack file, an
	// incremental fetch loose objects. Past this many of either, the cache is rebuilt by one
	// fresh shallow fetch, which also drops the history a depth-1 cache has no use for.
	// (6,700 loose objects is git's own gc.auto threshold.)
	defaultMaxPacks = 50
	defaultMaxLoose = 6700
)

// Cache is a directory holding one bare, shallow (depth 1) object cache per repository key,
// at <root>/<key>.git. Operations on one key are serialised within the process, and fetches
// also across processes sharing the root (a lock file per key). A Cache is safe for concurrent
// use.
type Cache struct {
	root     string
	maxPacks int
	maxLoose int
	maxIncr  limits       // an incremental fetch larger than this rebuilds the cache (objectWise)
	rebuilds atomic.Int64 // fresh refetches, for tests and diagnostics

	mu   sync.Mutex
	keys map[string]*keyState
}

type keyState struct {
	sem     chan struct{} // holds one token while an operation uses this key
	st      *filesystem.Storage
	damaged bool // a read failed: the next fetch rebuilds the cache
	// readers are idle storages of the directory for ReadBlob, which decodes blobs without
	// holding sem (a go-git storage serves one goroutine at a time); gen counts the times the
	// directory changed, so that a storage opened before is not reused.
	readers []*filesystem.Storage
	gen     int
	// packs indexes the directory's pack files for ReadBlob's fast path (packread.go); nil
	// until first needed in this generation.
	packs *packSet
}

const (
	// maxIdleReaders bounds the idle ReadBlob storages kept per key.
	maxIdleReaders = 8
	// readerCacheSize is the object cache of a ReadBlob storage: enough for a delta base.
	readerCacheSize = 256 * cache.KiByte
)

// reset drops the open storages of the key: the directory changed or a read failed.
func (ks *keyState) reset() {
	for _, st := range ks.readers {
		_ = st.Close() // idle: nobody reads through it
	}
	ks.st, ks.readers = nil, nil
	if ks.packs != nil {
		ks.packs.release() // open streams keep its files until closed
		ks.packs = nil
	}
	ks.gen++
}

// Open returns the cache rooted at root; directories are created when first needed.
func Open(root string) *Cache {
	return &Cache{root: root, maxPacks: defaultMaxPacks, maxLoose: defaultMaxLoose,
		maxIncr: limits{defaultMaxIncrementalObjects, defaultMaxIncrementalBytes}, keys: map[string]*keyState{}}
}

type limits struct {
	objects int
	bytes   int64
}

// Kind is the kind of a tree entry.
type Kind int

// Kinds of tree entries.
const (
	KindFile       Kind = iota + 1 // regular file (mode 100644)
	KindExecutable                 // executable file (mode 100755)
	KindSymlink                    // symbolic link (mode 120000); the blob holds the target
	KindSubmodule                  // gitlink (mode 160000); Blob is the submodule's commit
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindExecutable:
		return "executable"
	case KindSymlink:
		return "symlink"
	case KindSubmodule:
		return "submodule"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Entry is a non-directory entry of a commit's tree.
type Entry struct {
	Path string // slash-separated; the raw bytes git stores, which may not be valid UTF-8
	Blob string // hex object id (a commit id for submodules)
	Kind Kind
}

var keyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

func (c *Cache) dir(key string) (string, error) {
	if !keyRE.MatchString(key) {
		return "", fmt.Errorf("invalid cache key %q: letters, digits, '_' and '-' only", key)
	}
	return filepath.Join(c.root, key+".git"), nil
}

// lock takes the in-process lock of key.
func (c *Cache) lock(ctx context.Context, key string) (*keyState, func(), error) {
	c.mu.Lock()
	ks := c.keys[key]
	if ks == nil {
		ks = &keyState{sem: make(chan struct{}, 1)}
		c.keys[key] = ks
	}
	c.mu.Unlock()
	select {
	case ks.sem <- struct{}{}:
		return ks, func() { <-ks.sem }, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// lockExclusive takes the in-process lock of key and the lock file that keeps other processes
// from rewriting the same cache directory at the same time.
func (c *Cache) lockExclusive(ctx context.Context, key string) (*keyState, func(), error) {
	ks, unlock, err := c.lock(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(c.root, 0o700); err != nil {
		unlock()
		return nil, nil, err
	}
	unlockFile, err := lockFile(ctx, filepath.Join(c.root, key+".lock"))
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return ks, func() { unlockFile(); unlock() }, nil
}

// lockFile takes an exclusive advisory lock on path, waiting until ctx is done.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := osfs.Default.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	locked := make(chan error, 1)
	go func() { locked <- f.Lock() }()
	select {
	case err := <-locked:
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return func() { _ = f.Unlock(); _ = f.Close() }, nil
	case <-ctx.Done():
		go func() {
			if <-locked == nil {
				_ = f.Unlock()
			}
			_ = f.Close()
		}()
		return nil, ctx.Err()
	}
}

func openStorage(dir string) *filesystem.Storage {
	return openStorageWithCache(dir, objectCacheSize)
}

func openStorageWithCache(dir string, cacheSize cache.FileSize) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(cacheSize),
		filesystem.Options{LargeObjectThreshold: largeObject})
}

// storage returns the open storage of key, opening it when needed. The caller holds the lock.
func (ks *keyState) storage(dir string) (*filesystem.Storage, error) {
	if ks.st != nil {
		return ks.st, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		return nil, fmt.Errorf("no cache at %s (fetch first): %w", dir, err)
	}
	ks.st = openStorage(dir)
	return ks.st, nil
}

// Fetch brings branch of the remote at url into the cache of key and returns the commit at its
// tip, which is now readable with Tree and ReadBlob. The cache is bare and shallow (depth 1); the
// token is used for this call only and never written to disk. When the cache is damaged or the
// fetch leaves objects missing (go-git#1443: after a force-push to an older commit), the branch
// is fetched again into a fresh directory that replaces the old one. An empty remote fails with
// ErrEmptyRepository, a missing branch with ErrBranchNotFound.
func (c *Cache) Fetch(ctx context.Context, key, url, branch string, cred Credentials) (string, error) {
	commit, err := c.fetch(ctx, key, url, branch, cred)
	return commit, remoteErr(ctx, "fetch", url, cred, err)
}

func (c *Cache) fetch(ctx context.Context, key, url, branch string, cred Credentials) (string, error) {
	dir, err := c.dir(key)
	if err != nil {
		return "", err
	}
	spec, err := refSpec(branch)
	if err != nil {
		return "", err
	}
	if err := checkURL(ctx, url); err != nil {
		return "", err
	}
	installTransports()

	ks, unlock, err := c.lockExclusive(ctx, key)
	if err != nil {
		return "", err
	}
	defer unlock()
	ks.reset() // the fetch adds objects, or replaces the directory

	if ks.damaged {
		commit, st, err := c.rebuild(ctx, dir, url, branch, spec, cred)
		if err != nil {
			return "", err
		}
		ks.st, ks.damaged = st, false
		return commit, nil
	}
	commit, st, err := fetchInto(ctx, dir, url, branch, spec, cred, c.maxIncr)
	if err == nil {
		ks.st = st
		if packs, _ := st.ObjectPacks(); len(packs) <= c.maxPacks && looseObjects(dir) <= c.maxLoose {
			return commit, nil
		}
		// Compact; a failure keeps the cache that works.
		if commit2, st2, err := c.rebuild(ctx, dir, url, branch, spec, cred); err == nil {
			ks.st = st2
			return commit2, nil
		}
		return commit, nil
	}
	// A classified error is about the remote (auth, network, branch...): a fresh fetch would
	// fail the same way. Anything else (errLargeIncremental included) is about this cache.
	if kind, _ := classify(ctx, err); (kind != nil && !errors.Is(err, errLargeIncremental)) || ctx.Err() != nil {
		return "", err
	}
	commit, st, err = c.rebuild(ctx, dir, url, branch, spec, cred)
	if err != nil {
		return "", err
	}
	ks.st = st
	return commit, nil
}

// rebuild fetches into a fresh directory and swaps it in place of dir.
func (c *Cache) rebuild(ctx context.Context, dir, url, branch string, spec config.RefSpec, cred Credentials) (string, *filesystem.Storage, error) {
	c.rebuilds.Add(1)
	tmp, err := os.MkdirTemp(c.root, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return "", nil, err
	}
	commit, _, err := fetchInto(ctx, tmp, url, branch, spec, cred, c.maxIncr)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", nil, err
	}
	old := filepath.Join(c.root, strings.Replace(filepath.Base(tmp), ".new-", ".old-", 1))
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("replace cache: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", nil, fmt.Errorf("replace cache: %w", err)
	}
	// Open readers keep their file descriptors; removing the old directory does not hurt them.
	_ = os.RemoveAll(old)
	return commit, openStorage(dir), nil
}

// damagedError reports objects that the cache should hold and cannot read.
type damagedError struct{ err error }

func (e *damagedError) Error() string { return e.err.Error() }
func (e *damagedError) Unwrap() error { return e.err }

func refSpec(branch string) (config.RefSpec, error) {
	if branch == "" || strings.ContainsAny(branch, ":*?[\\^~ \t\n") || strings.HasPrefix(branch, "-") {
		return "", fmt.Errorf("%w: invalid branch name %q", ErrBranchNotFound, branch)
	}
	spec := config.RefSpec("+refs/heads/" + branch + ":" + remoteRef(branch).String())
	if err := spec.Validate(); err != nil {
		return "", fmt.Errorf("%w: invalid branch name %q: %v", ErrBranchNotFound, branch, err)
	}
	return spec, nil
}

func remoteRef(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", branch)
}

// fetchInto fetches branch into the bare repository at dir (created when missing) with a
// constant depth of 1 — a depth-0 fetch into a shallow repository would pull the whole history —
// and checks that every object of the fetched tree is there. A fetch into a cache that has the
// branch already is incremental: thin pack, loose objects, at most lim (objectWise).
func fetchInto(ctx context.Context, dir, url, branch string, spec config.RefSpec, cred Credentials, lim limits) (string, *filesystem.Storage, error) {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); errors.Is(err, fs.ErrNotExist) {
		_, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
			Bare:        true,
			InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
		})
		if err != nil {
			return "", nil, fmt.Errorf("create cache: %w", err)
		}
	}
	st := openStorage(dir)
	verified := readVerified(dir)
	var into storage.Storer = st
	if _, err := st.Reference(remoteRef(branch)); err == nil {
		into = &objectWise{Storer: st, maxObjects: lim.objects, maxBytes: lim.bytes}
	}
	// The remote lives only in memory: nothing about it (least of all credentials) is written
	// to the repository's config.
	rem := git.NewRemote(into, &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	err := rem.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{spec},
		Depth:      1,
		Tags:       git.NoTags,
		Auth:       cred.auth(),
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", nil, err
	}
	ref, err := st.Reference(remoteRef(branch))
	if err != nil {
		return "", nil, fmt.Errorf("read fetched ref: %w", err)
	}
	if err := checkComplete(ctx, st, ref.Hash(), verified); err != nil {
		return "", nil, &damagedError{fmt.Errorf("cache incomplete after fetch of %s: %w", ref.Hash(), err)}
	}
	// Best effort: without the mark, the next fetch checks the whole tree.
	_ = os.WriteFile(filepath.Join(dir, verifiedFile), []byte(ref.Hash().String()+"\n"), 0o600)
	return ref.Hash().String(), st, nil
}

// verifiedFile, in a cache directory, names the last fetched commit whose every object the
// cache was checked to hold.
const verifiedFile = "docora-verified"

func readVerified(dir string) plumbing.Hash {
	b, err := os.ReadFile(filepath.Join(dir, verifiedFile))
	if s := strings.TrimSpace(string(b)); err == nil && plumbing.IsHash(s) {
		return plumbing.NewHash(s)
	}
	return plumbing.ZeroHash
}

// checkComplete checks that the cache holds every object of commit's tree (a fetch can move
// the ref without bringing the objects: go-git#1443). Subtrees and files identical to those
// at the same path in verified — a commit checked by an earlier fetch, ZeroHash when there is
// none — are not checked again: after a commit that changes one file, only the trees on its
// path are read, not every entry of a large tree.
func checkComplete(ctx context.Context, st *filesystem.Storage, commit, verified plumbing.Hash) error {
	c, err := object.GetCommit(st, commit)
	if err != nil {
		return fmt.Errorf("commit %s: %w", commit, err)
	}
	root, err := object.GetTree(st, c.TreeHash)
	if err != nil {
		return fmt.Errorf("tree of commit %s: %w", commit, err)
	}
	var known *object.Tree
	if !verified.IsZero() {
		if vc, err := object.GetCommit(st, verified); err == nil {
			known, _ = object.GetTree(st, vc.TreeHash)
		}
	}
	var check func(t, known *object.Tree, prefix string) error
	check = func(t, known *object.Tree, prefix string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		same := map[string]plumbing.Hash{}
		if known != nil {
			for _, e := range known.Entries {
				same[e.Name] = e.Hash
			}
		}
		for _, e := range t.Entries {
			if h, ok := same[e.Name]; ok && h == e.Hash {
				continue
			}
			p := prefix + e.Name
			switch e.Mode {
			case filemode.Submodule:
			case filemode.Dir:
				sub, err := object.GetTree(st, e.Hash)
				if err != nil {
					return fmt.Errorf("tree %s (%s): %w", e.Hash, p, err)
				}
				var knownSub *object.Tree
				if h, ok := same[e.Name]; ok {
					knownSub, _ = object.GetTree(st, h)
				}
				if err := check(sub, knownSub, p+"/"); err != nil {
					return err
				}
			default:
				if err := st.HasEncodedObject(e.Hash); err != nil {
					return fmt.Errorf("%s (%s): %w", e.Hash, p, err)
				}
			}
		}
		return nil
	}
	return check(root, known, "")
}

// objectWise is a cache's storage for an incremental fetch. It hides the storage's
// PackfileWriter, so that go-git parses the fetched pack object by object into loose objects
// (packfile.UpdateObjectStorage) instead of storing it as it comes: the pack may be thin,
// with deltas against objects the cache already holds (see installTransports), and only the
// parser resolves those. An incremental fetch usually brings a few objects; Fetch compacts
// the cache when loose objects add up. Writing loose objects one by one is slow for many
// (about 3 ms each), so past maxObjects or maxBytes — a force-push to
// an unrelated history, a commit that rewrites every file — the fetch stops with
// errLargeIncremental and Fetch rebuilds the cache with one fresh fetch (a pack on disk)
// instead.
type objectWise struct {
	storage.Storer
	maxObjects int
	maxBytes   int64
	objects    int
	bytes      int64
}

const (
	defaultMaxIncrementalObjects = 500
	defaultMaxIncrementalBytes   = 32 << 20
)

var errLargeIncremental = errors.New("incremental fetch too large for loose objects")

func (o *objectWise) SetEncodedObject(obj plumbing.EncodedObject) (plumbing.Hash, error) {
	o.objects++
	o.bytes += obj.Size()
	if o.objects > o.maxObjects || o.bytes > o.maxBytes {
		return plumbing.ZeroHash, errLargeIncremental
	}
	return o.Storer.SetEncodedObject(obj)
}

// looseObjects counts the loose objects of the bare repository at dir.
func looseObjects(dir string) int {
	n := 0
	for i := range 256 {
		entries, err := os.ReadDir(filepath.Join(dir, "objects", fmt.Sprintf("%02x", i)))
		if err == nil {
			n += len(entries)
		}
	}
	return n
}

// walkTree calls fn for every non-directory entry below commit's tree, in git's tree order.
func walkTree(ctx context.Context, st *filesystem.Storage, commit plumbing.Hash, fn func(Entry) error) error {
	c, err := object.GetCommit(st, commit)
	if err != nil {
		return fmt.Errorf("commit %s: %w", commit, err)
	}
	root, err := object.GetTree(st, c.TreeHash)
	if err != nil {
		return fmt.Errorf("tree of commit %s: %w", commit, err)
	}
	var walk func(t *object.Tree, prefix string) error
	walk = func(t *object.Tree, prefix string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, e := range t.Entries {
			p := prefix + e.Name
			var kind Kind
			switch e.Mode {
			case filemode.Dir:
				sub, err := object.GetTree(st, e.Hash)
				if err != nil {
					return fmt.Errorf("tree %s (%s): %w", e.Hash, p, err)
				}
				if err := walk(sub, p+"/"); err != nil {
					return err
				}
				continue
			case filemode.Regular, filemode.Deprecated:
				kind = KindFile
			case filemode.Executable:
				kind = KindExecutable
			case filemode.Symlink:
				kind = KindSymlink
			case filemode.Submodule:
				kind = KindSubmodule
			default:
				return fmt.Errorf("entry %s: unknown mode %s", p, e.Mode)
			}
			if err := fn(Entry{Path: p, Blob: e.Hash.String(), Kind: kind}); err != nil {
				return fmt.Errorf("%s (%s): %w", e.Hash, p, err)
			}
		}
		return nil
	}
	return walk(root, "")
}

// Tree lists every file, symlink and submodule of commit in the cache of key, recursively,
// sorted by path (byte order). Nothing is filtered: the caller decides what to skip.
func (c *Cache) Tree(ctx context.Context, key, commit string) ([]Entry, error) {
	h, err := parseHash(commit)
	if err != nil {
		return nil, err
	}
	var entries []Entry
	err = c.read(ctx, key, func(st *filesystem.Storage) error {
		entries = entries[:0]
		return walkTree(ctx, st, h, func(e Entry) error {
			entries = append(entries, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("tree of %s in cache %s: %w", commit, key, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// ReadBlob opens the blob with the given id in the cache of key and returns its content and
// size. Blobs above 1 MiB are streamed from the pack file (a deltified one needs its base in
// memory, as with git). The reader stays valid while the cache is re-fetched; close it.
// Concurrent calls decode blobs in parallel. Blobs stored whole in a pack file are read
// directly (readPacked), others through go-git, each call with a storage of its own.
func (c *Cache) ReadBlob(ctx context.Context, key, blob string) (io.ReadCloser, int64, error) {
	h, err := parseHash(blob)
	if err != nil {
		return nil, 0, err
	}
	if content, rc, size, ok := c.readPacked(ctx, key, h); ok {
		if rc == nil {
			rc = io.NopCloser(bytes.NewReader(content))
		}
		return rc, size, nil
	}
	return c.readBlobGit(ctx, key, blob, h)
}

// readBlobGit is ReadBlob through go-git's storage.
func (c *Cache) readBlobGit(ctx context.Context, key, blob string, h plumbing.Hash) (io.ReadCloser, int64, error) {
	for attempt := 0; ; attempt++ {
		var rc io.ReadCloser
		var size int64
		st, gen, err := c.reader(ctx, key)
		if err != nil {
			return nil, 0, fmt.Errorf("blob %s in cache %s: %w", blob, key, err)
		}
		rc, size, err = openBlob(ctx, st, h)
		c.release(key, st, gen, err == nil)
		if err == nil {
			return rc, size, nil
		}
		if ctx.Err() != nil || attempt == 1 {
			if ctx.Err() == nil {
				// As in read: objects the cache should have cannot be read.
				c.markDamaged(key)
			}
			return nil, 0, fmt.Errorf("blob %s in cache %s: %w", blob, key, err)
		}
		// Perhaps another process replaced the directory under the open storages: retry
		// once with fresh ones.
		c.resetKey(key)
	}
}

func openBlob(ctx context.Context, st *filesystem.Storage, h plumbing.Hash) (io.ReadCloser, int64, error) {
	obj, err := st.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, 0, err
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, 0, err
	}
	return &ctxReader{ctx: ctx, rc: r}, obj.Size(), nil
}

// reader returns an idle storage of key's directory, or a new one, for one goroutine's use,
// and the generation it belongs to; give it back with release.
func (c *Cache) reader(ctx context.Context, key string) (*filesystem.Storage, int, error) {
	dir, err := c.dir(key)
	if err != nil {
		return nil, 0, err
	}
	ks, unlock, err := c.lock(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	if n := len(ks.readers); n > 0 {
		st := ks.readers[n-1]
		ks.readers = ks.readers[:n-1]
		return st, ks.gen, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		return nil, 0, fmt.Errorf("no cache at %s (fetch first): %w", dir, err)
	}
	// Blobs are read once each (their facts are cached by the caller): a cache of decoded
	// objects would only hold garbage. The storage keeps its pack files open (it is pooled,
	// and closed when dropped): reopening and statting the pack for every blob cost more than
	// inflating a small one. A large blob's reader opens the pack file on its own.
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(readerCacheSize),
		filesystem.Options{LargeObjectThreshold: largeObject, KeepDescriptors: true})
	return st, ks.gen, nil
}

// release gives st back to key's idle storages, unless it failed, the directory changed since
// it was opened, or the key is busy (a fetch): it is then dropped rather than waited for.
func (c *Cache) release(key string, st *filesystem.Storage, gen int, ok bool) {
	c.mu.Lock()
	ks := c.keys[key]
	c.mu.Unlock()
	if !ok || ks == nil {
		_ = st.Close()
		return
	}
	kept := false
	select {
	case ks.sem <- struct{}{}:
		if ks.gen == gen && len(ks.readers) < maxIdleReaders {
			ks.readers = append(ks.readers, st)
			kept = true
		}
		<-ks.sem
	default:
	}
	if !kept {
		_ = st.Close() // its pack files stay open otherwise
	}
}

func (c *Cache) resetKey(key string) {
	if ks, unlock, err := c.lock(context.Background(), key); err == nil {
		ks.reset()
		unlock()
	}
}

func (c *Cache) markDamaged(key string) {
	if ks, unlock, err := c.lock(context.Background(), key); err == nil {
		ks.reset()
		ks.damaged = true
		unlock()
	}
}

// read runs fn with the storage of key under its lock. A failure is retried once with the
// storage reopened, in case another process replaced the directory under the open one; a
// second failure marks the cache damaged, so that the next Fetch rebuilds it.
func (c *Cache) read(ctx context.Context, key string, fn func(*filesystem.Storage) error) error {
	dir, err := c.dir(key)
	if err != nil {
		return err
	}
	ks, unlock, err := c.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		st, err := ks.storage(dir)
		if err != nil {
			return err
		}
		err = fn(st)
		if err == nil || ctx.Err() != nil {
			return err
		}
		ks.reset()
		if attempt == 1 {
			// Objects the cache should have cannot be read: a fetch cannot repair that,
			// a fresh one can.
			ks.damaged = true
			return err
		}
	}
}

func parseHash(s string) (plumbing.Hash, error) {
	if !plumbing.IsHash(s) {
		return plumbing.ZeroHash, fmt.Errorf("invalid object id %q", s)
	}
	return plumbing.NewHash(s), nil
}

type ctxReader struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.rc.Read(p)
}

func (r *ctxReader) Close() error { return r.rc.Close() }

// Remove deletes the cache of key (nothing happens when there is none).
func (c *Cache) Remove(key string) error {
	dir, err := c.dir(key)
	if err != nil {
		return err
	}
	ks, unlock, err := c.lockExclusive(context.Background(), key)
	if err != nil {
		return err
	}
	defer unlock()
	ks.reset()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove cache %s: %w", key, err)
	}
	return nil
}
