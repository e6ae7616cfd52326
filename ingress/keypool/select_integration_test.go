//go:build integration

package keypool_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

func exhausted(t testing.TB, err error) *keypool.ExhaustedError {
	t.Helper()
	var x *keypool.ExhaustedError
	require.ErrorAs(t, err, &x)
	return x
}

// TestSelectSkipsUnusableProjects: selection never returns a key of a project that is
// cooling down or has no headroom, whatever the cause of its state.
func TestSelectSkipsUnusableProjects(t *testing.T) {
	cases := []struct {
		name string
		// prepare makes project "p1" unusable (p2 stays usable).
		prepare func(t *testing.T, e *env)
	}{
		{"cooldown after a 429", func(t *testing.T, e *env) {
			until := e.clock.Now().Add(30 * time.Second)
			b, _ := json.Marshal(schemas.BlacklistEntry{Project: "p1", Reason: schemas.ReasonRPM, ExpiresAt: until.UnixMilli(), Model: model})
			e.set(t, e.keys.Cooldown("p1", model), string(b), until)
		}},
		{"rpm counted", func(t *testing.T, e *env) {
			e.set(t, e.keys.MinuteRequests("p1", model, schemas.MinuteOf(e.clock.Now())), "10", time.Time{})
		}},
		{"tpm counted", func(t *testing.T, e *env) {
			e.set(t, e.keys.MinuteTokens("p1", model, schemas.MinuteOf(e.clock.Now())), "995", time.Time{})
		}},
		{"rpd counted", func(t *testing.T, e *env) {
			e.set(t, e.keys.DayRequests("p1", model, schemas.PacificDay(e.clock.Now())), "50", time.Time{})
		}},
		{"pending reservations of another replica", func(t *testing.T, e *env) {
			e.reserveElsewhere(t, "p1", 10)
		}},
		{"every key blacklisted", func(t *testing.T, e *env) {
			cfgKeys := e.keysOf["p1"]
			for _, h := range cfgKeys {
				e.set(t, e.keys.Blacklist("p1", h), `{"reason":"api_key_invalid","expiresAt":0}`, time.Time{})
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := projectsConfig(t,
				projectSpec{id: "p1", keys: 2, rpm: 10, tpm: 1000, rpd: 50},
				projectSpec{id: "p2", keys: 2, rpm: 10, tpm: 1000, rpd: 50},
			)
			p := e.pool(t, cfg)
			e.keysOf = map[string][]string{}
			for _, k := range p.Keys() {
				e.keysOf[k.Project] = append(e.keysOf[k.Project], k.Hash)
			}
			tc.prepare(t, e)
			ctx := context.Background()
			for i := 0; i < 10; i++ {
				l, err := p.Select(ctx, keypool.SelectRequest{Model: model, EstimatedTokens: 10})
				require.NoError(t, err, "selection %d", i)
				require.Equal(t, "p2", l.Key.Project(), "selection %d", i)
				require.NotEmpty(t, l.Reservation)
				require.False(t, l.Local)
			}
			_, err := p.Select(ctx, keypool.SelectRequest{Model: model, EstimatedTokens: 10})
			x := exhausted(t, err)
			require.False(t, x.RetryAt.IsZero() && x.Reason != keypool.ExhaustedDisabled, "reason %s", x.Reason)
		})
	}
}

// TestBurst: 200 concurrent selections against 3 projects whose RPM adds up to 100
// admit exactly 100; the other 100 learn that quota frees up at the end of the minute.
func TestBurst(t *testing.T) {
	e := newEnv(t)
	cfg := projectsConfig(t,
		projectSpec{id: "p1", keys: 2, rpm: 34},
		projectSpec{id: "p2", keys: 1, rpm: 33},
		projectSpec{id: "p3", keys: 3, rpm: 33},
	)
	p := e.pool(t, cfg)
	leases, errs := burst(t, []*keypool.Pool{p}, 200)
	require.Len(t, leases, 100)
	require.Len(t, errs, 100)
	perProject := map[string]int{}
	for _, l := range leases {
		perProject[l.Key.Project()]++
		require.False(t, l.Local)
	}
	require.Equal(t, map[string]int{"p1": 34, "p2": 33, "p3": 33}, perProject)
	for _, err := range errs {
		x := exhausted(t, err)
		require.Equal(t, keypool.ExhaustedQuota, x.Reason)
		require.True(t, x.QuotaExceeded.RPM)
		require.Equal(t, schemas.MinuteEnd(e.clock.Now()), x.RetryAt)
	}
	for _, id := range []string{"p1", "p2", "p3"} {
		require.Len(t, e.pending(t, id), perProject[id])
	}
}

// TestTwoReplicas: two pools sharing one Valkey, under one concurrent burst, never
// admit more than the limits together.
func TestTwoReplicas(t *testing.T) {
	e := newEnv(t)
	cfg := projectsConfig(t,
		projectSpec{id: "p1", keys: 2, rpm: 34, tpm: 100_000},
		projectSpec{id: "p2", keys: 1, rpm: 33, tpm: 100_000},
		projectSpec{id: "p3", keys: 3, rpm: 33, tpm: 100_000},
	)
	a := e.pool(t, cfg, func(o *keypool.Options) { o.InstanceID = "replica-a" })
	b := e.pool(t, cfg, func(o *keypool.Options) { o.InstanceID = "replica-b" })
	leases, errs := burst(t, []*keypool.Pool{a, b}, 400)
	over := len(leases) - 100
	t.Logf("two replicas, 400 concurrent selections, total RPM 100: %d leases, over-admission %d (expected 0)", len(leases), over)
	require.Equal(t, 0, over)
	require.Len(t, leases, 100)
	require.Len(t, errs, 300)
}

// burst runs n concurrent selections spread over the pools.
func burst(t *testing.T, pools []*keypool.Pool, n int) ([]*keypool.Lease, []error) {
	t.Helper()
	var mu sync.Mutex
	var leases []*keypool.Lease
	var errs []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(p *keypool.Pool) {
			defer wg.Done()
			<-start
			l, err := p.Select(context.Background(), keypool.SelectRequest{Model: model, EstimatedTokens: 100})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			leases = append(leases, l)
		}(pools[i%len(pools)])
	}
	close(start)
	wg.Wait()
	return leases, errs
}

