package webhook_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/docora/docora/pkg/webhook"
)

func ExampleSign() {
	key := []byte("0123456789abcdef-test-key")
	body := []byte(`{"hello":"world"}`)
	fmt.Println(webhook.Sign(key, "1768132800", body))
	// Output: sha256=d7f964c6c0f73bec5b5fbeab029298a4f0221bda78f68dcdf5afd9fe393db714
}

func ExampleVerify() {
	key := []byte("0123456789abcdef-test-key")
	body := []byte(`{"hello":"world"}`)
	now := time.Unix(1768132800, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := webhook.Sign(key, ts, body)

	fmt.Println(webhook.Verify(key, ts, sig, body, now, webhook.DefaultTolerance))
	fmt.Println(webhook.Verify(key, ts, sig, []byte(`{"hello":"mallory"}`), now, webhook.DefaultTolerance))
	err := webhook.Verify(key, ts, sig, body, now.Add(time.Hour), webhook.DefaultTolerance)
	fmt.Println(errors.Is(err, webhook.ErrStaleTimestamp))
	// Output:
	// <nil>
	// webhook: invalid signature
	// true
}

// A receiver verifies the raw body, then parses it.
func ExampleVerifyRequest() {
	key := []byte("0123456789abcdef-test-key")

	handler := func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.VerifyRequest(r, key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		ev, err := webhook.Parse(r.URL.Path, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch ev := ev.(type) {
		case *webhook.DeleteEvent:
			fmt.Println("delete", ev.File.Path)
		}
		w.WriteHeader(http.StatusOK)
	}

	// What docora sends:
	body := []byte(`{"repository":{"repository_id":"repo_0123456789abcdef01234567","github_url":"https://github.com/acme/docs","owner":"acme","name":"docs"},"file":{"path":"guide/intro.md","sha":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},"commit_sha":"9f2c4e1d","timestamp":"2026-01-11T12:00:00.000Z"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequest(http.MethodPost, "/delete", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(key, ts, body))

	rec := httptest.NewRecorder()
	handler(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// delete guide/intro.md
	// 200
}

func ExampleParse() {
	body := []byte(`{"repository":{"repository_id":"repo_0123456789abcdef01234567","github_url":"https://github.com/acme/docs","owner":"acme","name":"docs"},"file":{"path":"README.md","sha":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03","size":6,"content":"hello\n"},"commit_sha":"9f2c4e1d","timestamp":"2026-01-11T12:00:00.000Z"}`)
	ev, err := webhook.Parse(webhook.EndpointCreate, body)
	if err != nil {
		fmt.Println(err)
		return
	}
	create := ev.(*webhook.CreateEvent)
	fmt.Println(create.Repository.GitHubURL, create.File.Path, create.File.Size)
	// Output: https://github.com/acme/docs README.md 6
}

func ExampleFile_Bytes() {
	f := webhook.File{
		Path:            "logo.bin",
		SHA:             "054edec1d0211f624fed0cbca9d4f9400b0e491c43742af2c5b0abebf0c990d8",
		Size:            4,
		Content:         "AAECAw==",
		ContentEncoding: webhook.EncodingBase64,
	}
	b, err := f.Bytes()
	fmt.Println(b, err)
	// Output: [0 1 2 3] <nil>
}

// Feed the file of every create and update to a Reassembler; it answers with the whole file
// once the last chunk is in.
func ExampleReassembler() {
	r := webhook.NewReassembler(webhook.ReassemblerOptions{MaxMemory: 4 << 20})
	defer r.Close()

	// Three chunks of a 9-byte file (docora's are 512 KiB of base64 each).
	sha := "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
	parts := []string{"MTIz", "NDU2", "Nzg5"}
	for i, part := range parts {
		a, err := r.Add(webhook.File{
			Path: "big/file.txt", SHA: sha, Size: 9,
			Content: part, ContentEncoding: webhook.EncodingBase64,
			Chunk: &webhook.Chunk{ID: "7d4f0b3e-3d7e-4a53-a0f7-2f4a5b1a9c11", Index: i, Total: len(parts), Offset: int64(3 * i)},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		if a == nil {
			fmt.Println("chunk", i, "received")
			continue
		}
		rc, _ := a.Open()
		content, _ := io.ReadAll(rc)
		rc.Close()
		a.Close()
		fmt.Printf("%s: %s\n", a.Path, content)
	}
	// Output:
	// chunk 0 received
	// chunk 1 received
	// big/file.txt: 123456789
}
