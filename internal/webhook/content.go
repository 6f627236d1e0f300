package webhook

import (
	"bytes"
	"encoding/base64"
	"unicode/utf8"

	"github.com/docora/docora/pkg/webhook"
)

// IsText reports whether b is sent as text: valid UTF-8 without a NUL byte (SPEC §6).
// Anything else is binary and sent base64-encoded.
func IsText(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// encodeContent returns the content and content_encoding fields for a whole, unchunked file.
func encodeContent(b []byte) (content, encoding string) {
	if IsText(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), webhook.EncodingBase64
}
