//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/access"
	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// The key pool end to end: quota-aware selection, cool-downs, disabled keys and
// failover, with the real ingress and processors against the simulator. Each test has
// its own Env (topics, database, Valkey prefix, simulator). The tests run in parallel;
// those that count requests per minute first make sure the minute has room for them
// (roomInMinute), since a count that straddles two minutes is two counts.
//
// What "no request reaches an exhausted project" allows: the gateway and the simulator
// judge a request's minute at two instants, the reservation and the arrival upstream,
// a few milliseconds apart. A request reserved in the last milliseconds of a minute
// can reach the simulator in the next one, where it counts against that minute's
// quota which the gateway has not charged; so around a minute boundary the simulator
// may refuse up to the number of requests in flight across it (and a TPM estimate
// below the real prompt can do the same for TPM). Inside a minute the design allows
// none, and that is what these tests assert: not one quota 429 from the simulator.

// TestMinute429CoolsDownUntilMinuteEnd: a per-minute 429 moves traffic to the other
// projects; the cool-down lasts retryDelay (the simulator's is the rest of the minute),
// is in Valkey with that absolute expiry, in the admin API and in ClickHouse, and the
// project serves again as soon as it ends.
func TestMinute429CoolsDownUntilMinuteEnd(t *testing.T) {
	t.Parallel()
	const rpm = 3
	p := startPool(t, poolOptions(3, map[string]e2e.Limits{flash: {RPM: rpm, TPM: 1_000_000, RPD: 10_000}}))
	hot := p.project(0).ID
	p.warm(p.Token)
	minuteEnd := roomInMinute(t, 12*time.Second)

	p.injectFault(hot, gemsim.Fault{Status: http.StatusTooManyRequests, Quota: "rpm"}, 1)
	before := p.untilFaultsUsed(flash, 6)
	failover := before[len(before)-1]

	// During the cool-down the other projects serve until they are full too; then the
	// gateway refuses, saying when the first project frees up.
	for {
		r := p.generate(0, flash)
		if r.status == http.StatusTooManyRequests {
			require.InDelta(t, secondsUntil(minuteEnd, r.at), r.retryAfter(), 1.5, "%s", r)
			break
		}
		require.Equal(t, http.StatusOK, r.status, "%s", r)
		require.LessOrEqual(t, p.simAccepted(flash), int64(2*rpm), "only the two other projects serve")
	}
	require.Zero(t, p.sim(hot, flash).Accepted, "nothing reached the cooled-down project")
	require.Equal(t, int64(1), p.simResponses(hot, http.StatusTooManyRequests), "only the injected 429")
	for _, pc := range p.projects {
		require.Zero(t, p.sim(pc.ID, flash).Rejected429)
	}

	// The cool-down is in Valkey, with the absolute expiry the entry names, and in the
	// admin API.
	entry, expiry := p.waitCooldown(hot, flash)
	require.Equal(t, schemas.ReasonRPM, entry.Reason)
	require.True(t, entry.QuotaExceeded.RPM)
	require.Equal(t, entry.ExpiresAt, expiry, "the key expires when the entry says")
	// retryDelay is the rest of the minute, rounded up to whole seconds.
	require.GreaterOrEqual(t, expiry, minuteEnd.Add(-time.Second).UnixMilli())
	require.LessOrEqual(t, expiry, minuteEnd.Add(time.Second).UnixMilli())
	until := time.UnixMilli(expiry)
	t.Logf("cool-down of %s until %s (minute ends %s)", hot, until.Format("15:04:05.000"), minuteEnd.Format("15:04:05"))
	for _, h := range hashesOf(p.project(0)) {
		q := quota(t, p.adminKeys()[h], flash)
		require.Equal(t, until.UnixMilli(), q.CooldownUntil.UnixMilli())
		require.Equal(t, schemas.ReasonRPM, q.CooldownReason)
	}
	st := p.blacklistStats()
	require.Equal(t, 1, st.CoolingPairs)
	require.Equal(t, map[string]int{schemas.ReasonRPM: 1}, st.ByReason)
	require.Equal(t, map[string]int{flash: 1}, st.ByModel)

	// ClickHouse has the failover request's two attempts and the key-state event.
	_, atts := p.attempts(failover.requestID())
	require.Len(t, atts, 2, "the 429 was retried on another project")
	require.Equal(t, attempt{Project: hot, KeyHash: atts[0].KeyHash, Status: 429, Failure: gemini.FailureMinuteQuota.String()}, atts[0])
	require.NotEqual(t, hot, atts[1].Project)
	require.Equal(t, uint16(http.StatusOK), atts[1].Status)
	rows := p.keyStateRows(fmt.Sprintf("kind = 'cooldown' AND project = '%s'", hot), 1)
	require.Len(t, rows, 1)
	require.Equal(t, keyStateRow{
		Kind: schemas.KindCooldown, KeyHash: atts[0].KeyHash, Project: hot, Model: flash, Reason: schemas.ReasonRPM,
		Source: schemas.SourceUpstream, QuotaID: rows[0].QuotaID, RPM: 1, Until: rows[0].Until, Status: 429,
		RequestID: failover.requestID(),
	}, rows[0])
	require.Contains(t, rows[0].QuotaID, "PerMinute")
	require.Equal(t, until.Unix(), rows[0].Until.Unix())

	// The cool-down ends on time: Valkey drops it at its expiry, and the project takes
	// its share of the new minute at once (the pool holds exactly 3 × RPM). The expiry
	// can precede the minute's end by the attempt's few milliseconds upstream, while the
	// other projects are full until the minute ends.
	time.Sleep(time.Until(until) + 20*time.Millisecond)
	if left := time.Until(minuteEnd); left > 0 {
		time.Sleep(left + 20*time.Millisecond)
	}
	e, _ := p.cooldown(hot, flash)
	require.Nil(t, e, "the cool-down expired in Valkey")
	p.generateOK(3*rpm, flash)
	require.Equal(t, int64(rpm), p.sim(hot, flash).MinuteRequests, "the project serves again after the cool-down")
	require.Zero(t, p.blacklistStats().ActiveEntries)
}

