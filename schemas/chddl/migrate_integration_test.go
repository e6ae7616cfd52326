//go:build integration

package chddl_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// The migrations apply on the local server (18.16) and applying them again changes
// nothing: every migration is recorded once and every object exists once.
func TestMigrateTwice(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	opts := chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}
	require.NoError(t, chddl.Migrate(ctx, conn, opts))
	require.NoError(t, chddl.Migrate(ctx, conn, opts))

	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(t, err)
	ms, err := chddl.Render(v, opts)
	require.NoError(t, err)

	var recorded, versions uint64
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(version) FROM `%s`.schema_migrations", db)).Scan(&recorded, &versions))
	require.Equal(t, []uint64{uint64(len(ms)), uint64(len(ms))}, []uint64{recorded, versions})

	var tables []string
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT name FROM system.tables WHERE database = '%s' ORDER BY name", db))
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		"api_key_failures", "api_key_failures_mv", "api_key_metrics", "api_key_metrics_state",
		"api_key_metrics_state_mv", "audit_log", "error_logs", "error_logs_mv", "key_state_log",
		"request_logs", "schema_migrations", "system_stats", "system_stats_daily", "system_stats_daily_mv",
	}, tables)

	// The views answer on an empty database.
	for _, view := range []string{"system_stats", "api_key_metrics"} {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM `%s`.%s", db, view)).Scan(&n), view)
		require.Zero(t, n, view)
	}
}

// A migration edited after it was applied is refused: the schema changes only by new
// migrations.
func TestMigrateRefusesChangedMigration(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	opts := chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}
	require.NoError(t, chddl.Migrate(ctx, conn, opts))
	b, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO `%s`.schema_migrations (version, name, checksum, server_version, applied_at)", db))
	require.NoError(t, err)
	require.NoError(t, b.Append(uint32(1), "request_logs", "0000", "18.16.1", time.Now().Add(time.Hour)))
	require.NoError(t, b.Send())
	err = chddl.Migrate(ctx, conn, opts)
	require.ErrorContains(t, err, "migration 0001_request_logs changed after it was applied")
}
