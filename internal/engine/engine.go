// Package engine runs links: one link's sync (lease, detection, ordered deliveries recorded one
// by one, retries, circuit breaker, sync_failed) and passes over many links, once (cron) or in a
// loop (--watch, `serve`).
package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docora/docora/internal/changes"
	"github.com/docora/docora/internal/delivery"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/store"
	"github.com/docora/docora/pkg/webhook"
)

// Options tune runs; zero values take the documented defaults.
type Options struct {
	MaxAttempts      int           // delivery attempts within a pass (default 5)
	BackoffBase      time.Duration // first in-pass retry delay (default 1 s), doubled each time
	MaxBackoff       time.Duration // cap of one in-pass retry delay (default 1 min)
	FailedDelay      time.Duration // first delay of a failed link before a --watch pass retries it (default 1 min)
	MaxFailedDelay   time.Duration // cap of that growing delay (default 1 h)
	CircuitThreshold int           // consecutive git failures that open a repository's circuit (default 5)
	CircuitCooldown  time.Duration // how long an open circuit pauses the repository (default 30 min)
	LeaseTTL         time.Duration // lease lifetime, renewed at a third of it (default 30 s)
	DeliveryTimeout  time.Duration // bound on finishing an in-flight request after a stop (default 60 s)
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.CircuitThreshold <= 0 {
		o.CircuitThreshold = 5
	}
	def(&o.BackoffBase, time.Second)
	def(&o.MaxBackoff, time.Minute)
	def(&o.FailedDelay, time.Minute)
	def(&o.MaxFailedDelay, time.Hour)
	def(&o.CircuitCooldown, 30*time.Minute)
	def(&o.LeaseTTL, 30*time.Second)
	def(&o.DeliveryTimeout, 60*time.Second)
	return o
}

// Observer is told about runs and deliveries (metrics); it may be nil.
type Observer interface {
	Delivered(kind string, err error, d time.Duration)
	LinkFinished(r Result)
}

// Engine runs links against one store.
type Engine struct {
	Store    *store.Store
	Git      *gitsource.Cache
	Client   *delivery.Client
	Policy   netguard.Policy
	Logger   *slog.Logger
	Observer Observer
	Options  Options
	// Progress, when set, receives detection progress (hashing) per link.
	Progress func(l store.LinkView, stage string, done, total int)

	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  func() float64
	owner string
	once  sync.Once
}

