package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/pkg/webhook"
)

func TestSign(t *testing.T) {
	// Computed with `openssl dgst -sha256 -hmac` and node's crypto.createHmac.
	const want = "sha256=6ccab9a75946267c04c2ecb2c9b31c2377b81aa9969cc974c8e145320c04ff5b"
	if got := Sign([]byte("test-key-0123456789"), 1700000000, []byte(`{"a":"<é>"}`)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestSendHeadersAndSignature(t *testing.T) {
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{})
	body := []byte("{\"a\":\"<é>\u2028\"}")
	if err := c.Send(privateCtx(t), rv.target(), webhook.EndpointCreate, body, "dlv-1"); err != nil {
		t.Fatal(err)
	}
	reqs := rv.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/create" {
		t.Errorf("request %s %s, want POST /create", r.Method, r.Path)
	}
	if string(r.Body) != string(body) {
		t.Errorf("body %q, want %q", r.Body, body)
	}
	for h, want := range map[string]string{
		"Content-Type":          "application/json",
		"User-Agent":            "docora/1.2.3",
		webhook.HeaderAppID:     "app_0123456789abcdef01234567",
		webhook.HeaderTimestamp: strconv.FormatInt(testNow.Unix(), 10),
		webhook.HeaderDelivery:  "dlv-1",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	// Recompute the signature independently over the raw received bytes.
	mac := hmac.New(sha256.New, testKey)
	fmt.Fprintf(mac, "%s.", r.Header.Get(webhook.HeaderTimestamp))
	mac.Write(r.Body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); r.Header.Get(webhook.HeaderSignature) != want {
		t.Errorf("signature %s, want %s", r.Header.Get(webhook.HeaderSignature), want)
	}
}

func TestSignatureVerifiesWithNode(t *testing.T) {
	node := lookNode(t)
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{})
	body, err := Marshal(webhook.CreateEvent{File: webhook.File{Path: "ü/\u2028.txt", Content: "<&>\x00\u2029😀"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(privateCtx(t), rv.target(), webhook.EndpointCreate, body, "d"); err != nil {
		t.Fatal(err)
	}
	r := rv.requests()[0]
	dir := t.TempDir()
	bodyFile := filepath.Join(dir, "body")
	if err := os.WriteFile(bodyFile, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	// How an existing JavaScript receiver verifies: over JSON.stringify(JSON.parse(raw)).
	const script = `const crypto = require("crypto"), fs = require("fs");
const [key, ts, sig, file] = process.argv.slice(1);
const raw = fs.readFileSync(file, "utf8");
const reserialised = JSON.stringify(JSON.parse(raw));
const mac = crypto.createHmac("sha256", key).update(ts + "." + reserialised).digest("hex");
const ok = crypto.timingSafeEqual(Buffer.from("sha256=" + mac), Buffer.from(sig));
process.stdout.write(ok && reserialised === raw ? "ok" : "mismatch");`
	out := runNode(t, node, script, string(testKey), r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), bodyFile)
	if out != "ok" {
		t.Fatalf("node verification: %s", out)
	}
}

func TestEndpointURL(t *testing.T) {
	for base, want := range map[string]string{
		"https://example.com":                  "https://example.com/create",
		"https://example.com/":                 "https://example.com/create",
		"https://example.com/hooks":            "https://example.com/hooks/create",
		"https://example.com/hooks/":           "https://example.com/hooks/create",
		"https://example.com/a/b/?k=v":         "https://example.com/a/b/create?k=v",
		"https://example.com/a%2Fb/":           "https://example.com/a%2Fb/create",
		"https://example.com:8443/x#frag":      "https://example.com:8443/x/create",
		"https://user:pw@example.com/x":        "https://user:pw@example.com/x/create",
		"http://127.0.0.1:8080/docora/hooks//": "http://127.0.0.1:8080/docora/hooks/create",
	} {
		u, err := EndpointURL(base, webhook.EndpointCreate)
		if err != nil {
			t.Errorf("EndpointURL(%q): %v", base, err)
			continue
		}
		if u.String() != want {
			t.Errorf("EndpointURL(%q) = %s, want %s", base, u, want)
		}
	}
	for _, base := range []string{"", "example.com", "https://", "://x", "https://exa mple.com"} {
		if u, err := EndpointURL(base, "create"); err == nil {
			t.Errorf("EndpointURL(%q) = %s, want error", base, u)
		}
	}
	if _, err := EndpointURL("https://user:s3cret@exa mple.com/", "create"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("EndpointURL error leaks the password or is nil: %v", err)
	}
}

func TestSendJoinsBaseURL(t *testing.T) {
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{})
	for base, want := range map[string]string{
		rv.URL:                  "/delete",
		rv.URL + "/":            "/delete",
		rv.URL + "/hooks":       "/hooks/delete",
		rv.URL + "/hooks/":      "/hooks/delete",
		rv.URL + "/a/b/?tok=1":  "/a/b/delete?tok=1",
		rv.URL + "/prefix/v1//": "/prefix/v1/delete",
	} {
		before := len(rv.requests())
		tg := rv.target()
		tg.BaseURL = base
		if err := c.Send(privateCtx(t), tg, webhook.EndpointDelete, []byte(`{}`), "d"); err != nil {
			t.Fatalf("Send(%s): %v", base, err)
		}
		if got := rv.requests()[before].Path; got != want {
			t.Errorf("base %s: request path %s, want %s", base, got, want)
		}
	}
}

func TestSendRefusesHTTPWithoutPolicy(t *testing.T) {
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := c.Send(ctx, rv.target(), webhook.EndpointCreate, []byte(`{}`), "d")
	var de *DeliveryError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "https") {
		t.Fatalf("Send over http without policy = %v, want a DeliveryError about https", err)
	}
	if de.Temporary {
		t.Error("refusal marked temporary")
	}
	if n := len(rv.requests()); n != 0 {
		t.Fatalf("receiver got %d requests", n)
	}
}

// The dial-time guard applies: loopback is refused after resolution, including through the
// name localhost, when the policy does not allow private networks.
func TestLoopbackRefusedAtDialTime(t *testing.T) {
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{})
	_, port, _ := net.SplitHostPort(rv.Listener.Addr().String())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	// Below the early URL check, straight through the guarded HTTP client.
	for _, host := range []string{"127.0.0.1", "localhost"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+net.JoinHostPort(host, port)+"/create", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.httpClient(netguard.Policy{}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, netguard.ErrForbiddenAddress) {
			t.Errorf("dial %s = %v, want ErrForbiddenAddress", host, err)
		}
	}

	// Through Send, with a name that resolves to loopback but does not look private: the
	// machine's own host name, when it resolves to loopback here.
	if name, err := os.Hostname(); err == nil && netguard.CheckHostLiteral(name) == nil {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		if err == nil && len(addrs) > 0 && addrs[0].IsLoopback() {
			tg := rv.target()
			tg.BaseURL = "https://" + net.JoinHostPort(name, port)
			err := c.Send(ctx, tg, webhook.EndpointCreate, []byte(`{}`), "d")
			var de *DeliveryError
			if !errors.As(err, &de) || !errors.Is(err, netguard.ErrForbiddenAddress) || de.Temporary {
				t.Errorf("Send to %s = %v, want a permanent DeliveryError wrapping ErrForbiddenAddress", name, err)
			}
		} else {
			t.Logf("host name %s does not resolve to loopback (%v %v); Send part skipped", name, addrs, err)
		}
	}
	if n := len(rv.requests()); n != 0 {
		t.Fatalf("receiver got %d requests", n)
	}

	// The same receiver is reachable with the policy.
	if err := c.Send(privateCtx(t), rv.target(), webhook.EndpointCreate, []byte(`{}`), "d"); err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
}

