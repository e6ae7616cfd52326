//go:build integration

package retention_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/retention"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// On 18.16 the job drops the partitions past retention and keeps the rest; on servers
// with TTL it has nothing to do.
func TestDropExpiredPartitions(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	opts := chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 365}
	require.NoError(t, chddl.Migrate(ctx, conn, opts))
	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(t, err)
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	job := retention.New(conn, v, opts, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return now })
	if !job.Needed() {
		t.Skipf("ClickHouse %s has TTL", v)
	}

	// Requests 400 days, 40 days and 2 days before now; each fills request_logs,
	// error_logs, api_key_failures and system_stats through the views.
	for i, age := range []time.Duration{400 * 24 * time.Hour, 40 * 24 * time.Hour, 48 * time.Hour} {
		ts := now.Add(-age)
		b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO `%s`.request_logs (id, timestamp, has_error, status_code, attempts.key_hash, attempts.project, attempts.ts, attempts.failure)", db))
		require.NoError(t, err)
		require.NoError(t, b.Append(fmt.Sprintf("e%d", i), ts, uint8(1), uint16(429), []string{"k"}, []string{"p"}, []time.Time{ts}, []string{"minute_quota"}))
		require.NoError(t, b.Send())
		kb, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO `%s`.key_state_log (id, timestamp, kind, project)", db))
		require.NoError(t, err)
		require.NoError(t, kb.Append(fmt.Sprintf("s%d", i), ts, "cooldown", "p"))
		require.NoError(t, kb.Send())
	}
	dropped, err := job.Once(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		"request_logs/20250511", "request_logs/20260506",
		"error_logs/20250511", "error_logs/20260506",
		"api_key_failures/20250511", "api_key_failures/20260506",
		"key_state_log/202505", // 202605 still holds rows younger than 30 days' end
		"system_stats_daily/202505",
	}, dropped)

	for table, want := range map[string]uint64{"request_logs": 1, "error_logs": 1, "api_key_failures": 1, "key_state_log": 2, "system_stats": 2} {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM `%s`.%s", db, table)).Scan(&n))
		require.Equal(t, want, n, table)
	}
	again, err := job.Once(ctx)
	require.NoError(t, err)
	require.Empty(t, again)
}
