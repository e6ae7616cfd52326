package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/geminicodeapi/gca/processors/chsink"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// Stats is what a replay did.
type Stats struct {
	ID string
	// Records read; Events written (records the consumers reject are Rejected).
	Records, Events             int64
	Requests, KeyStates, Audits int64
	Rejected                    int64
	Duration                    time.Duration
	// WriteTime is the time spent in the sinks (summed over batches written at once).
	WriteTime                  time.Duration
	EventsPerSecond            float64
	Clock                      time.Time
	Start, End                 Offsets
	FreshPrefix, FreshDatabase string
	LivePrefix, LiveDatabase   string
	Target                     Target
	Into                       Into
}

// Run replays the range the options describe into the target, with the sinks the live
// consumers use (consume.Decode, chsink.Sink, statesink.Writer) and a fixed clock, and
// returns when every record of the range is written.
//
// A fresh replay records its end offsets and clock beside its state (see Meta) so that
// Switch can catch up from there later. When a fresh replay fails or ctx is cancelled,
// its prefix and database are deleted (unless KeepOnAbort): nothing half-built is left
// that a switch could pick up, and nothing live was touched. An in-place replay that is
// interrupted can simply be run again.
func Run(ctx context.Context, opts Options) (Stats, error) {
	started := time.Now()
	opts.applyDefaults(started)
	if err := opts.Validate(); err != nil {
		return Stats{}, fmt.Errorf("replay options:\n%w", err)
	}
	r := &replayer{opts: opts, log: opts.Logger.With("replay", opts.ID), broker: newBroker(opts.Brokers)}
	st, err := r.run(ctx, started)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// A cancellation surfaces as whatever the write in flight saw (a closed
		// connection); say it was the cancellation.
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	if err != nil && opts.Into == IntoFresh {
		if opts.KeepOnAbort {
			return st, fmt.Errorf("%w (the fresh state is kept: remove it with `processors replay drop -id %s`)", err, opts.ID)
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if derr := Drop(dctx, opts); derr != nil {
			return st, fmt.Errorf("%w; removing the fresh state failed too (run `processors replay drop -id %s`): %w", err, opts.ID, derr)
		}
		return st, fmt.Errorf("%w (the fresh state of replay %s was removed; nothing live was changed)", err, opts.ID)
	}
	return st, err
}

type replayer struct {
	opts   Options
	log    *slog.Logger
	broker broker
}

func (r *replayer) run(ctx context.Context, started time.Time) (Stats, error) {
	o := &r.opts
	st := Stats{ID: o.ID, Target: o.Target, Into: o.Into, LivePrefix: o.LivePrefix, LiveDatabase: o.Schema.Database}
	if o.Into == IntoFresh {
		if o.Target.Has(TargetValkey) {
			st.FreshPrefix = o.FreshPrefix
		}
		if o.Target.Has(TargetClickHouse) {
			st.FreshDatabase = FreshDatabase(o.Schema.Database, o.ID)
		}
	}
	spans, start, end, err := r.resolve(ctx)
	if err != nil {
		return st, err
	}
	st.Start, st.End = start, end
	clock := o.Now
	if clock.IsZero() {
		all := append(append([]span(nil), spans[0]...), spans[1]...)
		if len(spans) > 2 {
			all = append(all, spans[2]...)
		}
		if clock, err = (source{brokers: o.Brokers, log: r.log}).newest(ctx, all); err != nil {
			return st, fmt.Errorf("take the clock from the newest event: %w", err)
		}
		// An event time ahead of the present (an ingress host's clock runs fast) must
		// not become the clock: windows still open now would be skipped as expired.
		if clock.IsZero() || clock.After(started) {
			clock = started
		}
	}
	st.Clock = clock
	r.log.Info("replay starting", "target", o.Target.String(), "into", o.Into, "clock", clock.UTC().Format(time.RFC3339Nano),
		"from", start.String(), "to", end.String(), "fresh_prefix", st.FreshPrefix, "fresh_database", st.FreshDatabase)

	sk, err := r.prepare(ctx, clock)
	if err != nil {
		return st, err
	}
	ap := applier{opts: o, log: r.log, sinks: sk}
	if err := ap.apply(ctx, "replay", spans, &st); err != nil {
		return st, err
	}
	st.Duration = time.Since(started)
	if s := st.Duration.Seconds(); s > 0 {
		st.EventsPerSecond = float64(st.Events) / s
	}
	if o.Into == IntoFresh {
		m := Meta{ID: o.ID, Target: o.Target.String(), Complete: true, ClockMs: clock.UnixMilli(),
			Started: started.UTC(), Finished: time.Now().UTC(), Topics: o.Topics, End: end,
			Records: st.Records, Events: st.Events,
			LivePrefix: o.LivePrefix, FreshPrefix: st.FreshPrefix,
			LiveDatabase: o.Schema.Database, FreshDatabase: st.FreshDatabase}
		if err := saveMeta(ctx, o, m); err != nil {
			return st, err
		}
	}
	r.log.Info("replay done", "records", st.Records, "events", st.Events, "rejected", st.Rejected,
		"took", st.Duration.Round(time.Millisecond), "writing", st.WriteTime.Round(time.Millisecond),
		"events_per_second", int64(st.EventsPerSecond))
	return st, nil
}

// resolve turns the options into spans: the request topic's, then the key-state
// topic's, then (ClickHouse only) the audit topic's.
func (r *replayer) resolve(ctx context.Context) ([][]span, Offsets, Offsets, error) {
	o := &r.opts
	topics := []string{o.Topics.Requests, o.Topics.KeyState}
	if o.Target.Has(TargetClickHouse) {
		topics = append(topics, o.Topics.Audit)
	}
	parts, err := r.broker.partitions(ctx, topics...)
	if err != nil {
		return nil, nil, nil, err
	}
	first, err := r.broker.listOffsets(ctx, parts, kafka.FirstOffset)
	if err != nil {
		return nil, nil, nil, err
	}
	hw, err := r.broker.highWatermarks(ctx, parts)
	if err != nil {
		return nil, nil, nil, err
	}
	var fromTime Offsets
	if !o.From.IsZero() {
		if fromTime, err = r.broker.listOffsets(ctx, parts, o.From.UnixMilli()); err != nil {
			return nil, nil, nil, err
		}
	}
	end := hw
	switch {
	case len(o.ToOffsets) > 0:
		end = hw.Clone()
		for t, ps := range o.ToOffsets {
			for p, off := range ps {
				end.Set(t, p, off)
			}
		}
	case o.ToCommitted:
		if end, err = r.broker.committed(ctx, o.ClickHouseGroup, parts); err != nil {
			return nil, nil, nil, fmt.Errorf("end at the committed offsets: %w", err)
		}
	case !o.To.IsZero():
		if end, err = r.broker.listOffsets(ctx, parts, o.To.UnixMilli()); err != nil {
			return nil, nil, nil, err
		}
	}
	start := Offsets{}
	var spans [][]span
	for _, t := range topics {
		var ts []span
		_, named := o.FromOffsets[t]
		for _, p := range parts[t] {
			lo, _ := first.Get(t, p)
			s := lo
			switch off, ok := o.FromOffsets.Get(t, p); {
			case ok:
				if off < lo {
					return nil, nil, nil, fmt.Errorf("from offset %d of %s/%d was deleted by retention: the first record kept is %d", off, t, p, lo)
				}
				s = off
			case t == o.Topics.KeyState && o.Target.Has(TargetValkey) && !named:
				// The state depends on the whole key-state history (see Options).
			case o.FromBeginning:
			case fromTime != nil:
				s, _ = fromTime.Get(t, p)
			}
			high, _ := hw.Get(t, p)
			e, _ := end.Get(t, p)
			e = min(e, high)
			s = min(s, e)
			start.Set(t, p, s)
			end.Set(t, p, e)
			ts = append(ts, span{Topic: t, Partition: p, Start: s, End: e})
		}
		spans = append(spans, ts)
	}
	// Keep only the topics read in the end offsets (hw may list more).
	out := Offsets{}
	for _, t := range topics {
		for _, p := range parts[t] {
			v, _ := end.Get(t, p)
			out.Set(t, p, v)
		}
	}
	return spans, start, out, nil
}

// prepare builds the sinks, creating fresh targets.
func (r *replayer) prepare(ctx context.Context, clock time.Time) (sinks, error) {
	o := &r.opts
	var sk sinks
	if o.Target.Has(TargetValkey) {
		prefix := o.LivePrefix
		if o.Into == IntoFresh {
			prefix = o.FreshPrefix
			n, err := countKeys(ctx, o.Valkey, prefix, 1)
			if err != nil {
				return sk, err
			}
			if n > 0 {
				return sk, fmt.Errorf("fresh prefix %q already holds keys: pick another -id, or remove them with `processors replay drop -id %s`", prefix, o.ID)
			}
		}
		sk.vk = stateWriter(o.Valkey, prefix, clock, r.log)
	}
	if o.Target.Has(TargetClickHouse) {
		db := o.Schema
		if o.Into == IntoFresh {
			db.Database = FreshDatabase(o.Schema.Database, o.ID)
			exists, err := databaseExists(ctx, o.ClickHouse, db.Database)
			if err != nil {
				return sk, err
			}
			if exists {
				return sk, fmt.Errorf("fresh database %s already exists: pick another -id, or remove it with `processors replay drop -id %s`", db.Database, o.ID)
			}
			if err := chddl.Migrate(ctx, o.ClickHouse, db); err != nil {
				return sk, fmt.Errorf("create fresh database %s: %w", db.Database, err)
			}
		}
		s, err := tableSink(ctx, o.ClickHouse, db)
		if err != nil {
			return sk, err
		}
		sk.ch = s
	}
	return sk, nil
}

// stateWriter is the live consumers' Valkey writer with a clock that stands still.
func stateWriter(client valkeyClient, prefix string, clock time.Time, log *slog.Logger) *statesink.Writer {
	return statesink.New(client, schemas.Keys{Prefix: prefix}, statesink.Options{
		Now:    func() time.Time { return clock },
		Logger: log,
	})
}

// tableSink is the live consumers' ClickHouse sink for the database.
func tableSink(ctx context.Context, conn chddl.Conn, db chddl.Options) (*chsink.Sink, error) {
	v, err := chddl.ServerVersion(ctx, conn)
	if err != nil {
		return nil, err
	}
	// The replay's own registry: its counters must not mix with a live process's.
	return chsink.New(conn, v, db, chsink.NewMetrics(prometheus.NewRegistry())), nil
}

// sinks are the targets of one replay phase.
type sinks struct {
	vk *statesink.Writer
	ch *chsink.Sink
}

// write writes a batch to every target at once, each retried a few times (both are
// idempotent, so a retry after a partial write only completes it).
func (s sinks) write(ctx context.Context, b *consume.Batch) error {
	g, gctx := errgroup.WithContext(ctx)
	if s.vk != nil {
		g.Go(func() error {
			return retry(gctx, "write to valkey", func(ctx context.Context) error {
				// Like the live consumer: key states first (they come in their topic's
				// order), then requests. A replay batch holds one topic.
				if err := s.vk.ApplyKeyStates(ctx, b.KeyStates); err != nil {
					return err
				}
				return s.vk.ApplyRequests(ctx, b.Requests)
			})
		})
	}
	if s.ch != nil {
		g.Go(func() error {
			return retry(gctx, "write to clickhouse", func(ctx context.Context) error { return s.ch.Write(ctx, b) })
		})
	}
	return g.Wait()
}

func retry(ctx context.Context, what string, f func(context.Context) error) error {
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil || ctx.Err() != nil || attempt == 5 {
			if err != nil {
				return fmt.Errorf("%s (attempt %d): %w", what, attempt, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// applier streams spans through the sinks, topic after topic.
type applier struct {
	opts  *Options
	log   *slog.Logger
	sinks sinks
}

// apply writes the spans (grouped by topic, applied in that order) and adds what it
// did to st.
func (a applier) apply(ctx context.Context, phase string, spans [][]span, st *Stats) error {
	var total int64
	for _, ts := range spans {
		for _, s := range ts {
			total += s.records()
		}
	}
	m := &meter{phase: phase, total: total, start: time.Now(), report: a.opts.Progress}
	mctx, stop := context.WithCancel(ctx)
	go m.run(mctx, a.opts.ProgressInterval)
	defer stop()
	for _, ts := range spans {
		if err := a.topic(ctx, ts, m, st); err != nil {
			return err
		}
	}
	stop()
	if m.report != nil {
		m.report(m.snapshot(time.Now(), true))
	}
	return nil
}

func (a applier) topic(ctx context.Context, spans []span, m *meter, st *Stats) error {
	if len(spans) == 0 {
		return nil
	}
	var read atomic.Int64
	src := source{brokers: a.opts.Brokers, log: a.log, read: &read}
	chunks := make(chan *chunk, 64)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(chunks)
		return src.readAll(gctx, spans, chunks)
	})
	// Request events into Valkey alone may be written by two batches at once: their
	// effect does not depend on order (applied marks, sums, maxima), and it keeps
	// Valkey busy while the next batch's script arguments are built. Key-state events
	// must be applied in topic order, and ClickHouse's dedupe lookup must see the
	// previous batch's insert (a record produced twice may sit in two batches), so
	// those batches are written one after another.
	inflight := 1
	if a.sinks.ch == nil && spans[0].Topic == a.opts.Topics.Requests {
		inflight = 2
	}
	var mu sync.Mutex
	writes, wctx := errgroup.WithContext(gctx)
	writes.SetLimit(inflight)
	write := func(b *consume.Batch, records, rejected int) {
		writes.Go(func() error {
			start := time.Now()
			if b.Len() > 0 {
				if err := a.sinks.write(wctx, b); err != nil {
					return err
				}
			}
			mu.Lock()
			defer mu.Unlock()
			st.WriteTime += time.Since(start)
			st.Records += int64(records)
			st.Rejected += int64(rejected)
			st.Requests += int64(len(b.Requests))
			st.KeyStates += int64(len(b.KeyStates))
			st.Audits += int64(len(b.Audits))
			st.Events += int64(b.Len())
			m.done.Add(int64(records))
			m.events.Add(int64(b.Len()))
			return nil
		})
	}
	g.Go(func() error {
		b, records, rejected := &consume.Batch{}, 0, 0
		for c := range chunks {
			b.Requests = append(b.Requests, c.requests...)
			b.KeyStates = append(b.KeyStates, c.keyStates...)
			b.Audits = append(b.Audits, c.audits...)
			records += c.records
			rejected += c.rejected
			if b.Len() >= a.opts.BatchSize {
				write(b, records, rejected)
				b, records, rejected = &consume.Batch{}, 0, 0
			}
		}
		if records > 0 && gctx.Err() == nil {
			write(b, records, rejected)
		}
		if err := writes.Wait(); err != nil {
			return err
		}
		return gctx.Err()
	})
	return g.Wait()
}
