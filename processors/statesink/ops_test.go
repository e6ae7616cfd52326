package statesink

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

var testKeys = schemas.Keys{Prefix: "gca:"}

func TestClassify(t *testing.T) {
	cases := []struct {
		status  int
		failure string
		want    outcome
	}{
		{200, "", outcomeOK},
		{204, "", outcomeOK},
		{503, "upstream", outcomeFail},
		{0, "timeout", outcomeFail},
		{0, "network", outcomeFail},
		{400, "key_invalid", outcomeFail},
		{403, "forbidden", outcomeFail},
		// A stream cut after 200 is the key's failure, whatever the status said.
		{200, "network", outcomeFail},
		// Quotas are the project's state (cool-downs), not the key's health.
		{429, "minute_quota", outcomeNone},
		{429, "day_quota", outcomeNone},
		{429, "quota_unknown", outcomeNone},
		// The request's own fault says nothing about the key.
		{400, "client", outcomeNone},
		{0, "", outcomeNone},
	}
	for _, c := range cases {
		a := schemas.Attempt{Status: c.status, Failure: c.failure}
		require.Equal(t, c.want, classify(&a), "status %d failure %q", c.status, c.failure)
	}
}

func TestRequestOps(t *testing.T) {
	// 2025-03-09 is the day DST starts in Los Angeles; 06:59:30 UTC is 22:59:30 PST on
	// the 8th, so the Pacific day is 20250308 although the UTC date is the 9th.
	t0 := time.Date(2025, 3, 9, 6, 59, 30, 0, time.UTC)
	minute := schemas.MinuteOf(t0)
	minuteExp := schemas.MinuteCounterExpiry(t0).UnixMilli()
	dayExp := schemas.DayCounterExpiry(t0).UnixMilli()
	healthExp := t0.Add(schemas.HealthTTL).UnixMilli()
	okHealth := healthOp{
		Health: testKeys.Health("p1", "k1"), Fails: testKeys.Fails("p1", "k1"),
		TsMs: t0.UnixMilli(), Outcome: outcomeOK, Latency: true, LatencyMs: 100, ExpireAtMs: healthExp,
	}
	cases := []struct {
		name        string
		event       *schemas.RequestEvent
		now         time.Time
		want        []projectOps
		wantInvalid int
	}{
		{
			name:  "a counted success counts the minute and the Pacific day and marks the key healthy",
			event: request("e1", modelPro, ok("p1", "k1", t0, 700)),
			now:   t0,
			want: []projectOps{{
				Project: "p1", EventID: "e1", Mark: testKeys.Applied("p1", "e1"),
				MarkExpireAtMs: max(dayExp, healthExp),
				Counters: []counterOp{
					{Key: testKeys.MinuteRequests("p1", modelPro, minute), N: 1, ExpireAtMs: minuteExp},
					{Key: testKeys.MinuteTokens("p1", modelPro, minute), N: 700, ExpireAtMs: minuteExp},
					{Key: testKeys.DayRequests("p1", modelPro, "20250308"), N: 1, ExpireAtMs: dayExp},
				},
				Health: []healthOp{okHealth},
			}},
		},
		{
			name:  "a 429 is not counted and is neither success nor failure for the key",
			event: request("e2", modelPro, failed("p1", "k1", t0, 429, "minute_quota")),
			now:   t0,
			want: []projectOps{{
				Project: "p1", EventID: "e2", Mark: testKeys.Applied("p1", "e2"), MarkExpireAtMs: healthExp,
				Health: []healthOp{{Health: okHealth.Health, Fails: okHealth.Fails, TsMs: t0.UnixMilli(),
					Outcome: outcomeNone, Latency: true, LatencyMs: 30, ExpireAtMs: healthExp}},
			}},
		},
		{
			name: "failover across projects touches each project under its own mark",
			event: request("e3", modelPro,
				failed("p2", "k2", t0, 503, "upstream"), ok("p1", "k1", t0, 0)),
			now: t0,
			want: []projectOps{
				{
					Project: "p2", EventID: "e3", Mark: testKeys.Applied("p2", "e3"), MarkExpireAtMs: healthExp,
					Health: []healthOp{{Health: testKeys.Health("p2", "k2"), Fails: testKeys.Fails("p2", "k2"),
						TsMs: t0.UnixMilli(), Outcome: outcomeFail, FailKind: "upstream", Member: "e3#0",
						Latency: true, LatencyMs: 30, ExpireAtMs: healthExp}},
				},
				{
					Project: "p1", EventID: "e3", Mark: testKeys.Applied("p1", "e3"),
					MarkExpireAtMs: max(dayExp, healthExp),
					// Zero input tokens leave the TPM counter alone.
					Counters: []counterOp{
						{Key: testKeys.MinuteRequests("p1", modelPro, minute), N: 1, ExpireAtMs: minuteExp},
						{Key: testKeys.DayRequests("p1", modelPro, "20250308"), N: 1, ExpireAtMs: dayExp},
					},
					Health: []healthOp{okHealth},
				},
			},
		},
		{
			name: "two counted attempts of one request in one minute merge",
			event: request("e4", modelPro,
				ok("p1", "k1", t0, 10), ok("p1", "k1", t0, 20)),
			now: t0,
			want: []projectOps{{
				Project: "p1", EventID: "e4", Mark: testKeys.Applied("p1", "e4"),
				MarkExpireAtMs: max(dayExp, healthExp),
				Counters: []counterOp{
					{Key: testKeys.MinuteRequests("p1", modelPro, minute), N: 2, ExpireAtMs: minuteExp},
					{Key: testKeys.MinuteTokens("p1", modelPro, minute), N: 30, ExpireAtMs: minuteExp},
					{Key: testKeys.DayRequests("p1", modelPro, "20250308"), N: 2, ExpireAtMs: dayExp},
				},
				Health: []healthOp{okHealth, okHealth},
			}},
		},
		{
			name:  "a minute whose counters expired is skipped, the day still counts",
			event: request("e5", modelPro, ok("p1", "k1", t0, 700)),
			now:   time.UnixMilli(minuteExp),
			want: []projectOps{{
				Project: "p1", EventID: "e5", Mark: testKeys.Applied("p1", "e5"),
				MarkExpireAtMs: max(dayExp, healthExp),
				Counters: []counterOp{
					{Key: testKeys.DayRequests("p1", modelPro, "20250308"), N: 1, ExpireAtMs: dayExp},
				},
				Health: []healthOp{okHealth},
			}},
		},
		{
			name:  "an event older than all its windows writes nothing, not even a mark",
			event: request("e6", modelPro, ok("p1", "k1", t0, 700)),
			now:   time.UnixMilli(max(dayExp, healthExp)),
		},
		{
			name:        "an attempt whose project cannot be a hash tag is ignored",
			event:       request("e7", modelPro, ok("p{1}", "k1", t0, 700)),
			now:         t0,
			wantInvalid: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, invalid := requestOps(testKeys, c.event, c.now)
			require.Equal(t, c.wantInvalid, invalid)
			if len(c.want) == 0 {
				require.Empty(t, got)
				return
			}
			require.Equal(t, c.want, got)
		})
	}
}

