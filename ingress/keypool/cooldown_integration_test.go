//go:build integration

package keypool_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// TestDayCooldownHoldsUntilClearedOrMidnight: a per-day 429 seen by this instance holds
// its pair, on the injected clock, to the last millisecond before Pacific midnight —
// first by the local cool-down, then by Valkey's entry once the processors wrote it.
// Once Valkey has confirmed it, Valkey's word counts: an operator's clear (the
// processors delete the entry) lifts it at once, not at midnight. Without a clear, the
// pair serves again at midnight.
func TestDayCooldownHoldsUntilClearedOrMidnight(t *testing.T) {
	for _, cleared := range []bool{true, false} {
		name := "cleared by the operator"
		if !cleared {
			name = "held to midnight"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			p := e.pool(t, projectsConfig(t, projectSpec{id: "p1", keys: 1, rpm: 100}, projectSpec{id: "p2", keys: 1, rpm: 100}),
				func(o *keypool.Options) { o.Strategy = keypool.RoundRobin })
			ctx := context.Background()
			projects := func(n int) map[string]int {
				t.Helper()
				seen := map[string]int{}
				for range n {
					l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
					require.NoError(t, err)
					require.NoError(t, p.Release(ctx, l, keypool.Outcome{}))
					seen[l.Key.Project()]++
				}
				return seen
			}

			var l *keypool.Lease
			for l == nil || l.Key.Project() != "p1" {
				var err error
				l, err = p.Select(ctx, keypool.SelectRequest{Model: model})
				require.NoError(t, err)
			}
			at := e.clock.Now()
			o := keypool.Outcome{Failure: gemini.FailureDayQuota, QuotaExceeded: schemas.QuotaExceeded{RPD: true}, At: at}
			require.NoError(t, p.Release(ctx, l, o))
			until, reason, _ := keypool.CooldownFor(o, at)
			midnight := schemas.NextPacificMidnight(at)
			require.Equal(t, midnight, until)
			require.Equal(t, schemas.ReasonRPD, reason)

			// Before the key-state event reached Valkey: the local cool-down holds.
			e.clock.Set(midnight.Add(-time.Millisecond))
			require.Zero(t, projects(4)["p1"])

			// The processors write the event's entry; a refresh sees it.
			b, err := json.Marshal(schemas.BlacklistEntry{Project: "p1", Reason: reason, ExpiresAt: until.UnixMilli(), Model: model, QuotaExceeded: schemas.QuotaExceeded{RPD: true}})
			require.NoError(t, err)
			e.set(t, e.keys.Cooldown("p1", model), string(b), until)
			require.NoError(t, p.Refresh(ctx))
			require.Zero(t, projects(4)["p1"])

			if cleared {
				require.NoError(t, e.client.Do(ctx, e.client.B().Del().Key(e.keys.Cooldown("p1", model)).Build()).Error())
				require.NoError(t, p.Refresh(ctx))
				require.Positive(t, projects(4)["p1"], "the operator's clear lifts the cool-down before midnight")
				return
			}
			e.clock.Set(midnight)
			require.Positive(t, projects(4)["p1"], "the pair serves again at Pacific midnight")
		})
	}
}

// TestClearCooldownOnThisInstance: the instance that handles an operator's clear lifts
// its own cool-down of the pair at once, even before Valkey ever had the entry.
func TestClearCooldownOnThisInstance(t *testing.T) {
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
	require.NoError(t, p.Release(ctx, l, keypool.Outcome{Failure: gemini.FailureMinuteQuota, RetryDelay: 40 * time.Second, At: e.clock.Now()}))
	seen := map[string]int{}
	for range 4 {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
		seen[l.Key.Project()]++
	}
	require.Zero(t, seen["p1"])
	p.ClearCooldown("p1", model)
	for range 4 {
		l, err := p.Select(ctx, keypool.SelectRequest{Model: model})
		require.NoError(t, err)
		seen[l.Key.Project()]++
	}
	require.Positive(t, seen["p1"])
}
