// Package webhook builds and sends docora's webhooks (SPEC §6): the JavaScript-compatible JSON
// encoding, the HMAC signature, text and binary content, the streaming of large files in chunks,
// and an HTTP client that only reaches public addresses and never follows redirects.
package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/pkg/webhook"
)

// Defaults of ClientOptions (SPEC §6).
const (
	DefaultTimeout        = 30 * time.Second
	DefaultChunkThreshold = 1 << 20   // bytes; a file of exactly this size is not chunked
	DefaultChunkSize      = 512 << 10 // base64 characters per chunk
	DefaultMaxRetryAfter  = 5 * time.Minute
)

// writeBufferSize is the HTTP transport's write buffer per connection.
const writeBufferSize = 64 << 10

// maxDrain bounds how much of a response body is read so that the connection can be reused.
const maxDrain = 64 << 10

// ClientOptions configure a Client. Zero values take the defaults.
type ClientOptions struct {
	// Version goes into the User-Agent, "docora/<version>"; empty means "dev".
	Version string
	// Timeout bounds one request, response body included.
	Timeout time.Duration
	// ChunkThreshold: files larger than this many bytes are sent base64 in chunks.
	ChunkThreshold int64
	// ChunkSize is the number of base64 characters per chunk, a multiple of 4.
	ChunkSize int
	// MaxRetryAfter bounds the Retry-After delay a receiver may ask for.
	MaxRetryAfter time.Duration
	// Now is the clock used for timestamps; nil means time.Now.
	Now func() time.Time
}

// Client sends webhooks. It is safe for concurrent use.
//
// The destination guard is the policy in each call's context (netguard.WithPolicy): without
// AllowPrivate only https base URLs are accepted and every dial is checked against public
// addresses. Connections are pooled per policy, so a connection opened under a permissive
// policy is never reused by a call under a strict one.
type Client struct {
	opts      ClientOptions
	userAgent string

	mu      sync.Mutex
	clients map[netguard.Policy]*http.Client
}

// ChunkThreshold is the size above which files are sent in chunks.
func (c *Client) ChunkThreshold() int64 { return c.opts.ChunkThreshold }

// NewClient returns a Client, applying defaults and validating opts.
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ChunkThreshold == 0 {
		opts.ChunkThreshold = DefaultChunkThreshold
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.MaxRetryAfter == 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case opts.Timeout < 0:
		return nil, fmt.Errorf("webhook timeout must be positive, got %s", opts.Timeout)
	case opts.ChunkThreshold < 0:
		return nil, fmt.Errorf("chunk threshold must be positive, got %d", opts.ChunkThreshold)
	case opts.ChunkSize < 0 || opts.ChunkSize%4 != 0:
		return nil, fmt.Errorf("chunk size must be a positive multiple of 4 (base64 characters), got %d", opts.ChunkSize)
	case opts.MaxRetryAfter < 0:
		return nil, fmt.Errorf("maximum Retry-After must be positive, got %s", opts.MaxRetryAfter)
	}
	return &Client{
		opts:      opts,
		userAgent: "docora/" + opts.Version,
		clients:   make(map[netguard.Policy]*http.Client),
	}, nil
}

// UserAgent returns the User-Agent header the client sends.
func (c *Client) UserAgent() string { return c.userAgent }

// CloseIdleConnections closes the pooled connections of every policy.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, hc := range c.clients {
		hc.CloseIdleConnections()
	}
}

func (c *Client) httpClient(p netguard.Policy) *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	hc, ok := c.clients[p]
	if !ok {
		tr := netguard.NewTransport()
		// Headers and a small body leave in one write (the default buffer is 4 KiB: two or
		// three writes per request, each waking the receiver).
		tr.WriteBufferSize = writeBufferSize
		hc = &http.Client{
			Transport: tr,
			Timeout:   c.opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is a failure, reported with its Location
			},
		}
		c.clients[p] = hc
	}
	return hc
}

