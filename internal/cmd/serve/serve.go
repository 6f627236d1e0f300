// Package serve implements `docora serve`: the HTTP API (SPEC §7) and, in worker and all
// modes, the same scheduler as `sync --watch`, in one process over the shared store.
package serve

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/engine"
	"github.com/docora/docora/internal/server"
)

// DefaultAddr is where the server listens unless --addr says otherwise: loopback, so nothing
// is exposed by accident.
const DefaultAddr = "127.0.0.1:8080"

// Options are the flags of `docora serve`.
type Options struct {
	F                *command.Factory
	Addr             string
	Mode             string
	PublicOnboarding bool
	RateLimit        float64
	RateBurst        int
	ClientIPHeader   string
	ShutdownTimeout  time.Duration

	// Worker (modes worker and all): the flags of `sync --watch`.
	command.SyncFlags
}

// NewCmdServe returns `docora serve`.
func NewCmdServe(f *command.Factory, runF func(*Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API and run the sync scheduler",
		Long: `Serve docora's HTTP API and, in worker and all modes, run the same scheduler as
'docora sync --watch', over the same store as the CLI.

Modes:
  all     the API and the scheduler (default)
  api     the API only; run the scheduler elsewhere (serve --mode worker, sync --watch, cron)
  worker  the scheduler only, with GET /health, /version and /metrics

Apps authenticate with "Authorization: Bearer <app token>". Onboarding an app through the API
(POST /api/apps/onboard) requires the admin token DOCORA_ADMIN_TOKEN, or --public-onboarding
to let anyone onboard; with neither it is refused (403). Requests are rate-limited per client
address (--rate-limit, --rate-burst); behind a reverse proxy, name the header that carries the
client's address with --client-ip-header. docora speaks plain HTTP: terminate TLS in front.

"listening on http://ADDR" is printed to stderr once the port is bound (--addr with port 0
picks a free port). SIGINT or SIGTERM stops it gracefully: no new connections, in-flight
requests finish (within --shutdown-timeout), the in-flight webhook is finished and recorded.

Routes, status codes and examples: docs/api.md, or GET /openapi.json.`,
		Example: `  DOCORA_ADMIN_TOKEN=$(openssl rand -hex 32) docora serve
  docora serve --addr 0.0.0.0:8080 --mode api --client-ip-header X-Real-IP
  docora serve --mode worker --interval 30s --concurrency 10
  docora serve --addr 127.0.0.1:0 --public-onboarding --allow-private-networks`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Addr, "addr", DefaultAddr, "listen on HOST:PORT (port 0: any free port)")
	fl.StringVar(&o.Mode, "mode", server.ModeAll, "api, worker or all")
	fl.BoolVar(&o.PublicOnboarding, "public-onboarding", false, "let anyone onboard apps through the API, without the admin token")
	fl.Float64Var(&o.RateLimit, "rate-limit", server.DefaultRateLimit, "requests per second allowed per client address (0: no limit)")
	fl.IntVar(&o.RateBurst, "rate-burst", server.DefaultRateBurst, "requests a client may make at once before --rate-limit applies")
	fl.StringVar(&o.ClientIPHeader, "client-ip-header", "", "take the client address from this header set by a trusted reverse proxy (e.g. X-Real-IP)")
	fl.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long in-flight requests may take to finish after SIGINT/SIGTERM")
	o.AddSyncFlags(fl, "worker: ")
	return cmd
}

func (o *Options) validate() error {
	switch {
	case o.Mode != server.ModeAPI && o.Mode != server.ModeWorker && o.Mode != server.ModeAll:
		return command.Usagef("invalid --mode %q: use api, worker or all", o.Mode)
	case o.PublicOnboarding && o.Mode == server.ModeWorker:
		return command.Usagef("--public-onboarding needs the API: use --mode api or all")
	case o.RateLimit < 0 || o.RateBurst < 1:
		return command.Usagef("--rate-limit must be 0 or more and --rate-burst at least 1")
	case o.ShutdownTimeout <= 0:
		return command.Usagef("--shutdown-timeout must be positive")
	}
	if err := o.SyncFlags.Validate(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return command.Usagef("invalid --addr %q: use HOST:PORT, e.g. 127.0.0.1:8080", o.Addr)
	}
	return nil
}

func run(ctx context.Context, o *Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	f := o.F
	log := f.Logger()
	st, err := f.Store(ctx)
	if err != nil {
		return err
	}
	metrics := server.NewMetrics(st, log, f.Now)
	so := server.Options{
		Store: st, Metrics: metrics, Logger: log, Now: f.Now, Mode: o.Mode,
		Version:    server.VersionInfo{Version: f.Build.Version, Commit: f.Build.Commit, Date: f.Build.Date},
		AdminToken: f.Config.AdminToken, PublicOnboarding: o.PublicOnboarding,
		RateLimit: o.RateLimit, RateBurst: o.RateBurst, ClientIPHeader: o.ClientIPHeader,
	}
	if o.RateLimit == 0 {
		so.RateLimit = -1 // the flag's 0 means off; the server's 0 means its default
	}
	if o.Mode != server.ModeWorker {
		if so.Registry, err = f.Registry(ctx); err != nil {
			return err
		}
	}
	var eng *engine.Engine
	wake := make(chan struct{}, 1)
	if o.Mode != server.ModeAPI {
		eng, err = f.Engine(ctx, o.EngineOptions)
		if err != nil {
			return err
		}
		eng.Observer = metrics
		so.Wake = func() {
			select {
			case wake <- struct{}{}:
			default: // a pass is already due
			}
		}
	}
	srv, err := server.New(so)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	errOut := f.IO.ErrOut
	fmt.Fprintf(errOut, "listening on http://%s\n", ln.Addr())
	o.describe(ln.Addr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var workerErr error
	if eng != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel() // a worker that stops takes the server down with it
			workerErr = eng.Watch(ctx, engine.WatchOptions{Interval: o.Interval, Rescan: o.Rescan,
				Concurrency: o.Concurrency, Wake: wake}) // the engine logs each link's run
		}()
	}
	serveErr := server.Serve(ctx, ln, srv.Handler(), o.ShutdownTimeout, log)
	cancel()
	wg.Wait()
	fmt.Fprintln(errOut, "docora: stopped")
	if serveErr != nil {
		return serveErr
	}
	return workerErr
}

// describe tells the operator how the server is set up, on stderr.
func (o *Options) describe(addr net.Addr) {
	w := o.F.IO.ErrOut
	switch o.Mode {
	case server.ModeAPI:
		fmt.Fprintln(w, "docora: mode api: serving the HTTP API; no deliveries run in this process")
	case server.ModeWorker:
		fmt.Fprintf(w, "docora: mode worker: delivering every %s (re-scan every %s); HTTP serves /health, /version and /metrics\n",
			o.Interval, o.Rescan)
	default:
		fmt.Fprintf(w, "docora: mode all: serving the HTTP API and delivering every %s (re-scan every %s)\n", o.Interval, o.Rescan)
	}
	if o.Mode == server.ModeWorker {
		return
	}
	switch {
	case o.PublicOnboarding:
		fmt.Fprintln(w, "docora: onboarding is public: anyone who can reach the server can create apps")
		if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
			fmt.Fprintf(w, "docora: warning: %s is not a loopback address\n", addr)
		}
	case o.F.Config.AdminToken != "":
		fmt.Fprintln(w, "docora: onboarding requires the admin token (DOCORA_ADMIN_TOKEN)")
	default:
		fmt.Fprintln(w, "docora: onboarding through the API is disabled: set DOCORA_ADMIN_TOKEN or pass --public-onboarding")
	}
}