func (e *Engine) init() {
	e.once.Do(func() {
		e.Options = e.Options.withDefaults()
		if e.Now == nil {
			e.Now = time.Now
		}
		if e.Sleep == nil {
			e.Sleep = sleep
		}
		if e.Rand == nil {
			e.Rand = mrand.Float64
		}
		if e.Logger == nil {
			e.Logger = slog.New(slog.DiscardHandler)
		}
		e.Logger = e.Logger.With("component", "engine")
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		e.owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	})
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Outcomes of a link run.
const (
	OutcomeSynced    = "synced"    // every change delivered (or nothing to do)
	OutcomeUnchanged = "unchanged" // head equals the completed commit: nothing fetched
	OutcomeFailed    = "failed"
	OutcomeSkipped   = "skipped"     // leased by another process, or the circuit is open
	OutcomeStopped   = "interrupted" // stopped by a signal, or the link was removed or reset
	OutcomeDryRun    = "dry_run"
)

// Result is the summary of one link's run (`sync --json`).
type Result struct {
	AppID        string           `json:"app_id"`
	RepositoryID string           `json:"repository_id"`
	GitHubURL    string           `json:"github_url"`
	Branch       string           `json:"branch"`
	Outcome      string           `json:"outcome"`
	CommitSHA    string           `json:"commit_sha"`
	Files        int              `json:"files"`
	Delivered    changes.Counts   `json:"delivered"`
	Pending      int              `json:"pending"` // changes not delivered in this run
	Changes      []changes.Change `json:"changes,omitempty"`
	Planned      *changes.Counts  `json:"planned,omitempty"`
	SkippedPaths int              `json:"skipped_paths"`
	Reason       string           `json:"reason,omitempty"` // why skipped or stopped
	Error        string           `json:"error,omitempty"`
	DurationMS   int64            `json:"duration_ms"`
}

// Failed reports whether the run counts as a failure (exit code 3).
func (r Result) Failed() bool { return r.Outcome == OutcomeFailed }

func resultFor(l store.LinkView) Result {
	return Result{AppID: l.AppID, RepositoryID: l.Repo.ID, GitHubURL: l.Repo.URL, Branch: l.Repo.Branch}
}

func (e *Engine) detector(l store.LinkView) *changes.Detector {
	d := &changes.Detector{Source: e.Git, Blobs: e.Store, State: e.Store.DeliveryState}
	if e.Progress != nil {
		d.Progress = func(stage string, done, total int) { e.Progress(l, stage, done, total) }
	}
	return d
}

// DryRun computes what the link would receive without sending or recording anything.
func (e *Engine) DryRun(ctx context.Context, l store.LinkView) Result {
	e.init()
	start := e.Now()
	r := resultFor(l)
	plan, err := e.detector(l).Detect(netguard.WithPolicy(ctx, e.Policy), l)
	r.DurationMS = e.Now().Sub(start).Milliseconds()
	if err != nil {
		r.Outcome, r.Error = OutcomeFailed, err.Error()
		return r
	}
	r.Outcome, r.CommitSHA, r.Files, r.SkippedPaths = OutcomeDryRun, plan.Commit, plan.Files, len(plan.Invalid)
	r.Changes = plan.Changes
	if r.Changes == nil {
		r.Changes = []changes.Change{}
	}
	c := changes.Count(plan.Changes)
	r.Planned = &c
	return r
}

// SyncLink runs one link: it takes the lease (or skips the link when another process holds
// it), detects changes and delivers them in order, recording each success at once. When ctx
// is cancelled the in-flight request is finished and recorded, and the run stops.
func (e *Engine) SyncLink(ctx context.Context, appID, repoID string) Result {
	e.init()
	start := e.Now()
	r := e.syncLink(ctx, appID, repoID)
	r.DurationMS = e.Now().Sub(start).Milliseconds()
	if e.Observer != nil {
		e.Observer.LinkFinished(r)
	}
	log := e.Logger.With("app_id", appID, "repository_id", repoID, "outcome", r.Outcome)
	switch r.Outcome {
	case OutcomeFailed:
		log.Warn("link failed", "error", r.Error)
	default:
		log.Info("link done", "commit", r.CommitSHA, "created", r.Delivered.Created,
			"updated", r.Delivered.Updated, "deleted", r.Delivered.Deleted, "reason", r.Reason)
	}
	return r
}

func (e *Engine) syncLink(ctx context.Context, appID, repoID string) Result {
	r := Result{AppID: appID, RepositoryID: repoID}
	if ctx.Err() != nil {
		r.Outcome, r.Reason = OutcomeStopped, "stopped before it started"
		return r
	}
	ok, err := e.Store.AcquireLease(ctx, appID, repoID, e.owner, e.Options.LeaseTTL)
	if err != nil {
		r.Outcome, r.Error = OutcomeFailed, err.Error()
		switch {
		case errors.Is(err, store.ErrNotFound):
			r.Outcome, r.Reason, r.Error = OutcomeStopped, "link removed", ""
		case ctx.Err() != nil:
			r.Outcome, r.Reason, r.Error = OutcomeStopped, "stopped before it started", ""
		}
		return r
	}
	if !ok {
		r.Outcome, r.Reason = OutcomeSkipped, "leased by another docora process"
		return r
	}
	// The lease is renewed while we work; losing it stops deliveries. A synced run gives it
	// up with its last write (hold.released); any other end releases it here.
	hold := &leaseHold{owner: e.owner}
	leaseCtx, cancelLease := context.WithCancelCause(ctx)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		e.renewLease(leaseCtx, cancelLease, appID, repoID, hold)
	}()
	defer func() {
		cancelLease(nil)
		<-renewDone
		if !hold.released.Load() {
			_ = e.Store.ReleaseLease(context.WithoutCancel(ctx), appID, repoID, e.owner)
		}
	}()

	l, err := e.Store.GetLink(ctx, appID, repoID)
	if err != nil {
		r.Outcome, r.Reason = OutcomeStopped, "link removed"
		return r
	}
	r = resultFor(l)
	var probe *halfOpen
	if until := l.Repo.CircuitOpenUntil; until != nil {
		now := e.Now()
		if until.After(now) {
			r.Outcome, r.Reason = OutcomeSkipped, "circuit open until "+until.UTC().Format(store.TimeLayout)
			return r
		}
		// The cooldown is over: one run, of any link of the repository, makes the half-open
		// attempt; the circuit stays open for the others meanwhile.
		probe = &halfOpen{until: *until, claim: now.Add(e.Options.CircuitCooldown)}
		ok, err := e.Store.ClaimHalfOpen(ctx, l.Repo.ID, probe.until, probe.claim)
		if err != nil {
			r.Outcome, r.Error = OutcomeFailed, err.Error()
			return r
		}
		if !ok {
			r.Outcome, r.Reason = OutcomeSkipped, "circuit half-open: another link of the repository is making the attempt"
			return r
		}
		defer func() {
			if !probe.settled {
				if err := e.Store.ReleaseHalfOpen(context.WithoutCancel(ctx), l.Repo.ID, probe.claim, probe.until); err != nil {
					e.Logger.Warn("release half-open attempt", "repository_id", l.Repo.ID, "error", err)
				}
			}
		}()
	}
	return e.run(leaseCtx, l, r, probe, hold)
}

