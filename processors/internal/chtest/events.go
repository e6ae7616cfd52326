// Package chtest holds what the processors' ClickHouse tests share: a deterministic
// generator of realistic events (failovers, quota 429s, timeouts, cut streams, cache
// hits), their Kafka records, the rows the system_stats and api_key_metrics views must
// hold for them computed independently in Go, and readers for those views.
package chtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Key is a pool key as events name it.
type Key struct {
	Hash, Project string
}

// Gen generates events. The same seed and start give the same events.
type Gen struct {
	rng    *rand.Rand
	Keys   []Key
	Models []string
	start  time.Time
}

// NewGen returns a generator over a pool of 24 keys in 9 projects.
func NewGen(seed uint64, start time.Time) *Gen {
	g := &Gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start: start}
	for i := range 24 {
		g.Keys = append(g.Keys, Key{
			Hash:    schemas.HashKey(fmt.Sprintf("AIza-test-%d-%d", seed, i)),
			Project: fmt.Sprintf("proj-%02d", i%9),
		})
	}
	g.Models = []string{"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash"}
	return g
}

// eventID returns a UUIDv7-shaped id for an event at ms: time-ordered like the ids the
// ingress makes with schemas.NewEventID, but reproducible.
func (g *Gen) eventID(ms int64) string {
	return fmt.Sprintf("%08x-%04x-7%03x-%04x-%012x", uint64(ms)>>16, uint64(ms)&0xffff,
		g.rng.Uint64()&0xfff, 0x8000|g.rng.Uint64()&0x3fff, g.rng.Uint64()&0xffffffffffff)
}