// TestNoDoubleCounting: a request is seen once — as a reservation until the processor
// counts it, then as a count — so the processors catching up neither frees nor
// consumes quota twice.
func TestNoDoubleCounting(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 5, tpm: 1000, rpd: 100}))
	ctx := context.Background()
	var leases []*keypool.Lease
	for i := 0; i < 3; i++ {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model, EstimatedTokens: 100})
		require.NoError(t, err)
		require.NoError(t, p.Release(ctx, l, keypool.Outcome{Counted: true}))
		leases = append(leases, l)
	}
	// The processors count two of them (with the upstream's real token counts).
	e.count(t, leases[0], 150)
	e.count(t, leases[1], 150)
	require.Len(t, e.pending(t, "p1"), 1)
	require.Equal(t, int64(2), e.getInt(t, e.keys.MinuteRequests("p1", model, schemas.MinuteOf(e.clock.Now()))))

	// 2 counted + 1 pending: exactly two more fit in RPM 5.
	for i := 0; i < 2; i++ {
		_, err := p.Select(ctx, keypool.SelectRequest{Model: model, EstimatedTokens: 100})
		require.NoError(t, err)
	}
	_, err := p.Select(ctx, keypool.SelectRequest{Model: model, EstimatedTokens: 100})
	require.True(t, exhausted(t, err).QuotaExceeded.RPM)

	states, err := p.KeyStates(ctx)
	require.NoError(t, err)
	require.Len(t, states, 1)
	var q keypool.ModelQuota
	for _, mq := range states[0].Quotas {
		if mq.Model == model {
			q = mq
		}
	}
	require.Equal(t, keypool.Window{Counted: 2, Pending: 3, Left: 0}, q.Requests)
	require.Equal(t, keypool.Window{Counted: 300, Pending: 300, Left: 400}, q.Tokens)
	require.Equal(t, keypool.Window{Counted: 2, Pending: 3, Left: 95}, q.Day)
}

// TestMinuteBoundaryFreesRPM: RPM is a fixed clock minute; the next one starts empty.
func TestMinuteBoundaryFreesRPM(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 2}))
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		_, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
	}
	_, err := p.Select(ctx, keypool.SelectRequest{Model: model})
	x := exhausted(t, err)
	require.Equal(t, schemas.MinuteEnd(e.clock.Now()), x.RetryAt)

	e.clock.Set(x.RetryAt)
	for i := 0; i < 2; i++ {
		_, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
	}
	_, err = p.Select(ctx, keypool.SelectRequest{Model: model})
	exhausted(t, err)
}

