// Package gitserve serves git repositories on local disk read-only, in pure Go (go-git), either
// over the smart HTTP protocol (Handler, used by `docora demo`, which must not need a git binary)
// or in process as a go-git transport for file:// URLs and local paths (NewTransport).
package gitserve

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// maxRequestBody bounds an upload-pack request (wants and haves only, never objects).
const maxRequestBody = 8 << 20

// Handler serves the repositories below a root directory, read-only, over smart HTTP
// (protocol v0): GET /<name>/info/refs?service=git-upload-pack and POST /<name>/git-upload-pack.
// <name> may contain slashes ("owner/repo.git"); "name" also finds "name.git". Bare repositories
// and work trees (with a .git directory) are both served.
type Handler struct {
	root string
}

// NewHandler returns a Handler for the repositories below root.
func NewHandler(root string) *Handler {
	return &Handler{root: root}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/info/refs"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch svc := r.URL.Query().Get("service"); svc {
		case transport.UploadPackServiceName:
			h.infoRefs(w, r, strings.TrimSuffix(p, "/info/refs"))
		case transport.ReceivePackServiceName:
			http.Error(w, "this server is read-only", http.StatusForbidden)
		default:
			// The dumb HTTP protocol is not served.
			http.Error(w, "only the smart HTTP protocol is supported", http.StatusForbidden)
		}
	case strings.HasSuffix(p, "/"+transport.UploadPackServiceName):
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.uploadPack(w, r, strings.TrimSuffix(p, "/"+transport.UploadPackServiceName))
	case strings.HasSuffix(p, "/"+transport.ReceivePackServiceName):
		http.Error(w, "this server is read-only", http.StatusForbidden)
	default:
		http.NotFound(w, r)
	}
}

// repoDir maps a request path prefix to a repository directory below the root, refusing names
// that would leave it.
func (h *Handler) repoDir(name string) (string, error) {
	name = strings.Trim(name, "/")
	if name == "" || name != path.Clean(name) || !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", transport.ErrRepositoryNotFound
	}
	dir := filepath.Join(h.root, filepath.FromSlash(name))
	if _, err := os.Stat(dir); err != nil && !strings.HasSuffix(name, ".git") {
		dir += ".git"
	}
	return dir, nil
}

func (h *Handler) session(name string) (transport.UploadPackSession, error) {
	dir, err := h.repoDir(name)
	if err != nil {
		return nil, err
	}
	st, err := openRepository(dir)
	if err != nil {
		return nil, err
	}
	return newUploadPackSession(st, false)
}

func (h *Handler) infoRefs(w http.ResponseWriter, r *http.Request, name string) {
	sess, err := h.session(name)
	if err != nil {
		httpError(w, err)
		return
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(r.Context())
	if err != nil {
		httpError(w, err)
		return
	}
	ar.Prefix = [][]byte{[]byte("# service=" + transport.UploadPackServiceName), pktline.Flush}
	w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	_ = ar.Encode(w) // the client has gone; nothing left to tell it
}

func (h *Handler) uploadPack(w http.ResponseWriter, r *http.Request, name string) {
	sess, err := h.session(name)
	if err != nil {
		httpError(w, err)
		return
	}
	defer sess.Close()

	body := io.Reader(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip body", http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	req, done, err := decodeUploadPackRequest(body)
	if err != nil {
		http.Error(w, fmt.Sprintf("bad upload-pack request: %v", err), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	if !done {
		// A negotiation round of a stateless (HTTP) client: say whether we share a commit with
		// it; the pack follows in the round that ends with "done".
		s := sess.(*uploadPackSession)
		line := "NAK\n"
		for _, h := range req.Haves {
			if s.st.HasEncodedObject(h) == nil {
				line = "ACK " + h.String() + "\n"
				break
			}
		}
		_ = pktline.NewEncoder(w).EncodeString(line)
		return
	}
	// The client expects a shallow-update section when it asked for a depth; sessions from
	// newUploadPackSession answer with the full history and so never have a shallow commit
	// to report: the section is just a flush.
	shallowSection := !req.Depth.IsZero()

	resp, err := sess.UploadPack(r.Context(), req)
	if err != nil {
		httpError(w, err)
		return
	}
	defer resp.Close()
	if shallowSection {
		if _, err := w.Write(pktline.FlushPkt); err != nil {
			return
		}
	}
	_ = resp.Encode(w) // as above: a write error means the client has gone
}

func httpError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, transport.ErrRepositoryNotFound):
		http.Error(w, "repository not found", http.StatusNotFound)
	case errors.Is(err, transport.ErrEmptyUploadPackRequest):
		http.Error(w, "empty request", http.StatusBadRequest)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// NewTransport returns a go-git transport that serves file:// URLs and local paths in process
// (no git binary), the way Handler serves them over HTTP. Install it for the "file" protocol
// with client.InstallProtocol. It reads any local repository the endpoint names: callers decide
// whether local paths are allowed at all.
func NewTransport() transport.Transport {
	return localTransport{}
}

type localTransport struct{}

func (localTransport) NewUploadPackSession(ep *transport.Endpoint, _ transport.AuthMethod) (transport.UploadPackSession, error) {
	st, err := openRepository(ep.Path)
	if err != nil {
		return nil, err
	}
	return newUploadPackSession(st, true)
}

func (localTransport) NewReceivePackSession(*transport.Endpoint, transport.AuthMethod) (transport.ReceivePackSession, error) {
	return nil, errors.New("pushing to local repositories is not supported")
}

// openRepository opens the git directory at dir, or dir/.git for a work tree.
func openRepository(dir string) (*filesystem.Storage, error) {
	if fi, err := os.Stat(filepath.Join(dir, ".git")); err == nil && fi.IsDir() {
		dir = filepath.Join(dir, ".git")
	}
	for _, p := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return nil, transport.ErrRepositoryNotFound
		}
	}
	return filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(8*cache.MiByte),
		filesystem.Options{LargeObjectThreshold: 1 << 20}), nil
}