// Target is where and how an app receives webhooks.
type Target struct {
	BaseURL string
	AppID   string
	Key     []byte // the app's client_auth_key, the HMAC key; never logged or reported
}

// EndpointURL returns {baseURL}/{endpoint}: one slash between them whether or not baseURL ends
// with one, any path prefix of baseURL kept, its query kept, its fragment dropped.
func EndpointURL(baseURL, endpoint string) (*url.URL, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, which may carry a password
		}
		return nil, fmt.Errorf("invalid base URL: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid base URL %s: no host", redact(u))
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/" + endpoint
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/") + "/" + endpoint
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// redact returns u for messages: no user info, no query.
func redact(u *url.URL) string {
	v := *u
	v.User = nil
	v.RawQuery, v.ForceQuery = "", false
	v.Fragment, v.RawFragment = "", ""
	return v.String()
}

// Send POSTs one signed webhook: body to {t.BaseURL}/{endpoint}, signed now, with
// X-Docora-Delivery set to deliveryID. A 2xx response is success; anything else is a
// *DeliveryError.
func (c *Client) Send(ctx context.Context, t Target, endpoint string, body []byte, deliveryID string) error {
	return c.send(ctx, t, endpoint, body, deliveryID, c.opts.Now())
}

func (c *Client) send(ctx context.Context, t Target, endpoint string, body []byte, deliveryID string, at time.Time) error {
	return c.sendBody(ctx, t, endpoint, &trackedBody{b: body}, deliveryID, at)
}

// trackedBody is a request body that tells when the transport is done with its bytes, so
// that the caller may reuse the buffer. The transport must see a *bytes.Reader: for any other
// reader it flushes the headers in a write of their own before the body, which costs a second
// wake-up of the receiver per request (25-30 µs on a local one). So the body is given as one,
// and the end of its use is told by httptrace's WroteRequest, which both HTTP/1 and HTTP/2
// call once per write of the request, after the body was read for the last time — possibly
// after RoundTrip returned, when the receiver answered early. Every write starts with the
// body or a GetBody copy: the buffer is free when as many writes ended as bodies were handed
// out.
type trackedBody struct {
	b    []byte
	open atomic.Int32
}

// newRequest returns a POST of t's bytes to url whose writes t counts.
func (t *trackedBody) newRequest(ctx context.Context, url string) (*http.Request, error) {
	t.open.Store(1)
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { t.open.Add(-1) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, url, bytes.NewReader(t.b))
	if err != nil {
		t.open.Store(0)
		return nil, err
	}
	if len(t.b) == 0 {
		t.open.Store(0) // http.NoBody: nothing to track
		return req, nil
	}
	getBody := req.GetBody // a fresh *bytes.Reader of the same bytes, for a replayed request
	req.GetBody = func() (io.ReadCloser, error) {
		t.open.Add(1)
		return getBody()
	}
	return req, nil
}

// released reports whether the transport is done with t's bytes.
func (t *trackedBody) released() bool { return t.open.Load() == 0 }

func (c *Client) sendBody(ctx context.Context, t Target, endpoint string, tb *trackedBody, deliveryID string, at time.Time) error {
	return c.do(ctx, t, c.sign(t, endpoint, tb, deliveryID, at))
}

// signedRequest is a webhook request built and signed, ready to be sent.
type signedRequest struct {
	endpoint, deliveryID string
	tb                   *trackedBody
	timestamp            int64
	signature            string // "" when t has no key: do refuses it
}

// sign builds the request of body, signed at at.
func (c *Client) sign(t Target, endpoint string, tb *trackedBody, deliveryID string, at time.Time) *signedRequest {
	rq := &signedRequest{endpoint: endpoint, deliveryID: deliveryID, tb: tb, timestamp: at.Unix()}
	if len(t.Key) > 0 {
		rq.signature = Sign(t.Key, rq.timestamp, tb.b)
	}
	return rq
}

