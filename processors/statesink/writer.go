// Package statesink maintains the Valkey state the ingress reads to pick a key: per
// (project, model) request and input-token counters for the minute and requests for the
// Pacific day, cool-downs of (project, model) pairs, disabled keys, and per-key health.
// The key layout and expiry rules are those of schemas.Keys.
//
// Delivery: Kafka delivers at least once, so every request event is applied to each
// project it touches at most once. A batch becomes one Lua script call per project
// (chunked), pipelined; all keys of a project share its "{project}" hash tag, so this
// holds on a Valkey cluster too. The script sets each event's applied mark with SET NX;
// when every mark was new it applies the events' summed increments and health updates,
// and when some were already set it removes the marks it has just set, applies nothing
// and names the events already applied, which the writer drops before sending the rest
// again. Scripts are atomic, so a mark never exists without its increments: a
// redelivered or replayed event changes nothing, a crash mid-batch loses nothing, and
// two writers racing on the same events count each once. Key-state events need no
// marks: their ops are maxima, overwrites and deletes, so re-applying a project's events
// in order from any point leaves the state they left the first time.
//
// Expiry is absolute and computed from event time; contributions whose keys would
// already have expired by the writer's clock are not written. The same rules feed
// Expected, which computes in Go the state a set of events must produce, so replay
// and the consistency check compare like with like.
package statesink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas"
)

// DefaultMaxEventsPerCall bounds the events one script call carries, so that a batch
// does not block Valkey in one long script: Valkey runs one command at a time, and the
// ingress's reservations wait behind whatever runs. At about 8 commands per event and
// 1–2 µs per command inside a script (measured here), 64 events hold Valkey for under
// a millisecond, where 500 held it for 6–8 ms. The calls of a batch still go out in
// one pipelined round trip, so the state writer's throughput is unchanged (make bench).
const DefaultMaxEventsPerCall = 64

// Options configure a Writer. The zero value is usable.
type Options struct {
	// Now is the writer's clock (default time.Now). Contributions whose keys would have
	// expired by Now() are skipped; a replay passes a fixed clock so its result depends
	// on the events alone.
	Now func() time.Time
	// Registerer receives the gca_processor_valkey_* metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// MaxEventsPerCall bounds the events in one script call (default
	// DefaultMaxEventsPerCall).
	MaxEventsPerCall int
}

// Writer applies events to Valkey. It is safe for concurrent use; two writers applying
// overlapping batches still count each event once.
type Writer struct {
	client    valkey.Client
	keys      schemas.Keys
	now       func() time.Time
	logger    *slog.Logger
	maxEvents int
	metrics   *metrics
	requests  *valkey.Lua
	keyStates *valkey.Lua
}

