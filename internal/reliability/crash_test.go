package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docora/docora/internal/store"
)

// crashFiles is the repository of the crash trials: 200 small files (text, some binary) and
// four files large enough to go out in 13 chunks each with the trials' chunk settings.
func crashFiles() map[string]string {
	rnd := rand.New(rand.NewPCG(7, 11))
	files := map[string]string{}
	for i := range 200 {
		if i%10 == 9 {
			b := make([]byte, 512+rnd.IntN(1024))
			for j := range b {
				b[j] = byte(rnd.UintN(256))
			}
			files[fmt.Sprintf("bin/%03d.bin", i)] = string(b)
			continue
		}
		files[fmt.Sprintf("docs/%02d/%03d.md", i/20, i)] = fmt.Sprintf("# File %d\n\n%s\n", i, strings.Repeat("lorem ipsum ", 20+rnd.IntN(100)))
	}
	for i := range 4 {
		b := make([]byte, 300<<10)
		for j := range b {
			b[j] = byte(rnd.UintN(256))
		}
		files[fmt.Sprintf("large/%d.bin", i)] = string(b)
	}
	return files
}

var crashSyncArgs = []string{"sync", "--json", "--chunk-threshold", "65536", "--chunk-size", "32768", "--concurrency", "1"}

// crashStats sums up the trials.
type crashStats struct {
	trials, kills      int
	killsDelivering    int // kills that landed while deliveries were going on
	inFlightAtKill     int // paths marked in flight when the process died
	deliveries         int // distinct delivery ids completed
	duplicates         int // completions beyond the first, per delivery id
	mirrorsExact       int
	killedBeforeFirst  int
	killedAfterLast    int
	duplicatesPerTrial []int
}

