// Package demo implements `docora demo`, the offline quick start: docora's whole main job on
// this machine, with no network and no setup.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/command"
	demorun "github.com/docora/docora/internal/demo"
)

// timeout bounds the whole demo; it normally takes a second or two.
const timeout = 2 * time.Minute

// Options are the flags of `docora demo`.
type Options struct {
	F    *command.Factory
	Dir  string
	Keep bool
	JSON bool
}

// NewCmdDemo returns `docora demo`.
func NewCmdDemo(f *command.Factory, runF func(*Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch docora mirror a sample repository, offline, in a few seconds",
		Long: `Run docora's whole main job on this machine, with no network and no setup:

  1. create a temporary store (it never touches your docora home or DOCORA_* settings),
  2. create a sample git repository and serve it over smart HTTP on 127.0.0.1,
  3. start the reference receiver (docora receive) on 127.0.0.1, mirroring into a directory,
  4. onboard an app whose base URL is that receiver, and register the repository for it,
  5. sync: every file is delivered as a signed webhook,
  6. commit a change (an update, a deletion, a binary file and a file above the 1 MiB chunk
     threshold) and sync again: only the changes are delivered,
  7. check that the mirror equals the repository's last commit byte for byte.

It prints what each sync delivered and where the mirror is. Everything is removed at the end
unless --keep or --dir is given; a kept demo's store can be inspected with
"docora --home DIR/home status".

No git binary is needed. Exit status: 0 when the mirror matches the commit, 1 otherwise.`,
		Example: `  docora demo
  docora demo --keep
  docora demo --dir ./docora-demo --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Dir, "dir", "", "run in this directory (new or empty) and keep it, instead of a temporary one")
	fl.BoolVar(&o.Keep, "keep", false, "keep the temporary directory (store, sample repository, mirror)")
	fl.BoolVar(&o.JSON, "json", false, "print a JSON summary")
	return cmd
}

func run(ctx context.Context, o *Options) error {
	dir, keep, err := o.workDir()
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sum, err := demorun.Run(ctx, demorun.Options{Dir: dir, Version: o.F.Build.Version, Logger: o.F.Logger()})
	if sum == nil {
		return fmt.Errorf("demo: %w", err)
	}
	if o.JSON {
		out := struct {
			*demorun.Summary
			Kept bool `json:"kept"`
		}{sum, keep}
		if perr := o.F.IO.JSON(out); perr != nil {
			return perr
		}
	} else {
		o.print(sum, keep)
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// workDir returns the directory the demo runs in and whether it is kept.
func (o *Options) workDir() (string, bool, error) {
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "docora-demo-")
		return dir, o.Keep, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		if err == nil {
			return "", false, fmt.Errorf("--dir %s is not empty: give a new or empty directory", dir)
		}
		return "", false, err
	}
	return dir, true, nil
}

func (o *Options) print(s *demorun.Summary, keep bool) {
	w := o.F.IO.Out
	st := o.F.IO.Styles()
	fmt.Fprintln(w, st.Heading.Render("docora demo")+st.Faint.Render(": a git server, a receiver and docora, all on 127.0.0.1"))
	fmt.Fprintln(w)
	field := func(k, v string) { fmt.Fprintf(w, "  %s %s\n", st.Faint.Render(fmt.Sprintf("%-11s", k)), v) }
	field("repository", fmt.Sprintf("%s (branch %s)  %s", s.Repository.URL, s.Repository.Branch, s.Repository.RepositoryID))
	field("receiver", fmt.Sprintf("%s → %s", s.App.BaseURL, s.MirrorDir))
	field("app", fmt.Sprintf("%s %q, webhooks signed with its client auth key", s.App.AppID, s.App.Name))

	for i, sy := range s.Syncs {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "%s %s  %s\n", st.Heading.Render(fmt.Sprintf("sync %d", i+1)),
			st.Faint.Render("commit "+short(sy.CommitSHA)), sy.Message)
		width := 0
		for _, c := range sy.Changes {
			width = max(width, len(c.Path))
		}
		for _, c := range sy.Changes {
			line := fmt.Sprintf("  %-7s %-*s", pastTense(c.Type), width, c.Path)
			if c.Type != "delete" {
				line += fmt.Sprintf("  %9s", humanBytes(c.Size))
				var notes []string
				if c.Binary {
					notes = append(notes, "binary, base64")
				}
				if c.Chunks > 0 {
					notes = append(notes, fmt.Sprintf("in %d chunks", c.Chunks))
				}
				if len(notes) > 0 {
					line += "  " + st.Faint.Render(strings.Join(notes, ", "))
				}
			}
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
		summary := fmt.Sprintf("  %d created, %d updated, %d deleted · %d webhook requests · %d ms",
			sy.Created, sy.Updated, sy.Deleted, sy.Requests, sy.DurationMS)
		if sy.Error != "" {
			summary += " · " + st.Bad.Render(sy.Error)
		}
		fmt.Fprintln(w, summary)
	}

	fmt.Fprintln(w)
	v := s.Verification
	if v.CommitSHA != "" {
		if v.Matches {
			fmt.Fprintln(w, st.OK.Render(fmt.Sprintf("✓ mirror matches commit %s: %d files, %s, byte for byte",
				short(v.CommitSHA), v.Files, humanBytes(v.Bytes))))
		} else {
			fmt.Fprintln(w, st.Bad.Render(fmt.Sprintf("✗ mirror differs from commit %s: %d differences",
				short(v.CommitSHA), len(v.Differences))))
			for _, d := range v.Differences {
				fmt.Fprintln(w, "  "+d)
			}
		}
		fmt.Fprintln(w)
	}
	if keep {
		fmt.Fprintf(w, "%s %s\n", st.Faint.Render("mirror: "), s.MirrorDir)
		fmt.Fprintf(w, "%s docora --home %s status\n", st.Faint.Render("store:  "), s.Home)
	} else {
		fmt.Fprintf(w, "%s %s %s\n", st.Faint.Render("mirror: "), s.MirrorDir,
			st.Faint.Render("(removed on exit; --keep keeps it)"))
	}
	fmt.Fprintf(w, "%s docora receive --help, docora app onboard --help, docs/webhooks.md\n", st.Faint.Render("next:   "))
}

func pastTense(t string) string {
	switch t {
	case "create":
		return "created"
	case "update":
		return "updated"
	case "delete":
		return "deleted"
	}
	return t
}

func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