// TestPoolSkipsExhaustedProjects: once every project's RPM (then RPD) is used up, the
// gateway answers 429 itself, with Retry-After at the end of the minute (then at
// Pacific midnight), and the simulator never sees a request beyond a limit.
func TestPoolSkipsExhaustedProjects(t *testing.T) {
	t.Parallel()
	const (
		rpm      = 4
		rpd      = 2
		dayModel = "gemini-2.0-flash"
	)
	p := startPool(t, poolOptions(3, map[string]e2e.Limits{
		flash:    {RPM: rpm, TPM: 1_000_000, RPD: 10_000},
		dayModel: {RPM: 100, TPM: 1_000_000, RPD: rpd},
	}))
	p.warm(p.Token)
	minuteEnd := roomInMinute(t, 8*time.Second)

	p.generateOK(3*rpm, flash)
	var refused []reply
	for range 3 {
		r := p.generate(0, flash)
		require.Equal(t, http.StatusTooManyRequests, r.status, "%s", r)
		var e gemini.ErrorBody
		require.NoError(t, json.Unmarshal(r.body, &e))
		require.Equal(t, "RESOURCE_EXHAUSTED", e.Error.Status)
		require.InDelta(t, secondsUntil(minuteEnd, r.at), r.retryAfter(), 1, "Retry-After is the end of the minute")
		refused = append(refused, r)
	}

	p.generateOK(3*rpd, dayModel)
	r := p.generate(0, dayModel)
	require.Equal(t, http.StatusTooManyRequests, r.status, "%s", r)
	require.InDelta(t, secondsUntil(schemas.NextPacificMidnight(r.at), r.at), r.retryAfter(), 1,
		"Retry-After is the next Pacific midnight")
	refused = append(refused, r)

	for _, pc := range p.projects {
		require.Equal(t, int64(rpm), p.sim(pc.ID, flash).Accepted, "%s served its RPM", pc.ID)
		require.Equal(t, int64(rpd), p.sim(pc.ID, dayModel).Accepted, "%s served its RPD", pc.ID)
		require.Zero(t, p.sim(pc.ID, flash).Rejected429, "no request reached %s beyond its RPM", pc.ID)
		require.Zero(t, p.sim(pc.ID, dayModel).Rejected429, "no request reached %s beyond its RPD", pc.ID)
		require.Zero(t, p.simResponses(pc.ID, http.StatusTooManyRequests))
	}

	// The admin API shows every project's quota used up; the refused requests are in
	// request_logs without a single upstream attempt.
	for _, k := range p.adminKeys() {
		require.Zero(t, quota(t, k, flash).Requests.Left, "key %s of %s", k.Hash, k.Project)
		require.Zero(t, quota(t, k, dayModel).Day.Left, "key %s of %s", k.Hash, k.Project)
	}
	for _, r := range refused {
		status, atts := p.attempts(r.requestID())
		require.Equal(t, uint16(http.StatusTooManyRequests), status)
		require.Empty(t, atts, "a refused request never went upstream")
	}
}

