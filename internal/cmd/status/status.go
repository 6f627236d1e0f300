// Package status implements `docora status`: one row per link with its sync state.
package status

import (
	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/cmd/repo"
	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/store"
)

// Options are the flags of `docora status`.
type Options struct {
	F      *command.Factory
	AppID  string
	RepoID string
	JSON   bool
}

// NewCmdStatus returns `docora status`.
func NewCmdStatus(f *command.Factory) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every link's sync state: status, delivered commit, files, retries, last error, circuit",
		Example: `  docora status
  docora status --json | jq '.[] | select(.status == "failed")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			st, err := o.F.Store(ctx)
			if err != nil {
				return err
			}
			if o.AppID != "" {
				if _, err := st.GetApp(ctx, o.AppID); err != nil {
					return err
				}
			}
			links, err := st.ListLinks(ctx, store.LinkFilter{AppID: o.AppID, RepositoryID: o.RepoID})
			if err != nil {
				return err
			}
			return repo.PrintLinks(o.F, links, o.JSON)
		},
	}
	cmd.Flags().StringVar(&o.AppID, "app", "", "only this app's links")
	cmd.Flags().StringVar(&o.RepoID, "repo", "", "only this repository's links")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}
