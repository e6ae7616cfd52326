package statesink

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Script names, the label of the latency histogram.
const (
	scriptRequests  = "requests"
	scriptKeyStates = "key_states"
)

type metrics struct {
	applied       *prometheus.CounterVec
	skipped       prometheus.Counter
	ignored       prometheus.Counter
	scriptSeconds *prometheus.HistogramVec
	errors        *prometheus.CounterVec
}

// newMetrics registers the writer's metrics on reg; a nil reg leaves them unregistered.
// Writers sharing a registry (a live writer and a replay in one process) share the
// metrics instead of failing to register them twice.
func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		applied: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_valkey_events_applied_total",
			Help: "Events applied to Valkey state. A request event counts once per project its attempts touched.",
		}, []string{"type"})),
		skipped: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gca_processor_valkey_events_skipped_total",
			Help: "Request events (per project) skipped because their applied mark was already set: redelivery or replay.",
		})),
		ignored: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gca_processor_valkey_attempts_ignored_total",
			Help: "Attempts ignored because their project cannot be part of a Valkey key.",
		})),
		scriptSeconds: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gca_processor_valkey_script_seconds",
			Help:    "Latency of one pipelined round of Lua scripts (one batch).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, []string{"script"})),
		errors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_processor_valkey_errors_total",
			Help: "Failed Lua script calls and rejected key-state events.",
		}, []string{"script"})),
	}
}

// register registers c on reg, or returns the collector already registered under the
// same description. Any other registration problem (a name clash with a different
// metric) leaves c unregistered rather than panicking: metrics are not worth a crash.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
