// Package app implements `docora app`: onboarding and managing the apps that receive webhooks.
package app

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/store"
)

// NewCmdApp returns `docora app` and its subcommands.
func NewCmdApp(f *command.Factory, runF func(any) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Onboard and manage the apps that receive webhooks",
		Args:  cobra.ArbitraryArgs,
		RunE:  command.GroupRunE,
		Example: `  docora app onboard --name "Docs site" --base-url https://docs.example.com/hooks --email ops@example.com
  docora app list --json`,
	}
	cmd.AddCommand(
		newCmdOnboard(f, runF),
		newCmdList(f, runF),
		newCmdShow(f, runF),
		newCmdRemove(f, runF),
		newCmdRotateToken(f, runF),
		newCmdSet(f, runF),
	)
	return cmd
}

// OnboardOptions are the flags of `app onboard`.
type OnboardOptions struct {
	F           *command.Factory
	Name        string
	BaseURL     string
	Email       string
	Website     string
	Description string
	KeyFile     string
	KeyEnv      string
	JSON        bool
}

func newCmdOnboard(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &OnboardOptions{F: f}
	cmd := &cobra.Command{
		Use:   "onboard --name NAME --base-url URL --email EMAIL",
		Short: "Create an app and print its id, token and (when generated) client auth key",
		Long: `Create an app that receives webhooks at its base URL.

The bearer token is printed once and only its hash is stored. The client auth key (the HMAC key
that signs webhooks) is read from a file (--client-auth-key-file, "-" for stdin) or an
environment variable (--client-auth-key-env); when neither is given one is generated and printed
once. Keys are never accepted as plain flag values, which would land in shell history.`,
		Example: `  docora app onboard --name "Docs site" --base-url https://docs.example.com/hooks --email ops@example.com
  docora app onboard --name "Docs site" --base-url https://docs.example.com/hooks --email ops@example.com \
      --client-auth-key-file key.txt --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runOnboard(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Name, "name", "", "app name, 3 to 100 characters (required)")
	fl.StringVar(&opts.BaseURL, "base-url", "", "https URL that receives /create, /update, /delete, /sync_failed (required)")
	fl.StringVar(&opts.Email, "email", "", "contact email (required)")
	fl.StringVar(&opts.Website, "website", "", "app website")
	fl.StringVar(&opts.Description, "description", "", "description, at most 500 characters")
	fl.StringVar(&opts.KeyFile, "client-auth-key-file", "", `read the client auth key from this file ("-" = stdin)`)
	fl.StringVar(&opts.KeyEnv, "client-auth-key-env", "", "read the client auth key from this environment variable")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	for _, n := range []string{"name", "base-url", "email"} {
		_ = cmd.MarkFlagRequired(n)
	}
	cmd.MarkFlagsMutuallyExclusive("client-auth-key-file", "client-auth-key-env")
	return cmd
}

func runOnboard(ctx context.Context, o *OnboardOptions) error {
	key, _, err := o.F.ReadSecret("client-auth-key-file", o.KeyFile, "client-auth-key-env", o.KeyEnv)
	if err != nil {
		return err
	}
	if key != "" || o.KeyFile != "" {
		if err := registry.ValidateClientAuthKey(key); err != nil {
			return err
		}
	}
	reg, err := o.F.Registry(ctx)
	if err != nil {
		return err
	}
	res, err := reg.Onboard(ctx, registry.AppInput{Name: o.Name, Email: o.Email, Website: o.Website,
		Description: o.Description, BaseURL: o.BaseURL, ClientAuthKey: key})
	if err != nil {
		return err
	}
	out := registry.OnboardJSON{AppID: res.App.ID, Token: res.Token, CreatedAt: registry.FormatTime(res.App.CreatedAt),
		ClientAuthKey: res.GeneratedKey}
	if res.GeneratedKey != "" {
		fmt.Fprintln(o.F.IO.ErrOut, "The token and the generated client auth key are shown only now: store them safely.")
	} else {
		fmt.Fprintln(o.F.IO.ErrOut, "The token is shown only now: store it safely.")
	}
	if o.JSON {
		return o.F.IO.JSON(out)
	}
	pairs := [][2]string{{"app_id", out.AppID}, {"token", out.Token}, {"created_at", out.CreatedAt}}
	if out.ClientAuthKey != "" {
		pairs = append(pairs, [2]string{"client_auth_key", out.ClientAuthKey})
	}
	return o.F.IO.Fields(pairs)
}

// ListOptions are the flags of `app list`.
type ListOptions struct {
	F    *command.Factory
	JSON bool
}

func newCmdList(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &ListOptions{F: f}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List apps",
		Example: "  docora app list\n  docora app list --json | jq -r '.[].app_id'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runList(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func runList(ctx context.Context, o *ListOptions) error {
	st, err := o.F.Store(ctx)
	if err != nil {
		return err
	}
	apps, err := st.ListApps(ctx)
	if err != nil {
		return err
	}
	views := make([]registry.AppJSON, len(apps))
	rows := make([][]string, len(apps))
	for i, a := range apps {
		views[i] = registry.AppView(a)
		rows[i] = []string{a.ID, a.Name, a.Email, a.BaseURL, views[i].CreatedAt}
	}
	if o.JSON {
		return o.F.IO.JSON(views)
	}
	return o.F.IO.Table([]string{"APP ID", "NAME", "EMAIL", "BASE URL", "CREATED"}, rows)
}

// ShowOptions are the flags of `app show`.
type ShowOptions struct {
	F    *command.Factory
	ID   string
	JSON bool
}

func newCmdShow(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &ShowOptions{F: f}
	cmd := &cobra.Command{
		Use:     "show APP_ID",
		Short:   "Show one app",
		Example: "  docora app show app_0123456789abcdef01234567 --json",
		Args:    command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runShow(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func runShow(ctx context.Context, o *ShowOptions) error {
	st, err := o.F.Store(ctx)
	if err != nil {
		return err
	}
	a, err := st.GetApp(ctx, o.ID)
	if err != nil {
		return err
	}
	return printApp(o.F, a, o.JSON)
}

func printApp(f *command.Factory, a store.App, asJSON bool) error {
	v := registry.AppView(a)
	if asJSON {
		return f.IO.JSON(v)
	}
	return f.IO.Fields([][2]string{{"app_id", v.AppID}, {"name", v.Name}, {"email", v.Email},
		{"website", v.Website}, {"description", v.Description}, {"base_url", v.BaseURL},
		{"created_at", v.CreatedAt}, {"updated_at", v.UpdatedAt}})
}

// IDOptions are the flags of commands that act on one app.
type IDOptions struct {
	F    *command.Factory
	ID   string
	JSON bool
}

func newCmdRemove(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &IDOptions{F: f}
	cmd := &cobra.Command{
		Use:     "remove APP_ID",
		Aliases: []string{"rm"},
		Short:   "Remove an app, its links and delivery state, and repositories nobody watches any more",
		Example: "  docora app remove app_0123456789abcdef01234567",
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
			if err := reg.RemoveApp(cmd.Context(), opts.ID); err != nil {
				return err
			}
			if opts.JSON {
				return opts.F.IO.JSON(map[string]any{"app_id": opts.ID, "removed": true})
			}
			_, err = fmt.Fprintf(opts.F.IO.Out, "removed %s\n", opts.ID)
			return err
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func newCmdRotateToken(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &IDOptions{F: f}
	cmd := &cobra.Command{
		Use:     "rotate-token APP_ID",
		Short:   "Issue a new bearer token for an app; the old one stops working at once",
		Example: "  docora app rotate-token app_0123456789abcdef01234567 --json",
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
			tok, err := reg.RotateToken(cmd.Context(), opts.ID)
			if err != nil {
				return err
			}
			fmt.Fprintln(opts.F.IO.ErrOut, "The new token is shown only now: store it safely.")
			if opts.JSON {
				return opts.F.IO.JSON(map[string]string{"app_id": opts.ID, "token": tok})
			}
			return opts.F.IO.Fields([][2]string{{"app_id", opts.ID}, {"token", tok}})
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// SetOptions are the flags of `app set`.
type SetOptions struct {
	F      *command.Factory
	ID     string
	Update registry.AppUpdate
	JSON   bool
}

func newCmdSet(f *command.Factory, runF func(any) error) *cobra.Command {
	opts := &SetOptions{F: f}
	var name, baseURL, email, website, description string
	cmd := &cobra.Command{
		Use:     "set APP_ID [--name N] [--base-url URL] [--email E] [--website W] [--description D]",
		Short:   "Change an app's name, base URL, email, website or description",
		Example: "  docora app set app_0123456789abcdef01234567 --base-url https://new.example.com/hooks",
		Args:    command.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			fl := cmd.Flags()
			pick := func(flag string, v *string) *string {
				if fl.Changed(flag) {
					return v
				}
				return nil
			}
			opts.Update = registry.AppUpdate{Name: pick("name", &name), BaseURL: pick("base-url", &baseURL),
				Email: pick("email", &email), Website: pick("website", &website), Description: pick("description", &description)}
			if opts.Update == (registry.AppUpdate{}) {
				return command.Usagef("nothing to change: give at least one of --name, --base-url, --email, --website, --description")
			}
			if runF != nil {
				return runF(opts)
			}
			reg, err := opts.F.Registry(cmd.Context())
			if err != nil {
				return err
			}
			a, err := reg.UpdateApp(cmd.Context(), opts.ID, opts.Update)
			if err != nil {
				return err
			}
			return printApp(opts.F, a, opts.JSON)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new name")
	fl.StringVar(&baseURL, "base-url", "", "new base URL")
	fl.StringVar(&email, "email", "", "new email")
	fl.StringVar(&website, "website", "", "new website")
	fl.StringVar(&description, "description", "", "new description")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}
