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
	"database/sql"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// maxActions bounds the action label's values: the Action parameter comes
// from clients, so unknown ones beyond this many are counted as "other".
const maxActions = 200

var (
	actionsMu sync.Mutex
	actions   = map[string]bool{}
)

// APIRequest counts one answered API request. Safe for concurrent use.
func APIRequest(action, code string) {
	if len(action) > 64 {
		action = "other"
	}
	actionsMu.Lock()
	if !actions[action] {
		if len(actions) >= maxActions {
			action = "other"
		} else {
			actions[action] = true
		}
	}
	actionsMu.Unlock()
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

// RegisterDatabase makes the gauges read from db at each scrape (one GROUP
// BY per table, bounded by a 2 s timeout). A later call replaces db.
func RegisterDatabase(db *sql.DB) {
	dbc.mu.Lock()
	dbc.db = db
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
	db *sql.DB
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsDesc, workersDesc, lapsedDesc, backlogDesc, scrapeErrDesc} {
		ch <- d
	}
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	db := c.db
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	failed := 0.0
	byStatus := func(desc *prometheus.Desc, query string) {
		rows, err := db.QueryContext(ctx, query)
		if err != nil {
			failed = 1
			return
		}
		defer rows.Close()
		for rows.Next() {
			var status string
			var n float64
			if rows.Scan(&status, &n) == nil {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, n, status)
			}
		}
		if rows.Err() != nil {
			failed = 1
		}
	}
	one := func(desc *prometheus.Desc, query string, args ...any) {
		var n float64
		if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			failed = 1
			return
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, n)
	}
	byStatus(jobsDesc, `SELECT status, COUNT(*) FROM jobs GROUP BY status`)
	byStatus(workersDesc, `SELECT status, COUNT(*) FROM workers GROUP BY status`)
	one(lapsedDesc, `SELECT COUNT(*) FROM workers WHERE active = 1 AND lease_owner <> '' AND lease_expires_ms < `+
		strconv.FormatInt(time.Now().UnixMilli(), 10))
	one(backlogDesc, `SELECT COUNT(*) FROM notifications WHERE status = 'pending'`)
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
}
