//go:build integration

package statesink

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/schemas"
)

// env is one test's Valkey state under its own prefix.
type env struct {
	t      *testing.T
	ctx    context.Context
	client valkey.Client
	keys   schemas.Keys
	reader *Reader
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c, prefix := testenv.Valkey(t)
	keys := schemas.Keys{Prefix: prefix}
	return &env{t: t, ctx: testenv.Context(t), client: c, keys: keys, reader: NewReader(c, keys)}
}

// writer returns a Writer whose clock stands still at now.
func (e *env) writer(now time.Time, opts ...func(*Options)) *Writer {
	o := Options{Now: func() time.Time { return now }}
	for _, f := range opts {
		f(&o)
	}
	return New(e.client, e.keys, o)
}

func (e *env) snapshot() map[string]Value {
	e.t.Helper()
	s, err := e.reader.Snapshot(e.ctx)
	require.NoError(e.t, err)
	return s
}

// requireState checks that Valkey holds exactly the state Expected computes.
func (e *env) requireState(events []*schemas.RequestEvent, keyStates []*schemas.KeyStateEvent, now time.Time) {
	e.t.Helper()
	require.Empty(e.t, Diff(Expected(events, keyStates, now), e.snapshot(), 0))
}

func (e *env) expireTime(key string) int64 {
	e.t.Helper()
	n, err := e.client.Do(e.ctx, e.client.B().Pexpiretime().Key(key).Build()).AsInt64()
	require.NoError(e.t, err)
	return n
}

func (e *env) usage(project, model string, at time.Time) Usage {
	e.t.Helper()
	u, err := e.reader.Usage(e.ctx, project, model, at)
	require.NoError(e.t, err)
	return u
}

func TestCounters(t *testing.T) {
	base := nextMinute()
	pacMidnight := schemas.NextPacificMidnight(base)
	utcMidnight := base.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if utcMidnight.Sub(base) < time.Minute {
		utcMidnight = utcMidnight.Add(24 * time.Hour)
	}
	type check struct {
		at   time.Time
		want Usage
	}
	cases := []struct {
		name   string
		events []*schemas.RequestEvent
		now    time.Time
		checks []check
	}{
		{
			// The 429 before the failover is not counted; its success is.
			name: "attempts in one minute",
			events: []*schemas.RequestEvent{
				request("a", modelPro, ok("p1", "k1", base.Add(time.Second), 100)),
				request("b", modelPro, ok("p1", "k2", base.Add(2*time.Second), 200)),
				request("c", modelPro, failed("p1", "k1", base.Add(3*time.Second), 429, "minute_quota"),
					ok("p1", "k2", base.Add(4*time.Second), 300)),
				request("d", modelFlash, ok("p1", "k1", base.Add(5*time.Second), 1)),
			},
			now: base.Add(10 * time.Second),
			checks: []check{
				{base.Add(30 * time.Second), Usage{MinuteRequests: 3, MinuteTokens: 600, DayRequests: 3}},
				{base.Add(90 * time.Second), Usage{DayRequests: 3}},
			},
		},
		{
			name: "across a minute boundary",
			events: []*schemas.RequestEvent{
				request("a", modelPro, ok("p1", "k1", base.Add(59*time.Second), 10)),
				request("b", modelPro, ok("p1", "k1", base.Add(59999*time.Millisecond), 20)),
				request("c", modelPro, ok("p1", "k1", base.Add(60*time.Second), 40)),
			},
			now: base.Add(61 * time.Second),
			checks: []check{
				{base.Add(30 * time.Second), Usage{MinuteRequests: 2, MinuteTokens: 30, DayRequests: 3}},
				{base.Add(90 * time.Second), Usage{MinuteRequests: 1, MinuteTokens: 40, DayRequests: 3}},
			},
		},
		{
			name: "across Pacific midnight the day counter starts over",
			events: []*schemas.RequestEvent{
				request("a", modelPro, ok("p1", "k1", pacMidnight.Add(-10*time.Second), 1)),
				request("b", modelPro, ok("p1", "k1", pacMidnight.Add(-time.Millisecond), 1)),
				request("c", modelPro, ok("p1", "k1", pacMidnight, 1)),
			},
			now: pacMidnight.Add(time.Second),
			checks: []check{
				{pacMidnight.Add(-time.Second), Usage{MinuteRequests: 2, MinuteTokens: 2, DayRequests: 2}},
				{pacMidnight.Add(time.Second), Usage{MinuteRequests: 1, MinuteTokens: 1, DayRequests: 1}},
			},
		},
		{
			name: "UTC midnight is no day boundary",
			events: []*schemas.RequestEvent{
				request("a", modelPro, ok("p1", "k1", utcMidnight.Add(-10*time.Second), 1)),
				request("b", modelPro, ok("p1", "k1", utcMidnight.Add(10*time.Second), 1)),
			},
			now: utcMidnight.Add(20 * time.Second),
			checks: []check{
				{utcMidnight.Add(30 * time.Second), Usage{MinuteRequests: 1, MinuteTokens: 1, DayRequests: 2}},
			},
		},
		{
			name: "uncounted attempts change no counter",
			events: []*schemas.RequestEvent{
				request("a", modelPro, failed("p1", "k1", base.Add(time.Second), 429, "minute_quota")),
				request("b", modelPro, failed("p1", "k1", base.Add(2*time.Second), 429, "day_quota"),
					failed("p1", "k2", base.Add(3*time.Second), 503, "upstream")),
			},
			now:    base.Add(10 * time.Second),
			checks: []check{{base.Add(30 * time.Second), Usage{}}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			require.NoError(t, e.writer(c.now).ApplyRequests(e.ctx, c.events))
			for _, ch := range c.checks {
				require.Equal(t, ch.want, e.usage("p1", modelPro, ch.at), "usage at %s", ch.at)
			}
			e.requireState(c.events, nil, c.now)
		})
	}
}