// TestRPDHoldsUntilPacificMidnight: the day quota resets at midnight in Los Angeles,
// not at UTC midnight and not 24 hours later.
func TestRPDHoldsUntilPacificMidnight(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 100, rpd: 3}))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
		require.NoError(t, p.Release(ctx, l, keypool.Outcome{Counted: true}))
		e.count(t, l, 0)
		e.clock.Add(time.Minute)
	}
	midnight := schemas.NextPacificMidnight(e.clock.Now())
	for _, at := range []time.Time{e.clock.Now(), e.clock.Now().Add(10 * time.Minute), midnight.Add(-time.Second)} {
		if at.Before(e.clock.Now()) {
			continue
		}
		e.clock.Set(at)
		_, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		x := exhausted(t, err)
		require.Equal(t, keypool.ExhaustedQuota, x.Reason)
		require.True(t, x.QuotaExceeded.RPD)
		require.Equal(t, midnight, x.RetryAt, "at %s", at)
	}
	e.clock.Set(midnight)
	l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
	require.NoError(t, err)
	require.Equal(t, "p1", l.Key.Project())
}

// TestDisabledAndOpenCircuitSkipped: a blacklisted key and a key with too many recent
// failures are never chosen; when nothing else is left the error says when the
// circuit closes.
func TestDisabledAndOpenCircuitSkipped(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 3, rpm: 100}))
	keys := p.Keys()
	bad, open, good := keys[0].Hash, keys[1].Hash, keys[2].Hash
	e.set(t, e.keys.Blacklist("p1", bad), `{"keyHash":"`+bad+`","reason":"api_key_invalid","expiresAt":0}`, time.Time{})
	now := e.clock.Now()
	for i, ago := range []time.Duration{20 * time.Second, 10 * time.Second, 5 * time.Second} {
		require.NoError(t, e.client.Do(context.Background(), e.client.B().Zadd().Key(e.keys.Fails("p1", open)).ScoreMember().ScoreMember(float64(now.Add(-ago).UnixMilli()), "ev"+itoa(i)).Build()).Error())
	}
	ctx := context.Background()
	for i := 0; i < 12; i++ {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
		require.Equal(t, good, l.Key.Hash())
		require.NoError(t, p.Release(ctx, l, keypool.Outcome{Counted: false}))
	}
	dis, err := p.Disabled(ctx)
	require.NoError(t, err)
	require.Len(t, dis, 1)
	require.Equal(t, bad, dis[0].Key.Hash())
	require.Equal(t, schemas.ReasonKeyInvalid, dis[0].Reason)

	// The good key fails with 5xx until its own circuit opens: nothing is left.
	for i := 0; i < 3; i++ {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
		require.Equal(t, good, l.Key.Hash())
		require.NoError(t, p.Release(ctx, l, keypool.Outcome{Failure: gemini.FailureUpstream}))
	}
	_, err = p.Select(ctx, keypool.SelectRequest{Model: model})
	x := exhausted(t, err)
	require.Equal(t, keypool.ExhaustedDisabled, x.Reason)
	// The first of the open key's failures leaves the 30 s window 10 s from now.
	require.Equal(t, now.Add(10*time.Second).UnixMilli(), x.RetryAt.UnixMilli())
}

