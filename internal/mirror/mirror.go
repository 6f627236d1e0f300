// Package mirror applies docora webhooks to a directory, which becomes a mirror of the watched
// repository: the core of `docora receive`, built on the public pkg/webhook contract.
package mirror

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/docora/docora/pkg/webhook"
)

// Options configures a Handler.
type Options struct {
	// Dir is the mirror directory; it is created when missing.
	Dir string
	// Key is the app's client auth key, the HMAC key of every webhook.
	Key []byte
	// Tolerance is the accepted clock difference (default webhook.DefaultTolerance).
	Tolerance time.Duration
	// MaxBodyBytes limits request bodies (default webhook.DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Logger receives one info line per applied event (default: discard).
	Logger *slog.Logger
	// Reassembler configures chunk reassembly; its Dir defaults to os.TempDir().
	Reassembler webhook.ReassemblerOptions
	// Now is the clock timestamps are checked against (default time.Now).
	Now func() time.Time
}

// maxDeliveries bounds the in-memory record of applied deliveries.
const maxDeliveries = 10000

// Handler serves POST /create, /update, /delete and /sync_failed and applies them to its
// directory. Create and update write the file atomically (a temporary file in the same
// directory, fsync, rename), creating parent directories; delete removes the file and the
// directories it leaves empty. Re-deliveries are harmless: a file that already has the content
// is left alone, a missing file is already deleted, and a delivery id whose change was applied
// is answered without touching the directory again.
type Handler struct {
	opts  Options
	log   *slog.Logger
	root  *os.Root
	reasm *webhook.Reassembler

	mu      sync.Mutex // serialises changes to the directory
	applied deliveries
}

// New returns a Handler for opts. Close it to release the directory and temporary files.
func New(opts Options) (*Handler, error) {
	if opts.Dir == "" {
		return nil, errors.New("mirror: no directory")
	}
	if len(opts.Key) == 0 {
		return nil, errors.New("mirror: no client auth key")
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = webhook.DefaultTolerance
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = webhook.DefaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	root, err := os.OpenRoot(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	return &Handler{
		opts:    opts,
		log:     log.With("component", "mirror"),
		root:    root,
		reasm:   webhook.NewReassembler(opts.Reassembler),
		applied: deliveries{m: make(map[string]change)},
	}, nil
}

// Close drops incomplete chunk transfers and releases the directory.
func (h *Handler) Close() error {
	return errors.Join(h.reasm.Close(), h.root.Close())
}

var routes = map[string]string{
	"/" + webhook.EndpointCreate:     webhook.EndpointCreate,
	"/" + webhook.EndpointUpdate:     webhook.EndpointUpdate,
	"/" + webhook.EndpointDelete:     webhook.EndpointDelete,
	"/" + webhook.EndpointSyncFailed: webhook.EndpointSyncFailed,
}

// ServeHTTP routes by hand so that every answer, 404 and 405 included, is JSON.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, ok := routes[r.URL.Path]
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody{"not found"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"method not allowed: use POST"})
		return
	}
	status, res, err := h.serve(r, endpoint)
	if err != nil {
		h.log.Warn("webhook refused", "endpoint", endpoint, "status", status,
			"delivery", r.Header.Get(webhook.HeaderDelivery), "error", err)
		writeJSON(w, status, errorBody{err.Error()})
		return
	}
	writeJSON(w, status, res)
}

type errorBody struct {
	Error string `json:"error"`
}

// result is the body of a 200 answer.
type result struct {
	Status string `json:"status"` // applied, unchanged, deleted, absent, chunk_received, duplicate, logged
	Path   string `json:"path,omitempty"`
	Chunk  *int   `json:"chunk,omitempty"` // index of the chunk received
}

