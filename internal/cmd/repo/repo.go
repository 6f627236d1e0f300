// Package repo implements `docora repo`: registering and managing watched repositories.
package repo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/store"
)

// NewCmdRepo returns `docora repo` and its subcommands.
func NewCmdRepo(f *command.Factory, runF func(any) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Register and manage the repositories apps watch",
		Args:  cobra.ArbitraryArgs,
		RunE:  command.GroupRunE,
		Example: `  docora repo add vercel/next.js --app app_0123456789abcdef01234567
  docora repo list --json`,
	}
	cmd.AddCommand(
		newCmdAdd(f, runF),
		newCmdList(f, runF),
		newCmdShow(f, runF),
		newCmdRemove(f, runF),
		newCmdSetToken(f, runF),
		newCmdReset(f, runF),
	)
	return cmd
}

// AddOptions are the flags of `repo add`.
type AddOptions struct {
	F         *command.Factory
	URL       string
	AppID     string
	Branch    string
	TokenEnv  string
	TokenFile string
	Include   []string
	Exclude   []string
	JSON      bool
}

func newCmdAdd(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &AddOptions{F: f}
	cmd := &cobra.Command{
		Use:   "add URL --app APP_ID",
		Short: "Validate and register a repository for an app",
		Long: `Validate a repository and register it for an app.

URL may be https://github.com/owner/repo (with or without .git or a trailing slash),
github.com/owner/repo, owner/repo, git@github.com:owner/repo.git, or any other git URL
(https://, http://, ssh://, scp-like, file://). GitHub repositories are verified through the
GitHub API; other remotes by listing their refs. The branch defaults to the remote's default
branch. A git token is read from a file or an environment variable, never from a flag value.

Registering a repository the app already watches resets the link: the next sync sends the
whole repository again.`,
		Example: `  docora repo add vercel/next.js --app app_0123456789abcdef01234567
  GH_TOKEN=... docora repo add https://github.com/acme/private --app app_0123456789abcdef01234567 --token-env GH_TOKEN
  docora repo add https://git.example.com/team/docs.git --app app_0123456789abcdef01234567 --branch trunk \
      --include 'docs/**' --exclude '*.tmp' --json`,
		Args: command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.URL = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runAdd(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.AppID, "app", "", "the app that watches the repository (required)")
	fl.StringVar(&opts.Branch, "branch", "", "branch to watch (default: the remote's default branch)")
	fl.StringVar(&opts.TokenEnv, "token-env", "", "read the git token from this environment variable")
	fl.StringVar(&opts.TokenFile, "token-file", "", `read the git token from this file ("-" = stdin)`)
	fl.StringArrayVar(&opts.Include, "include", nil, "only watch paths matching this gitignore-style pattern (repeatable)")
	fl.StringArrayVar(&opts.Exclude, "exclude", nil, "never watch paths matching this gitignore-style pattern (repeatable)")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("app")
	cmd.MarkFlagsMutuallyExclusive("token-env", "token-file")
	return cmd
}

func runAdd(ctx context.Context, o *AddOptions) error {
	token, _, err := o.F.ReadSecret("token-file", o.TokenFile, "token-env", o.TokenEnv)
	if err != nil {
		return err
	}
	reg, err := o.F.Registry(ctx)
	if err != nil {
		return err
	}
	v, existed, err := reg.AddRepository(ctx, o.AppID, registry.RepoInput{URL: o.URL, Branch: o.Branch, Token: token,
		Include: o.Include, Exclude: o.Exclude})
	if err != nil {
		return err
	}
	if existed {
		fmt.Fprintln(o.F.IO.ErrOut, "The app already watched this repository: the link was reset and the next sync sends it again.")
	}
	out := registry.RegisteredView(v)
	if o.JSON {
		return o.F.IO.JSON(out)
	}
	return o.F.IO.Fields([][2]string{{"repository_id", out.RepositoryID}, {"url", out.GitHubURL},
		{"owner", out.Owner}, {"name", out.Name}, {"branch", out.Branch},
		{"is_private", strconv.FormatBool(out.IsPrivate)}, {"created_at", out.CreatedAt}})
}

// ListOptions are the flags of `repo list`.
type ListOptions struct {
	F     *command.Factory
	AppID string
	JSON  bool
}

func newCmdList(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &ListOptions{F: f}
	cmd := &cobra.Command{
		Use:     "list [--app APP_ID]",
		Aliases: []string{"ls"},
		Short:   "List watched repositories with their sync status, one row per app and repository",
		Example: "  docora repo list\n  docora repo list --app app_0123456789abcdef01234567 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runList(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.AppID, "app", "", "only this app's repositories")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func runList(ctx context.Context, o *ListOptions) error {
	st, err := o.F.Store(ctx)
	if err != nil {
		return err
	}
	if o.AppID != "" {
		if _, err := st.GetApp(ctx, o.AppID); err != nil {
			return err
		}
	}
	links, err := st.ListLinks(ctx, store.LinkFilter{AppID: o.AppID})
	if err != nil {
		return err
	}
	return PrintLinks(o.F, links, o.JSON)
}

// PrintLinks prints links as status rows (`repo list`, `status`).
func PrintLinks(f *command.Factory, links []store.LinkView, asJSON bool) error {
	views := make([]registry.StatusJSON, len(links))
	rows := make([][]string, len(links))
	for i, l := range links {
		v := registry.StatusView(l)
		views[i] = v
		rows[i] = []string{v.AppID, v.RepositoryID, v.GitHubURL, v.Branch, v.Status, short(deref(v.CommitSHA)),
			strconv.Itoa(v.FilesDelivered), orDash(deref(v.LastScannedAt)), strconv.Itoa(v.RetryCount),
			orDash(oneLine(deref(v.LastError))), circuit(v.CircuitOpenUntil, f)}
	}
	if asJSON {
		return f.IO.JSON(views)
	}
	return f.IO.Table([]string{"APP", "REPOSITORY", "URL", "BRANCH", "STATUS", "COMMIT", "FILES", "LAST SCAN",
		"RETRIES", "LAST ERROR", "CIRCUIT"}, rows)
}

func circuit(until *string, f *command.Factory) string {
	if until == nil {
		return "closed"
	}
	if t, err := parseTime(*until); err == nil && !t.After(f.Now()) {
		return "closed"
	}
	return "open until " + *until
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return orDash(sha)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// ShowOptions are the flags of `repo show`.
type ShowOptions struct {
	F     *command.Factory
	ID    string
	AppID string
	JSON  bool
}

// ShowJSON is `repo show --json`: the repository and every app's link to it.
type ShowJSON struct {
	RepositoryID        string                `json:"repository_id"`
	GitHubURL           string                `json:"github_url"`
	Owner               string                `json:"owner"`
	Name                string                `json:"name"`
	Branch              string                `json:"branch"`
	IsPrivate           bool                  `json:"is_private"`
	ConsecutiveFailures int                   `json:"consecutive_failures"`
	CircuitOpenUntil    *string               `json:"circuit_open_until"`
	CreatedAt           string                `json:"created_at"`
	Links               []registry.StatusJSON `json:"links"`
}

func newCmdShow(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &ShowOptions{F: f}
	cmd := &cobra.Command{
		Use:     "show REPOSITORY_ID [--app APP_ID]",
		Short:   "Show a repository, the apps that watch it and their include/exclude patterns",
		Example: "  docora repo show repo_0123456789abcdef01234567 --json",
		Args:    command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runShow(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.AppID, "app", "", "only this app's link")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func runShow(ctx context.Context, o *ShowOptions) error {
	st, err := o.F.Store(ctx)
	if err != nil {
		return err
	}
	r, err := st.GetRepository(ctx, o.ID)
	if err != nil {
		return err
	}
	if o.AppID != "" {
		if _, err := st.GetLink(ctx, o.AppID, o.ID); err != nil {
			return err
		}
	}
	links, err := st.ListLinks(ctx, store.LinkFilter{RepositoryID: o.ID, AppID: o.AppID})
	if err != nil {
		return err
	}
	out := ShowJSON{RepositoryID: r.ID, GitHubURL: r.URL, Owner: r.Owner, Name: r.Name, Branch: r.Branch,
		IsPrivate: r.Private, ConsecutiveFailures: r.ConsecutiveFailures, CreatedAt: registry.FormatTime(r.CreatedAt),
		Links: make([]registry.StatusJSON, len(links))}
	if r.CircuitOpenUntil != nil {
		s := registry.FormatTime(*r.CircuitOpenUntil)
		out.CircuitOpenUntil = &s
	}
	for i, l := range links {
		out.Links[i] = registry.StatusView(l)
	}
	if o.JSON {
		return o.F.IO.JSON(out)
	}
	pairs := [][2]string{{"repository_id", out.RepositoryID}, {"url", out.GitHubURL}, {"owner", out.Owner},
		{"name", out.Name}, {"branch", out.Branch}, {"is_private", strconv.FormatBool(out.IsPrivate)},
		{"circuit", circuit(out.CircuitOpenUntil, o.F)}, {"created_at", out.CreatedAt}}
	for _, l := range out.Links {
		pairs = append(pairs, [2]string{"app " + l.AppID, fmt.Sprintf("status=%s commit=%s files=%d include=%s exclude=%s",
			l.Status, short(deref(l.CommitSHA)), l.FilesDelivered, patterns(l.Include), patterns(l.Exclude))})
	}
	return o.F.IO.Fields(pairs)
}

func patterns(p []string) string {
	if len(p) == 0 {
		return "-"
	}
	return strings.Join(p, ",")
}

// LinkOptions are the flags of commands that act on one app's link to a repository.
type LinkOptions struct {
	F         *command.Factory
	ID        string
	AppID     string
	TokenEnv  string
	TokenFile string
	JSON      bool
}

func newLinkCmd(f *command.Factory, runF func(any) error, use, short, example string,
	run func(ctx context.Context, reg *registry.Service, o *LinkOptions) (string, error)) (*cobra.Command, *LinkOptions) {
	opts := &LinkOptions{F: f}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			reg, err := opts.F.Registry(cmd.Context())
			if err != nil {
				return err
			}
			msg, err := run(cmd.Context(), reg, opts)
			if err != nil {
				return err
			}
			if opts.JSON {
				return opts.F.IO.JSON(map[string]string{"app_id": opts.AppID, "repository_id": opts.ID, "message": msg})
			}
			_, err = fmt.Fprintln(opts.F.IO.Out, msg)
			return err
		},
	}
	cmd.Flags().StringVar(&opts.AppID, "app", "", "the app whose link this is (required)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("app")
	return cmd, opts
}

func newCmdRemove(f *command.Factory, runF func(any) error) *cobra.Command {
	cmd, _ := newLinkCmd(f, runF, "remove REPOSITORY_ID --app APP_ID",
		"Stop an app watching a repository (its delivery state goes too)",
		"  docora repo remove repo_0123456789abcdef01234567 --app app_0123456789abcdef01234567",
		func(ctx context.Context, reg *registry.Service, o *LinkOptions) (string, error) {
			return "Repository unwatched", reg.RemoveRepository(ctx, o.AppID, o.ID)
		})
	cmd.Aliases = []string{"rm"}
	return cmd
}

func newCmdSetToken(f *command.Factory, runF func(any) error) *cobra.Command {
	cmd, opts := newLinkCmd(f, runF, "set-token REPOSITORY_ID --app APP_ID (--token-env VAR | --token-file F)",
		"Replace the git token of an app's link, after checking that it can read the repository",
		"  GH_TOKEN=... docora repo set-token repo_0123456789abcdef01234567 --app app_0123456789abcdef01234567 --token-env GH_TOKEN",
		func(ctx context.Context, reg *registry.Service, o *LinkOptions) (string, error) {
			tok, ok, err := o.F.ReadSecret("token-file", o.TokenFile, "token-env", o.TokenEnv)
			if err != nil {
				return "", err
			}
			if !ok || tok == "" {
				return "", command.Usagef("give the new token with --token-env or --token-file")
			}
			return "Token updated successfully", reg.SetToken(ctx, o.AppID, o.ID, tok)
		})
	cmd.Flags().StringVar(&opts.TokenEnv, "token-env", "", "read the git token from this environment variable")
	cmd.Flags().StringVar(&opts.TokenFile, "token-file", "", `read the git token from this file ("-" = stdin)`)
	cmd.MarkFlagsMutuallyExclusive("token-env", "token-file")
	cmd.MarkFlagsOneRequired("token-env", "token-file")
	return cmd
}

func newCmdReset(f *command.Factory, runF func(any) error) *cobra.Command {
	cmd, _ := newLinkCmd(f, runF, "reset REPOSITORY_ID --app APP_ID",
		"Reset a failed link: clear its error, retries and backoff, and close the circuit breaker",
		"  docora repo reset repo_0123456789abcdef01234567 --app app_0123456789abcdef01234567",
		func(ctx context.Context, reg *registry.Service, o *LinkOptions) (string, error) {
			return "Link reset: the next sync tries it at once", reg.ResetLink(ctx, o.AppID, o.ID)
		})
	return cmd
}

func parseTime(s string) (time.Time, error) { return time.Parse(store.TimeLayout, s) }