// TestDay429HoldsUntilPacificMidnight: a per-day 429 cools its project down until the
// next midnight in Los Angeles — in Valkey, the admin API and key_state_log — and the
// traffic goes to the other projects.
func TestDay429HoldsUntilPacificMidnight(t *testing.T) {
	t.Parallel()
	p := startPool(t, e2e.Options{Projects: poolProjects(3)})
	hot := p.project(1).ID

	p.injectFault(hot, gemsim.Fault{Status: http.StatusTooManyRequests, Quota: "rpd"}, 1)
	before := p.untilFaultsUsed(flash, 6)
	failover := before[len(before)-1]
	_, atts := p.attempts(failover.requestID())
	require.Len(t, atts, 2)
	require.Equal(t, gemini.FailureDayQuota.String(), atts[0].Failure)
	at := time.Now()

	entry, expiry := p.waitCooldown(hot, flash)
	// The attempt and this check fall on the same Pacific day (a run across midnight
	// would see the next one).
	midnight := schemas.NextPacificMidnight(at)
	require.Equal(t, schemas.ReasonRPD, entry.Reason)
	require.True(t, entry.QuotaExceeded.RPD)
	require.Equal(t, midnight.UnixMilli(), entry.ExpiresAt, "the day quota resets at Pacific midnight")
	require.Equal(t, midnight.UnixMilli(), expiry)
	require.Equal(t, 0, midnight.In(schemas.Pacific()).Hour())

	rows := p.keyStateRows(fmt.Sprintf("kind = 'cooldown' AND project = '%s'", hot), 1)
	require.Equal(t, schemas.ReasonRPD, rows[0].Reason)
	require.Equal(t, uint8(1), rows[0].RPD)
	require.Equal(t, midnight.Unix(), rows[0].Until.Unix())
	require.Equal(t, failover.requestID(), rows[0].RequestID)
	for _, h := range hashesOf(p.project(1)) {
		q := quota(t, p.adminKeys()[h], flash)
		require.Equal(t, midnight.UnixMilli(), q.CooldownUntil.UnixMilli())
		require.Equal(t, schemas.ReasonRPD, q.CooldownReason)
	}
	require.Equal(t, map[string]int{schemas.ReasonRPD: 1}, p.blacklistStats().ByReason)

	served := p.simAccepted(flash)
	p.generateOK(12, flash)
	require.Zero(t, p.sim(hot, flash).Accepted, "nothing reached the project out of its day quota")
	require.Equal(t, served+12, p.simAccepted(flash), "the other projects took the traffic")
	require.Equal(t, int64(1), p.simResponses(hot, http.StatusTooManyRequests))
}

