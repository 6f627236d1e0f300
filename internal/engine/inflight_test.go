package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/internal/store"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestInFlightPathsAreResent checks SPEC §5's rules for paths a crash left in flight, on the
// state a crash leaves (status scanning, in-flight marks, nothing confirmed after them): each
// such path is sent again in its current state even when the recorded state matches it, and
// previous_sha and a delete's sha are the last sha the app confirmed, or the in-flight sha for a
// path it never confirmed.
func TestInFlightPathsAreResent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit(map[string]string{"a.txt": "A1\n", "b.txt": "B1\n", "c.txt": "C1\n", "d.txt": "D1\n", "e.txt": "E1\n"})
	if r := f.sync(); r.Outcome != OutcomeSynced {
		t.Fatalf("first sync: %+v", r)
	}
	// e.txt is deleted by the next commit; a.txt does not change.
	f.commit(map[string]string{"e.txt": ""})

	// What a run that died would have left behind:
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.st.BeginRun(ctx, f.appID, f.repoID))
	// b.txt: a delete of b was in flight (a delete marks the sha the app holds); b is still in
	// the tree with the confirmed content.
	must(f.st.MarkInFlight(ctx, f.appID, f.repoID, "b.txt", sha("B1\n")))
	// c.txt: C2 was in flight; the tree went back to the confirmed C1.
	must(f.st.MarkInFlight(ctx, f.appID, f.repoID, "c.txt", sha("C2\n")))
	// d.txt: its first create was in flight; never confirmed.
	_, err := f.st.DB().ExecContext(ctx, `DELETE FROM delivery_state WHERE path = 'd.txt'`)
	must(err)
	must(f.st.MarkInFlight(ctx, f.appID, f.repoID, "d.txt", sha("D1\n")))
	// n.txt: a create was in flight for a file that has gone from the tree since.
	must(f.st.MarkInFlight(ctx, f.appID, f.repoID, "n.txt", sha("N1\n")))
	// e.txt: E2 was in flight; the path is now deleted.
	must(f.st.MarkInFlight(ctx, f.appID, f.repoID, "e.txt", sha("E2\n")))
	f.rec.reset()

	r := f.sync()
	if r.Outcome != OutcomeSynced {
		t.Fatalf("sync after the crash: %+v", r)
	}
	var got []string
	for _, rq := range f.rec.requests() {
		s := fmt.Sprintf("%s %s sha=%s", rq.Endpoint, rq.Path, rq.SHA)
		if rq.HasPrevious {
			s += " previous=" + rq.PreviousSHA
		}
		got = append(got, s)
	}
	want := []string{
		"delete e.txt sha=" + sha("E1\n"), // last confirmed, not the in-flight E2
		"delete n.txt sha=" + sha("N1\n"), // never confirmed: the in-flight sha
		"create d.txt sha=" + sha("D1\n"), // never confirmed: a create, no previous_sha
		"update b.txt sha=" + sha("B1\n") + " previous=" + sha("B1\n"),
		"update c.txt sha=" + sha("C1\n") + " previous=" + sha("C1\n"),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests after the crash:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	state, err := f.st.DeliveryState(ctx, f.appID, f.repoID)
	must(err)
	for p, e := range state {
		if e.InFlightSHA != "" {
			t.Errorf("%s still in flight: %+v", p, e)
		}
	}
	if len(state) != 4 || state["c.txt"].SHA != sha("C1\n") || state["d.txt"].SHA != sha("D1\n") {
		t.Errorf("state after recovery: %v", state)
	}
	assertMirrorExact(t, f.mirrorFiles(), f.treeFiles())
	if r := f.sync(); r.Outcome != OutcomeUnchanged {
		t.Errorf("next sync: %+v", r)
	}
}

// crashImage copies what a process killed now leaves on disk: the database with its WAL and
// the delivery journals. restore puts that image back in place of whatever the process did
// afterwards, with the store reopened — as the next process would find it.
func crashImage(t *testing.T, f *fixture) (restore func()) {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for _, pattern := range []string{f.dbPath, f.dbPath + "-wal", f.dbPath + "-runs/*"} {
		m, _ := filepath.Glob(pattern)
		names = append(names, m...)
	}
	for i, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), b, 0o600); err != nil {
			t.Error(err)
		}
	}
	return func() {
		t.Helper()
		f.st.Close()
		for _, pattern := range []string{f.dbPath + "*", f.dbPath + "-runs/*"} {
			m, _ := filepath.Glob(pattern)
			for _, name := range m {
				if fi, err := os.Stat(name); err == nil && !fi.IsDir() {
					_ = os.Remove(name)
				}
			}
		}
		for i, name := range names {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f.restart()
	}
}

// TestCrashAfterReceiverAcceptedResends: the receiver applies a change and the process dies
// before recording it (kill -9: what was on disk at that moment is all the next process has).
// The next process finds the dead holder's lease, skips the link until the lease expires, then
// re-sends exactly that change — with the same delivery id — and nothing else twice.
func TestCrashAfterReceiverAcceptedResends(t *testing.T) {
	f := newFixture(t)
	files := map[string]string{}
	for i := range 6 {
		files[fmt.Sprintf("f%d.txt", i)] = fmt.Sprintf("file %d\n", i)
	}
	f.commit(files)
	ctx, cancel := context.WithCancel(context.Background())
	var restore func()
	f.rec.setAfter(func(n int, r received) {
		if n == 2 {
			// The process dies as the receiver answers the third request: nothing it does
			// after this counts (restore), and it sends nothing more (cancel).
			restore = crashImage(t, f)
			cancel()
		}
	})
	f.eng.SyncLink(ctx, f.appID, f.repoID)
	f.rec.setAfter(nil)
	if n := len(f.rec.requests()); n != 3 {
		t.Fatalf("%d requests before the crash, want 3", n)
	}
	restore()
	l := f.linkView(f.appID)
	if l.Status != store.StatusScanning || l.LeaseOwner == "" {
		t.Fatalf("link as the dead process left it: %+v", l.Link)
	}
	if r := f.sync(); r.Outcome != OutcomeSkipped || !strings.Contains(r.Reason, "leased") {
		t.Fatalf("sync while the dead holder's lease is valid: %+v", r)
	}
	f.clock.Advance(31 * time.Second) // the default lease lifetime is 30 s
	if r := f.sync(); r.Outcome != OutcomeSynced || r.Delivered.Created != 4 {
		t.Fatalf("sync after the lease expired: %+v", r)
	}
	count := map[string]int{}
	for _, rq := range f.rec.requests() {
		count[rq.Delivery+" "+rq.Path]++
	}
	dups := 0
	for k, n := range count {
		if n > 1 {
			dups++
			if n != 2 || !strings.HasSuffix(k, " f2.txt") {
				t.Errorf("%s delivered %d times", k, n)
			}
		}
	}
	if dups != 1 || len(count) != 6 {
		t.Errorf("%d duplicated deliveries of %d, want exactly f2.txt once more", dups, len(count))
	}
	assertMirrorExact(t, f.mirrorFiles(), f.treeFiles())
}
