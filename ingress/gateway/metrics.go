package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/geminicodeapi/gca/schemas"
)

// metrics of the gateway's request handling, named gca_ingress_*.
type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	ttfb      *prometheus.HistogramVec
	tokens    *prometheus.CounterVec
	panics    prometheus.Counter
	attempts  *prometheus.CounterVec
	streamCut *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	return &metrics{
		requests:  f.NewCounterVec(prometheus.CounterOpts{Name: "gca_ingress_requests_total", Help: "Client requests by client type, endpoint and status."}, []string{"client_type", "endpoint", "status"}),
		latency:   f.NewHistogramVec(prometheus.HistogramOpts{Name: "gca_ingress_request_seconds", Help: "Request duration.", Buckets: buckets}, []string{"client_type", "stream"}),
		ttfb:      f.NewHistogramVec(prometheus.HistogramOpts{Name: "gca_ingress_ttfb_seconds", Help: "Time to first streamed byte.", Buckets: buckets}, []string{"client_type"}),
		tokens:    f.NewCounterVec(prometheus.CounterOpts{Name: "gca_ingress_tokens_total", Help: "Tokens by model and kind (input, output, thoughts, cached)."}, []string{"model", "kind"}),
		panics:    f.NewCounter(prometheus.CounterOpts{Name: "gca_ingress_panics_total", Help: "Handler panics recovered."}),
		attempts:  f.NewCounterVec(prometheus.CounterOpts{Name: "gca_ingress_upstream_attempts_total", Help: "Upstream attempts by outcome."}, []string{"outcome"}),
		streamCut: f.NewCounterVec(prometheus.CounterOpts{Name: "gca_ingress_stream_interrupted_total", Help: "Streams ended early, by cause."}, []string{"cause"}),
	}
}

func (m *metrics) observe(e *schemas.RequestEvent) {
	m.requests.WithLabelValues(e.ClientType, e.Endpoint, strconv.Itoa(e.Status)).Inc()
	m.latency.WithLabelValues(e.ClientType, strconv.FormatBool(e.Stream)).Observe(float64(e.LatencyMs) / 1000)
	if e.TTFBMs > 0 {
		m.ttfb.WithLabelValues(e.ClientType).Observe(float64(e.TTFBMs) / 1000)
	}
	if e.Usage.Total > 0 {
		m.tokens.WithLabelValues(e.Model, "input").Add(float64(e.Usage.Input()))
		m.tokens.WithLabelValues(e.Model, "output").Add(float64(e.Usage.Output()))
		m.tokens.WithLabelValues(e.Model, "thoughts").Add(float64(e.Usage.Thoughts))
		m.tokens.WithLabelValues(e.Model, "cached").Add(float64(e.Usage.Cached))
	}
	for _, a := range e.Attempts {
		o := a.Failure
		if o == "" {
			o = "ok"
		}
		m.attempts.WithLabelValues(o).Inc()
	}
	if e.Interrupted != "" {
		m.streamCut.WithLabelValues(e.Interrupted).Inc()
	}
}
