//go:build bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/processors/chsink"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// meteredSink times a sink: what it wrote, when, the delay of each event from its
// timestamp to the end of its batch's write, and the size of each write.
type meteredSink struct {
	inner consume.Sink

	mu          sync.Mutex
	events      int
	first, last time.Time
	lagsMs      []float64
	batchRows   []float64 // request rows per write
	inserts     int       // INSERT statements (one per table with rows in a write)
	lag         bool      // record lags (pipeline) or not (replay: its events are old)
	// withoutOrigins hands the inner sink the batches without their origins, so that
	// the ClickHouse sink looks every event up, as processors replay has it do.
	withoutOrigins bool
}

func (m *meteredSink) Write(ctx context.Context, b *consume.Batch) error {
	in := b
	if m.withoutOrigins {
		c := *b
		c.RequestOrigins, c.KeyStateOrigins, c.AuditOrigins = nil, nil, nil
		in = &c
	}
	if err := m.inner.Write(ctx, in); err != nil {
		return err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.first.IsZero() {
		m.first = now
	}
	m.last = now
	m.events += b.Len()
	if m.lag {
		nowMs := float64(now.UnixMilli())
		for _, e := range b.Requests {
			m.lagsMs = append(m.lagsMs, nowMs-float64(e.TimeMs))
		}
		for _, e := range b.KeyStates {
			m.lagsMs = append(m.lagsMs, nowMs-float64(e.TimeMs))
		}
	}
	m.batchRows = append(m.batchRows, float64(len(b.Requests)))
	for _, n := range []int{len(b.Requests), len(b.KeyStates), len(b.Audits)} {
		if n > 0 {
			m.inserts++
		}
	}
	return nil
}

func (m *meteredSink) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events, m.first, m.last, m.lagsMs, m.batchRows, m.inserts = 0, time.Time{}, time.Time{}, nil, nil, 0
}

func (m *meteredSink) written() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events
}

// sinks is a fresh destination for events: topics, a migrated ClickHouse database
// and a Valkey prefix, with one consumer loop into each, as the processors run them
// (processors/consume with its default batch cut, processors/chsink,
// processors/statesink).
type sinks struct {
	requests, keyState, deadLetter string
	db, prefix                     string
	ch, vk                         *meteredSink
	reg                            *prometheus.Registry
	conn                           driver.Conn
	chLoop, vkLoop                 *consume.Loop
	stop                           context.CancelFunc
	done                           sync.WaitGroup
	closeOnce                      sync.Once
	mu                             sync.Mutex
	errs                           [2]error
}

// newTopics creates the event topics of a run (deleted when the part ends).
func newTopics(b *bench) (requests, keyState, deadLetter string) {
	return testenv.Topic(b.t, "bench_requests", 12), testenv.Topic(b.t, "bench_keystate", 6), testenv.Topic(b.t, "bench_dlq", 1)
}

// openSinks migrates a fresh database, picks a fresh prefix and builds the loops in
// fresh consumer groups; start runs them.
func openSinks(b *bench, requests, keyState, deadLetter string, lag bool) *sinks {
	b.t.Helper()
	s := &sinks{requests: requests, keyState: keyState, deadLetter: deadLetter}
	s.db = testenv.UniqueName(b.t, "bench")
	s.prefix = testenv.UniqueName(b.t, "bench") + ":"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn := openClickHouse(b)
	s.conn = conn
	opts := chddl.Options{Database: s.db}
	mustf(b, chddl.Migrate(ctx, conn, opts), "migrate %s", s.db)
	b.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.db)
	})
	v, err := chddl.ServerVersion(ctx, conn)
	mustf(b, err, "clickhouse version")
	vk, err := newValkeyDB(testenv.ValkeyAddr(), b.vkDB)
	mustf(b, err, "valkey")
	b.t.Cleanup(vk.Close)

	reg := prometheus.NewRegistry()
	s.reg = reg
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := consume.NewMetrics(reg)
	s.ch = &meteredSink{inner: chsink.New(conn, v, opts, chsink.NewMetrics(reg)), lag: lag}
	s.vk = &meteredSink{inner: stateSink{statesink.New(vk, schemas.Keys{Prefix: s.prefix}, statesink.Options{Registerer: reg, Logger: log})}, lag: lag}
	cfg := func(group string) consume.Config {
		return consume.Config{Brokers: testenv.KafkaBrokers(), GroupID: group, Topics: []string{requests, keyState}, DeadLetterTopic: deadLetter}
	}
	s.chLoop, err = consume.New(cfg(s.db+"-ch"), s.ch, m, log)
	mustf(b, err, "clickhouse consumer")
	s.vkLoop, err = consume.New(cfg(s.db+"-vk"), s.vk, m, log)
	mustf(b, err, "valkey consumer")
	b.t.Cleanup(s.close)
	return s
}

