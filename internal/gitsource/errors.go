package gitsource

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/docora/docora/internal/netguard"
)

// Errors that classify a failed remote operation; test with errors.Is.
var (
	// ErrAuthentication: the remote refused the credentials, or asked for some (401, 403).
	// Anonymous requests to a repository that does not exist get this too from hosts that
	// answer 401 rather than reveal whether a repository exists.
	ErrAuthentication = errors.New("authentication failed")
	// ErrNotFound: the repository does not exist, or these credentials may not see it
	// (GitHub answers 404 for both).
	ErrNotFound = errors.New("repository not found or no access")
	// ErrUnreachable: the remote could not be reached: DNS, connection or TLS failures,
	// timeouts, 5xx answers, and destinations refused by the network guard
	// (errors.Is(err, netguard.ErrForbiddenAddress) tells those apart).
	ErrUnreachable = errors.New("remote unreachable")
	// ErrBranchNotFound: the remote has commits but not on this branch.
	ErrBranchNotFound = errors.New("branch not found")
	// ErrEmptyRepository: the remote has no commits at all; callers treat it as zero files.
	ErrEmptyRepository = errors.New("repository is empty")
	// ErrUnsupportedURL: the URL's scheme cannot be used (only https, http and file remotes
	// are supported: ssh and git:// would dial outside the network guard).
	ErrUnsupportedURL = errors.New("unsupported remote URL")
)

// remoteError is the error of a remote operation. Its text has been scrubbed of credentials
// and it unwraps only to its classifying sentinel and to context and guard errors — never to
// the transport's own error, whose text may carry credentials.
type remoteError struct {
	op     string // "fetch", "list refs", ...
	url    string // scrubbed
	detail string // scrubbed
	causes []error
}

func (e *remoteError) Error() string {
	var b strings.Builder
	b.WriteString(e.op)
	if e.url != "" {
		b.WriteString(" ")
		b.WriteString(e.url)
	}
	b.WriteString(": ")
	b.WriteString(e.detail)
	return b.String()
}

func (e *remoteError) Unwrap() []error { return e.causes }

// maxDetail bounds the text taken from a remote's error (an HTML error page, say).
const maxDetail = 300

// remoteErr classifies err, a failure of op against rawURL made with cred, and returns it as a
// *remoteError, or nil for a nil err.
func remoteErr(ctx context.Context, op, rawURL string, cred Credentials, err error) error {
	if err == nil {
		return nil
	}
	var already *remoteError
	if errors.As(err, &already) {
		return err
	}
	secrets := secretsOf(rawURL, cred)
	e := &remoteError{op: op, url: Scrub(rawURL, secrets...)}
	detail := strings.Join(strings.Fields(Scrub(err.Error(), secrets...)), " ")
	if len(detail) > maxDetail {
		detail = detail[:maxDetail] + "…"
	}
	kind, hint := classify(ctx, err)
	if kind != nil {
		e.causes = append(e.causes, kind)
	}
	for _, c := range []error{context.Canceled, context.DeadlineExceeded, netguard.ErrForbiddenAddress} {
		if errors.Is(err, c) {
			e.causes = append(e.causes, c)
		}
	}
	switch {
	case hint != "":
		e.detail = hint + " (" + detail + ")"
	default:
		e.detail = detail
	}
	return e
}

// classify returns the sentinel for err and, when the raw message would not say it plainly,
// a sentence for the user.
//
//lint:ignore ST1008 kind is a classification of err, not a failure of classify
func classify(ctx context.Context, err error) (kind error, hint string) {
	var httpErr *githttp.Err
	var unexpected *plumbing.UnexpectedError
	if errors.As(err, &unexpected) {
		errors.As(unexpected.Err, &httpErr)
	} else {
		errors.As(err, &httpErr)
	}
	var damaged *damagedError
	if errors.As(err, &damaged) {
		return nil, "the local cache is damaged"
	}
	for _, k := range []error{ErrUnsupportedURL, ErrEmptyRepository, ErrBranchNotFound, ErrNotFound, ErrAuthentication, ErrUnreachable} {
		if errors.Is(err, k) {
			return k, ""
		}
	}
	var netErr net.Error
	switch {
	case errors.Is(err, netguard.ErrForbiddenAddress):
		return ErrUnreachable, "refused by the network guard: the remote is not on a public address (allow private networks to reach it)"
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return nil, "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return ErrUnreachable, "timed out"
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrInvalidAuthMethod):
		return ErrAuthentication, "authentication required or credentials refused: the repository is private, the token is wrong, or the repository does not exist"
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return ErrAuthentication, "access denied: the credentials may not read this repository"
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return ErrNotFound, "repository not found, or these credentials may not see it"
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return ErrEmptyRepository, ""
	case errors.Is(err, git.NoMatchingRefSpecError{}):
		return ErrBranchNotFound, ""
	case httpErr != nil && httpErr.StatusCode() >= 500:
		return ErrUnreachable, fmt.Sprintf("the remote answered %d", httpErr.StatusCode())
	case errors.As(err, &netErr), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF):
		return ErrUnreachable, "cannot reach the remote"
	}
	return nil, ""
}

// secretsOf lists the strings that must never appear in an error about rawURL fetched with cred:
// the token in the forms an HTTP stack may echo, and the URL's own user information.
func secretsOf(rawURL string, cred Credentials) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s, url.QueryEscape(s), url.PathEscape(s))
	}
	if cred.Token != "" {
		add(cred.Token)
		add(base64.StdEncoding.EncodeToString([]byte(tokenUser + ":" + cred.Token)))
	}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		} else {
			add(u.User.Username()) // "https://TOKEN@host" is a common way to pass a token
		}
	}
	return out
}

var userinfoRE = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@`)

// Scrub removes credentials from s: the user information of every URL in it
// ("https://user:pass@host" becomes "https://***@host") and each of secrets, wherever it
// appears. Use it on any git-related text before it is logged, stored or sent.
func Scrub(s string, secrets ...string) string {
	s = userinfoRE.ReplaceAllString(s, "${1}***@")
	for _, sec := range secrets {
		// Very short "secrets" (a user name like "git") would mangle the text for no gain.
		if len(sec) < 4 {
			continue
		}
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}
