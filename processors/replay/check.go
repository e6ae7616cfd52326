package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/valkey-io/valkey-go"
	"golang.org/x/sync/errgroup"

	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
)

// CheckOptions configure Check.
type CheckOptions struct {
	Brokers []string
	Topics  Topics
	// Group is the live Valkey consumer group: the check recomputes the state from the
	// events that group has consumed.
	Group  string
	Valkey valkey.Client
	Prefix string
	// Since is where the request events are read from (Kafka record time). Default:
	// DefaultSince(now). Key-state events are always read from the topic's beginning.
	Since time.Time
	// Tolerance is how far an expiry may be off (default 1s).
	Tolerance time.Duration
	// Rounds bounds the comparisons: a key that differs is read again, up to Rounds
	// times, and reported only if it still differs (default 3). RoundInterval is the
	// pause between rounds (default 500ms).
	Rounds        int
	RoundInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// DefaultSince is where a check reads request events from: far enough back for every
// piece of state a request event can still contribute to at now — the health of a key
// (schemas.HealthTTL), the day counter of the current Pacific day and of the previous
// one during its grace hour (schemas.DayCounterGrace) — plus ten minutes for events
// that reached Kafka late (Kafka's record time is when the event was published).
func DefaultSince(now time.Time) time.Time {
	day := now.Add(-schemas.DayCounterGrace).In(schemas.Pacific())
	dayStart := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, schemas.Pacific())
	return minTime(dayStart, now.Add(-schemas.HealthTTL)).Add(-10 * time.Minute)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (o *CheckOptions) applyDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Since.IsZero() {
		o.Since = DefaultSince(o.Now())
	}
	if o.Tolerance <= 0 {
		o.Tolerance = time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.RoundInterval <= 0 {
		o.RoundInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Finding is one key whose live state differs from the recomputed one.
type Finding struct {
	Key     string `json:"key"`
	Project string `json:"project"`
	// Kind is the key's kind: rpm, tpm, rpd, cooldown, blacklist, health, fails.
	Kind    string `json:"kind"`
	Model   string `json:"model,omitempty"`
	KeyHash string `json:"key_hash,omitempty"`
	// Window is the counter's minute (RFC 3339) or Pacific day (YYYYMMDD).
	Window string `json:"window,omitempty"`
	// Problem is missing (recomputed, not live), unexpected (live, not recomputed),
	// value, type or expiry.
	Problem string           `json:"problem"`
	Detail  string           `json:"detail"`
	Want    *statesink.Value `json:"want,omitempty"`
	Got     *statesink.Value `json:"got,omitempty"`
	// Explained says why a difference is not an inconsistency (only in
	// Report.Explained).
	Explained string `json:"explained,omitempty"`
}

// Report is the result of a check.
type Report struct {
	At     time.Time `json:"at"`
	Prefix string    `json:"prefix"`
	Group  string    `json:"group"`
	Since  time.Time `json:"since"`
	// Committed are the group's offsets the comparison used (last round).
	Committed Offsets `json:"committed"`
	// Requests and KeyStates are the events read.
	Requests  int `json:"requests"`
	KeyStates int `json:"key_states"`
	// LiveKeys and ExpectedKeys count derived keys (no marks, reservations or token
	// counters) in the first round.
	LiveKeys     int `json:"live_keys"`
	ExpectedKeys int `json:"expected_keys"`
	Rounds       int `json:"rounds"`
	// Differences are what repair fixes; Explained are differences with a known,
	// harmless cause that repair leaves alone.
	Differences []Finding `json:"differences"`
	Explained   []Finding `json:"explained,omitempty"`
	Repaired    int       `json:"repaired,omitempty"`
	Took        string    `json:"took"`
}

// Check compares the live Valkey state with the state recomputed (statesink.Expected)
// from the events the live Valkey consumer group has consumed: request events since
// Since, key-state events from the topic's beginning, up to the group's committed
// offsets.
//
// The live state moves while it is read. Check reads the group's committed offsets,
// then the keys, then the high watermarks, and recomputes the state at both ends: a
// key is consistent when it lies between the two (each counter and health sum between,
// every other value equal to one end), since the consumer applied at least the
// committed events and at most what the topics held. A key outside is read again in
// the next round and reported only if it is still outside after Rounds rounds, so a
// batch in flight is never reported; on a quiet system both ends are equal and the
// comparison is exact.
func Check(ctx context.Context, o CheckOptions) (*Report, error) {
	start := time.Now()
	o.applyDefaults()
	if o.Valkey == nil || o.Prefix == "" || o.Group == "" || len(o.Brokers) == 0 {
		return nil, errors.New("check: valkey client, prefix, consumer group and brokers are all needed")
	}
	c := &checker{o: &o, broker: newBroker(o.Brokers), reader: statesink.NewReader(o.Valkey, schemas.Keys{Prefix: o.Prefix}),
		src: source{brokers: o.Brokers, log: o.Logger}}
	rep := &Report{At: o.Now().UTC(), Prefix: o.Prefix, Group: o.Group, Since: o.Since.UTC()}
	if err := c.init(ctx); err != nil {
		return nil, err
	}
	var candidates map[string]bool // nil: every key
	var last []Finding
	for round := 1; round <= o.Rounds; round++ {
		rep.Rounds = round
		findings, quiet, err := c.round(ctx, rep, candidates)
		if err != nil {
			return nil, err
		}
		last = findings
		if len(findings) == 0 || quiet {
			break
		}
		candidates = map[string]bool{}
		for _, f := range findings {
			candidates[f.Key] = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.RoundInterval):
		}
	}
	rep.Differences, rep.Explained = c.explain(last)
	if rep.Differences == nil {
		rep.Differences = []Finding{}
	}
	rep.Requests, rep.KeyStates = c.counts()
	rep.Took = time.Since(start).Round(time.Millisecond).String()
	return rep, nil
}

type checker struct {
	o      *CheckOptions
	broker broker
	reader *statesink.Reader
	src    source
	parts  map[string][]int

	mu  sync.Mutex
	req map[int][]offReq
	ks  map[int][]offKS
	// next is the next offset to load per partition.
	next Offsets
	// horizon is the time of the oldest key-state event still kept in a partition that
	// retention has already trimmed; zero when nothing was deleted.
	horizon time.Time
}

type offReq struct {
	off int64
	e   *schemas.RequestEvent
}

type offKS struct {
	off int64
	e   *schemas.KeyStateEvent
}

func (c *checker) init(ctx context.Context) error {
	parts, err := c.broker.partitions(ctx, c.o.Topics.Requests, c.o.Topics.KeyState)
	if err != nil {
		return err
	}
	c.parts = parts
	first, err := c.broker.listOffsets(ctx, parts, kafka.FirstOffset)
	if err != nil {
		return err
	}
	since, err := c.broker.listOffsets(ctx, map[string][]int{c.o.Topics.Requests: parts[c.o.Topics.Requests]}, c.o.Since.UnixMilli())
	if err != nil {
		return err
	}
	c.next = first.Clone()
	for p, off := range since[c.o.Topics.Requests] {
		c.next.Set(c.o.Topics.Requests, p, off)
	}
	c.req, c.ks = map[int][]offReq{}, map[int][]offKS{}
	// Trimmed key-state partitions: their oldest kept event bounds what a disable can
	// be recomputed from.
	for p, off := range first[c.o.Topics.KeyState] {
		if off == 0 {
			continue
		}
		var ts int64
		err := c.src.scan(ctx, span{Topic: c.o.Topics.KeyState, Partition: p, Start: off, End: off + 1}, func(_ int64, ev any) error {
			if e, ok := ev.(*schemas.KeyStateEvent); ok {
				ts = e.TimeMs
			}
			return nil
		})
		if err != nil {
			return err
		}
		if t := time.UnixMilli(ts); ts > 0 && t.After(c.horizon) {
			c.horizon = t
		}
	}
	return nil
}

// load reads the events up to the offsets, keeping only what the rules need.
func (c *checker) load(ctx context.Context, to Offsets) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, t := range []string{c.o.Topics.Requests, c.o.Topics.KeyState} {
		for _, p := range c.parts[t] {
			from, _ := c.next.Get(t, p)
			end, _ := to.Get(t, p)
			if end <= from {
				continue
			}
			g.Go(func() error {
				var reqs []offReq
				var kss []offKS
				err := c.src.scan(gctx, span{Topic: t, Partition: p, Start: from, End: end}, func(off int64, ev any) error {
					switch e := ev.(type) {
					case *schemas.RequestEvent:
						// The rules read the id, the model and the attempts.
						reqs = append(reqs, offReq{off, &schemas.RequestEvent{EventID: e.EventID, TimeMs: e.TimeMs, Model: e.Model, Attempts: e.Attempts}})
					case *schemas.KeyStateEvent:
						kss = append(kss, offKS{off, e})
					}
					return nil
				})
				if err != nil {
					return err
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				if t == c.o.Topics.Requests {
					c.req[p] = append(c.req[p], reqs...)
				} else {
					c.ks[p] = append(c.ks[p], kss...)
				}
				c.next.Set(t, p, end)
				return nil
			})
		}
	}
	return g.Wait()
}

func (c *checker) counts() (int, int) {
	n, m := 0, 0
	for _, rs := range c.req {
		n += len(rs)
	}
	for _, ks := range c.ks {
		m += len(ks)
	}
	return n, m
}

// upTo returns the events before the bound: requests in any order, key states of each
// partition in topic order.
func (c *checker) upTo(bound Offsets) ([]*schemas.RequestEvent, []*schemas.KeyStateEvent) {
	var reqs []*schemas.RequestEvent
	for p, rs := range c.req {
		b, _ := bound.Get(c.o.Topics.Requests, p)
		for _, r := range rs {
			if r.off < b {
				reqs = append(reqs, r.e)
			}
		}
	}
	var kss []*schemas.KeyStateEvent
	for _, p := range slices.Sorted(maps.Keys(c.ks)) {
		b, _ := bound.Get(c.o.Topics.KeyState, p)
		for _, k := range c.ks[p] {
			if k.off < b {
				kss = append(kss, k.e)
			}
		}
	}
	return reqs, kss
}

// round compares once. quiet says nothing moved (the comparison was exact).
func (c *checker) round(ctx context.Context, rep *Report, candidates map[string]bool) ([]Finding, bool, error) {
	lo, err := c.broker.committed(ctx, c.o.Group, c.parts)
	if errors.Is(err, ErrNoCommits) {
		lo, err = c.broker.listOffsets(ctx, c.parts, kafka.FirstOffset) // nothing consumed yet
	}
	if err != nil {
		return nil, false, err
	}
	t0 := c.o.Now()
	var projects []string
	if candidates != nil {
		set := map[string]bool{}
		for k := range candidates {
			set[parseKey(k).Project] = true
		}
		projects = slices.Sorted(maps.Keys(set))
	}
	snap, err := c.reader.Snapshot(ctx, projects...)
	if err != nil {
		return nil, false, fmt.Errorf("read the live state: %w", err)
	}
	got := Derived(snap)
	t1 := c.o.Now()
	hi, err := c.broker.highWatermarks(ctx, c.parts)
	if err != nil {
		return nil, false, err
	}
	if err := c.load(ctx, hi); err != nil {
		return nil, false, fmt.Errorf("read the events: %w", err)
	}
	// Recomputed at the clock the keys were read at: what expired by then is gone
	// from both sides.
	reqs, kss := c.upTo(lo)
	wantLo := Derived(statesink.Expected(reqs, kss, t0))
	wantHi := wantLo
	quiet := lo.Equal(hi)
	if !quiet {
		reqs, kss = c.upTo(hi)
		wantHi = Derived(statesink.Expected(reqs, kss, t0))
	}
	if candidates == nil {
		rep.LiveKeys, rep.ExpectedKeys = len(got), len(wantHi)
	}
	rep.Committed = lo
	tol := c.o.Tolerance.Milliseconds()
	keys := map[string]bool{}
	for _, m := range []map[string]statesink.Value{got, wantLo, wantHi} {
		for k := range m {
			if candidates == nil || candidates[k] {
				keys[k] = true
			}
		}
	}
	var out []Finding
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		g, hasG := got[k]
		l, hasL := wantLo[k]
		h, hasH := wantHi[k]
		if between(optional(l, hasL), optional(g, hasG), optional(h, hasH), tol) {
			continue
		}
		// The key expired between the recomputation's clock and its reading.
		if !hasG && expiresBy(l, hasL, h, hasH, t1.UnixMilli()+tol) {
			continue
		}
		want, hasW := h, hasH
		if !hasW {
			want, hasW = l, hasL
		}
		d := statesink.Diff(mapOf(k, want, hasW), mapOf(k, g, hasG), c.o.Tolerance)
		if len(d) == 0 {
			d = []statesink.Difference{{Key: k, Want: ptr(want, hasW), Got: ptr(g, hasG), Reason: "outside the range the consumed events allow"}}
		}
		out = append(out, finding(d[0]))
	}
	return out, quiet, nil
}

func optional(v statesink.Value, ok bool) *statesink.Value {
	if !ok {
		return nil
	}
	return &v
}

func ptr(v statesink.Value, ok bool) *statesink.Value { return optional(v, ok) }

func mapOf(k string, v statesink.Value, ok bool) map[string]statesink.Value {
	if !ok {
		return map[string]statesink.Value{}
	}
	return map[string]statesink.Value{k: v}
}

func expiresBy(l statesink.Value, hasL bool, h statesink.Value, hasH bool, at int64) bool {
	exp := int64(0)
	if hasL {
		exp = l.ExpireAtMs
	}
	if hasH {
		exp = max(exp, h.ExpireAtMs)
	}
	return exp != 0 && exp <= at
}

// Derived keeps the state the processors derive from events: keys of a project
// ("{project}:...") other than the applied marks and the ingress's pending
// reservations. The ingress's own counters under the prefix (token limits,
// "token:{id}:...") are not derived from events and are left out.
func Derived(state map[string]statesink.Value) map[string]statesink.Value {
	out := statesink.WithoutMarks(state)
	for k := range out {
		if !strings.HasPrefix(k, "{") {
			delete(out, k)
		}
	}
	return out
}

// between reports whether got lies between lo and hi, the states at the two ends of
// the events the live consumer may have applied: equal to one of them, or, value by
// value, between them where values only grow (counters, health sums and times).
func between(lo, got, hi *statesink.Value, tol int64) bool {
	same := func(a, b *statesink.Value) bool {
		if a == nil || b == nil {
			return a == nil && b == nil
		}
		return len(statesink.Diff(map[string]statesink.Value{"k": *a}, map[string]statesink.Value{"k": *b}, time.Duration(tol)*time.Millisecond)) == 0
	}
	if same(lo, got) || same(hi, got) {
		return true
	}
	if got == nil || hi == nil {
		return false
	}
	if lo == nil {
		// Created by events after the committed offsets: anything from nothing to hi.
		lo = &statesink.Value{Type: hi.Type}
	}
	if lo.Type != got.Type || hi.Type != got.Type {
		return false
	}
	if lo.ExpireAtMs != 0 && got.ExpireAtMs < lo.ExpireAtMs-tol || got.ExpireAtMs > hi.ExpireAtMs+tol {
		return false
	}
	num := func(s string) (int64, bool) {
		if s == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	in := func(l, g, h string) bool {
		a, ok1 := num(l)
		b, ok2 := num(g)
		c, ok3 := num(h)
		return ok1 && ok2 && ok3 && a <= b && b <= c
	}
	switch got.Type {
	case statesink.TypeString:
		return in(lo.String, got.String, hi.String)
	case statesink.TypeHash:
		for f := range mergeKeys(lo.Hash, got.Hash, hi.Hash) {
			if f == schemas.HealthFailKind {
				if got.Hash[f] != lo.Hash[f] && got.Hash[f] != hi.Hash[f] {
					return false
				}
				continue
			}
			if !in(lo.Hash[f], got.Hash[f], hi.Hash[f]) {
				return false
			}
		}
		return true
	case statesink.TypeZSet:
		for m := range got.ZSet {
			if _, ok := hi.ZSet[m]; !ok {
				if _, ok := lo.ZSet[m]; !ok {
					return false
				}
			}
		}
		return true
	}
	return false
}

func mergeKeys[V any](ms ...map[string]V) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			out[k] = true
		}
	}
	return out
}

