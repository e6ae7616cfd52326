//go:build faults

package faults

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// upstreamCase is one way the upstream misbehaves, injected into the simulator for the
// next Count calls, and what the client and the request's row must show.
type upstreamCase struct {
	name   string
	fault  gemsim.Fault
	count  int
	stream bool
	// What the client gets: served (a complete answer) or an error status per protocol
	// (Anthropic's overloaded is 529).
	served bool
	status map[string]int
	// The row: number of attempts, the first attempt's failure, error_type, interrupted.
	attempts    int
	failure     string
	errorType   string
	interrupted string
}

// manyProjects spreads the injected failures over 30 keys, so no key's circuit (3
// failures in 30 s) opens and changes which attempts the cases see.
func manyProjects() []gemsim.ProjectConfig {
	var ps []gemsim.ProjectConfig
	for p := 1; p <= 10; p++ {
		pc := gemsim.ProjectConfig{ID: fmt.Sprintf("up-p%d", p), Tier: gemsim.TierOne}
		for k := 1; k <= 3; k++ {
			pc.Keys = append(pc.Keys, fmt.Sprintf("AIzaSyUpstream-p%02d-k%d-%s", p, k, strings.Repeat("u", 10)))
		}
		ps = append(ps, pc)
	}
	return ps
}

func cut(n int) *int { return &n }

