//go:build integration

package consume_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/schemas"
)

// recorder is a sink that keeps every event id it was given, and can be told to fail or
// to block.
type recorder struct {
	mu      sync.Mutex
	seen    map[string]int
	origins map[string]consume.Origin
	gens    map[uint64]bool
	writes  int
	fail    func(write int) error
}

func (r *recorder) Write(ctx context.Context, b *consume.Batch) error {
	r.mu.Lock()
	r.writes++
	n := r.writes
	r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(n); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range b.Requests {
		r.seen[e.EventID]++
		if r.origins != nil && len(b.RequestOrigins) == len(b.Requests) {
			r.origins[e.EventID] = b.RequestOrigins[i]
		}
	}
	if r.gens != nil {
		r.gens[b.Generation] = true
	}
	return nil
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

type setup struct {
	cfg    consume.Config
	topic  string
	events []*schemas.RequestEvent
}

func newSetup(t *testing.T, n int) setup {
	t.Helper()
	testenv.RequireKafka(t)
	topic := testenv.Topic(t, "gca_loop", 6)
	dlq := testenv.Topic(t, "gca_loop_dlq", 1)
	g := chtest.NewGen(3, time.Now().Add(-time.Hour))
	events := g.Requests(n, time.Hour)
	var msgs []kafka.Message
	for _, e := range events {
		msgs = append(msgs, chtest.Record(t, topic, e, false))
	}
	chtest.Produce(t, testenv.KafkaBrokers(), msgs)
	return setup{
		cfg: consume.Config{
			Brokers: testenv.KafkaBrokers(), GroupID: testenv.UniqueName(t, "gca_loop"), Topics: []string{topic},
			DeadLetterTopic: dlq, BatchSize: 500, BatchInterval: 50 * time.Millisecond,
			RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, DrainTimeout: 300 * time.Millisecond,
			SessionTimeout: 6 * time.Second,
		},
		topic:  topic,
		events: events,
	}
}

func run(t *testing.T, cfg consume.Config, sink consume.Sink) (stop func()) {
	t.Helper()
	l, err := consume.New(cfg, sink, consume.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		require.NoError(t, l.Close())
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting: %s", what)
		time.Sleep(50 * time.Millisecond)
	}
}

// Each event comes with where it was read — partition, offset, and the producer's
// maybe-duplicate mark — and each batch with the loop's generation.
func TestBatchesSayWhereEventsCameFrom(t *testing.T) {
	testenv.RequireKafka(t)
	topic := testenv.Topic(t, "gca_origin", 3)
	dlq := testenv.Topic(t, "gca_origin_dlq", 1)
	g := chtest.NewGen(5, time.Now().Add(-time.Hour))
	events := g.Requests(300, time.Hour)
	marked := map[string]bool{}
	var msgs []kafka.Message
	for i, e := range events {
		m := chtest.Record(t, topic, e, false)
		if i%7 == 0 {
			m.Headers = append(m.Headers, kafka.Header{Key: schemas.HeaderMaybeDuplicate, Value: []byte("1")})
			marked[e.EventID] = true
		}
		msgs = append(msgs, m)
	}
	chtest.Produce(t, testenv.KafkaBrokers(), msgs)
	cfg := consume.Config{
		Brokers: testenv.KafkaBrokers(), GroupID: testenv.UniqueName(t, "gca_origin"), Topics: []string{topic},
		DeadLetterTopic: dlq, BatchSize: 50, BatchInterval: 50 * time.Millisecond,
	}
	sink := &recorder{seen: map[string]int{}, origins: map[string]consume.Origin{}, gens: map[uint64]bool{}}
	stop := run(t, cfg, sink)
	eventually(t, "all read", func() bool { return sink.distinct() == len(events) })
	stop()

	offsets := map[int]map[int64]bool{}
	for _, e := range events {
		o, ok := sink.origins[e.EventID]
		require.True(t, ok, "origin of %s", e.EventID)
		require.Equal(t, topic, o.Topic)
		require.Equal(t, marked[e.EventID], o.MaybeDuplicate, "mark of %s", e.EventID)
		if offsets[o.Partition] == nil {
			offsets[o.Partition] = map[int64]bool{}
		}
		require.False(t, offsets[o.Partition][o.Offset], "offset %d/%d given twice", o.Partition, o.Offset)
		offsets[o.Partition][o.Offset] = true
	}
	for p, got := range offsets {
		for off := range int64(len(got)) {
			require.True(t, got[off], "partition %d: offset %d missing", p, off)
		}
	}
	require.Equal(t, map[uint64]bool{1: true}, sink.gens, "one generation")
}

// While the sink fails nothing is committed; the same batch is retried and, once it is
// written, committed.
func TestCommitOnlyAfterWrite(t *testing.T) {
	s := newSetup(t, 3000)
	failing := make(chan struct{})
	var once sync.Once
	sink := &recorder{seen: map[string]int{}, fail: func(n int) error {
		if n <= 5 {
			once.Do(func() { close(failing) })
			return errors.New("clickhouse is down")
		}
		return nil
	}}
	stop := run(t, s.cfg, sink)
	<-failing
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, int64(len(s.events)), chtest.Uncommitted(t, s.cfg.Brokers, s.cfg.GroupID, s.topic), "nothing committed while the sink fails")

	eventually(t, "all committed", func() bool { return chtest.Uncommitted(t, s.cfg.Brokers, s.cfg.GroupID, s.topic) == 0 })
	stop()
	require.Equal(t, len(s.events), sink.distinct())
	for id, n := range sink.seen {
		require.Equal(t, 1, n, "event %s written once after the retries succeeded", id)
	}
}