// keyParts is what a state key names.
type keyParts struct {
	Project, Kind, Model, KeyHash, Window string
}

// parseKey reads a key without its prefix, "{project}:kind:...".
func parseKey(k string) keyParts {
	end := strings.Index(k, "}:")
	if !strings.HasPrefix(k, "{") || end < 0 {
		return keyParts{Kind: "other"}
	}
	p := keyParts{Project: k[1:end]}
	rest := k[end+2:]
	kind, rest, _ := strings.Cut(rest, ":")
	p.Kind = kind
	switch kind {
	case "rpm", "tpm":
		if i := strings.LastIndex(rest, ":"); i >= 0 {
			p.Model = rest[:i]
			if m, err := strconv.ParseInt(rest[i+1:], 10, 64); err == nil {
				p.Window = time.Unix(m*60, 0).UTC().Format(time.RFC3339)
			}
		}
	case "rpd":
		if i := strings.LastIndex(rest, ":"); i >= 0 {
			p.Model, p.Window = rest[:i], rest[i+1:]
		}
	case "cooldown":
		p.Model = rest
	case "blacklist", "health", "fails":
		p.KeyHash = rest
	}
	return p
}

func finding(d statesink.Difference) Finding {
	kp := parseKey(d.Key)
	f := Finding{Key: d.Key, Project: kp.Project, Kind: kp.Kind, Model: kp.Model, KeyHash: kp.KeyHash, Window: kp.Window,
		Detail: d.Reason, Want: d.Want, Got: d.Got}
	switch {
	case d.Got == nil:
		f.Problem = "missing"
	case d.Want == nil:
		f.Problem = "unexpected"
	case strings.HasPrefix(d.Reason, "expires at"):
		f.Problem = "expiry"
	case strings.HasPrefix(d.Reason, "type"):
		f.Problem = "type"
	default:
		f.Problem = "value"
	}
	return f
}

