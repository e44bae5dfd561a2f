// Package metrics owns the coordinator's Prometheus metrics: a private
// registry, the counters the agent gateway bumps (sessions, leases, results,
// infrastructure failures) and the gauges read from the store at every
// scrape (jobs by state and lane, agents by state), and the handler that
// serves them.
//
// Every label takes values from a fixed, small set: transports and verdicts
// outside the known ones are counted as "unknown", and lanes beyond
// MaxLanes are summed under "other". It must not register with the
// Prometheus default registry, change anything in the store, or decide
// anything about jobs or agents; it only counts.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/transport"
)

// Source is what the scrape-time gauges read. store.Store satisfies it.
type Source interface {
	JobCounts(ctx context.Context) ([]store.JobCount, error)
	AgentCounts(ctx context.Context, onlineSince time.Time) (store.AgentCounts, error)
}

// Config holds what Metrics needs. Zero values take defaults.
type Config struct {
	// Source is read at every scrape; nil leaves out the job and agent
	// gauges.
	Source Source
	// MaxLanes caps the lanes named in the lane label (default
	// DefaultMaxLanes); the others are summed under OtherLane.
	MaxLanes int
	// OnlineWindow is how recently an approved agent must have been heard
	// from to count as online (default DefaultOnlineWindow).
	OnlineWindow time.Duration
	// ScrapeTimeout bounds the store reads of one scrape (default 5s).
	ScrapeTimeout time.Duration
	Now           func() time.Time
	Log           *slog.Logger
}

// Defaults for Config.
const (
	DefaultMaxLanes     = 20
	DefaultOnlineWindow = 2 * time.Minute
)

// Label values that stand for many.
const (
	// OtherLane sums the lanes beyond Config.MaxLanes.
	OtherLane = "other"
	// Unknown stands for a transport or verdict outside the known set.
	Unknown = "unknown"
)

// Infrastructure failure kinds, the values of the kind label of
// sparegrid_infra_failures_total.
const (
	KindTmpfail      = "tmpfail"
	KindLeaseExpired = "lease_expired"
)

// jobStates are the states sparegrid_jobs reports, in order.
func jobStates() []store.JobState {
	return []store.JobState{store.JobQueued, store.JobRunning, store.JobHeld}
}

// transports are the values of the transport label.
func transports() []string { return []string{transport.QUIC, transport.TCP, Unknown} }

// verdicts are the values of the verdict label of sparegrid_results_total.
func verdicts() []dep8.Verdict {
	return []dep8.Verdict{dep8.VerdictPass, dep8.VerdictFail, dep8.VerdictNeutral, dep8.VerdictTmpfail, dep8.VerdictError, Unknown}
}

// Metrics holds the registry and every collector on it. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	sessions *prometheus.CounterVec
	leases   *prometheus.CounterVec
	results  *prometheus.CounterVec
	infra    *prometheus.CounterVec
	log      *slog.Logger
}

// New returns Metrics on a new private registry, with the Go runtime and
// process collectors and, when cfg.Source is set, the store gauges.
func New(cfg Config) *Metrics {
	if cfg.MaxLanes <= 0 {
		cfg.MaxLanes = DefaultMaxLanes
	}
	if cfg.OnlineWindow <= 0 {
		cfg.OnlineWindow = DefaultOnlineWindow
	}
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparegrid_agent_sessions_total",
			Help: "Agent sessions the gateway accepted, by transport.",
		}, []string{"transport"}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparegrid_leases_total",
			Help: "Jobs leased to agents, by transport.",
		}, []string{"transport"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparegrid_results_total",
			Help: "Results stored, by what they made of the job (tmpfail: queued again) and transport.",
		}, []string{"verdict", "transport"}),
		infra: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparegrid_infra_failures_total",
			Help: "Infrastructure failures: tmpfail results and expired leases.",
		}, []string{"kind"}),
		log: cfg.Log,
	}
	for _, tr := range transports() {
		m.sessions.WithLabelValues(tr)
		m.leases.WithLabelValues(tr)
		for _, v := range verdicts() {
			m.results.WithLabelValues(string(v), tr)
		}
	}
	m.infra.WithLabelValues(KindTmpfail)
	m.infra.WithLabelValues(KindLeaseExpired)
	m.reg.MustRegister(m.sessions, m.leases, m.results, m.infra,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Source != nil {
		m.reg.MustRegister(newStoreCollector(cfg))
	}
	return m
}

// Registry returns the private registry, for tests and for collectors
// added by the caller.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats. A
// scrape whose store reads fail answers 500, so it is seen as down.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.HTTPErrorOnError,
		Registry:      m.reg,
	})
}

// Session counts an agent session accepted on transport tr.
func (m *Metrics) Session(tr string) { m.sessions.WithLabelValues(transportLabel(tr)).Inc() }

// Leased counts a job leased over transport tr.
func (m *Metrics) Leased(tr string) { m.leases.WithLabelValues(transportLabel(tr)).Inc() }

// Result counts a result stored over transport tr: v is the verdict the job
// ended with, or tmpfail when the result queued it again. A tmpfail, or an
// error (the last attempt's tmpfail), also counts as an infrastructure
// failure.
func (m *Metrics) Result(v dep8.Verdict, tr string) {
	if !slices.Contains(verdicts(), v) {
		v = Unknown
	}
	m.results.WithLabelValues(string(v), transportLabel(tr)).Inc()
	if v == dep8.VerdictTmpfail || v == dep8.VerdictError {
		m.infra.WithLabelValues(KindTmpfail).Inc()
	}
}

// Expired counts n leases that expired, their jobs queued again or ended.
func (m *Metrics) Expired(n int) {
	if n > 0 {
		m.infra.WithLabelValues(KindLeaseExpired).Add(float64(n))
	}
}

func transportLabel(tr string) string {
	if slices.Contains(transports(), tr) {
		return tr
	}
	return Unknown
}
