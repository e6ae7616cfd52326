//go:build faults

package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
)

// kafkaOutage is how long the broker stays down under load.
const kafkaOutage = 30 * time.Second

func instanceOf(env *e2e.Env, i int) string { return fmt.Sprintf("%s-ingress-%d", env.Database, i) }

// TestFaultKafkaOutage stops the broker for 30 s under load. Four ingresses share the
// outage, each for one scenario:
//
//   - ingress 0 (defaults): keeps answering; its events go to the spool and drain in
//     order when the broker returns; ClickHouse then has exactly one row per request
//     served.
//   - ingress 1 (1 MiB spool, policy reject): once the spool is full it refuses new
//     requests with 503 in the client's protocol, counts them and logs it; every request
//     it did serve is recorded.
//   - ingress 2 (1 MiB spool, policy drop): keeps serving and counts each event it
//     drops; the loss equals the count.
//   - ingress 3 (defaults): SIGKILLed with events in its spool, restarted while the
//     broker is still away; nothing it acknowledged is lost.
func TestFaultKafkaOutage(t *testing.T) {
	st := localStack(t)
	env := e2e.Start(t, unlimited(e2e.Options{}))
	in0 := env.Ingress[0]
	inReject := env.AddIngress("GCA_SPOOL_MAX_BYTES=1048576")
	inDrop := env.AddIngress("GCA_SPOOL_MAX_BYTES=1048576", "GCA_SPOOL_POLICY=drop")
	inKill := env.AddIngress()
	base := func(p *e2e.Proc) string { return "http://" + p.Addr }

	main := startLoad(base(in0), env.Token, 3, 5*time.Millisecond)
	killLoad := startLoad(base(inKill), env.Token, 2, 5*time.Millisecond)
	require.True(t, main.waitServed(30, 20*time.Second), "load before the outage")
	require.True(t, killLoad.waitServed(20, 20*time.Second))
	waitProcessing(t, env, 50)

	_, servedBefore := main.count()
	st.stop(t, "kafka")
	down := time.Now()
	t.Logf("kafka stopped at %s", down.Format(time.TimeOnly))

	// Readiness stays 200 and says why the ingress is degraded.
	resp, err := http.Get(base(in0) + "/health/ready")
	require.NoError(t, err)
	ready, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(ready))
	require.Contains(t, string(ready), `"degraded":true`)
	require.Contains(t, string(ready), "events are spooled")

	// Spool full, policy reject: fill the 1 MiB spool, then expect 503s.
	rejectLoad := startLoad(base(inReject), env.Token, 4, 0)
	dropLoad := startLoad(base(inDrop), env.Token, 4, 0)
	sawReject := waitFor(kafkaOutage-5*time.Second, func() bool {
		seen := map[string]int{}
		for _, r := range rejectLoad.snapshot() {
			if unavailable(r) {
				seen[r.Proto]++
			}
		}
		return seen[pOpenAI] >= 5 && seen[pClaude] >= 5 && seen[pGemini] >= 5
	})
	rejectResults := rejectLoad.stop()
	sawDrop := waitFor(10*time.Second, func() bool { return metric(inDrop.Addr, "gca_ingress_events_dropped_total") >= 50 })
	dropResults := dropLoad.stop()
	require.True(t, sawReject, "policy reject: not enough 503s after filling the spool: %v", statusCounts(rejectResults))
	require.True(t, sawDrop, "policy drop: nothing dropped: %v", statusCounts(dropResults))
	rejectMetrics, _ := scrape(inReject.Addr)
	dropMetrics, _ := scrape(inDrop.Addr)

	// SIGKILL an ingress whose spool holds events, restart it with the broker away.
	require.True(t, waitFor(10*time.Second, func() bool { return metric(inKill.Addr, "gca_ingress_spool_bytes") > 0 }))
	spooledAtKill := metric(inKill.Addr, "gca_ingress_spool_bytes")
	inKill.Kill()
	t.Logf("ingress-3 killed with %.0f bytes spooled", spooledAtKill)
	require.NoError(t, inKill.Start(30*time.Second))
	spooledAfter := metric(inKill.Addr, "gca_ingress_spool_bytes")
	require.GreaterOrEqual(t, spooledAfter, spooledAtKill, "the restarted ingress recovers its spool")

	time.Sleep(time.Until(down.Add(kafkaOutage)))
	_, servedDuring := main.count()
	servedDuring -= servedBefore
	st.start(t, "kafka")
	outage := time.Since(down)
	t.Logf("kafka back after %s", outage.Round(time.Second))
	require.True(t, main.waitServed(30, 20*time.Second), "load after the outage")
	mainResults := main.stop()
	killResults := killLoad.stop()

	// After the drain, the rejecting ingress serves again.
	require.True(t, waitFor(60*time.Second, func() bool { return metric(inReject.Addr, "gca_ingress_spool_bytes") == 0 }))
	hc := newHTTPClient(10 * time.Second)
	for _, p := range protocols {
		r := send(context.Background(), hc, base(inReject), env.Token, call{Proto: p})
		require.True(t, r.served(), "%s after the drain: %d %s", p, r.Status, r.Body)
		rejectResults = append(rejectResults, r)
	}

	// ingress 0: every request answered, each served one recorded once, in order.
	a := settle(t, env, scope{Instance: instanceOf(env, 0)}, mainResults, in0)
	failed := len(mainResults) - countServed(mainResults)
	require.Zero(t, failed, "requests not served during the outage: %v", statusCounts(mainResults))
	require.Zero(t, a.Lost, "served but not recorded: %v", first(a.Missing, 5))
	require.Zero(t, a.Duplicated)
	require.Empty(t, a.OutOfOrder, "events of a sequential client out of order")
	a.Scenario = "kafka down 30s under load"
	a.Note = fmt.Sprintf("broker unreachable %s (stopped %s + restart); %d served meanwhile, every request 2xx; drained in order; %d records shipped twice, deduped",
		outage.Round(time.Second), kafkaOutage, servedDuring, a.KafkaDuplicates)
	report(t, a.row)

	// ingress 1: spool full, policy reject.
	b := settle(t, env, scope{Instance: instanceOf(env, 1)}, rejectResults, inReject)
	checkRejections(t, rejectResults)
	require.Positive(t, metricValue(rejectMetrics, "gca_ingress_spool_full_rejections_total"))
	require.Contains(t, inReject.Output(), "event spool full")
	require.Zero(t, b.Lost, "served but not recorded: %v", first(b.Missing, 5))
	require.Zero(t, b.Duplicated)
	b.Scenario = "spool full, policy reject (1 MiB)"
	b.Note = fmt.Sprintf("%d refused (503; Anthropic 529 overloaded_error) in the client's protocol + Retry-After; gca_ingress_spool_full_rejections_total=%.0f; log line 'event spool full'; serves again after the drain",
		statusCounts(rejectResults)["503"]+statusCounts(rejectResults)["529"], metricValue(rejectMetrics, "gca_ingress_spool_full_rejections_total"))
	report(t, b.row)

	// ingress 2: spool full, policy drop: the loss is exactly what was counted.
	c := settle(t, env, scope{Instance: instanceOf(env, 2)}, dropResults, inDrop)
	dropped := int(metricValue(dropMetrics, "gca_ingress_events_dropped_total"))
	require.Equal(t, countServed(dropResults), len(dropResults), "policy drop keeps serving: %v", statusCounts(dropResults))
	require.Equal(t, dropped, c.Lost, "lost events = gca_ingress_events_dropped_total")
	require.Zero(t, c.Duplicated)
	require.Contains(t, inDrop.Output(), "event spool full")
	c.Scenario = "spool full, policy drop (1 MiB)"
	c.AllowedLoss = true
	c.Note = fmt.Sprintf("all %d answered 2xx; gca_ingress_events_dropped_total=%d = lost", len(dropResults), dropped)
	report(t, c.row)

	// ingress 3: SIGKILL with a full spool, restart during the outage.
	d := settle(t, env, scope{Instance: instanceOf(env, 3)}, killResults, inKill)
	require.Zero(t, d.Lost, "acknowledged but lost: %v", first(d.Missing, 5))
	require.Zero(t, d.Duplicated)
	d.Scenario = "ingress SIGKILL with events spooled (broker down)"
	d.Note = fmt.Sprintf("killed with %.0f bytes spooled, recovered %.0f on restart; %d requests cut in flight (never acknowledged); 0 acknowledged lost",
		spooledAtKill, spooledAfter, len(killResults)-countServed(killResults))
	report(t, d.row)

	// The whole database: system_stats agrees with request_logs.
	settle(t, env, scope{Stats: true}, nil)
	noPanic(t, env.Ingress...)
	noPanic(t, env.Processors)
}

// unavailable reports a "try again later" refusal in the client's protocol: 503, or
// Anthropic's 529 overloaded_error.
func unavailable(r result) bool {
	if r.Proto == pClaude {
		return r.Status == 529
	}
	return r.Status == http.StatusServiceUnavailable
}

// checkRejections checks the refusals of a full spool: the client's protocol shape and
// a Retry-After.
func checkRejections(t *testing.T, rs []result) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rs {
		if !unavailable(r) {
			continue
		}
		_, err := errorShape(r.Proto, r.Body)
		require.NoError(t, err, "%s 503", r.Proto)
		require.NotEmpty(t, r.Header.Get("Retry-After"), "%s 503 without Retry-After", r.Proto)
		seen[r.Proto] = true
	}
	for _, p := range protocols {
		require.True(t, seen[p], "no 503 seen in the %s protocol", p)
	}
}

func first(s []string, n int) []string { return s[:min(len(s), n)] }
