package consume

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the consumer loops. One Metrics serves every loop of a process; each loop
// labels its series with its consumer group.
type Metrics struct {
	records      *prometheus.CounterVec
	batchEvents  *prometheus.HistogramVec
	batchSeconds *prometheus.HistogramVec
	deadLetters  *prometheus.CounterVec
	sinkErrors   *prometheus.CounterVec
	commitErrors *prometheus.CounterVec
	fetchErrors  *prometheus.CounterVec
	rebalances   *prometheus.CounterVec
	lag          *prometheus.GaugeVec
}

// NewMetrics registers the loop metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		records: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_records_total",
			Help: "Kafka records fetched, by consumer group and topic.",
		}, []string{"group", "topic"}),
		batchEvents: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gca_processor_batch_events",
			Help:    "Records per batch handed to the sink.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9), // 1 .. 65536
		}, []string{"group"}),
		batchSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gca_processor_batch_write_seconds",
			Help:    "Time to write a batch (dead letters, sink, retries) and commit it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1ms .. 32s
		}, []string{"group"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_dead_letters_total",
			Help: "Records sent to the dead-letter topic, by source topic and reason class (malformed, invalid, unknown_type).",
		}, []string{"group", "topic", "reason"}),
		sinkErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_sink_errors_total",
			Help: "Failed attempts to write a batch (the batch is kept and retried).",
		}, []string{"group"}),
		commitErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_commit_errors_total",
			Help: "Offset commits that failed after the batch was written (its records will be delivered again and deduplicated).",
		}, []string{"group"}),
		fetchErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_fetch_errors_total",
			Help: "Errors fetching from Kafka or joining the consumer group.",
		}, []string{"group"}),
		rebalances: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_rebalances_total",
			Help: "Consumer group generations joined (each rebalance starts one).",
		}, []string{"group"}),
		lag: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gca_processor_consumer_lag_records",
			Help: "Records between the last committed position and the partition's high watermark at the last fetch.",
		}, []string{"group", "topic", "partition"}),
	}
}
