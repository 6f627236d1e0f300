package engine

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/internal/store"
)

// TestRetriesAndFailedLinkBackoff: --max-attempts bounds the attempts within a pass, with
// exponential backoff (base, factor 2, jitter within [d/2, d)); a link that fails is failed
// with its retry count, last error and a next attempt that grows by doubling up to the cap;
// --watch waits for it; a success resets all of it.
func TestRetriesAndFailedLinkBackoff(t *testing.T) {
	f := newFixture(t, func(c *fixtureConfig) {
		c.engine.MaxAttempts = 4
		c.engine.BackoffBase = time.Second
		c.engine.FailedDelay = time.Minute
		c.engine.MaxFailedDelay = 5 * time.Minute
	})
	f.eng.Rand = func() float64 { return 0.999999 } // the top of the jitter range
	f.commit(map[string]string{"a.txt": "a\n", "b.txt": "b\n"})
	f.rec.setFaults(func(int, received) *fault { return &fault{status: http.StatusInternalServerError} })

	due := Due(time.Hour)
	wantDelay := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i, want := range wantDelay {
		f.rec.reset()
		f.sleeps = nil
		r := f.sync()
		if r.Outcome != OutcomeFailed || !r.Failed() || !strings.Contains(r.Error, "HTTP 500") {
			t.Fatalf("run %d: %+v", i+1, r)
		}
		if n := len(f.rec.requests()); n != 4 {
			t.Errorf("run %d: %d requests, want 4 (--max-attempts)", i+1, n)
		}
		s := f.sleepsSoFar()
		if len(s) != 3 {
			t.Fatalf("run %d: sleeps %v, want 3", i+1, s)
		}
		for j, d := range s {
			base := time.Second << j // 1 s, 2 s, 4 s: the first retry waits about the base
			if d < base/2 || d > base {
				t.Errorf("run %d: retry %d waited %s, want within [%s, %s]", i+1, j+1, d, base/2, base)
			}
		}
		l := f.linkView(f.appID)
		if l.Status != store.StatusFailed || l.RetryCount != i+1 || !strings.Contains(l.LastError, "a.txt") ||
			!strings.Contains(l.LastError, "HTTP 500") {
			t.Errorf("run %d: link %+v", i+1, l.Link)
		}
		if l.NextAttemptAt == nil || !l.NextAttemptAt.Equal(f.clock.Now().Add(want).Truncate(time.Millisecond)) {
			t.Errorf("run %d: next attempt %v, want now + %s", i+1, l.NextAttemptAt, want)
		}
		if due(l, f.clock.Now()) || due(l, f.clock.Now().Add(want-time.Second)) {
			t.Errorf("run %d: failed link due before its next attempt", i+1)
		}
		if !due(l, f.clock.Now().Add(want)) {
			t.Errorf("run %d: failed link not due at its next attempt", i+1)
		}
		f.clock.Advance(want)
	}

	f.rec.setFaults(nil)
	if r := f.sync(); r.Outcome != OutcomeSynced || r.Delivered.Created != 2 {
		t.Fatalf("sync after recovery: %+v", r)
	}
	l := f.linkView(f.appID)
	if l.Status != store.StatusSynced || l.RetryCount != 0 || l.LastError != "" || l.NextAttemptAt != nil {
		t.Errorf("link after success: %+v", l.Link)
	}
}

// TestMaxAttemptsOne: with --max-attempts 1 a failure is not retried within the pass.
func TestMaxAttemptsOne(t *testing.T) {
	f := newFixture(t, func(c *fixtureConfig) { c.engine.MaxAttempts = 1 })
	f.commit(map[string]string{"a.txt": "a\n"})
	f.rec.setFaults(func(int, received) *fault { return &fault{status: http.StatusServiceUnavailable, retryAfter: "1"} })
	if r := f.sync(); r.Outcome != OutcomeFailed {
		t.Fatalf("sync: %+v", r)
	}
	if n, s := len(f.rec.requests()), f.sleepsSoFar(); n != 1 || len(s) != 0 {
		t.Errorf("%d requests and sleeps %v, want 1 and none", n, s)
	}
}

// TestStopDuringRetryWait: a stop (SIGINT) during the backoff wait ends the run at once, as
// interrupted, not failed; the link keeps the status it had.
func TestStopDuringRetryWait(t *testing.T) {
	f := newFixture(t)
	f.commit(map[string]string{"a.txt": "a\n"})
	ctx, cancel := context.WithCancel(context.Background())
	f.eng.Sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}
	f.rec.setFaults(func(int, received) *fault { return &fault{status: http.StatusInternalServerError} })
	r := f.eng.SyncLink(ctx, f.appID, f.repoID)
	if r.Outcome != OutcomeStopped || r.Failed() {
		t.Fatalf("stopped run: %+v", r)
	}
	if n := len(f.rec.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if l := f.linkView(f.appID); l.Status != store.StatusPendingSnapshot || l.RetryCount != 0 || l.LeaseOwner != "" {
		t.Errorf("link after a stop: %+v", l.Link)
	}
}

// TestPassStoppedBeforeLinksStart: links that had not started when the pass was stopped are
// reported interrupted, never failed (so `docora sync` interrupted by SIGINT does not exit 3).
func TestPassStoppedBeforeLinksStart(t *testing.T) {
	f := newFixture(t)
	f.commit(map[string]string{"a.txt": "a\n"})
	for _, id := range []string{"app_2", "app_3"} {
		f.addApp(id)
		f.link(id, "")
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.rec.setFaults(func(int, received) *fault { cancel(); return nil })
	results, err := f.eng.Pass(ctx, PassOptions{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Failed() {
			t.Errorf("link %s failed after a stop: %+v", r.AppID, r)
		}
	}
	if results[0].Outcome != OutcomeSynced {
		t.Errorf("the running link did not finish its in-flight request: %+v", results[0])
	}
}
