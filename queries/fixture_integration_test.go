//go:build integration

package queries_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/chsink"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// The events span three UTC days around the start of US daylight saving time
// (2025-03-09 10:00 UTC), so the Pacific quota days are 24 and 23 hours long and do
// not line up with UTC days: Pacific midnight is 08:00 UTC on March 8 and 9, 07:00 UTC
// on March 10.
var fixtureStart = time.Date(2025, 3, 8, 0, 0, 0, 0, time.UTC)

const fixtureSpan = 72 * time.Hour

// gen generates events deterministically from its seed.
type gen struct {
	rng      *rand.Rand
	keys     []key
	models   []string
	tokens   []string
	n        int
	interval time.Duration
}

type key struct{ hash, project string }

func newGen(seed uint64) *gen {
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x5deece66d))}
	for i := range 12 {
		g.keys = append(g.keys, key{hash: schemas.HashKey(fmt.Sprintf("AIza-queries-%d", i)), project: fmt.Sprintf("proj-%d", i%5)})
	}
	g.models = []string{"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash"}
	for i := range 6 {
		g.tokens = append(g.tokens, schemas.HashToken("tok-"+strconv.Itoa(i)))
	}
	return g
}

func (g *gen) between(lo, hi int64) int64 { return lo + g.rng.Int64N(hi-lo+1) }

