package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Loop consumes one consumer group into one Sink.
//
// It drives kafka-go's ConsumerGroup itself rather than a group Reader, because the
// Reader gives partitions up the moment a rebalance starts, while its caller may still
// be writing a batch fetched from them: the new owner would then read the same records
// and could look them up before the old owner's insert lands, and both would insert.
// Here the work of a generation runs inside the generation (Generation.Start), and
// kafka-go does not rejoin the group — so no other member gets the partitions — until
// that work returned. When a generation ends, the batch being written finishes (within
// DrainTimeout) and is committed with the ending generation; the batch being filled is
// dropped uncommitted. The next owner starts exactly after the last written record.
type Loop struct {
	cfg  Config
	dlq  *kafka.Writer
	sink Sink
	log  *slog.Logger

	records      *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	batchEvents  prometheus.Observer
	batchSeconds prometheus.Observer
	sinkErrors   prometheus.Counter
	commitErrors prometheus.Counter
	fetchErrors  prometheus.Counter
	rebalances   prometheus.Counter
	lag          *prometheus.GaugeVec

	batches [2]Batch
	now     func() time.Time
	// generations counts the generations this loop took part in (Batch.Generation).
	generations atomic.Uint64
}

// New builds a loop; nothing connects until Run.
func New(cfg Config, sink Sink, m *Metrics, log *slog.Logger) (*Loop, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := prometheus.Labels{"group": cfg.GroupID}
	return &Loop{
		cfg: cfg,
		dlq: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Topic:        cfg.DeadLetterTopic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			// kafka-go's default 1s batch timeout would delay every dead-letter write.
			BatchTimeout: 2 * time.Millisecond,
			MaxAttempts:  3,
		},
		sink:         sink,
		log:          log.With("group", cfg.GroupID),
		records:      m.records.MustCurryWith(g),
		deadLetters:  m.deadLetters.MustCurryWith(g),
		batchEvents:  m.batchEvents.With(g),
		batchSeconds: m.batchSeconds.With(g),
		sinkErrors:   m.sinkErrors.With(g),
		commitErrors: m.commitErrors.With(g),
		fetchErrors:  m.fetchErrors.With(g),
		rebalances:   m.rebalances.With(g),
		lag:          m.lag.MustCurryWith(g),
		now:          time.Now,
	}, nil
}

// Run consumes until ctx is cancelled, then finishes the batch being written (within
// DrainTimeout), leaves the group and returns nil. It returns an error only when the
// group cannot be set up at all.
func (l *Loop) Run(ctx context.Context) error {
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    l.cfg.GroupID,
		Brokers:               l.cfg.Brokers,
		Topics:                l.cfg.Topics,
		SessionTimeout:        l.cfg.SessionTimeout,
		RebalanceTimeout:      l.cfg.SessionTimeout,
		HeartbeatInterval:     l.cfg.SessionTimeout / 5,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		StartOffset:           kafka.FirstOffset,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			l.log.Warn("kafka consumer group", "msg", fmt.Sprintf(msg, args...))
		}),
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", l.cfg.GroupID, err)
	}
	// Closing the group ends the current generation and waits for its work (the
	// batch being written) before leaving the group.
	defer func() { _ = group.Close() }()
	l.log.Info("consumer started", "topics", l.cfg.Topics, "batch_size", l.cfg.BatchSize, "batch_interval", l.cfg.BatchInterval)
	failures := 0
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
			return nil
		}
		if err != nil {
			// kafka-go backs off between attempts to join on its own.
			failures++
			l.fetchErrors.Inc()
			l.log.Warn("join consumer group", "attempt", failures, "err", err)
			continue
		}
		failures = 0
		l.rebalances.Inc()
		l.log.Info("joined group generation", "generation", gen.ID, "member", gen.MemberID, "partitions", partitionsOf(gen))
		gen.Start(func(gctx context.Context) { l.generation(ctx, gctx, gen) })
	}
}

// Close closes the dead-letter writer. Call it after Run returned.
func (l *Loop) Close() error { return l.dlq.Close() }

func partitionsOf(gen *kafka.Generation) map[string][]int {
	out := map[string][]int{}
	for topic, ps := range gen.Assignments {
		for _, p := range ps {
			out[topic] = append(out[topic], p.ID)
		}
	}
	return out
}

