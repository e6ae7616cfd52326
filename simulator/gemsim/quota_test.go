package gemsim

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// pacific loads the zone the day quotas reset in.
func pacific(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(pacificZone)
	require.NoError(t, err)
	return loc
}

func TestRPMExhaustionHasTheRealShape(t *testing.T) {
	clock := newClock(time.Date(2025, 6, 15, 10, 0, 35, 930_000_000, time.UTC))
	s := newSim(t, Config{Now: clock.Now, Limits: map[string]Limits{flash: {RPM: 10, TPM: 250_000, RPD: 250}}})
	for i := range 10 {
		code, body := s.generate(keyP1a, flash, userText("hi"))
		require.Equal(t, http.StatusOK, code, "request %d: %s", i, body)
	}
	code, body := s.generate(keyP1a, flash, userText("hi"))
	require.Equal(t, http.StatusTooManyRequests, code)
	// The body of the real API, except RetryInfo: rounded up, so a client that honours
	// it lands in the next minute.
	require.JSONEq(t, `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.5-flash\nPlease retry in 24.07s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.5-flash"},"quotaValue":"10"}]},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"25s"}]}}`, string(body))

	c := gemini.Classify(code, body)
	require.Equal(t, gemini.FailureMinuteQuota, c.Failure)
	require.True(t, c.RPM)
	require.Equal(t, 25*time.Second, c.RetryDelay)

	st := s.stats().Projects["p1"].Models[flash]
	require.EqualValues(t, 10, st.MinuteRequests, "a 429 consumes nothing")
	require.EqualValues(t, 10, st.Accepted)
	require.EqualValues(t, 1, st.Rejected429)

	clock.Add(24 * time.Second)
	code, _ = s.generate(keyP1a, flash, userText("hi"))
	require.Equal(t, http.StatusTooManyRequests, code, "still the same minute")
	clock.Add(100 * time.Millisecond)
	code, body = s.generate(keyP1a, flash, userText("hi"))
	require.Equal(t, http.StatusOK, code, "a new minute frees RPM: %s", body)
}

func TestQuotaViolations(t *testing.T) {
	base := time.Date(2025, 6, 15, 10, 0, 30, 0, time.UTC)
	long := "This prompt is exactly forty bytes long!" // 10 tokens.
	cases := []struct {
		name       string
		why        string
		tier       string
		limits     Limits
		model      string
		first      []string
		rejected   string
		wantID     string
		wantMetric string
		wantValue  string
		wantRetry  string
		wantKind   gemini.Failure
		afterwards string
	}{
		{name: "tpm", why: "input tokens per minute; the 429 leaves room for a smaller request",
			limits: Limits{TPM: 25}, model: flash, first: []string{long, long}, rejected: long + long,
			wantID: "GenerateContentInputTokensPerModelPerMinute-FreeTier", wantMetric: gemini.MetricInputTokens,
			wantValue: "25", wantRetry: "30s", wantKind: gemini.FailureMinuteQuota, afterwards: "12345"},
		{name: "tier1 ids", why: "paid tiers drop the -FreeTier suffix and name paid metrics",
			tier: TierOne, limits: Limits{RPM: 1}, model: "gemini-2.5-pro", first: []string{"a"}, rejected: "b",
			wantID: "GenerateRequestsPerMinutePerProjectPerModel", wantMetric: "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
			wantValue: "1", wantRetry: "30s", wantKind: gemini.FailureMinuteQuota},
		{name: "rpd", why: "requests per day; 10:00:30 UTC is 03:00:30 PDT, 20h59m30s before Pacific midnight",
			limits: Limits{RPD: 1}, model: "gemini-2.0-flash", first: []string{"a"}, rejected: "b",
			wantID: "GenerateRequestsPerDayPerProjectPerModel-FreeTier", wantMetric: gemini.MetricRequests,
			wantValue: "1", wantRetry: "75570s", wantKind: gemini.FailureDayQuota},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock(base)
			s := newSim(t, Config{
				Now:      clock.Now,
				Projects: []ProjectConfig{{ID: "p1", Tier: tc.tier, Keys: []string{keyP1a}}},
				Limits:   map[string]Limits{tc.model: tc.limits},
			})
			for _, text := range tc.first {
				code, body := s.generate(keyP1a, tc.model, userText(text))
				require.Equal(t, http.StatusOK, code, string(body))
			}
			code, body := s.generate(keyP1a, tc.model, userText(tc.rejected))
			require.Equal(t, http.StatusTooManyRequests, code, tc.why)
			st := decodeError(t, body)
			require.Equal(t, "RESOURCE_EXHAUSTED", st.Status)
			require.Len(t, st.Details, 3)
			v := st.Details[0].Violations[0]
			require.Equal(t, tc.wantID, v.QuotaID, tc.why)
			require.Equal(t, tc.wantMetric, v.QuotaMetric)
			require.Equal(t, tc.wantValue, v.QuotaValue)
			require.Equal(t, map[string]string{"location": "global", "model": tc.model}, v.QuotaDimensions)
			require.Equal(t, gemini.TypeRetryInfo, st.Details[2].Type)
			require.Equal(t, tc.wantRetry, st.Details[2].RetryDelay)
			require.Equal(t, tc.wantKind, gemini.Classify(code, body).Failure)
			if tc.afterwards != "" {
				code, body = s.generate(keyP1a, tc.model, userText(tc.afterwards))
				require.Equal(t, http.StatusOK, code, string(body))
			}
		})
	}
}