func TestSendNon2xx(t *testing.T) {
	for _, tc := range []struct {
		code      int
		temporary bool
	}{
		{200, false}, {201, false}, {204, false}, {299, false},
		{400, false}, {401, false}, {404, false}, {408, true}, {410, false}, {422, false},
		{429, true}, {500, true}, {502, true}, {503, true}, {504, true},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			rv := newReceiver(t, func(_ int, _ request, w http.ResponseWriter) {
				w.WriteHeader(tc.code)
				io.WriteString(w, "receiver says no: "+string(testKey))
			})
			c := newTestClient(t, ClientOptions{})
			body := []byte(`{"secret-content":"top secret body"}`)
			err := c.Send(privateCtx(t), rv.target(), webhook.EndpointUpdate, body, "d")
			if tc.code < 300 {
				if err != nil {
					t.Fatalf("HTTP %d: %v", tc.code, err)
				}
				return
			}
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("HTTP %d: error %v, want *DeliveryError", tc.code, err)
			}
			if de.StatusCode != tc.code || de.Temporary != tc.temporary {
				t.Errorf("DeliveryError %+v, want code %d temporary %v", de, tc.code, tc.temporary)
			}
			msg := err.Error()
			if !strings.Contains(msg, strconv.Itoa(tc.code)) || !strings.Contains(msg, "/update") {
				t.Errorf("message %q lacks the status or the endpoint", msg)
			}
			if strings.Contains(msg, string(testKey)) || strings.Contains(msg, "top secret") {
				t.Errorf("message %q leaks the key or a body", msg)
			}
		})
	}
}

