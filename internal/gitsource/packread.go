package gitsource

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/klauspost/compress/flate"
)

// The fast blob path reads plain (non-delta) blobs straight from the pack files of a cache
// directory: a lookup in the pack indexes, one pread of the object's packed bytes, one
// inflate into a buffer of the exact size. go-git's storage feeds the inflater through a
// byte-at-a-time scanner and hashes every object with collision-detecting SHA-1, which more
// than doubles the cost of a small blob. Neither is needed here: callers check content
// against a SHA-256 they know, and the CRC-32 that the index keeps of every packed object
// catches damaged pack data (the zlib Adler-32 is not checked). Deltas, loose objects and
// anything unexpected take go-git's path.

const (
	// streamBuffer is the read-ahead of a streamed blob: few preads, however slow the reader.
	streamBuffer = 256 << 10
	// firstRead is the first pread of an object: its header, and the whole of most blobs.
	firstRead = 64 << 10
	// maxSmallExtent bounds the packed bytes of a blob of at most largeObject bytes:
	// incompressible data grows by 5 bytes per stored block (16 KiB or more with zlib),
	// plus the header and zlib's 6 bytes.
	maxSmallExtent = largeObject + largeObject/256 + 64

	objBlob = 3 // pack object type of a blob
)

// errNotPacked says the fast path does not apply: the object is elsewhere or not a plain blob.
var errNotPacked = errors.New("not a packed blob")

// packSet is the index of the pack files of one generation of a cache directory (see
// keyState.reset). It holds their file descriptors, shared by every reader: reads use
// ReadAt, which has no file offset to share. refs counts the keyState's reference and one per
// read in flight or stream open; the last release closes the files, so a stream outlives a
// fetch that replaces the directory.
type packSet struct {
	packs []*packFile
	refs  atomic.Int32
}

// packFile is a pack and its parsed .idx (version 2).
type packFile struct {
	f      *os.File
	size   int64
	fanout []byte   // 256 big-endian uint32: objects whose hash starts with a byte ≤ i
	names  []byte   // 20 bytes per object, sorted
	crcs   []byte   // big-endian CRC-32 of each object's packed bytes
	off32  []byte   // big-endian offsets; the high bit set indexes off64
	off64  []byte   // big-endian 64-bit offsets
	starts []uint64 // every object's offset, ascending: the next one ends an object
}

// loadPacks indexes the pack files of the repository at dir. A pack whose index cannot be
// read or does not match it is left out: its objects take go-git's path.
func loadPacks(dir string) *packSet {
	ps := &packSet{}
	ps.refs.Store(1)
	idxs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.idx"))
	for _, idx := range idxs {
		if p, err := openPackFile(idx); err == nil {
			ps.packs = append(ps.packs, p)
		}
	}
	return ps
}

func openPackFile(idxPath string) (*packFile, error) {
	idx, err := os.ReadFile(idxPath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(strings.TrimSuffix(idxPath, ".idx") + ".pack")
	if err != nil {
		return nil, err
	}
	p, err := openPack(f, idx)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", idxPath, err)
	}
	return p, nil
}

// openPack parses idx, the .idx file of the pack f, and checks that they belong together.
func openPack(f *os.File, idx []byte) (*packFile, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	p, err := parseIdx(idx, fi.Size())
	if err != nil {
		return nil, err
	}
	// The pack's header counts its objects, its trailer is the checksum the index names.
	var hdr [12]byte
	var trailer [20]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, err
	}
	if _, err := f.ReadAt(trailer[:], p.size-20); err != nil {
		return nil, err
	}
	if string(hdr[:4]) != "PACK" || binary.BigEndian.Uint32(hdr[4:]) != 2 ||
		binary.BigEndian.Uint32(hdr[8:]) != uint32(len(p.starts)) {
		return nil, errors.New("pack header does not match its index")
	}
	if !bytes.Equal(trailer[:], idx[len(idx)-40:len(idx)-20]) {
		return nil, errors.New("pack checksum does not match its index")
	}
	p.f = f
	return p, nil
}