func TestPacificDayNotUTC(t *testing.T) {
	// 23:59 and 00:01 UTC are the same Pacific day; 23:59 and 00:01 Pacific are not.
	utcMidnight := time.Date(2025, 7, 2, 0, 0, 0, 0, time.UTC)
	pacMidnight := time.Date(2025, 7, 2, 0, 0, 0, 0, schemas.Pacific())
	day := func(ts time.Time) string {
		ops, _ := requestOps(testKeys, request("e", modelPro, ok("p", "k", ts, 1)), ts)
		return ops[0].Counters[len(ops[0].Counters)-1].Key
	}
	require.Equal(t, day(utcMidnight.Add(-time.Minute)), day(utcMidnight.Add(time.Minute)))
	require.NotEqual(t, day(pacMidnight.Add(-time.Minute)), day(pacMidnight.Add(time.Minute)))
	require.Equal(t, testKeys.DayRequests("p", modelPro, "20250702"), day(pacMidnight.Add(time.Minute)))
}

func TestKeyStateOps(t *testing.T) {
	t0 := time.Date(2025, 7, 2, 12, 0, 0, 0, time.UTC)
	until := t0.Add(30 * time.Second)
	cd := cooldown("c1", "p1", modelPro, t0, until)
	cdJSON, err := entryJSON(cd, until.UnixMilli())
	require.NoError(t, err)
	dis := keyEvent("d1", schemas.KindDisable, "p1", "k1", t0)
	disJSON, err := entryJSON(dis, 0)
	require.NoError(t, err)

	cases := []struct {
		name  string
		event *schemas.KeyStateEvent
		now   time.Time
		want  []stateOp
	}{
		{"cooldown writes the entry expiring at until", cd, t0,
			[]stateOp{{Code: codeCooldown, Keys: []string{testKeys.Cooldown("p1", modelPro)}, Value: cdJSON, AtMs: until.UnixMilli()}}},
		{"a cooldown already over is skipped", cd, until, nil},
		{"clear deletes the cooldown", func() *schemas.KeyStateEvent {
			e := keyState("x", schemas.KindClearCooldown, "p1", t0)
			e.Model = modelPro
			return e
		}(), t0, []stateOp{{Code: codeDel, Keys: []string{testKeys.Cooldown("p1", modelPro)}}}},
		{"disable writes an entry without expiry", dis, t0,
			[]stateOp{{Code: codeSet, Keys: []string{testKeys.Blacklist("p1", "k1")}, Value: disJSON}}},
		{"enable deletes the entry and resets health like a success", keyEvent("en", schemas.KindEnable, "p1", "k1", t0), t0,
			[]stateOp{
				{Code: codeDel, Keys: []string{testKeys.Blacklist("p1", "k1")}},
				{Code: codeHealthReset, Health: healthOp{Health: testKeys.Health("p1", "k1"), Fails: testKeys.Fails("p1", "k1"),
					TsMs: t0.UnixMilli(), Outcome: outcomeOK, ExpireAtMs: t0.Add(schemas.HealthTTL).UnixMilli()}},
			}},
		{"key_removed deletes the key's entry and health", keyEvent("rm", schemas.KindKeyRemoved, "p1", "k1", t0), t0,
			[]stateOp{{Code: codeDel, Keys: []string{testKeys.Blacklist("p1", "k1"), testKeys.Health("p1", "k1"), testKeys.Fails("p1", "k1")}}}},
		{"key_added changes nothing", keyEvent("ad", schemas.KindKeyAdded, "p1", "k1", t0), t0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := keyStateOps(testKeys, c.event, c.now)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestRequestCallArgs(t *testing.T) {
	t0 := time.Date(2025, 7, 2, 12, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) string { return itoa(t0.Add(d).UnixMilli()) }
	c := &requestCall{tag: projectTag(testKeys, "p1")}
	reserved := request("e1", modelPro, ok("p1", "k1", t0, 7))
	reserved.Attempts[0].Reservation = "inst-r1"
	for _, e := range []*schemas.RequestEvent{
		reserved,
		request("e2", modelPro, failed("p1", "k1", t0.Add(time.Second), 503, "upstream")),
		request("e3", modelPro, ok("p1", "k1", t0.Add(500*time.Millisecond), 5), ok("p1", "k2", t0, 1)),
	} {
		ops, _ := requestOps(testKeys, e, t0)
		c.events = append(c.events, &ops[0])
	}
	minute := itoa(schemas.MinuteOf(t0))
	minuteExp := itoa(schemas.MinuteCounterExpiry(t0).UnixMilli())
	dayExp := itoa(schemas.DayCounterExpiry(t0).UnixMilli())
	markExp := itoa(max(schemas.DayCounterExpiry(t0).UnixMilli(), t0.Add(schemas.HealthTTL).UnixMilli()))
	want := []string{
		"3", // events and their marks
		"applied:e1", markExp,
		"applied:e2", ms(time.Second + schemas.HealthTTL),
		"applied:e3", ms(500*time.Millisecond + schemas.HealthTTL),
		"3", // counters, summed over the events
		"rpm:" + modelPro + ":" + minute, "3", minuteExp,
		"tpm:" + modelPro + ":" + minute, "13", minuteExp,
		"rpd:" + modelPro + ":20250702", "3", dayExp,
		"2", // health keys
		"health:k1", "fails:k1", ms(500 * time.Millisecond), "3", "230", ms(time.Second + schemas.HealthTTL),
		"1", ms(time.Second), "upstream", "e2#0", ms(time.Second + schemas.HealthTTL),
		"health:k2", "fails:k2", ms(0), "1", "100", ms(schemas.HealthTTL), "0",
		"1", // reservations settled: e1's attempt held one
		"pending:" + modelPro, "inst-r1",
	}
	require.Equal(t, want, c.args())

	// Without e2, its failure and its marks are gone from the aggregate.
	require.Equal(t, []string{
		"2",
		"applied:e1", markExp,
		"applied:e3", ms(500*time.Millisecond + schemas.HealthTTL),
		"3",
		"rpm:" + modelPro + ":" + minute, "3", minuteExp,
		"tpm:" + modelPro + ":" + minute, "13", minuteExp,
		"rpd:" + modelPro + ":20250702", "3", dayExp,
		"2",
		"health:k1", "fails:k1", ms(500 * time.Millisecond), "2", "200", ms(500*time.Millisecond + schemas.HealthTTL), "0",
		"health:k2", "fails:k2", ms(0), "1", "100", ms(schemas.HealthTTL), "0",
		"1", "pending:" + modelPro, "inst-r1",
	}, c.without([]int64{2}).args())
}

func TestExpectedIgnoresOrderAndRepeats(t *testing.T) {
	base := time.Date(2025, 7, 2, 12, 0, 0, 0, time.UTC)
	now := base.Add(time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	events := randomEvents(rng, 400, base, "ev")
	want := Expected(events, nil, now)
	require.NotEmpty(t, want)
	for range 20 {
		shuffled := append([]*schemas.RequestEvent(nil), events...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		// Replay half of them a second time: marks make the repeats no-ops.
		shuffled = append(shuffled, shuffled[:200]...)
		require.Empty(t, Diff(want, Expected(shuffled, nil, now), 0))
	}
}

func TestExpectedCooldownNeverShortens(t *testing.T) {
	t0 := time.Date(2025, 7, 2, 12, 0, 0, 0, time.UTC)
	long := cooldown("c1", "p1", modelPro, t0, t0.Add(time.Hour))
	short := cooldown("c2", "p1", modelPro, t0, t0.Add(time.Minute))
	got := Expected(nil, []*schemas.KeyStateEvent{long, short}, t0)
	k := schemas.Keys{}.Cooldown("p1", modelPro)
	require.Equal(t, t0.Add(time.Hour).UnixMilli(), got[k].ExpireAtMs)
	require.Contains(t, got[k].String, `"eventId":"c1"`)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