// TestReleaseOutcomes: an outcome changes this instance's view at once, before any
// key-state event has reached Valkey.
func TestReleaseOutcomes(t *testing.T) {
	cases := []struct {
		name    string
		outcome keypool.Outcome
		// skipped says whether p1 must be passed over afterwards, and until when.
		skipped bool
		until   func(now time.Time) time.Time
	}{
		{"per-minute 429 with retryDelay cools the pair for the delay",
			keypool.Outcome{Failure: gemini.FailureMinuteQuota, RetryDelay: 20 * time.Second, QuotaExceeded: schemas.QuotaExceeded{RPM: true}},
			true, func(now time.Time) time.Time { return now.Add(20 * time.Second) }},
		{"429 without details cools to the end of the minute",
			keypool.Outcome{Failure: gemini.FailureQuotaUnknown},
			true, schemas.MinuteEnd},
		{"per-day 429 cools to Pacific midnight",
			keypool.Outcome{Failure: gemini.FailureDayQuota, RetryDelay: 30 * time.Second},
			true, schemas.NextPacificMidnight},
		{"invalid key is disabled", keypool.Outcome{Failure: gemini.FailureKeyInvalid}, true, nil},
		{"forbidden key is disabled", keypool.Outcome{Failure: gemini.FailureForbidden}, true, nil},
		// 503s are the upstream's trouble, not the key's: one never cools anything.
		{"503 cools nothing", keypool.Outcome{Failure: gemini.FailureUpstream}, false, nil},
		{"success", keypool.Outcome{Counted: true}, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 100}, projectSpec{id: "p2", keys: 1, rpm: 100}),
				func(o *keypool.Options) { o.Strategy = keypool.RoundRobin })
			ctx := context.Background()
			var l *keypool.Lease
			for l == nil || l.Key.Project() != "p1" {
				var err error
				l, err = p.Select(ctx, keypool.SelectRequest{Model: model})
				require.NoError(t, err)
			}
			require.NoError(t, p.Release(ctx, l, tc.outcome))
			if !tc.outcome.Counted {
				require.NotContains(t, e.pending(t, "p1"), l.Reservation, "uncounted reservation deleted at once")
			}
			seen := map[string]int{}
			for i := 0; i < 6; i++ {
				l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
				require.NoError(t, err)
				seen[l.Key.Project()]++
			}
			if tc.skipped {
				require.Zero(t, seen["p1"])
			} else {
				require.Positive(t, seen["p1"])
			}
			if tc.until != nil {
				until, _, _ := keypool.CooldownFor(tc.outcome, e.clock.Now())
				require.Equal(t, tc.until(e.clock.Now()).UnixMilli(), until.UnixMilli())
				e.clock.Set(until)
				for i := 0; i < 4; i++ {
					l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
					require.NoError(t, err)
					seen[l.Key.Project()+"-after"]++
				}
				require.Positive(t, seen["p1-after"], "the pair is usable again when the cool-down ends")
			}
		})
	}
}

// TestReloadKeepsOutstandingLease: a reload that removes a key does not disturb the
// lease that holds it; the key is not selected again, the new one is.
func TestReloadKeepsOutstandingLease(t *testing.T) {
	e := newEnv(t)
	cfgA := projectsConfig(t, projectSpec{id: "pa", keys: 1, rpm: 100})
	p := e.pool(t, cfgA)
	ctx := context.Background()
	l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
	require.NoError(t, err)
	old := l.Key.Hash()

	cfgB := projectsConfig(t, projectSpec{id: "pb", keys: 1, rpm: 100})
	change, err := p.Reload(cfgB)
	require.NoError(t, err)
	require.Equal(t, []string{old}, change.Removed)
	require.Len(t, change.Added, 1)

	require.Equal(t, old, l.Key.Hash())
	require.NotEmpty(t, l.Key.Secret().Reveal())
	require.Contains(t, e.pending(t, "pa"), l.Reservation)
	require.NoError(t, p.Release(ctx, l, keypool.Outcome{Failure: gemini.FailureUpstream}))
	require.Empty(t, e.pending(t, "pa"))

	for i := 0; i < 5; i++ {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
		require.Equal(t, change.Added[0], l.Key.Hash())
	}
	_, err = p.Reload(&keypool.Config{Keys: []keypool.KeyConfig{{Key: keypool.NewSecret("")}}})
	require.Error(t, err, "an invalid config is refused")
	require.Len(t, p.Keys(), 1)
}

// TestPassthroughSubset: a pass-through client's keys form the pool of its request;
// each key is its own project with quota tracked by hash.
func TestPassthroughSubset(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t, &keypool.Config{PassthroughTier: keypool.TierFree})
	ctx := context.Background()
	k1, k2 := p.PassthroughKey(testKey(t, 1)), p.PassthroughKey(testKey(t, 2))
	require.Equal(t, k1.Hash(), k1.Project())
	// gemini-2.5-pro free tier: 5 RPM per project, so 10 for the two keys.
	got := map[string]int{}
	for i := 0; i < 10; i++ {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: "gemini-2.5-pro", Subset: []*keypool.Key{k1, k2}})
		require.NoError(t, err)
		got[l.Key.Hash()]++
	}
	require.Equal(t, map[string]int{k1.Hash(): 5, k2.Hash(): 5}, got)
	_, err := p.Select(ctx, keypool.SelectRequest{Model: "gemini-2.5-pro", Subset: []*keypool.Key{k1, k2}})
	require.Equal(t, keypool.ExhaustedQuota, exhausted(t, err).Reason)
	_, err = p.Select(ctx, keypool.SelectRequest{Model: "gemini-2.5-pro", Subset: []*keypool.Key{k1}, Exclude: []string{k1.Hash()}})
	require.Equal(t, keypool.ExhaustedNoKeys, exhausted(t, err).Reason)
}

