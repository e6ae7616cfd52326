//go:build integration

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/queries"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/simulator/gemsim"
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

// TestValkeyCountersEqualRequestLogs: the quota counters the processors keep in Valkey
// equal what the analysts' quota_usage query recomputes from request_logs for the same
// minute and Pacific day, per project — including requests that failed over, whose
// refused attempts count nowhere.
func TestValkeyCountersEqualRequestLogs(t *testing.T) {
	env := e2e.Start(t, e2e.Options{})
	// Stay inside one clock minute: the minute counters expire a minute after theirs.
	if s := time.Now().Second(); s > 35 {
		time.Sleep(time.Duration(62-s) * time.Second)
	}
	start := time.Now()
	// One 503 and one bare 429 on the first project: those requests fail over, and
	// their first attempts are recorded but not counted.
	require.NoError(t, env.Sim.InjectFault(gemsim.FaultRule{Project: "e2e-p1", Method: "generateContent", Fault: gemsim.Fault{Status: 503}, Count: 1}))
	require.NoError(t, env.Sim.InjectFault(gemsim.FaultRule{Project: "e2e-p1", Method: "generateContent", Fault: gemsim.Fault{Status: 429}, Count: 1}))
	const n = 24
	for i := range n {
		body := fmt.Sprintf(`{"contents":[{"role":"user","parts":[{"text":"request %d %s"}]}]}`, i, strings.Repeat("word ", i))
		req, err := http.NewRequest(http.MethodPost, env.URL(0)+"/v1beta/models/gemini-2.5-flash:generateContent", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("x-goog-api-key", env.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	_, err := env.WaitCount("SELECT count() FROM {db}.request_logs", n, 30*time.Second)
	require.NoError(t, err)
	attempts, err := env.Count(context.Background(), "SELECT sum(length(attempts.key_hash)) FROM {db}.request_logs FINAL")
	require.NoError(t, err)
	require.Equal(t, uint64(n+2), attempts, "the 503 and the 429 each cost one extra attempt")

	type counts struct{ rpm, tpm, rpd int64 }
	fromLogs := func() map[string]counts {
		out := map[string]counts{}
		for _, w := range []string{"minute", "day"} {
			res, err := queries.Run(context.Background(), env.CH, "quota_usage", map[string]string{
				"quota_window": w, "at": start.UTC().Format("2006-01-02 15:04:05"), "model": "gemini-2.5-flash",
			})
			require.NoError(t, err)
			col := map[string]int{}
			for i, c := range res.Columns {
				col[c.Name] = i
			}
			for _, row := range res.Rows {
				p := row[col["project"]].(string)
				c := out[p]
				reqs := int64(row[col["request_count"]].(uint64))
				if w == "minute" {
					c.rpm += reqs
					c.tpm += int64(row[col["input_tokens"]].(uint64))
				} else {
					c.rpd += reqs
				}
				out[p] = c
			}
		}
		return out
	}
	keys := schemas.Keys{Prefix: env.Prefix}
	fromValkey := func() map[string]counts {
		out := map[string]counts{}
		ctx := context.Background()
		get := func(k string) int64 {
			v, err := env.VK.Do(ctx, env.VK.B().Get().Key(k).Build()).AsInt64()
			if err != nil {
				return 0
			}
			return v
		}
		for _, p := range e2e.DefaultProjects() {
			c := counts{
				rpm: get(keys.MinuteRequests(p.ID, "gemini-2.5-flash", schemas.MinuteOf(start))),
				tpm: get(keys.MinuteTokens(p.ID, "gemini-2.5-flash", schemas.MinuteOf(start))),
				rpd: get(keys.DayRequests(p.ID, "gemini-2.5-flash", schemas.PacificDay(start))),
			}
			if c != (counts{}) {
				out[p.ID] = c
			}
		}
		return out
	}
	var logs, vk map[string]counts
	require.Eventually(t, func() bool {
		logs, vk = fromLogs(), fromValkey()
		var total int64
		for _, c := range vk {
			total += c.rpd
		}
		return total == n
	}, 30*time.Second, 200*time.Millisecond, "Valkey counted every request once")
	require.Equal(t, logs, vk)
	require.GreaterOrEqual(t, len(vk), 2, "traffic was spread over the projects")
}
