package delivery

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ErrContentMismatch is returned (wrapped) when the bytes read for a file do not have the size
// or the sha the caller announced: the blob cache and the object store disagree, and sending
// would deliver a file whose sha the receiver cannot verify.
var ErrContentMismatch = errors.New("file content does not match its size and sha")

// chunkLayout returns how a file of size bytes is split when each chunk carries chunkChars
// base64 characters: the raw bytes per chunk and the number of chunks. chunkChars is a positive
// multiple of 4, so every chunk but the last decodes to exactly rawPerChunk bytes without padding.
func chunkLayout(size int64, chunkChars int) (rawPerChunk int64, total int) {
	rawPerChunk = int64(chunkChars / 4 * 3)
	if size <= 0 {
		return rawPerChunk, 1
	}
	return rawPerChunk, int((size + rawPerChunk - 1) / rawPerChunk)
}

// streamChunks reads exactly size bytes from r, one chunk's worth at a time, and calls emit
// with each chunk's base64 text. Only one chunk is ever held in memory. The content is hashed
// as it goes; before the last chunk is emitted the sha and the absence of trailing bytes are
// checked, so a receiver is never handed a complete file that fails verification.
func streamChunks(r io.Reader, size int64, sha string, chunkChars int,
	emit func(index, total int, offset int64, content string) error) error {
	return streamChunkBytes(r, size, sha, chunkChars, func(index, total int, offset int64, raw []byte) error {
		return emit(index, total, offset, base64.StdEncoding.EncodeToString(raw))
	})
}

// streamChunkBytes is streamChunks handing out each chunk's raw bytes (valid until emit
// returns), to be base64-encoded by emit.
func streamChunkBytes(r io.Reader, size int64, sha string, chunkChars int,
	emit func(index, total int, offset int64, raw []byte) error) error {
	rawPerChunk, total := chunkLayout(size, chunkChars)
	raw := make([]byte, min(rawPerChunk, max(size, 0)))
	h := sha256.New()
	for i := range total {
		offset := int64(i) * rawPerChunk
		n := min(rawPerChunk, size-offset)
		if got, err := io.ReadFull(r, raw[:n]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: content ended after %d of %d bytes", ErrContentMismatch, offset+int64(got), size)
			}
			return fmt.Errorf("read content at offset %d: %w", offset+int64(got), err)
		}
		h.Write(raw[:n])
		if i == total-1 {
			if err := expectEOF(r, size); err != nil {
				return err
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != sha {
				return fmt.Errorf("%w: content has sha %s, expected %s", ErrContentMismatch, got, sha)
			}
		}
		if err := emit(i, total, offset, raw[:n]); err != nil {
			return err
		}
	}
	return nil
}

// readWhole reads a file that is sent in one request and checks its size and sha.
func readWhole(r io.Reader, size int64, sha string) ([]byte, error) {
	b := make([]byte, size)
	if got, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: content ended after %d of %d bytes", ErrContentMismatch, got, size)
		}
		return nil, fmt.Errorf("read content: %w", err)
	}
	if err := expectEOF(r, size); err != nil {
		return nil, err
	}
	if err := checkWhole(b, size, sha); err != nil {
		return nil, err
	}
	return b, nil
}

// checkWhole checks that b, a file sent in one request, has the announced size and sha.
func checkWhole(b []byte, size int64, sha string) error {
	if int64(len(b)) != size {
		return fmt.Errorf("%w: content has %d bytes, expected %d", ErrContentMismatch, len(b), size)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != sha {
		return fmt.Errorf("%w: content has sha %s, expected %s", ErrContentMismatch, got, sha)
	}
	return nil
}

// expectEOF checks that r has nothing left after size bytes.
func expectEOF(r io.Reader, size int64) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	switch {
	case n > 0:
		return fmt.Errorf("%w: content is longer than %d bytes", ErrContentMismatch, size)
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("read content at offset %d: %w", size, err)
	}
}