// generation consumes the partitions assigned in gen until the generation ends (gctx),
// then returns once the batch being written is written and committed, or abandoned
// after DrainTimeout. parent is the loop's context; writes are not cancelled by the
// generation's end, only bounded after it.
func (l *Loop) generation(parent, gctx context.Context, gen *kafka.Generation) {
	wctx, cancelWrites := context.WithCancel(context.WithoutCancel(parent))
	defer cancelWrites()
	stopFence := context.AfterFunc(gctx, func() { time.AfterFunc(l.cfg.DrainTimeout, cancelWrites) })
	defer stopFence()

	seq := l.generations.Add(1)
	// Fetching: one reader per assigned partition, fanned into msgs, cut into batches.
	fctx, stopFetch := context.WithCancel(gctx)
	msgs := make(chan kafka.Message, min(l.cfg.BatchSize, 8192))
	var readers sync.WaitGroup
	for topic, ps := range gen.Assignments {
		for _, p := range ps {
			readers.Add(1)
			go func() {
				defer readers.Done()
				l.readPartition(fctx, topic, p.ID, p.Offset, msgs)
			}()
		}
	}
	free := make(chan *Batch, 2)
	free <- &l.batches[0]
	free <- &l.batches[1]
	ready := make(chan *Batch, 1)
	var batcher sync.WaitGroup
	batcher.Add(1)
	go func() {
		defer batcher.Done()
		l.cut(fctx, seq, msgs, free, ready)
	}()
	defer func() {
		stopFetch()
		batcher.Wait()
		readers.Wait()
	}()

	for {
		var b *Batch
		select {
		case <-gctx.Done():
			return
		case b = <-ready:
		}
		if gctx.Err() != nil {
			return // the partitions are being handed over: leave this batch to their next owner
		}
		if err := l.flush(wctx, gen, b); err != nil {
			l.log.Warn("batch abandoned uncommitted; its records will be delivered again",
				"generation", gen.ID, "records", b.records, "offsets", b.Offsets, "err", err)
			return
		}
		free <- b
		if gctx.Err() != nil {
			return
		}
	}
}

// readPartition fetches one partition from offset into msgs until ctx ends.
func (l *Loop) readPartition(ctx context.Context, topic string, partition int, offset int64, msgs chan<- kafka.Message) {
	log := l.log.With("topic", topic, "partition", partition)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   l.cfg.Brokers,
		Topic:     topic,
		Partition: partition,
		// kafka-go panics when MinBytes is set without MaxBytes: set both.
		MinBytes: 1,
		MaxBytes: 16 << 20,
		// Short broker-side waits keep shutdown and partition hand-over quick.
		MaxWait:       250 * time.Millisecond,
		QueueCapacity: 1000,
		// An offset that retention already deleted is an error, not an endless retry.
		OffsetOutOfRangeError: true,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka reader", "msg", fmt.Sprintf(msg, args...))
		}),
	})
	defer func() {
		if err := r.Close(); err != nil {
			log.Warn("close partition reader", "err", err)
		}
	}()
	if offset < 0 {
		offset = kafka.FirstOffset // no commit yet
	}
	if err := r.SetOffset(offset); err != nil {
		log.Error("seek partition", "offset", offset, "err", err)
		return
	}
	failures := 0
	for {
		m, err := r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			l.fetchErrors.Inc()
			if errors.Is(err, kafka.OffsetOutOfRange) {
				// Retention deleted records this group never consumed: they are lost
				// to it. Say so loudly and go on from the oldest record kept.
				log.Error("committed offset no longer in the partition; continuing from the oldest record", "offset", offset, "err", err)
				_ = r.SetOffset(kafka.FirstOffset)
				continue
			}
			log.Warn("fetch", "err", err)
			if !sleep(ctx, backoff(failures, l.cfg.RetryMin, l.cfg.RetryMax)) {
				return
			}
			continue
		}
		failures = 0
		offset = m.Offset + 1
		select {
		case <-ctx.Done():
			return
		case msgs <- m:
		}
	}
}

