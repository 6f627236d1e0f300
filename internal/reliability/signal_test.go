package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docora/docora/internal/store"
)

// TestWatchStopsOnSignal: SIGINT or SIGTERM while `docora sync --watch` has a request in flight
// lets that request finish and be recorded, sends nothing more, leaves the link consistent
// (lease released, status as before the run) and exits 0; the next run sends the rest, and not
// the recorded request again.
func TestWatchStopsOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			files := map[string]string{}
			for i := range 10 {
				files[fmt.Sprintf("f%d.txt", i)] = fmt.Sprintf("file %d\n", i)
			}
			git, repo := newRepo(t, "acme/sig.git", files)
			rv := newReceiver(t)
			home := t.TempDir()
			appID, repoID := setupLink(t, home, "Signals", rv.URL()+"/", git.URL("acme/sig.git"))

			arrived, release := make(chan request, 1), make(chan struct{})
			rv.setHook(func(n int, r request) int {
				if n == 1 {
					arrived <- r
					<-release
				}
				return 0
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := docoraCmd(ctx, home, "sync", "--watch", "--interval", "1h", "--json")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var inFlight request
			select {
			case inFlight = <-arrived:
			case err := <-exited:
				t.Fatalf("docora exited before the second request: %v\n%s", err, errb.String())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				t.Fatalf("docora exited with a request in flight: %v", err)
			case <-time.After(300 * time.Millisecond):
			}
			close(release)
			var err error
			select {
			case err = <-exited:
			case <-time.After(20 * time.Second):
				t.Fatalf("docora did not stop after %s", sig)
			}
			if err != nil {
				t.Fatalf("docora after %s: %v\nstderr: %s", sig, err, errb.String())
			}
			if n := len(rv.requests()); n != 2 {
				t.Errorf("%d requests, want 2 (none after the signal)", n)
			}
			var res syncResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Outcome != "interrupted" || res.Delivered.Created != 2 {
				t.Errorf("watch output %q: %+v %v", out.String(), res, err)
			}

			// The store as the stopped process left it.
			st, err := store.Open(ctx, filepath.Join(home, "docora.db"))
			if err != nil {
				t.Fatal(err)
			}
			state, err := st.DeliveryState(ctx, appID, repoID)
			if err != nil {
				t.Fatal(err)
			}
			var lease, linkStatus string
			if err := st.DB().QueryRowContext(ctx, `SELECT COALESCE(lease_owner, ''), status FROM links`).Scan(&lease, &linkStatus); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if e := state[inFlight.Path]; e.SHA != inFlight.SHA || e.InFlightSHA != "" {
				t.Errorf("the in-flight request (%s) was not recorded: %+v", inFlight.Path, e)
			}
			if len(state) != 2 || lease != "" || linkStatus != store.StatusPendingSnapshot {
				t.Errorf("after the stop: %d paths recorded, lease %q, status %q", len(state), lease, linkStatus)
			}

			rv.setHook(nil)
			mustDocora(t, home, "sync")
			if d := mirrorDiff(readTree(t, repo.Dir()), readTree(t, rv.mirrorDir())); d != "" {
				t.Errorf("mirror after the next run: %s", d)
			}
			for id, n := range completions(rv.requests()) {
				if n > 1 {
					t.Errorf("delivery %s sent %d times", id, n)
				}
			}
			if strings.Contains(errb.String(), "panic") {
				t.Errorf("stderr: %s", errb.String())
			}
		})
	}
}
