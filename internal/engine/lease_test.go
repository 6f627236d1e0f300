package engine

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docora/docora/internal/store"
)

// TestLeaseHeldByOther: a link leased by another live process is skipped — nothing fetched,
// nothing sent, not a failure — and a lease whose holder died (expired) is taken over.
func TestLeaseHeldByOther(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit(map[string]string{"a.txt": "a\n"})
	ok, err := f.st.AcquireLease(ctx, f.appID, f.repoID, "otherhost-4242-deadbeef", 30*time.Second)
	if err != nil || !ok {
		t.Fatalf("lease for the other process: %v %v", ok, err)
	}
	refs := f.git.InfoRefs()
	results, err := f.eng.Pass(ctx, PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Outcome != OutcomeSkipped || results[0].Failed() ||
		!strings.Contains(results[0].Reason, "leased by another docora process") {
		t.Fatalf("pass over a leased link: %+v", results)
	}
	if f.git.InfoRefs() != refs || len(f.rec.requests()) != 0 {
		t.Errorf("a skipped link reached git (%d) or the receiver (%d)", f.git.InfoRefs()-refs, len(f.rec.requests()))
	}
	l := f.linkView(f.appID)
	if l.Status != store.StatusPendingSnapshot || l.RetryCount != 0 || l.LastError != "" || l.LeaseOwner != "otherhost-4242-deadbeef" {
		t.Errorf("skipped link changed: %+v", l.Link)
	}
	// --watch leaves it alone too.
	if Due(time.Minute)(l, f.clock.Now()) {
		t.Errorf("a link leased by another process is due")
	}

	// The holder dies: it stops renewing and the lease expires.
	f.clock.Advance(30*time.Second + time.Millisecond)
	if !Due(time.Minute)(f.linkView(f.appID), f.clock.Now()) {
		t.Errorf("a link whose lease expired is not due")
	}
	if r := f.sync(); r.Outcome != OutcomeSynced || r.Delivered.Created != 1 {
		t.Fatalf("sync after the lease expired: %+v", r)
	}
	if l := f.linkView(f.appID); l.LeaseOwner != "" || l.LeaseExpiresAt != nil {
		t.Errorf("lease not released after the run: %q %v", l.LeaseOwner, l.LeaseExpiresAt)
	}
}

// TestLeaseRenewedWhileWorking: a run that lasts longer than the lease lifetime keeps its lease
// (renewed at a third of it), so a second engine skips the link meanwhile.
func TestLeaseRenewedWhileWorking(t *testing.T) {
	f := newFixture(t, func(c *fixtureConfig) { c.engine.LeaseTTL = 300 * time.Millisecond })
	f.clock.run()
	f.commit(map[string]string{"a.txt": "a\n", "b.txt": "b\n"})
	started := make(chan struct{})
	release := make(chan struct{})
	f.rec.setFaults(func(n int, r received) *fault {
		if n == 0 {
			close(started)
			<-release
		}
		return nil
	})
	var wg sync.WaitGroup
	var first Result
	wg.Go(func() { first = f.sync() })
	<-started
	time.Sleep(time.Second) // more than three lease lifetimes
	other := &Engine{Store: f.st, Git: f.eng.Git, Client: f.eng.Client, Policy: f.eng.Policy,
		Options: f.eng.Options, Now: f.clock.Now}
	second := other.SyncLink(context.Background(), f.appID, f.repoID)
	close(release)
	wg.Wait()
	if second.Outcome != OutcomeSkipped {
		t.Errorf("second engine while the first works: %+v", second)
	}
	if first.Outcome != OutcomeSynced || first.Delivered.Created != 2 {
		t.Errorf("first engine: %+v", first)
	}
}

// TestLeaseLostStopsDeliveries: when another process takes the lease over (the holder was
// presumed dead), the holder finishes and records its in-flight request and sends nothing more.
func TestLeaseLostStopsDeliveries(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *fixtureConfig) { c.engine.LeaseTTL = 300 * time.Millisecond })
	f.clock.run()
	f.commit(map[string]string{"a.txt": "a\n", "b.txt": "b\n", "c.txt": "c\n"})
	f.rec.setFaults(func(n int, r received) *fault {
		if n == 0 {
			if _, err := f.st.DB().ExecContext(ctx, `UPDATE links SET lease_owner = 'thief'`); err != nil {
				t.Error(err)
			}
			time.Sleep(400 * time.Millisecond) // the holder's renewal finds the lease gone
		}
		return nil
	})
	r := f.sync()
	if r.Outcome != OutcomeStopped || !strings.Contains(r.Reason, "lease") || r.Delivered.Created != 1 || r.Pending != 2 {
		t.Fatalf("run that lost its lease: %+v", r)
	}
	if n := len(f.rec.requests()); n != 1 {
		t.Errorf("%d requests after the lease was lost, want 1", n)
	}
	state, _ := f.st.DeliveryState(ctx, f.appID, f.repoID)
	if e := state["a.txt"]; e.SHA != sha("a\n") || e.InFlightSHA != "" {
		t.Errorf("in-flight request not recorded: %+v", e)
	}
	if l := f.linkView(f.appID); l.LeaseOwner != "thief" {
		t.Errorf("the run released a lease it no longer held: %q", l.LeaseOwner)
	}
}
