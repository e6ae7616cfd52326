package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/health"
	"github.com/geminicodeapi/gca/processors/chsink"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Readiness fails, naming the dependency, when ClickHouse or Kafka does not answer;
// /metrics serves the processors' own registry.
func TestOpsEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	chsink.NewMetrics(reg)
	probe := prometheus.NewCounter(prometheus.CounterOpts{Name: "gca_processor_probe_total", Help: "A test counter."})
	reg.MustRegister(probe)
	probe.Add(3)
	checks := &health.Checks{}
	down := errors.New("dial tcp 127.0.0.1:9000: connection refused")
	var chErr error
	checks.Add("clickhouse", func(context.Context) error { return chErr })
	checks.Add("kafka", func(context.Context) error { return nil })
	srv, addr, err := startOps("127.0.0.1:0", reg, checks, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })

	code, _ := get(t, "http://"+addr+"/health/live")
	require.Equal(t, http.StatusOK, code)
	code, body := get(t, "http://"+addr+"/health/ready")
	require.Equal(t, http.StatusOK, code, body)

	chErr = down
	code, body = get(t, "http://"+addr+"/health/ready")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, `"clickhouse":"dial tcp 127.0.0.1:9000: connection refused"`)
	require.Contains(t, body, `"kafka":"ok"`)

	code, body = get(t, "http://"+addr+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "gca_processor_probe_total 3")
	require.NotContains(t, body, "go_goroutines", "the process's own registry, not the global one")
}