// At shutdown a batch the sink cannot write within the drain timeout is dropped, not
// committed: a new consumer in the group gets its records again.
func TestShutdownDropsUnwrittenBatch(t *testing.T) {
	s := newSetup(t, 2000)
	writing := make(chan struct{})
	var once sync.Once
	stuck := &recorder{seen: map[string]int{}, fail: func(int) error {
		once.Do(func() { close(writing) })
		return errors.New("insert timed out")
	}}
	stop := run(t, s.cfg, stuck)
	<-writing
	stop()
	require.Equal(t, int64(len(s.events)), chtest.Uncommitted(t, s.cfg.Brokers, s.cfg.GroupID, s.topic))

	next := &recorder{seen: map[string]int{}}
	stop = run(t, s.cfg, next)
	eventually(t, "the next consumer gets every record", func() bool { return next.distinct() == len(s.events) })
	stop()
}

// Consumers joining and leaving the group mid-stream hand partitions over without
// losing a record: each event reaches a sink at least once (the sinks deduplicate the
// rest).
func TestRebalanceLosesNothing(t *testing.T) {
	s := newSetup(t, 20000)
	s.cfg.BatchSize = 200
	slow := func(int) error { time.Sleep(20 * time.Millisecond); return nil }
	a := &recorder{seen: map[string]int{}, fail: slow}
	b := &recorder{seen: map[string]int{}, fail: slow}
	stopA := run(t, s.cfg, a)
	eventually(t, "a has started", func() bool { return a.distinct() > 0 })
	stopB := run(t, s.cfg, b)
	eventually(t, "b has started", func() bool { return b.distinct() > 0 })
	stopA()
	eventually(t, "all committed", func() bool { return chtest.Uncommitted(t, s.cfg.Brokers, s.cfg.GroupID, s.topic) == 0 })
	stopB()

	union := map[string]bool{}
	dup := 0
	for _, r := range []*recorder{a, b} {
		for id, n := range r.seen {
			if union[id] {
				dup++
			}
			union[id] = true
			dup += n - 1
		}
	}
	require.Len(t, union, len(s.events), "every event reached a sink")
	t.Log(fmt.Sprintf("events written by a: %d, by b: %d, delivered more than once: %d", a.distinct(), b.distinct(), dup))
}
