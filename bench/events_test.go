//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/ingress/publish"
	"github.com/geminicodeapi/gca/schemas"
)

// eventGen makes events shaped like the ingress's: a pool of 24 keys in 9 projects,
// four models, three client protocols; most requests succeed on the first key, some
// fail over after a minute-quota 429 (and then a cool-down key-state event follows),
// a few end in a 503.
type eventGen struct {
	rng    *rand.Rand
	keys   []genKey
	models []string
	token  string
	n      int
}

type genKey struct{ hash, project string }

func newEventGen(seed uint64) *eventGen {
	g := &eventGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), token: schemas.HashToken("bench-token")}
	for i := range 24 {
		g.keys = append(g.keys, genKey{schemas.HashKey(fmt.Sprintf("AIzaSyBench-%d-%d", seed, i)), fmt.Sprintf("bench-p%d", i%9)})
	}
	g.models = []string{"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash"}
	return g
}

// genRecord is an encoded event and the schemas topic it belongs to.
type genRecord struct {
	topic string // schemas.TopicRequests or schemas.TopicKeyState
	key   string
	value []byte
}

// next returns the records of one client request at ts: its request event and,
// after a 429, the cool-down it caused.
func (g *eventGen) next(ts time.Time) ([]genRecord, error) {
	g.n++
	id, err := schemas.NewEventID()
	if err != nil {
		return nil, err
	}
	ms := ts.UnixMilli()
	k := g.keys[g.rng.IntN(len(g.keys))]
	model := g.models[g.rng.IntN(len(g.models))]
	client, endpoint, original := schemas.ClientGemini, "/v1beta/models/{model}:generateContent", model
	switch g.rng.IntN(10) {
	case 0, 1, 2, 3:
		client, endpoint, original = schemas.ClientOpenAI, "/v1/chat/completions", "gpt-4o-mini"
	case 4, 5:
		client, endpoint, original = schemas.ClientClaude, "/v1/messages", "claude-sonnet-4"
	}
	prompt := 20 + g.rng.Int64N(4000)
	usage := schemas.Usage{Prompt: prompt, Candidates: 1 + g.rng.Int64N(1500)}
	if model != "gemini-2.0-flash" {
		usage.Thoughts = g.rng.Int64N(600)
	}
	usage.Total = usage.Prompt + usage.Candidates + usage.Thoughts
	lat := 200 + g.rng.Int64N(6000)
	e := &schemas.RequestEvent{
		Type: schemas.TypeRequest, V: schemas.RequestVersion, EventID: id, TimeMs: ms,
		Instance: "bench-ingress-" + strconv.Itoa(g.n%2), RequestID: "req-" + id[24:],
		ClientType: client, ClientIP: fmt.Sprintf("10.0.%d.%d", g.rng.IntN(4), g.rng.IntN(250)),
		UserAgent: "bench/1.0", Method: "POST", Endpoint: endpoint, TokenHash: g.token,
		KeyHash: k.hash, Project: k.project, Model: model, OriginalModel: original, Stream: g.rng.IntN(10) < 4,
		Status: 200, LatencyMs: lat, TTFBMs: lat / 3, RequestBytes: 200 + prompt*4, ResponseBytes: 300 + usage.Candidates*4,
		Usage: usage, EstimatedInputTokens: prompt,
	}
	ok := schemas.Attempt{KeyHash: k.hash, Project: k.project, TimeMs: ms + 1, Status: 200, LatencyMs: lat,
		InputTokens: prompt, Counted: true, Reservation: "r-" + id[24:]}
	var out []genRecord
	switch roll := g.rng.IntN(100); {
	case roll < 5: // a minute-quota 429 on another project's key, then success
		other := g.keys[(g.rng.IntN(len(g.keys)-1)+1+indexOf(g.keys, k))%len(g.keys)]
		e.Attempts = []schemas.Attempt{{KeyHash: other.hash, Project: other.project, TimeMs: ms + 1, Status: 429,
			Failure: "minute_quota", LatencyMs: 40, InputTokens: prompt, RetryAfterMs: 20_000}, ok}
		cid, err := schemas.NewEventID()
		if err != nil {
			return nil, err
		}
		ks := &schemas.KeyStateEvent{Type: schemas.TypeKeyState, V: schemas.KeyStateVersion, EventID: cid, TimeMs: ms + 1,
			Instance: e.Instance, Kind: schemas.KindCooldown, KeyHash: other.hash, Project: other.project, Model: model,
			Reason: schemas.ReasonRPM, Source: schemas.SourceUpstream, QuotaExceeded: schemas.QuotaExceeded{RPM: true},
			QuotaID: "GenerateRequestsPerMinutePerProjectPerModel", UntilMs: ms + 20_000, RetryDelayMs: 20_000,
			RequestID: e.RequestID, Status: 429}
		b, err := json.Marshal(ks)
		if err != nil {
			return nil, err
		}
		out = append(out, genRecord{schemas.TopicKeyState, ks.RecordKey(), b})
	case roll < 6: // overloaded everywhere
		e.Status, e.ErrorType, e.ErrorMessage = 503, schemas.ErrUpstream, "The model is overloaded. Please try again later."
		e.Usage = schemas.Usage{}
		e.Attempts = []schemas.Attempt{{KeyHash: k.hash, Project: k.project, TimeMs: ms + 1, Status: 503, Failure: "upstream", LatencyMs: 900, InputTokens: prompt}}
	default:
		e.Attempts = []schemas.Attempt{ok}
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append([]genRecord{{schemas.TopicRequests, e.RecordKey(), b}}, out...), nil
}

func indexOf(keys []genKey, k genKey) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return 0
}

