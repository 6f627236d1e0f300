// Package sync implements `docora sync`: one pass over every link (cron), or a loop with
// --watch, delivering changes as signed webhooks; --dry-run only shows them.
package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/engine"
	"github.com/docora/docora/internal/store"
)

// Options are the flags of `docora sync`.
type Options struct {
	F      *command.Factory
	AppID  string
	RepoID string
	Watch  bool
	DryRun bool
	JSON   bool
	command.SyncFlags
}

// NewCmdSync returns `docora sync`.
func NewCmdSync(f *command.Factory, runF func(*Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Deliver every change of every watched repository to its apps",
		Long: `Run one pass over every link (app × repository) and deliver what changed as signed
webhooks, or with --watch keep running passes until SIGINT/SIGTERM.

A pass first asks each remote for the branch head; an unchanged head costs one round trip and
nothing else. Changes are delivered in order (deletes, creates, updates), each recorded as soon
as the app answers 2xx. A failed delivery is retried with exponential backoff and jitter up to
--max-attempts; then the link is failed and a later pass retries it (--watch waits a growing
delay, capped at one hour). After --circuit-threshold consecutive git failures a repository is
paused for --circuit-cooldown and every app watching it receives sync_failed.

--dry-run prints the changes that would be sent, and sends and records nothing.

Exit status: 0 when every link synced (or was skipped: leased by another docora process, or
paused by an open circuit), 3 when at least one link failed, 1 on other errors.`,
		Example: `  docora sync
  docora sync --dry-run --json
  docora sync --app app_0123456789abcdef01234567 --max-attempts 3
  docora sync --watch --interval 30s --concurrency 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.AppID, "app", "", "only this app's links")
	fl.StringVar(&o.RepoID, "repo", "", "only this repository's links")
	fl.BoolVar(&o.Watch, "watch", false, "keep running passes until SIGINT/SIGTERM")
	fl.BoolVar(&o.DryRun, "dry-run", false, "print the changes that would be sent; send and record nothing")
	fl.BoolVar(&o.JSON, "json", false, "print JSON (with --watch: one JSON object per line)")
	o.AddSyncFlags(fl, "")
	return cmd
}

func (o *Options) validate() error {
	if o.Watch && o.DryRun {
		return command.Usagef("--watch and --dry-run cannot be used together")
	}
	return o.SyncFlags.Validate()
}

func run(ctx context.Context, o *Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	st, err := o.F.Store(ctx)
	if err != nil {
		return err
	}
	if o.AppID != "" {
		if _, err := st.GetApp(ctx, o.AppID); err != nil {
			return err
		}
	}
	if o.RepoID != "" {
		if _, err := st.GetRepository(ctx, o.RepoID); err != nil {
			return err
		}
	}
	eng, err := o.F.Engine(ctx, o.EngineOptions)
	if err != nil {
		return err
	}
	prog := newProgress(o.F)
	eng.Progress = prog.detect
	filter := store.LinkFilter{AppID: o.AppID, RepositoryID: o.RepoID}
	if o.Watch {
		return o.watch(ctx, eng, filter, prog)
	}
	results, err := eng.Pass(ctx, engine.PassOptions{Filter: filter, Concurrency: o.Concurrency, DryRun: o.DryRun,
		OnResult: prog.done})
	prog.clear()
	if err != nil {
		return err
	}
	if err := o.print(results); err != nil {
		return err
	}
	for _, r := range results {
		if r.Failed() {
			return command.ErrLinksFailed
		}
	}
	return nil
}

func (o *Options) watch(ctx context.Context, eng *engine.Engine, filter store.LinkFilter, prog *progress) error {
	enc := json.NewEncoder(o.F.IO.Out)
	enc.SetEscapeHTML(false)
	fmt.Fprintf(o.F.IO.ErrOut, "docora: watching every %s (re-scan every %s); stop with Ctrl-C\n", o.Interval, o.Rescan)
	return eng.Watch(ctx, engine.WatchOptions{Filter: filter, Interval: o.Interval, Rescan: o.Rescan,
		Concurrency: o.Concurrency, OnResult: func(r engine.Result) {
			prog.clear()
			if o.JSON {
				_ = enc.Encode(r)
				return
			}
			fmt.Fprintln(o.F.IO.Out, summaryLine(r))
		}})
}

func (o *Options) print(results []engine.Result) error {
	if o.JSON {
		if results == nil {
			results = []engine.Result{}
		}
		return o.F.IO.JSON(results)
	}
	if o.DryRun {
		return o.printDryRun(results)
	}
	rows := make([][]string, len(results))
	for i, r := range results {
		rows[i] = []string{r.AppID, r.RepositoryID, r.Outcome, short(r.CommitSHA), strconv.Itoa(r.Delivered.Created),
			strconv.Itoa(r.Delivered.Updated), strconv.Itoa(r.Delivered.Deleted),
			(time.Duration(r.DurationMS) * time.Millisecond).String(), orDash(firstOf(r.Error, r.Reason))}
	}
	return o.F.IO.Table([]string{"APP", "REPOSITORY", "OUTCOME", "COMMIT", "CREATED", "UPDATED", "DELETED", "DURATION", "NOTE"}, rows)
}

func (o *Options) printDryRun(results []engine.Result) error {
	w := o.F.IO.Out
	st := o.F.IO.Styles()
	for _, r := range results {
		head := fmt.Sprintf("%s %s (%s@%s)", r.AppID, r.RepositoryID, r.GitHubURL, r.Branch)
		if r.Failed() {
			fmt.Fprintf(w, "%s: %s\n", st.Heading.Render(head), st.Bad.Render("error: "+r.Error))
			continue
		}
		p := r.Planned
		fmt.Fprintf(w, "%s commit %s: %d files, %d to create, %d to update, %d to delete\n",
			st.Heading.Render(head), short(r.CommitSHA), r.Files, p.Created, p.Updated, p.Deleted)
		for _, c := range r.Changes {
			kind := "text"
			if c.Binary {
				kind = "binary"
			}
			if c.Type == "delete" {
				fmt.Fprintf(w, "  %-6s  %s\n", c.Type, c.Path)
				continue
			}
			fmt.Fprintf(w, "  %-6s  %s  (%d bytes, %s, sha256 %s)\n", c.Type, c.Path, c.Size, kind, short(c.SHA))
		}
	}
	return nil
}

func summaryLine(r engine.Result) string {
	s := fmt.Sprintf("%s %s %s %s created=%d updated=%d deleted=%d duration=%dms", time.Now().UTC().Format(time.RFC3339),
		r.AppID, r.RepositoryID, r.Outcome, r.Delivered.Created, r.Delivered.Updated, r.Delivered.Deleted, r.DurationMS)
	if r.CommitSHA != "" {
		s += " commit=" + short(r.CommitSHA)
	}
	if note := firstOf(r.Error, r.Reason); note != "" {
		s += " note=" + strconv.Quote(note)
	}
	return s
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return orDash(sha)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
