//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// testConfig returns a configuration with the test's own topics, database and groups.
func testConfig(t testing.TB) (*Config, driver.Conn) {
	t.Helper()
	testenv.RequireKafka(t)
	conn, db := testenv.ClickHouse(t)
	cfg := DefaultConfig()
	cfg.KafkaBrokers = testenv.KafkaBrokers()
	cfg.ClickHouseAddr = []string{testenv.ClickHouseAddr()}
	cfg.ClickHouseDatabase = db
	cfg.TopicRequests = testenv.Topic(t, "gca_requests", 12)
	cfg.TopicKeyState = testenv.Topic(t, "gca_keystate", 6)
	cfg.TopicAudit = testenv.Topic(t, "gca_audit", 1)
	cfg.TopicDeadLetter = testenv.Topic(t, "gca_deadletter", 3)
	cfg.ClickHouseGroup = testenv.UniqueName(t, "gca_clickhouse")
	cfg.ValkeyGroup = testenv.UniqueName(t, "gca_valkey")
	cfg.ValkeyAddr = []string{testenv.ValkeyAddr()}
	_, cfg.ValkeyPrefix = testenv.Valkey(t) // the state writer runs beside; keep its keys apart
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.KafkaSessionTimeout = 6 * time.Second
	cfg.Instance = "test"
	require.NoError(t, cfg.Validate())
	return &cfg, conn
}

// workload is a generated set of events and the records that carry them, plus records
// that must be dead-lettered.
type workload struct {
	reqs   []*schemas.RequestEvent
	states []*schemas.KeyStateEvent
	audits []*schemas.AuditEvent
	good   []kafka.Message
	bad    []kafka.Message
}

func newWorkload(t testing.TB, cfg *Config, seed uint64, requests int) *workload {
	start := time.Now().UTC().Add(-30 * time.Hour)
	g := chtest.NewGen(seed, start)
	w := &workload{
		reqs:   g.Requests(requests, 30*time.Hour),
		states: g.KeyStates(requests/200, 30*time.Hour),
		audits: g.Audits(20, 30*time.Hour),
	}
	for i, e := range w.reqs {
		w.good = append(w.good, chtest.Record(t, cfg.TopicRequests, e, i%97 == 0))
	}
	for i, e := range w.states {
		w.good = append(w.good, chtest.Record(t, cfg.TopicKeyState, e, i%7 == 0))
	}
	for _, e := range w.audits {
		w.good = append(w.good, chtest.Record(t, cfg.TopicAudit, e, false))
	}
	invalid := *w.reqs[0]
	invalid.EventID, invalid.Status = "bad-1", 700
	invalidRec := chtest.Record(t, cfg.TopicRequests, &invalid, false)
	w.bad = []kafka.Message{
		{Topic: cfg.TopicRequests, Key: []byte("k"), Value: []byte(`{"type":"request","v":1,"event_id":`),
			Headers: []kafka.Header{{Key: schemas.HeaderEventType, Value: []byte("request")}}},
		invalidRec,
		{Topic: cfg.TopicKeyState, Key: []byte("p"), Value: []byte(`{"type":"mystery","v":1}`)},
	}
	return w
}

// produce writes the workload with the bad records in the middle of it.
func (w *workload) produce(t testing.TB, cfg *Config) {
	half := len(w.good) / 2
	msgs := append(append(append([]kafka.Message{}, w.good[:half]...), w.bad...), w.good[half:]...)
	chtest.Produce(t, cfg.KafkaBrokers, msgs)
}

// check compares everything ClickHouse derived with what the events say.
func (w *workload) check(t *testing.T, ctx context.Context, conn driver.Conn, db string) {
	t.Helper()
	v, err := chddl.ServerVersion(ctx, conn)
	require.NoError(t, err)
	prec := chtest.Milliseconds
	if !v.Modern() {
		prec = chtest.Seconds
	}
	final, distinct, _, err := chtest.CountRequests(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, []uint64{uint64(len(w.reqs)), uint64(len(w.reqs))}, []uint64{final, distinct}, "request_logs FINAL and uniqExact(id)")
	stats, err := chtest.ReadSystemStats(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectSystemStats(w.reqs, prec), stats)
	keys, err := chtest.ReadKeyMetrics(ctx, conn, db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectKeyMetrics(w.reqs, w.states, prec), keys)
	var states, audits uint64
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT count() FROM `%[1]s`.key_state_log FINAL), (SELECT count() FROM `%[1]s`.audit_log FINAL)", db)).Scan(&states, &audits))
	require.Equal(t, []uint64{uint64(len(w.states)), uint64(len(w.audits))}, []uint64{states, audits})
}

// startServe runs the processors in-process until the returned stop is called.
// Its log is printed when the test fails; GCA_TEST_LOG=<file> also appends it, at debug
// level (every batch with its size and write time), to a file.
func startServe(t testing.TB, cfg *Config, conn driver.Conn) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	level := slog.LevelInfo
	var out io.Writer = &logs
	if path := os.Getenv("GCA_TEST_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		t.Cleanup(func() { _ = f.Close() })
		out, level = io.MultiWriter(&logs, f), slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, conn, log) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			if t.Failed() {
				t.Logf("processor log:\n%s", logs.String())
			}
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("serve did not return 30s after cancel")
		}
	}
}

