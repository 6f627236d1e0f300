package delivery

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// A verdict from the blob cache gives the same bodies as one computed from the content, and it
// is the one used (no second scan): a cached "binary" sends even plain ASCII as base64.
func TestCachedVerdict(t *testing.T) {
	repo := testRepo
	yes, no := true, false
	tests := []struct {
		name    string
		content []byte
		cached  *bool
		base64  bool
	}{
		{"text, no cache", []byte("hello <&> \u2028 🎉\n"), nil, false},
		{"text, cached text", []byte("hello <&> \u2028 🎉\n"), &no, false},
		{"binary, no cache", []byte("a\x00b\xff"), nil, true},
		{"binary, cached binary", []byte("a\x00b\xff"), &yes, true},
		{"ascii, cached binary wins", []byte("plain"), &yes, true},
	}
	var bodies = map[string][]byte{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := newReceiver(t, nil)
			c := newTestClient(t, ClientOptions{})
			sum := sha256.Sum256(tt.content)
			err := c.DeliverFile(privateCtx(t), rv.target(), repo, "c0ffee", FileChange{Kind: Create, Path: "f",
				SHA: hex.EncodeToString(sum[:]), Size: int64(len(tt.content)), Content: tt.content,
				DeliveryID: "dlv_1", Binary: tt.cached})
			if err != nil {
				t.Fatal(err)
			}
			body := rv.requests()[0].Body
			if got := bytes.Contains(body, []byte(`"content_encoding":"base64"`)); got != tt.base64 {
				t.Fatalf("base64 = %v, want %v: %s", got, tt.base64, body)
			}
			bodies[tt.name] = body
		})
	}
	for _, pair := range [][2]string{{"text, no cache", "text, cached text"}, {"binary, no cache", "binary, cached binary"}} {
		if !bytes.Equal(bodies[pair[0]], bodies[pair[1]]) {
			t.Errorf("%s and %s give different bodies:\n%s\n%s", pair[0], pair[1], bodies[pair[0]], bodies[pair[1]])
		}
	}
	// A cached verdict never lets content through that does not match its sha.
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{})
	err := c.DeliverFile(privateCtx(t), rv.target(), repo, "c0ffee", FileChange{Kind: Create, Path: "f",
		SHA: strings.Repeat("0", 64), Size: 5, Content: []byte("plain"), DeliveryID: "dlv_2", Binary: &no})
	if err == nil || len(rv.requests()) != 0 {
		t.Fatalf("mismatching content was sent (err %v, %d requests)", err, len(rv.requests()))
	}
}