// leaseHold is a run's lease: its owner name, and whether the run's last write released it.
type leaseHold struct {
	owner    string
	released atomic.Bool
}

// halfOpen is a run's claim on its repository's half-open attempt.
type halfOpen struct {
	until, claim time.Time
	settled      bool // the attempt told success or a git failure, and the circuit was updated
}

func (e *Engine) renewLease(ctx context.Context, cancel context.CancelCauseFunc, appID, repoID string, hold *leaseHold) {
	t := time.NewTicker(e.Options.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Store.RenewLease(context.WithoutCancel(ctx), appID, repoID, e.owner, e.Options.LeaseTTL); err != nil {
				if hold.released.Load() {
					return // the run ended and gave the lease up
				}
				e.Logger.Warn("lease renewal failed: stopping the link", "app_id", appID, "repository_id", repoID, "error", err)
				cancel(fmt.Errorf("lease: %w", err))
				return
			}
		}
	}
}

func (e *Engine) run(ctx context.Context, l store.LinkView, r Result, probe *halfOpen, hold *leaseHold) Result {
	bg := context.WithoutCancel(ctx)
	// Everything the run records goes through rec, which refuses once the link is removed,
	// reset or re-registered: a stale run must not record over the new generation.
	rec := e.Store.Run(l.AppID, l.Repo.ID, l.Generation).WithLease(hold.owner)
	defer rec.Close()
	// Deliveries are recorded in the link's journal (one append each, folded into the store
	// when the run ends); a journal left by a run that died is replayed first.
	if _, err := rec.WithJournal(bg); err != nil {
		r.Outcome, r.Error = OutcomeFailed, err.Error()
		return r
	}
	head, headErr := e.Git.RemoteHead(netguard.WithPolicy(ctx, e.Policy), l.Repo.CloneURL, l.Repo.Branch,
		gitsource.Credentials{Token: l.GitToken})
	if r, done := e.unchanged(ctx, l, r, probe, hold, rec, head, headErr); done {
		return r
	}
	if ctx.Err() != nil {
		r.Outcome, r.Reason = OutcomeStopped, stopReason(ctx)
		return r
	}
	if err := e.Store.BeginRun(bg, l.AppID, l.Repo.ID); err != nil {
		r.Outcome, r.Error = OutcomeFailed, err.Error()
		return r
	}
	plan, err := e.detector(l).DetectAt(netguard.WithPolicy(ctx, e.Policy), l, head, headErr)
	if err != nil {
		if ctx.Err() != nil {
			_ = e.Store.SetStatus(bg, l.AppID, l.Repo.ID, l.Status)
			r.Outcome, r.Reason = OutcomeStopped, stopReason(ctx)
			return r
		}
		return e.gitFailure(bg, l, r, err, probe)
	}
	e.gitSuccess(bg, l, probe)
	r.CommitSHA, r.Files, r.SkippedPaths = plan.Commit, plan.Files, len(plan.Invalid)
	for _, p := range plan.Invalid {
		e.Logger.Warn("path skipped: not valid UTF-8", "repository_id", l.Repo.ID, "path", fmt.Sprintf("%q", p))
	}
	if plan.Unchanged {
		if err := rec.FinishSynced(bg, plan.Commit, l.FilesDelivered, l.SkippedPaths); err != nil {
			return recordFailed(r, err, 0)
		}
		hold.released.Store(true)
		r.Outcome, r.Files, r.SkippedPaths = OutcomeUnchanged, l.FilesDelivered, l.SkippedPaths
		return r
	}

	app, err := e.Store.GetApp(ctx, l.AppID)
	if err != nil {
		r.Outcome, r.Reason = OutcomeStopped, "app removed"
		return r
	}
	target := delivery.Target{BaseURL: app.BaseURL, AppID: app.ID, Key: app.ClientAuthKey}
	repo := repoPayload(l.Repo)
	// Between two deliveries the run makes one record: the confirmation of a change also
	// marks the next one in flight. The next changes are read, checked, encoded and signed
	// while one is sent.
	ahead := e.readAhead(bg, l, target, repo, plan.Commit, plan.Changes)
	defer ahead.close()
	marked := false // plan.Changes[i] is already marked in flight
	for i, c := range plan.Changes {
		if ctx.Err() != nil {
			_ = e.Store.SetStatus(bg, l.AppID, l.Repo.ID, l.Status)
			r.Outcome, r.Reason, r.Pending = OutcomeStopped, stopReason(ctx), len(plan.Changes)-i
			return r
		}
		if !marked {
			if err := rec.MarkInFlight(bg, c.Path, c.SHA); err != nil {
				return recordFailed(r, err, len(plan.Changes)-i)
			}
		}
		if err := e.deliverWithRetries(ctx, target, repo, l, plan.Commit, c, ahead.next()); err != nil {
			r.Pending = len(plan.Changes) - i
			if ctx.Err() != nil {
				_ = e.Store.SetStatus(bg, l.AppID, l.Repo.ID, l.Status)
				r.Outcome, r.Reason = OutcomeStopped, stopReason(ctx)
				return r
			}
			msg := fmt.Sprintf("deliver %s %s: %v", c.Type, c.Path, err)
			if _, ferr := e.Store.RecordFailure(bg, l.AppID, l.Repo.ID, msg, e.nextAttempt); ferr != nil {
				e.Logger.Warn("record failure", "error", ferr)
			}
			r.Outcome, r.Error = OutcomeFailed, msg
			return r
		}
		var next *store.Mark
		if i+1 < len(plan.Changes) && ctx.Err() == nil {
			next = &store.Mark{Path: plan.Changes[i+1].Path, SHA: plan.Changes[i+1].SHA}
		}
		var recErr error
		if c.Type == changes.Delete {
			recErr, next = rec.ConfirmDeleted(bg, c.Path), nil
		} else {
			recErr = rec.ConfirmDelivered(bg, c.Path, c.SHA, next)
		}
		marked = next != nil
		if recErr != nil {
			return recordFailed(r, recErr, len(plan.Changes)-i)
		}
		switch c.Type {
		case changes.Create:
			r.Delivered.Created++
		case changes.Update:
			r.Delivered.Updated++
		case changes.Delete:
			r.Delivered.Deleted++
		}
	}
	if err := rec.FinishSynced(bg, plan.Commit, plan.Files, len(plan.Invalid)); err != nil {
		return recordFailed(r, err, 0)
	}
	hold.released.Store(true)
	r.Outcome = OutcomeSynced
	return r
}

