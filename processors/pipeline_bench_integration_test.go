//go:build integration

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/processors/chsink"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// BenchmarkPipelineThroughput measures Kafka → ClickHouse: 200k request events waiting
// in 12 partitions are consumed, decoded, deduplicated and inserted (materialized views
// included) by the ClickHouse writer alone (consume.Loop + chsink.Sink, without the
// Valkey state writer `processors run` starts beside it). Run with -benchtime=1x.
//
// Metrics: events/s is wall-clock throughput, which on a shared machine says as much
// about the neighbours as about the code. proc-cpu-us/event and ch-cpu-us/event are the
// CPU the processor process and the ClickHouse server spent per event; capacity-2core
// is what two dedicated cores would sustain at those costs (Kafka's own CPU excluded).
func BenchmarkPipelineThroughput(b *testing.B) {
	cfg, conn := testConfig(b)
	if n, err := strconv.Atoi(os.Getenv("GCA_BENCH_BATCH_SIZE")); err == nil {
		cfg.BatchSize = n
	}
	w := newWorkload(b, cfg, 5, 200000)
	records := w.good
	w.produce(b, cfg)
	ctx := context.Background()
	require.NoError(b, chddl.Migrate(ctx, conn, cfg.Schema()))
	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(b, err)
	reg := prometheus.NewRegistry()
	// The writer's own connection logs its queries, so their CPU can be told apart
	// from merges and from other users of a shared server.
	logged, err := clickhouse.Open(&clickhouse.Options{
		Addr: cfg.ClickHouseAddr, Auth: clickhouse.Auth{Username: "default"},
		Settings: clickhouse.Settings{"log_queries": 1},
	})
	require.NoError(b, err)
	defer func() { _ = logged.Close() }()
	loop, err := consume.New(cfg.Consumer(cfg.ClickHouseGroup), chsink.New(logged, v, cfg.Schema(), chsink.NewMetrics(reg)),
		consume.NewMetrics(reg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(b, err)
	chPid := clickhousePid()
	b.ResetTimer()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- loop.Run(runCtx) }()
	// The group join and the migrations take a moment; time from the first row on.
	var first time.Time
	for first.IsZero() {
		var n uint64
		_ = conn.QueryRow(context.Background(), "SELECT count() FROM request_logs").Scan(&n)
		if n > 0 {
			first = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	procCPU, chCPU := selfCPU(), processCPU(chPid)
	waitCommitted(b, cfg, 5*time.Minute)
	elapsed := time.Since(first)
	procCPU, chCPU = selfCPU()-procCPU, processCPU(chPid)-chCPU
	b.StopTimer()
	cancel()
	require.NoError(b, <-done)
	require.NoError(b, loop.Close())
	n := float64(len(records))
	b.ReportMetric(n/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(procCPU.Microseconds())/n, "proc-cpu-us/event")
	if chPid > 0 {
		b.ReportMetric(float64(chCPU.Microseconds())/n, "ch-cpu-us/event")
		b.ReportMetric(2*n/(procCPU+chCPU).Seconds(), "capacity-2core-events/s")
	}
	b.Logf("%d records: %s from the first insert (%s from start)", len(records), elapsed, time.Since(start))
	require.NoError(b, conn.Exec(ctx, "SYSTEM FLUSH LOGS"))
	var queries, cpuUs uint64
	var kind string
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT splitByChar(' ', query)[1] AS kind, count(),
  sum(ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')] + ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')])
FROM system.query_log WHERE type = 2 AND event_time >= toDateTime(%d) AND query LIKE '%%%s%%' GROUP BY kind`, start.Unix(), cfg.ClickHouseDatabase))
	require.NoError(b, err)
	for rows.Next() {
		require.NoError(b, rows.Scan(&kind, &queries, &cpuUs))
		b.Logf("clickhouse %s: %d queries, %.1f cpu-us/event", kind, queries, float64(cpuUs)/n)
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clickhousePid is the local server's pid from the stack's pid file, or 0.
func clickhousePid() int {
	run := os.Getenv("GCA_RUN_DIR")
	if run == "" {
		run = filepath.Join("..", ".run")
	}
	b, err := os.ReadFile(filepath.Join(run, "pids", "clickhouse.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// processCPU is a process's user and system CPU time from /proc (clock ticks of 10ms).
func processCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
