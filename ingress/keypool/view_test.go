package keypool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestApplyKeepsNewestReply: replies of concurrent reservation calls reach the view in
// any order; the view keeps the numbers of the call issued last, so an older snapshot
// (fewer reservations) never makes a degraded pool see headroom that is gone.
func TestApplyKeepsNewestReply(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 5, 0, time.UTC)
	w := windowOf(now)
	cases := []struct {
		name  string
		order []uint64 // call numbers in the order their replies arrive
		want  int64    // requests the view counts for the minute afterwards
	}{
		{"in order", []uint64{1, 2, 3}, 13},
		// The reply of call 3 arrives before those of calls 1 and 2.
		{"newest first", []uint64{3, 1, 2}, 13},
		{"refresh after a late reply", []uint64{1, 3, 2}, 13},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s pairState
			for _, seq := range tc.order {
				// Call n saw 10 counted requests and n pending reservations.
				s.apply(now, &scriptReply{status: statusOK, rpm: 10, pendReq: int64(seq), rpd: 10, pendDay: int64(seq)}, w.minute, w.day, seq)
			}
			req, _, day := s.usage(w.minute, w.day, 0)
			require.Equal(t, tc.want, req)
			require.Equal(t, tc.want, day)
		})
	}
}

// TestApplyHandsLocalCooldownToValkey: this instance's own cool-down bridges the time
// until the processors write the key-state event; once Valkey holds a cool-down at
// least as long, the local one is dropped, so that Valkey's clear or expiry decides.
func TestApplyHandsLocalCooldownToValkey(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 5, 0, time.UTC)
	w := windowOf(now)
	local := now.Add(30 * time.Second)
	cases := []struct {
		name   string
		valkey time.Time // the cool-down end in Valkey's reply; zero for none
		kept   bool
	}{
		{"Valkey has none yet", time.Time{}, true},
		{"Valkey has a shorter one (an older 429)", now.Add(10 * time.Second), true},
		{"Valkey has the same one", local, false},
		{"Valkey has a longer one", local.Add(time.Hour), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := pairState{localCooldownUntil: local, localCooldownReason: "rpm_exceeded"}
			s.apply(now, &scriptReply{status: statusCooldown, cooldownUntil: tc.valkey, cooldownReason: "rpm_exceeded"}, w.minute, w.day, 1)
			require.Equal(t, tc.kept, !s.localCooldownUntil.IsZero())
			until, _, cooling := s.cooling(now)
			require.True(t, cooling)
			require.Equal(t, max(local.UnixMilli(), tc.valkey.UnixMilli()), until.UnixMilli())
		})
	}
}