// unchanged is SPEC §4's shortcut for a synced link: when the branch head (asked of the remote
// once per run, by the caller) is still the completed commit, the run costs one ref listing and
// one store write (the status, the scan
// time and the lease's release together). Otherwise — a new head, or any error, which the
// full run reports — it returns false and the full run starts.
func (e *Engine) unchanged(ctx context.Context, l store.LinkView, r Result, probe *halfOpen, hold *leaseHold,
	rec *store.LinkRun, head string, err error) (Result, bool) {
	if l.Status != store.StatusSynced || l.CommitSHA == "" {
		return r, false
	}
	if err != nil || head != l.CommitSHA {
		return r, false
	}
	bg := context.WithoutCancel(ctx)
	e.gitSuccess(bg, l, probe)
	if err := rec.FinishUnchanged(bg, head); err != nil {
		return recordFailed(r, err, 0), true
	}
	hold.released.Store(true)
	r.Outcome, r.CommitSHA, r.Files, r.SkippedPaths = OutcomeUnchanged, head, l.FilesDelivered, l.SkippedPaths
	return r, true
}

// gitSuccess closes the repository's circuit and clears its failure count after a good
// exchange with the remote; when the repository showed neither, there is nothing to write.
func (e *Engine) gitSuccess(ctx context.Context, l store.LinkView, probe *halfOpen) {
	if probe == nil && l.Repo.ConsecutiveFailures == 0 && l.Repo.CircuitOpenUntil == nil {
		return
	}
	if err := e.Store.RecordGitSuccess(ctx, l.Repo.ID); err != nil {
		e.Logger.Warn("record git success", "error", err)
	} else if probe != nil {
		probe.settled = true
	}
}