func (h *Handler) serve(r *http.Request, endpoint string) (int, result, error) {
	body, err := webhook.VerifyRequest(r, h.opts.Key,
		webhook.WithTolerance(h.opts.Tolerance),
		webhook.WithMaxBodyBytes(h.opts.MaxBodyBytes),
		webhook.WithClock(h.opts.Now))
	switch {
	case errors.Is(err, webhook.ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, result{}, err
	case errors.Is(err, webhook.ErrMissingSignature), errors.Is(err, webhook.ErrInvalidSignature),
		errors.Is(err, webhook.ErrMalformedTimestamp), errors.Is(err, webhook.ErrStaleTimestamp):
		return http.StatusUnauthorized, result{}, err
	case err != nil:
		return http.StatusBadRequest, result{}, err
	}
	ev, err := webhook.Parse(endpoint, body)
	if err != nil {
		return http.StatusBadRequest, result{}, err
	}
	delivery := r.Header.Get(webhook.HeaderDelivery)
	switch e := ev.(type) {
	case *webhook.CreateEvent:
		return h.put(endpoint, delivery, e.Repository, e.CommitSHA, e.File)
	case *webhook.UpdateEvent:
		return h.put(endpoint, delivery, e.Repository, e.CommitSHA, e.File)
	case *webhook.DeleteEvent:
		return h.delete(delivery, e)
	case *webhook.SyncFailedEvent:
		h.log.Warn("sync failed", "repository_id", e.Repository.RepositoryID, "url", e.Repository.GitHubURL,
			"error_type", e.Error.Type, "error", e.Error.Message, "retry_count", e.RetryCount,
			"consecutive_failures", e.CircuitBreaker.ConsecutiveFailures,
			"cooldown_until", e.CircuitBreaker.CooldownUntil, "delivery", delivery)
		return http.StatusOK, result{Status: "logged"}, nil
	}
	return http.StatusBadRequest, result{}, fmt.Errorf("unexpected event %T", ev)
}

// put applies a create or update.
func (h *Handler) put(endpoint, delivery string, repo webhook.Repository, commit string, f webhook.File) (int, result, error) {
	if err := CheckPath(f.Path); err != nil {
		return http.StatusBadRequest, result{}, fmt.Errorf("file.path %q: %w", f.Path, err)
	}
	c := change{endpoint, f.Path, f.SHA}
	if h.applied.has(delivery, c) {
		res := result{Status: "duplicate", Path: f.Path}
		if f.Chunk != nil {
			res.Chunk = &f.Chunk.Index
		}
		return http.StatusOK, res, nil
	}
	a, err := h.reasm.Add(f)
	switch {
	case errors.Is(err, webhook.ErrFileTooLarge):
		return http.StatusRequestEntityTooLarge, result{}, err
	case errors.Is(err, webhook.ErrReassemblerClosed):
		return http.StatusServiceUnavailable, result{}, err
	case err != nil:
		return http.StatusBadRequest, result{}, err
	case a == nil:
		return http.StatusOK, result{Status: "chunk_received", Path: f.Path, Chunk: &f.Chunk.Index}, nil
	}
	defer a.Close()

	h.mu.Lock()
	defer h.mu.Unlock()
	status, err := h.write(a)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return he.status, result{}, he.err
		}
		return http.StatusInternalServerError, result{}, fmt.Errorf("write %s: %w", f.Path, err)
	}
	h.applied.add(delivery, c)
	h.log.Info("applied", "event", endpoint, "path", f.Path, "sha", f.SHA, "size", f.Size, "result", status,
		"repository_id", repo.RepositoryID, "commit", commit, "delivery", delivery)
	return http.StatusOK, result{Status: status, Path: f.Path}, nil
}

type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }

const tempPrefix = ".docora-tmp-"