// TestInvalidKeyDisabledThenRevalidated: a key the upstream does not know is disabled
// (blacklist entry, admin API, key_state_log) while its request fails over; the
// revalidation probe keeps it disabled while the upstream refuses it, and re-enables it
// by an event once the upstream accepts it, after which it serves again.
func TestInvalidKeyDisabledThenRevalidated(t *testing.T) {
	t.Parallel()
	const (
		badProject = "kp-bad"
		badKey     = "AIzaSyKeyPool-unknown-to-the-upstream-xx"
	)
	badHash := schemas.HashKey(badKey)
	p := startPool(t, e2e.Options{
		Projects: poolProjects(3),
		IngressEnv: []string{
			"GCA_GEMINI_KEYS=" + badProject + ":" + gemsim.TierOne + ":" + badKey,
			"GCA_REVALIDATE_EVERY=2s",
		},
	})

	// The bad key's project has the most headroom, so it is tried within the first
	// few requests.
	var failover reply
	for i := 0; failover.status == 0; i++ {
		require.Less(t, i, 8, "the bad key was never tried")
		r := p.generate(0, flash)
		require.Equal(t, http.StatusOK, r.status, "%s", r)
		if _, atts := p.attempts(r.requestID()); len(atts) > 1 {
			require.Equal(t, attempt{Project: badProject, KeyHash: badHash, Status: 400, Failure: gemini.FailureKeyInvalid.String()}, atts[0])
			require.Equal(t, uint16(http.StatusOK), atts[1].Status)
			failover = r
		}
	}
	var entry *schemas.BlacklistEntry
	waitUntil(t, 30*time.Second, func() bool { entry = p.blacklist(badProject, badHash); return entry != nil })
	require.Equal(t, schemas.ReasonKeyInvalid, entry.Reason)
	require.Equal(t, badHash, entry.KeyHash)
	require.NotNil(t, p.adminKeys()[badHash].Disabled)
	require.Equal(t, schemas.ReasonKeyInvalid, p.adminKeys()[badHash].Disabled.Reason)
	st := p.blacklistStats()
	require.Equal(t, 1, st.DisabledKeys)
	require.Equal(t, map[string]int{schemas.ReasonKeyInvalid: 1}, st.ByReason)
	rows := p.keyStateRows(fmt.Sprintf("kind = 'disable' AND key_hash = '%s'", badHash), 1)
	require.Equal(t, keyStateRow{
		Kind: schemas.KindDisable, KeyHash: badHash, Project: badProject, Model: flash, Reason: schemas.ReasonKeyInvalid,
		Source: schemas.SourceUpstream, Until: rows[0].Until, Status: 400, RequestID: failover.requestID(),
	}, rows[0])

	// Revalidation probes every 2 s; the upstream still refuses the key, so it stays
	// disabled and is not used.
	hits := p.SimHits()
	time.Sleep(2500 * time.Millisecond)
	require.Greater(t, p.SimHits(), hits, "revalidation probed the key")
	require.NotNil(t, p.blacklist(badProject, badHash), "still refused: still disabled")
	p.generateOK(4, flash)
	require.Len(t, p.keyStateRows(fmt.Sprintf("key_hash = '%s'", badHash), 1), 1, "no enable while refused")

	// The key becomes valid upstream: the next probe re-enables it by an event.
	require.NoError(t, p.Sim.AddProjects([]gemsim.ProjectConfig{{ID: badProject, Tier: gemsim.TierOne, Keys: []string{badKey}}}))
	waitUntil(t, 30*time.Second, func() bool { return p.blacklist(badProject, badHash) == nil }, "the enable event removed the blacklist entry")
	rows = p.keyStateRows(fmt.Sprintf("kind = 'enable' AND key_hash = '%s'", badHash), 1)
	require.Equal(t, schemas.ReasonRevalidated, rows[0].Reason)
	require.Equal(t, schemas.SourceRevalidation, rows[0].Source)
	require.Nil(t, p.adminKeys()[badHash].Disabled)
	require.Zero(t, p.blacklistStats().DisabledKeys)

	// With the most headroom of all, the key's project takes the next requests.
	waitUntil(t, 10*time.Second, func() bool {
		r := p.generate(0, flash)
		require.Equal(t, http.StatusOK, r.status, "%s", r)
		return p.sim(badProject, flash).Accepted > 0
	}, "the re-enabled key serves again")
}

