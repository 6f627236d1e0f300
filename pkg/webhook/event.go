package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Errors about payloads and their content.
var (
	// ErrUnknownEndpoint: Parse was given an endpoint other than the four of the contract.
	ErrUnknownEndpoint = errors.New("webhook: unknown endpoint")
	// ErrInvalidPayload: the body is not JSON, or lacks or garbles a field the contract requires.
	ErrInvalidPayload = errors.New("webhook: invalid payload")
	// ErrSizeMismatch: the decoded content is not File.Size bytes long.
	ErrSizeMismatch = errors.New("webhook: content size does not match size")
	// ErrSHAMismatch: the SHA-256 of the decoded content is not File.SHA.
	ErrSHAMismatch = errors.New("webhook: content sha256 does not match sha")
)

// Event is one of *CreateEvent, *UpdateEvent, *DeleteEvent or *SyncFailedEvent, as returned by
// Parse.
type Event interface {
	// Endpoint is the endpoint the event is posted to: EndpointCreate, EndpointUpdate, ...
	Endpoint() string
	isEvent()
}

// Endpoint returns EndpointCreate.
func (*CreateEvent) Endpoint() string { return EndpointCreate }

// Endpoint returns EndpointUpdate.
func (*UpdateEvent) Endpoint() string { return EndpointUpdate }

// Endpoint returns EndpointDelete.
func (*DeleteEvent) Endpoint() string { return EndpointDelete }

// Endpoint returns EndpointSyncFailed.
func (*SyncFailedEvent) Endpoint() string { return EndpointSyncFailed }

func (*CreateEvent) isEvent()     {}
func (*UpdateEvent) isEvent()     {}
func (*DeleteEvent) isEvent()     {}
func (*SyncFailedEvent) isEvent() {}

// Parse decodes the body of a webhook posted to endpoint ("create", "update", "delete" or
// "sync_failed"; a leading "/" is ignored) and checks its structure. Verify the body first:
// Parse trusts nothing but does not authenticate.
//
// The result is a *CreateEvent, *UpdateEvent, *DeleteEvent or *SyncFailedEvent. Unknown fields
// are ignored, so receivers keep working when docora adds fields. Parse checks that a file has a
// non-empty path, a 64-digit lowercase hex sha, a non-negative size, a known content encoding
// and a coherent chunk (non-empty id, 0 <= index < total, 0 <= offset <= size); it does not
// decode content (File.Bytes and Reassembler do) nor judge whether a path is safe to write to.
// Errors wrap ErrUnknownEndpoint or ErrInvalidPayload.
func Parse(endpoint string, body []byte) (Event, error) {
	var ev Event
	switch strings.TrimPrefix(endpoint, "/") {
	case EndpointCreate:
		ev = new(CreateEvent)
	case EndpointUpdate:
		ev = new(UpdateEvent)
	case EndpointDelete:
		ev = new(DeleteEvent)
	case EndpointSyncFailed:
		ev = new(SyncFailedEvent)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownEndpoint, endpoint)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrInvalidPayload)
	}
	if err := json.Unmarshal(body, ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	var err error
	switch e := ev.(type) {
	case *CreateEvent:
		err = e.File.validate()
	case *UpdateEvent:
		err = e.File.validate()
	case *DeleteEvent:
		err = validateFileRef(e.File.Path, e.File.SHA)
	case *SyncFailedEvent:
		if e.Event != "" && e.Event != EndpointSyncFailed {
			err = fmt.Errorf("%w: event is %q, want %q", ErrInvalidPayload, e.Event, EndpointSyncFailed)
		}
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

func validateFileRef(path, sha string) error {
	if path == "" {
		return fmt.Errorf("%w: file.path is empty", ErrInvalidPayload)
	}
	if !isSHA256Hex(sha) {
		return fmt.Errorf("%w: file.sha is not 64 lowercase hex digits", ErrInvalidPayload)
	}
	return nil
}

// validate checks the structure of a create/update file, not its content.
func (f *File) validate() error {
	if err := validateFileRef(f.Path, f.SHA); err != nil {
		return err
	}
	if f.Size < 0 {
		return fmt.Errorf("%w: file.size is negative", ErrInvalidPayload)
	}
	if f.ContentEncoding != "" && f.ContentEncoding != EncodingBase64 {
		return fmt.Errorf("%w: unknown file.content_encoding %q", ErrInvalidPayload, f.ContentEncoding)
	}
	if c := f.Chunk; c != nil {
		switch {
		case c.ID == "":
			return fmt.Errorf("%w: file.chunk.id is empty", ErrInvalidPayload)
		case c.Total < 1:
			return fmt.Errorf("%w: file.chunk.total is %d", ErrInvalidPayload, c.Total)
		case c.Index < 0 || c.Index >= c.Total:
			return fmt.Errorf("%w: file.chunk.index %d not in [0, %d)", ErrInvalidPayload, c.Index, c.Total)
		case c.Offset < 0 || c.Offset > f.Size:
			return fmt.Errorf("%w: file.chunk.offset %d not in [0, size %d]", ErrInvalidPayload, c.Offset, f.Size)
		}
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Bytes returns the decoded content carried by this request: the text itself, or the bytes of
// the base64 text when ContentEncoding is "base64".
//
// For a whole file (Chunk == nil) Bytes also checks that the content is Size bytes long and
// that its SHA-256 is SHA, returning ErrSizeMismatch or ErrSHAMismatch otherwise, so the bytes
// it returns are the file docora sent. For a chunk it returns just this chunk's bytes; use a
// Reassembler to put the file together and verify it.
func (f File) Bytes() ([]byte, error) {
	b, err := f.decodeContent()
	if err != nil {
		return nil, err
	}
	if f.Chunk == nil {
		if err := checkContent(b, f.Size, f.SHA); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (f File) decodeContent() ([]byte, error) {
	switch f.ContentEncoding {
	case "":
		return []byte(f.Content), nil
	case EncodingBase64:
		b, err := base64.StdEncoding.Strict().DecodeString(f.Content)
		if err != nil {
			return nil, fmt.Errorf("%w: file.content is not valid base64: %v", ErrInvalidPayload, err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("%w: unknown file.content_encoding %q", ErrInvalidPayload, f.ContentEncoding)
	}
}

func checkContent(b []byte, size int64, sha string) error {
	if int64(len(b)) != size {
		return fmt.Errorf("%w: got %d bytes, size says %d", ErrSizeMismatch, len(b), size)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
		return fmt.Errorf("%w: got %x", ErrSHAMismatch, sum)
	}
	return nil
}
