package engine

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docora/docora/internal/mirror"
	"github.com/docora/docora/pkg/webhook"
)

// received is one webhook request as the receiver saw it, before any fault was applied.
type received struct {
	Endpoint    string // create, update, delete, sync_failed
	Delivery    string
	AppID       string
	Timestamp   string
	Signature   string
	SigOK       bool // HMAC recomputed here, independently of docora's code, matches
	Body        []byte
	Path        string
	SHA         string
	PreviousSHA string
	HasPrevious bool
	ChunkID     string
	ChunkIndex  int // -1 when the file is not chunked
	ChunkTotal  int
	Status      int // what the receiver answered (0: the connection was dropped)
}

// fault is what the receiver does instead of applying a request.
type fault struct {
	status     int    // answer this status
	retryAfter string // with this Retry-After header
	location   string // with this Location header
	hang       bool   // answer nothing until the client gives up
	reset      bool   // accept the request, then drop the connection with a TCP reset
}

// recorder is a real HTTP receiver on 127.0.0.1: it records every request, may inject a fault,
// and otherwise hands the request to a real mirror.Handler over its own directory.
type recorder struct {
	t   testing.TB
	srv *httptest.Server
	dir string
	key []byte

	conns atomic.Int32 // TCP connections accepted

	mu     sync.Mutex
	reqs   []received
	faults func(n int, r received) *fault // n counts requests from 0; nil result: no fault
	after  func(n int, r received)        // called after the mirror answered
}

func newRecorder(t testing.TB, key []byte) *recorder {
	t.Helper()
	dir := t.TempDir()
	h, err := mirror.New(mirror.Options{Dir: dir, Key: key,
		Reassembler: webhook.ReassemblerOptions{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	rec := &recorder{t: t, dir: dir, key: key}
	rec.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.serve(w, r, h)
	}))
	rec.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.conns.Add(1)
		}
	}
	rec.srv.Start()
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) URL() string { return rec.srv.URL }

func (rec *recorder) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	rq := parseReceived(r, body, rec.key)
	rec.mu.Lock()
	n := len(rec.reqs)
	rec.reqs = append(rec.reqs, rq)
	faults, after := rec.faults, rec.after
	rec.mu.Unlock()

	setStatus := func(code int) {
		rec.mu.Lock()
		rec.reqs[n].Status = code
		rec.mu.Unlock()
	}
	var ft *fault
	if faults != nil {
		ft = faults(n, rq)
	}
	switch {
	case ft == nil:
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		setStatus(sw.code)
		if after != nil {
			after(n, rq)
		}
	case ft.hang:
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	case ft.reset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			rec.t.Errorf("hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST, not FIN
		}
		conn.Close()
	default:
		if ft.retryAfter != "" {
			w.Header().Set("Retry-After", ft.retryAfter)
		}
		if ft.location != "" {
			w.Header().Set("Location", ft.location)
		}
		w.WriteHeader(ft.status)
		setStatus(ft.status)
	}
}

func (r received) String() string {
	s := fmt.Sprintf("%s %s sha=%.8s delivery=%s status=%d", r.Endpoint, r.Path, r.SHA, r.Delivery, r.Status)
	if r.ChunkIndex >= 0 {
		s += fmt.Sprintf(" chunk=%d/%d id=%s", r.ChunkIndex, r.ChunkTotal, r.ChunkID)
	}
	return s
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// parseReceived reads what a test checks out of a request, without docora's packages.
func parseReceived(r *http.Request, body []byte, key []byte) received {
	rq := received{
		Endpoint:   strings.TrimPrefix(r.URL.Path, "/"),
		Delivery:   r.Header.Get("X-Docora-Delivery"),
		AppID:      r.Header.Get("X-Docora-App-Id"),
		Timestamp:  r.Header.Get("X-Docora-Timestamp"),
		Signature:  r.Header.Get("X-Docora-Signature"),
		Body:       body,
		ChunkIndex: -1,
	}
	m := hmac.New(sha256.New, key)
	io.WriteString(m, rq.Timestamp+".")
	m.Write(body)
	rq.SigOK = hmac.Equal([]byte(rq.Signature), []byte("sha256="+hex.EncodeToString(m.Sum(nil))))
	var ev struct {
		File struct {
			Path  string `json:"path"`
			SHA   string `json:"sha"`
			Chunk *struct {
				ID    string `json:"id"`
				Index int    `json:"index"`
				Total int    `json:"total"`
			} `json:"chunk"`
		} `json:"file"`
		PreviousSHA *string `json:"previous_sha"`
	}
	if json.Unmarshal(body, &ev) == nil {
		rq.Path, rq.SHA = ev.File.Path, ev.File.SHA
		if ev.PreviousSHA != nil {
			rq.PreviousSHA, rq.HasPrevious = *ev.PreviousSHA, true
		}
		if c := ev.File.Chunk; c != nil {
			rq.ChunkID, rq.ChunkIndex, rq.ChunkTotal = c.ID, c.Index, c.Total
		}
	}
	return rq
}

func (rec *recorder) requests() []received {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]received(nil), rec.reqs...)
}

// setFaults replaces the fault plan; nil stops injecting faults.
func (rec *recorder) setFaults(f func(n int, r received) *fault) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.faults = f
}

func (rec *recorder) setAfter(f func(n int, r received)) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.after = f
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = nil
}

// files returns the mirror directory's files (path → content).
func (rec *recorder) files() map[string]string {
	out := map[string]string{}
	filepath.WalkDir(rec.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(rec.dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out
}