// TestUpstream503sNeverBlacklist: 503 "overloaded" answers are retried on another
// project and recorded in the key's health, but never cool a project down or disable a
// key; when every attempt gets one, the client gets a 503.
func TestUpstream503sNeverBlacklist(t *testing.T) {
	t.Parallel()
	p := startPool(t, e2e.Options{Projects: poolProjects(3)})
	hot := p.project(0)

	p.injectFault(hot.ID, gemsim.Fault{Status: http.StatusServiceUnavailable}, 3)
	replies := p.untilFaultsUsed(flash, 12)
	failed := 0
	for _, r := range replies {
		_, atts := p.attempts(r.requestID())
		for i, a := range atts {
			if a.Status == http.StatusServiceUnavailable {
				failed++
				require.Equal(t, hot.ID, a.Project)
				require.Equal(t, gemini.FailureUpstream.String(), a.Failure)
				require.Less(t, i, len(atts)-1, "a 503 is followed by another attempt")
			}
		}
		require.Equal(t, uint16(http.StatusOK), atts[len(atts)-1].Status)
	}
	require.Equal(t, 3, failed, "request_logs records each 503 attempt")
	require.Equal(t, int64(3), p.simResponses(hot.ID, http.StatusServiceUnavailable))

	// Every attempt of one request gets a 503: the client gets a 503, still nothing is
	// blacklisted.
	require.NoError(t, p.Sim.InjectFault(gemsim.FaultRule{Method: "generateContent", Fault: gemsim.Fault{Status: http.StatusServiceUnavailable}, Count: 3}))
	r := p.generate(0, flash)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r)
	_, atts := p.attempts(r.requestID())
	require.Len(t, atts, 3)

	// Health is recorded; nothing cools down or is disabled, in Valkey, the admin API
	// or ClickHouse.
	waitUntil(t, 30*time.Second, func() bool {
		for _, h := range hashesOf(hot) {
			if p.adminKeys()[h].Health.FailureKind == gemini.FailureUpstream.String() {
				return true
			}
		}
		return false
	}, "the 503s are in the keys' health")
	require.Empty(t, p.scan("*cooldown*"))
	require.Empty(t, p.scan("*blacklist*"))
	for _, k := range p.adminKeys() {
		require.Nil(t, k.Disabled)
		require.Zero(t, quota(t, k, flash).CooldownUntil)
	}
	require.Zero(t, p.blacklistStats().ActiveEntries)
	n, err := p.Count(t.Context(), "SELECT count() FROM {db}.key_state_log")
	require.NoError(t, err)
	require.Zero(t, n, "no key-state event for a 503")
}

