package github

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors returned (wrapped) by Verifier.Verify; test with errors.Is.
var (
	// ErrNotFound: the repository does not exist, or the token (or anonymous access) cannot see
	// it; GitHub answers 404 for both, on purpose.
	ErrNotFound = errors.New("repository not found")
	// ErrForbidden: GitHub answered 403 without a rate limit: the token lacks a permission, or an
	// organisation requires SSO authorisation of the token. Callers treat it like ErrNotFound
	// ("no access") but can say more.
	ErrForbidden = errors.New("access to the repository refused")
	// ErrBadCredentials: GitHub rejected the token (401).
	ErrBadCredentials = errors.New("bad credentials")
	// ErrRateLimited matches every *RateLimitError.
	ErrRateLimited = errors.New("GitHub API rate limit exceeded")
	// ErrUnreachable: the API could not be reached (connection refused, DNS, TLS, timeout) or
	// answered with a server error (5xx); trying again later may work.
	ErrUnreachable = errors.New("GitHub API unreachable")
)

// RateLimitError reports a primary (403/429 with X-RateLimit-Remaining: 0) or secondary
// (Retry-After) GitHub rate limit. errors.Is(err, ErrRateLimited) holds for it.
type RateLimitError struct {
	// Reset is when requests may be made again; zero when GitHub did not say.
	Reset time.Time
	// Secondary is set for secondary ("abuse") limits, which are about request bursts.
	Secondary bool
	// Authenticated tells whether the request carried a token (anonymous limits are far lower).
	Authenticated bool
}

func (e *RateLimitError) Error() string {
	kind := "GitHub API rate limit exceeded"
	if e.Secondary {
		kind = "GitHub API secondary rate limit exceeded"
	}
	when := "try again later"
	if !e.Reset.IsZero() {
		when = fmt.Sprintf("it resets at %s (in %s); try again then",
			e.Reset.UTC().Format(time.RFC3339), max(time.Until(e.Reset).Round(time.Second), 0))
	}
	if !e.Authenticated && !e.Secondary {
		when += ", or pass a token (authenticated requests have a much higher limit)"
	}
	return kind + ": " + when
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// verifyError carries a complete, user-facing message while keeping the sentinel and the
// underlying cause reachable through errors.Is and errors.As.
type verifyError struct {
	msg  string
	errs []error
}

func (e *verifyError) Error() string   { return e.msg }
func (e *verifyError) Unwrap() []error { return e.errs }

func newVerifyError(msg string, sentinel, cause error) error {
	errs := []error{sentinel}
	if cause != nil {
		errs = append(errs, cause)
	}
	return &verifyError{msg: msg, errs: errs}
}
