package delivery

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/docora/docora/pkg/webhook"
)

// The reference encoding of file changes: the file objects of each request, encoded by Marshal
// (encoding/json and the JavaScript fixes). Tests compare the one-pass bodies DeliverFile sends
// with it.

// fileParts reads fc's content and calls emit with the file object of each request, in order.
// (DeliverFile reads the same parts, through PrepareFile and deliverChunked.)
func (c *Client) fileParts(fc FileChange, emit func(webhook.File) error) error {
	return c.parts(fc, func(p filePart) error {
		f := webhook.File{Path: fc.Path, SHA: fc.SHA, Size: fc.Size, Content: string(p.content), Chunk: p.chunk}
		if p.how == contentBase64 {
			f.Content = base64.StdEncoding.EncodeToString(p.content)
		}
		if p.how != contentText {
			f.ContentEncoding = webhook.EncodingBase64
		}
		return emit(f)
	})
}

// parts reads fc's content and calls emit with each request's part, in order.
func (c *Client) parts(fc FileChange, emit func(filePart) error) error {
	if fc.Size <= c.opts.ChunkThreshold {
		b, err := c.wholeContent(fc)
		if err != nil {
			return fmt.Errorf("%s %s: %w", fc.Kind, fc.Path, err)
		}
		return emit(wholePart(b, fc.Binary))
	}
	rc, err := fc.open()
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()

	id := fc.ChunkID
	if id == "" {
		id = ChunkID(fc.DeliveryID)
	}
	err = streamChunkBytes(rc, fc.Size, fc.SHA, c.opts.ChunkSize, func(index, total int, offset int64, raw []byte) error {
		return emit(filePart{content: raw, how: contentBase64,
			chunk: &webhook.Chunk{ID: id, Index: index, Total: total, Offset: offset}})
	})
	if err != nil && !isDeliveryFailure(err) {
		return fmt.Errorf("%s %s: %w", fc.Kind, fc.Path, err)
	}
	return err
}

// isDeliveryFailure reports whether err came out of emit, which already says what failed.
func isDeliveryFailure(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de)
}

// fileBody encodes the request body carrying f.
func fileBody(fc FileChange, repo webhook.Repository, commitSHA string, f webhook.File, at time.Time) ([]byte, error) {
	ts := webhook.FormatTimestamp(at)
	if fc.Kind == Update {
		return Marshal(webhook.UpdateEvent{Repository: repo, File: f, PreviousSHA: fc.PreviousSHA, CommitSHA: commitSHA, Timestamp: ts})
	}
	return Marshal(webhook.CreateEvent{Repository: repo, File: f, CommitSHA: commitSHA, Timestamp: ts})
}
