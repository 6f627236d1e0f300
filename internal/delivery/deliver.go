package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/google/uuid"

	"github.com/docora/docora/pkg/webhook"
)

// Kind is the kind of a file change that carries content.
type Kind string

// Kinds of FileChange; the values are the endpoints they are sent to.
const (
	Create Kind = webhook.EndpointCreate
	Update Kind = webhook.EndpointUpdate
)

// FileChange is a created or updated file to deliver. SHA and Size come from the blob cache;
// the content read through Open must match them.
type FileChange struct {
	Kind        Kind
	Path        string
	SHA         string // SHA-256 of the content, lowercase hex
	Size        int64
	PreviousSHA string // Update only: the sha this app last confirmed
	// Open returns the content. It is called once per DeliverFile, so a retry (a new
	// DeliverFile call) re-reads the file from the start.
	Open func() (io.ReadCloser, error)
	// Content, when not nil, is the content itself, already in memory (a file up to the chunk
	// threshold): Open is then not called. It is checked against SHA and Size all the same.
	Content []byte
	// DeliveryID is the X-Docora-Delivery of every request of this change, identical on
	// every retry.
	DeliveryID string
	// ChunkID is the chunk.id of a chunked file, stable across retries. Empty: derived from
	// DeliveryID (a name-based UUID), which is just as stable.
	ChunkID string
	// Binary, when not nil, is the text/binary verdict the blob cache holds for this content
	// (SPEC §6's rule, computed when the blob was hashed). It is used only after the content
	// matched SHA, so it belongs to these bytes; nil: the verdict is computed from the content.
	Binary *bool
}

// Deletion is a deleted file to deliver.
type Deletion struct {
	Path       string
	SHA        string // the last sha this app confirmed
	DeliveryID string
}

// chunkIDSpace is the namespace of chunk ids derived from delivery ids.
var chunkIDSpace = uuid.MustParse("5b0c6a52-3f0e-4d53-9a43-6a1f0d0c0d0a")

// ChunkID returns the chunk id derived from a delivery id.
func ChunkID(deliveryID string) string {
	return uuid.NewSHA1(chunkIDSpace, []byte(deliveryID)).String()
}

// DeliverFile sends a create or update for fc: one request for a file up to the chunk
// threshold, one request per chunk, in order, above it, each needing a 2xx before the next.
// The content is read once and streamed; above the threshold a few chunks are in memory (the
// next ones are read, encoded and signed while one is sent). On failure nothing more is
// sent and the error says which chunk failed; errors.As finds the *DeliveryError of a failed
// request, errors.Is finds ErrContentMismatch when the content does not match fc.SHA and
// fc.Size (checked before the last chunk goes out). The caller retries the whole change with
// the same fc: it restarts from chunk 0 with the same ids.
func (c *Client) DeliverFile(ctx context.Context, t Target, repo webhook.Repository, commitSHA string, fc FileChange) error {
	if fc.Size > c.opts.ChunkThreshold {
		bp, err := c.fileBodyParts(repo, commitSHA, fc)
		if err != nil {
			return err
		}
		return c.deliverChunked(ctx, t, bp, fc)
	}
	p, err := c.PrepareFile(t, repo, commitSHA, fc)
	if err != nil {
		return err
	}
	return c.SendPrepared(ctx, t, p)
}

// Prepared is the request of a file change sent whole, built and signed (with the time of
// PrepareFile) ahead of its turn, so that sending it costs the request alone.
type Prepared struct {
	fc FileChange
	rq *signedRequest
}

// PrepareFile reads and checks the content of fc, a file up to the chunk threshold, and builds
// and signs its request. It sends nothing; the error is the one DeliverFile would return.
func (c *Client) PrepareFile(t Target, repo webhook.Repository, commitSHA string, fc FileChange) (*Prepared, error) {
	if fc.Size > c.opts.ChunkThreshold {
		return nil, fmt.Errorf("%s %s: %d bytes: sent in chunks, not prepared whole", fc.Kind, fc.Path, fc.Size)
	}
	bp, err := c.fileBodyParts(repo, commitSHA, fc)
	if err != nil {
		return nil, err
	}
	b, err := c.wholeContent(fc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", fc.Kind, fc.Path, err)
	}
	part := wholePart(b, fc.Binary)
	at := c.opts.Now()
	bp.content, bp.how, bp.timestamp = part.content, part.how, webhook.FormatTimestamp(at)
	tb := &trackedBody{b: appendFileBody(getBodyBuffer(), bp)}
	return &Prepared{fc: fc, rq: c.sign(t, string(fc.Kind), tb, fc.DeliveryID, at)}, nil
}