func (g *gen) pick(weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := g.rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func (g *gen) id(ms int64) string {
	g.n++
	return fmt.Sprintf("%012x-q%06d-%08x", ms, g.n, g.rng.Uint32())
}

// request returns one request event arriving at ms, in one of the scenarios the
// gateway produces.
func (g *gen) request(ms int64) *schemas.RequestEvent {
	client := []string{schemas.ClientOpenAI, schemas.ClientClaude, schemas.ClientGemini, schemas.ClientUnknown}[g.pick(40, 25, 30, 5)]
	model := g.models[g.pick(20, 40, 25, 15)]
	e := &schemas.RequestEvent{
		Type: schemas.TypeRequest, V: schemas.RequestVersion, EventID: g.id(ms), TimeMs: ms,
		Instance: "ingress-" + strconv.Itoa(g.rng.IntN(3)), RequestID: "req-" + strconv.Itoa(g.n),
		ClientType: client, ClientIP: fmt.Sprintf("10.0.%d.%d", g.rng.IntN(3), g.rng.IntN(40)),
		UserAgent: "test-agent", Method: "POST", Endpoint: "/v1/chat/completions",
		Model: model, OriginalModel: model, Stream: g.rng.IntN(10) < 4,
		RequestBytes: g.between(100, 20000), Status: 200,
	}
	if t := g.pick(6, 1); t == 0 {
		e.TokenHash = g.tokens[g.pick(30, 20, 15, 10, 5, 3)]
	}
	prompt := g.between(10, 8000)
	usage := schemas.Usage{Prompt: prompt, Cached: g.between(0, prompt/3), Candidates: g.between(1, 3000)}
	if model == "gemini-2.5-pro" {
		usage.Thoughts = g.between(0, 900)
	}
	if g.rng.IntN(7) == 0 {
		usage.ToolUsePrompt = g.between(1, 300)
	}
	usage.Total = usage.Prompt + usage.Candidates + usage.Thoughts + usage.ToolUsePrompt
	e.EstimatedInputTokens = prompt + g.between(0, 40)

	at := ms + g.between(0, 3)
	attempt := func(k key, status int, failure string, counted bool) {
		lat := g.between(15, 6000)
		a := schemas.Attempt{KeyHash: k.hash, Project: k.project, TimeMs: at, Status: status, Failure: failure,
			LatencyMs: lat, InputTokens: prompt + usage.ToolUsePrompt, Counted: counted}
		if status == 429 && g.rng.IntN(3) > 0 {
			a.RetryAfterMs = g.between(500, 59000)
		}
		e.Attempts = append(e.Attempts, a)
		at += lat + g.between(0, 2)
	}
	k := func() key { return g.keys[g.rng.IntN(len(g.keys))] }
	fail := func(status int, errType, msg string) {
		e.Status, e.ErrorType, e.ErrorMessage = status, errType, msg
		usage = schemas.Usage{}
	}
	switch g.pick(55, 10, 5, 3, 2, 2, 3, 2, 6, 3, 2, 3, 4) {
	case 0: // success on the first key
		attempt(k(), 200, "", true)
	case 1: // minute quota, then success on another key
		attempt(k(), 429, "minute_quota", false)
		attempt(k(), 200, "", true)
	case 2: // every key out of quota
		attempt(k(), 429, "minute_quota", false)
		if g.rng.IntN(2) == 0 {
			attempt(k(), 429, "day_quota", false)
			fail(429, schemas.ErrQuotaExhausted, "all keys exhausted their daily quota for "+model)
		} else {
			attempt(k(), 429, "quota_unknown", false)
			fail(429, schemas.ErrRateLimited, "rate limited: retry in 24.07s")
		}
	case 3: // upstream timeout
		attempt(k(), 0, "timeout", false)
		fail(504, schemas.ErrTimeout, "upstream did not answer within 60s")
	case 4: // invalid key, failover
		attempt(k(), 400, "key_invalid", false)
		attempt(k(), 200, "", true)
	case 5: // client token rejected before any upstream call
		fail(401, schemas.ErrAuth, `invalid gateway token "tok-…"`)
	case 6: // overloaded, failover
		attempt(k(), 503, "upstream", false)
		attempt(k(), 200, "", true)
	case 7: // overloaded everywhere
		attempt(k(), 503, "upstream", false)
		attempt(k(), 503, "upstream", false)
		fail(502, schemas.ErrUpstream, "The model is overloaded. Please try again later.")
	case 8: // stream cut by the upstream or the client
		e.Stream = true
		attempt(k(), 200, "", true)
		if g.rng.IntN(2) == 0 {
			e.Interrupted, e.ErrorType, e.ErrorMessage = schemas.InterruptedUpstream, schemas.ErrUpstream, "upstream closed the stream"
		} else {
			e.Interrupted = schemas.InterruptedClient
		}
		usage.Total = 0
	case 9: // answered from the response cache
		e.CacheHit = true
	case 10: // the upstream refuses the request: counted, 400 to the client
		attempt(k(), 400, "client", true)
		fail(400, schemas.ErrBadRequest, `Invalid JSON payload received. Unknown name "temprature"`)
	case 11: // one key retried after minute quotas
		kk := k()
		for range 1 + g.rng.IntN(3) {
			attempt(kk, 429, "minute_quota", false)
		}
		attempt(kk, 200, "", true)
	case 12: // forbidden key, no failover left
		attempt(k(), 403, "forbidden", false)
		fail(502, "", "")
	}
	e.Usage = usage
	if n := len(e.Attempts); n > 0 {
		e.KeyHash, e.Project = e.Attempts[n-1].KeyHash, e.Attempts[n-1].Project
	}
	e.LatencyMs = at - ms + g.between(0, 4)
	if e.Stream && len(e.Attempts) > 0 {
		e.TTFBMs = g.between(40, max(e.LatencyMs/2, 41))
	}
	e.ResponseBytes = g.between(100, 50000)
	if e.Interrupted != "" {
		e.ResponseBytes = g.between(0, 5000)
	}
	return e
}

func (g *gen) keyState(ms int64) *schemas.KeyStateEvent {
	k := g.keys[g.rng.IntN(len(g.keys))]
	e := &schemas.KeyStateEvent{Type: schemas.TypeKeyState, V: schemas.KeyStateVersion, EventID: g.id(ms),
		TimeMs: ms, Instance: "ingress-0", Project: k.project, Source: schemas.SourceUpstream}
	switch g.pick(3, 2, 4) {
	case 0:
		e.Kind, e.KeyHash, e.Reason, e.Status = schemas.KindDisable, k.hash, schemas.ReasonKeyInvalid, 400
	case 1:
		e.Kind, e.KeyHash, e.Reason, e.Source = schemas.KindEnable, k.hash, schemas.ReasonRevalidated, schemas.SourceRevalidation
	case 2:
		e.Kind, e.Model, e.Reason = schemas.KindCooldown, g.models[g.rng.IntN(len(g.models))], schemas.ReasonRPM
		e.RetryDelayMs = g.between(1000, 59000)
		e.UntilMs = ms + e.RetryDelayMs
	}
	return e
}

// fixture is a database loaded with known events.
type fixture struct {
	conn driver.Conn
	db   string
	// requests are the stored events, each once; dups are those stored a second
	// time, as two racing writers would (see load).
	requests, dups []*schemas.RequestEvent
	states         []*schemas.KeyStateEvent
	audits         []*schemas.AuditEvent
	// inserts lists, per INSERT into request_logs, the events it held: what the
	// materialized views saw block by block.
	inserts [][]*schemas.RequestEvent
	// stateInserts and auditInserts likewise.
	stateInserts [][]*schemas.KeyStateEvent
	auditInserts [][]*schemas.AuditEvent
}

// mergeTreeTables are the fixture's tables with data parts.
var mergeTreeTables = []string{
	"request_logs", "error_logs", "key_state_log", "audit_log", "system_stats_daily",
	"api_key_metrics_state", "api_key_failures", "schema_migrations",
}

// newFixture migrates a fresh database and loads it with generated events through the
// processors' ClickHouse sink, the path events take in production. Merges are stopped
// on every table first, so the data parts (what storage_metrics and
// storage_recommendations report) follow from the inserts alone and duplicates stay
// until read with FINAL.
func newFixture(t testing.TB, requests int) *fixture {
	t.Helper()
	conn, db := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	opts := chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}
	require.NoError(t, chddl.Migrate(ctx, conn, opts))
	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(t, err)
	require.False(t, v.Modern(), "the exact expectations are for the local 18.16 server (whole-second times)")
	for _, tbl := range mergeTreeTables {
		require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM STOP MERGES `%s`.`%s`", db, tbl)))
	}
	f := &fixture{conn: conn, db: db}
	g := newGen(20250309)
	step := fixtureSpan.Milliseconds() / int64(requests)
	for i := range requests {
		f.requests = append(f.requests, g.request(fixtureStart.UnixMilli()+int64(i)*step+g.between(0, step-1)))
	}
	// A burst across Pacific midnight (08:00 UTC on March 9): many requests in the
	// minutes on either side of it, some with attempts that cross the minute.
	midnight := time.Date(2025, 3, 9, 8, 0, 0, 0, time.UTC).UnixMilli()
	for range 150 {
		f.requests = append(f.requests, g.request(midnight+g.between(-90_000, 90_000)))
	}
	for i := range 60 {
		f.states = append(f.states, g.keyState(fixtureStart.UnixMilli()+int64(i)*fixtureSpan.Milliseconds()/60))
	}
	for i := range 4 {
		ms := fixtureStart.UnixMilli() + int64(i)*3_600_000
		f.audits = append(f.audits, &schemas.AuditEvent{Type: schemas.TypeAudit, V: schemas.AuditVersion, EventID: g.id(ms),
			TimeMs: ms, Instance: "processors-0", Actor: "sre@example.com", Action: "consistency_repair", Target: "proj-1", Result: "ok"})
	}

	sink := chsink.New(conn, v, opts, chsink.NewMetrics(prometheus.NewRegistry()))
	const batch = 700
	for i := 0; i < len(f.requests); i += batch {
		b := &consume.Batch{Requests: f.requests[i:min(i+batch, len(f.requests))]}
		if i == 0 {
			b.KeyStates, b.Audits = f.states[:30], f.audits[:2]
		}
		if i == batch {
			b.KeyStates, b.Audits = f.states[30:], f.audits[2:]
		}
		require.NoError(t, sink.Write(ctx, b))
		f.inserts = append(f.inserts, b.Requests)
		if len(b.KeyStates) > 0 {
			f.stateInserts = append(f.stateInserts, b.KeyStates)
			f.auditInserts = append(f.auditInserts, b.Audits)
		}
	}
	// Redelivery: the sink finds these already stored and inserts nothing.
	require.NoError(t, sink.Write(ctx, &consume.Batch{Requests: f.requests[100:300], KeyStates: f.states[:5]}))

	// Two writers racing on the same records (a rebalance while a batch was in flight)
	// can both insert an event before either sees the other's row: the one window the
	// sink's dedupe leaves (processors/chsink). Reproduce its result by inserting stored
	// rows again, from request_logs itself, in one block ordered by id, so the
	// materialized views see them a second time, as they would.
	for i := 5; i < len(f.requests); i += 97 {
		f.dups = append(f.dups, f.requests[i])
	}
	ids := make([]string, len(f.dups))
	for i, e := range f.dups {
		ids[i] = "'" + e.EventID + "'"
	}
	require.NoError(t, conn.Exec(ctx, fmt.Sprintf("INSERT INTO `%[1]s`.request_logs SELECT * FROM `%[1]s`.request_logs WHERE id IN (%s) ORDER BY id",
		db, strings.Join(ids, ", "))))
	f.inserts = append(f.inserts, sortedByID(f.dups))
	return f
}

func sortedByID(events []*schemas.RequestEvent) []*schemas.RequestEvent {
	out := append([]*schemas.RequestEvent(nil), events...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].EventID < out[j-1].EventID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// stored returns every request_logs row as the views saw them: each event, and the
// duplicated ones a second time.
func (f *fixture) stored() []*schemas.RequestEvent {
	return append(append([]*schemas.RequestEvent(nil), f.requests...), f.dups...)
}

// run runs a query of the embedded catalog on the fixture.
func (f *fixture) run(t *testing.T, name string, params map[string]string) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(testenv.Context(t), 30*time.Second)
	defer cancel()
	res, err := queriesRun(ctx, f.conn, name, params)
	require.NoError(t, err)
	return res.Strings()
}