// recordFailed ends a run whose store write failed: interrupted when the link was removed,
// reset or re-registered meanwhile (SPEC §5: that stops its deliveries), failed otherwise.
func recordFailed(r Result, err error, pending int) Result {
	r.Pending = pending
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.Outcome, r.Reason = OutcomeStopped, "link removed"
	case errors.Is(err, store.ErrStale):
		r.Outcome, r.Reason = OutcomeStopped, "link reset or re-registered"
	default:
		r.Outcome, r.Error = OutcomeFailed, err.Error()
	}
	return r
}

func stopReason(ctx context.Context) string {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause.Error()
	}
	return "stopped"
}

func repoPayload(r store.Repository) webhook.Repository {
	return webhook.Repository{RepositoryID: r.ID, GitHubURL: r.URL, Owner: r.Owner, Name: r.Name}
}

// DeliveryID is the X-Docora-Delivery of a change: identical on every retry of the same change
// for the same commit, and different for a later change of the same path.
func DeliveryID(l store.LinkView, commit string, c changes.Change) string {
	b := make([]byte, 0, 256+len(c.Path))
	for _, s := range []string{l.AppID, l.Repo.ID, strconv.FormatInt(l.Generation, 10), commit, string(c.Type), c.Path, c.SHA, c.PreviousSHA} {
		b = append(append(b, s...), 0)
	}
	sum := sha256.Sum256(b)
	return "dlv_" + hex.EncodeToString(sum[:16])
}

// deliverWithRetries sends one change, retrying with exponential backoff and jitter up to
// MaxAttempts. Each request runs to completion even when ctx is cancelled (bounded by
// DeliveryTimeout), so a stop never abandons a request half-way; no new attempt starts after
// a stop.
func (e *Engine) deliverWithRetries(ctx context.Context, t delivery.Target, repo webhook.Repository, l store.LinkView, commit string, c changes.Change, pre *prefetched) error {
	id := pre.deliveryID()
	if id == "" {
		id = DeliveryID(l, commit, c)
	}
	var err error
	for attempt := 1; attempt <= e.Options.MaxAttempts; attempt++ {
		reqCtx, cancel := context.WithTimeout(netguard.WithPolicy(context.WithoutCancel(ctx), e.Policy), e.Options.DeliveryTimeout)
		start := e.Now()
		err = e.deliver(reqCtx, t, repo, l, commit, c, id, pre, attempt)
		cancel()
		if e.Observer != nil {
			e.Observer.Delivered(string(c.Type), err, e.Now().Sub(start))
		}
		if err == nil {
			return nil
		}
		e.Logger.Info("delivery failed", "app_id", l.AppID, "repository_id", l.Repo.ID, "path", c.Path,
			"attempt", attempt, "error", err)
		if attempt == e.Options.MaxAttempts || ctx.Err() != nil {
			break
		}
		// Backoff counts retries from 0: the first retry waits about BackoffBase (SPEC §5).
		delay := delivery.RetryDelay(err, delivery.Backoff(attempt-1, e.Options.BackoffBase, 2, e.Options.MaxBackoff, e.Rand))
		if serr := e.Sleep(ctx, delay); serr != nil {
			break
		}
	}
	return err
}

