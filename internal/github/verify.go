package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// RefLister reads a non-GitHub remote's default branch (the target of its advertised HEAD) by
// listing its refs. It returns "" and no error when the remote advertises no HEAD (an empty
// repository). gitsource implements it over go-git.
type RefLister interface {
	DefaultBranch(ctx context.Context, url, token string) (string, error)
}

// RepoInfo is what verification learnt about a repository.
type RepoInfo struct {
	URL      string // canonical URL; for GitHub with the case of the API's full_name
	CloneURL string
	Owner    string
	Name     string
	// Private is GitHub's "private" flag. Other remotes cannot tell: it is true when a token
	// was given (the repository is then treated as non-public), false otherwise.
	Private bool
	// DefaultBranch is the remote's default branch; "" when it has none (an empty remote).
	DefaultBranch string
}

// Verifier checks that repositories exist and can be read with a given token.
// It is safe for concurrent use.
type Verifier struct {
	api  *url.URL
	hc   *http.Client
	refs RefLister
}

// NewVerifier returns a Verifier that asks the GitHub REST API at apiBase (used as given, e.g.
// "https://api.github.com/" or "http://127.0.0.1:8080/"; a missing trailing slash is added) over
// hc (nil: a client with a 30 s timeout), and refs for other remotes (nil: only GitHub
// repositories can be verified). Redirects to another host are not followed, so a token is
// never sent anywhere but apiBase's host.
func NewVerifier(apiBase string, hc *http.Client, refs RefLister) (*Verifier, error) {
	u, err := url.Parse(apiBase)
	if err != nil {
		return nil, fmt.Errorf("GitHub API URL %q: %w", apiBase, unwrapURLError(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q: must be an http:// or https:// URL with a host", apiBase)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("GitHub API URL %q: must not contain credentials, a query or a fragment", apiBase)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	c := *hc
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
			return fmt.Errorf("refusing redirect from %s to %s://%s", via[0].URL.Host, req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &Verifier{api: u, hc: &c, refs: refs}, nil
}

// Verify checks that u exists and can be read with token ("" for anonymous access) and
// returns its canonical identity, visibility and default branch.
//
// GitHub errors wrap ErrNotFound, ErrForbidden, ErrBadCredentials, ErrUnreachable or are a
// *RateLimitError; a malformed u wraps ErrInvalidURL. Errors of the RefLister are wrapped as they
// are. No error message contains the token.
func (v *Verifier) Verify(ctx context.Context, u RepoURL, token string) (RepoInfo, error) {
	if !u.GitHub {
		return v.verifyRemote(ctx, u, token)
	}
	return v.verifyGitHub(ctx, u, token)
}

func (v *Verifier) verifyRemote(ctx context.Context, u RepoURL, token string) (RepoInfo, error) {
	if v.refs == nil {
		return RepoInfo{}, fmt.Errorf("verify %s: no git ref lister configured for non-GitHub remotes", u.URL)
	}
	branch, err := v.refs.DefaultBranch(ctx, u.CloneURL, token)
	if err != nil {
		return RepoInfo{}, redact(fmt.Errorf("verify %s: %w", u.URL, err), token)
	}
	return RepoInfo{
		URL:           u.URL,
		CloneURL:      u.CloneURL,
		Owner:         u.Owner,
		Name:          u.Name,
		Private:       token != "",
		DefaultBranch: branch,
	}, nil
}

func (v *Verifier) verifyGitHub(ctx context.Context, u RepoURL, token string) (RepoInfo, error) {
	if !validOwner(u.Owner) || !validRepoName(u.Name) {
		return RepoInfo{}, invalid("%q is not a valid GitHub owner/name", u.Owner+"/"+u.Name)
	}
	suffix := "/" + u.Owner + "/" + u.Name
	if len(u.URL) <= len(suffix) || !strings.EqualFold(u.URL[len(u.URL)-len(suffix):], suffix) {
		return RepoInfo{}, invalid("URL %q does not end in /%s/%s", u.URL, u.Owner, u.Name)
	}
	webBase := u.URL[:len(u.URL)-len(suffix)]

	c := gh.NewClient(v.hc)
	c.BaseURL = v.api
	if token != "" {
		c = c.WithAuthToken(token)
	}
	repo, _, err := c.Repositories.Get(ctx, u.Owner, u.Name)
	if err != nil {
		return RepoInfo{}, redact(v.mapError(ctx, err, u, token), token)
	}

	// full_name carries GitHub's spelling; after a rename or transfer (GitHub redirects) it is
	// the repository's new name, which then becomes its canonical URL.
	owner, name, ok := strings.Cut(repo.GetFullName(), "/")
	if !ok || !validOwner(owner) || !validRepoName(name) {
		return RepoInfo{}, fmt.Errorf("verify %s/%s: unexpected answer from the GitHub API at %s (full_name %q); check the API URL",
			u.Owner, u.Name, v.api, repo.GetFullName())
	}
	canonical := webBase + "/" + owner + "/" + name
	return RepoInfo{
		URL:           canonical,
		CloneURL:      canonical + ".git",
		Owner:         owner,
		Name:          name,
		Private:       repo.GetPrivate(),
		DefaultBranch: repo.GetDefaultBranch(),
	}, nil
}

// mapError turns go-github's errors into docora's sentinels with messages that say what to do.
func (v *Verifier) mapError(ctx context.Context, err error, u RepoURL, token string) error {
	repo := u.Owner + "/" + u.Name
	var (
		rle *gh.RateLimitError
		are *gh.AbuseRateLimitError
		ere *gh.ErrorResponse
		ue  *url.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("verify %s: %w", repo, err)
	case errors.Is(err, context.DeadlineExceeded):
		return newVerifyError(fmt.Sprintf("verify %s: the GitHub API at %s did not answer in time; try again later", repo, v.api),
			ErrUnreachable, err)
	case errors.As(err, &rle):
		return &RateLimitError{Reset: rle.Rate.Reset.Time, Authenticated: token != ""}
	case errors.As(err, &are):
		e := &RateLimitError{Secondary: true, Authenticated: token != ""}
		if are.RetryAfter != nil {
			e.Reset = time.Now().Add(*are.RetryAfter).Truncate(time.Second)
		}
		return e
	case errors.As(err, &ere) && ere.Response != nil:
		return v.mapStatus(ere, u, token)
	case errors.As(err, &ue):
		return newVerifyError(fmt.Sprintf("verify %s: cannot reach the GitHub API at %s: %v; check the API URL and the network", repo, v.api, ue.Err),
			ErrUnreachable, err)
	default:
		return fmt.Errorf("verify %s: unexpected answer from the GitHub API at %s (check the API URL): %w", repo, v.api, err)
	}
}

func (v *Verifier) mapStatus(ere *gh.ErrorResponse, u RepoURL, token string) error {
	repo := u.Owner + "/" + u.Name
	resp := ere.Response
	status := resp.StatusCode
	switch {
	case status == http.StatusUnauthorized && token != "":
		return newVerifyError(fmt.Sprintf("verify %s: GitHub rejected the token (401 %s); check that it is valid and not expired or revoked", repo, ghMessage(ere, "Bad credentials")),
			ErrBadCredentials, ere)
	case status == http.StatusUnauthorized:
		return newVerifyError(fmt.Sprintf("verify %s: the GitHub API requires authentication (401 %s); pass a token", repo, ghMessage(ere, "Unauthorized")),
			ErrBadCredentials, ere)
	case status == http.StatusNotFound && token != "":
		return newVerifyError(fmt.Sprintf("repository %s not found on %s, or the token has no access to it; check the URL and the token's repository access", repo, u.Host),
			ErrNotFound, ere)
	case status == http.StatusNotFound:
		return newVerifyError(fmt.Sprintf("repository %s not found on %s; check the URL, or pass a token if the repository is private", repo, u.Host),
			ErrNotFound, ere)
	case status == http.StatusTooManyRequests || status == http.StatusForbidden && isRateLimited(resp):
		return &RateLimitError{Reset: rateReset(resp), Secondary: resp.Header.Get("X-RateLimit-Remaining") != "0", Authenticated: token != ""}
	case status == http.StatusForbidden:
		return newVerifyError(fmt.Sprintf("verify %s: GitHub refused access (403 %s); check the token's permissions and, for an organisation with SAML SSO, that the token is authorised for it", repo, ghMessage(ere, "Forbidden")),
			ErrForbidden, ere)
	case status >= 500:
		return newVerifyError(fmt.Sprintf("verify %s: the GitHub API at %s answered %d %s; try again later", repo, v.api, status, http.StatusText(status)),
			ErrUnreachable, ere)
	default:
		return fmt.Errorf("verify %s: the GitHub API at %s answered %d %s: %s", repo, v.api, status, http.StatusText(status), ghMessage(ere, "no message"))
	}
}

func isRateLimited(resp *http.Response) bool {
	return resp.Header.Get("X-RateLimit-Remaining") == "0" || resp.Header.Get("Retry-After") != ""
}

// rateReset reads when a rate limit ends: Retry-After (seconds or an HTTP date) first, as GitHub
// sends it for secondary limits, then X-RateLimit-Reset (unix seconds).
func rateReset(resp *http.Response) time.Time {
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.ParseInt(ra, 10, 64); err == nil && s >= 0 {
			return time.Now().Add(time.Duration(s) * time.Second).Truncate(time.Second)
		}
		if t, err := http.ParseTime(ra); err == nil {
			return t
		}
	}
	if r := resp.Header.Get("X-RateLimit-Reset"); r != "" {
		if s, err := strconv.ParseInt(r, 10, 64); err == nil && s > 0 {
			return time.Unix(s, 0)
		}
	}
	return time.Time{}
}

func ghMessage(ere *gh.ErrorResponse, fallback string) string {
	m := strings.TrimSpace(ere.Message)
	if m == "" {
		return fallback
	}
	const maxLen = 200
	if len(m) > maxLen {
		m = m[:maxLen] + "..."
	}
	return m
}

// redact removes a token from an error's message, keeping the chain for errors.Is and As.
// docora's own messages never include the token; this guards messages from below (go-git, the
// transport). Strings shorter than minRedact are not real tokens, and replacing them would
// garble the message.
func redact(err error, token string) error {
	const minRedact = 8
	if err == nil || len(token) < minRedact || !strings.Contains(err.Error(), token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), token, "[REDACTED]"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
