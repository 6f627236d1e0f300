package engine

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docora/docora/internal/delivery"
	"github.com/docora/docora/internal/store"
)

// smallChunks makes files above 64 KiB go out in 16 KiB-character chunks, so that chunked
// transfers are quick to test.
func smallChunks(c *fixtureConfig) {
	c.client.ChunkThreshold = 64 << 10
	c.client.ChunkSize = 16 << 10
}

// faultRepo commits a few text files and one chunked binary file.
func faultRepo(f *fixture) {
	rnd := rand.New(rand.NewPCG(1, 2))
	bin := make([]byte, 100<<10) // 100 KiB → 9 chunks of 16 KiB base64 characters
	for i := range bin {
		bin[i] = byte(rnd.UintN(256))
	}
	f.commit(map[string]string{
		"README.md":     "# docs <&>\n",
		"guide/one.md":  "one\n",
		"guide/two.md":  "two \u2028 🎉\n",
		"assets/blob.b": string(bin),
	})
}

var faultKinds = []struct {
	name  string
	fault func(redirect string) *fault
}{
	{"500", func(string) *fault { return &fault{status: http.StatusInternalServerError} }},
	{"503 Retry-After", func(string) *fault { return &fault{status: http.StatusServiceUnavailable, retryAfter: "2"} }},
	{"timeout", func(string) *fault { return &fault{hang: true} }},
	{"connection reset", func(string) *fault { return &fault{reset: true} }},
	{"301 redirect", func(to string) *fault { return &fault{status: http.StatusMovedPermanently, location: to} }},
}

// TestReceiverFaultsFlaky: every change fails once (its first request), then succeeds. The pass
// still delivers everything, each change is retried with its delivery id unchanged, and the
// mirror ends exact.
func TestReceiverFaultsFlaky(t *testing.T) {
	for _, k := range faultKinds {
		t.Run(k.name, func(t *testing.T) {
			f := newFixture(t, smallChunks, func(c *fixtureConfig) { c.client.Timeout = 300 * time.Millisecond })
			var redirected atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected.Add(1) }))
			defer other.Close()
			faultRepo(f)
			// The callback runs in the receiver's handlers: after a timeout, the retry's
			// handler can run while the hung one has not returned yet.
			var mu sync.Mutex
			seen := map[string]bool{}
			f.rec.setFaults(func(n int, r received) *fault {
				mu.Lock()
				defer mu.Unlock()
				if seen[r.Delivery] {
					return nil
				}
				seen[r.Delivery] = true
				return k.fault(other.URL + "/" + r.Endpoint)
			})

			r := f.sync()
			if r.Outcome != OutcomeSynced || r.Delivered.Created != 4 {
				t.Fatalf("sync: %+v", r)
			}
			assertMirrorExact(t, f.mirrorFiles(), f.treeFiles())
			if n := redirected.Load(); n != 0 {
				t.Errorf("the redirect target received %d requests", n)
			}
			// Each change: a failed first attempt, then a complete one, with one delivery id.
			attempts := map[string][]received{}
			var order []string
			for _, rq := range f.rec.requests() {
				if rq.ChunkIndex > 0 {
					continue
				}
				if _, ok := attempts[rq.Delivery]; !ok {
					order = append(order, rq.Delivery)
				}
				attempts[rq.Delivery] = append(attempts[rq.Delivery], rq)
			}
			if len(order) != 4 {
				t.Fatalf("%d delivery ids, want 4", len(order))
			}
			for _, id := range order {
				a := attempts[id]
				if len(a) != 2 || a[0].Path != a[1].Path || a[0].SHA != a[1].SHA || a[0].ChunkID != a[1].ChunkID {
					t.Errorf("delivery %s: %d attempts %v", id, len(a), a)
				}
			}
			sleeps := f.sleepsSoFar()
			if len(sleeps) != 4 {
				t.Errorf("%d retry sleeps, want 4: %v", len(sleeps), sleeps)
			}
			if k.name == "503 Retry-After" {
				for _, d := range sleeps {
					if d != 2*time.Second {
						t.Errorf("retry sleep %s, want the receiver's Retry-After of 2s", d)
					}
				}
			}
			l := f.linkView(f.appID)
			if l.Status != store.StatusSynced || l.RetryCount != 0 || l.LastError != "" || l.CommitSHA != f.repo.Head() {
				t.Errorf("link: %+v", l.Link)
			}
		})
	}
}

