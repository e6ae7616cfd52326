// Package publish hands the ingress's events to Kafka without putting Kafka on the
// request's path. Publish appends the encoded event to the write-ahead spool (a write
// to the page cache, microseconds) and returns; a shipper goroutine reads the spool in
// order, writes batches to Kafka with RequiredAcks=all, and acknowledges the spool only
// after the broker has. While Kafka is unreachable the shipper retries the same batch
// with backoff and the spool grows, bounded by its MaxBytes; when the broker returns
// the backlog drains in order.
//
// Delivery guarantee: at least once. An event is lost only if the disk is lost, or when
// the spool is full and the full policy is PolicyDrop, which counts and logs every
// dropped event. Duplicates (a batch retried after a partial write, a restart before the
// spool cursor was saved) are removed downstream by event_id.
//
// With PolicyReject (the default) the ingress asks Admit before it serves a request.
// Admission closes while the spool is within its reserve (Options.AdmitReserve) of
// MaxBytes, so the requests already admitted still find room for their events; only
// more requests in flight than the reserve holds could overrun it, and each event that
// then does not fit is counted and logged like a dropped one.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/ingress/spool"
	"github.com/geminicodeapi/gca/schemas"
)

// FullPolicy says what happens when the spool is full.
type FullPolicy string

const (
	// PolicyReject (the default) makes the ingress refuse new requests with 503 while
	// the spool is full (Admit), so nothing it serves goes unrecorded.
	PolicyReject FullPolicy = "reject"
	// PolicyDrop keeps serving and drops the events that do not fit, counting each in
	// gca_ingress_events_dropped_total and logging it.
	PolicyDrop FullPolicy = "drop"
)

