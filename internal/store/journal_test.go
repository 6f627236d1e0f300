package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// journalFixture is a store with one app watching one repository.
type journalFixture struct {
	s      *Store
	path   string // the database file
	repoID string
	gen    int64
}

func newJournalFixture(t testing.TB) *journalFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docora.db")
	s := openStore(t, path)
	if err := s.CreateApp(context.Background(), testApp("app_1")); err != nil {
		t.Fatal(err)
	}
	v := register(t, s, "app_1", "https://h/o/n", "")
	return &journalFixture{s: s, path: path, repoID: v.Repo.ID, gen: v.Generation}
}

func (f *journalFixture) run(t *testing.T) *LinkRun {
	t.Helper()
	r, err := f.s.Run("app_1", f.repoID, f.gen).WithJournal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.j == nil {
		t.Fatal("a store on a file should journal")
	}
	return r
}

func (f *journalFixture) state(t *testing.T) map[string]StateEntry {
	t.Helper()
	st, err := f.s.DeliveryState(context.Background(), "app_1", f.repoID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *journalFixture) journalFile() string {
	return journalPath(journalDir(f.path), "app_1", f.repoID)
}

// step is one record of a run, applied the same way with and without a journal.
type step struct {
	kind      byte
	path, sha string
	next      *Mark
}

func (st step) apply(ctx context.Context, r *LinkRun) error {
	switch st.kind {
	case jInFlight:
		return r.MarkInFlight(ctx, st.path, st.sha)
	case jDeleted:
		return r.ConfirmDeleted(ctx, st.path)
	default:
		return r.ConfirmDelivered(ctx, st.path, st.sha, st.next)
	}
}

// randomSteps are the records of runs over a few paths: in flight, confirmed (with or
// without the next change in flight), deleted, in any order.
func randomSteps(rng *rand.Rand, n int) []step {
	path := func() string { return fmt.Sprintf("dir/f%d.txt", rng.IntN(6)) }
	sha := func() string { return fmt.Sprintf("sha-%d", rng.IntN(4)) }
	steps := make([]step, n)
	for i := range steps {
		switch rng.IntN(4) {
		case 0:
			steps[i] = step{kind: jInFlight, path: path(), sha: sha()}
		case 1:
			steps[i] = step{kind: jConfirmed, path: path(), sha: sha()}
		case 2:
			steps[i] = step{kind: jNext, path: path(), sha: sha(), next: &Mark{Path: path(), SHA: sha()}}
		default:
			steps[i] = step{kind: jDeleted, path: path()}
		}
	}
	return steps
}

// TestJournalFoldEqualsDirectWrites: whatever the records, folding a journal leaves exactly the
// delivery state that writing each record to the store leaves.
func TestJournalFoldEqualsDirectWrites(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 60 {
		steps := randomSteps(rng, 1+rng.IntN(40))
		direct, journalled := newJournalFixture(t), newJournalFixture(t)
		seed := randomSteps(rng, 8) // a state the runs start from
		for _, f := range []*journalFixture{direct, journalled} {
			r := f.s.Run("app_1", f.repoID, f.gen)
			for _, st := range seed {
				if err := st.apply(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			r.Close()
		}
		rd := direct.s.Run("app_1", direct.repoID, direct.gen)
		rj := journalled.run(t)
		for _, st := range steps {
			if err := st.apply(ctx, rd); err != nil {
				t.Fatal(err)
			}
			if err := st.apply(ctx, rj); err != nil {
				t.Fatal(err)
			}
		}
		rd.Close()
		if err := rj.Close(); err != nil {
			t.Fatal(err)
		}
		if d, j := direct.state(t), journalled.state(t); fmt.Sprint(d) != fmt.Sprint(j) {
			t.Fatalf("trial %d: steps %+v\ndirect    %v\njournalled %v", trial, steps, d, j)
		}
		if _, err := os.Stat(journalled.journalFile()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("trial %d: journal left after Close: %v", trial, err)
		}
	}
}

// TestJournalReplayAfterCrash: a run that dies (no Close) leaves its records in the journal
// only; the next run's WithJournal replays them before anything reads the state, and replaying
// again changes nothing.
func TestJournalReplayAfterCrash(t *testing.T) {
	ctx := context.Background()
	f := newJournalFixture(t)
	r := f.run(t)
	for _, st := range []step{
		{kind: jInFlight, path: "a", sha: "s1"},
		{kind: jNext, path: "a", sha: "s1", next: &Mark{Path: "b", SHA: "t1"}},
		{kind: jConfirmed, path: "b", sha: "t1"},
		{kind: jInFlight, path: "c", sha: "u1"}, // in flight when the process dies
	} {
		if err := st.apply(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if st := f.state(t); len(st) != 0 {
		t.Fatalf("journalled records reached the store before a fold: %v", st)
	}
	want := map[string]StateEntry{"a": {SHA: "s1"}, "b": {SHA: "t1"}, "c": {InFlightSHA: "u1"}}

	// "Crash": the file stays as the process left it. A second process opens the store.
	s2 := openStore(t, f.path)
	crashed, err := os.ReadFile(f.journalFile())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Run("app_1", f.repoID, f.gen).WithJournal(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := s2.DeliveryState(ctx, "app_1", f.repoID)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after replay: %v, want %v", got, want)
	}
	if _, err := os.Stat(f.journalFile()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("replayed journal not removed: %v", err)
	}
	// A crash between the replay's commit and the removal replays the same records again.
	if err := os.WriteFile(f.journalFile(), crashed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s2.Recover(ctx, "app_1", f.repoID); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a second replay: %v, want %v", got, want)
	}
}

// TestJournalTornTail: a record cut short or corrupted ends the replay there; the records
// before it are applied.
func TestJournalTornTail(t *testing.T) {
	var b []byte
	b = encodeRecord(b, jHeader, "app_1", "repo_1", "3")
	b = encodeRecord(b, jConfirmed, "a", "s1")
	whole := len(b)
	b = encodeRecord(b, jConfirmed, "b", "t1")
	for name, data := range map[string][]byte{
		"cut":     b[:len(b)-3],
		"corrupt": append(append([]byte{}, b[:len(b)-1]...), b[len(b)-1]^0xff),
		"length":  append(append([]byte{}, b[:whole]...), 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 'C'),
	} {
		t.Run(name, func(t *testing.T) {
			app, repo, gen, ops, ok := parseJournal(data)
			if !ok || app != "app_1" || repo != "repo_1" || gen != 3 {
				t.Fatalf("header: %q %q %d %v", app, repo, gen, ok)
			}
			if len(ops) != 1 || ops[0].path != "a" || ops[0].sha != "s1" {
				t.Fatalf("ops = %+v, want the first record only", ops)
			}
		})
	}
	if _, _, _, _, ok := parseJournal(encodeRecord(nil, jConfirmed, "a", "s1")); ok {
		t.Fatal("a journal without a header was accepted")
	}
}

// TestJournalVoid: records of a run whose link was re-registered (state cleared) or removed
// are discarded, by the run's own fold and by a replay; a reset (state kept) applies them.
func TestJournalVoid(t *testing.T) {
	ctx := context.Background()
	t.Run("re-register", func(t *testing.T) {
		f := newJournalFixture(t)
		r := f.run(t)
		if err := r.ConfirmDelivered(ctx, "a", "s1", nil); err != nil {
			t.Fatal(err)
		}
		register(t, f.s, "app_1", "https://h/o/n", "") // a new generation, state cleared
		if err := r.ConfirmDelivered(ctx, "b", "t1", nil); !errors.Is(err, ErrStale) {
			t.Fatalf("record after re-registration: %v, want ErrStale", err)
		}
		if err := r.Flush(ctx); !errors.Is(err, ErrStale) {
			t.Fatalf("fold after re-registration: %v, want ErrStale", err)
		}
		r.Close()
		if st := f.state(t); len(st) != 0 {
			t.Fatalf("stale records applied: %v", st)
		}
	})
	t.Run("reset", func(t *testing.T) {
		f := newJournalFixture(t)
		r := f.run(t)
		if err := r.ConfirmDelivered(ctx, "a", "s1", &Mark{Path: "b", SHA: "t1"}); err != nil {
			t.Fatal(err)
		}
		if err := f.s.ResetLink(ctx, "app_1", f.repoID); err != nil {
			t.Fatal(err)
		}
		if err := r.ConfirmDelivered(ctx, "b", "t1", nil); !errors.Is(err, ErrStale) {
			t.Fatalf("record after reset: %v, want ErrStale", err)
		}
		r.Close()
		want := map[string]StateEntry{"a": {SHA: "s1"}, "b": {InFlightSHA: "t1"}}
		if st := f.state(t); fmt.Sprint(st) != fmt.Sprint(want) {
			t.Fatalf("after reset: %v, want %v (reset keeps what was delivered)", st, want)
		}
	})
	t.Run("removed", func(t *testing.T) {
		f := newJournalFixture(t)
		r := f.run(t)
		if err := r.MarkInFlight(ctx, "a", "s1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.DeleteLink(ctx, "app_1", f.repoID); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(f.journalFile()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("journal of a removed link kept: %v", err)
		}
		if err := r.ConfirmDelivered(ctx, "a", "s1", nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("record after removal: %v, want ErrNotFound", err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close after removal: %v", err)
		}
	})
	t.Run("replay of an old generation", func(t *testing.T) {
		f := newJournalFixture(t)
		r := f.run(t)
		if err := r.ConfirmDelivered(ctx, "a", "s1", nil); err != nil {
			t.Fatal(err)
		}
		old, _ := os.ReadFile(f.journalFile())
		r.Close()
		v := register(t, f.s, "app_1", "https://h/o/n", "")
		if err := os.WriteFile(f.journalFile(), old, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Run("app_1", f.repoID, v.Generation).WithJournal(ctx); err != nil {
			t.Fatal(err)
		}
		if st := f.state(t); len(st) != 0 {
			t.Fatalf("records of generation %d replayed into generation %d: %v", f.gen, v.Generation, st)
		}
	})
}

// TestJournalFoldsWhenLong: a long run folds every journalFoldRecords records, so the journal
// and a replay stay bounded and the store follows the run; the records after a fold are
// replayed after a crash like the others.
func TestJournalFoldsWhenLong(t *testing.T) {
	ctx := context.Background()
	f := newJournalFixture(t)
	r := f.run(t)
	for i := range journalFoldRecords + 10 {
		if err := r.ConfirmDelivered(ctx, fmt.Sprintf("f%05d", i), "s", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.state(t)); n != journalFoldRecords {
		t.Fatalf("%d paths in the store, want %d after one fold", n, journalFoldRecords)
	}
	b, err := os.ReadFile(f.journalFile())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, gen, ops, ok := parseJournal(b); !ok || gen != f.gen || len(ops) != 10 {
		t.Fatalf("journal after the fold: header %v (generation %d), %d records; want the 10 since the fold", ok, gen, len(ops))
	}
	info, err := os.Stat(f.journalFile())
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v, want 0600", info.Mode().Perm())
	}
	// The process dies here: the next run replays the 10.
	s2 := openStore(t, f.path)
	if err := s2.Recover(ctx, "app_1", f.repoID); err != nil {
		t.Fatal(err)
	}
	if n := len(f.state(t)); n != journalFoldRecords+10 {
		t.Fatalf("%d paths after the replay, want %d", n, journalFoldRecords+10)
	}
}

// TestJournalGrows: records beyond the journal's first mapping are kept and replayed.
func TestJournalGrows(t *testing.T) {
	ctx := context.Background()
	f := newJournalFixture(t)
	r := f.run(t)
	long := strings.Repeat("p", 3000)
	n := 3 * journalMapSize / 3000
	for i := range n {
		if err := r.MarkInFlight(ctx, fmt.Sprintf("%s/%05d", long, i), "s"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.Recover(ctx, "app_1", f.repoID); err != nil { // as if the run had died
		t.Fatal(err)
	}
	if got := len(f.state(t)); got != n {
		t.Fatalf("%d paths replayed, want %d", got, n)
	}
}

func FuzzJournalRecords(f *testing.F) {
	f.Add([]byte("a"), []byte("sha"), []byte{})
	f.Add([]byte("dir/\x00\xff\n"), []byte(""), []byte{8, 0, 0, 0})
	f.Fuzz(func(t *testing.T, path, sha, junk []byte) {
		b := encodeRecord(nil, jHeader, "app", "repo", "1")
		b = encodeRecord(b, jNext, string(path), string(sha), string(sha), string(path))
		_, _, _, ops, ok := parseJournal(append(b, junk...))
		if !ok || len(ops) < 1 || ops[0].path != string(path) || ops[0].nextPath != string(sha) || ops[0].nextSHA != string(path) || ops[0].sha != string(sha) {
			t.Fatalf("round trip: %+v %v", ops, ok)
		}
		parseJournal(junk) // must not panic
		if !bytes.Equal(b, encodeRecord(encodeRecord(nil, jHeader, "app", "repo", "1"), jNext, string(path), string(sha), string(sha), string(path))) {
			t.Fatal("encoding is not deterministic")
		}
	})
}

// TestRemovedAndAddedAgain: a run of a link that was removed and added again meanwhile (same
// app, same repository) does not take the new link for its own.
func TestRemovedAndAddedAgain(t *testing.T) {
	ctx := context.Background()
	f := newJournalFixture(t)
	r := f.run(t)
	if err := r.ConfirmDelivered(ctx, "a", "s1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DeleteLink(ctx, "app_1", f.repoID); err != nil {
		t.Fatal(err)
	}
	v := register(t, f.s, "app_1", "https://h/o/n", "")
	if v.Repo.ID != f.repoID || v.Generation == f.gen {
		t.Fatalf("added again: repository %s generation %d; the old run had %s generation %d", v.Repo.ID, v.Generation, f.repoID, f.gen)
	}
	if err := r.ConfirmDelivered(ctx, "b", "t1", nil); !errors.Is(err, ErrStale) {
		t.Fatalf("record of the old run: %v, want ErrStale", err)
	}
	r.Close()
	if st := f.state(t); len(st) != 0 {
		t.Fatalf("the old run's records reached the new link: %v", st)
	}
}