func TestRPDResetsAtPacificMidnight(t *testing.T) {
	la := pacific(t)
	cases := []struct {
		name      string
		why       string
		lastSec   time.Time
		next      time.Time
		wantReset bool
	}{
		{name: "pacific midnight in PDT", why: "the day ends at 00:00 America/Los_Angeles (UTC-7 in summer)",
			lastSec: time.Date(2025, 6, 15, 23, 59, 59, 0, la), next: time.Date(2025, 6, 16, 0, 0, 0, 0, la), wantReset: true},
		{name: "pacific midnight in PST", why: "and at 00:00 in winter (UTC-8), the day DST ended",
			lastSec: time.Date(2025, 11, 2, 23, 59, 59, 0, la), next: time.Date(2025, 11, 3, 0, 0, 0, 0, la), wantReset: true},
		{name: "utc midnight", why: "UTC midnight is 17:00 PDT: the day goes on",
			lastSec: time.Date(2025, 6, 15, 23, 59, 59, 0, time.UTC), next: time.Date(2025, 6, 16, 0, 0, 0, 0, time.UTC)},
		{name: "a rolling day", why: "not a rolling 24h: 23h59m later it is still the same Pacific day",
			lastSec: time.Date(2025, 6, 15, 0, 0, 1, 0, la), next: time.Date(2025, 6, 15, 23, 59, 59, 0, la)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock(tc.lastSec)
			s := newSim(t, Config{Now: clock.Now, Limits: map[string]Limits{flash: {RPD: 2}}})
			for range 2 {
				code, body := s.generate(keyP1a, flash, userText("x"))
				require.Equal(t, http.StatusOK, code, string(body))
			}
			code, body := s.generate(keyP1a, flash, userText("x"))
			require.Equal(t, http.StatusTooManyRequests, code)
			c := gemini.Classify(code, body)
			require.Equal(t, gemini.FailureDayQuota, c.Failure)
			nextMidnight := time.Date(tc.lastSec.In(la).Year(), tc.lastSec.In(la).Month(), tc.lastSec.In(la).Day()+1, 0, 0, 0, 0, la)
			require.Equal(t, nextMidnight.Sub(tc.lastSec), c.RetryDelay, "retryDelay runs to Pacific midnight")

			clock.Set(tc.next)
			code, _ = s.generate(keyP1a, flash, userText("x"))
			if tc.wantReset {
				require.Equal(t, http.StatusOK, code, tc.why)
			} else {
				require.Equal(t, http.StatusTooManyRequests, code, tc.why)
			}
		})
	}
}

func TestKeysOfAProjectShareQuota(t *testing.T) {
	s := newSim(t, Config{Limits: map[string]Limits{flash: {RPM: 2}}})
	steps := []struct {
		key  string
		want int
		why  string
	}{
		{keyP1a, http.StatusOK, "first of p1"},
		{keyP1b, http.StatusOK, "second of p1, through the other key"},
		{keyP1a, http.StatusTooManyRequests, "p1 is exhausted for key a"},
		{keyP1b, http.StatusTooManyRequests, "and for key b"},
		{keyP2a, http.StatusOK, "p2 is unaffected"},
	}
	for _, st := range steps {
		code, _ := s.generate(st.key, flash, userText("x"))
		require.Equal(t, st.want, code, st.why)
	}
	code, _ := s.generate(keyP1a, "gemini-2.0-flash", userText("x"))
	require.Equal(t, http.StatusOK, code, "quotas are per model")

	stats := s.stats()
	require.EqualValues(t, 2, stats.Projects["p1"].Models[flash].Accepted)
	require.EqualValues(t, 2, stats.Projects["p1"].Models[flash].Rejected429)
	require.EqualValues(t, 1, stats.Projects["p2"].Models[flash].Accepted)
	require.Equal(t, map[int]int64{200: 2, 429: 1}, stats.Keys[keyP1a].Responses)
	require.Equal(t, map[int]int64{200: 1, 429: 1}, stats.Keys[keyP1b].Responses)
}