// TestCrashTrials kills `docora sync` with SIGKILL at random moments of a large delivery, then
// runs it again until it completes, and checks SPEC §5's promise: the receiver ends with an
// exact mirror, and nothing was delivered twice except a delivery in flight at a kill (at
// most one per kill, since one link's deliveries are sequential).
//
// The default run makes 3 trials (1 with -short); DOCORA_CRASH_TRIALS=20 makes 20.
// DOCORA_CRASH_SEED repeats a run's kill times. A dead process's lease would keep the link for
// its 30 s lifetime; the trials move its expiry into the past instead of waiting (lease
// expiry itself is tested in internal/engine).
func TestCrashTrials(t *testing.T) {
	trials := 3
	if s := os.Getenv("DOCORA_CRASH_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("DOCORA_CRASH_TRIALS=%q: want a positive number", s)
		}
		trials = n
	} else if testing.Short() {
		trials = 1
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DOCORA_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("crash trials: %d, seed %d (DOCORA_CRASH_SEED)", trials, seed)
	rnd := rand.New(rand.NewPCG(seed, 1))

	files := crashFiles()
	git, repo := newRepo(t, "acme/crash.git", files)
	want := readTree(t, repo.Dir())
	rv := newReceiver(t)

	// A reference run without a kill gives the time scale of a whole delivery.
	home := t.TempDir()
	setupLink(t, home, "Crash reference", rv.URL()+"/", git.URL("acme/crash.git"))
	start := time.Now()
	mustDocora(t, home, crashSyncArgs...)
	full := time.Since(start)
	if d := mirrorDiff(want, readTree(t, rv.mirrorDir())); d != "" {
		t.Fatalf("reference run: mirror differs: %s", d)
	}
	ref := rv.requests()
	lead := ref[0].At.Sub(start) // start-up, fetch and hashing, before the first delivery
	t.Logf("reference run: %s (first delivery after %s), %d requests, %d deliveries", full.Round(time.Millisecond),
		lead.Round(time.Millisecond), len(ref), len(completions(ref)))
	total := len(completions(ref))

	var st crashStats
	for trial := range trials {
		rv.reset()
		home := t.TempDir()
		setupLink(t, home, fmt.Sprintf("Crash %d", trial), rv.URL()+"/", git.URL("acme/crash.git"))
		kills := 1 + trial%2 // odd trials die twice: once more during the recovery run
		inFlight := map[string]bool{}
		for k := range kills {
			// A moment of the delivery still to do: the start-up, then as much delivery time as
			// the remaining deliveries take (the first kill may also land before or during
			// the fetch).
			before := len(completions(rv.requests()))
			remaining := float64(total-before) / float64(total)
			at := time.Duration(rnd.Float64() * (float64(lead) + remaining*float64(full-lead)))
			killAfter(t, home, at)
			after := rv.requests()
			done := len(completions(after))
			st.kills++
			switch {
			case done == before:
				st.killedBeforeFirst++
			case done >= total:
				st.killedAfterLast++
			default:
				st.killsDelivering++
			}
			marked := afterCrash(t, home)
			for _, p := range marked {
				inFlight[p] = true
			}
			st.inFlightAtKill += len(marked)
			t.Logf("trial %d kill %d at %s: %d deliveries done, in flight: %v", trial, k+1, at.Round(time.Millisecond), done, marked)
		}
		r := docora(t, home, crashSyncArgs...)
		if r.code != 0 {
			t.Fatalf("trial %d: recovery run exit %d\n%s\n%s", trial, r.code, r.stdout, r.stderr)
		}
		if d := mirrorDiff(want, readTree(t, rv.mirrorDir())); d != "" {
			t.Errorf("trial %d: mirror differs after recovery: %s", trial, d)
		} else {
			st.mirrorsExact++
		}
		ls := status(t, home)
		if len(ls) != 1 || ls[0].Status != store.StatusSynced || ls[0].CommitSHA == nil || *ls[0].CommitSHA != repo.Head() ||
			ls[0].FilesDelivered != len(files) {
			t.Errorf("trial %d: status after recovery %+v", trial, ls)
		}
		reqs := rv.requests()
		comp := completions(reqs)
		paths := map[string]string{}
		for _, rq := range reqs {
			paths[rq.Delivery] = rq.Path
		}
		dups := 0
		for id, n := range comp {
			if n == 1 {
				continue
			}
			dups += n - 1
			if !inFlight[paths[id]] {
				t.Errorf("trial %d: %s (%s) delivered %d times but was not in flight at a kill", trial, paths[id], id, n)
			}
		}
		if dups > kills {
			t.Errorf("trial %d: %d duplicate deliveries for %d kills", trial, dups, kills)
		}
		if len(comp) != len(completions(ref)) {
			t.Errorf("trial %d: %d distinct deliveries, want %d", trial, len(comp), len(completions(ref)))
		}
		st.trials++
		st.deliveries += len(comp)
		st.duplicates += dups
		st.duplicatesPerTrial = append(st.duplicatesPerTrial, dups)
	}
	t.Logf("CRASH TRIALS: %d trials, %d kills (%d mid-delivery, %d before the first delivery, %d after the last); "+
		"%d paths in flight at the kills; %d deliveries; %d duplicates (per trial %v); %d/%d mirrors exact",
		st.trials, st.kills, st.killsDelivering, st.killedBeforeFirst, st.killedAfterLast, st.inFlightAtKill,
		st.deliveries, st.duplicates, st.duplicatesPerTrial, st.mirrorsExact, st.trials)
}

// killAfter starts `docora sync` over home and kills it with SIGKILL after d (or lets it
// finish when it is faster).
func killAfter(t *testing.T, home string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := docoraCmd(ctx, home, crashSyncArgs...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return
	case <-time.After(d):
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Logf("kill: %v", err)
	}
	<-done
}

// afterCrash returns the paths the dead process left in flight, and ends its lease as its
// expiry would.
func afterCrash(t *testing.T, home string) []string {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(home, "docora.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The dead process's last records are in its delivery journal: replay it, as the next
	// run of the link will, before asking what was in flight.
	links, err := st.ListLinks(ctx, store.LinkFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if err := st.Recover(ctx, l.AppID, l.Repo.ID); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := st.DB().QueryContext(ctx, `SELECT path FROM delivery_state WHERE inflight_sha IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	rows.Close()
	sort.Strings(paths)
	if _, err := st.DB().ExecContext(ctx, `UPDATE links SET lease_expires_at = '2000-01-01T00:00:00.000Z'
		WHERE lease_owner IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	return paths
}
