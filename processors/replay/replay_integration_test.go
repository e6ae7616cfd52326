//go:build integration

package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
)

// A fresh Valkey replay holds exactly the state statesink.Expected computes for the
// events at the replay's clock — marks included — and the clock is the newest event's.
func TestFreshValkeyReplayEqualsExpected(t *testing.T) {
	f := newFixture(t, false)
	f.produce(5000, 300, 0, 40*time.Second)
	o := f.options(TargetValkey, IntoFresh, "t1")
	st, err := Run(f.ctx, o)
	require.NoError(t, err)
	require.EqualValues(t, 5300, st.Events)
	newest := int64(0)
	for _, e := range f.reqs {
		newest = max(newest, e.TimeMs)
	}
	// The events lie in the future (so no window ends during the test): the clock is
	// the present, not the newest event time.
	require.Less(t, st.Clock.UnixMilli(), newest)
	require.WithinDuration(t, time.Now(), st.Clock, 10*time.Second)

	got := f.snapshot(FreshPrefix(f.prefix, "t1"))
	delete(got, "replay") // the replay's own record
	require.Empty(t, statesink.Diff(f.expected(st.Clock), got, 0))
	require.Empty(t, f.snapshot(f.prefix), "nothing live was written")
}

// An in-place replay adds what is missing and nothing else: run twice, the state is
// the same, counters not doubled.
func TestInPlaceReplayIsIdempotent(t *testing.T) {
	f := newFixture(t, false)
	reqs, states := f.produce(3000, 100, 0, 30*time.Second)
	// The live consumer applied the first half; the rest was lost.
	f.applyLive(reqs[:1500], nil, time.Now())
	o := f.options(TargetValkey, IntoInPlace, "")
	st, err := Run(f.ctx, o)
	require.NoError(t, err)
	first := f.snapshot(f.prefix)
	require.Empty(t, statesink.Diff(statesink.Expected(reqs, states, st.Clock), first, 0))
	_, err = Run(f.ctx, o)
	require.NoError(t, err)
	require.Empty(t, statesink.Diff(first, f.snapshot(f.prefix), 0))
}

// A switch replaces corrupted live state by the fresh state, catches up on events
// produced after the replay, and leaves the ingress's reservations and token counters
// alone: in one script, and project by project (offline, no live consumer running).
func TestSwitchValkey(t *testing.T) {
	for _, offline := range []bool{false, true} {
		t.Run(fmt.Sprintf("offline=%v", offline), func(t *testing.T) { testSwitchValkey(t, offline) })
	}
}

