package chsink

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

// columnsOf returns each column's value for row i, by column name.
func columnsOf(t *testing.T, cols []column, i int) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, c := range cols {
		switch v := c.data.(type) {
		case []string:
			out[c.name] = v[i]
		case []time.Time:
			out[c.name] = v[i]
		case []uint8:
			out[c.name] = v[i]
		case []uint16:
			out[c.name] = v[i]
		case []uint32:
			out[c.name] = v[i]
		case []uint64:
			out[c.name] = v[i]
		case [][]string:
			out[c.name] = v[i]
		case [][]time.Time:
			out[c.name] = v[i]
		case [][]uint8:
			out[c.name] = v[i]
		case [][]uint16:
			out[c.name] = v[i]
		case [][]uint32:
			out[c.name] = v[i]
		case [][]uint64:
			out[c.name] = v[i]
		default:
			t.Fatalf("column %s has type %T", c.name, c.data)
		}
	}
	return out
}

func TestRequestRow(t *testing.T) {
	ms := int64(1_764_079_200_123) // 2025-11-25 14:00:00.123 UTC
	for _, tc := range []struct {
		name string
		ev   schemas.RequestEvent
		want map[string]any // columns checked for this case
	}{
		{
			// The seed's token columns: input = prompt + tool-use prompt, output =
			// candidates + thoughts, total as Gemini reports it.
			name: "tokens",
			ev:   schemas.RequestEvent{EventID: "a", TimeMs: ms, Status: 200, Usage: schemas.Usage{Prompt: 100, Cached: 40, ToolUsePrompt: 7, Candidates: 30, Thoughts: 12, Total: 149}},
			want: map[string]any{"input_tokens": uint64(107), "output_tokens": uint64(42), "total_tokens": uint64(149),
				"prompt_tokens": uint64(100), "cached_tokens": uint64(40), "has_error": uint8(0), "timestamp": time.UnixMilli(ms).UTC()},
		},
		{
			// A stream cut before the chunk with usage: no total from the upstream.
			name: "total from parts when the upstream gave none",
			ev:   schemas.RequestEvent{EventID: "b", TimeMs: ms, Status: 200, Interrupted: schemas.InterruptedClient, Stream: true, Usage: schemas.Usage{Prompt: 10, Candidates: 5}},
			want: map[string]any{"total_tokens": uint64(15), "has_error": uint8(1), "is_stream": uint8(1), "interrupted": "client_disconnect"},
		},
		{
			// Durations beyond UInt32 are clamped, not wrapped.
			name: "clamped durations",
			ev:   schemas.RequestEvent{EventID: "c", TimeMs: ms, Status: 504, LatencyMs: math.MaxInt64, TTFBMs: 5},
			want: map[string]any{"response_time": uint32(math.MaxUint32), "ttfb_ms": uint32(5), "status_code": uint16(504), "has_error": uint8(1)},
		},
		{
			name: "no attempts: empty arrays",
			ev:   schemas.RequestEvent{EventID: "d", TimeMs: ms, Status: 200, CacheHit: true},
			want: map[string]any{"cache_hit": uint8(1), "api_key_hash": ""},
		},
		{
			name: "attempts in order",
			ev: schemas.RequestEvent{EventID: "e", TimeMs: ms, Status: 200, KeyHash: "k2", Project: "p2", Attempts: []schemas.Attempt{
				{KeyHash: "k1", Project: "p1", TimeMs: ms + 1, Status: 429, Failure: "minute_quota", LatencyMs: 80, InputTokens: 9, RetryAfterMs: 24070},
				{KeyHash: "k2", Project: "p2", TimeMs: ms + 90, Status: 200, LatencyMs: 700, InputTokens: 9, Counted: true},
			}},
			want: map[string]any{
				"api_key_hash": "k2", "project": "p2",
				"attempts.key_hash": []string{"k1", "k2"}, "attempts.project": []string{"p1", "p2"},
				"attempts.ts":     []time.Time{time.UnixMilli(ms + 1).UTC(), time.UnixMilli(ms + 90).UTC()},
				"attempts.status": []uint16{429, 200}, "attempts.failure": []string{"minute_quota", ""},
				"attempts.latency_ms": []uint32{80, 700}, "attempts.input_tokens": []uint64{9, 9},
				"attempts.counted": []uint8{0, 1}, "attempts.retry_after_ms": []uint32{24070, 0},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r requestRows
			r.add(&tc.ev)
			got := columnsOf(t, r.columns(), 0)
			require.Len(t, got["attempts.key_hash"], len(tc.ev.Attempts))
			for col, want := range tc.want {
				require.Equal(t, want, got[col], col)
			}
			require.Equal(t, tc.ev.EventID, got["id"])
		})
	}
}

