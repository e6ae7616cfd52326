//go:build integration

package chsink_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/chsink"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

func newSink(t *testing.T) (*chsink.Sink, *prometheus.Registry, string, chtest.Precision) {
	t.Helper()
	conn, db := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	opts := chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}
	require.NoError(t, chddl.Migrate(ctx, conn, opts))
	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	p := chtest.Milliseconds
	if !v.Modern() {
		p = chtest.Seconds
	}
	return chsink.New(conn, v, opts, chsink.NewMetrics(reg)), reg, db, p
}

// The sink drops events it already stored and repeats within a batch, so the rollups
// count every event once however often it is written.
func TestWriteIsIdempotent(t *testing.T) {
	sink, m, db, prec := newSink(t)
	ctx := testenv.Context(t)
	conn := testenv.OpenClickHouse(t, db)

	// Events of the last two UTC days, so the rollups have two dates.
	start := time.Now().UTC().Add(-30 * time.Hour).Truncate(time.Second)
	g := chtest.NewGen(7, start)
	reqs := g.Requests(3000, 30*time.Hour)
	states := g.KeyStates(120, 30*time.Hour)
	audits := g.Audits(10, 30*time.Hour)

	batches := []*consume.Batch{}
	for i := 0; i < len(reqs); i += 500 {
		b := &consume.Batch{Requests: reqs[i:min(i+500, len(reqs))]}
		batches = append(batches, b)
	}
	batches[0].KeyStates = states[:60]
	batches[1].KeyStates = states[60:]
	batches[1].Audits = audits

	for _, b := range batches {
		require.NoError(t, sink.Write(ctx, b))
	}
	// Redelivery: a whole batch again, an overlapping batch with repeats inside it, and
	// key states and audits again.
	require.NoError(t, sink.Write(ctx, batches[2]))
	overlap := &consume.Batch{
		Requests:  append(append([]*schemas.RequestEvent{}, reqs[2900:]...), reqs[10], reqs[10], reqs[2999]),
		KeyStates: append(append([]*schemas.KeyStateEvent{}, states[50:70]...), states[0]),
		Audits:    append([]*schemas.AuditEvent{}, audits[3], audits[3]),
	}
	require.NoError(t, sink.Write(ctx, overlap))

	final, distinct, raw, err := chtest.CountRequests(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, [3]uint64{3000, 3000, 3000}, [3]uint64{final, distinct, raw}, "request_logs FINAL, uniqExact(id), raw count")

	stats, err := chtest.ReadSystemStats(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectSystemStats(reqs, prec), stats)

	keys, err := chtest.ReadKeyMetrics(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectKeyMetrics(reqs, states, prec), keys)

	var errors, stateRows, auditRows uint64
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT count() FROM `%[1]s`.error_logs), (SELECT count() FROM `%[1]s`.key_state_log), (SELECT count() FROM `%[1]s`.audit_log)", db)).Scan(&errors, &stateRows, &auditRows))
	wantErrors := 0
	for _, e := range reqs {
		if e.HasError() {
			wantErrors++
		}
	}
	require.Equal(t, []uint64{uint64(wantErrors), 120, 10}, []uint64{errors, stateRows, auditRows})

	// batches[2] (500), the 100 of reqs[2900:] and reqs[10] were stored (601);
	// the repeats of reqs[10] and reqs[2999] inside the overlapping batch were dropped there.
	require.NoError(t, testutil.GatherAndCompare(m, strings.NewReader(`
# HELP gca_processor_duplicates_dropped_total Events dropped before insert because they were already stored (where=stored) or repeated within the batch (where=batch).
# TYPE gca_processor_duplicates_dropped_total counter
gca_processor_duplicates_dropped_total{table="audit_log",where="batch"} 1
gca_processor_duplicates_dropped_total{table="audit_log",where="stored"} 1
gca_processor_duplicates_dropped_total{table="key_state_log",where="batch"} 0
gca_processor_duplicates_dropped_total{table="key_state_log",where="stored"} 21
gca_processor_duplicates_dropped_total{table="request_logs",where="batch"} 2
gca_processor_duplicates_dropped_total{table="request_logs",where="stored"} 601
# HELP gca_processor_rows_inserted_total Rows inserted into ClickHouse tables.
# TYPE gca_processor_rows_inserted_total counter
gca_processor_rows_inserted_total{table="audit_log"} 10
gca_processor_rows_inserted_total{table="key_state_log"} 120
gca_processor_rows_inserted_total{table="request_logs"} 3000
`), "gca_processor_duplicates_dropped_total", "gca_processor_rows_inserted_total"))
}

