// Package cli builds docora's root command, wires its dependencies, and maps errors to the
// documented exit codes. cmd/docora only calls Main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/cmd/app"
	democmd "github.com/docora/docora/internal/cmd/demo"
	"github.com/docora/docora/internal/cmd/receive"
	"github.com/docora/docora/internal/cmd/repo"
	"github.com/docora/docora/internal/cmd/serve"
	"github.com/docora/docora/internal/cmd/status"
	synccmd "github.com/docora/docora/internal/cmd/sync"
	versioncmd "github.com/docora/docora/internal/cmd/version"
	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/config"
	"github.com/docora/docora/internal/output"
	"github.com/docora/docora/internal/registry"
)

// Set at build time with -ldflags "-X github.com/docora/docora/internal/cli.version=...".
var (
	version = ""
	commit  = ""
	date    = ""
)

// Main runs docora with the process's arguments and environment and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], output.System(), os.Getenv)
}

// Run runs docora with the given arguments, streams and environment. Tests call it in-process.
func Run(ctx context.Context, args []string, ios *output.IO, getenv func(string) string) int {
	ios.NoColor = ios.NoColor || getenv("NO_COLOR") != ""
	f := &command.Factory{IO: ios, Getenv: getenv, Now: time.Now, Build: buildInfo()}
	wire(f)
	defer f.Close()
	root := NewRootCmd(f)
	root.SetArgs(args)
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return command.ExitOK
	}
	return reportError(ios.ErrOut, cmd, err)
}

// NewRootCmd returns the docora command tree.
func NewRootCmd(f *command.Factory) *cobra.Command {
	var fl config.Flags
	root := &cobra.Command{
		Use:   "docora",
		Short: "Push every file change of watched git repositories to apps as signed webhooks",
		Long: `docora watches git repositories and pushes every file-level change (create, update,
delete) to the client applications registered for them, as HMAC-signed webhooks.

Run it from the shell, from cron, in a --watch loop, or as an HTTP API server.

Configuration: flags beat DOCORA_* environment variables, which beat defaults. The home
(--home, DOCORA_HOME, default $XDG_DATA_HOME/docora or ~/.local/share/docora) holds docora.db
(DOCORA_DB overrides its path), the git object caches and the generated key file.

Exit status: 0 success; 1 error; 2 usage error (unknown command or flag, missing required flag,
wrong number of arguments); 3 sync finished but at least one link failed.`,
		Example: `  docora demo
  docora app onboard --name "Docs site" --base-url https://docs.example.com/hooks --email ops@example.com
  docora repo add vercel/next.js --app app_0123456789abcdef01234567
  docora sync`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			fl.Set = func(name string) bool {
				fg := cmd.Flags().Lookup(name)
				return fg != nil && fg.Changed
			}
			cfg, err := config.Load(f.Getenv, fl)
			if err != nil {
				var ue config.UsageError
				if errors.As(err, &ue) {
					return &command.UsageError{Err: err}
				}
				return err
			}
			f.Config = cfg
			f.IO.NoColor = f.IO.NoColor || cfg.NoColor
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&fl.Home, "home", "", "directory for the store, caches and key file (env DOCORA_HOME)")
	pf.StringVar(&fl.LogLevel, "log-level", config.DefaultLogLevel, "log level: debug, info, warn, error (env DOCORA_LOG_LEVEL)")
	pf.StringVar(&fl.LogFormat, "log-format", config.DefaultLogFormat, "log format: text or json (env DOCORA_LOG_FORMAT)")
	pf.BoolVar(&fl.AllowPrivate, "allow-private-networks", false,
		"allow webhook targets and git remotes on loopback/private networks and plain http (env DOCORA_ALLOW_PRIVATE_NETWORKS=1)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &command.UsageError{Err: err} })
	root.CompletionOptions.HiddenDefaultCmd = false

	root.AddCommand(
		app.NewCmdApp(f, nil),
		repo.NewCmdRepo(f, nil),
		synccmd.NewCmdSync(f, nil),
		status.NewCmdStatus(f),
		serve.NewCmdServe(f, nil),
		receive.NewCmdReceive(f, nil),
		democmd.NewCmdDemo(f, nil),
		versioncmd.NewCmdVersion(f),
	)
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			c.Example = "  docora help sync\n  docora help repo add"
		}
		if c.Name() != "completion" {
			continue
		}
		c.Args, c.RunE = cobra.ArbitraryArgs, command.GroupRunE
		c.Example = "  docora completion bash > /etc/bash_completion.d/docora\n  docora completion zsh > \"${fpath[1]}/_docora\""
		for _, sh := range c.Commands() {
			sh.Example = "  docora completion " + sh.Name()
		}
	}
	return root
}

func buildInfo() command.BuildInfo {
	b := command.BuildInfo{Version: version, Commit: commit, Date: date}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = strings.TrimPrefix(info.Main.Version, "v")
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue *command.UsageError
	switch {
	case errors.Is(err, command.ErrLinksFailed):
		return command.ExitLinksFailed
	case errors.As(err, &ue), isCobraUsage(err):
		return command.ExitUsage
	default:
		return command.ExitError
	}
}

// isCobraUsage recognises the usage errors cobra returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag(s)",
		"arg(s), received", "requires at least", "requires at most", "invalid argument", "flag needs an argument",
		"if any flags in the group", "at least one of the flags in the group", "none of the others can be"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func reportError(w io.Writer, cmd *cobra.Command, err error) int {
	code := exitCode(err)
	if code == command.ExitLinksFailed {
		fmt.Fprintln(w, "docora:", err)
		return code
	}
	fmt.Fprintln(w, "Error:", describe(err))
	if code == command.ExitUsage && cmd != nil {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// describe turns an error into the sentence a user reads, with what to do next where we know it.
func describe(err error) string {
	var ve *registry.ValidationError
	if errors.As(err, &ve) {
		return "invalid " + ve.Error()
	}
	return err.Error()
}
