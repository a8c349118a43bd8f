package search

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the index's Prometheus collectors. They are always counted;
// they are exported only when Options.Registerer is set.
type metrics struct {
	queue          prometheus.Gauge
	applied        *prometheus.CounterVec
	dropped        prometheus.Counter
	batchErrors    prometheus.Counter
	repairProgress prometheus.Gauge
	repairChecked  prometheus.Counter
	repairFixed    *prometheus.CounterVec
	querySeconds   prometheus.Histogram
	partial        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_search_queue_length",
			Help: "Index operations waiting for the indexer.",
		}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_search_ops_applied_total",
			Help: "Index operations written to the index, by kind (index, delete).",
		}, []string{"op"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_search_ops_dropped_total",
			Help: "Index operations dropped because the queue was full; repaired on next start.",
		}),
		batchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_search_batch_errors_total",
			Help: "Index batches that failed to apply.",
		}),
		repairProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hearth_search_repair_progress_ratio",
			Help: "Progress of the running repair or rebuild, 0 to 1; 1 when none runs.",
		}),
		repairChecked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_search_repair_checked_total",
			Help: "Stored messages compared with the index by repair.",
		}),
		repairFixed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_search_repair_fixed_total",
			Help: "Index documents fixed by repair, by kind (missing, stale, extra).",
		}, []string{"kind"}),
		querySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hearth_search_query_seconds",
			Help:    "Search latency.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		partial: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hearth_search_partial_results_total",
			Help: "Searches cut off by their deadline.",
		}),
	}
	m.repairProgress.Set(1)
	if reg == nil {
		return m, nil
	}
	var err error
	m.queue, err = register(reg, m.queue, err)
	m.applied, err = register(reg, m.applied, err)
	m.dropped, err = register(reg, m.dropped, err)
	m.batchErrors, err = register(reg, m.batchErrors, err)
	m.repairProgress, err = register(reg, m.repairProgress, err)
	m.repairChecked, err = register(reg, m.repairChecked, err)
	m.repairFixed, err = register(reg, m.repairFixed, err)
	m.querySeconds, err = register(reg, m.querySeconds, err)
	m.partial, err = register(reg, m.partial, err)
	if err != nil {
		return nil, fmt.Errorf("search: metrics: %w", err)
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same name (several indexes in one process share their metrics).
func register[T prometheus.Collector](reg prometheus.Registerer, c T, prev error) (T, error) {
	if prev != nil {
		return c, prev
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}