func TestSendRedirectNotFollowed(t *testing.T) {
	final := newReceiver(t, nil)
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			rv := newReceiver(t, func(_ int, _ request, w http.ResponseWriter) {
				w.Header().Set("Location", final.URL+"/elsewhere/create")
				w.WriteHeader(code)
			})
			c := newTestClient(t, ClientOptions{})
			err := c.Send(privateCtx(t), rv.target(), webhook.EndpointCreate, []byte(`{}`), "d")
			var de *DeliveryError
			if !errors.As(err, &de) || de.StatusCode != code {
				t.Fatalf("error %v, want a DeliveryError with status %d", err, code)
			}
			want := "redirect to " + final.URL + "/elsewhere/create not followed"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not say %q", err, want)
			}
		})
	}
	if n := len(final.requests()); n != 0 {
		t.Fatalf("redirect target received %d requests", n)
	}
}

func TestSendRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		code   int
		header string
		want   time.Duration
	}{
		{429, "7", 7 * time.Second},
		{503, "0", 0},
		{429, testNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{503, testNow.Add(-time.Hour).Format(http.TimeFormat), 0},
		{429, "100000", DefaultMaxRetryAfter},
		{503, "99999999999999999999999", DefaultMaxRetryAfter},
		{429, "soon", 0},
		{429, "-5", 0},
		{500, "7", 0}, // only 429 and 503 carry a meaningful Retry-After
		{301, "7", 0},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.code, tc.header), func(t *testing.T) {
			rv := newReceiver(t, func(_ int, _ request, w http.ResponseWriter) {
				w.Header().Set("Retry-After", tc.header)
				w.WriteHeader(tc.code)
			})
			c := newTestClient(t, ClientOptions{})
			err := c.Send(privateCtx(t), rv.target(), webhook.EndpointCreate, []byte(`{}`), "d")
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want *DeliveryError", err)
			}
			if de.RetryAfter != tc.want {
				t.Errorf("RetryAfter = %s, want %s", de.RetryAfter, tc.want)
			}
			if got := RetryDelay(err, time.Second); got != max(time.Second, tc.want) {
				t.Errorf("RetryDelay = %s", got)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	limit := 5 * time.Minute
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"  ", 0, false}, {"12", 12 * time.Second, true}, {" 12 ", 12 * time.Second, true},
		{"0", 0, true}, {"301", limit, true}, {"18446744073709551616", limit, true},
		{"1.5", 0, false}, {"+3", 0, false}, {"-3", 0, false}, {"3s", 0, false},
		{testNow.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute, true},
		{testNow.Add(time.Hour).Format(http.TimeFormat), limit, true},
		{testNow.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Sunday, 11-Jan-26 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Sun Jan 11 12:00:30 2026", 30 * time.Second, true},  // asctime
		{"tomorrow", 0, false},
	} {
		got, ok := ParseRetryAfter(tc.in, testNow, limit)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got, _ := ParseRetryAfter("999999999999", testNow, 0); got <= 0 {
		t.Errorf("unbounded huge value = %s, want a large positive delay", got)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "7", "99999999999999999999", testNow.Format(http.TimeFormat), "Sun Jan 11 12:00:30 2026", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, testNow, time.Hour)
		if d < 0 || d > time.Hour || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %s, %v", s, d, ok)
		}
	})
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	rv := newReceiver(t, func(_ int, _ request, w http.ResponseWriter) {
		<-release
	})
	defer close(release) // before rv.Close (cleanup) so the handler returns
	c := newTestClient(t, ClientOptions{Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := c.Send(privateCtx(t), rv.target(), webhook.EndpointCreate, []byte(`{}`), "d")
	var de *DeliveryError
	if !errors.As(err, &de) || !de.Temporary || de.StatusCode != 0 {
		t.Fatalf("error %v, want a temporary DeliveryError without status", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("timeout took %s", elapsed)
	}
}

func TestSendConnectionReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Read(buf) // the request has started
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with RST
			}
			conn.Close()
		}
	}()
	c := newTestClient(t, ClientOptions{})
	tg := Target{BaseURL: "http://" + ln.Addr().String(), AppID: "app", Key: testKey}
	err = c.Send(privateCtx(t), tg, webhook.EndpointCreate, []byte(`{}`), "d")
	var de *DeliveryError
	if !errors.As(err, &de) || !de.Temporary || de.StatusCode != 0 || de.Err == nil {
		t.Fatalf("error %v, want a temporary DeliveryError wrapping the connection error", err)
	}
}

