// Package server is docora's HTTP API (`docora serve`): the routes of SPEC §7 over the same
// store and registry as the CLI, app and admin authentication, per-client rate limiting,
// security headers, health, OpenAPI and Prometheus metrics.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/docora/docora/internal/registry"
	"github.com/docora/docora/internal/store"
)

// Modes of `docora serve`.
const (
	ModeAPI    = "api"    // the HTTP API only; another process delivers
	ModeWorker = "worker" // the scheduler, with /health, /version and /metrics
	ModeAll    = "all"    // both
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultRateLimit    = 10 // requests per second per client
	DefaultRateBurst    = 20
	// requestTimeout bounds the work of one API call (a repository verification may wait for
	// the GitHub API, whose client gives up after 30 s).
	requestTimeout = 60 * time.Second
)

// VersionInfo describes the binary for GET /version.
type VersionInfo struct {
	Version string
	Commit  string
	Date    string
}

// Options are the server's dependencies and settings.
type Options struct {
	Store *store.Store
	// Registry performs onboarding and repository operations; required unless Mode is worker.
	Registry *registry.Service
	// Wake asks the worker of this process for a pass now (sync-now); nil when no worker runs
	// here (mode api): the request is recorded and another process picks it up.
	Wake    func()
	Metrics *Metrics // nil: no /metrics
	Logger  *slog.Logger
	Now     func() time.Time
	Version VersionInfo
	Mode    string // ModeAPI, ModeWorker or ModeAll (default)

	// AdminToken, when set, is the bearer token that POST /api/apps/onboard requires.
	AdminToken string
	// PublicOnboarding lets anyone onboard an app, without the admin token.
	PublicOnboarding bool

	MaxBodyBytes int64   // request body limit (default 64 KiB)
	RateLimit    float64 // requests per second per client; 0 = DefaultRateLimit, < 0 = off
	RateBurst    int     // default DefaultRateBurst
	// ClientIPHeader names a header set by a trusted reverse proxy (e.g. X-Real-IP) that
	// carries the client's address; "" uses the connection's address.
	ClientIPHeader string
}

// Server serves the HTTP API. Create it with New.
type Server struct {
	store      *store.Store
	registry   *registry.Service
	wake       func()
	metrics    *Metrics
	log        *slog.Logger
	now        func() time.Time
	version    VersionInfo
	mode       string
	adminHash  string // SHA-256 of the admin token; "" when none is configured
	public     bool
	maxBody    int64
	limiter    *limiter
	clientIP   func(*http.Request) string
	openapi    []byte
	routeTable []route
	handler    http.Handler
}

// New returns a server over o's dependencies.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("server: a store is required")
	}
	switch o.Mode {
	case "":
		o.Mode = ModeAll
	case ModeAPI, ModeWorker, ModeAll:
	default:
		return nil, fmt.Errorf("server: unknown mode %q: use api, worker or all", o.Mode)
	}
	if o.Mode != ModeWorker && o.Registry == nil {
		return nil, errors.New("server: the API needs a registry")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.RateLimit == 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateBurst <= 0 {
		o.RateBurst = DefaultRateBurst
	}
	s := &Server{
		store: o.Store, registry: o.Registry, wake: o.Wake, metrics: o.Metrics,
		log: o.Logger.With("component", "server"), now: o.Now, version: o.Version, mode: o.Mode,
		public: o.PublicOnboarding, maxBody: o.MaxBodyBytes, clientIP: clientIPFunc(o.ClientIPHeader),
	}
	if o.AdminToken != "" {
		s.adminHash = hashSecret(o.AdminToken)
	}
	if o.RateLimit > 0 {
		s.limiter = newLimiter(o.RateLimit, o.RateBurst, o.Now)
	}
	doc, err := openAPIDocument(o.Version.Version)
	if err != nil {
		return nil, err
	}
	s.openapi = doc
	s.routeTable = s.routes()
	mux := http.NewServeMux()
	for _, rt := range s.routeTable {
		mux.Handle(rt.method+" "+rt.path, rt.handler)
	}
	s.handler = s.recoverPanics(s.accessLog(s.securityHeaders(s.rateLimit(jsonMuxErrors(mux)))))
	return s, nil
}

// Handler returns the server's HTTP handler with every middleware applied.
func (s *Server) Handler() http.Handler { return s.handler }

// route is one registered method and path. The table is the single source of the mux's
// patterns, and the OpenAPI test compares it with the document.
type route struct {
	method  string
	path    string // a ServeMux path pattern, which is also the OpenAPI path template
	handler http.Handler
}

func (s *Server) routes() []route {
	rs := []route{
		{"GET", "/health", http.HandlerFunc(s.health)},
		{"GET", "/version", http.HandlerFunc(s.versionInfo)},
	}
	if s.metrics != nil {
		rs = append(rs, route{"GET", "/metrics", s.metrics.Handler()})
	}
	if s.mode == ModeWorker {
		return rs
	}
	return append(rs,
		route{"GET", "/openapi.json", http.HandlerFunc(s.openAPI)},
		route{"POST", "/api/apps/onboard", s.api(s.onboard)},
		route{"POST", "/api/repositories", s.api(s.requireApp(s.addRepository))},
		route{"GET", "/api/repositories", s.api(s.requireApp(s.listRepositories))},
		route{"GET", "/api/repositories/{id}", s.api(s.requireApp(s.getRepository))},
		route{"DELETE", "/api/repositories/{id}", s.api(s.requireApp(s.removeRepository))},
		route{"PATCH", "/api/repositories/{id}/token", s.api(s.requireApp(s.setToken))},
		route{"POST", "/api/repositories/{id}/sync", s.api(s.requireApp(s.requestSync))},
	)
}
