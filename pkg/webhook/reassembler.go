package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Defaults of ReassemblerOptions.
const (
	DefaultMaxMemory = 8 << 20
	DefaultExpiry    = time.Hour
)

// Errors returned by Reassembler.Add, besides ErrInvalidPayload, ErrSizeMismatch and
// ErrSHAMismatch. After ErrChunkOutOfOrder and ErrChunkOffset the transfer is kept, so the
// expected chunk can still come; after any other error it is dropped. Either way docora, which
// re-sends a failed file from chunk 0, recovers.
var (
	// ErrChunkOutOfOrder: the chunk's index is not the next one expected, or no transfer is in
	// progress for it (chunk 0 never came, or the transfer expired or was restarted).
	ErrChunkOutOfOrder = errors.New("webhook: chunk out of order")
	// ErrChunkOffset: the chunk's offset is not the number of bytes received so far.
	ErrChunkOffset = errors.New("webhook: chunk offset does not match bytes received")
	// ErrChunkMismatch: the chunk's total, size, sha or content encoding differs from those of
	// the transfer's chunk 0.
	ErrChunkMismatch = errors.New("webhook: chunk disagrees with earlier chunks of its file")
	// ErrFileTooLarge: the file is larger than ReassemblerOptions.MaxFileSize.
	ErrFileTooLarge = errors.New("webhook: file too large")
	// ErrReassemblerClosed: Add was called after Close.
	ErrReassemblerClosed = errors.New("webhook: reassembler closed")
)

// ReassemblerOptions configures a Reassembler. Zero values select the defaults.
type ReassemblerOptions struct {
	// Dir is where files larger than MaxMemory are spilled while they arrive (default
	// os.TempDir()).
	Dir string
	// MaxMemory is the largest file, in bytes, that is put together in memory; a larger file
	// goes to a temporary file in Dir from its first chunk on (default DefaultMaxMemory).
	MaxMemory int64
	// Expiry is how long an incomplete transfer is kept after its last chunk (default
	// DefaultExpiry).
	Expiry time.Duration
	// MaxFileSize, when positive, refuses files larger than this many bytes with
	// ErrFileTooLarge. Zero means no limit.
	MaxFileSize int64
}

// A Reassembler puts chunked files back together, verifying every chunk against the ones
// before it and the whole file against its size and sha. Feed it every File of every create
// and update event, in the order they arrive; it is safe for concurrent use, and transfers of
// different files proceed independently.
//
// A transfer is identified by its chunk id and path. Chunk 0 (re)starts it: docora re-sends a
// file from chunk 0, with the same chunk id, after any failed chunk. Incomplete transfers expire
// after Expiry, checked in the background; Close stops that and removes all temporary files.
type Reassembler struct {
	opts ReassemblerOptions

	mu        sync.Mutex
	transfers map[transferKey]*transfer
	closed    bool

	stop chan struct{}
	done chan struct{}
}

type transferKey struct{ id, path string }

// transfer is one file being put together. Its fields are guarded by mu, except lastSeen,
// which is guarded by the Reassembler's mu.
type transfer struct {
	lastSeen time.Time

	mu         sync.Mutex
	finished   bool // completed, failed or discarded: accepts no more chunks
	started    bool
	total      int
	size       int64
	sha        string
	encoding   string
	next       int   // index of the chunk expected next
	received   int64 // decoded bytes so far
	lastOffset int64
	lastSum    [sha256.Size]byte // of the last accepted chunk, to accept its re-delivery
	hash       hash.Hash
	buf        []byte   // content, when kept in memory
	file       *os.File // content, when spilled
}

// NewReassembler returns a Reassembler with opts. Call Close when done with it.
func NewReassembler(opts ReassemblerOptions) *Reassembler {
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = DefaultMaxMemory
	}
	if opts.Expiry <= 0 {
		opts.Expiry = DefaultExpiry
	}
	r := &Reassembler{
		opts:      opts,
		transfers: make(map[transferKey]*transfer),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go r.janitor()
	return r
}

