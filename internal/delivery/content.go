package delivery

import (
	"bytes"
	"unicode/utf8"
)

// IsText reports whether b is sent as text: valid UTF-8 without a NUL byte (SPEC §6).
// Anything else is binary and sent base64-encoded.
func IsText(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}
