//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/internal/chtest"
)

// buildProcessors builds the binary under test once per test.
func buildProcessors(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "processors")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// startProcess runs the processors binary with the configuration in the environment.
func startProcess(t *testing.T, bin string, cfg *Config, logName string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "run")
	logf, err := os.Create(filepath.Join(t.TempDir(), logName))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s:\n%s", logName, b)
		}
	})
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(),
		"GCA_KAFKA_BROKERS="+cfg.KafkaBrokers[0],
		"GCA_KAFKA_SESSION_TIMEOUT=6s",
		"GCA_CLICKHOUSE_ADDR="+cfg.ClickHouseAddr[0],
		"GCA_CLICKHOUSE_DATABASE="+cfg.ClickHouseDatabase,
		"GCA_TOPIC_REQUESTS="+cfg.TopicRequests,
		"GCA_TOPIC_KEYSTATE="+cfg.TopicKeyState,
		"GCA_TOPIC_AUDIT="+cfg.TopicAudit,
		"GCA_TOPIC_DEADLETTER="+cfg.TopicDeadLetter,
		"GCA_GROUP_CLICKHOUSE="+cfg.ClickHouseGroup,
		"GCA_GROUP_VALKEY="+cfg.ValkeyGroup,
		"GCA_VALKEY_ADDR="+cfg.ValkeyAddr[0],
		"GCA_VALKEY_PREFIX="+cfg.ValkeyPrefix,
		"GCA_LISTEN_ADDR=127.0.0.1:0",
		// Small batches: several are committed before the kill, one is in flight.
		"GCA_BATCH_SIZE=1500",
		"GCA_BATCH_INTERVAL=100ms",
		"GCA_LOG_FORMAT=text",
		"GCA_INSTANCE="+logName,
	)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func countRows(t *testing.T, ctx context.Context, conn driver.Conn) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM request_logs").Scan(&n))
	return n
}

// A processor killed with SIGKILL while it writes leaves batches written but not
// committed; the next processor in the group consumes them again, and every event is
// still counted once in request_logs, system_stats and api_key_metrics. The second
// processor then stops on SIGTERM with exit code 0 and everything committed.
func TestCrashMidStreamCountsOnce(t *testing.T) {
	cfg, conn := testConfig(t)
	ctx := testenv.Context(t)
	bin := buildProcessors(t)
	w := newWorkload(t, cfg, 99, 20000)

	// Half the events before the processor starts, the rest while it runs.
	half := len(w.good) / 2
	chtest.Produce(t, cfg.KafkaBrokers, w.good[:half])
	first := startProcess(t, bin, cfg, "first.log")
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		chtest.Produce(t, cfg.KafkaBrokers, append(w.bad, w.good[half:]...))
	}()

	// Kill right after a batch became visible: with 100ms batches the next one is
	// being fetched or written, and the one just written is likely not committed yet.
	deadline := time.Now().Add(60 * time.Second)
	var before uint64
	for {
		var n uint64
		// The table appears when the processor has migrated.
		_ = conn.QueryRow(ctx, "SELECT count() FROM request_logs").Scan(&n)
		if n >= 4000 && n != before && n < uint64(len(w.reqs)) {
			require.NoError(t, first.Process.Signal(syscall.SIGKILL))
			break
		}
		before = n
		require.True(t, time.Now().Before(deadline), "the first processor wrote only %d rows in 60s", n)
		time.Sleep(5 * time.Millisecond)
	}
	_ = first.Wait()
	<-produced
	written := countRows(t, ctx, conn)
	uncommitted := chtest.Uncommitted(t, cfg.KafkaBrokers, cfg.ClickHouseGroup, cfg.TopicRequests, cfg.TopicKeyState, cfg.TopicAudit)
	total := int64(len(w.good) + len(w.bad))
	t.Logf("killed: %d request rows written, %d of %d records committed (%d written but uncommitted requests will come again at most)",
		written, total-uncommitted, total, int64(written)-(total-uncommitted))
	require.Positive(t, total-uncommitted, "some batches were committed before the kill")
	require.Positive(t, uncommitted, "the kill happened mid-stream")

	second := startProcess(t, bin, cfg, "second.log")
	waitCommitted(t, cfg, 90*time.Second)
	require.NoError(t, second.Process.Signal(syscall.SIGTERM))
	require.NoError(t, waitExit(second, 30*time.Second), "exit after SIGTERM")

	w.check(t, ctx, conn, cfg.ClickHouseDatabase)
	require.Equal(t, uint64(len(w.reqs)), countRows(t, ctx, conn), "no duplicate reached request_logs")
}

func waitExit(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		return fmt.Errorf("still running %s after SIGTERM", timeout)
	}
}