// cut fills batches taken from free with records from msgs and hands them to ready:
// a batch is cut when it holds BatchSize records or BatchInterval after its first.
func (l *Loop) cut(ctx context.Context, generation uint64, msgs <-chan kafka.Message, free chan *Batch, ready chan<- *Batch) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var b *Batch
		select {
		case <-ctx.Done():
			return
		case b = <-free:
		}
		b.reset()
		b.Generation = generation
		// The first record opens the batch and starts its interval.
		select {
		case <-ctx.Done():
			return
		case m := <-msgs:
			l.add(b, &m)
		}
		timer.Reset(l.cfg.BatchInterval)
	fill:
		for b.records < l.cfg.BatchSize {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
				break fill
			case m := <-msgs:
				l.add(b, &m)
			}
		}
		timer.Stop()
		select {
		case <-ctx.Done():
			return
		case ready <- b:
		}
	}
}

// add decodes a record into b, or queues it for the dead-letter topic.
func (l *Loop) add(b *Batch, m *kafka.Message) {
	b.track(*m)
	l.records.WithLabelValues(m.Topic).Inc()
	ev, err := decode(m)
	if err != nil {
		var de *decodeError
		class := ReasonMalformed
		if errors.As(err, &de) {
			class = de.class
		}
		l.deadLetters.WithLabelValues(m.Topic, class).Inc()
		l.log.Warn("dead-lettering record", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "reason", class, "err", err)
		b.dead = append(b.dead, deadLetter(m, err, l.cfg.Consumer))
		return
	}
	o := Origin{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset,
		MaybeDuplicate: header(m, schemas.HeaderMaybeDuplicate) == "1"}
	switch e := ev.(type) {
	case *schemas.RequestEvent:
		b.Requests = append(b.Requests, e)
		b.RequestOrigins = append(b.RequestOrigins, o)
	case *schemas.KeyStateEvent:
		b.KeyStates = append(b.KeyStates, e)
		b.KeyStateOrigins = append(b.KeyStateOrigins, o)
	case *schemas.AuditEvent:
		b.Audits = append(b.Audits, e)
		b.AuditOrigins = append(b.AuditOrigins, o)
	}
}

// flush writes b's dead letters and events, retrying until they are written or ctx
// ends, then commits b's offsets with gen.
func (l *Loop) flush(ctx context.Context, gen *kafka.Generation, b *Batch) error {
	start := l.now()
	l.batchEvents.Observe(float64(b.records))
	if len(b.dead) > 0 {
		err := l.retry(ctx, b, "write dead letters", func(ctx context.Context) error {
			return l.dlq.WriteMessages(ctx, b.dead...)
		})
		if err != nil {
			return err
		}
	}
	if b.Len() > 0 {
		err := l.retry(ctx, b, "write batch", func(ctx context.Context) error {
			return l.sink.Write(ctx, b)
		})
		if err != nil {
			return err
		}
	}
	offsets := map[string]map[int]int64{}
	for _, m := range b.last {
		if offsets[m.Topic] == nil {
			offsets[m.Topic] = map[int]int64{}
		}
		offsets[m.Topic][m.Partition] = m.Offset + 1
	}
	if err := gen.CommitOffsets(offsets); err != nil {
		// The batch is written; failing to commit only means its records come again
		// and are deduplicated.
		l.commitErrors.Inc()
		l.log.Warn("commit offsets", "generation", gen.ID, "offsets", b.Offsets, "err", err)
	} else {
		for _, m := range b.last {
			l.lag.WithLabelValues(m.Topic, strconv.Itoa(m.Partition)).Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
		}
	}
	took := l.now().Sub(start)
	l.batchSeconds.Observe(took.Seconds())
	l.log.Debug("batch written", "records", b.records, "events", b.Len(), "dead_letters", len(b.dead), "took", took)
	return nil
}

// retry calls f until it succeeds or ctx ends, with capped exponential backoff.
func (l *Loop) retry(ctx context.Context, b *Batch, what string, f func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		}
		l.sinkErrors.Inc()
		wait := backoff(attempt, l.cfg.RetryMin, l.cfg.RetryMax)
		l.log.Warn(what+": retrying", "attempt", attempt, "records", b.records, "offsets", b.Offsets, "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		}
	}
}

func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
