// Package receive implements `docora receive`, the reference receiver: an HTTP server that
// verifies docora's webhooks and keeps a directory a mirror of the watched repository.
package receive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/mirror"
	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/pkg/webhook"
)

// DefaultAddr is where the receiver listens unless --addr says otherwise: loopback only.
const DefaultAddr = "127.0.0.1:8080"

// shutdownTimeout bounds how long a stop waits for requests in progress.
const shutdownTimeout = 30 * time.Second

// Options are the flags of `docora receive`.
type Options struct {
	F         *command.Factory
	Addr      string
	Dir       string
	KeyFile   string
	KeyEnv    string
	Tolerance time.Duration
	MaxBody   int64
	TLSCert   string
	TLSKey    string
}

// NewCmdReceive returns `docora receive`.
func NewCmdReceive(f *command.Factory, runF func(*Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "receive --dir DIR --client-auth-key-file FILE [--addr HOST:PORT]",
		Short: "Run the reference receiver: apply docora's webhooks to a mirror directory",
		Long: `Serve POST /create, /update, /delete and /sync_failed, verify each request's signature
and timestamp on the raw body with the app's client auth key, reassemble chunked files, and apply
every change to --dir, which becomes a byte-for-byte mirror of the watched repository.

Point an app's base URL at the address printed on stderr ("listening on http://..."). docora only
delivers to https:// URLs on public addresses, so for a receiver on this machine run docora with
--allow-private-networks, or put the receiver behind TLS (--tls-cert/--tls-key, or a proxy).

Refused requests: 401 for a missing or wrong signature or a timestamp more than --tolerance off,
413 for a body over --max-body, 400 for malformed JSON, content that does not match its sha or
size, a chunk out of order, or a path that could leave the directory (absolute, "..", ".git", NUL,
backslash); nothing is written then. Re-deliveries are harmless. Writes are atomic (temporary
file, fsync, rename).

The key is read from a file ("-" = stdin; one trailing newline is removed) or an environment
variable, never from a flag value. The receiver needs no docora store: it runs anywhere.
It stops gracefully on SIGINT or SIGTERM, finishing requests in progress.

Exit status: 0 after a graceful stop; 1 when the key cannot be read or is not 16 to 500
characters, or the address cannot be bound; 2 on a usage error (such as a malformed --addr).`,
		Example: `  docora receive --dir ./mirror --client-auth-key-file key.txt
  docora receive --addr 127.0.0.1:0 --dir ./mirror --client-auth-key-env DOCORA_CLIENT_AUTH_KEY --log-level info
  docora receive --addr :8443 --dir /srv/mirror --client-auth-key-file key.txt --tls-cert cert.pem --tls-key key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Addr, "addr", DefaultAddr, "address to listen on, HOST:PORT (port 0 picks a free port)")
	fl.StringVar(&o.Dir, "dir", "", "mirror directory, created when missing (required)")
	fl.StringVar(&o.KeyFile, "client-auth-key-file", "", `read the app's client auth key from this file ("-" = stdin)`)
	fl.StringVar(&o.KeyEnv, "client-auth-key-env", "", "read the app's client auth key from this environment variable")
	fl.DurationVar(&o.Tolerance, "tolerance", webhook.DefaultTolerance, "accepted difference between a request's timestamp and this clock")
	fl.Int64Var(&o.MaxBody, "max-body", webhook.DefaultMaxBodyBytes, "largest accepted request body, in bytes")
	fl.StringVar(&o.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (with --tls-key)")
	fl.StringVar(&o.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	_ = cmd.MarkFlagRequired("dir")
	cmd.MarkFlagsOneRequired("client-auth-key-file", "client-auth-key-env")
	cmd.MarkFlagsMutuallyExclusive("client-auth-key-file", "client-auth-key-env")
	cmd.MarkFlagsRequiredTogether("tls-cert", "tls-key")
	return cmd
}

func (o *Options) validate() error {
	switch {
	case o.Dir == "":
		return command.Usagef("--dir must not be empty")
	case o.Tolerance <= 0:
		return command.Usagef("--tolerance must be positive")
	case o.MaxBody <= 0:
		return command.Usagef("--max-body must be positive")
	}
	if _, port, err := net.SplitHostPort(o.Addr); err != nil || port == "" {
		return command.Usagef("invalid --addr %q: want HOST:PORT, such as 127.0.0.1:8080 or :8080", o.Addr)
	}
	return nil
}

func run(ctx context.Context, o *Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	key, _, err := o.F.ReadSecret("client-auth-key-file", o.KeyFile, "client-auth-key-env", o.KeyEnv)
	if err != nil {
		return err
	}
	if err := registry.ValidateClientAuthKey(key); err != nil {
		return err
	}
	log := o.F.Logger().With("component", "receive")
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	defer ln.Close()
	h, err := mirror.New(mirror.Options{Dir: o.Dir, Key: []byte(key), Tolerance: o.Tolerance,
		MaxBodyBytes: o.MaxBody, Logger: o.F.Logger()})
	if err != nil {
		return err
	}
	defer h.Close()
	srv := NewServer(h, log)
	scheme := "http"
	if o.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(o.F.IO.ErrOut, "docora receive: listening on %s://%s, mirroring into %s\n", scheme, ln.Addr(), o.Dir)

	errc := make(chan error, 1)
	go func() {
		if o.TLSCert != "" {
			errc <- srv.ServeTLS(ln, o.TLSCert, o.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		// Serve returned on its own: the listener failed (or the TLS files could not be read).
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	fmt.Fprintln(o.F.IO.ErrOut, "docora receive: stopped")
	return nil
}

// NewServer returns the receiver's http.Server around h, with timeouts that keep slow or
// idle clients from holding connections. Bodies are bounded by the handler (--max-body).
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