// write puts a's content at a.Path unless the file already has it. It returns "applied" or
// "unchanged". Callers hold h.mu.
func (h *Handler) write(a *webhook.Assembled) (string, error) {
	name := filepath.FromSlash(a.Path)
	if fi, err := h.root.Lstat(name); err == nil {
		switch {
		case fi.Mode().IsRegular() && fi.Size() == a.Size:
			if sum, err := h.fileSHA(name); err == nil && sum == a.SHA {
				return "unchanged", nil
			}
		case fi.IsDir():
			// A directory became a file. Its files were deleted first, which removed it too;
			// an empty one left behind (by hand, or by an interrupted delete) goes now.
			if err := h.root.Remove(name); err != nil {
				return "", &httpError{http.StatusConflict, fmt.Errorf("%s is a directory that is not empty", a.Path)}
			}
		}
	}
	dir := path.Dir(a.Path)
	if dir != "." {
		_, statErr := h.root.Stat(filepath.FromSlash(dir))
		if err := h.root.MkdirAll(filepath.FromSlash(dir), 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return "", &httpError{http.StatusConflict, fmt.Errorf("a parent of %s is a file, not a directory", a.Path)}
			}
			return "", err
		}
		if statErr != nil {
			// New directories are durable once their parents are synced.
			for d := path.Dir(dir); ; d = path.Dir(d) {
				h.syncDir(d)
				if d == "." {
					break
				}
			}
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(filepath.FromSlash(dir), tempPrefix+hex.EncodeToString(rnd[:]))
	out, err := h.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	committed := false
	defer func() {
		if !committed {
			out.Close()
			h.root.Remove(tmp)
		}
	}()
	in, err := a.Open()
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, in)
	in.Close()
	if err != nil {
		return "", err
	}
	if err := out.Sync(); err != nil {
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	if err := h.root.Rename(tmp, name); err != nil {
		return "", err
	}
	committed = true
	h.syncDir(dir)
	return "applied", nil
}

func (h *Handler) fileSHA(name string) (string, error) {
	f, err := h.root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(s.Sum(nil)), nil
}

// syncDir makes a rename or removal in dir durable. It is best effort: not every platform can
// fsync a directory.
func (h *Handler) syncDir(dir string) {
	d, err := h.root.Open(filepath.FromSlash(dir))
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

func (h *Handler) delete(delivery string, e *webhook.DeleteEvent) (int, result, error) {
	p := e.File.Path
	if err := CheckPath(p); err != nil {
		return http.StatusBadRequest, result{}, fmt.Errorf("file.path %q: %w", p, err)
	}
	c := change{webhook.EndpointDelete, p, e.File.SHA}
	if h.applied.has(delivery, c) {
		return http.StatusOK, result{Status: "duplicate", Path: p}, nil
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	name := filepath.FromSlash(p)
	status := "deleted"
	fi, err := h.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		status = "absent"
	case err != nil:
		return http.StatusInternalServerError, result{}, fmt.Errorf("delete %s: %w", p, err)
	case fi.IsDir():
		return http.StatusConflict, result{}, fmt.Errorf("delete %s: it is a directory", p)
	default:
		if err := h.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return http.StatusInternalServerError, result{}, fmt.Errorf("delete %s: %w", p, err)
		}
	}
	// Remove the directories the file leaves empty (git has no empty directories), also on a
	// re-delivery, which may follow a crash between the two steps.
	dir := path.Dir(p)
	for ; dir != "."; dir = path.Dir(dir) {
		if h.root.Remove(filepath.FromSlash(dir)) != nil {
			break
		}
	}
	h.syncDir(dir)
	h.applied.add(delivery, c)
	h.log.Info("applied", "event", webhook.EndpointDelete, "path", p, "sha", e.File.SHA, "result", status,
		"repository_id", e.Repository.RepositoryID, "commit", e.CommitSHA, "delivery", delivery)
	return http.StatusOK, result{Status: status, Path: p}, nil
}

// change is what a delivery did.
type change struct {
	endpoint, path, sha string
}

// deliveries remembers the changes applied per X-Docora-Delivery id, the most recent
// maxDeliveries of them. A delivery id seen again with the same change was applied already —
// possibly before later changes to the same path, which re-applying it would undo.
type deliveries struct {
	mu    sync.Mutex
	m     map[string]change
	order []string // ring of ids, oldest at next
	next  int
}

func (d *deliveries) has(id string, c change) bool {
	if id == "" {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	got, ok := d.m[id]
	return ok && got == c
}

func (d *deliveries) add(id string, c change) {
	if id == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[id]; !ok {
		if len(d.order) < maxDeliveries {
			d.order = append(d.order, id)
		} else {
			delete(d.m, d.order[d.next])
			d.order[d.next] = id
			d.next = (d.next + 1) % maxDeliveries
		}
	}
	d.m[id] = c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
