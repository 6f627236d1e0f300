package delivery

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestChunkLayout(t *testing.T) {
	for _, tc := range []struct {
		size  int64
		chars int
		raw   int64
		total int
	}{
		{1, 8, 6, 1}, {6, 8, 6, 1}, {7, 8, 6, 2}, {12, 8, 6, 2}, {13, 8, 6, 3},
		{1<<20 + 1, DefaultChunkSize, 393216, 3}, {20_000_000, DefaultChunkSize, 393216, 51}, {0, 4, 3, 1},
	} {
		raw, total := chunkLayout(tc.size, tc.chars)
		if raw != tc.raw || total != tc.total {
			t.Errorf("chunkLayout(%d, %d) = %d, %d; want %d, %d", tc.size, tc.chars, raw, total, tc.raw, tc.total)
		}
	}
}

func FuzzChunkSplit(f *testing.F) {
	f.Add([]byte("0123456789"), uint8(1))
	f.Add([]byte{}, uint8(0))
	f.Add(bytes.Repeat([]byte{0xff}, 1000), uint8(7))
	f.Fuzz(func(t *testing.T, content []byte, quads uint8) {
		chars := 4 * (1 + int(quads%64))
		raw := chars / 4 * 3
		sha := shaHex(content)
		wantTotal := max(1, (len(content)+raw-1)/raw)
		var whole []byte
		calls := 0
		err := streamChunks(bytes.NewReader(content), int64(len(content)), sha, chars, func(index, total int, offset int64, c string) error {
			if index != calls || total != wantTotal || offset != int64(index*raw) || offset != int64(len(whole)) {
				t.Fatalf("chunk %d/%d at %d; want %d/%d at %d", index, total, offset, calls, wantTotal, len(whole))
			}
			if len(c) > chars || (index < total-1 && len(c) != chars) || len(c)%4 != 0 {
				t.Fatalf("chunk %d has %d characters (chunk size %d)", index, len(c), chars)
			}
			part, err := base64.StdEncoding.DecodeString(c)
			if err != nil {
				t.Fatalf("chunk %d does not decode alone: %v", index, err)
			}
			if !bytes.Equal(part, content[offset:offset+int64(len(part))]) {
				t.Fatalf("chunk %d decodes to other bytes", index)
			}
			whole = append(whole, part...)
			calls++
			return nil
		})
		if err != nil || calls != wantTotal || !bytes.Equal(whole, content) {
			t.Fatalf("err %v, %d chunks (want %d), reassembly equal: %v", err, calls, wantTotal, bytes.Equal(whole, content))
		}

		// A wrong sha is caught before the last chunk goes out.
		calls = 0
		err = streamChunks(bytes.NewReader(content), int64(len(content)), "0"+sha[1:]+"x", chars, func(int, int, int64, string) error {
			calls++
			return nil
		})
		if !errors.Is(err, ErrContentMismatch) || calls != wantTotal-1 {
			t.Fatalf("wrong sha: err %v after %d chunks, want ErrContentMismatch after %d", err, calls, wantTotal-1)
		}
	})
}
