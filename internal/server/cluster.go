package server

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/certfleet/certfleet/internal/cluster"
	"github.com/certfleet/certfleet/internal/issuance"
	"github.com/certfleet/certfleet/internal/metrics"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
)

// newCluster returns the node's leadership and wake-up bus: over PostgreSQL
// when the store is, else a node that always leads and wakes only itself.
// onWake is called when another node announces a change.
func newCluster(cfg Config, st *sqlstore.DB, engineName string, log *slog.Logger, onWake func()) (*cluster.Elector, *cluster.Bus, error) {
	metrics.RegisterStore(st)
	ccfg := cluster.Config{Holder: cfg.NodeID, Lease: cfg.LeaderLease, OnChange: metrics.LeaderChanged}
	if !strings.HasPrefix(engineName, "postgres") {
		metrics.LeaderChanged(true, 1)
		return cluster.Local(ccfg), cluster.LocalBus(), nil
	}
	el, err := cluster.New(st, log, ccfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	return el, cluster.NewBus(st, cfg.NodeID, onWake, log), nil
}

// wakeAll wakes this node's engine and, through the bus, every other node's.
// wakeOrders wakes the order driver here and, through the bus, the
// leader's where it runs.
type wakeOrders struct {
	*issuance.Driver
	bus *cluster.Bus
}

func (w wakeOrders) Wake() {
	w.Driver.Wake()
	w.bus.Notify()
}

type wakeAll struct {
	local interface{ Wake() }
	bus   *cluster.Bus
}

func (w wakeAll) Wake() {
	w.local.Wake()
	w.bus.Notify()
}