func (g *Gen) pick(weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := g.rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func (g *Gen) between(lo, hi int64) int64 { return lo + g.rng.Int64N(hi-lo+1) }

// Requests returns n request events spread evenly over span from the generator's start.
func (g *Gen) Requests(n int, span time.Duration) []*schemas.RequestEvent {
	out := make([]*schemas.RequestEvent, n)
	step := span.Milliseconds() / int64(max(n, 1))
	for i := range out {
		ts := g.start.UnixMilli() + int64(i)*step + g.between(0, max(step-1, 0))
		out[i] = g.request(ts, i)
	}
	return out
}

// Outcome scenarios of a generated request, with their weights.
var scenarios = []int{
	62, // success on the first key
	10, // minute quota on one key, success on another
	4,  // every attempt out of quota: 429 to the client
	3,  // upstream timeout: 504
	2,  // invalid key, failover, success
	2,  // client token rejected: 401, no upstream call
	3,  // 503 overloaded, failover, success
	2,  // 503 on every attempt: 502 to the client
	5,  // stream cut (by the upstream or the client)
	3,  // answered from the response cache
	2,  // bad request: the upstream says 400
	2,  // several failures on one key, then success on it
}

func (g *Gen) request(ts int64, i int) *schemas.RequestEvent {
	client := []string{schemas.ClientOpenAI, schemas.ClientClaude, schemas.ClientGemini, schemas.ClientUnknown}[g.pick(40, 25, 30, 5)]
	model := g.Models[g.rng.IntN(len(g.Models))]
	original := model
	switch client {
	case schemas.ClientOpenAI:
		original = "gpt-4o"
	case schemas.ClientClaude:
		original = "claude-sonnet-4"
	}
	e := &schemas.RequestEvent{
		Type: schemas.TypeRequest, V: schemas.RequestVersion, EventID: g.eventID(ts), TimeMs: ts,
		Instance: fmt.Sprintf("ingress-%d", i%3), RequestID: "req-" + strconv.Itoa(i),
		ClientType: client, ClientIP: fmt.Sprintf("10.0.%d.%d", g.rng.IntN(4), g.rng.IntN(250)),
		UserAgent: []string{"openai-python/1.54.0", "anthropic-typescript/0.30", "google-genai/1.0", "curl/8.5"}[g.rng.IntN(4)],
		Method:    "POST", Endpoint: []string{"/v1/chat/completions", "/v1/messages", "/v1beta/models/{model}:generateContent"}[g.rng.IntN(3)],
		Model: model, OriginalModel: original, Stream: g.rng.IntN(10) < 4,
		RequestBytes: g.between(200, 40000),
	}
	if g.rng.IntN(3) == 0 {
		e.TokenHash = schemas.HashToken("tok-" + strconv.Itoa(g.rng.IntN(5)))
	}
	if g.rng.IntN(20) == 0 {
		e.Referer = "https://app.example.com/chat"
	}
	prompt := g.between(10, 6000)
	e.EstimatedInputTokens = prompt + g.between(-5, 50)
	if e.EstimatedInputTokens < 0 {
		e.EstimatedInputTokens = 0
	}
	usage := schemas.Usage{Prompt: prompt, Cached: g.between(0, prompt/2), Candidates: g.between(1, 2500)}
	if model == "gemini-2.5-pro" {
		usage.Thoughts = g.between(0, 800)
	}
	if g.rng.IntN(8) == 0 {
		usage.ToolUsePrompt = g.between(1, 200)
	}
	usage.Total = usage.Prompt + usage.Candidates + usage.Thoughts + usage.ToolUsePrompt

	at := ts + g.between(1, 5)
	attempt := func(k Key, status int, failure string, counted bool) {
		lat := g.between(20, 9000)
		a := schemas.Attempt{KeyHash: k.Hash, Project: k.Project, TimeMs: at, Status: status, Failure: failure,
			LatencyMs: lat, InputTokens: prompt + usage.ToolUsePrompt, Counted: counted}
		if status == 429 && g.rng.IntN(2) == 0 {
			a.RetryAfterMs = g.between(1000, 60000)
		}
		e.Attempts = append(e.Attempts, a)
		at += lat + g.between(0, 3)
	}
	key := func() Key { return g.Keys[g.rng.IntN(len(g.Keys))] }
	ok := func() { attempt(key(), 200, "", true) }
	fail := func(status int, errType, msg string) {
		e.Status, e.ErrorType, e.ErrorMessage = status, errType, msg
		usage = schemas.Usage{}
	}
	e.Status = 200
	switch g.pick(scenarios...) {
	case 0:
		ok()
	case 1:
		attempt(key(), 429, "minute_quota", false)
		ok()
	case 2:
		attempt(key(), 429, "minute_quota", false)
		if g.rng.IntN(2) == 0 {
			attempt(key(), 429, "day_quota", false)
			fail(429, schemas.ErrQuotaExhausted, "all keys exhausted their daily quota for "+model)
		} else {
			attempt(key(), 429, "quota_unknown", false)
			fail(429, schemas.ErrRateLimited, "rate limited: retry in 24.07s")
		}
	case 3:
		attempt(key(), 0, "timeout", false)
		fail(504, schemas.ErrTimeout, "upstream did not answer within 60s")
	case 4:
		attempt(key(), 400, "key_invalid", false)
		ok()
	case 5:
		fail(401, schemas.ErrAuth, `invalid gateway token "tok-…"`)
	case 6:
		attempt(key(), 503, "upstream", false)
		ok()
	case 7:
		attempt(key(), 503, "upstream", false)
		attempt(key(), 503, "upstream", false)
		fail(502, schemas.ErrUpstream, "The model is overloaded. Please try again later.")
	case 8:
		e.Stream = true
		ok()
		if g.rng.IntN(2) == 0 {
			e.Interrupted = schemas.InterruptedUpstream
			e.ErrorType, e.ErrorMessage = schemas.ErrUpstream, "upstream closed the stream"
		} else {
			e.Interrupted = schemas.InterruptedClient
			e.ErrorType = schemas.ErrClientGone
		}
		usage.Total = 0 // the last chunk with usage never came
	case 9:
		e.CacheHit = true
	case 10:
		attempt(key(), 400, "client", true)
		fail(400, schemas.ErrBadRequest, `Invalid JSON payload received. Unknown name "temprature"`)
	case 11:
		k := key()
		for range 1 + g.rng.IntN(4) {
			attempt(k, 429, "minute_quota", false)
		}
		attempt(k, 200, "", true)
	}
	e.Usage = usage
	if n := len(e.Attempts); n > 0 {
		e.KeyHash, e.Project = e.Attempts[n-1].KeyHash, e.Attempts[n-1].Project
	}
	e.LatencyMs = at - ts + g.between(0, 5)
	if e.Stream && len(e.Attempts) > 0 {
		e.TTFBMs = g.between(50, max(e.LatencyMs/2, 51))
	}
	e.ResponseBytes = g.between(100, 60000)
	return e
}

// KeyStates returns n key state events over span: keys disabled, enabled, cooled down,
// added. Their keys are the pool's.
func (g *Gen) KeyStates(n int, span time.Duration) []*schemas.KeyStateEvent {
	out := make([]*schemas.KeyStateEvent, n)
	step := span.Milliseconds() / int64(max(n, 1))
	for i := range out {
		ts := g.start.UnixMilli() + int64(i)*step + g.between(0, max(step-1, 0))
		k := g.Keys[g.rng.IntN(len(g.Keys))]
		e := &schemas.KeyStateEvent{Type: schemas.TypeKeyState, V: schemas.KeyStateVersion, EventID: g.eventID(ts),
			TimeMs: ts, Instance: "ingress-0", Project: k.Project}
		switch g.pick(3, 2, 4, 1) {
		case 0:
			e.Kind, e.KeyHash, e.Reason, e.Source, e.Status = schemas.KindDisable, k.Hash, schemas.ReasonKeyInvalid, schemas.SourceUpstream, 400
			e.Message = "API key not valid. Please pass a valid API key."
		case 1:
			e.Kind, e.KeyHash, e.Reason, e.Source = schemas.KindEnable, k.Hash, schemas.ReasonRevalidated, schemas.SourceRevalidation
		case 2:
			e.Kind, e.Model, e.Reason, e.Source = schemas.KindCooldown, g.Models[g.rng.IntN(len(g.Models))], schemas.ReasonRPM, schemas.SourceUpstream
			e.QuotaID = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
			e.QuotaExceeded.RPM = true
			e.RetryDelayMs = g.between(1000, 59000)
			e.UntilMs = ts + e.RetryDelayMs
			e.RequestID = "req-ks-" + strconv.Itoa(i)
			e.Status = 429
		case 3:
			e.Kind, e.KeyHash, e.Reason, e.Source = schemas.KindKeyAdded, k.Hash, schemas.ReasonOperator, schemas.SourceAdmin
		}
		out[i] = e
	}
	return out
}

// Audits returns n audit events over span.
func (g *Gen) Audits(n int, span time.Duration) []*schemas.AuditEvent {
	out := make([]*schemas.AuditEvent, n)
	step := span.Milliseconds() / int64(max(n, 1))
	for i := range out {
		ts := g.start.UnixMilli() + int64(i)*step
		out[i] = &schemas.AuditEvent{Type: schemas.TypeAudit, V: schemas.AuditVersion, EventID: g.eventID(ts), TimeMs: ts,
			Instance: "processors-0", Actor: "sre@example.com", Action: "consistency_repair",
			Target: g.Keys[g.rng.IntN(len(g.Keys))].Project,
			Params: map[string]string{"window": "minute", "fixed": strconv.Itoa(g.rng.IntN(9))},
			Result: "ok"}
	}
	return out
}

// Record is a Kafka record of an event, as the ingress produces it: keyed by the event's
// record key, with the gca-type and gca-v headers (unless noHeader, which exercises the
// consumers' fallback to the JSON type).
func Record(t testing.TB, topic string, ev any, noHeader bool) kafka.Message {
	t.Helper()
	var key, typ string
	var v int
	switch e := ev.(type) {
	case *schemas.RequestEvent:
		key, typ, v = e.RecordKey(), e.Type, e.V
	case *schemas.KeyStateEvent:
		key, typ, v = e.RecordKey(), e.Type, e.V
	case *schemas.AuditEvent:
		key, typ, v = e.EventID, e.Type, e.V
	default:
		t.Fatalf("chtest.Record: %T is not an event", ev)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("chtest.Record: %v", err)
	}
	m := kafka.Message{Topic: topic, Key: []byte(key), Value: b}
	if !noHeader {
		m.Headers = []kafka.Header{
			{Key: schemas.HeaderEventType, Value: []byte(typ)},
			{Key: schemas.HeaderEventVersion, Value: []byte(strconv.Itoa(v))},
		}
	}
	return m
}
