//go:build integration

package statesink

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

// TestDayCooldownExpiresAtPacificMidnight: a per-day 429's cool-down (until_ms is the
// next midnight in Los Angeles, as the ingress computes it) is written to expire at that
// midnight exactly, whatever the writer's clock before it; a writer whose clock is at or
// past that midnight — a replay on a later day — writes nothing.
func TestDayCooldownExpiresAtPacificMidnight(t *testing.T) {
	e := newEnv(t)
	at := time.Now()
	midnight := schemas.NextPacificMidnight(at)
	ev := cooldown("d1", "p1", modelFlash, at, midnight)
	ev.Reason, ev.QuotaExceeded = schemas.ReasonRPD, schemas.QuotaExceeded{RPD: true}

	for _, now := range []time.Time{midnight, midnight.Add(time.Hour)} {
		require.NoError(t, e.writer(now).ApplyKeyStates(e.ctx, []*schemas.KeyStateEvent{ev}))
		got, err := e.reader.Cooldown(e.ctx, "p1", modelFlash)
		require.NoError(t, err)
		require.Nil(t, got, "a cool-down over by the writer's clock (%s) is not written", now)
	}

	for _, now := range []time.Time{at, midnight.Add(-time.Millisecond)} {
		require.NoError(t, e.writer(now).ApplyKeyStates(e.ctx, []*schemas.KeyStateEvent{ev}))
		got, err := e.reader.Cooldown(e.ctx, "p1", modelFlash)
		require.NoError(t, err)
		require.NotNil(t, got)
		require.Equal(t, schemas.ReasonRPD, got.Reason)
		require.True(t, got.QuotaExceeded.RPD)
		require.Equal(t, midnight.UnixMilli(), got.ExpiresAt)
		require.Equal(t, midnight.UnixMilli(), e.expireTime(e.keys.Cooldown("p1", modelFlash)))
	}
}
