//go:build faults

package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

const (
	valkeyOutage = 15 * time.Second
	// limitedModel has a small RPM in the simulator and in the gateway's config, to see
	// the local limits hold while Valkey is away.
	limitedModel = "gemini-2.5-pro"
	limitedRPM   = 5
)

// TestFaultValkeyOutage stops Valkey for 15 s under load, across a minute boundary.
// The ingress keeps serving from its local view (fail-open within local limits), says
// so in /health/ready (still 200) and gca_ingress_keypool_degraded; when Valkey is back
// it selects through Valkey again, and the processors' state consumer, which could not
// write meanwhile, catches up: the counters of the current minute equal what
// ClickHouse recorded.
func TestFaultValkeyOutage(t *testing.T) {
	st := localStack(t)
	opts := unlimited(e2e.Options{})
	prev := opts.Sim
	opts.Sim = func(c *gemsim.Config) {
		prev(c)
		c.Limits[limitedModel] = gemsim.Limits{RPM: limitedRPM}
	}
	opts.Limits[gemsim.TierOne][limitedModel] = e2e.Limits{RPM: limitedRPM}
	env := e2e.Start(t, opts)
	in := env.Ingress[0]
	base := "http://" + in.Addr
	l := startLoad(base, env.Token, 2, 10*time.Millisecond)
	require.True(t, l.waitServed(50, 30*time.Second))
	waitProcessing(t, env, 20)

	// Stop late in a minute, so the next minute's counters are made of events the
	// state consumer applies after Valkey's return.
	if s := time.Now().Second(); s < 45 {
		time.Sleep(time.Duration(45-s) * time.Second)
	} else if s > 52 {
		time.Sleep(time.Duration(60-s+45) * time.Second)
	}
	localBefore := metric(in.Addr, "gca_ingress_keypool_selections_total", `result="local"`)
	st.stop(t, "valkey")
	down := time.Now()
	require.True(t, waitFor(5*time.Second, func() bool { return metric(in.Addr, "gca_ingress_keypool_degraded") == 1 }),
		"gca_ingress_keypool_degraded did not turn 1")
	resp, err := http.Get(base + "/health/ready")
	require.NoError(t, err)
	ready, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "readiness while Valkey is down: %s", ready)
	require.Contains(t, string(ready), `"degraded":true`)
	require.Contains(t, string(ready), "fail-open within local limits")

	// Local limits: 3 projects × 5 RPM, so at most 15 per minute (30 across a minute
	// boundary) of 40 quick calls; the rest are refused by the gateway, never by the
	// upstream.
	hc := newHTTPClient(10 * time.Second)
	limited := map[int]int{}
	for i := range 40 {
		r := send(context.Background(), hc, base, env.Token, call{Proto: protocols[i%3], Model: limitedModel})
		limited[r.Status]++
	}
	sim429 := int64(0)
	for _, p := range env.Sim.Stats().Projects {
		sim429 += p.Models[limitedModel].Rejected429
	}
	require.Zero(t, sim429, "the upstream refused calls: the gateway admitted beyond its local limits (%v)", limited)
	require.GreaterOrEqual(t, limited[http.StatusTooManyRequests], 10, "the gateway did not hold the local limit: %v", limited)
	require.LessOrEqual(t, limited[http.StatusOK], 30, "%v", limited)
	time.Sleep(time.Until(down.Add(valkeyOutage)))
	localDuring := metric(in.Addr, "gca_ingress_keypool_selections_total", `result="local"`) - localBefore
	require.Positive(t, localDuring, "selections from the local view")
	st.start(t, "valkey")
	back := time.Now()
	outage := back.Sub(down)
	require.True(t, waitFor(10*time.Second, func() bool { return metric(in.Addr, "gca_ingress_keypool_degraded") == 0 }),
		"still degraded after Valkey returned")
	okBefore := metric(in.Addr, "gca_ingress_keypool_selections_total", `result="ok"`)
	require.True(t, waitFor(10*time.Second, func() bool {
		return metric(in.Addr, "gca_ingress_keypool_selections_total", `result="ok"`) > okBefore+20
	}), "selections do not go through Valkey again")
	require.True(t, l.waitServed(50, 20*time.Second))
	results := l.stop()
	failed := 0
	for _, r := range results {
		if !r.served() {
			failed++
		}
	}
	require.Zero(t, failed, "the load was not served throughout: %v", statusCounts(results))

	a := settle(t, env, scope{Stats: true}, results, in)
	require.Zero(t, a.Lost, "served but not recorded: %v", first(a.Missing, 5))
	require.Zero(t, a.Duplicated)

	// The state consumer caught up: its offsets reach the end of the topic, and the RPM
	// counters of the minutes that began after Valkey went down equal what ClickHouse
	// counted for them.
	require.True(t, waitFor(60*time.Second, func() bool { return groupLag(t, env, env.Database+"-vk") == 0 }),
		"the Valkey state consumer did not catch up")
	want := countedPerMinute(t, env, model)
	firstWhole := schemas.MinuteOf(down) + 1
	checked, lostBefore := 0, int64(0)
	for k, n := range want {
		got := valkeyInt(t, env, schemas.Keys{Prefix: env.Prefix}.MinuteRequests(k.project, model, k.minute))
		if k.minute >= firstWhole {
			require.Equal(t, n, got, "rpm counter of %s minute %d", k.project, k.minute)
			checked++
		} else if k.minute >= schemas.MinuteOf(time.Now())-1 {
			// The restarted Valkey (no persistence here) lost what was applied before
			// the outage; only a replay would bring it back.
			lostBefore += n - got
		}
	}
	require.Positive(t, checked, "no minute after the outage to check")

	// What the restarted Valkey forgot, a replay in place rebuilds from the topics:
	// every counter still alive equals ClickHouse again, the outage's minute included.
	out, err := env.RunProcessors(3*time.Minute, "replay", "-target", "valkey", "-into", "inplace", "-from", "beginning")
	require.NoError(t, err, out)
	restored := 0
	now := schemas.MinuteOf(time.Now())
	for k, n := range countedPerMinute(t, env, model) {
		if k.minute < now-1 {
			continue // expired by now, live or rebuilt
		}
		got := valkeyInt(t, env, schemas.Keys{Prefix: env.Prefix}.MinuteRequests(k.project, model, k.minute))
		require.Equal(t, n, got, "rpm counter of %s minute %d after the replay", k.project, k.minute)
		restored++
	}
	noPanic(t, in, env.Processors)
	a.Scenario = "Valkey down 15s under load"
	a.Note = fmt.Sprintf("down %s; every request 2xx; /health/ready 200 degraded; gca_ingress_keypool_degraded=1; %.0f local selections; limited model: %v (sim 429s: 0); selection via Valkey again; state consumer caught up, %d (project, minute) RPM counters after the outage = ClickHouse; %d counts applied before the outage lost with Valkey's memory (no persistence here), rebuilt by processors replay: %d live counters = ClickHouse",
		outage.Round(time.Second), localDuring, limited, checked, lostBefore, restored)
	report(t, a.row)
}

