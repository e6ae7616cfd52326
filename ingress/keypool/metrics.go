package keypool

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Selection results, the values of the "result" label besides the ExhaustedError
// reasons.
const (
	resultOK      = "ok"
	resultLocal   = "local"
	resultInvalid = "invalid_request"
)

type metrics struct {
	selections     *prometheus.CounterVec
	rejections     *prometheus.CounterVec
	scriptSeconds  *prometheus.HistogramVec
	batchSize      prometheus.Histogram
	degraded       prometheus.Gauge
	fallback       prometheus.Counter
	releases       *prometheus.CounterVec
	valkeyErrors   *prometheus.CounterVec
	orphansDropped prometheus.Counter
	refreshedPairs prometheus.Gauge
	configuredKeys prometheus.Gauge
	reloads        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		selections: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_ingress_keypool_selections_total",
			Help: "Key selections by result: ok (reserved in Valkey), local (fail-open without Valkey), or why no key was available.",
		}, []string{"result"}),
		rejections: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_ingress_keypool_project_rejections_total",
			Help: "Projects passed over during selection, by reason (rpm, tpm, rpd, cooldown, disabled) and by who decided (view: the cached view, valkey: the reservation script, local: fail-open limits).",
		}, []string{"reason", "by"}),
		scriptSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gca_ingress_keypool_valkey_seconds",
			Help:    "Latency of the key pool's Valkey round trips, by operation (reserve, release, refresh).",
			Buckets: []float64{25e-6, 50e-6, 75e-6, 100e-6, 150e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3},
		}, []string{"op"}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "gca_ingress_keypool_reservations_per_call",
			Help:    "Reservations made by one run of the reservation script: the requests for the same project and model that waited for the same round trip.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		degraded: f.NewGauge(prometheus.GaugeOpts{
			Name: "gca_ingress_keypool_degraded",
			Help: "1 while Valkey is unreachable and keys are selected from the local view (fail-open within local limits).",
		}),
		fallback: f.NewCounter(prometheus.CounterOpts{
			Name: "gca_ingress_keypool_fallback_selections_total",
			Help: "Leases granted from the local view without a Valkey reservation.",
		}),
		releases: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_ingress_keypool_releases_total",
			Help: "Leases released, by the attempt's failure kind (none for a success).",
		}, []string{"failure"}),
		valkeyErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_ingress_keypool_valkey_errors_total",
			Help: "Valkey calls of the key pool that failed, by operation.",
		}, []string{"op"}),
		orphansDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "gca_ingress_keypool_orphans_dropped_total",
			Help: "Reservations that could not be deleted after an uncounted attempt and did not fit the retry queue; they expire on their own after at most two minutes.",
		}),
		refreshedPairs: f.NewGauge(prometheus.GaugeOpts{
			Name: "gca_ingress_keypool_view_pairs",
			Help: "(project, model) pairs in the cached view refreshed from Valkey.",
		}),
		configuredKeys: f.NewGauge(prometheus.GaugeOpts{
			Name: "gca_ingress_keypool_keys",
			Help: "Keys in the configured pool.",
		}),
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "gca_ingress_keypool_reloads_total",
			Help: "Reloads of the key pool's config, by result (ok, invalid).",
		}, []string{"result"}),
	}
}