// TestBurstAgainstPoolRPM: 200 concurrent OpenAI chat completions against a pool of
// 100 RPM (4 projects × 25): at most 100 go upstream, the rest are answered 429 in the
// OpenAI error shape with Retry-After at the end of the minute.
func TestBurstAgainstPoolRPM(t *testing.T) {
	t.Parallel()
	const (
		projects = 4
		rpm      = 25
		burst    = 200
	)
	p := startPool(t, poolOptions(projects, map[string]e2e.Limits{flash: {RPM: rpm, TPM: 1_000_000, RPD: 10_000}}))
	p.warm(p.Token)
	minuteEnd := roomInMinute(t, 10*time.Second)

	replies := make([]reply, burst)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i] = p.chat(0, flash)
		}()
	}
	close(start)
	wg.Wait()

	ok, limited := 0, 0
	for _, r := range replies {
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    string  `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(r.body, &e), "%s", r)
			require.Equal(t, "rate_limit_error", e.Error.Type)
			require.Equal(t, "rate_limit_exceeded", e.Error.Code)
			require.Nil(t, e.Error.Param)
			require.NotEmpty(t, e.Error.Message)
			require.InDelta(t, secondsUntil(minuteEnd, r.at), r.retryAfter(), 1, "Retry-After is the end of the minute: %s", r)
		default:
			require.Failf(t, "unexpected answer", "%s", r)
		}
	}
	upstream := p.simAccepted(flash) + p.sim429(flash)
	t.Logf("burst of %d against %d RPM: %d served, %d refused with 429, %d sent upstream", burst, projects*rpm, ok, limited, upstream)
	require.LessOrEqual(t, upstream, int64(projects*rpm), "at most the pool's RPM goes upstream")
	require.Zero(t, p.sim429(flash), "no request beyond a project's limit")
	require.Equal(t, int64(ok), p.simAccepted(flash))
	require.Equal(t, burst-ok, limited)
	p.requireFullUse(projects*rpm, ok)
	n, err := p.WaitCount("SELECT count() FROM {db}.request_logs WHERE status_code = 429 AND length(attempts.key_hash) = 0", uint64(limited), 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, uint64(limited), n, "each refused request is recorded, without an upstream attempt")
}

// TestTwoIngressesStayWithinLimits: two replicas sharing Valkey, hit concurrently, admit
// together exactly the pool's RPM; the over-admission (requests the simulator refused
// for quota) is printed and must be 0.
func TestTwoIngressesStayWithinLimits(t *testing.T) {
	t.Parallel()
	const (
		projects = 3
		rpm      = 20
		requests = 120
	)
	opts := poolOptions(projects, map[string]e2e.Limits{flash: {RPM: rpm, TPM: 1_000_000, RPD: 10_000}})
	opts.Ingresses = 2
	p := startPool(t, opts)
	p.warm(p.Token)
	roomInMinute(t, 10*time.Second)

	replies := make([]reply, requests)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i] = p.generate(i%2, flash)
		}()
	}
	close(start)
	wg.Wait()

	okBy := [2]int{}
	for i, r := range replies {
		require.Contains(t, []int{http.StatusOK, http.StatusTooManyRequests}, r.status, "%s", r)
		if r.status == http.StatusOK {
			okBy[i%2]++
		}
	}
	over := p.sim429(flash)
	accepted := p.simAccepted(flash)
	fmt.Printf("two ingresses, %d requests against %d RPM: served %d + %d, accepted upstream %d, over-admission observed: %d\n",
		requests, projects*rpm, okBy[0], okBy[1], accepted, over)
	require.Zero(t, over, "over-admission")
	require.LessOrEqual(t, accepted, int64(projects*rpm))
	require.Equal(t, accepted, int64(okBy[0]+okBy[1]))
	p.requireFullUse(projects*rpm, okBy[0]+okBy[1])
	require.Positive(t, okBy[0])
	require.Positive(t, okBy[1])
}

// TestAdminTransitions: an operator's disable, enable, cool-down clear, key addition
// and removal go through events, so each is in Valkey, the admin API and
// key_state_log, and each changes where traffic goes.
func TestAdminTransitions(t *testing.T) {
	t.Parallel()
	const (
		proProject = "kp-pro"
		proKey     = "AIzaSyKeyPool-pro-only-key-xxxxxxxxxx"
	)
	p := startPool(t, e2e.Options{
		Projects: poolProjects(3),
		// The key the operator adds later is known upstream from the start.
		Sim: func(c *gemsim.Config) {
			c.Projects = append(c.Projects, gemsim.ProjectConfig{ID: proProject, Tier: gemsim.TierOne, Keys: []string{proKey}})
		},
	})
	target := p.project(0)
	hash := schemas.HashKey(target.Keys[0])

	require.Equal(t, http.StatusAccepted, p.admin(http.MethodPost, "/keys/"+hash+"/disable", nil))
	waitUntil(t, 30*time.Second, func() bool { return p.blacklist(target.ID, hash) != nil })
	require.Equal(t, schemas.ReasonOperator, p.blacklist(target.ID, hash).Reason)
	require.Equal(t, schemas.ReasonOperator, p.adminKeys()[hash].Disabled.Reason)
	require.Equal(t, map[string]int{schemas.ReasonOperator: 1}, p.blacklistStats().ByReason)
	rows := p.keyStateRows(fmt.Sprintf("kind = 'disable' AND key_hash = '%s'", hash), 1)
	require.Equal(t, schemas.SourceAdmin, rows[0].Source)

	// From now on the key gets nothing; its project-mate takes the project's share.
	// (The simulator counts every call of a key; the model list took one at start.)
	answered := func(key string) int64 { return p.Sim.Stats().Keys[key].Responses[http.StatusOK] }
	disabledBefore, mateBefore := answered(target.Keys[0]), answered(target.Keys[1])
	p.generateOK(12, flash)
	require.Equal(t, disabledBefore, answered(target.Keys[0]), "the disabled key got no request")
	require.Greater(t, answered(target.Keys[1]), mateBefore)

	require.Equal(t, http.StatusAccepted, p.admin(http.MethodPost, "/keys/"+hash+"/enable", nil))
	waitUntil(t, 30*time.Second, func() bool { return p.blacklist(target.ID, hash) == nil })
	require.Nil(t, p.adminKeys()[hash].Disabled)
	rows = p.keyStateRows(fmt.Sprintf("kind = 'enable' AND key_hash = '%s'", hash), 1)
	require.Equal(t, schemas.ReasonOperator, rows[0].Reason)
	waitUntil(t, 10*time.Second, func() bool {
		p.generateOK(1, flash)
		return answered(target.Keys[0]) > disabledBefore
	}, "the enabled key serves again")

	// A cool-down cleared by the operator ends at once, long before its minute does.
	other := p.project(1).ID
	minuteEnd := roomInMinute(t, 20*time.Second)
	p.injectFault(other, gemsim.Fault{Status: http.StatusTooManyRequests, Quota: "rpm"}, 1)
	p.untilFaultsUsed(flash, 6)
	p.waitCooldown(other, flash)
	require.Equal(t, http.StatusAccepted, p.admin(http.MethodDelete, "/cooldowns/"+other+"/"+flash, nil))
	waitUntil(t, 30*time.Second, func() bool { e, _ := p.cooldown(other, flash); return e == nil })
	rows = p.keyStateRows(fmt.Sprintf("kind = 'clear_cooldown' AND project = '%s'", other), 1)
	require.Equal(t, flash, rows[0].Model)
	require.Equal(t, schemas.SourceAdmin, rows[0].Source)
	for _, h := range hashesOf(p.project(1)) {
		require.Zero(t, quota(t, p.adminKeys()[h], flash).CooldownUntil)
	}
	served := p.sim(other, flash).Accepted
	waitUntil(t, 10*time.Second, func() bool {
		p.generateOK(1, flash)
		return p.sim(other, flash).Accepted > served
	}, "the project serves again once the operator cleared its cool-down")
	require.True(t, time.Now().Before(minuteEnd), "served again before the cool-down would have ended by itself")
	require.Zero(t, p.blacklistStats().ActiveEntries)

	// A key added with a model allow-list serves that model only; once removed, it
	// serves nothing.
	r := p.adminCall(http.MethodPost, "/keys",
		`{"key":"`+proKey+`","project":"`+proProject+`","tier":"`+gemsim.TierOne+`","models":["`+warmModel+`"]}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r)
	proHash := schemas.HashKey(proKey)
	require.Equal(t, []string{warmModel}, p.adminKeys()[proHash].Models)
	rows = p.keyStateRows(fmt.Sprintf("kind = 'key_added' AND key_hash = '%s'", proHash), 1)
	require.Equal(t, proProject, rows[0].Project)
	p.generateOK(6, flash)
	require.Zero(t, p.sim(proProject, flash).Accepted, "the key may not serve %s", flash)
	waitUntil(t, 10*time.Second, func() bool {
		p.generateOK(1, warmModel)
		return p.sim(proProject, warmModel).Accepted > 0
	}, "the new key serves its model")

	require.Equal(t, http.StatusOK, p.admin(http.MethodDelete, "/keys/"+proHash, nil))
	require.NotContains(t, p.adminKeys(), proHash)
	p.keyStateRows(fmt.Sprintf("kind = 'key_removed' AND key_hash = '%s'", proHash), 1)
	served = p.sim(proProject, warmModel).Accepted
	p.generateOK(6, warmModel)
	require.Equal(t, served, p.sim(proProject, warmModel).Accepted, "a removed key serves nothing")
}