func testSwitchValkey(t *testing.T, offline bool) {
	f := newFixture(t, false)
	reqs, states := f.produce(4000, 200, 0, 30*time.Second)
	f.applyLive(reqs, states, time.Now())
	keys := schemas.Keys{Prefix: f.prefix}
	live := Derived(f.snapshot(f.prefix))
	var counter, cooldown string
	for k := range live {
		switch {
		case counter == "" && strings.Contains(k, "}:rpm:"):
			counter = k
		case cooldown == "" && strings.Contains(k, "}:cooldown:"):
			cooldown = k
		}
	}
	require.NotEmpty(t, counter)
	require.NotEmpty(t, cooldown)
	vk := f.vk
	require.NoError(t, vk.Do(f.ctx, vk.B().Set().Key(f.prefix+counter).Value("999").Build()).Error())
	require.NoError(t, vk.Do(f.ctx, vk.B().Del().Key(f.prefix+cooldown).Build()).Error())
	stray := keys.Cooldown("proj-00", "gemini-stray")
	require.NoError(t, vk.Do(f.ctx, vk.B().Set().Key(stray).Value("{}").Build()).Error())
	pending := keys.Pending("proj-01", "gemini-2.5-pro")
	require.NoError(t, vk.Do(f.ctx, vk.B().Hset().Key(pending).FieldValue().FieldValue("r1", "1:2:3").Build()).Error())
	token := f.prefix + "token:{tok1}:rpm:1"
	require.NoError(t, vk.Do(f.ctx, vk.B().Set().Key(token).Value("7").Build()).Error())

	o := f.options(TargetValkey, IntoFresh, "sw")
	_, err := Run(f.ctx, o)
	require.NoError(t, err)
	// Traffic goes on between the replay and the switch; the live consumer counts it.
	more, moreStates := f.produce(1000, 50, 0, 10*time.Second)
	f.applyLive(more, moreStates, time.Now())

	o.ValkeyGroup = f.prefix + "no-consumer"
	st, err := Switch(f.ctx, SwitchOptions{Options: o, Offline: offline})
	require.NoError(t, err)
	require.EqualValues(t, 1050, st.PreCatchUp.Events, "the fresh state caught up before the switch")
	require.Positive(t, st.ValkeyMoved)

	got := f.snapshot(f.prefix)
	require.Equal(t, "7", got["token:{tok1}:rpm:1"].String, "token counters stay")
	require.Contains(t, got, strings.TrimPrefix(pending, f.prefix), "reservations stay")
	delete(got, "token:{tok1}:rpm:1")
	delete(got, strings.TrimPrefix(pending, f.prefix))
	require.Empty(t, statesink.Diff(f.expected(time.Now()), got, 0), "live state is the events' state, marks included")
	require.Empty(t, f.snapshot(FreshPrefix(f.prefix, "sw")), "the fresh prefix is gone")

	// Applying any event again changes nothing: the marks moved with the state.
	f.applyLive(f.reqs, nil, time.Now())
	require.Empty(t, statesink.Diff(Derived(f.expected(time.Now())), Derived(f.snapshot(f.prefix)), 0), "marks kept")
}

// A cancelled fresh replay removes what it wrote.
func TestAbortedFreshReplayCleansUp(t *testing.T) {
	f := newFixture(t, true)
	f.produce(20000, 0, 0, 30*time.Second)
	o := f.options(TargetBoth, IntoFresh, "abort")
	o.BatchSize = 500
	ctx, cancel := context.WithCancel(f.ctx)
	o.Progress = func(p Progress) {
		if p.Done > 0 {
			cancel()
		}
	}
	o.ProgressInterval = 50 * time.Millisecond
	_, err := Run(ctx, o)
	require.Error(t, err)
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
	require.Contains(t, err.Error(), "was removed")
	n, err := countKeys(f.ctx, f.vk, FreshPrefix(f.prefix, "abort"), 0)
	require.NoError(t, err)
	require.Zero(t, n)
	exists, err := databaseExists(f.ctx, f.ch, FreshDatabase(f.db, "abort"))
	require.NoError(t, err)
	require.False(t, exists)
}

