package delivery

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/docora/docora/internal/netguard"
)

var (
	testKey  = []byte("test-key-0123456789")
	testNow  = time.Date(2026, 1, 11, 12, 0, 0, 0, time.UTC)
	fixedNow = func() time.Time { return testNow }
)

// privateCtx allows loopback receivers and bounds the test.
func privateCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return netguard.WithPolicy(ctx, netguard.Policy{AllowPrivate: true})
}

func newTestClient(t *testing.T, opts ClientOptions) *Client {
	t.Helper()
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	if opts.Version == "" {
		opts.Version = "1.2.3"
	}
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// request is one webhook as a receiver saw it.
type request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	RemoteAddr   string
}

// receiver is a real HTTP server on 127.0.0.1 that records every request and answers with
// respond (200 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []request
	respond func(n int, r request, w http.ResponseWriter) // n counts from 0
}

func newReceiver(t *testing.T, respond func(n int, r request, w http.ResponseWriter)) *receiver {
	t.Helper()
	rv := &receiver{respond: respond}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		req := request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body, RemoteAddr: r.RemoteAddr}
		rv.mu.Lock()
		n := len(rv.reqs)
		rv.reqs = append(rv.reqs, req)
		rv.mu.Unlock()
		if rv.respond != nil {
			rv.respond(n, req, w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rv.Close)
	return rv
}

func (rv *receiver) requests() []request {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]request(nil), rv.reqs...)
}

func (rv *receiver) target() Target {
	return Target{BaseURL: rv.URL, AppID: "app_0123456789abcdef01234567", Key: testKey}
}

// nodeRoundTrip runs JSON.stringify(JSON.parse(body)) in node for every body, in one process.
func nodeRoundTrip(t *testing.T, bodies [][]byte) [][]byte {
	t.Helper()
	node := lookNode(t)
	dir := t.TempDir()
	for i, b := range bodies {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)+".json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const script = `const fs = require("fs"), path = require("path");
const [dir, n] = [process.argv[1], Number(process.argv[2])];
for (let i = 0; i < n; i++) {
  const body = fs.readFileSync(path.join(dir, i + ".json"), "utf8");
  fs.writeFileSync(path.join(dir, i + ".out"), JSON.stringify(JSON.parse(body)));
}`
	runNode(t, node, script, dir, strconv.Itoa(len(bodies)))
	out := make([][]byte, len(bodies))
	for i := range bodies {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(i)+".out"))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func lookNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not on PATH")
	}
	return node
}

func runNode(t *testing.T, node, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"-e", script}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	return string(out)
}

// jsEncode is an independent reference encoder following JSON.stringify's rules, for the
// value a JavaScript receiver would hold after JSON.parse: struct fields in order with their
// json names, omitempty honoured for strings and pointers, integers in decimal, strings
// escaped like QuoteJSONString (only ", \, and control characters; everything else raw).
func jsEncode(v any) string {
	var b strings.Builder
	jsValue(&b, reflect.ValueOf(v))
	return b.String()
}

func jsValue(b *strings.Builder, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("null")
			return
		}
		jsValue(b, v.Elem())
	case reflect.Struct:
		b.WriteByte('{')
		first := true
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if opts == "omitempty" && v.Field(i).IsZero() {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			jsString(b, name)
			b.WriteByte(':')
			jsValue(b, v.Field(i))
		}
		b.WriteByte('}')
	case reflect.String:
		jsString(b, v.String())
	case reflect.Int, reflect.Int64, reflect.Int32:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	default:
		panic(fmt.Sprintf("jsEncode: unsupported kind %s", v.Kind()))
	}
}

func jsString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s { // an invalid byte reads as U+FFFD, as JSON.parse of Go's output gives
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// validString is what a string becomes after a JSON round trip: each invalid byte becomes U+FFFD.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}