// Every column of a request row, key state row and audit row is stored as the event
// says, and error_logs derives its row from request_logs.
func TestRowsReadBack(t *testing.T) {
	sink, _, db, prec := newSink(t)
	ctx := testenv.Context(t)
	conn := testenv.OpenClickHouse(t, db)
	now := time.Now().UTC().Truncate(time.Millisecond)
	ms := now.UnixMilli()

	req := &schemas.RequestEvent{
		Type: schemas.TypeRequest, V: 1, EventID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", TimeMs: ms,
		Instance: "ingress-1", RequestID: "req-1", ClientType: schemas.ClientClaude, ClientIP: "10.1.2.3",
		UserAgent: "anthropic-typescript/0.30", Referer: "https://app.example.com", Method: "POST",
		Endpoint: "/v1/messages", TokenHash: "tok0123456789abc", KeyHash: "key2", Project: "proj-b",
		Model: "gemini-2.5-pro", OriginalModel: "claude-sonnet-4", Stream: true, Status: 200,
		ErrorType: schemas.ErrUpstream, ErrorMessage: `upstream "closed" the stream`,
		LatencyMs: 5123, TTFBMs: 412, RequestBytes: 2048, ResponseBytes: 9000,
		Usage:                schemas.Usage{Prompt: 1000, Candidates: 300, Thoughts: 120, Cached: 400, ToolUsePrompt: 20},
		EstimatedInputTokens: 1010, Interrupted: schemas.InterruptedUpstream,
		Attempts: []schemas.Attempt{
			{KeyHash: "key1", Project: "proj-a", TimeMs: ms + 1, Status: 429, Failure: "minute_quota", LatencyMs: 80, InputTokens: 1020, RetryAfterMs: 24070},
			{KeyHash: "key2", Project: "proj-b", TimeMs: ms + 90, Status: 200, LatencyMs: 5000, InputTokens: 1020, Counted: true},
		},
	}
	state := &schemas.KeyStateEvent{
		Type: schemas.TypeKeyState, V: 1, EventID: "ks-1", TimeMs: ms, Instance: "ingress-1",
		Kind: schemas.KindCooldown, Project: "proj-a", Model: "gemini-2.5-pro", Reason: schemas.ReasonRPM,
		Source: schemas.SourceUpstream, QuotaID: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
		QuotaExceeded: schemas.QuotaExceeded{RPM: true}, UntilMs: ms + 24070, RetryDelayMs: 24070,
		RequestID: "req-1", Status: 429, Message: "Please retry in 24.07s.",
	}
	audit := &schemas.AuditEvent{
		Type: schemas.TypeAudit, V: 1, EventID: "au-1", TimeMs: ms, Instance: "processors-0",
		Actor: "sre@example.com", Action: "consistency_repair", Target: "proj-a",
		Params: map[string]string{"window": "minute", "fixed": "3"}, Result: "ok",
	}
	require.NoError(t, sink.Write(ctx, &consume.Batch{Requests: []*schemas.RequestEvent{req}, KeyStates: []*schemas.KeyStateEvent{state}, Audits: []*schemas.AuditEvent{audit}}))

	type requestRow struct {
		ID            string      `ch:"id"`
		Timestamp     time.Time   `ch:"timestamp"`
		ClientType    string      `ch:"client_type"`
		ClientIP      string      `ch:"client_ip"`
		UserAgent     string      `ch:"user_agent"`
		APIKeyHash    string      `ch:"api_key_hash"`
		Model         string      `ch:"model"`
		OriginalModel string      `ch:"original_model"`
		Endpoint      string      `ch:"endpoint"`
		ResponseTime  uint32      `ch:"response_time"`
		StatusCode    uint16      `ch:"status_code"`
		InputTokens   uint64      `ch:"input_tokens"`
		OutputTokens  uint64      `ch:"output_tokens"`
		TotalTokens   uint64      `ch:"total_tokens"`
		IsStream      uint8       `ch:"is_stream"`
		HasError      uint8       `ch:"has_error"`
		ErrorMessage  string      `ch:"error_message"`
		RequestSize   uint64      `ch:"request_size"`
		ResponseSize  uint64      `ch:"response_size"`
		Project       string      `ch:"project"`
		TokenHash     string      `ch:"token_hash"`
		RequestID     string      `ch:"request_id"`
		Instance      string      `ch:"instance"`
		Method        string      `ch:"method"`
		Referer       string      `ch:"referer"`
		ErrorType     string      `ch:"error_type"`
		TTFB          uint32      `ch:"ttfb_ms"`
		Prompt        uint64      `ch:"prompt_tokens"`
		Candidates    uint64      `ch:"candidates_tokens"`
		Thoughts      uint64      `ch:"thoughts_tokens"`
		Cached        uint64      `ch:"cached_tokens"`
		ToolUse       uint64      `ch:"tool_use_prompt_tokens"`
		EstInput      uint64      `ch:"est_input_tokens"`
		Interrupted   string      `ch:"interrupted"`
		CacheHit      uint8       `ch:"cache_hit"`
		AKey          []string    `ch:"attempts.key_hash"`
		AProject      []string    `ch:"attempts.project"`
		ATs           []time.Time `ch:"attempts.ts"`
		AStatus       []uint16    `ch:"attempts.status"`
		AFailure      []string    `ch:"attempts.failure"`
		ALatency      []uint32    `ch:"attempts.latency_ms"`
		AInput        []uint64    `ch:"attempts.input_tokens"`
		ACounted      []uint8     `ch:"attempts.counted"`
		ARetry        []uint32    `ch:"attempts.retry_after_ms"`
	}
	var got []requestRow
	require.NoError(t, conn.Select(ctx, &got, fmt.Sprintf("SELECT * FROM `%s`.request_logs", db)))
	require.Len(t, got, 1)
	got[0].Timestamp = got[0].Timestamp.UTC()
	for i := range got[0].ATs {
		got[0].ATs[i] = got[0].ATs[i].UTC()
	}
	require.Equal(t, requestRow{
		ID: req.EventID, Timestamp: prec.Time(ms), ClientType: "claude", ClientIP: "10.1.2.3",
		UserAgent: "anthropic-typescript/0.30", APIKeyHash: "key2", Model: "gemini-2.5-pro",
		OriginalModel: "claude-sonnet-4", Endpoint: "/v1/messages", ResponseTime: 5123, StatusCode: 200,
		InputTokens: 1020, OutputTokens: 420, TotalTokens: 1440, IsStream: 1, HasError: 1,
		ErrorMessage: `upstream "closed" the stream`, RequestSize: 2048, ResponseSize: 9000,
		Project: "proj-b", TokenHash: "tok0123456789abc", RequestID: "req-1", Instance: "ingress-1",
		Method: "POST", Referer: "https://app.example.com", ErrorType: "upstream_error", TTFB: 412,
		Prompt: 1000, Candidates: 300, Thoughts: 120, Cached: 400, ToolUse: 20, EstInput: 1010,
		Interrupted: "upstream_cut", CacheHit: 0,
		AKey: []string{"key1", "key2"}, AProject: []string{"proj-a", "proj-b"},
		ATs: []time.Time{prec.Time(ms + 1), prec.Time(ms + 90)}, AStatus: []uint16{429, 200},
		AFailure: []string{"minute_quota", ""}, ALatency: []uint32{80, 5000}, AInput: []uint64{1020, 1020},
		ACounted: []uint8{0, 1}, ARetry: []uint32{24070, 0},
	}, got[0])

	var errType, stack, context, model, project string
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT error_type, error_stack, context, model, project FROM `%s`.error_logs WHERE id = '%s'", db, req.EventID)).Scan(&errType, &stack, &context, &model, &project))
	require.Equal(t, "upstream_error", errType)
	require.Equal(t, "#1 key=key1 project=proj-a status=429 failure=minute_quota latency_ms=80\n#2 key=key2 project=proj-b status=200 failure= latency_ms=5000", stack)
	require.JSONEq(t, `{"model":"gemini-2.5-pro","original_model":"claude-sonnet-4","project":"proj-b","interrupted":"upstream_cut","attempts":2,"failures":["minute_quota",""]}`, context)
	require.Equal(t, []string{"gemini-2.5-pro", "proj-b"}, []string{model, project})

	var until time.Time
	var kind, quotaID string
	var rpm uint8
	var retry uint32
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT kind, quota_id, rpm_exceeded, until, retry_delay_ms FROM `%s`.key_state_log", db)).Scan(&kind, &quotaID, &rpm, &until, &retry))
	require.Equal(t, []any{"cooldown", state.QuotaID, uint8(1), prec.Time(ms + 24070), uint32(24070)}, []any{kind, quotaID, rpm, until.UTC(), retry})

	var keys, values []string
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT params.key, params.value FROM `%s`.audit_log", db)).Scan(&keys, &values))
	require.Equal(t, [][]string{{"fixed", "window"}, {"3", "minute"}}, [][]string{keys, values})
}

