package engine

import (
	"context"
	"sync"
	"time"

	"github.com/docora/docora/internal/store"
)

// PassOptions select and bound a pass.
type PassOptions struct {
	Filter      store.LinkFilter
	Concurrency int  // links at once (default 5)
	DryRun      bool // detect only: nothing is sent or recorded
	// Due, when set, selects the links to run (--watch); nil runs every link.
	Due func(l store.LinkView, now time.Time) bool
	// OnResult is called as each link finishes (progress output); may be nil.
	OnResult func(Result)
}

// Pass runs the selected links, at most Concurrency at once, and returns their results in the
// order of the store's listing. Links of one repository never fetch at the same time: the
// git cache serialises them.
func (e *Engine) Pass(ctx context.Context, o PassOptions) ([]Result, error) {
	e.init()
	links, err := e.Store.ListLinks(ctx, o.Filter)
	if err != nil {
		return nil, err
	}
	if o.Due != nil {
		now := e.Now()
		var due []store.LinkView
		for _, l := range links {
			if o.Due(l, now) {
				due = append(due, l)
			}
		}
		links = due
	}
	n := o.Concurrency
	if n <= 0 {
		n = 5
	}
	results := make([]Result, len(links))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, l := range links {
		if ctx.Err() != nil {
			results[i] = resultFor(l)
			results[i].Outcome, results[i].Reason = OutcomeStopped, "stopped before it started"
			continue
		}
		sem <- struct{}{}
		if ctx.Err() != nil { // stopped while waiting for a free worker
			<-sem
			results[i] = resultFor(l)
			results[i].Outcome, results[i].Reason = OutcomeStopped, "stopped before it started"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if o.DryRun {
				results[i] = e.DryRun(ctx, l)
			} else {
				results[i] = e.SyncLink(ctx, l.AppID, l.Repo.ID)
			}
			if o.OnResult != nil {
				o.OnResult(results[i])
			}
		}()
	}
	wg.Wait()
	return results, nil
}

// Due is the --watch selection (SPEC §5): pending links, links with a sync requested, synced
// links last scanned longer than rescan ago, failed links past their next attempt, and links
// left scanning by a process that died (their lease expired). Links of a repository whose
// circuit is open wait for the cooldown.
func Due(rescan time.Duration) func(l store.LinkView, now time.Time) bool {
	return func(l store.LinkView, now time.Time) bool {
		if l.Repo.CircuitOpenUntil != nil && l.Repo.CircuitOpenUntil.After(now) {
			return false
		}
		if l.LeaseExpiresAt != nil && l.LeaseExpiresAt.After(now) {
			return false // another worker holds it
		}
		if l.SyncRequestedAt != nil {
			return true
		}
		switch l.Status {
		case store.StatusPendingSnapshot, store.StatusScanning:
			return true
		case store.StatusSynced:
			return l.LastScannedAt == nil || now.Sub(*l.LastScannedAt) >= rescan
		case store.StatusFailed:
			return l.NextAttemptAt == nil || !l.NextAttemptAt.After(now)
		}
		return true
	}
}

// WatchOptions configure Watch.
type WatchOptions struct {
	Filter        store.LinkFilter
	Interval      time.Duration // tick (default 60 s)
	Rescan        time.Duration // re-scan synced links this often (default 5 min)
	Concurrency   int
	OnResult      func(Result)
	Wake          <-chan struct{} // an extra tick now (the API's sync-now); may be nil
	OnPassStarted func()
}

// Watch runs passes over due links every Interval until ctx is cancelled; an in-flight
// delivery is finished and recorded before it returns.
func (e *Engine) Watch(ctx context.Context, o WatchOptions) error {
	e.init()
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.Rescan <= 0 {
		o.Rescan = 5 * time.Minute
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		if o.OnPassStarted != nil {
			o.OnPassStarted()
		}
		if _, err := e.Pass(ctx, PassOptions{Filter: o.Filter, Concurrency: o.Concurrency,
			Due: Due(o.Rescan), OnResult: o.OnResult}); err != nil && ctx.Err() == nil {
			e.Logger.Warn("pass failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-o.Wake:
		}
	}
}