func TestCounterExpiry(t *testing.T) {
	e := newEnv(t)
	ts := nextMinute().Add(15 * time.Second)
	require.NoError(t, e.writer(ts).ApplyRequests(e.ctx, []*schemas.RequestEvent{
		request("a", modelPro, ok("p1", "k1", ts, 5)),
	}))
	m := schemas.MinuteOf(ts)
	minuteExp := schemas.MinuteCounterExpiry(ts).UnixMilli()
	require.Equal(t, minuteExp, e.expireTime(e.keys.MinuteRequests("p1", modelPro, m)))
	require.Equal(t, minuteExp, e.expireTime(e.keys.MinuteTokens("p1", modelPro, m)))
	require.Equal(t, schemas.DayCounterExpiry(ts).UnixMilli(),
		e.expireTime(e.keys.DayRequests("p1", modelPro, schemas.PacificDay(ts))))
	healthExp := ts.Add(schemas.HealthTTL).UnixMilli()
	require.Equal(t, healthExp, e.expireTime(e.keys.Health("p1", "k1")))
	require.Equal(t, max(healthExp, schemas.DayCounterExpiry(ts).UnixMilli()),
		e.expireTime(e.keys.Applied("p1", "a")))
}

func TestEachEventCountsOnce(t *testing.T) {
	base := nextMinute()
	rng := rand.New(rand.NewPCG(3, 4))
	events := randomEvents(rng, 200, base, "ev")
	now := base.Add(time.Minute)
	cases := []struct {
		name    string
		batches [][]*schemas.RequestEvent
	}{
		{"the same batch twice", [][]*schemas.RequestEvent{events, events}},
		{"a batch where half the events are repeats", [][]*schemas.RequestEvent{events[:100], events[50:150], events}},
		{"repeats inside one batch", [][]*schemas.RequestEvent{append(append([]*schemas.RequestEvent{}, events...), events[:100]...)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			reg := prometheus.NewRegistry()
			w := e.writer(now, func(o *Options) { o.Registerer = reg })
			var all []*schemas.RequestEvent
			for _, b := range c.batches {
				require.NoError(t, w.ApplyRequests(e.ctx, b))
				all = append(all, b...)
			}
			e.requireState(events, nil, now)
			e.requireState(all, nil, now)
			pairs, repeats := projectPairs(all)
			require.Equal(t, float64(pairs), metricValue(t, reg, "gca_processor_valkey_events_applied_total"))
			require.Equal(t, float64(repeats), metricValue(t, reg, "gca_processor_valkey_events_skipped_total"))
		})
	}
}

