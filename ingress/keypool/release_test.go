package keypool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

func TestCooldownFor(t *testing.T) {
	la := schemas.Pacific()
	now := time.Date(2025, 3, 8, 23, 59, 40, 0, la) // the night DST starts
	cases := []struct {
		name   string
		o      Outcome
		until  time.Time
		reason string
		qe     schemas.QuotaExceeded
	}{
		{"rpm with retryDelay waits the delay",
			Outcome{Failure: gemini.FailureMinuteQuota, RetryDelay: 12500 * time.Millisecond, QuotaExceeded: schemas.QuotaExceeded{RPM: true}},
			now.Add(12500 * time.Millisecond), schemas.ReasonRPM, schemas.QuotaExceeded{RPM: true}},
		{"tpm without retryDelay waits for the minute's end",
			Outcome{Failure: gemini.FailureMinuteQuota, QuotaExceeded: schemas.QuotaExceeded{TPM: true}},
			time.Date(2025, 3, 9, 0, 0, 0, 0, la), schemas.ReasonTPM, schemas.QuotaExceeded{TPM: true}},
		{"429 without details is a per-minute quota",
			Outcome{Failure: gemini.FailureQuotaUnknown},
			time.Date(2025, 3, 9, 0, 0, 0, 0, la), schemas.ReasonQuota, schemas.QuotaExceeded{}},
		// Google's retryDelay on a per-day 429 is seconds; the quota returns at midnight.
		{"rpd waits for Pacific midnight, whatever retryDelay says",
			Outcome{Failure: gemini.FailureDayQuota, RetryDelay: 30 * time.Second},
			time.Date(2025, 3, 9, 0, 0, 0, 0, la), schemas.ReasonRPD, schemas.QuotaExceeded{RPD: true}},
		{"a per-minute cool-down never outlasts the day's reset",
			Outcome{Failure: gemini.FailureMinuteQuota, RetryDelay: time.Hour, QuotaExceeded: schemas.QuotaExceeded{RPM: true}},
			time.Date(2025, 3, 9, 0, 0, 0, 0, la), schemas.ReasonRPM, schemas.QuotaExceeded{RPM: true}},
		{"503 cools nothing", Outcome{Failure: gemini.FailureUpstream}, time.Time{}, "", schemas.QuotaExceeded{}},
		{"invalid key cools nothing (it is disabled instead)", Outcome{Failure: gemini.FailureKeyInvalid}, time.Time{}, "", schemas.QuotaExceeded{}},
		{"success", Outcome{Counted: true}, time.Time{}, "", schemas.QuotaExceeded{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			until, reason, qe := CooldownFor(tc.o, now)
			require.Equal(t, tc.until.UnixMilli(), until.UnixMilli())
			require.Equal(t, tc.until.IsZero(), until.IsZero())
			require.Equal(t, tc.reason, reason)
			require.Equal(t, tc.qe, qe)
		})
	}
	// Midnight after the DST change is 23 hours after the one before.
	day := time.Date(2025, 3, 9, 12, 0, 0, 0, la)
	until, _, _ := CooldownFor(Outcome{Failure: gemini.FailureDayQuota}, day)
	require.Equal(t, time.Date(2025, 3, 10, 0, 0, 0, 0, la), until)
}

func TestOutcomeOf(t *testing.T) {
	body := `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Please retry in 24.07s.","details":[
	  {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
	  {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}`
	o := OutcomeOf(gemini.Classify(429, []byte(body)), false, 80*time.Millisecond)
	require.Equal(t, gemini.FailureMinuteQuota, o.Failure)
	require.Equal(t, 26*time.Second, o.RetryDelay)
	require.True(t, o.QuotaExceeded.RPM)
	now := time.Unix(1_750_000_000, 0)
	until, reason, _ := CooldownFor(o, now)
	require.Equal(t, now.Add(26*time.Second), until)
	require.Equal(t, schemas.ReasonRPM, reason)
}

func TestExceedsAndHeadroom(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 30, 15, 0, time.UTC)
	l := Limits{RPM: 10, TPM: 1000, RPD: 100}
	cases := []struct {
		name              string
		req, tok, day, in int64
		status            string
		until             time.Time
	}{
		{"room", 9, 0, 99, 1000, "", time.Time{}},
		{"rpm full", 10, 0, 0, 0, statusRPM, schemas.MinuteEnd(now)},
		{"tpm would overflow", 0, 900, 0, 101, statusTPM, schemas.MinuteEnd(now)},
		{"rpd full beats rpm full", 10, 0, 100, 0, statusRPD, schemas.NextPacificMidnight(now)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, until := exceeds(l, tc.req, tc.tok, tc.day, tc.in, now)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.until, until)
		})
	}
	require.Equal(t, 1.0, headroom(Limits{}, 100, 100, 100), "unlimited")
	require.InDelta(t, 0.5, headroom(l, 5, 0, 0), 1e-9)
	require.InDelta(t, 0.1, headroom(l, 5, 900, 0), 1e-9, "the tightest quota decides")
}
