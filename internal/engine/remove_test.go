package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/docora/docora/internal/store"
)

func fiveFiles(f *fixture) {
	files := map[string]string{}
	for i := range 5 {
		files[fmt.Sprintf("f%d.txt", i)] = fmt.Sprintf("file %d\n", i)
	}
	f.commit(files)
}

// TestRemovedMidRunStopsDeliveries: removing the link or the app while its run is delivering
// stops it after the request in flight: no further request reaches the receiver, and the run
// is interrupted, not failed.
func TestRemovedMidRunStopsDeliveries(t *testing.T) {
	cases := []struct {
		name   string
		shared bool // another app watches the repository too, so it survives the removal
		remove func(f *fixture) error
	}{
		{"link", false, func(f *fixture) error { _, err := f.st.DeleteLink(context.Background(), f.appID, f.repoID); return err }},
		{"shared link", true, func(f *fixture) error {
			_, err := f.st.DeleteLink(context.Background(), f.appID, f.repoID)
			return err
		}},
		{"app", false, func(f *fixture) error { _, err := f.st.DeleteApp(context.Background(), f.appID); return err }},
		{"shared app", true, func(f *fixture) error { _, err := f.st.DeleteApp(context.Background(), f.appID); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if c.shared {
				f.addApp("app_2")
				f.link("app_2", "")
			}
			fiveFiles(f)
			f.rec.setAfter(func(n int, r received) {
				if n == 1 {
					if err := c.remove(f); err != nil {
						t.Error(err)
					}
				}
			})
			r := f.sync()
			if r.Outcome != OutcomeStopped || r.Failed() || r.Reason == "" {
				t.Errorf("run whose link went away: %+v", r)
			}
			if n := len(f.rec.requests()); n != 2 {
				t.Errorf("%d requests, want 2 (none after the removal)", n)
			}
			if _, err := f.st.GetLink(context.Background(), f.appID, f.repoID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("link after removal: %v", err)
			}
		})
	}
}

// TestResetMidRunStops: `repo reset` or a re-registration during a run bumps the link's
// generation; the run stops after its in-flight request and does not mark the link synced, so
// the reset's re-scan happens (a re-registration re-sends every file).
func TestResetMidRunStops(t *testing.T) {
	for _, name := range []string{"reset", "re-register"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			fiveFiles(f)
			f.rec.setAfter(func(n int, r received) {
				if n != 1 {
					return
				}
				if name == "reset" {
					if err := f.st.ResetLink(ctx, f.appID, f.repoID); err != nil {
						t.Error(err)
					}
					return
				}
				f.link(f.appID, "")
			})
			r := f.sync()
			f.rec.setAfter(nil)
			if r.Outcome != OutcomeStopped || r.Failed() {
				t.Errorf("run whose link was reset: %+v", r)
			}
			if n := len(f.rec.requests()); n != 2 {
				t.Errorf("%d requests, want 2 (none after the reset)", n)
			}
			l := f.linkView(f.appID)
			if l.Status == store.StatusSynced || l.CommitSHA != "" {
				t.Errorf("the stale run recorded its commit: %+v", l.Link)
			}
			r = f.sync()
			// Reset keeps the delivery state: the rest, and the change that was in flight (the
			// stale run did not record it, so it is uncertain and sent again).
			want := 4
			if name == "re-register" {
				want = 5 // a re-registration starts from nothing
			}
			if r.Outcome != OutcomeSynced || r.Delivered.Created != want {
				t.Errorf("sync after the %s: %+v, want %d created", name, r, want)
			}
			assertMirrorExact(t, f.mirrorFiles(), f.treeFiles())
		})
	}
}
