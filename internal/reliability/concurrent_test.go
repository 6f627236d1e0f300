package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/gittest"
)

// TestTwoProcessesOneStore: two `docora sync` processes started together on one store (two
// overlapping cron runs) share the links: each link is processed by one of them, the receiver
// never sees a delivery id twice, neither hits "database is locked", both exit 0, and a link
// found leased is reported skipped.
func TestTwoProcessesOneStore(t *testing.T) {
	git := gittest.NewServer(t)
	rv := newReceiver(t)
	home := t.TempDir()
	for r := range 3 {
		name := fmt.Sprintf("acme/r%d.git", r)
		repo := gittest.NewRepo(t, git, name)
		for i := range 40 {
			repo.WriteFile(fmt.Sprintf("f%02d.txt", i), fmt.Sprintf("repo %d file %d\n", r, i))
		}
		repo.Commit("fixture")
		repo.Push()
		for a := range 2 {
			setupLink(t, home, fmt.Sprintf("App %d-%d", r, a), rv.URL()+"/", git.URL(name))
		}
	}
	// Slow enough that the processes overlap on every link.
	rv.mu.Lock()
	rv.delay = 3 * time.Millisecond
	rv.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	runs := make([]run, 2)
	for i := range runs {
		wg.Go(func() {
			cmd := docoraCmd(ctx, home, "sync", "--json", "--concurrency", "3")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			runs[i] = run{stdout: out.String(), stderr: errb.String()}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				runs[i].code = ee.ExitCode()
			} else if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	synced := map[string]int{}
	skipped := 0
	for i, r := range runs {
		if r.code != 0 {
			t.Errorf("process %d: exit %d\n%s", i, r.code, r.stderr)
		}
		for _, bad := range []string{"database is locked", "SQLITE_BUSY", "busy"} {
			if strings.Contains(r.stderr, bad) {
				t.Errorf("process %d: %q in stderr:\n%s", i, bad, r.stderr)
			}
		}
		for _, res := range parseResults(t, r.stdout) {
			key := res.AppID + "/" + res.RepositoryID
			switch res.Outcome {
			case "synced":
				synced[key]++
			case "skipped":
				if !strings.Contains(res.Reason, "leased by another docora process") {
					t.Errorf("process %d: %s skipped for %q", i, key, res.Reason)
				}
				skipped++
			case "unchanged": // the other process had finished it
			default:
				t.Errorf("process %d: %s %s %s", i, key, res.Outcome, res.Error)
			}
		}
	}
	if len(synced) != 6 {
		t.Errorf("%d links synced, want 6: %v", len(synced), synced)
	}
	for k, n := range synced {
		if n != 1 {
			t.Errorf("%s synced by %d processes", k, n)
		}
	}
	if skipped == 0 {
		t.Errorf("no link was reported leased: the processes did not overlap")
	}
	reqs := rv.requests()
	seen := map[string]int{}
	for _, rq := range reqs {
		seen[rq.Delivery]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("delivery %s received %d times", id, n)
		}
	}
	if len(reqs) != 6*40 {
		t.Errorf("%d requests, want %d", len(reqs), 6*40)
	}
	for _, l := range status(t, home) {
		if l.Status != "synced" || l.FilesDelivered != 40 {
			t.Errorf("link after both runs: %+v", l)
		}
	}
	t.Logf("two processes: %d links synced once each, %d leased-link skips, %d requests, no duplicate delivery id",
		len(synced), skipped, len(reqs))
}