func (e *Engine) deliver(ctx context.Context, t delivery.Target, repo webhook.Repository, l store.LinkView, commit string, c changes.Change, id string, pre *prefetched, attempt int) error {
	if c.Type == changes.Delete {
		return e.Client.DeliverDelete(ctx, t, repo, commit, delivery.Deletion{Path: c.Path, SHA: c.SHA, DeliveryID: id})
	}
	if pre != nil && pre.prepared != nil && attempt == 1 && e.Now().Sub(pre.preparedAt) < maxPreparedAge {
		return e.Client.SendPrepared(ctx, t, pre.prepared)
	}
	fc := e.fileChange(l, c, id)
	fc.Open = func() (io.ReadCloser, error) {
		rc, _, err := e.Git.ReadBlob(ctx, l.Repo.ID, c.Blob)
		return rc, err
	}
	if pre != nil && pre.err == nil {
		fc.Content = pre.data // checked against sha and size by the client, like a read
	}
	return e.Client.DeliverFile(ctx, t, repo, commit, fc)
}

// fileChange is the webhook change of c, a create or update, without its content.
func (e *Engine) fileChange(l store.LinkView, c changes.Change, id string) delivery.FileChange {
	kind := delivery.Create
	if c.Type == changes.Update {
		kind = delivery.Update
	}
	return delivery.FileChange{
		Kind: kind, Path: c.Path, SHA: c.SHA, Size: c.Size, PreviousSHA: c.PreviousSHA, DeliveryID: id,
		Binary: &c.Binary, // the blob cache's verdict: no second UTF-8 scan of the content
	}
}

const (
	// readAheadDepth is how many changes are read and signed ahead of the one being sent;
	// each holds at most one file up to prefetchLimit and its request body.
	readAheadDepth = 16
	// prefetchLimit bounds the files read ahead (the chunk threshold's default): larger files
	// are streamed when their turn comes.
	prefetchLimit = 1 << 20
	// maxPreparedAge: a request signed longer ago than this (the receiver was slow) is signed
	// again when its turn comes, so that X-Docora-Timestamp stays close to the sending time.
	maxPreparedAge = 10 * time.Second
)

// prefetched is a small file's content read ahead and, when it matched its sha, its request
// built and signed.
type prefetched struct {
	id         string // the change's DeliveryID
	data       []byte
	err        error
	prepared   *delivery.Prepared
	preparedAt time.Time
}

// deliveryID is the delivery id computed ahead ("" when nothing was: nil p).
func (p *prefetched) deliveryID() string {
	if p == nil {
		return ""
	}
	return p.id
}

// aheadReader prepares a run's changes in order, readAheadDepth ahead of the one being sent.
type aheadReader struct {
	items chan *prefetched // one per change, in order; nil for a delete or a large file
	stop  chan struct{}
}

func (e *Engine) readAhead(ctx context.Context, l store.LinkView, t delivery.Target, repo webhook.Repository, commit string, cs []changes.Change) *aheadReader {
	a := &aheadReader{items: make(chan *prefetched, readAheadDepth), stop: make(chan struct{})}
	go func() {
		defer close(a.items)
		for _, c := range cs {
			p := e.prefetch(ctx, l, t, repo, commit, c)
			select {
			case a.items <- p:
			case <-a.stop:
				return
			}
		}
	}()
	return a
}

// next returns what was prepared for the next change (nil: nothing, read it when sending).
func (a *aheadReader) next() *prefetched { return <-a.items }

// close stops the reading ahead and waits for it to end.
func (a *aheadReader) close() {
	close(a.stop)
	for range a.items {
	}
}

// prefetch reads c's content and prepares its request, or returns nil when c has no content
// or is large.
func (e *Engine) prefetch(ctx context.Context, l store.LinkView, t delivery.Target, repo webhook.Repository, commit string, c changes.Change) *prefetched {
	if c.Type == changes.Delete || c.Size > prefetchLimit {
		return nil
	}
	p := &prefetched{id: DeliveryID(l, commit, c)}
	// The whole blob, whatever its size: one that does not match c is a mismatch the client
	// reports.
	if p.data, p.err = e.Git.ReadBlobBytes(ctx, l.Repo.ID, c.Blob); p.err != nil {
		return p
	}
	fc := e.fileChange(l, c, p.id)
	fc.Content = p.data
	if c.Size <= e.Client.ChunkThreshold() {
		// A failure (content that does not match) is left to the delivery, which reports it.
		p.prepared, _ = e.Client.PrepareFile(t, repo, commit, fc)
		p.preparedAt = e.Now()
	}
	return p
}