// TestTokenLimitsAndModelAllowList: a gateway token with an allow-list and an RPM of its
// own is refused other models (403) and requests beyond its RPM (429 with Retry-After),
// before anything goes upstream.
func TestTokenLimitsAndModelAllowList(t *testing.T) {
	t.Parallel()
	const rpm = 2
	p := startPool(t, e2e.Options{Projects: poolProjects(3)})
	tok, entry, err := access.NewToken("limited")
	require.NoError(t, err)
	entry.Models, entry.RPM = []string{flash}, rpm
	f, err := access.LoadTokens(p.TokensFile)
	require.NoError(t, err)
	f.Tokens = append(f.Tokens, entry)
	b, err := json.Marshal(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p.TokensFile, b, 0o600))
	require.NoError(t, p.Ingress[0].Signal(syscall.SIGHUP))

	// The reload is quick; a few tries cover it without tripping the failure limit.
	var r reply
	for i := 0; i < 5; i++ {
		time.Sleep(200 * time.Millisecond)
		if r = p.generateAs(0, warmModel, tok); r.status != http.StatusUnauthorized {
			break
		}
	}
	require.Equal(t, http.StatusForbidden, r.status, "a model outside the token's list: %s", r)
	hits := p.SimHits()

	minuteEnd := roomInMinute(t, 5*time.Second)
	for range rpm {
		r := p.generateAs(0, flash, tok)
		require.Equal(t, http.StatusOK, r.status, "%s", r)
	}
	r = p.generateAs(0, flash, tok)
	require.Equal(t, http.StatusTooManyRequests, r.status, "%s", r)
	require.InDelta(t, secondsUntil(minuteEnd, r.at), r.retryAfter(), 1)
	require.Equal(t, hits+rpm, p.SimHits(), "only the admitted requests went upstream")
	require.Equal(t, http.StatusOK, p.generate(0, flash).status, "the pool itself has quota left")
}

