// Package command holds what every docora command needs — streams, configuration, logger, the
// store and the registry — opened lazily so that --help and completion never touch SQLite —
// and the errors that map to exit codes.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/config"
	"github.com/docora/docora/internal/engine"
	"github.com/docora/docora/internal/netguard"
	"github.com/docora/docora/internal/output"
	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/secrets"
	"github.com/docora/docora/internal/store"
)

// BuildInfo describes the binary.
type BuildInfo struct {
	Version string
	Commit  string
	Date    string
}

// Factory is passed to every command constructor.
type Factory struct {
	IO     *output.IO
	Getenv func(string) string
	Now    func() time.Time
	Build  BuildInfo

	// Config is set by the root command once flags are parsed.
	Config *config.Config

	// Registry returns the registry service over the store; wired by internal/cli.
	Registry func(ctx context.Context) (*registry.Service, error)
	// Engine returns a sync engine over the store; wired by internal/cli.
	Engine func(ctx context.Context, o EngineOptions) (*engine.Engine, error)

	mu     sync.Mutex
	logger *slog.Logger
	st     *store.Store
}

// Logger returns the logger chosen by --log-level and --log-format, writing to stderr.
func (f *Factory) Logger() *slog.Logger {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logger != nil {
		return f.logger
	}
	if f.Config == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(f.Config.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if f.Config.LogFormat == "json" {
		f.logger = slog.New(slog.NewJSONHandler(f.IO.ErrOut, opts))
	} else {
		f.logger = slog.New(slog.NewTextHandler(f.IO.ErrOut, opts))
	}
	return f.logger
}

// Policy is the network guard policy for git remotes and webhook targets.
func (f *Factory) Policy() netguard.Policy {
	return netguard.Policy{AllowPrivate: f.Config != nil && f.Config.AllowPrivate}
}

// Store opens the store on first use: migrations applied, encryption key loaded and checked.
func (f *Factory) Store(ctx context.Context) (*store.Store, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st != nil {
		return f.st, nil
	}
	if f.Config == nil {
		return nil, errors.New("configuration not loaded")
	}
	if f.Config.Home == "" {
		return nil, errors.New("cannot find a home directory: set --home or DOCORA_HOME")
	}
	st, err := store.Open(ctx, f.Config.DBPath)
	if err != nil {
		return nil, err
	}
	has, err := st.HasKey(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	key, err := secrets.LoadKey(f.Config.Home, f.Config.EncryptionKey, !has)
	if err != nil {
		st.Close()
		return nil, err
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := st.UseKey(ctx, box); err != nil {
		st.Close()
		return nil, err
	}
	f.st = st
	return st, nil
}

// Close releases what the factory opened.
func (f *Factory) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st != nil {
		err := f.st.Close()
		f.st = nil
		return err
	}
	return nil
}

// Exit codes (documented in the README and man pages).
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitLinksFailed = 3
)

// ErrLinksFailed is returned by sync when it finished but at least one link failed.
var ErrLinksFailed = errors.New("sync finished, but at least one link failed")

// UsageError marks a mistake in how the command was invoked (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ReadSecretFile reads a key or token from a file ("-" = stdin), removing one trailing
// newline ("\n" or "\r\n") and nothing else.
func ReadSecretFile(in io.Reader, path string) (string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(in, 1<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	s := string(data)
	if strings.HasSuffix(s, "\r\n") {
		s = s[:len(s)-2]
	} else if strings.HasSuffix(s, "\n") {
		s = s[:len(s)-1]
	}
	return s, nil
}

// ReadSecret resolves a secret given as a file or an environment variable name; at most one
// may be set. ok is false when neither was given.
func (f *Factory) ReadSecret(fileFlag, file, envFlag, env string) (value string, ok bool, err error) {
	switch {
	case file != "" && env != "":
		return "", false, Usagef("--%s and --%s cannot be used together", fileFlag, envFlag)
	case file != "":
		v, err := ReadSecretFile(f.IO.In, file)
		return v, err == nil, err
	case env != "":
		v := f.Getenv(env)
		if v == "" {
			return "", false, fmt.Errorf("--%s: environment variable %s is empty or not set", envFlag, env)
		}
		return v, true, nil
	}
	return "", false, nil
}

// ExactArgs is cobra.ExactArgs with a usage error (exit code 2).
func ExactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &UsageError{Err: err}
		}
		return nil
	}
}

// GroupRunE makes a command that only groups subcommands fail with a usage error on an
// unknown subcommand (cobra would print help and exit 0) and print help when called bare.
func GroupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return Usagef("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
}

// EngineOptions configure the engine a command builds.
type EngineOptions struct {
	Engine         engine.Options
	Timeout        time.Duration // webhook request timeout
	ChunkThreshold int64
	ChunkSize      int
}
