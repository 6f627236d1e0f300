package webhook_test

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/docora/docora/pkg/webhook"
)

var endpoints = []string{webhook.EndpointCreate, webhook.EndpointUpdate, webhook.EndpointDelete, webhook.EndpointSyncFailed, "other"}

// FuzzParse feeds arbitrary bodies to Parse, and whatever it accepts to File.Bytes and a
// Reassembler: nothing may panic, and accepted files must have passed validation.
func FuzzParse(f *testing.F) {
	f.Add(uint8(0), []byte(`{"repository":`+repoJSON+`,"file":{"path":"a","sha":"`+helloSHA+`","size":6,"content":"hello\n"},"commit_sha":"c","timestamp":"t"}`))
	f.Add(uint8(1), []byte(`{"file":{"path":"a","sha":"`+helloSHA+`","size":6,"content":"aGVsbG8K","content_encoding":"base64","chunk":{"id":"x","index":0,"total":1,"offset":0}}}`))
	f.Add(uint8(2), []byte(`{"file":{"path":"a","sha":"`+helloSHA+`"}}`))
	f.Add(uint8(3), []byte(`{"event":"sync_failed","retry_count":1}`))
	f.Add(uint8(0), []byte(`null`))
	f.Add(uint8(0), []byte(`{"file":{"chunk":{"index":-1}}}`))
	r := webhook.NewReassembler(webhook.ReassemblerOptions{Dir: f.TempDir(), MaxMemory: 16, MaxFileSize: 1 << 20})
	defer r.Close()

	f.Fuzz(func(t *testing.T, endpoint uint8, body []byte) {
		ev, err := webhook.Parse(endpoints[int(endpoint)%len(endpoints)], body)
		if err != nil {
			return
		}
		var file *webhook.File
		switch e := ev.(type) {
		case *webhook.CreateEvent:
			file = &e.File
		case *webhook.UpdateEvent:
			file = &e.File
		case *webhook.DeleteEvent:
			if e.File.Path == "" || len(e.File.SHA) != 64 {
				t.Fatalf("Parse accepted delete of %+v", e.File)
			}
		}
		if file == nil {
			return
		}
		if file.Path == "" || len(file.SHA) != 64 || file.Size < 0 {
			t.Fatalf("Parse accepted %+v", file)
		}
		if b, err := file.Bytes(); err == nil && file.Chunk == nil && int64(len(b)) != file.Size {
			t.Fatalf("Bytes returned %d bytes for size %d", len(b), file.Size)
		}
		if a, err := r.Add(*file); err == nil && a != nil {
			if a.Size != file.Size || a.SHA != file.SHA {
				t.Fatalf("assembled %+v from %+v", a, file)
			}
			a.Close()
		}
	})
}

// FuzzVerify: Verify never panics, never accepts what was not signed with the key, and
// accepts every body signed with it.
func FuzzVerify(f *testing.F) {
	f.Add("1768132800", webhook.Sign(testKey, "1768132800", testBody), testBody)
	f.Add("", "", []byte{})
	f.Add("1768132800", "sha256=", []byte("x"))
	f.Add("-1", "sha256=zz", []byte("{}"))
	now := time.Unix(1768132800, 0)

	f.Fuzz(func(t *testing.T, timestamp, signature string, body []byte) {
		err := webhook.Verify(testKey, timestamp, signature, body, now, time.Hour)
		if err == nil && signature != webhook.Sign(testKey, timestamp, body) {
			// Only a hex case variant of the true signature may pass.
			if !bytes.EqualFold([]byte(signature), []byte(webhook.Sign(testKey, timestamp, body))) {
				t.Fatalf("Verify accepted signature %q for timestamp %q", signature, timestamp)
			}
		}
		if _, perr := strconv.ParseUint(timestamp, 10, 63); perr != nil || timestamp[0] == '+' {
			return
		}
		sig := webhook.Sign(testKey, timestamp, body)
		err = webhook.Verify(testKey, timestamp, sig, body, now, time.Hour)
		sec, _ := strconv.ParseInt(timestamp, 10, 64)
		fresh := now.Sub(time.Unix(sec, 0)).Abs() <= time.Hour
		if fresh && err != nil || !fresh && err == nil {
			t.Fatalf("Verify(own signature, ts %q) = %v", timestamp, err)
		}
	})
}