// TestPassthroughTracksQuotaByKey: in pass-through mode the client's comma-separated
// keys are the pool; each unlisted key is its own project, counted in Valkey under its
// hash, and the gateway refuses once the client's keys are out of RPM.
func TestPassthroughTracksQuotaByKey(t *testing.T) {
	t.Parallel()
	const rpm = 3
	clientKeys := []string{"AIzaSyPassThrough-client-key-1-xxxxxxx", "AIzaSyPassThrough-client-key-2-xxxxxxx"}
	opts := poolOptions(3, map[string]e2e.Limits{flash: {RPM: rpm, TPM: 1_000_000, RPD: 10_000}})
	simLimits := opts.Sim
	opts.Sim = func(c *gemsim.Config) {
		simLimits(c)
		// The client's keys are known upstream (free tier, each its own project) but
		// not listed in the gateway's keys file.
		for i, k := range clientKeys {
			c.Projects = append(c.Projects, gemsim.ProjectConfig{ID: fmt.Sprintf("client-%d", i+1), Keys: []string{k}})
		}
	}
	opts.Limits[gemsim.TierFree] = map[string]e2e.Limits{flash: {RPM: rpm, TPM: 1_000_000, RPD: 10_000}}
	opts.AuthMode = "passthrough"
	p := startPool(t, opts)
	cred := clientKeys[0] + "," + clientKeys[1]
	p.warm(cred)
	start := roomInMinute(t, 8*time.Second)

	for range 2 * rpm {
		r := p.generateAs(0, flash, cred)
		require.Equal(t, http.StatusOK, r.status, "%s", r)
	}
	r := p.generateAs(0, flash, cred)
	require.Equal(t, http.StatusTooManyRequests, r.status, "the client's own keys are out of RPM: %s", r)
	require.Positive(t, r.retryAfter())

	day := schemas.PacificDay(start)
	waitUntil(t, 30*time.Second, func() bool {
		for _, k := range clientKeys {
			h := schemas.HashKey(k)
			if p.counter(p.keys.DayRequests(h, flash, day)) != rpm {
				return false
			}
		}
		return true
	}, "each key is its own project, counted under its hash")
	for i := range clientKeys {
		st := p.sim(fmt.Sprintf("client-%d", i+1), flash)
		require.Equal(t, int64(rpm), st.Accepted)
		require.Zero(t, st.Rejected429)
	}
	for _, pc := range p.projects {
		require.Zero(t, p.sim(pc.ID, flash).Accepted, "the operator's keys serve no pass-through client")
	}
}