func TestSendContextCanceled(t *testing.T) {
	rv := newReceiver(t, nil)
	c := newTestClient(t, ClientOptions{})
	ctx, cancel := context.WithCancel(privateCtx(t))
	cancel()
	err := c.Send(ctx, rv.target(), webhook.EndpointCreate, []byte(`{}`), "d")
	var de *DeliveryError
	if !errors.As(err, &de) || de.Temporary || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want a permanent DeliveryError wrapping context.Canceled", err)
	}
}

func TestSendReusesConnections(t *testing.T) {
	rv := newReceiver(t, func(_ int, _ request, w http.ResponseWriter) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, strings.Repeat("error page ", 1000)) // must be drained for reuse
	})
	c := newTestClient(t, ClientOptions{})
	for range 5 {
		if err := c.Send(privateCtx(t), rv.target(), webhook.EndpointCreate, []byte(`{}`), "d"); err == nil {
			t.Fatal("500 accepted")
		}
	}
	seen := map[string]bool{}
	for _, r := range rv.requests() {
		seen[r.RemoteAddr] = true
	}
	if len(seen) != 1 {
		t.Errorf("5 requests used %d connections, want 1", len(seen))
	}
}

func TestSendValidatesTarget(t *testing.T) {
	c := newTestClient(t, ClientOptions{})
	good := Target{BaseURL: "http://127.0.0.1:1", AppID: "app", Key: testKey}
	for name, tc := range map[string]struct {
		t  Target
		id string
	}{
		"no app id":   {Target{BaseURL: good.BaseURL, Key: testKey}, "d"},
		"no key":      {Target{BaseURL: good.BaseURL, AppID: "app"}, "d"},
		"no delivery": {good, ""},
		"bad URL":     {Target{BaseURL: "::", AppID: "app", Key: testKey}, "d"},
		"ftp":         {Target{BaseURL: "ftp://127.0.0.1/", AppID: "app", Key: testKey}, "d"},
	} {
		if err := c.Send(privateCtx(t), tc.t, "create", []byte(`{}`), tc.id); err == nil {
			t.Errorf("%s: Send succeeded", name)
		}
	}
}