// projectPairs counts the distinct (event, project) pairs and their repeats.
func projectPairs(events []*schemas.RequestEvent) (distinct, repeats int) {
	seen := map[string]bool{}
	for _, e := range events {
		projects := map[string]bool{}
		for _, a := range e.Attempts {
			projects[a.Project] = true
		}
		for p := range projects {
			if seen[p+"/"+e.EventID] {
				repeats++
			} else {
				seen[p+"/"+e.EventID] = true
				distinct++
			}
		}
	}
	return distinct, repeats
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func TestOldEventsWriteNothing(t *testing.T) {
	ts := nextMinute().Add(10 * time.Second)
	events := []*schemas.RequestEvent{
		request("a", modelPro, ok("p1", "k1", ts, 5)),
		request("b", modelPro, failed("p1", "k1", ts, 503, "upstream")),
	}
	t.Run("every window over", func(t *testing.T) {
		e := newEnv(t)
		now := time.UnixMilli(max(schemas.DayCounterExpiry(ts).UnixMilli(), ts.Add(schemas.HealthTTL).UnixMilli()))
		require.NoError(t, e.writer(now).ApplyRequests(e.ctx, events))
		require.Empty(t, e.snapshot())
	})
	t.Run("the minute over, the day not", func(t *testing.T) {
		e := newEnv(t)
		now := schemas.MinuteCounterExpiry(ts)
		require.NoError(t, e.writer(now).ApplyRequests(e.ctx, events))
		require.Equal(t, Usage{DayRequests: 1}, e.usage("p1", modelPro, ts))
		e.requireState(events, nil, now)
	})
}

func TestCooldown(t *testing.T) {
	e := newEnv(t)
	base := nextMinute()
	now := base
	key := e.keys.Cooldown("p1", modelPro)
	apply := func(evs ...*schemas.KeyStateEvent) {
		t.Helper()
		require.NoError(t, e.writer(now).ApplyKeyStates(e.ctx, evs))
	}
	requireCooldown := func(eventID string, until time.Time) {
		t.Helper()
		got, err := e.reader.Cooldown(e.ctx, "p1", modelPro)
		require.NoError(t, err)
		require.NotNil(t, got)
		require.Equal(t, eventID, got.EventID)
		require.Equal(t, until.UnixMilli(), got.ExpiresAt)
		require.Equal(t, until.UnixMilli(), e.expireTime(key))
		pttl, err := e.client.Do(e.ctx, e.client.B().Pttl().Key(key).Build()).AsInt64()
		require.NoError(t, err)
		require.InDelta(t, time.Until(until).Milliseconds(), pttl, 1000)
	}

	first := cooldown("c1", "p1", modelPro, base, base.Add(time.Minute))
	apply(first)
	requireCooldown("c1", base.Add(time.Minute))

	// A shorter cool-down of the same pair never cuts the active one short.
	apply(cooldown("c2", "p1", modelPro, base, base.Add(30*time.Second)))
	requireCooldown("c1", base.Add(time.Minute))

	longer := cooldown("c3", "p1", modelPro, base, base.Add(2*time.Minute))
	longer.Reason, longer.QuotaExceeded = schemas.ReasonRPD, schemas.QuotaExceeded{RPD: true}
	apply(longer)
	requireCooldown("c3", base.Add(2*time.Minute))

	// Redelivery of everything so far changes nothing.
	apply(first, cooldown("c2", "p1", modelPro, base, base.Add(30*time.Second)), longer)
	requireCooldown("c3", base.Add(2*time.Minute))

	// A cool-down already over by the writer's clock is not written.
	now = base.Add(5 * time.Minute)
	apply(cooldown("c4", "p1", modelFlash, base, base.Add(time.Minute)))
	got, err := e.reader.Cooldown(e.ctx, "p1", modelFlash)
	require.NoError(t, err)
	require.Nil(t, got)

	clear := keyState("x1", schemas.KindClearCooldown, "p1", base)
	clear.Model = modelPro
	apply(clear)
	got, err = e.reader.Cooldown(e.ctx, "p1", modelPro)
	require.NoError(t, err)
	require.Nil(t, got)

	// Redelivering the suffix [longer, clear] ends cleared, as the first time.
	now = base
	apply(longer, clear)
	got, err = e.reader.Cooldown(e.ctx, "p1", modelPro)
	require.NoError(t, err)
	require.Nil(t, got)
	e.requireState(nil, []*schemas.KeyStateEvent{first, longer, clear}, now)
}

func TestDisableEnable(t *testing.T) {
	e := newEnv(t)
	base := nextMinute()
	now := base.Add(time.Minute)
	w := e.writer(now)
	health := func() Health {
		t.Helper()
		h, err := e.reader.Health(e.ctx, "p1", "k1")
		require.NoError(t, err)
		return h
	}
	var reqs []*schemas.RequestEvent
	var states []*schemas.KeyStateEvent
	applyReq := func(evs ...*schemas.RequestEvent) {
		t.Helper()
		require.NoError(t, w.ApplyRequests(e.ctx, evs))
		reqs = append(reqs, evs...)
	}
	applyState := func(evs ...*schemas.KeyStateEvent) {
		t.Helper()
		require.NoError(t, w.ApplyKeyStates(e.ctx, evs))
		states = append(states, evs...)
	}

	applyReq(request("r1", modelPro, ok("p1", "k1", base.Add(time.Second), 1)))
	applyReq(
		request("r2", modelPro, failed("p1", "k1", base.Add(2*time.Second), 0, "timeout")),
		request("r3", modelPro, failed("p1", "k1", base.Add(3*time.Second), 400, "key_invalid")))
	require.Equal(t, Health{OKMs: base.Add(time.Second).UnixMilli(), FailMs: base.Add(3 * time.Second).UnixMilli(),
		FailKind: "key_invalid", ConsecutiveFailures: 2, LatN: 3, LatSumMs: 160}, health())

	applyState(keyEvent("d1", schemas.KindDisable, "p1", "k1", base.Add(3*time.Second)))
	entry, err := e.reader.Blacklisted(e.ctx, "p1", "k1")
	require.NoError(t, err)
	require.Equal(t, &schemas.BlacklistEntry{KeyHash: "k1", Project: "p1", Reason: schemas.ReasonKeyInvalid,
		Timestamp: base.Add(3 * time.Second).UnixMilli(), Source: schemas.SourceUpstream, EventID: "d1"}, entry)
	require.Equal(t, int64(-1), e.expireTime(e.keys.Blacklist("p1", "k1")), "a disabled key has no TTL")

	applyState(keyEvent("en1", schemas.KindEnable, "p1", "k1", base.Add(10*time.Second)))
	entry, err = e.reader.Blacklisted(e.ctx, "p1", "k1")
	require.NoError(t, err)
	require.Nil(t, entry)
	h := health()
	require.Equal(t, int64(0), h.ConsecutiveFailures)
	require.Equal(t, base.Add(10*time.Second).UnixMilli(), h.OKMs)

	// A failure from before the enable, arriving late from another partition, stays
	// forgotten; one after it counts.
	applyReq(request("r4", modelPro, failed("p1", "k1", base.Add(5*time.Second), 503, "upstream")))
	require.Equal(t, int64(0), health().ConsecutiveFailures)
	applyReq(request("r5", modelPro, failed("p1", "k1", base.Add(20*time.Second), 503, "upstream")))
	require.Equal(t, int64(1), health().ConsecutiveFailures)
	e.requireState(reqs, states, now)

	applyState(keyEvent("rm1", schemas.KindKeyRemoved, "p1", "k1", base.Add(30*time.Second)))
	require.Equal(t, Health{}, health())
	e.requireState(reqs, states, now)
}

func TestHealthIgnoresOrder(t *testing.T) {
	base := nextMinute()
	now := base.Add(3 * time.Minute)
	rng := rand.New(rand.NewPCG(5, 6))
	events := randomEvents(rng, 300, base, "ev")
	want := Expected(events, nil, now)
	for i := range 4 {
		t.Run("order "+strconv.Itoa(i), func(t *testing.T) {
			e := newEnv(t)
			w := e.writer(now)
			order := append([]*schemas.RequestEvent(nil), events...)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			// Batches of random size, as partitions would deliver them.
			for len(order) > 0 {
				n := min(len(order), 1+rng.IntN(40))
				require.NoError(t, w.ApplyRequests(e.ctx, order[:n]))
				order = order[n:]
			}
			require.Empty(t, Diff(want, e.snapshot(), 0))
		})
	}
}

func TestSnapshotEqualsExpected(t *testing.T) {
	e := newEnv(t)
	base := nextMinute()
	now := base.Add(time.Minute)
	rng := rand.New(rand.NewPCG(7, 8))
	events := randomEvents(rng, 3000, base, "ev")
	states := []*schemas.KeyStateEvent{
		cooldown("s1", "p0", modelPro, base, base.Add(time.Hour)),
		cooldown("s2", "p1", modelFlash, base, base.Add(30*time.Second)), // already over at now
		keyEvent("s3", schemas.KindDisable, "p2", "p2k1", base),
		keyEvent("s4", schemas.KindEnable, "p1", "p1k2", base.Add(90*time.Second)),
	}
	// Small calls exercise chunking: each project's events span several script calls.
	w := e.writer(now, func(o *Options) { o.MaxEventsPerCall = 64 })
	for i := 0; i < len(events); i += 500 {
		require.NoError(t, w.ApplyRequests(e.ctx, events[i:min(i+500, len(events))]))
	}
	require.NoError(t, w.ApplyKeyStates(e.ctx, states))
	e.requireState(events, states, now)
}

func TestConcurrentWritersCountOnce(t *testing.T) {
	e := newEnv(t)
	base := nextMinute()
	now := base.Add(time.Minute)
	rng := rand.New(rand.NewPCG(9, 10))
	events := randomEvents(rng, 2000, base, "ev")
	// Two writers (two processor instances after a rebalance) apply overlapping ranges,
	// one of them backwards, at the same time.
	ranges := [][]*schemas.RequestEvent{events[:1500], reversed(events[500:])}
	var wg sync.WaitGroup
	errs := make([]error, len(ranges))
	for i, r := range ranges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := e.writer(now)
			for j := 0; j < len(r); j += 50 {
				if err := w.ApplyRequests(e.ctx, r[j:min(j+50, len(r))]); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	e.requireState(events, nil, now)
}

func reversed(in []*schemas.RequestEvent) []*schemas.RequestEvent {
	out := make([]*schemas.RequestEvent, len(in))
	for i, e := range in {
		out[len(in)-1-i] = e
	}
	return out
}

func TestBlacklistStats(t *testing.T) {
	e := newEnv(t)
	base := nextMinute()
	rpd := cooldown("c2", "p2", modelFlash, base, base.Add(time.Hour))
	rpd.Reason = schemas.ReasonRPD
	require.NoError(t, e.writer(base).ApplyKeyStates(e.ctx, []*schemas.KeyStateEvent{
		cooldown("c1", "p1", modelPro, base, base.Add(time.Minute)),
		rpd,
		cooldown("c3", "p3", modelPro, base, base.Add(-time.Second)), // over: never written
		keyEvent("d1", schemas.KindDisable, "p1", "k1", base),
	}))
	st, err := e.reader.BlacklistStats(e.ctx)
	require.NoError(t, err)
	require.Equal(t, BlacklistStats{
		TotalEntries: 3, ActiveEntries: 3, Cooldowns: 2, DisabledKeys: 1,
		ByReason: map[string]int{schemas.ReasonRPM: 1, schemas.ReasonRPD: 1, schemas.ReasonKeyInvalid: 1},
		ByModel:  map[string]int{modelPro: 1, modelFlash: 1},
	}, st)
}

func TestSnapshotOfProjects(t *testing.T) {
	e := newEnv(t)
	base := nextMinute()
	events := []*schemas.RequestEvent{
		request("a", modelPro, ok("p1", "k1", base, 1)),
		request("b", modelPro, ok("p2", "k2", base, 1)),
	}
	require.NoError(t, e.writer(base).ApplyRequests(e.ctx, events))
	got, err := e.reader.Snapshot(e.ctx, "p2")
	require.NoError(t, err)
	require.Equal(t, Expected(events[1:], nil, base), got)
	require.Len(t, WithoutMarks(got), len(got)-1)
}

func TestMalformedArgumentsWriteNothing(t *testing.T) {
	// An encoder bug must fail the call before the first write: a script that loops
	// after writing cannot be killed and blocks Valkey for everyone.
	e := newEnv(t)
	w := e.writer(time.Now())
	tag := projectTag(e.keys, "p1")
	cases := []struct {
		script *valkey.Lua
		args   []string
	}{
		{w.requests, []string{"1", "applied:x", "9999999999999", "0"}},
		{w.requests, []string{"1", "applied:x", "9999999999999", "0", "1", "health:k", "fails:k", "1", "1", "1", "9999999999999", "1751457601000"}},
		{w.requests, []string{"1", "applied:x", "9999999999999", "-3", "0"}},
		{w.keyStates, []string{"s", "blacklist:k", "{}", "d", "-4", "x"}},
		{w.keyStates, []string{"s", "blacklist:k", "{}", "x"}},
	}
	for _, c := range cases {
		err := c.script.Exec(e.ctx, e.client, []string{tag}, c.args).Error()
		require.ErrorContains(t, err, "malformed", "args %v", c.args)
	}
	require.Empty(t, e.snapshot())
}

func TestKeyStatesKeepOrderAcrossChunks(t *testing.T) {
	// With one event per script call, the project's calls must still run in topic
	// order: cool-down, clear, a shorter cool-down ends with the shorter one.
	e := newEnv(t)
	base := nextMinute()
	clear := keyState("x", schemas.KindClearCooldown, "p1", base)
	clear.Model = modelPro
	events := []*schemas.KeyStateEvent{
		cooldown("c1", "p1", modelPro, base, base.Add(time.Hour)),
		keyEvent("d1", schemas.KindDisable, "p2", "k2", base),
		clear,
		cooldown("c2", "p1", modelPro, base, base.Add(time.Minute)),
		keyEvent("e1", schemas.KindEnable, "p2", "k2", base.Add(time.Second)),
	}
	require.NoError(t, e.writer(base, func(o *Options) { o.MaxEventsPerCall = 1 }).ApplyKeyStates(e.ctx, events))
	got, err := e.reader.Cooldown(e.ctx, "p1", modelPro)
	require.NoError(t, err)
	require.Equal(t, "c2", got.EventID)
	entry, err := e.reader.Blacklisted(e.ctx, "p2", "k2")
	require.NoError(t, err)
	require.Nil(t, entry)
	e.requireState(nil, events, base)
}

func TestUsageOf(t *testing.T) {
	e := newEnv(t)
	ts := nextMinute()
	require.NoError(t, e.writer(ts).ApplyRequests(e.ctx, []*schemas.RequestEvent{
		request("a", modelPro, ok("p1", "k1", ts, 10)),
		request("b", modelFlash, ok("p2", "k2", ts, 20)),
		request("c", modelFlash, ok("p2", "k2", ts, 30)),
	}))
	got, err := e.reader.UsageOf(e.ctx, []Pair{{"p1", modelPro}, {"p2", modelFlash}, {"p3", modelPro}}, ts)
	require.NoError(t, err)
	require.Equal(t, []Usage{
		{MinuteRequests: 1, MinuteTokens: 10, DayRequests: 1},
		{MinuteRequests: 2, MinuteTokens: 50, DayRequests: 2},
		{},
	}, got)
	h, err := e.reader.Health(e.ctx, "p3", "nobody")
	require.NoError(t, err)
	require.Equal(t, Health{}, h)
}

func TestWritersShareARegistry(t *testing.T) {
	e := newEnv(t)
	ts := nextMinute()
	reg := prometheus.NewRegistry()
	events := []*schemas.RequestEvent{request("a", modelPro, ok("p1", "k1", ts, 1))}
	for range 2 {
		w := e.writer(ts, func(o *Options) { o.Registerer = reg })
		require.NoError(t, w.ApplyRequests(e.ctx, events))
	}
	require.Equal(t, 1.0, metricValue(t, reg, "gca_processor_valkey_events_applied_total"))
	require.Equal(t, 1.0, metricValue(t, reg, "gca_processor_valkey_events_skipped_total"))
}

// TestCountingSettlesTheReservation: the ingress reserves quota in the pending hash when
// it picks a key; counting the attempt must delete that reservation in the same script,
// so the request is seen once (pending, then counted) — never twice, never not at all.
// A redelivery must not touch a newer reservation with another id.
func TestCountingSettlesTheReservation(t *testing.T) {
	e := newEnv(t)
	base := nextMinute()
	pending := e.keys.Pending("p1", modelPro)
	minute, day := schemas.MinuteOf(base), schemas.PacificDay(base)
	entry := func(tokens int) string {
		return strconv.FormatInt(minute, 10) + ":" + strconv.Itoa(tokens) + ":" +
			strconv.FormatInt(schemas.MinuteCounterExpiry(base).UnixMilli(), 10) + ":" + day
	}
	require.NoError(t, e.client.Do(e.ctx, e.client.B().Hset().Key(pending).FieldValue().
		FieldValue("r-counted", entry(7)).FieldValue("r-other", entry(1)).Build()).Error())
	// The running totals, as the ingress's reservation script keeps them.
	mTotal, dTotal := e.keys.PendingMinute("p1", modelPro, minute), e.keys.PendingDay("p1", modelPro, day)
	require.NoError(t, e.client.Do(e.ctx, e.client.B().Hset().Key(mTotal).FieldValue().FieldValue("r", "2").FieldValue("t", "8").Build()).Error())
	require.NoError(t, e.client.Do(e.ctx, e.client.B().Set().Key(dTotal).Value("2").Build()).Error())
	totals := func() []string {
		m, err := e.client.Do(e.ctx, e.client.B().Hmget().Key(mTotal).Field("r", "t").Build()).AsStrSlice()
		require.NoError(t, err)
		d, err := e.client.Do(e.ctx, e.client.B().Get().Key(dTotal).Build()).ToString()
		require.NoError(t, err)
		return append(m, d)
	}
	ev := request("e-res", modelPro, ok("p1", "k1", base, 7))
	ev.Attempts[0].Reservation = "r-counted"
	w := e.writer(base)
	require.NoError(t, w.ApplyRequests(e.ctx, []*schemas.RequestEvent{ev}))

	fields, err := e.client.Do(e.ctx, e.client.B().Hkeys().Key(pending).Build()).AsStrSlice()
	require.NoError(t, err)
	require.Equal(t, []string{"r-other"}, fields)
	require.Equal(t, []string{"1", "1", "1"}, totals(), "the settled reservation left the totals")
	require.Equal(t, Usage{MinuteRequests: 1, MinuteTokens: 7, DayRequests: 1}, e.usage("p1", modelPro, base))

	// Redelivered: nothing is counted again, and the other reservation stays.
	require.NoError(t, w.ApplyRequests(e.ctx, []*schemas.RequestEvent{ev}))
	fields, err = e.client.Do(e.ctx, e.client.B().Hkeys().Key(pending).Build()).AsStrSlice()
	require.NoError(t, err)
	require.Equal(t, []string{"r-other"}, fields)
	require.Equal(t, []string{"1", "1", "1"}, totals())
	require.Equal(t, Usage{MinuteRequests: 1, MinuteTokens: 7, DayRequests: 1}, e.usage("p1", modelPro, base))
}

// TestCountingSettlesManyReservations: one call settles the reservations of many
// events, of two minutes, each entry once and each total by the sum it held; an id no
// longer pending and a malformed entry change no total.
func TestCountingSettlesManyReservations(t *testing.T) {
	e := newEnv(t)
	base := nextMinute()
	next := base.Add(time.Minute)
	pending := e.keys.Pending("p1", modelPro)
	day := schemas.PacificDay(base)
	entry := func(at time.Time, tokens int) string {
		return strconv.FormatInt(schemas.MinuteOf(at), 10) + ":" + strconv.Itoa(tokens) + ":" +
			strconv.FormatInt(schemas.MinuteCounterExpiry(at).UnixMilli(), 10) + ":" + day
	}
	require.NoError(t, e.client.Do(e.ctx, e.client.B().Hset().Key(pending).FieldValue().
		FieldValue("r1", entry(base, 5)).FieldValue("r2", entry(base, 3)).FieldValue("r3", entry(next, 2)).
		FieldValue("r-bad", "garbage").FieldValue("r-other", entry(next, 1)).Build()).Error())
	m0 := e.keys.PendingMinute("p1", modelPro, schemas.MinuteOf(base))
	m1 := e.keys.PendingMinute("p1", modelPro, schemas.MinuteOf(next))
	dTotal := e.keys.PendingDay("p1", modelPro, day)
	require.NoError(t, e.client.Do(e.ctx, e.client.B().Hset().Key(m0).FieldValue().FieldValue("r", "2").FieldValue("t", "8").Build()).Error())
	require.NoError(t, e.client.Do(e.ctx, e.client.B().Hset().Key(m1).FieldValue().FieldValue("r", "2").FieldValue("t", "3").Build()).Error())
	require.NoError(t, e.client.Do(e.ctx, e.client.B().Set().Key(dTotal).Value("4").Build()).Error())

	var events []*schemas.RequestEvent
	for i, r := range []struct {
		id string
		at time.Time
	}{{"r1", base}, {"r2", base}, {"r3", next}, {"r-missing", next}, {"r-bad", next}} {
		ev := request(fmt.Sprintf("e-many-%d", i), modelPro, ok("p1", "k1", r.at, 1))
		ev.Attempts[0].Reservation = r.id
		events = append(events, ev)
	}
	require.NoError(t, e.writer(next).ApplyRequests(e.ctx, events))

	fields, err := e.client.Do(e.ctx, e.client.B().Hkeys().Key(pending).Build()).AsStrSlice()
	require.NoError(t, err)
	require.Equal(t, []string{"r-other"}, fields)
	for key, want := range map[string][]string{m0: {"0", "0"}, m1: {"1", "1"}} {
		got, err := e.client.Do(e.ctx, e.client.B().Hmget().Key(key).Field("r", "t").Build()).AsStrSlice()
		require.NoError(t, err)
		require.Equal(t, want, got, key)
	}
	d, err := e.client.Do(e.ctx, e.client.B().Get().Key(dTotal).Build()).ToString()
	require.NoError(t, err)
	require.Equal(t, "1", d)
}
