// Package metrics defines certfleet's Prometheus metrics and serves them at
// /metrics: API requests by action and code, deployment durations per
// product, leadership changes, and, read from the database at scrape time,
// jobs and workers by status, lapsed worker leases and the notification
// backlog.
//
// Other packages record with one call each (APIRequest, DeployTimer,
// LeaderChanged); it is not a tracing or logging facility.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certfleet/certfleet/internal/store"
)

// Registry holds every certfleet metric (and the Go runtime's).
var Registry = prometheus.NewRegistry()

var (
	apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certfleet_api_requests_total",
		Help: "API requests answered, by Action and result code (OK for success).",
	}, []string{"action", "code"})
	deployDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "certfleet_deploy_attempt_seconds",
		Help:    "Duration of one deployment attempt (deploy, verify or rollback), by CloudProduct.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12), // 5 ms … ~300 s
	}, []string{"product"})
	leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "certfleet_leader_changes_total",
		Help: "Times this node gained or lost leadership of the periodic duties.",
	})
	leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "certfleet_leader",
		Help: "1 while this node leads the periodic duties, else 0.",
	})
)

func init() {
	Registry.MustRegister(apiRequests, deployDuration, leaderChanges, leader,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// The action label takes only the names of actions the API serves (given by
// KnownActions): the Action parameter comes from clients, so any other value
// is counted as "unknown" and cannot grow the label set.
var (
	actionsMu sync.RWMutex
	actions   = map[string]bool{}
)

// KnownActions adds names to the values the action label may take. The API
// calls it with its routing tables.
func KnownActions(names ...string) {
	actionsMu.Lock()
	defer actionsMu.Unlock()
	for _, n := range names {
		actions[n] = true
	}
}

// APIRequest counts one answered API request; an action not given to
// KnownActions is counted as "unknown". Safe for concurrent use.
func APIRequest(action, code string) {
	actionsMu.RLock()
	known := actions[action]
	actionsMu.RUnlock()
	if !known {
		action = "unknown"
	}
	apiRequests.WithLabelValues(action, code).Inc()
}

// DeployTimer starts timing one deployment attempt of product; call the
// returned function when the attempt ends.
func DeployTimer(product string) func() {
	start := time.Now()
	return func() { deployDuration.WithLabelValues(product).Observe(time.Since(start).Seconds()) }
}

// LeaderChanged records that this node gained (true) or lost leadership.
func LeaderChanged(isLeader bool, _ int64) {
	leaderChanges.Inc()
	if isLeader {
		leader.Set(1)
	} else {
		leader.Set(0)
	}
}

// Handler serves the registry in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{})
}

// Store is what the metrics read at scrape time (store.MetricsStore).
type Store interface {
	MetricsSnapshot(ctx context.Context, p store.MetricsSnapshotParams) (store.MetricsSnapshot, error)
}

// RegisterStore makes the gauges read from st at each scrape (one
// MetricsSnapshot, bounded by a 2 s timeout). A later call replaces st.
func RegisterStore(st Store) {
	dbc.mu.Lock()
	dbc.st = st
	dbc.mu.Unlock()
	registerDB.Do(func() { Registry.MustRegister(dbc) })
}

var (
	dbc        = &dbCollector{}
	registerDB sync.Once
)

var (
	jobsDesc      = prometheus.NewDesc("certfleet_jobs", "Deployment jobs by status (all nodes, from the database).", []string{"status"}, nil)
	workersDesc   = prometheus.NewDesc("certfleet_workers", "Workers by status (all nodes, from the database).", []string{"status"}, nil)
	lapsedDesc    = prometheus.NewDesc("certfleet_worker_leases_lapsed", "Workers whose holder's lease lapsed without a release (a node died or froze): rescues waiting.", nil, nil)
	backlogDesc   = prometheus.NewDesc("certfleet_notifications_pending", "Notification messages not yet delivered (pending rows).", nil, nil)
	scrapeErrDesc = prometheus.NewDesc("certfleet_metrics_database_error", "1 when the last scrape could not read the database.", nil, nil)
)

type dbCollector struct {
	mu sync.Mutex
	st Store
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsDesc, workersDesc, lapsedDesc, backlogDesc, scrapeErrDesc} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	st := c.st
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := st.MetricsSnapshot(ctx, store.MetricsSnapshotParams{Now: time.Now()})
	if err != nil {
		ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, 1)
		return
	}
	for status, n := range m.JobsByStatus {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), status)
	}
	for status, n := range m.WorkersByStatus {
		ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(n), status)
	}
	ch <- prometheus.MustNewConstMetric(lapsedDesc, prometheus.GaugeValue, float64(m.WorkerLeasesLapsed))
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(m.NotificationsPending))
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, 0)
}
