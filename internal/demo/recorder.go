package demo

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"
)

// recorder wraps the receiver and notes every answer it gives, so that the summary can say
// what the receiver applied, in order, and how many requests a chunked file took.
type recorder struct {
	next http.Handler

	mu     sync.Mutex
	events []event
}

type event struct {
	endpoint string
	code     int
	status   string // the receiver's "status": applied, chunk_received, ...
	path     string
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cw := &captureWriter{ResponseWriter: w, code: http.StatusOK}
	rc.next.ServeHTTP(cw, r)
	var body struct {
		Status string `json:"status"`
		Path   string `json:"path"`
	}
	_ = json.Unmarshal(cw.body.Bytes(), &body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.events = append(rc.events, event{endpoint: strings.TrimPrefix(r.URL.Path, "/"), code: cw.code,
		status: body.Status, path: body.Path})
}

// mark returns a position in the event log for since.
func (rc *recorder) mark() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.events)
}

// since returns the number of successful requests after mark and the changes they applied,
// with sizes and kinds read from the mirror.
func (rc *recorder) since(mark int, mirrorDir string) (int, []Applied) {
	rc.mu.Lock()
	events := append([]event(nil), rc.events[mark:]...)
	rc.mu.Unlock()
	requests := 0
	chunks := map[string]int{}
	out := []Applied{}
	for _, e := range events {
		if e.code/100 != 2 {
			continue
		}
		requests++
		if e.status == "chunk_received" {
			chunks[e.path]++
			continue
		}
		if e.endpoint != "create" && e.endpoint != "update" && e.endpoint != "delete" {
			continue
		}
		a := Applied{Type: e.endpoint, Path: e.path, Result: e.status}
		if n := chunks[e.path]; n > 0 {
			a.Chunks = n + 1
			delete(chunks, e.path)
		}
		if e.endpoint != "delete" {
			if b, err := os.ReadFile(filepath.Join(mirrorDir, filepath.FromSlash(e.path))); err == nil {
				a.Size = int64(len(b))
				a.Binary = !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0
			}
		}
		out = append(out, a)
	}
	return requests, out
}

// captureWriter keeps a copy of the (small, JSON) answer.
type captureWriter struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (w *captureWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(p []byte) (int, error) {
	if w.body.Len() < 4096 {
		w.body.Write(p)
	}
	return w.ResponseWriter.Write(p)
}