// parseIdx parses a version 2 pack index of a pack of packSize bytes. The index is checked
// against its own SHA-1 (plain SHA-1, fast, once per load): a lookup trusts its offsets.
func parseIdx(idx []byte, packSize int64) (*packFile, error) {
	const head = 8 + 256*4
	if len(idx) < head+40 || string(idx[:8]) != "\xfftOc\x00\x00\x00\x02" {
		return nil, errors.New("not a version 2 pack index")
	}
	if sum := sha1.Sum(idx[:len(idx)-20]); !bytes.Equal(sum[:], idx[len(idx)-20:]) {
		return nil, errors.New("pack index checksum mismatch")
	}
	if packSize < 12+20 {
		return nil, errors.New("pack too short")
	}
	fanout := idx[8:head]
	prev := uint32(0)
	for i := range 256 {
		v := binary.BigEndian.Uint32(fanout[4*i:])
		if v < prev {
			return nil, errors.New("pack index fanout not sorted")
		}
		prev = v
	}
	n := int64(prev)
	rest := int64(len(idx)) - head - 40 - n*(20+4+4)
	if rest < 0 || rest%8 != 0 {
		return nil, errors.New("pack index size does not match its object count")
	}
	p := &packFile{
		size:   packSize,
		fanout: fanout,
		names:  idx[head : head+20*n],
		crcs:   idx[head+20*n : head+24*n],
		off32:  idx[head+24*n : head+28*n],
		off64:  idx[head+28*n : head+28*n+rest],
		starts: make([]uint64, n),
	}
	// find trusts the order of the names and the fanout: check them.
	for i := range int(n) {
		name := p.names[20*i : 20*i+20]
		if i > 0 && bytes.Compare(p.names[20*i-20:20*i], name) >= 0 {
			return nil, errors.New("pack index names not sorted")
		}
		if b := int(name[0]); int(binary.BigEndian.Uint32(fanout[4*b:])) <= i ||
			(b > 0 && int(binary.BigEndian.Uint32(fanout[4*b-4:])) > i) {
			return nil, errors.New("pack index fanout does not match its names")
		}
	}
	for i := range int(n) {
		off, ok := p.offset(i)
		// Objects lie between the pack's 12-byte header and its 20-byte trailer.
		if !ok || off < 12 || off >= uint64(packSize-20) {
			return nil, fmt.Errorf("pack index: bad offset of object %d", i)
		}
		p.starts[i] = off
	}
	slices.Sort(p.starts)
	for i := 1; i < len(p.starts); i++ {
		if p.starts[i] == p.starts[i-1] {
			return nil, errors.New("pack index: two objects at one offset")
		}
	}
	return p, nil
}

func (p *packFile) offset(i int) (uint64, bool) {
	o := binary.BigEndian.Uint32(p.off32[4*i:])
	if o&0x80000000 == 0 {
		return uint64(o), true
	}
	j := int(o & 0x7fffffff)
	if 8*j+8 > len(p.off64) {
		return 0, false
	}
	return binary.BigEndian.Uint64(p.off64[8*j:]), true
}