func (s *sinks) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	for i, l := range []*consume.Loop{s.chLoop, s.vkLoop} {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			err := l.Run(ctx)
			s.mu.Lock()
			s.errs[i] = err
			s.mu.Unlock()
		}()
	}
}

// close stops the loops and leaves the groups; it may be called more than once.
func (s *sinks) close() {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.stop()
			s.done.Wait()
		}
		_ = errors.Join(s.chLoop.Close(), s.vkLoop.Close())
	})
}

// errNotCaughtUp is waitFor's answer when the sinks are still behind at the timeout.
var errNotCaughtUp = errors.New("sinks still behind")

// waitFor waits until both sinks have written n events, a loop fails, or the timeout
// passes (errNotCaughtUp).
func (s *sinks) waitFor(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if s.ch.written() >= n && s.vk.written() >= n {
			return nil
		}
		s.mu.Lock()
		err := errors.Join(s.errs[:]...)
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: clickhouse wrote %d, valkey %d of %d events: %w", timeout, s.ch.written(), s.vk.written(), n, errNotCaughtUp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openClickHouse connects the sinks. log_queries makes the server record each insert
// in system.query_log, where insertCosts reads what it cost.
func openClickHouse(b *bench) driver.Conn {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{testenv.ClickHouseAddr()}, Auth: clickhouse.Auth{Username: "default"},
		DialTimeout: 5 * time.Second, MaxOpenConns: 8,
		Settings: clickhouse.Settings{"log_queries": 1},
	})
	mustf(b, err, "open clickhouse")
	b.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// claimValkeyDB picks a Valkey database of its own for the part: parts 4 and 5 leave
// one applied mark per event and project (a day's TTL), millions of keys that a SCAN
// and UNLINK would take minutes to remove from a busy server. The part claims an empty
// database among the last ones with a marker key and empties it with FLUSHDB ASYNC
// when it ends, which frees the keys in the background.
func (b *bench) claimValkeyDB() {
	b.t.Helper()
	const marker = "gca-bench-claim"
	for db := 15; db >= 8; db-- {
		c, err := newValkeyDB(testenv.ValkeyAddr(), db)
		mustf(b, err, "valkey")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := c.Do(ctx, c.B().Dbsize().Build()).AsInt64()
		if err == nil && n == 0 {
			err = c.Do(ctx, c.B().Set().Key(marker).Value(b.part).Nx().Ex(time.Hour).Build()).Error()
		} else if err == nil {
			err = errors.New("in use")
		}
		cancel()
		if err != nil {
			c.Close()
			continue
		}
		b.vkDB = db
		b.t.Cleanup(func() {
			defer c.Close()
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.Do(ctx, c.B().Flushdb().Async().Build()).Error(); err != nil {
				b.t.Logf("empty valkey database %d: %v", db, err)
			}
			b.t.Logf("valkey database %d emptied in %s", db, time.Since(start).Round(time.Millisecond))
		})
		return
	}
	b.t.Fatalf("no empty valkey database among 8..15 for the benchmark's state")
}

// pipelineRun is one repetition of part 4.
type pipelineRun struct {
	offered                  float64 // events/s produced
	chRate, vkRate           float64 // events/s written
	chLagP99, vkLagP99       float64 // s
	chBatchMedian, chInserts float64 // request rows per write, inserts/s
	chBehind, vkBehind       int     // events not written when the catch-up window closed
	breakdown
}

