package engine

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docora/docora/internal/store"
	"github.com/docora/docora/pkg/webhook"
)

func circuitOptions(c *fixtureConfig) {
	c.engine.CircuitThreshold = 3
	c.engine.CircuitCooldown = 10 * time.Minute
}

// syncFailedBody is SPEC §6's sync_failed body, field for field, as a pattern: the message
// and the timestamp vary.
func syncFailedBody(f *fixture, failures, retries int, until time.Time) *regexp.Regexp {
	q := regexp.QuoteMeta
	return regexp.MustCompile(`^\{"event":"sync_failed",` +
		`"repository":\{"repository_id":"` + q(f.repoID) + `","github_url":"` + q(f.git.URL("acme/docs.git")) +
		`","owner":"acme","name":"docs"\},` +
		`"error":\{"type":"git_failure","message":"(?:[^"\\]|\\.)*status code: 500(?:[^"\\]|\\.)*"\},` +
		`"circuit_breaker":\{"status":"open","consecutive_failures":` + fmt.Sprint(failures) + `,"threshold":3,` +
		`"cooldown_until":"` + q(webhook.FormatTimestamp(until)) + `"\},` +
		`"retry_count":` + fmt.Sprint(retries) + `,` +
		`"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"\}$`)
}

func syncFailedRequests(rec *recorder) []received {
	var out []received
	for _, rq := range rec.requests() {
		if rq.Endpoint == "sync_failed" {
			out = append(out, rq)
		}
	}
	return out
}

