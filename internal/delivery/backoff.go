package delivery

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter parses a Retry-After header value, delay-seconds or an HTTP-date, into a
// delay from now, bounded to [0, limit] (limit <= 0: no bound). ok is false when the value is
// absent or malformed.
func ParseRetryAfter(v string, now time.Time, limit time.Duration) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		d = time.Duration(math.MaxInt64)
		if n <= uint64(math.MaxInt64/int64(time.Second)) {
			d = time.Duration(n) * time.Second
		}
	} else if errors.Is(err, strconv.ErrRange) {
		d = time.Duration(math.MaxInt64) // all digits, just huge
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	d = max(d, 0)
	if limit > 0 {
		d = min(d, limit)
	}
	return d, true
}

// Backoff returns the delay before retry number attempt (0 for the first retry):
// base·factor^attempt, capped at limit (limit <= 0: no cap), with "equal jitter" when rnd is
// not nil: a value drawn uniformly from [d/2, d) using rnd, which returns values in [0, 1)
// like math/rand/v2.Float64. The jitter keeps links that failed together from retrying
// together, and the lower half bound keeps a retry from following a failure immediately.
func Backoff(attempt int, base time.Duration, factor float64, limit time.Duration, rnd func() float64) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	if base <= 0 {
		return 0
	}
	if !(factor >= 1) { // also catches NaN
		factor = 1
	}
	d := float64(base) * math.Pow(factor, float64(attempt))
	if limit > 0 && d > float64(limit) {
		d = float64(limit)
	}
	if d >= math.MaxInt64 || math.IsInf(d, 0) {
		d = math.MaxInt64
	}
	if rnd != nil {
		r := rnd()
		if !(r >= 0) || r >= 1 { // NaN or out of range: no jitter rather than a wild value
			r = 0.5
		}
		d = d/2 + d/2*r
	}
	if d >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// RetryDelay returns how long to wait before retrying after err: the longer of backoff and the
// receiver's Retry-After, when err carries one.
func RetryDelay(err error, backoff time.Duration) time.Duration {
	var de *DeliveryError
	if errors.As(err, &de) && de.RetryAfter > backoff {
		return de.RetryAfter
	}
	return backoff
}
