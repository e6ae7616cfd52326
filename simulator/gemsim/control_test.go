package gemsim

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStatsWindows(t *testing.T) {
	clock := newClock(time.Date(2025, 6, 16, 6, 59, 30, 0, time.UTC)) // 23:59:30 PDT on the 15th.
	s := newSim(t, Config{Now: clock.Now})
	s.generateOK(keyP1a, flash, userText("12345678"))
	s.generateOK(keyP1b, flash, userText("1234"))

	st := s.stats()
	require.Equal(t, "2025-06-15", st.PacificDay)
	require.Equal(t, time.Date(2025, 6, 16, 6, 59, 0, 0, time.UTC), st.MinuteStart)
	require.Equal(t, ProjectStats{Tier: TierFree, Models: map[string]ModelStats{flash: {
		Limits:         Limits{RPM: 10, TPM: 250_000, RPD: 250},
		MinuteRequests: 2, MinuteInputTokens: 3, DayRequests: 2, Accepted: 2,
	}}}, st.Projects["p1"])
	require.Equal(t, KeyStats{Project: "p1", Responses: map[int]int64{200: 1}}, st.Keys[keyP1a])

	clock.Add(30 * time.Second) // 00:00:00 PDT: new minute and new Pacific day.
	st = s.stats()
	require.Equal(t, "2025-06-16", st.PacificDay)
	require.Equal(t, ModelStats{Limits: Limits{RPM: 10, TPM: 250_000, RPD: 250}, Accepted: 2}, st.Projects["p1"].Models[flash],
		"the windows are empty, the totals stay")
}

func TestReset(t *testing.T) {
	s := newSim(t, Config{Limits: map[string]Limits{flash: {RPM: 1}}})
	s.generateOK(keyP1a, flash, userText("x"))
	code, _ := s.generate(keyP1a, flash, userText("x"))
	require.Equal(t, http.StatusTooManyRequests, code)
	s.inject(FaultRule{Fault: Fault{Status: 503}})

	code, _ = s.do(http.MethodPost, "/sim/reset", "", nil)
	require.Equal(t, http.StatusOK, code)
	st := s.stats()
	require.Empty(t, st.Projects["p1"].Models)
	require.Empty(t, st.Keys[keyP1a].Responses)
	require.Zero(t, st.PendingFaults)
	s.generateOK(keyP1a, flash, userText("x"))
}

func TestAddKeysAtRuntime(t *testing.T) {
	s := newSim(t, Config{Limits: map[string]Limits{flash: {RPM: 1}}})
	s.generateOK(keyP1a, flash, userText("x"))

	cases := []struct {
		name     string
		why      string
		body     string
		wantCode int
	}{
		{name: "new project", why: "keys of a new project work at once",
			body: `{"projects":[{"id":"p3","tier":"tier1","keys":["AIzaSyNew-p3"]}]}`, wantCode: 200},
		{name: "more keys for p1", why: "an existing project gains keys and keeps its quota state",
			body: `{"projects":[{"id":"p1","keys":["AIzaSyNew-p1"]}]}`, wantCode: 200},
		{name: "duplicate key", why: "a key belongs to one project",
			body: `{"projects":[{"id":"p4","keys":["` + keyP2a + `"]}]}`, wantCode: 400},
		{name: "tier change", why: "a project keeps its tier",
			body: `{"projects":[{"id":"p1","tier":"tier1","keys":["AIzaSyOther"]}]}`, wantCode: 400},
		{name: "no keys", why: "a project needs keys",
			body: `{"projects":[{"id":"p5"}]}`, wantCode: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.do(http.MethodPost, "/sim/config/keys", "", tc.body)
			require.Equal(t, tc.wantCode, code, "%s: %s", tc.why, body)
		})
	}
	s.generateOK("AIzaSyNew-p3", flash, userText("x"))
	code, _ := s.generate("AIzaSyNew-p1", flash, userText("x"))
	require.Equal(t, http.StatusTooManyRequests, code, "the new key shares p1's exhausted quota")
	code, _ = s.generate("AIzaSyOther", flash, userText("x"))
	require.Equal(t, http.StatusBadRequest, code, "a rejected addition adds nothing")
	require.Equal(t, TierOne, s.stats().Projects["p3"].Tier)
}

func TestControlRoutes(t *testing.T) {
	s := newSim(t, Config{})
	cases := []struct {
		method, path string
		wantCode     int
	}{
		{http.MethodGet, "/sim/healthz", 200},
		{http.MethodGet, "/sim/stats", 200},
		{http.MethodGet, "/sim/faults", 200},
		{http.MethodGet, "/sim/nothing", 404},
		{http.MethodPut, "/sim/reset", 404},
	}
	for _, tc := range cases {
		code, body := s.do(tc.method, tc.path, "", nil)
		require.Equal(t, tc.wantCode, code, "%s %s: %s", tc.method, tc.path, body)
	}
}