// explain splits findings into differences and differences with a known cause that is
// not an inconsistency.
func (c *checker) explain(fs []Finding) (diffs, explained []Finding) {
	cutoff := c.o.Now().Add(-schemas.HealthTTL).UnixMilli()
	for _, f := range fs {
		if why := c.why(f, cutoff); why != "" {
			f.Explained = why
			explained = append(explained, f)
			continue
		}
		diffs = append(diffs, f)
	}
	return diffs, explained
}

func (c *checker) why(f Finding, cutoff int64) string {
	switch {
	case f.Kind == "health" && f.Want != nil && f.Got != nil && healthHistory(f.Want, f.Got, cutoff):
		return "health carries attempts older than " + schemas.HealthTTL.String() + " (the key was used without a pause that long); events that old no longer contribute when state is recomputed"
	case f.Kind == "fails" && f.Want != nil && f.Got != nil && failsHistory(f.Want, f.Got, cutoff):
		return "the failure set holds failures older than " + schemas.HealthTTL.String() + " (no success since); events that old no longer contribute when state is recomputed"
	case f.Kind == "blacklist" && f.Problem == "unexpected" && !c.horizon.IsZero() && f.Got != nil && entryBefore(f.Got.String, c.horizon):
		return "the key was disabled before the oldest key-state event retention kept (" + c.horizon.UTC().Format(time.RFC3339) + "); keep the key-state topic forever (retention.ms=-1) to recompute disables"
	}
	return ""
}