// waitCommitted waits until the group has committed every record of the topics.
func waitCommitted(t testing.TB, cfg *Config, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lag := chtest.Uncommitted(t, cfg.KafkaBrokers, cfg.ClickHouseGroup, cfg.TopicRequests, cfg.TopicKeyState, cfg.TopicAudit)
		if lag == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s still has %d uncommitted records after %s", cfg.ClickHouseGroup, lag, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// 50k request events across 12 partitions land as exactly 50k rows, the rollups match
// what the events say, bad records go to the dead-letter topic, and consuming the same
// records again (offsets reset to the start) changes nothing.
func TestPipelineCountsEveryEventOnce(t *testing.T) {
	cfg, conn := testConfig(t)
	ctx := testenv.Context(t)
	w := newWorkload(t, cfg, 42, 50000)
	w.produce(t, cfg)

	start := time.Now()
	stop := startServe(t, cfg, conn)
	waitCommitted(t, cfg, 90*time.Second)
	t.Logf("first pass: %d records in %s", len(w.good)+len(w.bad), time.Since(start))
	require.NoError(t, stop())
	w.check(t, ctx, conn, cfg.ClickHouseDatabase)

	// The Valkey state writer runs in the same process and dead-letters the same
	// records from its own group: look at the ClickHouse writer's.
	byValue := map[string]kafka.Message{}
	for _, m := range chtest.ReadAll(t, cfg.KafkaBrokers, cfg.TopicDeadLetter, 6) {
		if headers(m)[schemas.HeaderDLQConsumer] == cfg.ClickHouseGroup+"@test" {
			require.NotContains(t, byValue, string(m.Value), "one dead letter per bad record")
			byValue[string(m.Value)] = m
		}
	}
	require.Len(t, byValue, 3)
	for _, bad := range w.bad {
		m, ok := byValue[string(bad.Value)]
		require.True(t, ok, "dead letter for %s", bad.Value)
		h := headers(m)
		require.NotEmpty(t, h[schemas.HeaderDLQReason])
		require.Equal(t, bad.Topic, h[schemas.HeaderDLQTopic])
		require.Equal(t, cfg.ClickHouseGroup+"@test", h[schemas.HeaderDLQConsumer])
		require.NotEmpty(t, h[schemas.HeaderDLQPartition])
		_, err := strconv.ParseInt(h[schemas.HeaderDLQOffset], 10, 64)
		require.NoError(t, err)
		require.Equal(t, string(bad.Key), string(m.Key))
	}
	require.Contains(t, headers(byValue[string(w.bad[1].Value)])[schemas.HeaderDLQReason], "status 700 out of range")
	require.Contains(t, headers(byValue[string(w.bad[2].Value)])[schemas.HeaderDLQReason], `unknown event type "mystery"`)

	// Redelivery of everything: the group starts again from offset 0.
	chtest.ResetGroup(t, cfg.KafkaBrokers, cfg.ClickHouseGroup, cfg.TopicRequests, cfg.TopicKeyState, cfg.TopicAudit)
	start = time.Now()
	stop = startServe(t, cfg, conn)
	waitCommitted(t, cfg, 90*time.Second)
	t.Logf("second pass (all duplicates): %s", time.Since(start))
	require.NoError(t, stop())
	w.check(t, ctx, conn, cfg.ClickHouseDatabase)
	var raw uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM request_logs").Scan(&raw))
	require.Equal(t, uint64(len(w.reqs)), raw, "no duplicate reached request_logs, merged or not")
}

func headers(m kafka.Message) map[string]string {
	out := map[string]string{}
	for _, h := range m.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Two processors share the partitions; one joins mid-stream and the other leaves
// mid-stream. Records move between them with batches in flight, and still every event
// is counted once in request_logs and the rollups.
func TestRebalanceCountsOnce(t *testing.T) {
	cfg, conn := testConfig(t)
	ctx := testenv.Context(t)
	cfg.BatchSize = 1000
	w := newWorkload(t, cfg, 7, 20000)
	half := len(w.good) / 2
	chtest.Produce(t, cfg.KafkaBrokers, w.good[:half])

	rows := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM request_logs").Scan(&n)
		return n
	}
	waitRows := func(n uint64) {
		deadline := time.Now().Add(60 * time.Second)
		for rows() < n {
			require.True(t, time.Now().Before(deadline), "fewer than %d rows after 60s", n)
			time.Sleep(20 * time.Millisecond)
		}
	}
	a := *cfg
	a.Instance = "a"
	stopA := startServe(t, &a, conn)
	waitRows(3000)
	b := *cfg
	b.Instance = "b"
	stopB := startServe(t, &b, conn)
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		chtest.Produce(t, cfg.KafkaBrokers, append(w.bad, w.good[half:]...))
	}()
	waitRows(9000)
	require.NoError(t, stopA())
	<-produced
	waitCommitted(t, cfg, 90*time.Second)
	require.NoError(t, stopB())
	w.check(t, ctx, conn, cfg.ClickHouseDatabase)
}