func TestConcurrentAdmissionIsExact(t *testing.T) {
	clock := newClock(time.Date(2025, 6, 15, 10, 0, 5, 0, time.UTC))
	s := newSim(t, Config{Now: clock.Now, Limits: map[string]Limits{flash: {RPM: 10}}, Latency: Duration(5 * time.Millisecond)})
	const n = 200
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		key := keyP1a
		if i%2 == 1 {
			key = keyP1b
		}
		wg.Go(func() {
			code, _ := s.generate(key, flash, userText("x"))
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	require.Equal(t, map[int]int{200: 10, 429: 190}, count)
	st := s.srv.Stats().Projects["p1"].Models[flash]
	require.EqualValues(t, 10, st.Accepted)
	require.EqualValues(t, 190, st.Rejected429)
}

func TestBare429(t *testing.T) {
	sequence := func(seed int64) []bool {
		s := newSim(t, Config{Seed: seed, Bare429Fraction: 0.5, Limits: map[string]Limits{flash: {RPM: 1}}})
		code, _ := s.generate(keyP1a, flash, userText("x"))
		require.Equal(t, http.StatusOK, code)
		var bare []bool
		for range 40 {
			code, body := s.generate(keyP1a, flash, userText("x"))
			require.Equal(t, http.StatusTooManyRequests, code)
			st := decodeError(t, body)
			require.Equal(t, "RESOURCE_EXHAUSTED", st.Status)
			bare = append(bare, len(st.Details) == 0)
			if len(st.Details) == 0 {
				require.Equal(t, gemini.FailureQuotaUnknown, gemini.Classify(code, body).Failure)
			}
		}
		return bare
	}
	a, b := sequence(7), sequence(7)
	require.Equal(t, a, b, "the same seed gives the same choices")
	require.Contains(t, a, true)
	require.Contains(t, a, false)
}

func TestEmbeddingQuota(t *testing.T) {
	clock := newClock(time.Date(2025, 6, 15, 10, 0, 0, 0, time.UTC))
	s := newSim(t, Config{Now: clock.Now, Limits: map[string]Limits{"gemini-embedding-001": {RPM: 5}}})
	batch := func(n int) gemini.BatchEmbedContentsRequest {
		var req gemini.BatchEmbedContentsRequest
		for range n {
			req.Requests = append(req.Requests, gemini.EmbedContentRequest{
				Model: "models/gemini-embedding-001", Content: gemini.Content{Parts: []gemini.Part{{Text: "x"}}},
			})
		}
		return req
	}
	path := "/v1beta/models/gemini-embedding-001:batchEmbedContents"
	code, _ := s.do(http.MethodPost, path, keyP1a, batch(3))
	require.Equal(t, http.StatusOK, code)
	code, body := s.do(http.MethodPost, path, keyP1a, batch(3))
	require.Equal(t, http.StatusTooManyRequests, code, "3 + 3 entries exceed 5 requests per minute")
	st := decodeError(t, body)
	require.Equal(t, "EmbedContentRequestsPerMinutePerProjectPerModel-FreeTier", st.Details[0].Violations[0].QuotaID)
	require.Equal(t, gemini.FailureMinuteQuota, gemini.Classify(code, body).Failure)
	code, _ = s.do(http.MethodPost, "/v1beta/models/gemini-embedding-001:embedContent", keyP1a,
		gemini.EmbedContentRequest{Content: gemini.Content{Parts: []gemini.Part{{Text: "x"}}}})
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, 4, s.srv.Stats().Projects["p1"].Models["gemini-embedding-001"].MinuteRequests, "3 + the single embedContent; the rejected batch consumed nothing")
}

func TestCountTokensConsumesNoQuota(t *testing.T) {
	s := newSim(t, Config{Limits: map[string]Limits{flash: {RPM: 1}}})
	for range 5 {
		code, body := s.do(http.MethodPost, "/v1beta/models/gemini-2.5-flash:countTokens", keyP1a, userText("count me"))
		require.Equal(t, http.StatusOK, code, string(body))
	}
	code, _ := s.generate(keyP1a, flash, userText("x"))
	require.Equal(t, http.StatusOK, code)
}

func TestWindowAt(t *testing.T) {
	la := pacific(t)
	cases := []struct {
		name    string
		now     time.Time
		wantDay int64
		wantEnd time.Time
	}{
		{name: "evening PDT is the same Pacific day though UTC moved on",
			now: time.Date(2025, 6, 16, 5, 0, 0, 0, time.UTC), wantDay: 20250615, wantEnd: time.Date(2025, 6, 16, 0, 0, 0, 0, la)},
		{name: "spring forward day is 23 hours",
			now: time.Date(2025, 3, 9, 0, 30, 0, 0, la), wantDay: 20250309, wantEnd: time.Date(2025, 3, 10, 0, 0, 0, 0, la)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := windowAt(tc.now, la)
			require.Equal(t, tc.wantDay, w.day)
			require.True(t, tc.wantEnd.Equal(w.dayEnd), "%v != %v", tc.wantEnd, w.dayEnd)
			require.Equal(t, tc.now.Truncate(time.Minute).Add(time.Minute).Unix(), w.minuteEnd.Unix())
		})
	}
	require.Equal(t, 23*time.Hour-30*time.Minute, windowAt(time.Date(2025, 3, 9, 0, 30, 0, 0, la), la).dayEnd.Sub(time.Date(2025, 3, 9, 0, 30, 0, 0, la)))
}

// Ensure the stats JSON decodes with integer status keys.
func TestStatsJSON(t *testing.T) {
	s := newSim(t, Config{})
	s.generateOK(keyP1a, flash, userText("x"))
	_, body := s.do(http.MethodGet, "/sim/stats", "", nil)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(body, &raw))
	keys := raw["keys"].(map[string]any)
	require.Equal(t, map[string]any{"200": float64(1)}, keys[keyP1a].(map[string]any)["responses"])
}