// find returns the position of h in the index.
func (p *packFile) find(h plumbing.Hash) (int, bool) {
	lo := 0
	if h[0] > 0 {
		lo = int(binary.BigEndian.Uint32(p.fanout[4*(int(h[0])-1):]))
	}
	hi := int(binary.BigEndian.Uint32(p.fanout[4*int(h[0]):]))
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch bytes.Compare(p.names[20*m:20*m+20], h[:]) {
		case 0:
			return m, true
		case -1:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}

// packedObject is where an object is: its offset in the pack, the end of its packed bytes
// (the next object or the trailer), and their CRC-32 from the index.
type packedObject struct {
	p        *packFile
	off, end int64
	crc      uint32
}

func (ps *packSet) locate(h plumbing.Hash) (packedObject, bool) {
	for _, p := range ps.packs {
		i, ok := p.find(h)
		if !ok {
			continue
		}
		off, _ := p.offset(i) // checked by parseIdx
		end := uint64(p.size - 20)
		if k, found := slices.BinarySearch(p.starts, off); found && k+1 < len(p.starts) {
			end = p.starts[k+1]
		}
		return packedObject{p: p, off: int64(off), end: int64(end), crc: binary.BigEndian.Uint32(p.crcs[4*i:])}, true
	}
	return packedObject{}, false
}

func (ps *packSet) acquire() { ps.refs.Add(1) }

func (ps *packSet) release() {
	if ps.refs.Add(-1) == 0 {
		for _, p := range ps.packs {
			_ = p.f.Close()
		}
	}
}

// packs returns the pack index of key's directory, loading it once per generation, with a
// reference for the caller to release. nil when key is invalid or ctx is done.
func (c *Cache) packs(ctx context.Context, key string) *packSet {
	dir, err := c.dir(key)
	if err != nil {
		return nil
	}
	ks, unlock, err := c.lock(ctx, key)
	if err != nil {
		return nil
	}
	defer unlock()
	if ks.packs == nil {
		ks.packs = loadPacks(dir)
	}
	ks.packs.acquire() // under the lock: reset cannot drop the last reference meanwhile
	return ks.packs
}

// readPacked reads the blob h from a pack file of key's cache without go-git: a blob of at
// most largeObject bytes as content, a larger one as a stream. ok is false when this path does
// not apply or fails (a delta, a loose object, damaged data): the caller then takes go-git's.
func (c *Cache) readPacked(ctx context.Context, key string, h plumbing.Hash) (content []byte, rc io.ReadCloser, size int64, ok bool) {
	if ctx.Err() != nil {
		return nil, nil, 0, false
	}
	ps := c.packs(ctx, key)
	if ps == nil {
		return nil, nil, 0, false
	}
	content, stream, size, err := ps.readBlob(h)
	if err != nil {
		ps.release()
		return nil, nil, 0, false
	}
	if stream != nil {
		return nil, &ctxReader{ctx: ctx, rc: stream}, size, true // the stream releases ps
	}
	ps.release()
	return content, nil, size, true
}

// readBlob reads h: its content when it is small, otherwise a stream that holds a reference
// to ps until closed.
func (ps *packSet) readBlob(h plumbing.Hash) ([]byte, *packStream, int64, error) {
	o, ok := ps.locate(h)
	if !ok {
		return nil, nil, 0, errNotPacked
	}
	extent := o.end - o.off
	n := min(extent, firstRead)
	bp := getExtent(int(n))
	defer func() { extentPool.Put(bp) }()
	if _, err := o.p.f.ReadAt(*bp, o.off); err != nil {
		return nil, nil, 0, err
	}
	typ, size, hlen, err := parseObjectHeader(*bp)
	if err != nil {
		return nil, nil, 0, err
	}
	if typ != objBlob {
		return nil, nil, 0, errNotPacked
	}
	if size > largeObject {
		s, err := ps.stream(o, hlen, size)
		return nil, s, size, err
	}
	if extent > maxSmallExtent {
		return nil, nil, 0, errors.New("packed blob larger than its size allows")
	}
	if n < extent {
		*bp = growExtent(*bp, int(extent))
		if _, err := o.p.f.ReadAt((*bp)[n:], o.off+n); err != nil {
			return nil, nil, 0, err
		}
	}
	buf := *bp
	if crc32.ChecksumIEEE(buf) != o.crc {
		return nil, nil, 0, errors.New("packed blob fails its CRC-32")
	}
	content, err := inflateExact(buf[hlen:], size)
	return content, nil, size, err
}

// parseObjectHeader parses a pack object header: type, inflated size, header length.
func parseObjectHeader(b []byte) (typ byte, size int64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	c := b[0]
	typ, size, n = (c>>4)&7, int64(c&15), 1
	for shift := 4; c&0x80 != 0; shift += 7 {
		if n == len(b) || shift > 56 {
			return 0, 0, 0, errors.New("bad pack object header")
		}
		c = b[n]
		n++
		size |= int64(c&0x7f) << shift
	}
	if size < 0 {
		return 0, 0, 0, errors.New("bad pack object header")
	}
	return typ, size, n, nil
}

// checkZlibHeader checks the 2-byte header of a zlib stream: deflate, no preset dictionary.
// What follows is raw deflate data, then the Adler-32 of the content, which is not checked:
// the CRC-32 of the packed bytes covers them.
func checkZlibHeader(b []byte) error {
	if len(b) < 2 || b[0]&0x0f != 8 || b[0]>>4 > 7 || b[1]&0x20 != 0 || (uint16(b[0])<<8|uint16(b[1]))%31 != 0 {
		return errors.New("bad zlib header")
	}
	return nil
}

// inflateExact inflates the zlib stream z, which must hold exactly size bytes and nothing
// after its Adler-32.
func inflateExact(z []byte, size int64) ([]byte, error) {
	if err := checkZlibHeader(z); err != nil {
		return nil, err
	}
	r := bytes.NewReader(z[2:])
	fr := getFlate(r)
	defer flatePool.Put(fr)
	out := make([]byte, size)
	if _, err := io.ReadFull(fr, out); err != nil {
		return nil, fmt.Errorf("inflate: %w", noEOF(err))
	}
	if err := expectEOF(fr); err != nil {
		return nil, err
	}
	// The deflate reader reads byte by byte (bytes.Reader is an io.ByteReader): only the
	// Adler-32 is left.
	if r.Len() != 4 {
		return nil, errors.New("inflate: data after the compressed blob")
	}
	return out, nil
}

// expectEOF checks that r, which gave all the bytes a blob's header announced, ends there.
func expectEOF(r io.Reader) error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return errors.New("blob longer than its header says")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// noEOF turns a premature end of the deflate stream into an error that says so.
func noEOF(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("blob shorter than its header says")
	}
	return err
}

