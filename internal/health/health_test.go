package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReady(t *testing.T) {
	cases := []struct {
		name       string
		setup      func(c *Checks)
		wantStatus int
		wantResult Result
	}{
		{
			name:       "no checks is ready",
			setup:      func(*Checks) {},
			wantStatus: 200,
			wantResult: Result{Ready: true, Checks: map[string]string{}},
		},
		{
			name: "a failing dependency makes it unready and is named",
			setup: func(c *Checks) {
				c.Add("kafka", func(context.Context) error { return nil })
				c.Add("clickhouse", func(context.Context) error { return errors.New("dial tcp: refused") })
			},
			wantStatus: 503,
			wantResult: Result{Ready: false, Checks: map[string]string{"kafka": "ok", "clickhouse": "dial tcp: refused"}},
		},
		{
			// The ingress serves without Valkey (fail-open within local limits), so a
			// Valkey outage degrades it but leaves it ready.
			name: "a degraded dependency leaves it ready",
			setup: func(c *Checks) {
				c.AddDegraded("valkey", func(context.Context) error { return errors.New("timeout") })
			},
			wantStatus: 200,
			wantResult: Result{Ready: true, Degraded: true, Checks: map[string]string{"valkey": "timeout"}},
		},
		{
			name: "a hanging check is cut off by the timeout",
			setup: func(c *Checks) {
				c.Add("slow", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
			},
			wantStatus: 503,
			wantResult: Result{Ready: false, Checks: map[string]string{"slow": context.DeadlineExceeded.Error()}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Checks
			tc.setup(&c)
			rec := httptest.NewRecorder()
			c.ReadyHandler(50*time.Millisecond).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health/ready", nil))
			require.Equal(t, tc.wantStatus, rec.Code)
			var got Result
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			require.Equal(t, tc.wantResult, got)
		})
	}
}