// A lookup and insert of a large batch stays well under the batch interval budget.
func TestWriteLargeBatch(t *testing.T) {
	sink, _, db, _ := newSink(t)
	ctx, cancel := context.WithTimeout(testenv.Context(t), time.Minute)
	defer cancel()
	g := chtest.NewGen(11, time.Now().UTC().Add(-time.Hour))
	reqs := g.Requests(20000, time.Hour)
	for i := 0; i < len(reqs); i += 10000 {
		start := time.Now()
		require.NoError(t, sink.Write(ctx, &consume.Batch{Requests: reqs[i : i+10000]}))
		t.Logf("batch of 10000: %s", time.Since(start))
	}
	start := time.Now()
	require.NoError(t, sink.Write(ctx, &consume.Batch{Requests: reqs[5000:15000]}))
	t.Logf("redelivered batch of 10000 (all found): %s", time.Since(start))
	conn := testenv.OpenClickHouse(t, db)
	final, _, raw, err := chtest.CountRequests(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, []uint64{20000, 20000}, []uint64{final, raw})
}

// originBatch is a batch of reqs read from partition 0 of topic t at offsets first...,
// in generation gen.
func originBatch(reqs []*schemas.RequestEvent, first int, gen uint64) *consume.Batch {
	b := &consume.Batch{Generation: gen}
	for i, e := range reqs {
		b.Requests = append(b.Requests, e)
		b.RequestOrigins = append(b.RequestOrigins, consume.Origin{Topic: "t", Partition: 0, Offset: int64(first + i)})
	}
	return b
}

