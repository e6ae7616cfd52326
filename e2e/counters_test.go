//go:build integration

package e2e

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
)

// TestCountersSettleReservations: requests through the ingress end up counted in the
// processors' Valkey counters of the projects that served them, and the ingress's
// reservations are gone once counted — the state the next selection reads.
func TestCountersSettleReservations(t *testing.T) {
	env := e2e.Start(t, e2e.Options{})
	const n = 12
	start := time.Now()
	for range n {
		req, err := http.NewRequest(http.MethodPost, env.URL(0)+"/v1beta/models/gemini-2.5-flash:generateContent",
			bytes.NewReader([]byte(`{"contents":[{"role":"user","parts":[{"text":"count me"}]}]}`)))
		require.NoError(t, err)
		req.Header.Set("x-goog-api-key", env.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	_, err := env.WaitCount("SELECT count() FROM {db}.request_logs", n, 30*time.Second)
	require.NoError(t, err)

	keys := schemas.Keys{Prefix: env.Prefix}
	ctx := context.Background()
	require.Eventually(t, func() bool {
		var day, pending int64
		for _, p := range e2e.DefaultProjects() {
			v, err := env.VK.Do(ctx, env.VK.B().Get().Key(keys.DayRequests(p.ID, "gemini-2.5-flash", schemas.PacificDay(start))).Build()).AsInt64()
			if err == nil {
				day += v
			}
			l, _ := env.VK.Do(ctx, env.VK.B().Hlen().Key(keys.Pending(p.ID, "gemini-2.5-flash")).Build()).AsInt64()
			pending += l
		}
		return day == n && pending == 0
	}, 30*time.Second, 100*time.Millisecond, "day counters sum to %d and no reservation is left", n)
}
