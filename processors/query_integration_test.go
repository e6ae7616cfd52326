//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/chsink"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// `processors query` runs the named queries and `processors storage optimize
// --execute` carries out the recommendations, each recorded on the audit topic.
func TestQueryAndStorageCommands(t *testing.T) {
	testenv.RequireKafka(t)
	conn, db := testenv.ClickHouse(t)
	ctx := testenv.Context(t)
	opts := chddl.Options{Database: db, RetentionDays: 30, StatsRetentionDays: 730}
	require.NoError(t, chddl.Migrate(ctx, conn, opts))
	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(t, err)
	// Two days of January 2025: long past the 30-day retention.
	start := time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
	reqs := chtest.NewGen(11, start).Requests(400, 48*time.Hour)
	sink := chsink.New(conn, v, opts, chsink.NewMetrics(prometheus.NewRegistry()))
	require.NoError(t, sink.Write(ctx, &consume.Batch{Requests: reqs}))
	auditTopic := testenv.Topic(t, "gca_audit", 1)

	tool := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		args = append(args, "-clickhouse.addr", testenv.ClickHouseAddr(), "-clickhouse.database", db,
			"-kafka.brokers", strings.Join(testenv.KafkaBrokers(), ","), "-topic.audit", auditTopic, "-instance", "cli-test")
		err := runTool(ctx, args, func(string) string { return "" }, &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}

	out, _, err := tool("query", "list", "--format", "csv")
	require.NoError(t, err)
	require.Contains(t, out, "quota_usage,")

	// Flags may follow the query's name.
	out, _, err = tool("query", "run", "token_usage", "--param", "from=2025-01-01", "--param", "to=2025-02-01", "--format", "json")
	require.NoError(t, err)
	var doc struct {
		Data []struct {
			Requests uint64 `json:"requests"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc), out)
	var n uint64
	for _, r := range doc.Data {
		n += r.Requests
	}
	require.Equal(t, uint64(len(reqs)), n)

	_, _, err = tool("query", "run", "token_usage", "--param", "form=2025-01-01")
	require.ErrorContains(t, err, `no parameter "form"`)
	_, _, err = tool("query", "run")
	require.ErrorContains(t, err, "want 1 argument")
	out, _, err = tool("query", "sql", "quota_usage", "--param", "model=x'y")
	require.NoError(t, err)
	require.Contains(t, out, `'x\'y'`)

	// Without --execute nothing changes.
	out, stderr, err := tool("storage", "optimize", "--format", "csv", "--param", "now=2025-04-01T00:00:00Z")
	require.NoError(t, err)
	require.Contains(t, stderr, "dry run")
	require.Contains(t, out, fmt.Sprintf("drop_partition,medium,%s,request_logs,20250110,", db))
	count := func() uint64 {
		var c uint64
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM `%s`.request_logs", db)).Scan(&c))
		return c
	}
	require.Equal(t, uint64(len(reqs)), count())

	out, _, err = tool("storage", "optimize", "--execute", "--actor", "sre@example.com", "--param", "now=2025-04-01T00:00:00Z", "--format", "csv")
	require.NoError(t, err)
	require.Zero(t, count())
	lines := strings.Split(strings.TrimSpace(out), "\n")[1:]
	require.NotEmpty(t, lines)

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: testenv.KafkaBrokers(), Topic: auditTopic, Partition: 0, MaxBytes: 10 << 20})
	defer func() { _ = r.Close() }()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	targets := map[string]bool{}
	for range lines {
		m, err := r.ReadMessage(rctx)
		require.NoError(t, err)
		ev, err := schemas.DecodeAudit(m.Value)
		require.NoError(t, err)
		require.Equal(t, []string{"sre@example.com", "ok", "cli-test"}, []string{ev.Actor, ev.Result, ev.Instance})
		targets[ev.Target] = true
	}
	require.True(t, targets[db+".request_logs/20250110"], "%v", targets)
	require.True(t, targets[db+".request_logs/20250111"], "%v", targets)

	// With GCA_STORAGE_AUTO_OPTIMIZE the processors do the same on their own, every
	// retention interval, as "processors:auto-optimize@<instance>".
	more := chtest.NewGen(12, start).Requests(50, 24*time.Hour)
	require.NoError(t, sink.Write(ctx, &consume.Batch{Requests: more}))
	cfg := DefaultConfig()
	cfg.ClickHouseDatabase, cfg.KafkaBrokers, cfg.TopicAudit, cfg.Instance = db, testenv.KafkaBrokers(), auditTopic, "auto-test"
	cfg.StorageAutoOptimize = true
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		autoOptimize(actx, &cfg, conn, slog.New(slog.DiscardHandler))
	}()
	require.Eventually(t, func() bool { return count() == 0 }, 30*time.Second, 100*time.Millisecond)
	stop()
	<-done
	m, err := r.ReadMessage(rctx)
	require.NoError(t, err)
	ev, err := schemas.DecodeAudit(m.Value)
	require.NoError(t, err)
	require.Equal(t, []string{"processors:auto-optimize@auto-test", "ok"}, []string{ev.Actor, ev.Result})
}