// A fresh ClickHouse replay swapped in by RENAME TABLE: the live views keep working on
// the swapped tables (18.16 resolves them by name), the catch-up adds what the live
// consumer wrote meanwhile, the old tables wait in the replaced database.
func TestSwitchClickHouse(t *testing.T) {
	f := newFixture(t, true)
	reqs, states := f.produce(3000, 100, 20, 30*time.Second)
	// The live tables hold a wrong extra row: the rebuild must not keep it.
	wrong, _ := chtest.NewGen(99, f.next).Requests(1, time.Second), 0
	f.writeLiveTables(append(reqs[:2000:2000], wrong...), states, f.audits)
	o := f.options(TargetClickHouse, IntoFresh, "chs")
	_, err := Run(f.ctx, o)
	require.NoError(t, err)
	more, moreStates := f.produce(500, 10, 0, 10*time.Second)
	f.writeLiveTables(more, moreStates, nil)

	st, err := Switch(f.ctx, SwitchOptions{Options: o})
	require.NoError(t, err)
	require.Contains(t, st.Tables, "request_logs")
	require.Contains(t, st.Tables, "system_stats_daily")

	final, distinct, raw, err := chtest.CountRequests(f.ctx, f.ch, f.db)
	require.NoError(t, err)
	require.Equal(t, [3]uint64{3500, 3500, 3500}, [3]uint64{final, distinct, raw})
	stats, err := chtest.ReadSystemStats(f.ctx, f.ch, f.db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectSystemStats(f.reqs, chtest.Seconds), stats)

	// The live views fire on the swapped-in tables.
	extra, _ := f.produce(100, 0, 0, 5*time.Second)
	f.writeLiveTables(extra, nil, nil)
	stats, err = chtest.ReadSystemStats(f.ctx, f.ch, f.db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectSystemStats(f.reqs, chtest.Seconds), stats)
	keyMetrics, err := chtest.ReadKeyMetrics(f.ctx, f.ch, f.db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectKeyMetrics(f.reqs, f.states, chtest.Seconds), keyMetrics)

	exists, err := databaseExists(f.ctx, f.ch, FreshDatabase(f.db, "chs"))
	require.NoError(t, err)
	require.False(t, exists, "the fresh database is gone")
	_, distinct, _, err = chtest.CountRequests(f.ctx, f.ch, st.Replaced)
	require.NoError(t, err)
	require.EqualValues(t, 2501, distinct, "the old tables are kept aside, with what the live consumer wrote before the switch")
}

// request_logs dropped: an attach restores it from the topics without touching the
// rollups, which already count every event.
func TestAttachRestoresDroppedRequestLogs(t *testing.T) {
	f := newFixture(t, true)
	reqs, states := f.produce(3000, 100, 10, 30*time.Second)
	f.writeLiveTables(reqs, states, f.audits)
	f.commitGroup(f.db + "-ch")
	before := f.tableState()

	require.NoError(t, f.ch.Exec(f.ctx, "DROP TABLE `"+f.db+"`.request_logs"))
	o := f.options(TargetClickHouse, IntoFresh, "att")
	o.FromBeginning, o.ToCommitted = true, true
	_, err := Run(f.ctx, o)
	require.NoError(t, err)
	st, err := Switch(f.ctx, SwitchOptions{Options: o, Mode: SwitchAttach, AttachTables: []string{"request_logs"}})
	require.NoError(t, err)
	require.Positive(t, st.Attached["request_logs"])
	require.Equal(t, before, f.tableState())

	// The recreated table still feeds the rollups.
	extra, _ := f.produce(50, 0, 0, 5*time.Second)
	f.writeLiveTables(extra, nil, nil)
	stats, err := chtest.ReadSystemStats(f.ctx, f.ch, f.db)
	require.NoError(t, err)
	require.Equal(t, chtest.ExpectSystemStats(f.reqs, chtest.Seconds), stats)
}

// tableState is what an analyst sees: counts and sums of request_logs, and the rollups.
type tableState struct {
	Rows, Distinct                    uint64
	Input, Output, Latency, RespBytes uint64
	Stats                             []chtest.SystemStatsRow
	Keys                              []chtest.KeyMetricsRow
}

func (f *fixture) tableState() tableState {
	f.t.Helper()
	var s tableState
	require.NoError(f.t, f.ch.QueryRow(f.ctx, "SELECT count(), uniqExact(id), sum(input_tokens), sum(output_tokens), sum(toUInt64(response_time)), sum(response_size) FROM `"+f.db+"`.request_logs").
		Scan(&s.Rows, &s.Distinct, &s.Input, &s.Output, &s.Latency, &s.RespBytes))
	var err error
	s.Stats, err = chtest.ReadSystemStats(f.ctx, f.ch, f.db)
	require.NoError(f.t, err)
	s.Keys, err = chtest.ReadKeyMetrics(f.ctx, f.ch, f.db)
	require.NoError(f.t, err)
	return s
}