// stream opens a reader of the blob at o, of size bytes after a header of hlen bytes. The
// stream takes over the caller's reference to ps.
func (ps *packSet) stream(o packedObject, hlen int, size int64) (*packStream, error) {
	s := &packStream{ps: ps, crc: crcReader{r: io.NewSectionReader(o.p.f, o.off, o.end-o.off)}, want: o.crc, left: size}
	s.br = getStreamBuffer(&s.crc)
	if _, err := s.br.Discard(hlen); err != nil {
		s.free()
		return nil, err
	}
	z, err := s.br.Peek(2)
	if err == nil {
		err = checkZlibHeader(z)
	}
	if err != nil {
		s.free()
		return nil, err
	}
	_, _ = s.br.Discard(2)
	s.fr = getFlate(s.br)
	return s, nil
}

// packStream inflates a large blob from its pack file, through a buffer, never holding it
// whole. At the end it checks the length and the CRC-32 of the packed bytes: damaged data
// fails the last Read instead of reaching EOF.
type packStream struct {
	ps     *packSet
	crc    crcReader
	br     *bufio.Reader
	fr     io.ReadCloser
	want   uint32
	left   int64
	err    error
	closed bool
}

func (s *packStream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.left == 0 {
		s.err = s.finish()
		return 0, s.err
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.fr.Read(p)
	s.left -= int64(n)
	if err == io.EOF && s.left > 0 {
		err = noEOF(err)
	} else if err == io.EOF {
		err = nil
	}
	if err != nil {
		s.err = fmt.Errorf("inflate: %w", err)
		return n, s.err
	}
	return n, nil
}

// finish checks the end of the stream: no more content, the Adler-32 and nothing else left
// of the packed bytes, and their CRC-32.
func (s *packStream) finish() error {
	if err := expectEOF(s.fr); err != nil {
		return err
	}
	if rest, err := io.Copy(io.Discard, s.br); err != nil || rest != 4 {
		return errors.New("inflate: data after the compressed blob")
	}
	if s.crc.sum != s.want {
		return errors.New("packed blob fails its CRC-32")
	}
	return io.EOF
}

func (s *packStream) Close() error {
	if !s.closed {
		s.closed = true
		s.free()
		s.ps.release()
		if s.err == nil {
			s.err = os.ErrClosed
		}
	}
	return nil
}

func (s *packStream) free() {
	if s.fr != nil {
		flatePool.Put(s.fr)
		s.fr = nil
	}
	s.br.Reset(nil)
	streamBufferPool.Put(s.br)
	s.br = nil
}

// crcReader computes the CRC-32 of what it reads.
type crcReader struct {
	r   io.Reader
	sum uint32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.sum = crc32.Update(c.sum, crc32.IEEETable, p[:n])
	return n, err
}

// Pools of the buffers and inflaters of the fast path: a cache delivering a repository
// reads thousands of blobs, each would otherwise allocate them.
var (
	flatePool        sync.Pool // io.ReadCloser from flate.NewReader
	extentPool       sync.Pool // *[]byte: packed bytes of one object
	streamBufferPool sync.Pool // *bufio.Reader of streamBuffer bytes
)

func getFlate(r io.Reader) io.ReadCloser {
	if fr, ok := flatePool.Get().(io.ReadCloser); ok {
		_ = fr.(flate.Resetter).Reset(r, nil)
		return fr
	}
	return flate.NewReader(r)
}

func getExtent(n int) *[]byte {
	bp, _ := extentPool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = growExtent(*bp, n)
	return bp
}

// growExtent returns b resized to n bytes, keeping its content.
func growExtent(b []byte, n int) []byte {
	if cap(b) < n {
		nb := make([]byte, n)
		copy(nb, b)
		return nb
	}
	return b[:n]
}

func getStreamBuffer(r io.Reader) *bufio.Reader {
	if br, ok := streamBufferPool.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, streamBuffer)
}

// ReadBlobBytes returns the content of the blob with the given id in the cache of key. It is
// for small blobs (at most 1 MiB), which it reads without go-git when they are stored whole in
// a pack file; it holds any blob in memory.
func (c *Cache) ReadBlobBytes(ctx context.Context, key, blob string) ([]byte, error) {
	h, err := parseHash(blob)
	if err != nil {
		return nil, err
	}
	content, rc, size, ok := c.readPacked(ctx, key, h)
	if ok && rc == nil {
		return content, nil
	}
	if !ok {
		if rc, size, err = c.readBlobGit(ctx, key, blob, h); err != nil {
			return nil, err
		}
	}
	defer rc.Close()
	b := make([]byte, size)
	_, err = io.ReadFull(rc, b)
	if err == nil {
		err = expectEOF(rc)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s in cache %s: %w", blob, key, noEOF(err))
	}
	return b, nil
}
