package chsink

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the ClickHouse sink, by table.
type Metrics struct {
	insertSeconds *prometheus.HistogramVec
	lookupSeconds *prometheus.HistogramVec
	rows          *prometheus.CounterVec
	duplicates    *prometheus.CounterVec
	lookedUp      *prometheus.CounterVec
}

// NewMetrics registers the sink metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		insertSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gca_processor_insert_seconds",
			Help:    "Time to insert one batch into a ClickHouse table (materialized views included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1ms .. 8s
		}, []string{"table"}),
		lookupSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gca_processor_dedupe_lookup_seconds",
			Help:    "Time to look up which events of a batch a table already holds.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"table"}),
		rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_rows_inserted_total",
			Help: "Rows inserted into ClickHouse tables.",
		}, []string{"table"}),
		duplicates: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_duplicates_dropped_total",
			Help: "Events dropped before insert because they were already stored (where=stored) or repeated within the batch (where=batch).",
		}, []string{"table", "where"}),
		lookedUp: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_dedupe_events_total",
			Help: "Events of batches by whether the dedupe lookup checked them: why=unverified (their partition's earlier copies are not ruled out yet), maybe_duplicate (the producer marked them), unknown (no origin: a replay), or why=skipped (produced once and read past anything this group delivered before).",
		}, []string{"table", "why"}),
	}
}