// producer writes generated records with the ingress's own Kafka writer settings
// (publish.NewKafkaWriter: acks=all, snappy, 2 ms batches) and the ingress's headers.
// The ingress's shipper retries failed writes itself, sending again only what was not
// delivered; this load generator lets kafka-go retry instead (per partition, as the
// shipper does), so that a fresh topic's first writes do not duplicate records.
type producer struct {
	w      *kafka.Writer
	topics map[string]string // schemas topic → actual topic
}

func newProducer(brokers []string, requests, keyState string) *producer {
	w := publish.NewKafkaWriter(brokers)
	w.MaxAttempts = 10
	return &producer{w: w, topics: map[string]string{schemas.TopicRequests: requests, schemas.TopicKeyState: keyState}}
}

func (p *producer) messages(recs []genRecord) []kafka.Message {
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		typ := schemas.TypeRequest
		if r.topic == schemas.TopicKeyState {
			typ = schemas.TypeKeyState
		}
		msgs[i] = kafka.Message{Topic: p.topics[r.topic], Key: []byte(r.key), Value: r.value, Headers: []kafka.Header{
			{Key: schemas.HeaderEventType, Value: []byte(typ)}, {Key: schemas.HeaderEventVersion, Value: []byte("1")}}}
	}
	return msgs
}

// write sends records, retrying while a new topic is still unknown to the writer.
func (p *producer) write(ctx context.Context, recs []genRecord) error {
	msgs := p.messages(recs)
	for attempt := 0; ; attempt++ {
		err := p.w.WriteMessages(ctx, msgs...)
		if err == nil || attempt == 40 || !errors.Is(err, kafka.UnknownTopicOrPartition) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (p *producer) Close() error { return p.w.Close() }

// produced counts what a production run wrote.
type produced struct {
	requests, keyStates int
	elapsed             time.Duration
}

func (p produced) events() int { return p.requests + p.keyStates }

// produce writes request events (and the key-state events they cause) at rate
// requests per second for dur, each stamped with the moment it was generated; with
// rate 0, n requests as fast as the writers go, stamped at times spread over span
// before now. Writers run in parallel, each write waiting for the broker's acks.
func (p *producer) produce(ctx context.Context, g *eventGen, rate int, dur time.Duration, n int, span time.Duration) (produced, error) {
	const writers, tick = 8, 10 * time.Millisecond
	chunks := make(chan []genRecord, writers*2)
	var res produced
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				if err := p.write(ctx, c); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
			}
		}()
	}
	// Records accumulate while every writer is busy and go out together when one is
	// free, so a slow broker gets bigger writes rather than a slower producer.
	var pending []genRecord
	flush := func(block bool) error {
		if len(pending) == 0 {
			return nil
		}
		if !block {
			select {
			case chunks <- pending:
				pending = nil
			default:
			}
			return nil
		}
		select {
		case chunks <- pending:
			pending = nil
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	gen := func(at time.Time) error {
		recs, err := g.next(at)
		if err != nil {
			return err
		}
		res.requests++
		res.keyStates += len(recs) - 1
		pending = append(pending, recs...)
		return nil
	}
	start := time.Now()
	var err error
	if rate > 0 {
		t := time.NewTicker(tick)
		for sent := 0; err == nil; {
			el := time.Since(start)
			if el >= dur {
				break
			}
			for due := int(el.Seconds()*float64(rate)) - sent; due > 0 && err == nil; due-- {
				err = gen(time.Now())
				sent++
			}
			if err == nil {
				err = flush(len(pending) >= 20_000)
			}
			<-t.C
		}
		t.Stop()
	} else {
		base := time.Now().Add(-span)
		step := span / time.Duration(max(n, 1))
		for i := 0; i < n && err == nil; i++ {
			if err = gen(base.Add(time.Duration(i) * step)); err == nil && len(pending) >= 2000 {
				err = flush(true)
			}
		}
	}
	if err == nil {
		err = flush(true)
	}
	close(chunks)
	wg.Wait()
	res.elapsed = time.Since(start)
	return res, cmpErr(err, firstErr)
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