// runPipeline is part 4: events produced at a steady rate while the two consumer
// groups write them, as the processors do.
func runPipeline(b *bench) {
	sz := b.sz
	mustf(b, b.layout.unpin(), "unpin")
	b.claimValkeyDB()
	var runs []pipelineRun
	for rep := range sz.Reps {
		r := pipelineOnce(b)
		b.t.Logf("rep %d: offered %.0f events/s; clickhouse %.0f events/s, lag p99 %.2f s, %.0f rows/insert, %.1f inserts/s, %d behind; valkey %.0f events/s, lag p99 %.2f s, %d behind; %s",
			rep+1, r.offered, r.chRate, r.chLagP99, r.chBatchMedian, r.chInserts, r.chBehind, r.vkRate, r.vkLagP99, r.vkBehind, r.breakdown)
		runs = append(runs, r)
	}
	col := func(f func(pipelineRun) float64) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	behind := func(f func(pipelineRun) int) string {
		k, most := 0, 0
		for _, r := range runs {
			if n := f(r); n > 0 {
				k, most = k+1, max(most, n)
			}
		}
		if k == 0 {
			return ""
		}
		return fmt.Sprintf("; in %d of %d repetitions up to %d events were still unwritten %s after production ended: their lag counts as %s, so p99 is a lower bound",
			k, len(runs), most, sz.PipelineCatchUp, sz.PipelineCatchUp)
	}
	offered := col(func(r pipelineRun) float64 { return r.offered })
	b.add(fig("Kafka → ClickHouse sustained", "events/s", col(func(r pipelineRun) float64 { return r.chRate })).
		vs("offered", offered).want(atLeast(50_000, "≥ 50k/s")).
		note("events produced at up to %d requests/s for %s with the ingress's Kafka writer (the offered rate is what the producer achieved); rate = events written / (last write − production start)", sz.PipelineRate, sz.PipelineDuration))
	b.add(fig("Kafka → ClickHouse lag p99", "s", col(func(r pipelineRun) float64 { return r.chLagP99 })).want(atMost(5, "≤ 5 s")).
		note("per event: end of the write of its batch − its timestamp (when it was produced)%s", behind(func(r pipelineRun) int { return r.chBehind })))
	b.add(fig("ClickHouse batch (request rows per insert), median", "rows", col(func(r pipelineRun) float64 { return r.chBatchMedian })))
	b.add(fig("ClickHouse inserts", "inserts/s", col(func(r pipelineRun) float64 { return r.chInserts })))
	b.add(fig("Kafka → Valkey state sustained", "events/s", col(func(r pipelineRun) float64 { return r.vkRate })).vs("offered", offered))
	b.add(fig("Kafka → Valkey state lag p99", "s", col(func(r pipelineRun) float64 { return r.vkLagP99 })).
		note("as for ClickHouse%s", behind(func(r pipelineRun) int { return r.vkBehind })))
	var ds []breakdown
	for _, r := range runs {
		ds = append(ds, r.breakdown)
	}
	breakdownRows(b, ds)
}

func pipelineOnce(b *bench) pipelineRun {
	sz := b.sz
	req, ks, dlq := newTopics(b)
	s := openSinks(b, req, ks, dlq, true)
	p := newProducer(testenv.KafkaBrokers(), req, ks)
	defer func() { _ = p.Close() }()
	g := newEventGen(uint64(time.Now().UnixNano()))
	ctx := context.Background()

	// Warm up: both groups joined and writing before the clock starts.
	s.start()
	warm, err := p.produce(ctx, g, 0, 0, 200, time.Second)
	mustf(b, err, "produce warm-up events")
	mustf(b, s.waitFor(warm.events(), 90*time.Second), "warm-up")
	s.ch.reset()
	s.vk.reset()

	start := time.Now()
	got, err := p.produce(ctx, g, sz.PipelineRate, sz.PipelineDuration, 0, 0)
	mustf(b, err, "produce")
	end := time.Now()
	n := got.events()
	if err := s.waitFor(n, sz.PipelineCatchUp); err != nil && !errors.Is(err, errNotCaughtUp) {
		b.t.Fatalf("consume: %v", err)
	}
	cutoff := time.Now()
	s.close()
	r := pipelineRun{offered: float64(n) / got.elapsed.Seconds(), breakdown: s.breakdown()}
	measure := func(m *meteredSink) (rate, lagP99 float64, behind int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		last := m.last
		if behind = max(n-m.events, 0); behind > 0 {
			// Still writing at the cutoff; the unwritten events are at least this late.
			if last.Before(cutoff) {
				last = cutoff
			}
			for range behind {
				m.lagsMs = append(m.lagsMs, float64(cutoff.Sub(end).Milliseconds()))
			}
		}
		return float64(m.events) / last.Sub(start).Seconds(), percentile(m.lagsMs, 99) / 1000, behind
	}
	r.chRate, r.chLagP99, r.chBehind = measure(s.ch)
	r.vkRate, r.vkLagP99, r.vkBehind = measure(s.vk)
	r.chBatchMedian = percentile(s.ch.batchRows, 50)
	r.chInserts = float64(s.ch.inserts) / s.ch.last.Sub(s.ch.first).Seconds()
	return r
}

