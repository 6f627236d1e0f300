package delivery

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{-1, time.Second}, {0, time.Second}, {1, 2 * time.Second}, {2, 4 * time.Second}, {5, 32 * time.Second},
		{12, time.Hour}, {1000, time.Hour}, {math.MaxInt, time.Hour},
	} {
		if got := Backoff(tc.attempt, time.Second, 2, time.Hour, nil); got != tc.want {
			t.Errorf("Backoff(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
		for _, r := range []float64{0, 0.25, 0.999999} {
			got := Backoff(tc.attempt, time.Second, 2, time.Hour, func() float64 { return r })
			if got < tc.want/2 || got >= tc.want || got != tc.want/2+time.Duration(float64(tc.want/2)*r) {
				t.Errorf("Backoff(%d, jitter %v) = %s, want in [%s, %s)", tc.attempt, r, got, tc.want/2, tc.want)
			}
		}
	}
	if got := Backoff(100, time.Second, 10, 0, nil); got != time.Duration(math.MaxInt64) {
		t.Errorf("uncapped overflow = %s", got)
	}
	if got := Backoff(3, time.Second, math.NaN(), time.Hour, func() float64 { return math.NaN() }); got != 750*time.Millisecond {
		t.Errorf("NaN factor and jitter = %s", got)
	}
	if got := Backoff(3, 0, 2, time.Hour, nil); got != 0 {
		t.Errorf("zero base = %s", got)
	}
}

func TestRetryDelay(t *testing.T) {
	de := &DeliveryError{StatusCode: 429, RetryAfter: time.Minute}
	if got := RetryDelay(fmt.Errorf("create x: %w", de), time.Second); got != time.Minute {
		t.Errorf("RetryDelay = %s, want 1m", got)
	}
	if got := RetryDelay(fmt.Errorf("create x: %w", de), time.Hour); got != time.Hour {
		t.Errorf("RetryDelay = %s, want 1h", got)
	}
	if got := RetryDelay(errors.New("other"), time.Second); got != time.Second {
		t.Errorf("RetryDelay = %s, want 1s", got)
	}
}