// TestModelNotAllowed: keys with an allow-list serve only those models.
func TestModelNotAllowed(t *testing.T) {
	e := newEnv(t)
	cfg := &keypool.Config{Keys: []keypool.KeyConfig{{Key: keypool.NewSecret(testKey(t, 1)), Models: []string{"gemini-2.5-flash"}}}}
	p := e.pool(t, cfg)
	_, err := p.Select(context.Background(), keypool.SelectRequest{Model: "gemini-2.5-pro"})
	require.Equal(t, keypool.ExhaustedModelNotAllowed, exhausted(t, err).Reason)
	_, err = p.Select(context.Background(), keypool.SelectRequest{Model: "models/gemini-2.5-flash"})
	require.NoError(t, err)
	_, err = p.Select(context.Background(), keypool.SelectRequest{Model: "../../etc"})
	require.Error(t, err)
	require.False(t, errors.As(err, new(*keypool.ExhaustedError)))
}

// TestRefreshSeesOtherReplicas: the background refresh brings another replica's
// reservations into the view, so this replica passes over a full project without a
// round trip.
func TestRefreshSeesOtherReplicas(t *testing.T) {
	e := newEnv(t)
	cfg := projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 10}, projectSpec{id: "p2", keys: 1, rpm: 10})
	reg := prometheus.NewRegistry()
	a := e.pool(t, cfg, func(o *keypool.Options) { o.Registerer = reg })
	b := e.pool(t, cfg)
	ctx := context.Background()
	// a learns that the model is in use; its release frees the reservation again.
	l, err := a.Select(ctx, keypool.SelectRequest{Model: model})
	require.NoError(t, err)
	require.NoError(t, a.Release(ctx, l, keypool.Outcome{}))
	// b fills p1.
	var p1 []*keypool.Key
	for _, k := range b.Keys() {
		if k.Project == "p1" {
			p1 = append(p1, b.Key(k.Hash))
		}
	}
	for i := 0; i < 10; i++ {
		_, err := b.Select(ctx, keypool.SelectRequest{Model: model, Subset: p1})
		require.NoError(t, err)
	}
	require.NoError(t, a.Refresh(ctx))
	before := testutil.ToFloat64(rejections(reg, "rpm", "valkey"))
	for i := 0; i < 10; i++ {
		l, err := a.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
		require.Equal(t, "p2", l.Key.Project())
	}
	require.Equal(t, before, testutil.ToFloat64(rejections(reg, "rpm", "valkey")), "p1 was never tried in Valkey")
}

func rejections(reg *prometheus.Registry, reason, by string) prometheus.Collector {
	return &gathered{reg: reg, name: "gca_ingress_keypool_project_rejections_total", labels: map[string]string{"reason": reason, "by": by}}
}

// gathered reads one sample of a registry as a collector testutil understands.
type gathered struct {
	reg    *prometheus.Registry
	name   string
	labels map[string]string
}

func (g *gathered) Describe(ch chan<- *prometheus.Desc) {}

func (g *gathered) Collect(ch chan<- prometheus.Metric) {
	v := 0.0
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != g.name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if g.labels[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.UntypedValue, v)
}

