package webhook_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/pkg/webhook"
)

var (
	testKey  = []byte("0123456789abcdef-test-key")
	testNow  = time.Unix(1768132800, 0) // 2026-01-11T12:00:00Z
	testTS   = strconv.FormatInt(testNow.Unix(), 10)
	testBody = []byte(`{"hello":"world"}`)
)

// The expected value was computed independently, with Python's hmac and Node's crypto.
func TestSignKnownVector(t *testing.T) {
	got := webhook.Sign(testKey, "1768132800", testBody)
	want := "sha256=d7f964c6c0f73bec5b5fbeab029298a4f0221bda78f68dcdf5afd9fe393db714"
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	good := webhook.Sign(testKey, testTS, testBody)
	ts := func(d time.Duration) string { return strconv.FormatInt(testNow.Add(d).Unix(), 10) }
	signedAt := func(d time.Duration) (string, string) {
		return ts(d), webhook.Sign(testKey, ts(d), testBody)
	}
	staleTS, staleSig := signedAt(-301 * time.Second)
	futureTS, futureSig := signedAt(301 * time.Second)
	edgeTS, edgeSig := signedAt(-300 * time.Second)
	edgeFutureTS, edgeFutureSig := signedAt(300 * time.Second)
	hourTS, hourSig := signedAt(-time.Hour)

	tests := []struct {
		name      string
		key       []byte
		timestamp string
		signature string
		body      []byte
		tolerance time.Duration
		want      error
	}{
		{name: "good", timestamp: testTS, signature: good},
		{name: "at the past edge", timestamp: edgeTS, signature: edgeSig},
		{name: "at the future edge", timestamp: edgeFutureTS, signature: edgeFutureSig},
		{name: "wider tolerance", timestamp: hourTS, signature: hourSig, tolerance: 2 * time.Hour},
		{name: "wrong key", key: []byte("another-key-0123456"), timestamp: testTS, signature: good, want: webhook.ErrInvalidSignature},
		{name: "empty key", key: []byte{}, timestamp: testTS, signature: good, want: webhook.ErrInvalidSignature},
		{name: "tampered body", timestamp: testTS, signature: good, body: []byte(`{"hello":"World"}`), want: webhook.ErrInvalidSignature},
		{name: "body with trailing newline", timestamp: testTS, signature: good, body: []byte("{\"hello\":\"world\"}\n"), want: webhook.ErrInvalidSignature},
		{name: "timestamp changed", timestamp: ts(time.Second), signature: good, want: webhook.ErrInvalidSignature},
		{name: "missing signature", timestamp: testTS, signature: "", want: webhook.ErrMissingSignature},
		{name: "no prefix", timestamp: testTS, signature: strings.TrimPrefix(good, "sha256="), want: webhook.ErrInvalidSignature},
		{name: "other algorithm", timestamp: testTS, signature: "sha1=" + strings.TrimPrefix(good, "sha256="), want: webhook.ErrInvalidSignature},
		{name: "short hex", timestamp: testTS, signature: good[:len(good)-2], want: webhook.ErrInvalidSignature},
		{name: "not hex", timestamp: testTS, signature: good[:len(good)-1] + "z", want: webhook.ErrInvalidSignature},
		{name: "garbage", timestamp: testTS, signature: "definitely not a signature", want: webhook.ErrInvalidSignature},
		{name: "stale", timestamp: staleTS, signature: staleSig, want: webhook.ErrStaleTimestamp},
		{name: "future", timestamp: futureTS, signature: futureSig, want: webhook.ErrStaleTimestamp},
		{name: "missing timestamp", timestamp: "", signature: good, want: webhook.ErrMalformedTimestamp},
		{name: "words", timestamp: "yesterday", signature: good, want: webhook.ErrMalformedTimestamp},
		{name: "negative", timestamp: "-" + testTS, signature: good, want: webhook.ErrMalformedTimestamp},
		{name: "plus sign", timestamp: "+" + testTS, signature: good, want: webhook.ErrMalformedTimestamp},
		{name: "fraction", timestamp: testTS + ".5", signature: good, want: webhook.ErrMalformedTimestamp},
		{name: "milliseconds overflow", timestamp: "99999999999999999999", signature: good, want: webhook.ErrMalformedTimestamp},
		{name: "space", timestamp: " " + testTS, signature: good, want: webhook.ErrMalformedTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := testKey
			if tt.key != nil {
				key = tt.key
			}
			body := testBody
			if tt.body != nil {
				body = tt.body
			}
			err := webhook.Verify(key, tt.timestamp, tt.signature, body, testNow, tt.tolerance)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRequest(t *testing.T) {
	clock := webhook.WithClock(func() time.Time { return testNow })
	newReq := func(body io.Reader, sign bool) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/create", body)
		if sign {
			r.Header.Set(webhook.HeaderTimestamp, testTS)
			r.Header.Set(webhook.HeaderSignature, webhook.Sign(testKey, testTS, testBody))
		}
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
		opts []webhook.VerifyOption
		want error
	}{
		{name: "good", req: newReq(bytes.NewReader(testBody), true), opts: []webhook.VerifyOption{clock}},
		{name: "exactly at the limit", req: newReq(bytes.NewReader(testBody), true),
			opts: []webhook.VerifyOption{clock, webhook.WithMaxBodyBytes(int64(len(testBody)))}},
		{name: "unsigned", req: newReq(bytes.NewReader(testBody), false), opts: []webhook.VerifyOption{clock}, want: webhook.ErrMissingSignature},
		{name: "default clock: stale", req: newReq(bytes.NewReader(testBody), true), want: webhook.ErrStaleTimestamp},
		{name: "wide tolerance", req: newReq(bytes.NewReader(testBody), true),
			opts: []webhook.VerifyOption{webhook.WithTolerance(100 * 365 * 24 * time.Hour)}},
		{name: "too large by content length", req: newReq(bytes.NewReader(testBody), true),
			opts: []webhook.VerifyOption{clock, webhook.WithMaxBodyBytes(4)}, want: webhook.ErrBodyTooLarge},
		{name: "too large, length unknown", req: newReq(io.MultiReader(bytes.NewReader(testBody)), true),
			opts: []webhook.VerifyOption{clock, webhook.WithMaxBodyBytes(int64(len(testBody) - 1))}, want: webhook.ErrBodyTooLarge},
		{name: "other body", req: newReq(strings.NewReader(`{"hello":"there"}`), true), opts: []webhook.VerifyOption{clock}, want: webhook.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := webhook.VerifyRequest(tt.req, testKey, tt.opts...)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyRequest = %v, want %v", err, tt.want)
			}
			if err == nil && !bytes.Equal(body, testBody) {
				t.Fatalf("body = %q, want %q", body, testBody)
			}
		})
	}
}