type fixedLoader struct{ st storer.Storer }

func (l fixedLoader) Load(*transport.Endpoint) (storer.Storer, error) { return l.st, nil }

// newUploadPackSession wraps go-git's upload-pack server, which implements neither shallow
// clones nor unknown "have" lines, so that go-git clients fetching with a depth (as docora's
// cache does) and clients whose history was rewritten on this side still get what they want:
// the full history of the wanted commits.
func newUploadPackSession(st storer.Storer, asClient bool) (transport.UploadPackSession, error) {
	var t transport.Transport
	if asClient {
		t = server.NewClient(fixedLoader{st})
	} else {
		t = server.NewServer(fixedLoader{st})
	}
	s, err := t.NewUploadPackSession(&transport.Endpoint{Protocol: "file", Path: "/"}, nil)
	if err != nil {
		return nil, err
	}
	return &uploadPackSession{UploadPackSession: s, st: st}, nil
}

type uploadPackSession struct {
	transport.UploadPackSession
	st storer.Storer
}

func (s *uploadPackSession) UploadPack(ctx context.Context, req *packp.UploadPackRequest) (*packp.UploadPackResponse, error) {
	return s.UploadPackSession.UploadPack(ctx, s.adapt(req))
}

// adapt returns a copy of req that go-git's server accepts: no depth and no shallow capability
// (it sends full history instead), and only the haves it has. A client with shallow commits has
// fewer objects than its haves imply, so its haves are dropped and it receives everything.
func (s *uploadPackSession) adapt(req *packp.UploadPackRequest) *packp.UploadPackRequest {
	out := packp.NewUploadPackRequest()
	for _, c := range req.Capabilities.All() {
		if c == capability.Shallow || c == capability.DeepenSince || c == capability.DeepenNot {
			continue
		}
		_ = out.Capabilities.Set(c, req.Capabilities.Get(c)...) // values come from a valid list
	}
	out.Wants = append(out.Wants, req.Wants...)
	if len(req.Shallows) > 0 {
		return out
	}
	for _, h := range req.Haves {
		if s.st.HasEncodedObject(h) == nil {
			out.Haves = append(out.Haves, h)
		}
	}
	return out
}

// decodeUploadPackRequest reads wants, shallows and depth, then the haves up to "done" (which a
// stateless client omits in negotiation rounds).
func decodeUploadPackRequest(r io.Reader) (req *packp.UploadPackRequest, done bool, err error) {
	req = packp.NewUploadPackRequest()
	if err := req.UploadRequest.Decode(r); err != nil {
		return nil, false, err
	}
	sc := pktline.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSuffix(string(sc.Bytes()), "\n")
		switch {
		case line == "": // flush-pkt between rounds of haves
		case line == "done":
			return req, true, nil
		case strings.HasPrefix(line, "have "):
			h := strings.TrimPrefix(line, "have ")
			if !plumbing.IsHash(h) {
				return nil, false, fmt.Errorf("bad have line %q", line)
			}
			req.Haves = append(req.Haves, plumbing.NewHash(h))
		default:
			return nil, false, fmt.Errorf("unexpected line %q", line)
		}
	}
	return req, false, sc.Err()
}
