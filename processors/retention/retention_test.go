package retention

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExpired(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		id      string
		monthly bool
		days    int
		want    bool
	}{
		// A day's rows are all older than 30 days once the day after it is 30 days old.
		{"20260228", false, 30, true},  // ends 03-01, +30d = 03-31 00:00 <= now
		{"20260301", false, 30, false}, // ends 03-02, +30d = 04-01
		{"20260330", false, 0, true},
		// A month goes when its last day has.
		{"202601", true, 30, true}, // ends 02-01, +30d = 03-03
		{"202602", true, 30, true}, // ends 03-01, +30d = 03-31 00:00 <= now
		{"202603", true, 1, false}, // the current month
		{"202410", true, 730, false},
		{"202402", true, 730, true},
		{"202403", true, 730, false}, // 2024-04-01 + 730 days is 2026-04-01
	} {
		got, err := expired(tc.id, tc.monthly, tc.days, now)
		require.NoError(t, err, tc.id)
		require.Equal(t, tc.want, got, "%s monthly=%v days=%d", tc.id, tc.monthly, tc.days)
	}
	_, err := expired("all", false, 30, now)
	require.Error(t, err)
}