// nextAttempt is when a --watch pass retries a link after its retries-th consecutive failure:
// FailedDelay doubling each time, capped at MaxFailedDelay.
func (e *Engine) nextAttempt(retries int) time.Time {
	d := float64(e.Options.FailedDelay) * math.Pow(2, float64(max(retries-1, 0)))
	if d > float64(e.Options.MaxFailedDelay) {
		d = float64(e.Options.MaxFailedDelay)
	}
	return e.Now().Add(time.Duration(d))
}

// isLinkAuthFailure reports git failures caused by the link's own credentials: they count
// against the link only, never against the repository's circuit breaker.
func isLinkAuthFailure(err error) bool {
	return errors.Is(err, gitsource.ErrAuthentication) || errors.Is(err, gitsource.ErrNotFound) ||
		errors.Is(err, gitsource.ErrBranchNotFound)
}

func (e *Engine) gitFailure(ctx context.Context, l store.LinkView, r Result, gitErr error, probe *halfOpen) Result {
	msg := gitsource.Scrub(gitErr.Error(), l.GitToken)
	r.Outcome, r.Error = OutcomeFailed, msg
	if _, err := e.Store.RecordFailure(ctx, l.AppID, l.Repo.ID, msg, e.nextAttempt); err != nil {
		e.Logger.Warn("record failure", "error", err)
	}
	if isLinkAuthFailure(gitErr) {
		return r
	}
	cs, err := e.Store.RecordGitFailure(ctx, l.Repo.ID, msg, e.Options.CircuitThreshold, e.Options.CircuitCooldown, probe != nil)
	if err != nil {
		e.Logger.Warn("record git failure", "error", err)
		return r
	}
	if probe != nil {
		probe.settled = true
	}
	if cs.Opened {
		e.Logger.Warn("circuit opened", "repository_id", l.Repo.ID, "failures", cs.Failures, "until", cs.Until)
		e.notifyCircuitOpen(ctx, l.Repo, msg, cs)
	}
	return r
}

// notifyCircuitOpen sends sync_failed to every app watching the repository. Each is signed
// with its app's key and retried a few times; failures are logged, never block the run.
func (e *Engine) notifyCircuitOpen(ctx context.Context, repo store.Repository, msg string, cs store.CircuitState) {
	links, err := e.Store.ListLinks(ctx, store.LinkFilter{RepositoryID: repo.ID})
	if err != nil {
		e.Logger.Warn("list watchers for sync_failed", "error", err)
		return
	}
	var wg sync.WaitGroup
	for _, l := range links {
		app, err := e.Store.GetApp(ctx, l.AppID)
		if err != nil {
			continue
		}
		ev := webhook.SyncFailedEvent{
			Event:      "sync_failed",
			Repository: repoPayload(repo),
			Error:      webhook.SyncError{Type: "git_failure", Message: gitsource.Scrub(msg, l.GitToken)},
			CircuitBreaker: webhook.CircuitBreaker{Status: "open", ConsecutiveFailures: cs.Failures,
				Threshold: e.Options.CircuitThreshold, CooldownUntil: webhook.FormatTimestamp(cs.Until)},
			RetryCount: l.RetryCount,
		}
		sum := sha256.Sum256([]byte(fmt.Sprintf("sync_failed\x00%s\x00%s\x00%d", repo.ID, app.ID, cs.Until.UnixMilli())))
		id := "dlv_" + hex.EncodeToString(sum[:16])
		t := delivery.Target{BaseURL: app.BaseURL, AppID: app.ID, Key: app.ClientAuthKey}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 1; attempt <= 3; attempt++ {
				reqCtx, cancel := context.WithTimeout(netguard.WithPolicy(ctx, e.Policy), e.Options.DeliveryTimeout)
				err := e.Client.SendSyncFailed(reqCtx, t, ev, id)
				cancel()
				if err == nil {
					return
				}
				e.Logger.Warn("sync_failed delivery failed", "app_id", app.ID, "attempt", attempt, "error", err)
				if e.Sleep(ctx, delivery.Backoff(attempt-1, e.Options.BackoffBase, 2, e.Options.MaxBackoff, e.Rand)) != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}