// TestLookupOnlyWhereACopyCanBe: a writer that took a partition over looks its events
// up batch after batch while they turn out stored — what the previous owner wrote
// before it died uncommitted — and stops at the first batch with none stored; from
// there only events the producer marked are looked up, until the next generation.
// Every event is stored once.
func TestLookupOnlyWhereACopyCanBe(t *testing.T) {
	_, _, db, prec := newSink(t)
	ctx := testenv.Context(t)
	conn := testenv.OpenClickHouse(t, db)
	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(t, err)
	opts := chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}
	g := chtest.NewGen(11, time.Now().UTC().Add(-2*time.Hour).Truncate(time.Second))
	reqs := g.Requests(1000, time.Hour)

	// The previous owner writes offsets 0-399 in two batches and dies before it commits.
	regA := prometheus.NewRegistry()
	a := chsink.New(conn, v, opts, chsink.NewMetrics(regA))
	require.NoError(t, a.Write(ctx, originBatch(reqs[0:200], 0, 1)))
	require.NoError(t, a.Write(ctx, originBatch(reqs[200:400], 200, 1)))

	// The next owner starts again at offset 0.
	regB := prometheus.NewRegistry()
	b := chsink.New(conn, v, opts, chsink.NewMetrics(regB))
	for first := 0; first < 600; first += 150 {
		require.NoError(t, b.Write(ctx, originBatch(reqs[first:first+150], first, 1)))
	}
	// Verified now; a copy of an early event that the ingress sent again (marked) is
	// still caught.
	next := originBatch(reqs[600:800], 600, 1)
	next.Requests = append(next.Requests, reqs[5])
	next.RequestOrigins = append(next.RequestOrigins, consume.Origin{Topic: "t", Partition: 0, Offset: 800, MaybeDuplicate: true})
	require.NoError(t, b.Write(ctx, next))
	// A new generation (a rebalance) checks again.
	require.NoError(t, b.Write(ctx, originBatch(reqs[800:1000], 801, 2)))

	final, distinct, raw, err := chtest.CountRequests(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, [3]uint64{1000, 1000, 1000}, [3]uint64{final, distinct, raw}, "request_logs FINAL, uniqExact(id), raw count")
	stats, err := chtest.ReadSystemStats(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectSystemStats(reqs, prec), stats)

	const help = `# HELP gca_processor_dedupe_events_total Events of batches by whether the dedupe lookup checked them: why=unverified (their partition's earlier copies are not ruled out yet), maybe_duplicate (the producer marked them), unknown (no origin: a replay), or why=skipped (produced once and read past anything this group delivered before).
# TYPE gca_processor_dedupe_events_total counter
`
	// A: its first batch found nothing stored, so its second went unchecked.
	require.NoError(t, testutil.GatherAndCompare(regA, strings.NewReader(help+`
gca_processor_dedupe_events_total{table="request_logs",why="skipped"} 200
gca_processor_dedupe_events_total{table="request_logs",why="unverified"} 200
`), "gca_processor_dedupe_events_total"))
	// B: 0-449 held stored events (0-399), 450-599 none; 600-799 unchecked but the
	// marked copy; 800-999 checked in the new generation.
	require.NoError(t, testutil.GatherAndCompare(regB, strings.NewReader(help+`
gca_processor_dedupe_events_total{table="request_logs",why="maybe_duplicate"} 1
gca_processor_dedupe_events_total{table="request_logs",why="skipped"} 200
gca_processor_dedupe_events_total{table="request_logs",why="unverified"} 800
`), "gca_processor_dedupe_events_total"))
	require.NoError(t, testutil.GatherAndCompare(regB, strings.NewReader(`
# HELP gca_processor_duplicates_dropped_total Events dropped before insert because they were already stored (where=stored) or repeated within the batch (where=batch).
# TYPE gca_processor_duplicates_dropped_total counter
gca_processor_duplicates_dropped_total{table="request_logs",where="batch"} 0
gca_processor_duplicates_dropped_total{table="request_logs",where="stored"} 401
`), "gca_processor_duplicates_dropped_total"))
}