func TestNewClientValidates(t *testing.T) {
	for _, o := range []ClientOptions{{ChunkSize: 6}, {ChunkSize: -4}, {ChunkThreshold: -1}, {Timeout: -time.Second}, {MaxRetryAfter: -1}} {
		if _, err := NewClient(o); err == nil {
			t.Errorf("NewClient(%+v) succeeded", o)
		}
	}
	c, err := NewClient(ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.ChunkSize != 524288 || c.opts.ChunkThreshold != 1048576 || c.opts.Timeout != 30*time.Second || c.UserAgent() != "docora/dev" {
		t.Errorf("defaults: %+v, %s", c.opts, c.UserAgent())
	}
}

// The transport must see a *bytes.Reader (else it writes the headers on their own: a second
// wake-up of the receiver per request), and the body buffer may be reused only once the
// transport is done with it — which, when the receiver answers before reading the body, is
// after RoundTrip returned.
func TestTrackedBodyRelease(t *testing.T) {
	t.Run("answered after the body", func(t *testing.T) {
		rv := newReceiver(t, nil)
		c := newTestClient(t, ClientOptions{})
		tb := &trackedBody{b: bytes.Repeat([]byte("x"), 100_000)}
		if err := c.do(privateCtx(t), rv.target(), c.sign(rv.target(), "create", tb, "d", testNow)); err != nil {
			t.Fatal(err)
		}
		if !tb.released() {
			t.Fatal("body not released after a receiver read it and answered")
		}
		if got := rv.requests()[0].Body; !bytes.Equal(got, tb.b) {
			t.Fatalf("receiver got %d bytes, want %d", len(got), len(tb.b))
		}
	})
	t.Run("answered early", func(t *testing.T) {
		proceed := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush() // the answer leaves before the body is read
			<-proceed
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		defer srv.Close()
		defer close(proceed)
		c := newTestClient(t, ClientOptions{})
		target := Target{BaseURL: srv.URL, AppID: "app", Key: testKey}
		tb := &trackedBody{b: make([]byte, 64<<20)} // more than the socket buffers hold
		if err := c.do(privateCtx(t), target, c.sign(target, "create", tb, "d", testNow)); err != nil {
			t.Fatal(err)
		}
		if tb.released() {
			t.Fatal("body released while the transport was still writing it")
		}
		proceed <- struct{}{}
		deadline := time.Now().Add(10 * time.Second)
		for !tb.released() {
			if time.Now().After(deadline) {
				t.Fatal("body never released after the receiver read it")
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Run("in-memory body", func(t *testing.T) {
		var headerWrites atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		srv.Listener = &countingListener{Listener: srv.Listener, reads: &headerWrites}
		srv.Start()
		defer srv.Close()
		c := newTestClient(t, ClientOptions{})
		target := Target{BaseURL: srv.URL, AppID: "app", Key: testKey}
		tb := &trackedBody{b: bytes.Repeat([]byte("y"), 2000)}
		if err := c.do(privateCtx(t), target, c.sign(target, "create", tb, "d", testNow)); err != nil {
			t.Fatal(err)
		}
		if n := headerWrites.Load(); n != 1 {
			t.Errorf("the request reached the receiver in %d reads, want 1 (headers and body in one write)", n)
		}
	})
}

// countingListener counts the reads that returned data on its connections.
type countingListener struct {
	net.Listener
	reads *atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, reads: l.reads}, nil
}

type countingConn struct {
	net.Conn
	reads *atomic.Int32
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(1)
	}
	return n, err
}
