package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a request's X-Docora-Timestamp may lie from the receiver's clock,
// in either direction, before Verify rejects it with ErrStaleTimestamp.
const DefaultTolerance = 300 * time.Second

// DefaultMaxBodyBytes is the body size limit of VerifyRequest. It leaves room for a whole
// unchunked file at docora's default 1 MiB chunk threshold, even a text file whose every byte
// JSON has to escape as \u00XX. Raise it when docora runs with a larger threshold.
const DefaultMaxBodyBytes int64 = 16 << 20

// SignaturePrefix starts every X-Docora-Signature value.
const SignaturePrefix = "sha256="

// Errors returned by Verify and VerifyRequest. They are distinct so that a receiver can log why
// a request was refused; all of them should be answered with 401, except ErrBodyTooLarge (413).
var (
	// ErrMissingSignature: the request carries no X-Docora-Signature.
	ErrMissingSignature = errors.New("webhook: missing signature")
	// ErrInvalidSignature: the signature is garbled, or is not the HMAC of this body and timestamp
	// under this key.
	ErrInvalidSignature = errors.New("webhook: invalid signature")
	// ErrMalformedTimestamp: X-Docora-Timestamp is missing or is not unix seconds.
	ErrMalformedTimestamp = errors.New("webhook: malformed timestamp")
	// ErrStaleTimestamp: the timestamp is further from now than the tolerance, in the past or
	// in the future. The signature was valid; the request may be a replay.
	ErrStaleTimestamp = errors.New("webhook: timestamp outside tolerance")
	// ErrBodyTooLarge: the request body exceeds the size limit of VerifyRequest.
	ErrBodyTooLarge = errors.New("webhook: request body too large")
)

// Sign returns the X-Docora-Signature value of body signed at timestamp (unix seconds, as sent
// in X-Docora-Timestamp): "sha256=" followed by the lowercase hex HMAC-SHA256 under key of
// timestamp + "." + body.
func Sign(key []byte, timestamp string, body []byte) string {
	return SignaturePrefix + hex.EncodeToString(mac(key, timestamp, body))
}

func mac(key []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks that signature (the X-Docora-Signature header) is the signature of body at
// timestamp (the X-Docora-Timestamp header) under key, and that timestamp lies within tolerance
// of now, in either direction. A tolerance of zero or less means DefaultTolerance.
//
// body must be the raw request body, byte for byte: re-encoding a parsed payload does not in
// general reproduce it. The comparison takes constant time. The returned error wraps one of
// ErrMissingSignature, ErrMalformedTimestamp, ErrInvalidSignature or ErrStaleTimestamp; the
// timestamp's age is checked only once the signature is known to be good.
func Verify(key []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if signature == "" {
		return ErrMissingSignature
	}
	sec, err := parseUnixSeconds(timestamp)
	if err != nil {
		return err
	}
	if len(key) == 0 {
		return fmt.Errorf("%w: no verification key configured", ErrInvalidSignature)
	}
	hexSum, ok := strings.CutPrefix(signature, SignaturePrefix)
	if !ok {
		return fmt.Errorf("%w: want %q followed by hex", ErrInvalidSignature, SignaturePrefix)
	}
	if len(hexSum) != hex.EncodedLen(sha256.Size) {
		return fmt.Errorf("%w: want %d hex digits", ErrInvalidSignature, hex.EncodedLen(sha256.Size))
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrInvalidSignature)
	}
	if !hmac.Equal(got, mac(key, timestamp, body)) {
		return ErrInvalidSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed at %s, now %s, tolerance %s", ErrStaleTimestamp,
			time.Unix(sec, 0).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), tolerance)
	}
	return nil
}

// parseUnixSeconds accepts only decimal digits: no sign, no spaces, no fraction.
func parseUnixSeconds(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: missing %s", ErrMalformedTimestamp, HeaderTimestamp)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: want unix seconds", ErrMalformedTimestamp)
		}
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: want unix seconds", ErrMalformedTimestamp)
	}
	return sec, nil
}

// VerifyOption changes how VerifyRequest verifies a request.
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	tolerance time.Duration
	maxBody   int64
	now       func() time.Time
}

// WithTolerance sets the timestamp tolerance (default DefaultTolerance).
func WithTolerance(d time.Duration) VerifyOption {
	return func(c *verifyConfig) { c.tolerance = d }
}

// WithMaxBodyBytes sets the body size limit (default DefaultMaxBodyBytes). A larger body is
// refused with ErrBodyTooLarge.
func WithMaxBodyBytes(n int64) VerifyOption {
	return func(c *verifyConfig) { c.maxBody = n }
}

// WithClock sets the clock the timestamp is checked against (default time.Now).
func WithClock(now func() time.Time) VerifyOption {
	return func(c *verifyConfig) { c.now = now }
}

// VerifyRequest reads r's body, at most the size limit, and verifies it with Verify against the
// request's X-Docora-Timestamp and X-Docora-Signature headers. It returns the raw body, which is
// what a receiver should then Parse. The body is consumed; the caller (or net/http) closes it.
//
// Errors are those of Verify, ErrBodyTooLarge, or a wrapped read error.
func VerifyRequest(r *http.Request, key []byte, opts ...VerifyOption) ([]byte, error) {
	c := verifyConfig{tolerance: DefaultTolerance, maxBody: DefaultMaxBodyBytes, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	signature := r.Header.Get(HeaderSignature)
	if signature == "" {
		return nil, ErrMissingSignature
	}
	if r.ContentLength > c.maxBody {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, r.ContentLength, c.maxBody)
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, c.maxBody+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: limit %d", ErrBodyTooLarge, tooLarge.Limit)
		}
		return nil, fmt.Errorf("webhook: read request body: %w", err)
	}
	if int64(len(body)) > c.maxBody {
		return nil, fmt.Errorf("%w: limit %d", ErrBodyTooLarge, c.maxBody)
	}
	if err := Verify(key, r.Header.Get(HeaderTimestamp), signature, body, c.now(), c.tolerance); err != nil {
		return nil, err
	}
	return body, nil
}
