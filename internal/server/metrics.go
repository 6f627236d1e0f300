package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/docora/docora/internal/engine"
	"github.com/docora/docora/internal/store"
)

// Metrics are docora's Prometheus metrics, on a registry of their own (never the global
// one, so in-process tests and other libraries cannot collide with them). It implements
// engine.Observer for runs and deliveries; link and circuit gauges are read from the store
// at each scrape, so they are right whichever process did the work.
type Metrics struct {
	reg             *prometheus.Registry
	runs            *prometheus.CounterVec
	runDuration     prometheus.Histogram
	deliveries      *prometheus.CounterVec
	deliveryLatency *prometheus.HistogramVec
	httpRequests    *prometheus.CounterVec
	httpLatency     *prometheus.HistogramVec
}

var _ engine.Observer = (*Metrics)(nil)

// NewMetrics returns the metrics, with the store's gauges and the Go runtime and process
// collectors registered.
func NewMetrics(st *store.Store, log *slog.Logger, now func() time.Time) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "docora_link_runs_total",
			Help: "Link runs by outcome (synced, unchanged, failed, skipped, interrupted)."}, []string{"outcome"}),
		runDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "docora_link_run_duration_seconds",
			Help: "Duration of link runs.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "docora_deliveries_total",
			Help: "Webhook delivery attempts by kind (create, update, delete) and result (success, failure)."},
			[]string{"kind", "result"}),
		deliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "docora_delivery_duration_seconds",
			Help: "Duration of webhook delivery attempts (every chunk of a change included).", Buckets: prometheus.DefBuckets},
			[]string{"kind"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "docora_http_requests_total",
			Help: "HTTP API requests by route and status code."}, []string{"route", "code"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "docora_http_request_duration_seconds",
			Help: "HTTP API request durations by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)},
			[]string{"route"}),
	}
	for _, o := range []string{engine.OutcomeSynced, engine.OutcomeUnchanged, engine.OutcomeFailed,
		engine.OutcomeSkipped, engine.OutcomeStopped} {
		m.runs.WithLabelValues(o)
	}
	for _, k := range []string{"create", "update", "delete"} {
		m.deliveries.WithLabelValues(k, "success")
		m.deliveries.WithLabelValues(k, "failure")
		m.deliveryLatency.WithLabelValues(k)
	}
	m.reg.MustRegister(m.runs, m.runDuration, m.deliveries, m.deliveryLatency, m.httpRequests, m.httpLatency,
		&storeCollector{st: st, log: log, now: now},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Delivered counts one delivery attempt (engine.Observer).
func (m *Metrics) Delivered(kind string, err error, d time.Duration) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.deliveries.WithLabelValues(kind, result).Inc()
	m.deliveryLatency.WithLabelValues(kind).Observe(d.Seconds())
}

// LinkFinished counts one link run (engine.Observer).
func (m *Metrics) LinkFinished(r engine.Result) {
	m.runs.WithLabelValues(r.Outcome).Inc()
	m.runDuration.Observe(float64(r.DurationMS) / 1000)
}

func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpLatency.WithLabelValues(route).Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format (or OpenMetrics when asked).
// A failing store gauge does not hide the other metrics: docora_store_up says it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError,
		EnableOpenMetrics: true})
}

var (
	linksDesc    = prometheus.NewDesc("docora_links", "Links (app × repository) by status.", []string{"status"}, nil)
	circuitsDesc = prometheus.NewDesc("docora_circuits_open",
		"Repositories whose circuit breaker is open (paused after repeated git failures).", nil, nil)
	appsDesc    = prometheus.NewDesc("docora_apps", "Onboarded apps.", nil, nil)
	reposDesc   = prometheus.NewDesc("docora_repositories", "Watched repositories.", nil, nil)
	storeUpDesc = prometheus.NewDesc("docora_store_up", "1 when the store answered the last scrape's queries, 0 otherwise.", nil, nil)
)

// storeCollector reads gauges from the store at scrape time.
type storeCollector struct {
	st  *store.Store
	log *slog.Logger
	now func() time.Time
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{linksDesc, circuitsDesc, appsDesc, reposDesc, storeUpDesc} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.collect(ctx, ch); err != nil {
		c.log.Warn("metrics: read the store", "error", err)
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 1)
}

func (c *storeCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	db := c.st.DB()
	byStatus := map[string]float64{store.StatusPendingSnapshot: 0, store.StatusScanning: 0, store.StatusSynced: 0,
		store.StatusFailed: 0}
	rows, err := db.QueryContext(ctx, `SELECT status, COUNT(*) FROM links GROUP BY status`)
	if err != nil {
		return fmt.Errorf("count links: %w", err)
	}
	for rows.Next() {
		var status string
		var n float64
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return fmt.Errorf("count links: %w", err)
		}
		byStatus[status] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count links: %w", err)
	}
	var apps, repos, open float64
	// Times are stored in one fixed-width UTC layout, so they compare as strings.
	err = db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM apps), (SELECT COUNT(*) FROM repositories),
		(SELECT COUNT(*) FROM repositories WHERE circuit_open_until IS NOT NULL AND circuit_open_until > ?)`,
		c.now().UTC().Format(store.TimeLayout)).Scan(&apps, &repos, &open)
	if err != nil {
		return fmt.Errorf("count repositories: %w", err)
	}
	for status, n := range byStatus {
		ch <- prometheus.MustNewConstMetric(linksDesc, prometheus.GaugeValue, n, status)
	}
	ch <- prometheus.MustNewConstMetric(circuitsDesc, prometheus.GaugeValue, open)
	ch <- prometheus.MustNewConstMetric(appsDesc, prometheus.GaugeValue, apps)
	ch <- prometheus.MustNewConstMetric(reposDesc, prometheus.GaugeValue, repos)
	return nil
}