// TestUncountedReservationsAge: a reservation whose event never came (the ingress
// crashed) holds its minute's quota only while that minute's total lives, so the next
// minute is free again; the day total keeps it until the day ends (erring on the side of
// the quota). Entries that old are dropped once the hash grows large.
func TestUncountedReservationsAge(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 3, rpd: 100}))
	ctx := context.Background()
	e.reserveElsewhere(t, "p1", 3) // crashed reservations: the minute is full
	_, err := p.Select(ctx, keypool.SelectRequest{Model: model})
	exhausted(t, err)

	e.clock.Add(time.Minute) // a new minute: its total is empty
	_, err = p.Select(ctx, keypool.SelectRequest{Model: model})
	require.NoError(t, err)
	day := e.getInt(t, e.keys.PendingDay("p1", model, schemas.PacificDay(e.clock.Now())))
	require.Equal(t, int64(4), day, "the day still counts the crashed reservations")

	// Thousands of stale entries are swept by the reservation that takes the hash past
	// the next multiple of 256 entries (a sweep on every call would cost a scan per
	// request while the processors lag).
	now := e.clock.Now()
	stale := strconv.FormatInt(schemas.MinuteOf(now)-30, 10) + ":1:" + strconv.FormatInt(now.Add(-20*time.Minute).UnixMilli(), 10) + ":" + schemas.PacificDay(now)
	held, err := e.client.Do(ctx, e.client.B().Hlen().Key(e.keys.Pending("p1", model)).Build()).AsInt64()
	require.NoError(t, err)
	cmd := e.client.B().Hset().Key(e.keys.Pending("p1", model)).FieldValue()
	for i := 0; i < 20*256-1-int(held); i++ {
		cmd = cmd.FieldValue("stale-"+strconv.Itoa(i), stale)
	}
	require.NoError(t, e.client.Do(ctx, cmd.Build()).Error())
	_, err = p.Select(ctx, keypool.SelectRequest{Model: model})
	require.NoError(t, err)
	left := e.pending(t, "p1")
	for k := range left {
		require.NotContains(t, k, "stale-")
	}
	ttl, err := e.client.Do(ctx, e.client.B().Pttl().Key(e.keys.Pending("p1", model)).Build()).AsInt64()
	require.NoError(t, err)
	require.Greater(t, ttl, int64(0), "the pending hash expires by itself")
}

// TestKeyStates: the admin view of keys shows blacklist entries, failures and quotas.
func TestKeyStates(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 2, rpm: 10, tpm: 1000, rpd: 100}))
	keys := p.Keys()
	now := e.clock.Now()
	e.set(t, e.keys.Blacklist("p1", keys[0].Hash), `{"keyHash":"`+keys[0].Hash+`","reason":"permission_denied","timestamp":`+itoa(int(now.UnixMilli()))+`,"expiresAt":0}`, time.Time{})
	until := now.Add(40 * time.Second)
	e.set(t, e.keys.Cooldown("p1", model), `{"reason":"tpm_exceeded","expiresAt":`+itoa(int(until.UnixMilli()))+`}`, until)
	require.NoError(t, e.client.Do(context.Background(), e.client.B().Hset().Key(e.keys.Health("p1", keys[1].Hash)).FieldValue().
		FieldValue("ok_ms", itoa(int(now.Add(-time.Minute).UnixMilli()))).FieldValue("fail_ms", itoa(int(now.UnixMilli()))).
		FieldValue("fail_kind", "upstream").FieldValue("lat_n", "4").FieldValue("lat_sum_ms", "1000").Build()).Error())
	require.NoError(t, e.client.Do(context.Background(), e.client.B().Zadd().Key(e.keys.Fails("p1", keys[1].Hash)).ScoreMember().
		ScoreMember(float64(now.UnixMilli()), "ev1").Build()).Error())

	states, err := p.KeyStates(context.Background())
	require.NoError(t, err)
	require.Len(t, states, 2)
	require.NotNil(t, states[0].Disabled)
	require.Equal(t, schemas.ReasonForbidden, states[0].Disabled.Reason)
	require.Nil(t, states[1].Disabled)
	h := states[1].Health
	require.Equal(t, "upstream", h.FailureKind)
	require.Equal(t, int64(1), h.Failures)
	require.InDelta(t, 250, h.LatencyAvgMs, 0.001)
	require.Equal(t, now.UnixMilli(), h.LastFailure.UnixMilli())
	var q *keypool.ModelQuota
	for i := range states[1].Quotas {
		if states[1].Quotas[i].Model == model {
			q = &states[1].Quotas[i]
		}
	}
	require.NotNil(t, q)
	require.Equal(t, keypool.Limits{RPM: 10, TPM: 1000, RPD: 100}, q.Limits)
	require.Equal(t, "tpm_exceeded", q.CooldownReason)
	require.Equal(t, until.UnixMilli(), q.CooldownUntil.UnixMilli())
	require.Equal(t, int64(10), q.Requests.Left)

	dis, err := p.Disabled(context.Background())
	require.NoError(t, err)
	require.Len(t, dis, 1)
	require.Equal(t, now.UnixMilli(), dis[0].Since.UnixMilli())
	require.False(t, dis[0].Local)
}