// TestReceiverFaultsPersistent: the receiver fails every request; the link fails after
// --max-attempts attempts of its first change (one delivery id); once the faults stop, the
// next run converges to an exact mirror.
func TestReceiverFaultsPersistent(t *testing.T) {
	for _, k := range faultKinds {
		t.Run(k.name, func(t *testing.T) {
			f := newFixture(t, smallChunks, func(c *fixtureConfig) {
				c.client.Timeout = 300 * time.Millisecond
				c.engine.MaxAttempts = 3
			})
			var redirected atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected.Add(1) }))
			defer other.Close()
			faultRepo(f)
			f.rec.setFaults(func(n int, r received) *fault { return k.fault(other.URL + "/" + r.Endpoint) })

			r := f.sync()
			if r.Outcome != OutcomeFailed || r.Pending != 4 || r.Delivered != (Result{}).Delivered {
				t.Fatalf("sync against a failing receiver: %+v", r)
			}
			reqs := f.rec.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3 (--max-attempts)", len(reqs))
			}
			for _, rq := range reqs {
				if rq.Delivery != reqs[0].Delivery || rq.Path != "README.md" || rq.SHA != reqs[0].SHA {
					t.Errorf("attempt %s differs from the first, %s", rq, reqs[0])
				}
			}
			l := f.linkView(f.appID)
			if l.Status != store.StatusFailed || l.RetryCount != 1 || !strings.Contains(l.LastError, "README.md") {
				t.Errorf("failed link: %+v", l.Link)
			}
			switch k.name {
			case "301 redirect":
				if !strings.Contains(l.LastError, "redirect to "+other.URL+"/create not followed") {
					t.Errorf("last_error %q does not name the redirect", l.LastError)
				}
			case "timeout":
				if !strings.Contains(l.LastError, "no response within 300ms") {
					t.Errorf("last_error %q does not name the timeout", l.LastError)
				}
			case "503 Retry-After":
				if s := f.sleepsSoFar(); len(s) != 2 || s[0] != 2*time.Second || s[1] != 2*time.Second {
					t.Errorf("retry sleeps %v, want [2s 2s]", s)
				}
			}
			if n := redirected.Load(); n != 0 {
				t.Errorf("the redirect target received %d requests", n)
			}
			if len(f.mirrorFiles()) != 0 {
				t.Errorf("the mirror has files after only failed requests")
			}

			f.rec.setFaults(nil)
			r = f.sync()
			if r.Outcome != OutcomeSynced || r.Delivered.Created != 4 {
				t.Fatalf("sync after the faults stopped: %+v", r)
			}
			assertMirrorExact(t, f.mirrorFiles(), f.treeFiles())
			l = f.linkView(f.appID)
			if l.Status != store.StatusSynced || l.RetryCount != 0 || l.LastError != "" || l.NextAttemptAt != nil {
				t.Errorf("link after recovery: %+v", l.Link)
			}
			// The first change kept its delivery id from the failed run to the good one.
			if got := f.rec.requests()[3].Delivery; got != reqs[0].Delivery {
				t.Errorf("delivery id changed between runs: %s, then %s", reqs[0].Delivery, got)
			}
		})
	}
}

// TestChunkedRetryRestartsAtChunkZero: a failure on chunk 4 makes the retry start again from
// chunk 0, with the same chunk id and delivery id.
func TestChunkedRetryRestartsAtChunkZero(t *testing.T) {
	f := newFixture(t, smallChunks)
	faultRepo(f)
	failed := false
	f.rec.setFaults(func(n int, r received) *fault {
		if r.ChunkIndex == 4 && !failed {
			failed = true
			return &fault{status: http.StatusBadGateway}
		}
		return nil
	})
	if r := f.sync(); r.Outcome != OutcomeSynced {
		t.Fatalf("sync: %+v", r)
	}
	var idx []string
	var first received
	for _, rq := range f.rec.requests() {
		if rq.Path != "assets/blob.b" {
			continue
		}
		if first.Delivery == "" {
			first = rq
		}
		if rq.Delivery != first.Delivery || rq.ChunkID != first.ChunkID || rq.ChunkTotal != 9 {
			t.Errorf("chunk %d: delivery %s chunk id %s total %d; first was %s %s", rq.ChunkIndex, rq.Delivery, rq.ChunkID,
				rq.ChunkTotal, first.Delivery, first.ChunkID)
		}
		idx = append(idx, fmt.Sprint(rq.ChunkIndex))
	}
	if got, want := strings.Join(idx, ","), "0,1,2,3,4,0,1,2,3,4,5,6,7,8"; got != want {
		t.Errorf("chunk order %s, want %s", got, want)
	}
	assertMirrorExact(t, f.mirrorFiles(), f.treeFiles())
}

// TestRetryAfterBounded: a Retry-After far in the future (seconds or HTTP date) is honoured
// only up to the client's bound.
func TestRetryAfterBounded(t *testing.T) {
	for _, ra := range []string{"86400", time.Now().Add(48 * time.Hour).UTC().Format(http.TimeFormat)} {
		f := newFixture(t, func(c *fixtureConfig) {
			c.client.MaxRetryAfter = 7 * time.Second
			c.engine.MaxAttempts = 2
		})
		f.commit(map[string]string{"a.txt": "a\n"})
		f.rec.setFaults(func(n int, r received) *fault {
			if n == 0 {
				return &fault{status: http.StatusTooManyRequests, retryAfter: ra}
			}
			return nil
		})
		if r := f.sync(); r.Outcome != OutcomeSynced {
			t.Fatalf("sync: %+v", r)
		}
		if s := f.sleepsSoFar(); len(s) != 1 || s[0] != 7*time.Second {
			t.Errorf("Retry-After %q: slept %v, want [7s]", ra, s)
		}
	}
	// The bound the CLI uses.
	if delivery.DefaultMaxRetryAfter > 5*time.Minute {
		t.Errorf("default Retry-After bound %s is above 5 min", delivery.DefaultMaxRetryAfter)
	}
}
