package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// SignaturePrefix starts every X-Docora-Signature value.
const SignaturePrefix = "sha256="

// Sign returns the X-Docora-Signature value for body sent at timestamp (unix seconds):
// "sha256=" + lowercase hex HMAC-SHA256(key, "<timestamp>.<body>").
func Sign(key []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return SignaturePrefix + hex.EncodeToString(m.Sum(nil))
}
