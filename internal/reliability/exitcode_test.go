package reliability

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSyncExitCodeAndRetries: against a failing receiver `docora sync` honours --max-attempts
// and --timeout, exits 3 and records the failure (status failed, retry count, last error) run
// after run; once the receiver heals the next run exits 0 and resets all of it.
func TestSyncExitCodeAndRetries(t *testing.T) {
	git, repo := newRepo(t, "acme/exit.git", map[string]string{"a.txt": "a\n", "b.txt": "b\n"})
	rv := newReceiver(t)
	home := t.TempDir()
	setupLink(t, home, "Exit codes", rv.URL()+"/", git.URL("acme/exit.git"))

	// A receiver that never answers: --timeout bounds each attempt.
	rv.setHook(func(n int, r request) int { time.Sleep(2 * time.Second); return http.StatusOK })
	start := time.Now()
	r := docora(t, home, "sync", "--max-attempts", "2", "--backoff-base", "10ms", "--timeout", "200ms")
	if r.code != 3 || !strings.Contains(r.stderr, "docora:") {
		t.Fatalf("sync against a silent receiver: exit %d\n%s", r.code, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("two 200ms attempts took %s", d)
	}
	if n := len(rv.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (--max-attempts)", n)
	}
	ls := status(t, home)
	if len(ls) != 1 || ls[0].Status != "failed" || ls[0].RetryCount != 1 || ls[0].LastError == nil ||
		!strings.Contains(*ls[0].LastError, "no response within 200ms") {
		t.Fatalf("status after a timeout: %+v", ls)
	}

	rv.reset()
	rv.setHook(func(int, request) int { return http.StatusInternalServerError })
	for want := 2; want <= 3; want++ {
		r := docora(t, home, "sync", "--max-attempts", "3", "--backoff-base", "1ms")
		if r.code != 3 {
			t.Fatalf("sync against a failing receiver: exit %d\n%s", r.code, r.stderr)
		}
		ls := status(t, home)
		if ls[0].Status != "failed" || ls[0].RetryCount != want || ls[0].LastError == nil || !strings.Contains(*ls[0].LastError, "HTTP 500") {
			t.Errorf("status after failure %d: %+v", want, ls[0])
		}
	}
	if n := len(rv.requests()); n != 6 {
		t.Errorf("%d requests over two runs, want 6 (--max-attempts 3)", n)
	}

	rv.setHook(nil)
	mustDocora(t, home, "sync")
	ls = status(t, home)
	if ls[0].Status != "synced" || ls[0].RetryCount != 0 || ls[0].LastError != nil || ls[0].CommitSHA == nil ||
		*ls[0].CommitSHA != repo.Head() {
		t.Errorf("status after recovery: %+v", ls[0])
	}
	if d := mirrorDiff(readTree(t, repo.Dir()), readTree(t, rv.mirrorDir())); d != "" {
		t.Errorf("mirror: %s", d)
	}
}