// TestCircuitBreaker: consecutive git failures open the repository's circuit at the threshold;
// every app watching it gets one signed sync_failed; while open the repository is not
// attempted (not even a ref listing) and its links are not failures; after the cooldown one
// half-open attempt is made — a failure re-opens the circuit, a success closes it.
func TestCircuitBreaker(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, circuitOptions)
	rec2 := f.addApp("app_2")
	f.link("app_2", "")
	f.commit(map[string]string{"a.txt": "a\n"})
	f.git.Fail("acme/docs.git", http.StatusInternalServerError)

	for i := 1; i <= 3; i++ {
		r := f.sync()
		if r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "500") {
			t.Fatalf("failing sync %d: %+v", i, r)
		}
		repo, _ := f.st.GetRepository(ctx, f.repoID)
		if repo.ConsecutiveFailures != i {
			t.Errorf("after failure %d: consecutive failures %d", i, repo.ConsecutiveFailures)
		}
		if n := len(syncFailedRequests(f.rec)) + len(syncFailedRequests(rec2)); (i < 3 && n != 0) || (i == 3 && n != 2) {
			t.Errorf("after failure %d: %d sync_failed requests", i, n)
		}
	}
	opened := f.clock.Now()
	repo, _ := f.st.GetRepository(ctx, f.repoID)
	if repo.CircuitOpenUntil == nil || !repo.CircuitOpenUntil.Equal(opened.Add(10*time.Minute).Truncate(time.Millisecond)) {
		t.Fatalf("circuit open until %v, want %v", repo.CircuitOpenUntil, opened.Add(10*time.Minute))
	}
	for app, rec := range map[string]*recorder{"app_1": f.rec, "app_2": rec2} {
		sf := syncFailedRequests(rec)
		if len(sf) != 1 {
			t.Fatalf("%s: %d sync_failed requests, want 1", app, len(sf))
		}
		retries := map[string]int{"app_1": 3, "app_2": 0}[app]
		if re := syncFailedBody(f, 3, retries, opened.Add(10*time.Minute)); !re.Match(sf[0].Body) {
			t.Errorf("%s: sync_failed body\n%s\ndoes not match\n%s", app, sf[0].Body, re)
		}
		if !sf[0].SigOK || sf[0].AppID != app || sf[0].Delivery == "" {
			t.Errorf("%s: sync_failed headers: signature ok %v, app %q, delivery %q", app, sf[0].SigOK, sf[0].AppID, sf[0].Delivery)
		}
	}

	// Open: skipped without touching git, not failures, not due.
	refs := f.git.InfoRefs()
	results, err := f.eng.Pass(ctx, PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Outcome != OutcomeSkipped || r.Failed() || !strings.Contains(r.Reason, "circuit open") {
			t.Errorf("pass while open: %+v", r)
		}
	}
	if f.git.InfoRefs() != refs {
		t.Errorf("an open circuit still reached git")
	}
	for _, app := range []string{"app_1", "app_2"} {
		if Due(time.Nanosecond)(f.linkView(app), f.clock.Now()) {
			t.Errorf("%s due while the circuit is open", app)
		}
	}
	if l := f.linkView("app_1"); l.RetryCount != 3 {
		t.Errorf("skips counted as failures: retry count %d", l.RetryCount)
	}

	// Half-open, still failing: one attempt for the repository, whatever the number of links;
	// the circuit opens again and the apps hear about it again.
	f.clock.Advance(10*time.Minute + time.Second)
	results, err = f.eng.Pass(ctx, PassOptions{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.git.InfoRefs() - refs; n != 1 {
		t.Errorf("half-open: %d ref listings, want 1 (results %+v)", n, results)
	}
	repo, _ = f.st.GetRepository(ctx, f.repoID)
	if repo.CircuitOpenUntil == nil || !repo.CircuitOpenUntil.After(f.clock.Now()) {
		t.Errorf("circuit not re-opened after a failed half-open attempt: %v", repo.CircuitOpenUntil)
	}
	if n := len(syncFailedRequests(f.rec)) + len(syncFailedRequests(rec2)); n != 4 {
		t.Errorf("%d sync_failed requests after re-opening, want 4", n)
	}

	// Half-open, healed: the attempt succeeds and closes the circuit; both links sync.
	f.git.Fail("acme/docs.git", 0)
	f.clock.Advance(10*time.Minute + time.Second)
	if _, err := f.eng.Pass(ctx, PassOptions{Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	repo, _ = f.st.GetRepository(ctx, f.repoID)
	if repo.CircuitOpenUntil != nil || repo.ConsecutiveFailures != 0 || repo.LastGitError != "" {
		t.Errorf("circuit after a good half-open attempt: %+v", repo)
	}
	for app, rec := range map[string]*recorder{"app_1": f.rec, "app_2": rec2} {
		if l := f.linkView(app); l.Status != store.StatusSynced || l.RetryCount != 0 {
			t.Errorf("%s after the circuit closed: %+v", app, l.Link)
		}
		if rec.files()["a.txt"] != "a\n" {
			t.Errorf("%s: mirror %v", app, rec.files())
		}
	}
}

// TestAuthFailureCountsAgainstLinkOnly: a link whose own git token is refused fails (with
// growing retries) but never opens the repository's circuit; another app's link to the same
// repository, with a good token, keeps syncing; nobody receives sync_failed.
func TestAuthFailureCountsAgainstLinkOnly(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, circuitOptions)
	f.git.RequireToken("acme/docs.git", "good-token")
	if err := f.st.SetLinkToken(ctx, f.appID, f.repoID, "good-token"); err != nil {
		t.Fatal(err)
	}
	rec2 := f.addApp("app_2")
	f.link("app_2", "bad-token")
	for i := 1; i <= 5; i++ {
		f.commit(map[string]string{"a.txt": fmt.Sprintf("version %d\n", i)})
		results, err := f.eng.Pass(ctx, PassOptions{Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			switch r.AppID {
			case "app_1":
				if r.Outcome != OutcomeSynced {
					t.Errorf("round %d: good link %+v", i, r)
				}
			case "app_2":
				if r.Outcome != OutcomeFailed || strings.Contains(r.Error, "bad-token") {
					t.Errorf("round %d: bad link %+v", i, r)
				}
			}
		}
		if l := f.linkView("app_2"); l.RetryCount != i || l.Status != store.StatusFailed {
			t.Errorf("round %d: bad link %+v", i, l.Link)
		}
		f.clock.Advance(time.Hour)
	}
	repo, _ := f.st.GetRepository(ctx, f.repoID)
	if repo.ConsecutiveFailures != 0 || repo.CircuitOpenUntil != nil {
		t.Errorf("an auth failure touched the circuit: %+v", repo)
	}
	if f.rec.files()["a.txt"] != "version 5\n" {
		t.Errorf("good link's mirror: %v", f.rec.files())
	}
	if n := len(syncFailedRequests(f.rec)) + len(syncFailedRequests(rec2)); n != 0 || len(rec2.requests()) != 0 {
		t.Errorf("sync_failed sent for an auth failure (%d), or content reached the bad link (%d)", n, len(rec2.requests()))
	}
	if l := f.linkView("app_2"); strings.Contains(l.LastError, "bad-token") || l.LastError == "" {
		t.Errorf("bad link's last error %q", l.LastError)
	}
}

// TestHalfOpenAuthFailureGivesAttemptBack: a half-open attempt that fails on the link's own
// credentials says nothing about the repository; it gives the attempt back, and the next link
// makes it (here successfully, closing the circuit).
func TestHalfOpenAuthFailureGivesAttemptBack(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, circuitOptions)
	f.commit(map[string]string{"a.txt": "a\n"})
	f.git.Fail("acme/docs.git", http.StatusInternalServerError)
	for range 3 {
		f.sync()
	}
	f.git.Fail("acme/docs.git", 0)
	f.git.RequireToken("acme/docs.git", "good-token")
	if err := f.st.SetLinkToken(ctx, f.appID, f.repoID, "good-token"); err != nil {
		t.Fatal(err)
	}
	// SetLinkToken closes the circuit (SPEC §2); open it again as the failures left it.
	until := f.clock.Now().Add(time.Minute)
	if _, err := f.st.DB().ExecContext(ctx, `UPDATE repositories SET circuit_open_until = ?, consecutive_failures = 3`,
		until.UTC().Format(store.TimeLayout)); err != nil {
		t.Fatal(err)
	}
	f.addApp("app_0") // listed first: it makes the half-open attempt
	f.link("app_0", "bad-token")
	f.clock.Advance(2 * time.Minute)
	results, err := f.eng.Pass(ctx, PassOptions{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].AppID != "app_0" || results[0].Outcome != OutcomeFailed ||
		results[1].Outcome != OutcomeSynced {
		t.Fatalf("half-open pass: %+v", results)
	}
	repo, _ := f.st.GetRepository(ctx, f.repoID)
	if repo.CircuitOpenUntil != nil || repo.ConsecutiveFailures != 0 {
		t.Errorf("circuit after the second link's good attempt: %+v", repo)
	}
}