// SendPrepared sends the request of p (once: a retry prepares or delivers the change again).
func (c *Client) SendPrepared(ctx context.Context, t Target, p *Prepared) error {
	err := c.do(ctx, t, p.rq)
	if p.rq.tb.released() {
		putBodyBuffer(p.rq.tb.b) // otherwise the transport may still write it: never reuse it
	}
	p.rq.tb = nil
	if err != nil {
		return fmt.Errorf("%s %s: %w", p.fc.Kind, p.fc.Path, err)
	}
	return nil
}

// fileBodyParts validates fc and returns the parts of its bodies that do not depend on the
// content.
func (c *Client) fileBodyParts(repo webhook.Repository, commitSHA string, fc FileChange) (*bodyParts, error) {
	if err := fc.validate(); err != nil {
		return nil, err
	}
	repoJSON, err := Marshal(repo)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", fc.Kind, fc.Path, err)
	}
	return &bodyParts{kind: fc.Kind, repo: repoJSON, path: fc.Path, sha: fc.SHA, size: fc.Size,
		previousSHA: fc.PreviousSHA, commitSHA: commitSHA}, nil
}

// chunkRequest is one signed chunk request.
type chunkRequest struct {
	rq           *signedRequest
	index, total int
}

// rawChunk is one chunk's bytes, read and hashed, on their way to be encoded and signed.
type rawChunk struct {
	raw          []byte
	index, total int
	offset       int64
}

// deliverChunked sends the chunks of fc in order, in a pipeline of three goroutines: one
// reads and hashes chunk i+2 (inflating it from the pack, most of the work), one encodes and
// signs chunk i+1, and this one sends chunk i. The content check before the last chunk is
// unchanged: the reader checks the sha before it hands the last chunk on.
func (c *Client) deliverChunked(ctx context.Context, t Target, bp *bodyParts, fc FileChange) error {
	rc, err := fc.open()
	if err != nil {
		return err
	}
	id := fc.ChunkID
	if id == "" {
		id = ChunkID(fc.DeliveryID)
	}
	raws := make(chan rawChunk, 1)
	reqs := make(chan chunkRequest, 1)
	freeRaw := make(chan []byte, 3)  // raw buffers the encoder is done with
	freeBody := make(chan []byte, 2) // body buffers the transport is done with
	stop := make(chan struct{})
	var readErr error
	go func() { // read and hash
		defer close(raws)
		defer func() { _ = rc.Close() }()
		readErr = streamChunkBytes(rc, fc.Size, fc.SHA, c.opts.ChunkSize, func(index, total int, offset int64, raw []byte) error {
			var buf []byte
			select {
			case buf = <-freeRaw:
			default:
			}
			buf = append(buf[:0], raw...)
			select {
			case raws <- rawChunk{raw: buf, index: index, total: total, offset: offset}:
				return nil
			case <-stop:
				return errStopped
			}
		})
	}()
	go func() { // encode and sign
		defer close(reqs)
		for rw := range raws {
			var buf []byte
			select {
			case buf = <-freeBody:
			default:
			}
			part := *bp
			at := c.opts.Now()
			part.content, part.how, part.timestamp = rw.raw, contentBase64, webhook.FormatTimestamp(at)
			part.chunk = &webhook.Chunk{ID: id, Index: rw.index, Total: rw.total, Offset: rw.offset}
			rq := c.sign(t, string(fc.Kind), &trackedBody{b: appendFileBody(buf[:0], &part)}, fc.DeliveryID, at)
			select {
			case freeRaw <- rw.raw:
			default:
			}
			select {
			case reqs <- chunkRequest{rq: rq, index: rw.index, total: rw.total}:
			case <-stop:
				for range raws { // let the reader stop
				}
				return
			}
		}
	}()
	for cr := range reqs {
		err := c.do(ctx, t, cr.rq)
		if cr.rq.tb.released() {
			select {
			case freeBody <- cr.rq.tb.b:
			default:
			}
		}
		if err != nil {
			close(stop)
			for range reqs { // let the encoder and the reader finish and close the content
			}
			return fmt.Errorf("%s %s chunk %d/%d: %w", fc.Kind, fc.Path, cr.index+1, cr.total, err)
		}
	}
	if readErr != nil {
		return fmt.Errorf("%s %s: %w", fc.Kind, fc.Path, readErr)
	}
	return nil
}

// errStopped ends the reading of chunks nobody will send.
var errStopped = errors.New("stopped")

