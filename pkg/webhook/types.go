// Package webhook is the public contract between docora and the applications that receive its
// webhooks: the payload types, signature verification and the reassembly of chunked files.
//
// A receiver verifies the raw request body with VerifyRequest (or Verify), decodes it with
// Parse, and passes the File of every create and update through a Reassembler, which hands back
// the whole file, checked against its size and SHA-256, once its last chunk is in. The package
// uses only the standard library. docs/webhooks.md in the docora repository describes the wire
// contract in full.
//
// Field order in the structs below is the wire order: docora encodes these types and receivers
// may rely on it.
package webhook

import "time"

// Endpoints, relative to an app's base URL.
const (
	EndpointCreate     = "create"
	EndpointUpdate     = "update"
	EndpointDelete     = "delete"
	EndpointSyncFailed = "sync_failed"
)

// Request headers set by docora on every webhook.
const (
	HeaderAppID     = "X-Docora-App-Id"
	HeaderTimestamp = "X-Docora-Timestamp"
	HeaderSignature = "X-Docora-Signature"
	HeaderDelivery  = "X-Docora-Delivery"
)

// EncodingBase64 is the value of File.ContentEncoding for base64 content.
const EncodingBase64 = "base64"

// TimestampLayout is the layout of every "timestamp" field: ISO-8601 UTC with milliseconds.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// FormatTimestamp formats t as a payload timestamp.
func FormatTimestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// Repository identifies the watched repository in every payload.
type Repository struct {
	RepositoryID string `json:"repository_id"`
	GitHubURL    string `json:"github_url"`
	Owner        string `json:"owner"`
	Name         string `json:"name"`
}

// Chunk describes one part of a file larger than the chunk threshold.
type Chunk struct {
	ID     string `json:"id"`
	Index  int    `json:"index"`
	Total  int    `json:"total"`
	Offset int64  `json:"offset"` // byte offset of this chunk in the decoded file
}

// File is the file of a create or update event.
type File struct {
	Path            string `json:"path"`
	SHA             string `json:"sha"` // SHA-256 of the whole file, lowercase hex
	Size            int64  `json:"size"`
	Content         string `json:"content"`
	ContentEncoding string `json:"content_encoding,omitempty"`
	Chunk           *Chunk `json:"chunk,omitempty"`
}

// CreateEvent is the body of POST {base_url}/create.
type CreateEvent struct {
	Repository Repository `json:"repository"`
	File       File       `json:"file"`
	CommitSHA  string     `json:"commit_sha"`
	Timestamp  string     `json:"timestamp"`
}

// UpdateEvent is the body of POST {base_url}/update.
type UpdateEvent struct {
	Repository  Repository `json:"repository"`
	File        File       `json:"file"`
	PreviousSHA string     `json:"previous_sha"`
	CommitSHA   string     `json:"commit_sha"`
	Timestamp   string     `json:"timestamp"`
}

// DeletedFile is the file of a delete event: its path and the last sha the app received.
type DeletedFile struct {
	Path string `json:"path"`
	SHA  string `json:"sha"`
}

// DeleteEvent is the body of POST {base_url}/delete.
type DeleteEvent struct {
	Repository Repository  `json:"repository"`
	File       DeletedFile `json:"file"`
	CommitSHA  string      `json:"commit_sha"`
	Timestamp  string      `json:"timestamp"`
}

// SyncError describes why a repository could not be synced.
type SyncError struct {
	Type    string `json:"type"` // "git_failure"
	Message string `json:"message"`
}

// CircuitBreaker is the state of the repository's circuit breaker when it opened.
type CircuitBreaker struct {
	Status              string `json:"status"` // "open"
	ConsecutiveFailures int    `json:"consecutive_failures"`
	Threshold           int    `json:"threshold"`
	CooldownUntil       string `json:"cooldown_until"`
}

// SyncFailedEvent is the body of POST {base_url}/sync_failed.
type SyncFailedEvent struct {
	Event          string         `json:"event"` // "sync_failed"
	Repository     Repository     `json:"repository"`
	Error          SyncError      `json:"error"`
	CircuitBreaker CircuitBreaker `json:"circuit_breaker"`
	RetryCount     int            `json:"retry_count"`
	Timestamp      string         `json:"timestamp"`
}