// MessageWriter is the part of kafka.Writer the shipper uses.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Options configure a Publisher.
type Options struct {
	// Topics maps the schemas topic names the callers publish to onto the topics
	// actually written (tests and side-by-side deployments rename them). Unmapped
	// names are written as they are.
	Topics map[string]string
	Policy FullPolicy
	// AdmitReserve is the room kept free for the events of requests already admitted:
	// with PolicyReject, Admit refuses new requests once fewer than this many bytes are
	// left. Default 1/16 of the spool's MaxBytes.
	AdmitReserve int64
	BatchRecords int           // records per Kafka write; default 2000
	BatchBytes   int           // value bytes per Kafka write; default 4 MiB
	BackoffMin   time.Duration // default 100ms
	BackoffMax   time.Duration // default 5s
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

type metrics struct {
	published   *prometheus.CounterVec
	dropped     prometheus.Counter
	rejected    prometheus.Counter
	shipped     prometheus.Counter
	shipErrors  prometheus.Counter
	resent      prometheus.Counter
	shipSeconds prometheus.Histogram
	spoolBytes  prometheus.GaugeFunc
	full        prometheus.GaugeFunc
}

// Publisher appends events to the spool and ships them to Kafka.
type Publisher struct {
	spool *spool.Spool
	w     MessageWriter
	opts  Options
	log   *slog.Logger
	m     metrics

	full        atomic.Bool
	lastFullLog atomic.Int64
	shipping    atomic.Bool
	idle        chan struct{}
}

// New returns a Publisher over an open spool and a Kafka writer.
func New(sp *spool.Spool, w MessageWriter, opts Options) *Publisher {
	if opts.Policy == "" {
		opts.Policy = PolicyReject
	}
	if opts.AdmitReserve <= 0 {
		opts.AdmitReserve = sp.MaxBytes() / 16
	}
	if opts.BatchRecords <= 0 {
		opts.BatchRecords = 2000
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	p := &Publisher{spool: sp, w: w, opts: opts, log: opts.Logger.With("component", "publisher"), idle: make(chan struct{}, 1)}
	f := promauto.With(opts.Registerer)
	p.m = metrics{
		published:   f.NewCounterVec(prometheus.CounterOpts{Name: "gca_ingress_events_published_total", Help: "Events appended to the spool, by topic."}, []string{"topic"}),
		dropped:     f.NewCounter(prometheus.CounterOpts{Name: "gca_ingress_events_dropped_total", Help: "Events not recorded because the spool was full (policy drop; with policy reject only when more requests were in flight than the admission reserve holds)."}),
		rejected:    f.NewCounter(prometheus.CounterOpts{Name: "gca_ingress_spool_full_rejections_total", Help: "Requests refused with 503 because the spool was full (policy reject)."}),
		shipped:     f.NewCounter(prometheus.CounterOpts{Name: "gca_ingress_events_shipped_total", Help: "Events acknowledged by Kafka."}),
		shipErrors:  f.NewCounter(prometheus.CounterOpts{Name: "gca_ingress_ship_errors_total", Help: "Failed Kafka writes (each retried)."}),
		resent:      f.NewCounter(prometheus.CounterOpts{Name: "gca_ingress_events_resent_total", Help: "Records sent to Kafka marked as possibly sent before (after a failed write, or spooled by an earlier process): consumers check them for an earlier copy."}),
		shipSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "gca_ingress_ship_seconds", Help: "Duration of successful Kafka batch writes.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	p.m.spoolBytes = f.NewGaugeFunc(prometheus.GaugeOpts{Name: "gca_ingress_spool_bytes", Help: "Bytes in the spool not yet acknowledged by Kafka."}, func() float64 { return float64(sp.Pending()) })
	p.m.full = f.NewGaugeFunc(prometheus.GaugeOpts{Name: "gca_ingress_spool_full", Help: "1 while the spool is full (with policy reject: while new requests are refused)."}, func() float64 {
		if p.Full() {
			return 1
		}
		return 0
	})
	return p
}

// ErrSpoolFull is returned by Publish when the event could not be recorded.
var ErrSpoolFull = errors.New("event spool full")

// Full reports whether the last append found the spool full and nothing has been
// shipped since, or, with PolicyReject, whether the spool is within its admission
// reserve. With PolicyReject the ingress refuses requests while it is true.
func (p *Publisher) Full() bool {
	if p.full.Load() {
		return true
	}
	return p.opts.Policy == PolicyReject && p.spool.Pending() > p.spool.MaxBytes()-p.opts.AdmitReserve
}

// Admit is asked before a request is served. With PolicyReject it returns ErrSpoolFull
// (counted in gca_ingress_spool_full_rejections_total and logged) while the spool is
// full, so the caller refuses the request rather than serve it unrecorded; with
// PolicyDrop it always returns nil.
func (p *Publisher) Admit() error {
	if p.opts.Policy != PolicyReject || !p.Full() {
		return nil
	}
	p.m.rejected.Inc()
	p.logFull("", "new requests refused with 503 until Kafka drains the spool")
	return ErrSpoolFull
}

// Policy returns the configured full policy.
func (p *Publisher) Policy() FullPolicy { return p.opts.Policy }

// Event is what the ingress publishes: one of the schemas event types.
type Event interface {
	RecordKey() string
}

// Publish encodes the event and appends it to the spool.
func (p *Publisher) Publish(topic string, e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event for %s: %w", topic, err)
	}
	return p.PublishRaw(topic, []byte(e.RecordKey()), b)
}

// PublishRaw appends an already encoded event.
func (p *Publisher) PublishRaw(topic string, key, value []byte) error {
	if t, ok := p.opts.Topics[topic]; ok {
		topic = t
	}
	err := p.spool.Append(topic, key, value)
	switch {
	case err == nil:
		p.m.published.WithLabelValues(topic).Inc()
		return nil
	case errors.Is(err, spool.ErrFull):
		// The event is lost whatever the policy: with PolicyReject this is an admitted
		// request whose event did not fit in the reserve.
		p.full.Store(true)
		p.m.dropped.Inc()
		p.logFull(topic, "event dropped (counted in gca_ingress_events_dropped_total)")
		return ErrSpoolFull
	default:
		return fmt.Errorf("spool event for %s: %w", topic, err)
	}
}

// logFull logs at most once per second so a full spool cannot flood the log.
func (p *Publisher) logFull(topic, consequence string) {
	now := time.Now().UnixNano()
	last := p.lastFullLog.Load()
	if now-last < int64(time.Second) || !p.lastFullLog.CompareAndSwap(last, now) {
		return
	}
	p.log.Error("event spool full", "consequence", consequence, "topic", topic, "policy", string(p.opts.Policy),
		"spool_bytes", p.spool.Pending(), "spool_max_bytes", p.spool.MaxBytes())
}

// eventHeaders lets consumers route a record without decoding it. topic is the
// schemas name of the record's topic.
func eventHeaders(topic string) []kafka.Header {
	var typ string
	var v int
	switch topic {
	case schemas.TopicRequests:
		typ, v = schemas.TypeRequest, schemas.RequestVersion
	case schemas.TopicKeyState:
		typ, v = schemas.TypeKeyState, schemas.KeyStateVersion
	case schemas.TopicAudit:
		typ, v = schemas.TypeAudit, schemas.AuditVersion
	default:
		return nil
	}
	return []kafka.Header{
		{Key: schemas.HeaderEventType, Value: []byte(typ)},
		{Key: schemas.HeaderEventVersion, Value: []byte(strconv.Itoa(v))},
	}
}

// logical returns the schemas name of a written topic.
func (p *Publisher) logical(topic string) string {
	for l, t := range p.opts.Topics {
		if t == topic {
			return l
		}
	}
	return topic
}

// Run ships the spool to Kafka until ctx is cancelled. It returns nil on cancellation.
func (p *Publisher) Run(ctx context.Context) error {
	pos := p.spool.Start()
	recovered := p.spool.Recovered()
	for {
		recs, err := p.spool.Read(pos, p.opts.BatchRecords, p.opts.BatchBytes)
		if err != nil {
			// A corrupt record cannot be shipped and must not block the rest forever:
			// it is reported loudly and the shipper stops, leaving the spool intact
			// for an operator (the ingress's readiness turns red).
			return fmt.Errorf("read spool at %d/%d: %w", pos.Segment, pos.Offset, err)
		}
		if len(recs) == 0 {
			p.shipping.Store(false)
			select {
			case p.idle <- struct{}{}:
			default:
			}
			select {
			case <-ctx.Done():
				return nil
			case <-p.spool.Notify():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		p.shipping.Store(true)
		msgs := make([]kafka.Message, len(recs))
		for i, r := range recs {
			msgs[i] = kafka.Message{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: eventHeaders(p.logical(r.Topic))}
			if !r.Next.After(recovered) {
				// An earlier process spooled it and may have shipped it.
				p.markResent(&msgs[i])
			}
		}
		start := time.Now()
		if !p.send(ctx, msgs) {
			return nil
		}
		p.m.shipSeconds.Observe(time.Since(start).Seconds())
		p.m.shipped.Add(float64(len(msgs)))
		pos = recs[len(recs)-1].Next
		if err := p.spool.Ack(pos); err != nil {
			p.log.Error("acknowledge spool", "err", err)
		}
		p.full.Store(false)
	}
}

// send writes msgs to Kafka, retrying with backoff until every one is acknowledged;
// false when ctx ended first. A retry sends only the records the failed write did not
// deliver (kafka-go says which, per record), marked: the broker may have appended them
// anyway.
func (p *Publisher) send(ctx context.Context, msgs []kafka.Message) bool {
	backoff := p.opts.BackoffMin
	for {
		err := p.w.WriteMessages(ctx, msgs...)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.m.shipErrors.Inc()
		p.log.Warn("ship events to kafka", "records", len(msgs), "err", err, "retry_in", backoff)
		var failed kafka.WriteErrors
		if errors.As(err, &failed) && len(failed) == len(msgs) {
			var again []kafka.Message
			for i, e := range failed {
				if e != nil {
					again = append(again, msgs[i])
				}
			}
			msgs = again
		}
		for i := range msgs {
			p.markResent(&msgs[i])
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, p.opts.BackoffMax)
	}
}

// markResent marks m as possibly in Kafka already: the consumers look for a copy.
func (p *Publisher) markResent(m *kafka.Message) {
	for _, h := range m.Headers {
		if h.Key == schemas.HeaderMaybeDuplicate {
			return
		}
	}
	m.Headers = append(m.Headers, kafka.Header{Key: schemas.HeaderMaybeDuplicate, Value: []byte("1")})
	p.m.resent.Inc()
}

// Flush waits until the spool is empty (every event acknowledged by Kafka) or ctx ends.
// Run must be running. Shutdown calls it with a deadline before closing.
func (p *Publisher) Flush(ctx context.Context) error {
	for p.spool.Pending() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush events: %d bytes not shipped: %w", p.spool.Pending(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Pending returns the bytes not yet acknowledged by Kafka.
func (p *Publisher) Pending() int64 { return p.spool.Pending() }

// NewKafkaWriter returns the producer the shipper uses: all in-sync replicas must
// acknowledge, records are partitioned by key hash, and small batches go out after
// 2 ms instead of kafka-go's default 1 s.
func NewKafkaWriter(brokers []string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1000,
		BatchBytes:   8 << 20,
		BatchTimeout: 2 * time.Millisecond,
		// The shipper retries forever with its own backoff, sending again only what a
		// write did not deliver and marking it (schemas.HeaderMaybeDuplicate); a retry
		// inside the writer could append a record twice unmarked.
		MaxAttempts:  1,
		WriteTimeout: 10 * time.Second,
		ReadTimeout:  10 * time.Second,
		Compression:  kafka.Snappy,
	}
}