// TestFaultUpstream makes the simulated Gemini API misbehave in each way the issue
// names — timeouts, connection resets, a stream cut halfway, malformed JSON, a 200 with
// an error body — once (the gateway fails over to another key and serves) and on every
// attempt (the client gets its protocol's error), in the three client protocols, and
// checks each request's row: attempts, first failure, error_type, interrupted.
func TestFaultUpstream(t *testing.T) {
	env := e2e.Start(t, unlimited(e2e.Options{
		Projects: manyProjects(),
		// Streams of 6 chunks, so a cut after 2 is halfway.
		Sim: func(c *gemsim.Config) { c.StreamChunks = 6 },
		IngressEnv: []string{
			"GCA_UPSTREAM_ATTEMPT_TIMEOUT=1s", "GCA_UPSTREAM_FIRST_EVENT_TIMEOUT=1s",
			"GCA_UPSTREAM_DEADLINE=6s", "GCA_UPSTREAM_STREAM_IDLE_TIMEOUT=2s",
		},
	}))
	in := env.Ingress[0]
	base := "http://" + in.Addr
	all := func(s int) map[string]int { return map[string]int{pOpenAI: s, pClaude: s, pGemini: s} }
	// A broken upstream: 502 for OpenAI and Gemini clients; Anthropic has no 502, its
	// api_error is a 500.
	badGateway := map[string]int{pOpenAI: http.StatusBadGateway, pClaude: http.StatusInternalServerError, pGemini: http.StatusBadGateway}
	cases := []upstreamCase{
		{name: "timeout once → failover", fault: gemsim.Fault{Delay: gemsim.Duration(4 * time.Second)}, count: 1,
			served: true, attempts: 2, failure: "timeout"},
		{name: "timeout on every attempt", fault: gemsim.Fault{Delay: gemsim.Duration(4 * time.Second)}, count: 3,
			status: all(http.StatusGatewayTimeout), attempts: 3, failure: "timeout", errorType: schemas.ErrTimeout},
		{name: "stream first event timeout → failover", stream: true, fault: gemsim.Fault{Delay: gemsim.Duration(4 * time.Second)}, count: 1,
			served: true, attempts: 2, failure: "timeout"},
		{name: "connection reset once → failover", fault: gemsim.Fault{Reset: true}, count: 1,
			served: true, attempts: 2, failure: "network"},
		{name: "connection reset on every attempt", fault: gemsim.Fault{Reset: true}, count: 3,
			status: badGateway, attempts: 3, failure: "network", errorType: schemas.ErrUpstream},
		{name: "stream cut before the first event → failover", stream: true, fault: gemsim.Fault{CutStreamAfter: cut(0)}, count: 1,
			served: true, attempts: 2, failure: "network"},
		{name: "stream cut halfway", stream: true, fault: gemsim.Fault{CutStreamAfter: cut(2)}, count: 1,
			attempts: 1, errorType: schemas.ErrUpstream, interrupted: schemas.InterruptedUpstream},
		{name: "malformed JSON once → failover", fault: gemsim.Fault{MalformedJSON: true}, count: 1,
			served: true, attempts: 2, failure: "upstream"},
		{name: "malformed JSON on every attempt", fault: gemsim.Fault{MalformedJSON: true}, count: 3,
			status: badGateway, attempts: 3, failure: "upstream", errorType: schemas.ErrUpstream},
		{name: "stream of malformed JSON → failover", stream: true, fault: gemsim.Fault{MalformedJSON: true}, count: 1,
			served: true, attempts: 2, failure: "upstream"},
		{name: "200 with an error body once → failover", fault: gemsim.Fault{ErrorIn200: true}, count: 1,
			served: true, attempts: 2, failure: "upstream"},
		{name: "200 with an error body on every attempt", fault: gemsim.Fault{ErrorIn200: true}, count: 3,
			status: map[string]int{pOpenAI: 500, pClaude: 500, pGemini: 500}, attempts: 3, failure: "upstream", errorType: schemas.ErrUpstream},
	}
	type sent struct {
		c upstreamCase
		r result
	}
	var got []sent
	hc := newHTTPClient(20 * time.Second)
	for _, c := range cases {
		for _, p := range protocols {
			method := "generateContent"
			if c.stream {
				method = "streamGenerateContent"
			}
			require.NoError(t, env.Sim.InjectFault(gemsim.FaultRule{Method: method, Fault: c.fault, Count: c.count}))
			r := send(context.Background(), hc, base, env.Token, call{Proto: p, Stream: c.stream})
			left := env.Sim.ClearFaults()
			require.NoError(t, r.Err, "%s / %s", c.name, p)
			require.Zero(t, left, "%s / %s: %d injected faults not consumed", c.name, p, left)
			require.NotEmpty(t, r.RequestID)
			got = append(got, sent{c, r})
			if c.served {
				require.True(t, r.served(), "%s / %s: want a complete answer, got %d %.300s", c.name, p, r.Status, r.Body)
				continue
			}
			if c.interrupted != "" {
				// The stream began (200) and ends with an error event in the protocol's
				// own form, never with its normal closing event.
				require.Equal(t, http.StatusOK, r.Status, "%s / %s", c.name, p)
				require.False(t, r.Complete, "%s / %s: a cut stream must not look complete: %s", c.name, p, r.Body)
				require.Contains(t, string(r.Body), map[string]string{pOpenAI: `"error"`, pClaude: "event: error", pGemini: "data: "}[p], "%s / %s", c.name, p)
				continue
			}
			require.Equal(t, c.status[p], r.Status, "%s / %s: %.300s", c.name, p, r.Body)
			_, err := errorShape(p, r.Body)
			require.NoError(t, err, "%s / %s", c.name, p)
		}
	}

	// Every request has its row, marked as the case says.
	var results []result
	for _, s := range got {
		results = append(results, s.r)
	}
	a := settle(t, env, scope{Stats: true}, results, in)
	require.Zero(t, a.Lost)
	require.Zero(t, a.Duplicated)
	rows := requestRows(t, env)
	for _, s := range got {
		row, ok := rows[s.r.RequestID]
		require.True(t, ok, "%s / %s: no row", s.c.name, s.r.Proto)
		require.Len(t, row.failures, s.c.attempts, "%s / %s: attempts %v", s.c.name, s.r.Proto, row.failures)
		if s.c.failure != "" {
			require.Equal(t, s.c.failure, row.failures[0], "%s / %s: first attempt's failure", s.c.name, s.r.Proto)
		}
		require.Equal(t, s.c.errorType, row.errorType, "%s / %s: error_type", s.c.name, s.r.Proto)
		require.Equal(t, s.c.interrupted, row.interrupted, "%s / %s: interrupted", s.c.name, s.r.Proto)
		require.Equal(t, uint16(s.r.Status), row.status, "%s / %s: status_code", s.c.name, s.r.Proto)
		if s.c.served {
			require.Empty(t, row.failures[len(row.failures)-1], "%s / %s: the last attempt succeeded", s.c.name, s.r.Proto)
		}
	}
	noPanic(t, in, env.Processors)
	var names []string
	for _, c := range cases {
		names = append(names, c.name)
	}
	sort.Strings(names)
	a.Served = len(got)
	a.Scenario = "upstream misbehaving (simulator faults)"
	a.Note = fmt.Sprintf("%d cases × 3 protocols (timeouts with GCA_UPSTREAM_ATTEMPT_TIMEOUT=1s, resets, stream cut halfway → interrupted=upstream_cut, malformed JSON, 200 with an error body): failover to a second key where the fault hit once, the protocol's error (504; 502, Anthropic 500; 500) where it hit every attempt; every row's attempts, failure, error_type, interrupted as expected; served = answers", len(cases))
	report(t, a.row)
}

// requestRow is the part of a request_logs row the fault tests check.
type requestRow struct {
	status      uint16
	errorType   string
	interrupted string
	failures    []string
}

func requestRows(t *testing.T, env *e2e.Env) map[string]requestRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := env.CH.Query(ctx, fmt.Sprintf(`SELECT request_id, status_code, toString(error_type), toString(interrupted), attempts.failure
		FROM %s.request_logs`, env.Database))
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]requestRow{}
	for rows.Next() {
		var id string
		var r requestRow
		require.NoError(t, rows.Scan(&id, &r.status, &r.errorType, &r.interrupted, &r.failures))
		out[id] = r
	}
	return out
}