// breakdown is where a sink's batches spend their time, in ms per batch (means).
type breakdown struct {
	chLookup, chInsert, chBatch float64 // request_logs dedupe lookup, request_logs insert, whole write+commit
	vkScript, vkBatch           float64 // one pipelined round of request scripts, whole write+commit
	// The server's own account of the request_logs inserts (system.query_log).
	chServerCPU, chServerWait float64
}

func (s *sinks) breakdown() breakdown {
	cpu, wait := s.insertCosts()
	return breakdown{
		chServerCPU: cpu, chServerWait: wait,
		chLookup: histMeanMs(s.reg, "gca_processor_dedupe_lookup_seconds", "table", "request_logs"),
		chInsert: histMeanMs(s.reg, "gca_processor_insert_seconds", "table", "request_logs"),
		chBatch:  histMeanMs(s.reg, "gca_processor_batch_write_seconds", "group", s.db+"-ch"),
		vkScript: histMeanMs(s.reg, "gca_processor_valkey_script_seconds", "script", "requests"),
		vkBatch:  histMeanMs(s.reg, "gca_processor_batch_write_seconds", "group", s.db+"-vk"),
	}
}

func (d breakdown) String() string {
	return fmt.Sprintf("per batch: clickhouse lookup %.0f ms + insert %.0f ms (server CPU %.0f ms, waiting for a CPU %.0f ms; write+commit %.0f ms); valkey scripts %.0f ms (write+commit %.0f ms)",
		d.chLookup, d.chInsert, d.chServerCPU, d.chServerWait, d.chBatch, d.vkScript, d.vkBatch)
}

// insertCosts reads from system.query_log what the request_logs inserts cost the
// server on average, in ms: CPU (user + system) and time runnable but waiting for a
// CPU (OSCPUWaitMicroseconds). The bench's connection sets log_queries. The query is
// written for 18.16 (ProfileEvents as two arrays); where it fails, NaN.
func (s *sinks) insertCosts() (cpu, wait float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.conn.Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		return nan(), nan()
	}
	ev := func(name string) string {
		return "ProfileEvents.Values[indexOf(ProfileEvents.Names, '" + name + "')]"
	}
	q := "SELECT toFloat64(avg(" + ev("UserTimeMicroseconds") + " + " + ev("SystemTimeMicroseconds") + ")) / 1000, toFloat64(avg(" + ev("OSCPUWaitMicroseconds") +
		")) / 1000 FROM system.query_log WHERE type = 2 AND event_date >= yesterday() AND query LIKE 'INSERT INTO `" + s.db + "`.`request_logs`%'"
	if err := s.conn.QueryRow(ctx, q).Scan(&cpu, &wait); err != nil {
		return nan(), nan()
	}
	return cpu, wait
}

// breakdownRows adds the per-batch times of the sinks, one value per repetition.
func breakdownRows(b *bench, ds []breakdown) {
	col := func(f func(breakdown) float64) []float64 {
		out := make([]float64, len(ds))
		for i, d := range ds {
			out[i] = f(d)
		}
		return out
	}
	b.add(fig("ClickHouse per batch: dedupe lookup (mean)", "ms", col(func(d breakdown) float64 { return d.chLookup })))
	b.add(fig("ClickHouse per batch: insert incl. views (mean)", "ms", col(func(d breakdown) float64 { return d.chInsert })))
	b.add(fig("ClickHouse insert: server CPU (mean)", "ms", col(func(d breakdown) float64 { return d.chServerCPU })).
		note("system.query_log of the request_logs inserts (4 materialized views fire with each): user+system CPU of the server"))
	b.add(fig("ClickHouse insert: server waiting for a CPU (mean)", "ms", col(func(d breakdown) float64 { return d.chServerWait })).
		note("OSCPUWaitMicroseconds: the insert was runnable but the machine's CPUs were busy"))
	b.add(fig("ClickHouse per batch: write + commit (mean)", "ms", col(func(d breakdown) float64 { return d.chBatch })))
	b.add(fig("Valkey per batch: script round (mean)", "ms", col(func(d breakdown) float64 { return d.vkScript })))
}