func (r *Reassembler) janitor() {
	defer close(r.done)
	every := min(max(r.opts.Expiry/4, 10*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.Expire(now)
		}
	}
}

// Add takes the file of one create or update event. It returns nil and no error while a chunked
// file is incomplete, and the Assembled file when f completes it — or at once, when f is not
// chunked. The Assembled content has been checked against f.Size and f.SHA; the caller must
// Close it.
func (r *Reassembler) Add(f File) (*Assembled, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	if r.opts.MaxFileSize > 0 && f.Size > r.opts.MaxFileSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrFileTooLarge, f.Path, f.Size, r.opts.MaxFileSize)
	}
	if f.Chunk == nil {
		if r.isClosed() {
			return nil, ErrReassemblerClosed
		}
		b, err := f.Bytes()
		if err != nil {
			return nil, err
		}
		return &Assembled{Path: f.Path, SHA: f.SHA, Size: f.Size, data: b}, nil
	}
	data, err := f.decodeContent()
	if err != nil {
		return nil, err
	}
	c := f.Chunk
	key := transferKey{c.ID, f.Path}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrReassemblerClosed
	}
	t := r.transfers[key]
	var old *transfer
	if c.Index == 0 {
		old, t = t, new(transfer)
		r.transfers[key] = t
	}
	if t != nil {
		t.lastSeen = time.Now()
	}
	r.mu.Unlock()
	if old != nil {
		old.discard()
	}
	if t == nil {
		return nil, fmt.Errorf("%w: chunk %d of %d of %s (id %s) but no transfer in progress: chunk 0 is missing or the transfer expired",
			ErrChunkOutOfOrder, c.Index, c.Total, f.Path, c.ID)
	}

	t.mu.Lock()
	a, err := t.add(&f, data, r.opts)
	finished := t.finished
	t.mu.Unlock()
	if finished {
		r.mu.Lock()
		if r.transfers[key] == t {
			delete(r.transfers, key)
		}
		r.mu.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("%s chunk %d/%d: %w", f.Path, c.Index, c.Total, err)
	}
	return a, nil
}

// add appends one chunk. It marks the transfer finished when it completes or fails for good.
func (t *transfer) add(f *File, data []byte, opts ReassemblerOptions) (*Assembled, error) {
	c := f.Chunk
	if t.finished {
		return nil, fmt.Errorf("%w: the transfer was restarted or expired", ErrChunkOutOfOrder)
	}
	if !t.started {
		// A new transfer: c.Index is 0.
		t.started = true
		t.total, t.size, t.sha, t.encoding = c.Total, f.Size, f.SHA, f.ContentEncoding
		t.hash = sha256.New()
		if t.size > opts.MaxMemory {
			file, err := os.CreateTemp(opts.Dir, "docora-chunks-*")
			if err != nil {
				t.discardLocked()
				return nil, fmt.Errorf("spill to disk: %w", err)
			}
			t.file = file
		} else {
			t.buf = make([]byte, 0, t.size)
		}
	} else if c.Index == t.next-1 && c.Offset == t.lastOffset && sha256.Sum256(data) == t.lastSum &&
		c.Total == t.total && f.Size == t.size && f.SHA == t.sha {
		return nil, nil // the last chunk again: already have it
	}
	if c.Index != t.next {
		return nil, fmt.Errorf("%w: got index %d, want %d", ErrChunkOutOfOrder, c.Index, t.next)
	}
	if c.Total != t.total || f.Size != t.size || f.SHA != t.sha || f.ContentEncoding != t.encoding {
		t.discardLocked()
		return nil, fmt.Errorf("%w: total, size, sha or encoding changed", ErrChunkMismatch)
	}
	if c.Offset != t.received {
		return nil, fmt.Errorf("%w: got offset %d, received %d bytes", ErrChunkOffset, c.Offset, t.received)
	}
	if t.received+int64(len(data)) > t.size {
		t.discardLocked()
		return nil, fmt.Errorf("%w: chunks exceed size %d", ErrSizeMismatch, t.size)
	}
	t.hash.Write(data)
	if t.file != nil {
		if _, err := t.file.Write(data); err != nil {
			t.discardLocked()
			return nil, fmt.Errorf("spill to disk: %w", err)
		}
	} else {
		t.buf = append(t.buf, data...)
	}
	t.received += int64(len(data))
	t.lastOffset = c.Offset
	t.lastSum = sha256.Sum256(data)
	t.next++
	if t.next < t.total {
		return nil, nil
	}

	if t.received != t.size {
		t.discardLocked()
		return nil, fmt.Errorf("%w: got %d bytes, size says %d", ErrSizeMismatch, t.received, t.size)
	}
	if sum := hex.EncodeToString(t.hash.Sum(nil)); sum != t.sha {
		t.discardLocked()
		return nil, fmt.Errorf("%w: got %s", ErrSHAMismatch, sum)
	}
	a := &Assembled{Path: f.Path, SHA: t.sha, Size: t.size, ChunkID: c.ID, data: t.buf}
	if t.file != nil {
		a.name = t.file.Name()
		if err := t.file.Close(); err != nil {
			t.discardLocked()
			return nil, fmt.Errorf("spill to disk: %w", err)
		}
	}
	t.finished, t.buf, t.file = true, nil, nil // the content now belongs to a
	return a, nil
}

