package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/schemas"
)

// span is the records [Start, End) of one topic partition.
type span struct {
	Topic     string
	Partition int
	Start     int64
	End       int64
}

func (s span) records() int64 { return max(s.End-s.Start, 0) }

// chunk is decoded events of one partition, in offset order.
type chunk struct {
	requests  []*schemas.RequestEvent
	keyStates []*schemas.KeyStateEvent
	audits    []*schemas.AuditEvent
	records   int
	// rejected counts records the live consumers dead-letter: they are skipped here,
	// as there.
	rejected int
}

func (c *chunk) events() int { return len(c.requests) + len(c.keyStates) + len(c.audits) }

// chunkEvents bounds a chunk: big enough to amortize the channel, small enough that
// partitions interleave in a batch.
const chunkEvents = 1000

// source reads partitions directly — a Reader per partition, no consumer group, so a
// replay never moves the live consumers' offsets — and decodes with consume.Decode,
// which accepts and rejects exactly what the live consumers do.
type source struct {
	brokers []string
	log     *slog.Logger
	// read counts records read, for progress.
	read *atomic.Int64
}

// readAll reads every span concurrently into out, each partition's chunks in offset
// order, and returns when all are read (out is not closed).
func (s source) readAll(ctx context.Context, spans []span, out chan<- *chunk) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, sp := range spans {
		if sp.records() == 0 {
			continue
		}
		g.Go(func() error { return s.readSpan(gctx, sp, out) })
	}
	return g.Wait()
}

func (s source) newReader(sp span) *kafka.Reader {
	log := s.log.With("topic", sp.Topic, "partition", sp.Partition)
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:   s.brokers,
		Topic:     sp.Topic,
		Partition: sp.Partition,
		// kafka-go panics when MinBytes is set without MaxBytes: set both.
		MinBytes:      1,
		MaxBytes:      32 << 20,
		MaxWait:       250 * time.Millisecond,
		QueueCapacity: 4 * chunkEvents,
		// A start offset that retention deleted is an error, not a silent skip.
		OffsetOutOfRangeError: true,
		// The reader logs every error of its prefetching, including the cancellations
		// of closing it after the span's last record; what matters reaches FetchMessage.
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Debug("kafka reader", "msg", fmt.Sprintf(msg, args...))
		}),
	})
}

// readSpan reads one partition from Start until the record before End into chunks.
func (s source) readSpan(ctx context.Context, sp span, out chan<- *chunk) error {
	c := &chunk{}
	send := func() error {
		if c.records == 0 {
			return nil
		}
		select {
		case out <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		if s.read != nil {
			s.read.Add(int64(c.records))
		}
		c = &chunk{}
		return nil
	}
	err := s.scan(ctx, sp, func(_ int64, ev any) error {
		c.records++
		switch e := ev.(type) {
		case *schemas.RequestEvent:
			c.requests = append(c.requests, e)
		case *schemas.KeyStateEvent:
			c.keyStates = append(c.keyStates, e)
		case *schemas.AuditEvent:
			c.audits = append(c.audits, e)
		default:
			c.rejected++
		}
		if c.events() >= chunkEvents {
			return send()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return send()
}

// scan reads one partition from Start until the record before End and calls fn with
// each record's offset and event, or nil for a record the live consumers dead-letter.
func (s source) scan(ctx context.Context, sp span, fn func(offset int64, ev any) error) (err error) {
	if sp.records() == 0 {
		return nil
	}
	r := s.newReader(sp)
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close reader of %s/%d: %w", sp.Topic, sp.Partition, cerr)
		}
	}()
	if err := r.SetOffset(sp.Start); err != nil {
		return fmt.Errorf("seek %s/%d to %d: %w", sp.Topic, sp.Partition, sp.Start, err)
	}
	next := sp.Start
	for next < sp.End {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, kafka.OffsetOutOfRange) {
				return fmt.Errorf("read %s/%d from %d: records deleted by retention while reading: %w", sp.Topic, sp.Partition, next, err)
			}
			return fmt.Errorf("read %s/%d at %d: %w", sp.Topic, sp.Partition, next, err)
		}
		if m.Offset >= sp.End {
			break
		}
		next = m.Offset + 1
		ev, err := consume.Decode(&m)
		if err != nil {
			s.log.Debug("record skipped: the live consumers dead-letter it", "topic", sp.Topic, "partition", sp.Partition, "offset", m.Offset, "err", err)
			ev = nil
		}
		if err := fn(m.Offset, ev); err != nil {
			return err
		}
	}
	return nil
}

// newest returns the latest event time (ts_ms) among the last record of each span: the
// replay's clock when none is given. Events of a partition are appended roughly in time
// order, so the last records hold the newest times; taking them from fixed offsets keeps
// the clock a function of the range alone.
func (s source) newest(ctx context.Context, spans []span) (time.Time, error) {
	var newest atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, sp := range spans {
		if sp.records() == 0 {
			continue
		}
		g.Go(func() (err error) {
			r := s.newReader(sp)
			defer func() { _ = r.Close() }()
			if err := r.SetOffset(sp.End - 1); err != nil {
				return fmt.Errorf("seek %s/%d: %w", sp.Topic, sp.Partition, err)
			}
			fctx, cancel := context.WithTimeout(gctx, 30*time.Second)
			defer cancel()
			m, err := r.FetchMessage(fctx)
			if err != nil {
				return fmt.Errorf("read the last record of %s/%d: %w", sp.Topic, sp.Partition, err)
			}
			ts, ok := eventTime(&m)
			if !ok {
				return nil // a record the consumers dead-letter says nothing about the clock
			}
			for {
				cur := newest.Load()
				if ts <= cur || newest.CompareAndSwap(cur, ts) {
					return nil
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return time.Time{}, err
	}
	if newest.Load() == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(newest.Load()), nil
}

// eventTime returns the event time (ts_ms) of a record, false when the record is not an
// event the consumers accept.
func eventTime(m *kafka.Message) (int64, bool) {
	ev, err := consume.Decode(m)
	if err != nil {
		return 0, false
	}
	switch e := ev.(type) {
	case *schemas.RequestEvent:
		return e.TimeMs, true
	case *schemas.KeyStateEvent:
		return e.TimeMs, true
	case *schemas.AuditEvent:
		return e.TimeMs, true
	}
	return 0, false
}