// do sends rq: a 2xx response is success, anything else a *DeliveryError.
func (c *Client) do(ctx context.Context, t Target, rq *signedRequest) error {
	tb := rq.tb
	policy := netguard.PolicyFrom(ctx)
	u, err := EndpointURL(t.BaseURL, rq.endpoint)
	if err != nil {
		return &DeliveryError{Err: err}
	}
	target := redact(u)
	switch {
	case t.AppID == "":
		return &DeliveryError{URL: target, Err: errors.New("no app id")}
	case len(t.Key) == 0 || rq.signature == "":
		return &DeliveryError{URL: target, Err: errors.New("no client auth key")}
	case rq.deliveryID == "":
		return &DeliveryError{URL: target, Err: errors.New("no delivery id")}
	}
	if err := netguard.CheckURL(policy, u.String()); err != nil {
		return &DeliveryError{URL: target, Err: err}
	}

	req, err := tb.newRequest(ctx, u.String())
	if err != nil {
		return &DeliveryError{URL: target, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set(webhook.HeaderAppID, t.AppID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(rq.timestamp, 10))
	req.Header.Set(webhook.HeaderSignature, rq.signature)
	req.Header.Set(webhook.HeaderDelivery, rq.deliveryID)

	resp, err := c.httpClient(policy).Do(req)
	if err != nil {
		return c.transportError(ctx, target, err)
	}
	defer func() {
		// Drain (bounded) and close so that the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return c.statusError(target, resp)
}

func (c *Client) transportError(ctx context.Context, target string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is already in the DeliveryError
	}
	if errors.Is(err, netguard.ErrForbiddenAddress) {
		return &DeliveryError{URL: target, Err: fmt.Errorf("%w (use --allow-private-networks for local receivers)", err)}
	}
	if ctx.Err() != nil {
		// A cancelled call is not the receiver's fault and not worth retrying.
		return &DeliveryError{URL: target, Err: err}
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		err = fmt.Errorf("no response within %s: %w", c.opts.Timeout, err)
	}
	return &DeliveryError{URL: target, Err: err, Temporary: true}
}

func (c *Client) statusError(target string, resp *http.Response) *DeliveryError {
	code := resp.StatusCode
	e := &DeliveryError{
		URL:        target,
		StatusCode: code,
		Temporary:  code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests,
	}
	if code >= 300 && code < 400 {
		if loc, err := resp.Location(); err == nil {
			e.Location = truncate(redact(loc), 256)
		} else if raw := resp.Header.Get("Location"); raw != "" {
			e.Location = truncate(raw, 256)
		}
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), c.opts.Now(), c.opts.MaxRetryAfter); ok {
			e.RetryAfter = d
		}
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// DeliveryError is a failed webhook request: a non-2xx response (StatusCode set) or no
// response at all (Err set). Its message names the URL (without credentials or query) and the
// failure, never the key or the body.
type DeliveryError struct {
	URL        string
	StatusCode int
	// Location is the redirect target of a 3xx response, which is never followed.
	Location string
	// RetryAfter is the receiver's Retry-After on 429 and 503, bounded by
	// ClientOptions.MaxRetryAfter; zero when absent.
	RetryAfter time.Duration
	// Temporary is true for failures that may heal by themselves: 5xx, 408, 425, 429,
	// timeouts and connection errors. The engine retries every failure; this is advice.
	Temporary bool
	Err       error
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	b.WriteString("webhook POST ")
	if e.URL != "" {
		b.WriteString(e.URL)
	} else {
		b.WriteString("(invalid URL)")
	}
	b.WriteString(": ")
	switch {
	case e.StatusCode >= 300 && e.StatusCode < 400:
		fmt.Fprintf(&b, "HTTP %d: ", e.StatusCode)
		if e.Location != "" {
			fmt.Fprintf(&b, "redirect to %s not followed", e.Location)
		} else {
			b.WriteString("redirect without Location not followed")
		}
		b.WriteString(" (webhooks never follow redirects: set the app's base URL to the final address)")
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if text := http.StatusText(e.StatusCode); text != "" {
			b.WriteString(" " + text)
		}
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	return b.String()
}

func (e *DeliveryError) Unwrap() error { return e.Err }