// Rows of one batch share flat attempt buffers; a later row must never overwrite an
// earlier row's attempts, and reset must not leak rows into the next batch.
func TestRequestRowsShareBuffersSafely(t *testing.T) {
	var r requestRows
	for i := range 100 {
		n := i % 4
		e := &schemas.RequestEvent{EventID: string(rune('a' + i%26)), TimeMs: 1_764_079_200_000}
		for j := range n {
			e.Attempts = append(e.Attempts, schemas.Attempt{KeyHash: "k", Project: "p", LatencyMs: int64(i*10 + j)})
		}
		r.add(e)
	}
	for i := range 100 {
		lat := columnsOf(t, r.columns(), i)["attempts.latency_ms"].([]uint32)
		require.Len(t, lat, i%4)
		for j, l := range lat {
			require.Equal(t, uint32(i*10+j), l)
		}
	}
	r.reset()
	require.Zero(t, r.len())
	for _, c := range r.columns() {
		require.Zero(t, lenOf(c.data), c.name)
	}
}

func lenOf(v any) int {
	switch s := v.(type) {
	case []string:
		return len(s)
	case []time.Time:
		return len(s)
	case []uint8:
		return len(s)
	case []uint16:
		return len(s)
	case []uint32:
		return len(s)
	case []uint64:
		return len(s)
	case [][]string:
		return len(s)
	case [][]time.Time:
		return len(s)
	case [][]uint8:
		return len(s)
	case [][]uint16:
		return len(s)
	case [][]uint32:
		return len(s)
	case [][]uint64:
		return len(s)
	}
	return -1
}

func TestKeyStateAndAuditRows(t *testing.T) {
	ms := int64(1_764_079_200_123)
	var ks keyStateRows
	ks.add(&schemas.KeyStateEvent{EventID: "s", TimeMs: ms, Kind: schemas.KindCooldown, Project: "p", Model: "m",
		QuotaExceeded: schemas.QuotaExceeded{TPM: true}, UntilMs: ms + 60000, RetryDelayMs: 60000, Status: 429})
	ks.add(&schemas.KeyStateEvent{EventID: "t", TimeMs: ms, Kind: schemas.KindDisable, KeyHash: "k", Project: "p"})
	got := columnsOf(t, ks.columns(), 0)
	require.Equal(t, map[string]any{"tpm": got["tpm_exceeded"], "rpm": got["rpm_exceeded"], "until": got["until"], "status": got["status"]},
		map[string]any{"tpm": uint8(1), "rpm": uint8(0), "until": time.UnixMilli(ms + 60000).UTC(), "status": uint16(429)})
	require.Equal(t, time.UnixMilli(0).UTC(), columnsOf(t, ks.columns(), 1)["until"], "no cool-down end: epoch")

	var au auditRows
	au.add(&schemas.AuditEvent{EventID: "a", TimeMs: ms, Action: "optimize", Params: map[string]string{"table": "request_logs", "final": "1", "partition": "20251125"}})
	got = columnsOf(t, au.columns(), 0)
	require.Equal(t, []string{"final", "partition", "table"}, got["params.key"], "params sorted by key")
	require.Equal(t, []string{"1", "20251125", "request_logs"}, got["params.value"])
}

func TestColumnNames(t *testing.T) {
	var r requestRows
	require.Equal(t, "id, timestamp, client_type", names(r.columns()[:3]))
}