func (t *transfer) discard() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.discardLocked()
}

func (t *transfer) discardLocked() {
	t.finished = true
	t.buf = nil
	if t.file != nil {
		t.file.Close()
		os.Remove(t.file.Name())
		t.file = nil
	}
}

func (r *Reassembler) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Expire drops the incomplete transfers whose last chunk came more than Expiry before now,
// removing their temporary files, and returns how many it dropped. A Reassembler calls it on
// its own; call it to expire at a time of your choosing.
func (r *Reassembler) Expire(now time.Time) int {
	r.mu.Lock()
	var stale []*transfer
	for k, t := range r.transfers {
		if now.Sub(t.lastSeen) > r.opts.Expiry {
			delete(r.transfers, k)
			stale = append(stale, t)
		}
	}
	r.mu.Unlock()
	for _, t := range stale {
		t.discard()
	}
	return len(stale)
}

// Pending returns the number of incomplete transfers.
func (r *Reassembler) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.transfers)
}

// Close drops every incomplete transfer, removing its temporary file, and stops the background
// expiry. Assembled files already returned stay valid until they are closed. Add fails with
// ErrReassemblerClosed afterwards.
func (r *Reassembler) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	all := r.transfers
	r.transfers = nil
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	for _, t := range all {
		t.discard()
	}
	return nil
}

// Assembled is a complete file whose size and SHA-256 have been verified. Its content is in
// memory or, for a file larger than MaxMemory, in a temporary file; Close releases it.
type Assembled struct {
	Path    string // the file's path in the repository
	SHA     string // SHA-256 of the content, lowercase hex
	Size    int64  // length of the content in bytes
	ChunkID string // the chunk id, or "" for a file that came in one request

	data []byte
	name string
}

// Open returns a reader of the content. It may be called more than once.
func (a *Assembled) Open() (io.ReadCloser, error) {
	if a.name != "" {
		return os.Open(a.name)
	}
	return io.NopCloser(bytes.NewReader(a.data)), nil
}

// TempFile returns the path of the temporary file that holds the content, or "" when the
// content is in memory. A caller may rename the file elsewhere (it is in the Reassembler's Dir,
// with mode 0600) instead of copying it; Close then has nothing to remove.
func (a *Assembled) TempFile() string { return a.name }

// Close releases the content, removing the temporary file if there is one.
func (a *Assembled) Close() error {
	a.data = nil
	if a.name == "" {
		return nil
	}
	name := a.name
	a.name = ""
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