// New returns a Writer for the state under keys.Prefix.
func New(client valkey.Client, keys schemas.Keys, opts Options) *Writer {
	w := &Writer{
		client:    client,
		keys:      keys,
		now:       opts.Now,
		logger:    opts.Logger,
		maxEvents: opts.MaxEventsPerCall,
		metrics:   newMetrics(opts.Registerer),
		// Both scripts may be retried by the client after a connection error: they are
		// idempotent (marks for requests; maxima, overwrites and deletes for key states).
		requests:  valkey.NewLuaScriptRetryable(luaRequests),
		keyStates: valkey.NewLuaScriptRetryable(luaKeyStates),
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if w.maxEvents <= 0 {
		w.maxEvents = DefaultMaxEventsPerCall
	}
	return w
}

// ApplyRequests applies the quota counters and key health of request events, each
// event at most once per project. Events may come in any order and from several
// partitions. On error some projects may have been applied and others not; applying
// the batch again is safe and completes it.
func (w *Writer) ApplyRequests(ctx context.Context, events []*schemas.RequestEvent) error {
	calls := w.buildCalls(events, w.now())
	// A call that finds some of its events applied already applies nothing and names
	// them; the rest go again in the next round. Every round drops at least one event.
	var errs []error
	for len(calls) > 0 {
		execs := make([]valkey.LuaExec, len(calls))
		for i, c := range calls {
			execs[i] = valkey.LuaExec{Keys: []string{c.tag}, Args: c.args()}
		}
		start := time.Now()
		res := w.requests.ExecMulti(ctx, w.client, execs...)
		w.metrics.scriptSeconds.WithLabelValues(scriptRequests).Observe(time.Since(start).Seconds())
		var again []*requestCall
		for i, r := range res {
			stale, err := r.AsIntSlice()
			if err != nil {
				w.metrics.errors.WithLabelValues(scriptRequests).Inc()
				errs = append(errs, fmt.Errorf("apply request events to %s: %w", calls[i].tag, err))
				continue
			}
			if len(stale) == 0 {
				w.metrics.applied.WithLabelValues(schemas.TypeRequest).Add(float64(len(calls[i].events)))
				continue
			}
			w.metrics.skipped.Add(float64(len(stale)))
			if rest := calls[i].without(stale); len(rest.events) > 0 {
				again = append(again, rest)
			}
		}
		calls = again
	}
	return errors.Join(errs...)
}

// buildCalls groups the events' ops into script calls, one per project and chunk.
func (w *Writer) buildCalls(events []*schemas.RequestEvent, now time.Time) []*requestCall {
	open := map[string]*requestCall{}
	var calls []*requestCall
	r := newRules(w.keys, now)
	for _, e := range events {
		ops, invalid := r.requestOps(e)
		if invalid > 0 {
			w.metrics.ignored.Add(float64(invalid))
			w.logger.Warn("attempts with an invalid project ignored", "event_id", e.EventID, "attempts", invalid)
		}
		for i := range ops {
			p := &ops[i]
			c := open[p.Project]
			if c == nil {
				c = &requestCall{tag: projectTag(w.keys, p.Project)}
				open[p.Project] = c
				calls = append(calls, c)
			}
			c.events = append(c.events, p)
			if len(c.events) >= w.maxEvents {
				delete(open, p.Project)
			}
		}
	}
	return calls
}

// ApplyKeyStates applies cool-downs, disabled keys and health resets. Events of one
// project must come in their topic order (the topic is keyed by project); they are
// applied in that order, one script call per project and chunk, pipelined. Applying
// the same events again leaves the state unchanged (see keyStateOps). An event that
// cannot be turned into ops (an invalid project) is reported and the rest are applied.
func (w *Writer) ApplyKeyStates(ctx context.Context, events []*schemas.KeyStateEvent) error {
	now := w.now()
	type call struct {
		tag    string
		ops    []stateOp
		events int
	}
	var (
		errs  []error
		order []string
		calls = map[string]*call{}
		execs []valkey.LuaExec
		sizes []int
	)
	flush := func(c *call) {
		execs = append(execs, valkey.LuaExec{Keys: []string{c.tag}, Args: keyStateArgs(c.tag, c.ops)})
		sizes = append(sizes, c.events)
	}
	for _, e := range events {
		ops, err := keyStateOps(w.keys, e, now)
		if err != nil {
			w.metrics.errors.WithLabelValues(scriptKeyStates).Inc()
			errs = append(errs, fmt.Errorf("key state event %s: %w", e.EventID, err))
			continue
		}
		c := calls[e.Project]
		if c == nil {
			c = &call{tag: projectTag(w.keys, e.Project)}
			calls[e.Project] = c
			order = append(order, e.Project)
		}
		c.ops = append(c.ops, ops...)
		c.events++
		if c.events >= w.maxEvents {
			// Chunks of one project go into the pipeline in order, and the pipeline
			// keeps that order on the project's node.
			flush(c)
			*c = call{tag: c.tag}
		}
	}
	for _, p := range order {
		if c := calls[p]; c.events > 0 {
			flush(c)
		}
	}
	if len(execs) == 0 {
		return errors.Join(errs...)
	}
	start := time.Now()
	res := w.keyStates.ExecMulti(ctx, w.client, execs...)
	w.metrics.scriptSeconds.WithLabelValues(scriptKeyStates).Observe(time.Since(start).Seconds())
	for i, r := range res {
		if err := r.Error(); err != nil {
			w.metrics.errors.WithLabelValues(scriptKeyStates).Inc()
			errs = append(errs, fmt.Errorf("apply key state events to %s: %w", execs[i].Keys[0], err))
			continue
		}
		w.metrics.applied.WithLabelValues(schemas.TypeKeyState).Add(float64(sizes[i]))
	}
	return errors.Join(errs...)
}