type projectMinute struct {
	project string
	minute  int64
}

// countedPerMinute counts the attempts of model that consumed quota, per project and
// minute, as ClickHouse stored them.
func countedPerMinute(t *testing.T, env *e2e.Env, m string) map[projectMinute]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := env.CH.Query(ctx, fmt.Sprintf(`SELECT p, toInt64(intDiv(toUInt32(ts), 60)) AS minute, toInt64(count())
		FROM %s.request_logs ARRAY JOIN attempts.project AS p, attempts.ts AS ts, attempts.counted AS c
		WHERE c = 1 AND model = '%s' GROUP BY p, minute`, env.Database, m))
	require.NoError(t, err)
	defer rows.Close()
	out := map[projectMinute]int64{}
	for rows.Next() {
		var k projectMinute
		var n int64
		require.NoError(t, rows.Scan(&k.project, &k.minute, &n))
		out[k] = n
	}
	return out
}

func valkeyInt(t *testing.T, env *e2e.Env, key string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := env.VK.Do(ctx, env.VK.B().Get().Key(key).Build()).ToString()
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// groupLag is how many records of the requests topic the group has not committed.
func groupLag(t *testing.T, env *e2e.Env, group string) int64 {
	t.Helper()
	offs, hw := committedOf(t, env, group)
	var done int64
	for _, o := range offs {
		done += max(o, 0)
	}
	return hw - done
}
