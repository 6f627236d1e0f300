package receive_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/cli"
	"github.com/docora/docora/internal/output"
	"github.com/docora/docora/pkg/webhook"
)

const testKey = "receive-test-key-0123456789"

var repo = webhook.Repository{RepositoryID: "repo_0123456789abcdef01234567", GitHubURL: "https://github.com/acme/docs",
	Owner: "acme", Name: "docs"}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// docora runs the CLI in-process with a fresh home and returns its exit code and output.
func docora(t *testing.T, ctx context.Context, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	code := cli.Run(ctx, args, &output.IO{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, env(t))
	return code, out.String(), errOut.String()
}

func env(t *testing.T) func(string) string {
	home := filepath.Join(t.TempDir(), "home")
	return func(k string) string {
		switch k {
		case "DOCORA_HOME":
			return home
		case "NO_COLOR":
			return "1"
		case "TEST_RECEIVE_KEY":
			return testKey
		}
		return ""
	}
}

// receiver is a `docora receive` running in-process.
type receiver struct {
	t      *testing.T
	url    string
	dir    string
	home   string
	stderr *syncBuffer
	stop   context.CancelFunc
	code   chan int
	client *http.Client
}

var listening = regexp.MustCompile(`listening on (https?://[^,\s]+),`)

// startReceive runs `docora receive --addr 127.0.0.1:0 --dir DIR args...` until the test ends.
func startReceive(t *testing.T, args ...string) *receiver {
	t.Helper()
	base := t.TempDir()
	r := &receiver{t: t, dir: filepath.Join(base, "mirror"), home: filepath.Join(base, "home"), stderr: &syncBuffer{},
		code: make(chan int, 1), client: &http.Client{Timeout: 10 * time.Second}}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	getenv := func(k string) string {
		switch k {
		case "DOCORA_HOME":
			return r.home
		case "TEST_RECEIVE_KEY":
			return testKey
		}
		return ""
	}
	argv := append([]string{"receive", "--addr", "127.0.0.1:0", "--dir", r.dir}, args...)
	go func() {
		r.code <- cli.Run(ctx, argv, &output.IO{In: strings.NewReader(""), Out: &syncBuffer{}, ErrOut: r.stderr}, getenv)
	}()
	t.Cleanup(func() { r.shutdown() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listening.FindStringSubmatch(r.stderr.String()); m != nil {
			r.url = m[1]
			return r
		}
		select {
		case code := <-r.code:
			t.Fatalf("docora receive exited with %d: %s", code, r.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("docora receive did not start: %s", r.stderr.String())
		}
	}
}

// shutdown stops the receiver as SIGINT would and returns its exit code.
func (r *receiver) shutdown() int {
	r.stop()
	select {
	case code := <-r.code:
		r.code <- code // later calls see it too
		return code
	case <-time.After(20 * time.Second):
		r.t.Fatal("docora receive did not stop")
		return -1
	}
}

type response struct {
	code int
	body map[string]any
}

// post sends body to endpoint signed with key at time at; edit may change the request.
func (r *receiver) post(endpoint string, body []byte, key string, at time.Time, delivery string) response {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+"/"+endpoint, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	if key != "" {
		req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(key), ts, body))
	}
	if delivery != "" {
		req.Header.Set(webhook.HeaderDelivery, delivery)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	res := response{code: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&res.body); err != nil {
		r.t.Fatalf("POST /%s: %d, body is not JSON: %v", endpoint, resp.StatusCode, err)
	}
	return res
}

func (r *receiver) send(endpoint string, body []byte) response {
	r.t.Helper()
	return r.post(endpoint, body, testKey, time.Now(), "")
}

func (r *receiver) mustSend(endpoint string, body []byte) response {
	r.t.Helper()
	res := r.send(endpoint, body)
	if res.code != http.StatusOK {
		r.t.Fatalf("POST /%s: %d %v", endpoint, res.code, res.body)
	}
	return res
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func textFile(path, content string) webhook.File {
	return webhook.File{Path: path, SHA: sha([]byte(content)), Size: int64(len(content)), Content: content}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func createBody(t *testing.T, f webhook.File) []byte {
	return marshal(t, webhook.CreateEvent{Repository: repo, File: f, CommitSHA: strings.Repeat("a", 40),
		Timestamp: webhook.FormatTimestamp(time.Now())})
}

func deleteBody(t *testing.T, path, sum string) []byte {
	return marshal(t, webhook.DeleteEvent{Repository: repo, File: webhook.DeletedFile{Path: path, SHA: sum},
		CommitSHA: strings.Repeat("b", 40), Timestamp: webhook.FormatTimestamp(time.Now())})
}

// chunks splits content the way docora does: base64 text cut every size characters.
func chunks(path string, content []byte, size int, id string) []webhook.File {
	enc := base64.StdEncoding.EncodeToString(content)
	total := (len(enc) + size - 1) / size
	var out []webhook.File
	for i := 0; i < total; i++ {
		part := enc[i*size : min(len(enc), (i+1)*size)]
		out = append(out, webhook.File{Path: path, SHA: sha(content), Size: int64(len(content)), Content: part,
			ContentEncoding: webhook.EncodingBase64,
			Chunk:           &webhook.Chunk{ID: id, Index: i, Total: total, Offset: int64(i * size / 4 * 3)}})
	}
	return out
}

func readMirror(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return got
}

func writeKey(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReceiveMirrors drives a real `docora receive` through creates, a chunked file, an
// update, a re-delivery and a delete, then stops it as SIGINT would.
func TestReceiveMirrors(t *testing.T) {
	// The key file ends with CRLF: one trailing newline is not part of the key.
	r := startReceive(t, "--client-auth-key-file", writeKey(t, testKey+"\r\n"))

	r.mustSend("create", createBody(t, textFile("docs/a b.md", "ünï <&> \u2028 🎉\n")))
	empty := r.mustSend("create", createBody(t, textFile("empty.txt", "")))
	if empty.body["status"] != "applied" {
		t.Fatalf("empty file: %v", empty.body)
	}
	big := bytes.Repeat([]byte("0123456789abcdef\x00"), 1000) // 17000 bytes, binary
	parts := chunks("data/big.bin", big, 4096, "8c1d7f0e-2d7c-4d4e-9d3a-0c1f5f6a7b8c")
	for i, f := range parts {
		res := r.mustSend("create", createBody(t, f))
		want := "chunk_received"
		if i == len(parts)-1 {
			want = "applied"
		}
		if res.body["status"] != want {
			t.Fatalf("chunk %d: %v", i, res.body)
		}
	}
	update := marshal(t, webhook.UpdateEvent{Repository: repo, File: textFile("empty.txt", "now full\n"), PreviousSHA: sha(nil),
		CommitSHA: strings.Repeat("c", 40), Timestamp: webhook.FormatTimestamp(time.Now())})
	if res := r.post("update", update, testKey, time.Now(), "dlv_1"); res.code != 200 || res.body["status"] != "applied" {
		t.Fatalf("update: %d %v", res.code, res.body)
	}
	if res := r.post("update", update, testKey, time.Now(), "dlv_1"); res.code != 200 || res.body["status"] != "duplicate" {
		t.Fatalf("re-delivered update: %d %v", res.code, res.body)
	}
	r.mustSend("delete", deleteBody(t, "docs/a b.md", sha([]byte("ünï <&> \u2028 🎉\n"))))
	if res := r.mustSend("delete", deleteBody(t, "docs/a b.md", sha([]byte("x")))); res.body["status"] != "absent" {
		t.Fatalf("second delete: %v", res.body)
	}
	failed := marshal(t, webhook.SyncFailedEvent{Event: "sync_failed", Repository: repo,
		Error: webhook.SyncError{Type: "git_failure", Message: "fetch: host unreachable"}})
	if res := r.mustSend("sync_failed", failed); res.body["status"] != "logged" {
		t.Fatalf("sync_failed: %v", res.body)
	}

	got := readMirror(t, r.dir)
	if len(got) != 2 || got["empty.txt"] != "now full\n" || got["data/big.bin"] != string(big) {
		t.Fatalf("mirror: %d files %q", len(got), keysOf(got))
	}
	if _, err := os.Stat(filepath.Join(r.dir, "docs")); !os.IsNotExist(err) {
		t.Fatalf("the emptied directory docs/ is still there: %v", err)
	}
	if code := r.shutdown(); code != 0 {
		t.Fatalf("exit code %d: %s", code, r.stderr.String())
	}
	logs := r.stderr.String()
	if !strings.Contains(logs, "docora receive: stopped") || !strings.Contains(logs, "fetch: host unreachable") {
		t.Fatalf("stderr: %s", logs)
	}
	if strings.Contains(logs, testKey) {
		t.Fatal("the key appears in the logs")
	}
	// The receiver needs no store: nothing was created in the home.
	if _, err := os.Stat(r.home); !os.IsNotExist(err) {
		t.Fatalf("receive touched the docora home: %v", err)
	}
}

// TestReceiveRefuses covers what `docora receive` refuses at the HTTP level, and that nothing
// is written then.
func TestReceiveRefuses(t *testing.T) {
	r := startReceive(t, "--client-auth-key-env", "TEST_RECEIVE_KEY", "--tolerance", "60s", "--max-body", "8192")
	// A file outside the mirror that traversal would reach, and one inside.
	outside := filepath.Join(filepath.Dir(r.dir), "outside.txt")
	if err := os.WriteFile(outside, []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.mustSend("create", createBody(t, textFile("keep.txt", "keep\n")))

	good := createBody(t, textFile("new.txt", "new\n"))
	content := bytes.Repeat([]byte("chunky\x00"), 1000)
	parts := chunks("c.bin", content, 2048, "id-1")
	wrongOffset := parts[1]
	wrongOffset.Chunk = &webhook.Chunk{ID: "id-1", Index: 1, Total: len(parts), Offset: parts[1].Chunk.Offset + 3}
	badSHA := chunks("d.bin", content, 2048, "id-2")
	for i := range badSHA {
		badSHA[i].SHA = sha([]byte("something else"))
	}
	changedSHA := chunks("e.bin", content, 2048, "id-3")
	changedSHA[1].SHA = sha([]byte("something else"))

	tests := []struct {
		name     string
		endpoint string
		setup    [][]byte // sent first, must succeed
		body     []byte
		key      string
		at       time.Duration
		want     int
		msg      string
	}{
		{name: "bad signature", endpoint: "create", body: good, key: "another-key-0123456789", want: 401, msg: "signature"},
		{name: "missing signature", endpoint: "create", body: good, want: 401, msg: "signature"},
		{name: "stale timestamp", endpoint: "create", body: good, key: testKey, at: -2 * time.Minute, want: 401, msg: "timestamp"},
		{name: "future timestamp", endpoint: "create", body: good, key: testKey, at: 2 * time.Minute, want: 401, msg: "timestamp"},
		{name: "body over --max-body", endpoint: "create", key: testKey, want: 413,
			body: createBody(t, textFile("huge.txt", strings.Repeat("x", 9000)))},
		{name: "malformed JSON", endpoint: "create", body: []byte(`{"repository":`), key: testKey, want: 400},
		{name: "not JSON", endpoint: "update", body: []byte(`<xml/>`), key: testKey, want: 400},
		{name: "sha mismatch", endpoint: "create", key: testKey, want: 400, msg: "sha",
			body: createBody(t, webhook.File{Path: "new.txt", SHA: sha([]byte("other\n")), Size: 4, Content: "new\n"})},
		{name: "traversal", endpoint: "create", key: testKey, want: 400, msg: "unsafe path", body: createBody(t, textFile("../outside.txt", "pwned\n"))},
		{name: "nested traversal", endpoint: "create", key: testKey, want: 400, body: createBody(t, textFile("a/../../outside.txt", "pwned\n"))},
		{name: "absolute path", endpoint: "create", key: testKey, want: 400, body: createBody(t, textFile(outside, "pwned\n"))},
		{name: ".git", endpoint: "create", key: testKey, want: 400, body: createBody(t, textFile(".git/hooks/post-checkout", "pwned\n"))},
		{name: "delete traversal", endpoint: "delete", key: testKey, want: 400, body: deleteBody(t, "../outside.txt", sha([]byte("outside\n")))},
		{name: "chunk with wrong offset", endpoint: "create", key: testKey, want: 400, msg: "offset",
			setup: [][]byte{createBody(t, parts[0])}, body: createBody(t, wrongOffset)},
		{name: "chunk out of order", endpoint: "create", key: testKey, want: 400, body: createBody(t, parts[2])},
		{name: "chunks with a wrong sha", endpoint: "create", key: testKey, want: 400, msg: "sha",
			setup: bodies(t, badSHA[:len(badSHA)-1]), body: createBody(t, badSHA[len(badSHA)-1])},
		{name: "chunk whose sha differs from chunk 0", endpoint: "create", key: testKey, want: 400,
			setup: [][]byte{createBody(t, changedSHA[0])}, body: createBody(t, changedSHA[1])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, b := range tt.setup {
				r.mustSend(tt.endpoint, b)
			}
			res := r.post(tt.endpoint, tt.body, tt.key, time.Now().Add(tt.at), "")
			msg, _ := res.body["error"].(string)
			if res.code != tt.want || msg == "" || !strings.Contains(msg, tt.msg) {
				t.Fatalf("status %d %v, want %d with an error mentioning %q", res.code, res.body, tt.want, tt.msg)
			}
			got := readMirror(t, r.dir)
			if len(got) != 1 || got["keep.txt"] != "keep\n" {
				t.Fatalf("mirror changed: %q", keysOf(got))
			}
			if b, _ := os.ReadFile(outside); string(b) != "outside\n" {
				t.Fatal("a file outside the mirror changed")
			}
		})
	}
	// Within --tolerance a timestamp 30 s off is fine.
	if res := r.post("create", good, testKey, time.Now().Add(-30*time.Second), ""); res.code != 200 {
		t.Fatalf("timestamp 30 s old: %d %v", res.code, res.body)
	}
	// Routes: unknown path 404, other methods 405, both JSON.
	for path, want := range map[string]int{"/nope": 404, "/create": 405} {
		resp, err := r.client.Get(r.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func TestReceiveTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	r := startReceive(t, "--client-auth-key-file", writeKey(t, testKey), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(r.url, "https://") {
		t.Fatalf("url %s", r.url)
	}
	r.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	r.mustSend("create", createBody(t, textFile("a.txt", "over TLS\n")))
	if got := readMirror(t, r.dir); got["a.txt"] != "over TLS\n" {
		t.Fatalf("mirror: %v", got)
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, pool
}

func TestReceiveErrors(t *testing.T) {
	ctx := t.Context()
	key := writeKey(t, testKey+"\n")
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{name: "missing key file", args: []string{"--client-auth-key-file", "/nonexistent/key.txt"}, code: 1, msg: "/nonexistent/key.txt"},
		{name: "short key", args: []string{"--client-auth-key-file", writeKey(t, "short\n")}, code: 1, msg: "must be 16 to 500 characters, got 5"},
		{name: "short key on stdin", stdin: "short\n", args: []string{"--client-auth-key-file", "-"}, code: 1, msg: "got 5"},
		{name: "empty env", args: []string{"--client-auth-key-env", "UNSET_VARIABLE"}, code: 1, msg: "UNSET_VARIABLE is empty or not set"},
		{name: "no key", args: nil, code: 2, msg: "[client-auth-key-file client-auth-key-env] is required"},
		{name: "both keys", args: []string{"--client-auth-key-file", key, "--client-auth-key-env", "TEST_RECEIVE_KEY"}, code: 2, msg: "none of the others"},
		{name: "malformed addr", args: []string{"--client-auth-key-file", key, "--addr", "not-an-address"}, code: 2, msg: `invalid --addr "not-an-address"`},
		{name: "unbindable addr", args: []string{"--client-auth-key-file", key, "--addr", "192.0.2.1:0"}, code: 1, msg: "listen on 192.0.2.1:0"},
		{name: "bad tolerance", args: []string{"--client-auth-key-file", key, "--tolerance", "0s"}, code: 2, msg: "--tolerance must be positive"},
		{name: "tls cert without key", args: []string{"--client-auth-key-file", key, "--tls-cert", "c.pem"}, code: 2, msg: "tls-cert tls-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mirror")
			code, _, stderr := docora(t, ctx, tt.stdin, append([]string{"receive", "--dir", dir}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.msg)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the mirror directory was created: %v", err)
			}
		})
	}
	// The port is taken: a clear error, exit 1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, stderr := docora(t, ctx, "", "receive", "--dir", t.TempDir(), "--client-auth-key-file", key, "--addr", ln.Addr().String())
	if code != 1 || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("port in use: exit %d, %s", code, stderr)
	}
}

func bodies(t *testing.T, files []webhook.File) [][]byte {
	var out [][]byte
	for _, f := range files {
		out = append(out, createBody(t, f))
	}
	return out
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