// healthHistory: the live health hash equals the recomputed one plus older history.
func healthHistory(want, got *statesink.Value, cutoff int64) bool {
	if want.Type != statesink.TypeHash || got.Type != statesink.TypeHash || abs64(want.ExpireAtMs-got.ExpireAtMs) > 1000 {
		return false
	}
	n := func(h map[string]string, f string) int64 { v, _ := strconv.ParseInt(h[f], 10, 64); return v }
	for _, f := range []string{schemas.HealthOKMs, schemas.HealthFailMs} {
		w, g := n(want.Hash, f), n(got.Hash, f)
		if w != g && !(w == 0 && g < cutoff) {
			return false
		}
	}
	if n(want.Hash, schemas.HealthFailMs) != 0 && want.Hash[schemas.HealthFailKind] != got.Hash[schemas.HealthFailKind] {
		return false
	}
	return n(got.Hash, schemas.HealthLatN) >= n(want.Hash, schemas.HealthLatN) &&
		n(got.Hash, schemas.HealthLatSumMs) >= n(want.Hash, schemas.HealthLatSumMs)
}

// failsHistory: the live failure set holds the recomputed one plus failures older
// than the cutoff.
func failsHistory(want, got *statesink.Value, cutoff int64) bool {
	if want.Type != statesink.TypeZSet || got.Type != statesink.TypeZSet || abs64(want.ExpireAtMs-got.ExpireAtMs) > 1000 {
		return false
	}
	for m, s := range want.ZSet {
		if got.ZSet[m] != s {
			return false
		}
	}
	for m, s := range got.ZSet {
		if _, ok := want.ZSet[m]; !ok && int64(s) >= cutoff {
			return false
		}
	}
	return true
}

func entryBefore(raw string, t time.Time) bool {
	i := strings.Index(raw, `"timestamp":`)
	if i < 0 {
		return false
	}
	rest := raw[i+len(`"timestamp":`):]
	j := strings.IndexAny(rest, ",}")
	if j < 0 {
		return false
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(rest[:j]), 10, 64)
	return err == nil && ts < t.UnixMilli()
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