// open returns a reader of fc's content: Content when set, Open's reader otherwise.
func (fc *FileChange) open() (io.ReadCloser, error) {
	if fc.Content != nil {
		return io.NopCloser(bytes.NewReader(fc.Content)), nil
	}
	rc, err := fc.Open()
	if err != nil {
		return nil, fmt.Errorf("%s %s: open content: %w", fc.Kind, fc.Path, err)
	}
	return rc, nil
}

func (fc *FileChange) validate() error {
	switch {
	case fc.Kind != Create && fc.Kind != Update:
		return fmt.Errorf("file change %q: unknown kind %q", fc.Path, fc.Kind)
	case fc.Path == "":
		return errors.New("file change without a path")
	case fc.SHA == "":
		return fmt.Errorf("%s %s: no sha", fc.Kind, fc.Path)
	case fc.Size < 0:
		return fmt.Errorf("%s %s: negative size %d", fc.Kind, fc.Path, fc.Size)
	case fc.Open == nil && fc.Content == nil:
		return fmt.Errorf("%s %s: no content source", fc.Kind, fc.Path)
	case fc.DeliveryID == "":
		return fmt.Errorf("%s %s: no delivery id", fc.Kind, fc.Path)
	}
	return nil
}

// bodyBuffers are request body buffers of DeliverFile, reused once the transport is done
// with them (trackedBody). Buffers above maxPooledBody (a chunk's) are kept for the chunks of
// one file only.
var bodyBuffers sync.Pool

const maxPooledBody = 256 << 10

func getBodyBuffer() []byte {
	if b, ok := bodyBuffers.Get().(*[]byte); ok {
		return *b
	}
	return nil
}

func putBodyBuffer(b []byte) {
	if b != nil && cap(b) <= maxPooledBody {
		b = b[:0]
		bodyBuffers.Put(&b)
	}
}

// filePart is the content of one request of a file change: the whole file, or one chunk.
type filePart struct {
	content []byte // valid until emit returns
	how     contentKind
	chunk   *webhook.Chunk
}

// wholeContent reads and checks the content of fc, a file sent in one request.
func (c *Client) wholeContent(fc FileChange) ([]byte, error) {
	if fc.Content != nil {
		if err := checkWhole(fc.Content, fc.Size, fc.SHA); err != nil {
			return nil, err
		}
		return fc.Content, nil
	}
	rc, err := fc.Open()
	if err != nil {
		return nil, fmt.Errorf("open content: %w", err)
	}
	defer func() { _ = rc.Close() }()
	return readWhole(rc, fc.Size, fc.SHA)
}

// wholePart is the part of a file sent in one request: text as is, anything else base64. A
// cached verdict spares a second scan of content whose sha was just checked.
func wholePart(b []byte, binary *bool) filePart {
	text := binary != nil && !*binary || binary == nil && IsText(b)
	if text {
		return filePart{content: b, how: contentText}
	}
	return filePart{content: b, how: contentBase64}
}

// DeliverDelete sends the delete of d.Path.
func (c *Client) DeliverDelete(ctx context.Context, t Target, repo webhook.Repository, commitSHA string, d Deletion) error {
	switch {
	case d.Path == "":
		return errors.New("deletion without a path")
	case d.DeliveryID == "":
		return fmt.Errorf("delete %s: no delivery id", d.Path)
	}
	at := c.opts.Now()
	body, err := Marshal(webhook.DeleteEvent{
		Repository: repo,
		File:       webhook.DeletedFile{Path: d.Path, SHA: d.SHA},
		CommitSHA:  commitSHA,
		Timestamp:  webhook.FormatTimestamp(at),
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", d.Path, err)
	}
	if err := c.send(ctx, t, webhook.EndpointDelete, body, d.DeliveryID, at); err != nil {
		return fmt.Errorf("delete %s: %w", d.Path, err)
	}
	return nil
}

// SendSyncFailed sends ev to the app's sync_failed endpoint. An empty ev.Event is set to
// "sync_failed" and an empty ev.Timestamp to the time of sending.
func (c *Client) SendSyncFailed(ctx context.Context, t Target, ev webhook.SyncFailedEvent, deliveryID string) error {
	at := c.opts.Now()
	if ev.Event == "" {
		ev.Event = webhook.EndpointSyncFailed
	}
	if ev.Timestamp == "" {
		ev.Timestamp = webhook.FormatTimestamp(at)
	}
	body, err := Marshal(ev)
	if err != nil {
		return fmt.Errorf("sync_failed: %w", err)
	}
	if err := c.send(ctx, t, webhook.EndpointSyncFailed, body, deliveryID, at); err != nil {
		return fmt.Errorf("sync_failed: %w", err)
	}
	return nil
}
