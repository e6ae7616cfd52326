package gemsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

func TestFaultResponses(t *testing.T) {
	cases := []struct {
		name  string
		why   string
		rule  FaultRule
		path  string
		check func(t *testing.T, resp *http.Response, body []byte, err error)
	}{
		{name: "500", why: "an upstream failure with the real INTERNAL body",
			rule: FaultRule{Fault: Fault{Status: 500}},
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				require.Equal(t, 500, resp.StatusCode)
				require.Equal(t, "INTERNAL", decodeError(t, body).Status)
			}},
		{name: "503", why: "the overloaded model",
			rule: FaultRule{Fault: Fault{Status: 503}},
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				require.Equal(t, 503, resp.StatusCode)
				st := decodeError(t, body)
				require.Equal(t, "UNAVAILABLE", st.Status)
				require.Equal(t, "The model is overloaded. Please try again later.", st.Message)
			}},
		{name: "429 bare", why: "a 429 without details",
			rule: FaultRule{Fault: Fault{Status: 429}},
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				require.Equal(t, 429, resp.StatusCode)
				st := decodeError(t, body)
				require.Equal(t, "RESOURCE_EXHAUSTED", st.Status)
				require.Empty(t, st.Details)
			}},
		{name: "403", why: "a key that became forbidden",
			rule: FaultRule{Fault: Fault{Status: 403}},
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				require.Equal(t, 403, resp.StatusCode)
				require.Equal(t, "PERMISSION_DENIED", decodeError(t, body).Status)
			}},
		{name: "malformed json", why: "a 200 whose body does not parse",
			rule: FaultRule{Fault: Fault{MalformedJSON: true}},
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode)
				require.False(t, json.Valid(body))
			}},
		{name: "error in 200", why: "a 200 carrying a google.rpc error",
			rule: FaultRule{Fault: Fault{ErrorIn200: true}},
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode)
				st := decodeError(t, body)
				require.Equal(t, 500, st.Code)
				require.Equal(t, "INTERNAL", st.Status)
			}},
		{name: "error in 200 stream", why: "an SSE stream whose only event is an error",
			rule: FaultRule{Fault: Fault{ErrorIn200: true}}, path: streamPath(flash, true),
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode)
				data, ok := strings.CutPrefix(string(body), "data: ")
				require.True(t, ok)
				require.Equal(t, "INTERNAL", decodeError(t, []byte(strings.TrimSpace(data))).Status)
			}},
		{name: "reset", why: "the connection dies before any byte",
			rule: FaultRule{Fault: Fault{Reset: true}},
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.Error(t, err)
			}},
		{name: "cut plain answer", why: "a 200 whose body ends early",
			rule: FaultRule{Fault: Fault{CutStreamAfter: ptr(0)}},
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
				require.Equal(t, 200, resp.StatusCode)
			}},
		{name: "cut stream", why: "two SSE chunks, then the connection closes without a finish",
			rule: FaultRule{Fault: Fault{CutStreamAfter: ptr(2)}}, path: streamPath(flash, true),
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
				require.Equal(t, 200, resp.StatusCode)
				require.Equal(t, 2, strings.Count(string(body), "data: "))
				require.NotContains(t, string(body), "finishReason")
			}},
		{name: "cut json array", why: "an array stream that never closes its bracket",
			rule: FaultRule{Fault: Fault{CutStreamAfter: ptr(1)}}, path: streamPath(flash, false),
			check: func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
				require.True(t, strings.HasPrefix(string(body), "[{"))
				require.False(t, json.Valid(body))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{})
			s.inject(tc.rule)
			path := tc.path
			if path == "" {
				path = "/v1beta/models/gemini-2.5-flash:generateContent"
			}
			resp, body := tryRaw(t, s, path, keyP1a)
			tc.check(t, resp, body.data, body.err)

			// The fault was used up: the next call is normal.
			code, again := s.generate(keyP1a, flash, userText("x"))
			require.Equal(t, http.StatusOK, code, string(again))
			require.Zero(t, s.stats().PendingFaults)
		})
	}
}

// readResult is a body read to its end or to its first error.
type readResult struct {
	data []byte
	err  error
}

// tryRaw posts a request on a fresh connection and reads as much body as arrives.
func tryRaw(t *testing.T, s *sim, path, key string) (*http.Response, readResult) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodPost, s.ts.URL+path, strings.NewReader(`{"contents":[{"parts":[{"text":"hello"}]}]}`))
	require.NoError(t, err)
	req.Header.Set("x-goog-api-key", key)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, readResult{err: err}
	}
	defer func() { require.NoError(t, resp.Body.Close()) }()
	data, err := io.ReadAll(resp.Body)
	return resp, readResult{data: data, err: err}
}

func TestFaultDelay(t *testing.T) {
	s := newSim(t, Config{})
	s.inject(FaultRule{Key: keyP1a, Fault: Fault{Delay: Duration(2 * time.Second)}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.ts.URL+"/v1beta/models/gemini-2.5-flash:generateContent", strings.NewReader(`{"contents":[{"parts":[{"text":"x"}]}]}`))
	require.NoError(t, err)
	req.Header.Set("x-goog-api-key", keyP1a)
	_, err = s.ts.Client().Do(req)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "the client times out: %v", err)

	// A short delay ends in a normal answer.
	s.inject(FaultRule{Key: keyP1a, Fault: Fault{Delay: Duration(30 * time.Millisecond)}})
	start := time.Now()
	code, _ := s.generate(keyP1a, flash, userText("x"))
	require.Equal(t, http.StatusOK, code)
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

	// With a status, the delay comes first.
	s.inject(FaultRule{Key: keyP1a, Fault: Fault{Delay: Duration(20 * time.Millisecond), Status: 503}})
	start = time.Now()
	code, _ = s.generate(keyP1a, flash, userText("x"))
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
}

func TestFaultTargeting(t *testing.T) {
	cases := []struct {
		name string
		why  string
		rule FaultRule
		// calls are made in order; want is the status of each.
		calls []faultCall
	}{
		{name: "key", why: "a key rule leaves the project's other key alone",
			rule:  FaultRule{Key: keyP1a, Fault: Fault{Status: 503}, Count: 2},
			calls: []faultCall{{keyP1b, methodGenerate, 200}, {keyP1a, methodGenerate, 503}, {keyP1a, methodGenerate, 503}, {keyP1a, methodGenerate, 200}}},
		{name: "project", why: "a project rule hits every key of the project, no other",
			rule:  FaultRule{Project: "p1", Fault: Fault{Status: 500}, Count: 2},
			calls: []faultCall{{keyP2a, methodGenerate, 200}, {keyP1a, methodGenerate, 500}, {keyP1b, methodGenerate, 500}, {keyP1b, methodGenerate, 200}}},
		{name: "global", why: "a rule without key or project hits anyone",
			rule:  FaultRule{Fault: Fault{Status: 503}, Count: 2},
			calls: []faultCall{{keyP2a, methodGenerate, 503}, {keyP1a, methodGenerate, 503}, {keyP1a, methodGenerate, 200}}},
		{name: "method", why: "a method rule waits for its method",
			rule:  FaultRule{Key: keyP1a, Method: methodCountTokens, Fault: Fault{Status: 500}},
			calls: []faultCall{{keyP1a, methodGenerate, 200}, {keyP1a, methodCountTokens, 500}, {keyP1a, methodCountTokens, 200}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{})
			s.inject(tc.rule)
			for i, c := range tc.calls {
				code, body := s.do(http.MethodPost, "/v1beta/models/gemini-2.5-flash:"+c.method, c.key, userText("x"))
				require.Equal(t, c.want, code, "call %d (%s): %s", i, tc.why, body)
			}
		})
	}
}

// faultCall is one step of a targeting case.
type faultCall struct {
	key    string
	method string
	want   int
}

func TestFaultsConsumeNoQuota(t *testing.T) {
	s := newSim(t, Config{Limits: map[string]Limits{flash: {RPM: 1}}})
	s.inject(FaultRule{Key: keyP1a, Fault: Fault{Status: 503}, Count: 3})
	for range 3 {
		code, _ := s.generate(keyP1a, flash, userText("x"))
		require.Equal(t, http.StatusServiceUnavailable, code)
	}
	code, _ := s.generate(keyP1a, flash, userText("x"))
	require.Equal(t, http.StatusOK, code, "the quota is intact after faults")
	st := s.stats()
	require.Equal(t, map[int]int64{200: 1, 503: 3}, st.Keys[keyP1a].Responses)
}

func TestFaultControl(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		wantCode int
		wantMsg  string
	}{
		{name: "valid", body: `{"key":"` + keyP1a + `","fault":{"status":503},"count":2}`, wantCode: 200, wantMsg: `"queued": 2`},
		{name: "unknown key", body: `{"key":"nope","fault":{"status":503}}`, wantCode: 400, wantMsg: "unknown key"},
		{name: "unknown project", body: `{"project":"nope","fault":{"status":503}}`, wantCode: 400, wantMsg: "unknown project"},
		{name: "two outcomes", body: `{"fault":{"status":503,"reset":true}}`, wantCode: 400, wantMsg: "at most one"},
		{name: "empty fault", body: `{"fault":{}}`, wantCode: 400, wantMsg: "empty fault"},
		{name: "bad status", body: `{"fault":{"status":200}}`, wantCode: 400, wantMsg: "want 400 to 599"},
		{name: "quota without 429", body: `{"fault":{"status":500,"quota":"rpm"}}`, wantCode: 400, wantMsg: "quota needs status 429"},
		{name: "unknown field", body: `{"fault":{"status":503},"oops":1}`, wantCode: 400, wantMsg: "unknown field"},
		{name: "delay as string", body: `{"fault":{"delay":"1.5s"}}`, wantCode: 200, wantMsg: `"queued": 1`},
		{name: "delay as ms", body: `{"fault":{"delay":1500}}`, wantCode: 200, wantMsg: `"queued": 1`},
	}
	s := newSim(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.do(http.MethodPost, "/sim/faults", "", tc.body)
			require.Equal(t, tc.wantCode, code, string(body))
			require.Contains(t, string(body), tc.wantMsg)
		})
	}
	code, body := s.do(http.MethodGet, "/sim/faults", "", nil)
	require.Equal(t, http.StatusOK, code)
	var listed struct{ Faults []FaultRule }
	require.NoError(t, json.Unmarshal(body, &listed))
	require.Len(t, listed.Faults, 3)
	require.Equal(t, Duration(1500*time.Millisecond), listed.Faults[2].Fault.Delay)

	code, body = s.do(http.MethodDelete, "/sim/faults", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"cleared": 4}`, string(body))
	code, _ = s.generate(keyP1a, flash, userText("x"))
	require.Equal(t, http.StatusOK, code)
}

func TestFaultsFromConfig(t *testing.T) {
	s := newSim(t, Config{Faults: []FaultRule{{Project: "p2", Fault: Fault{Status: 429, Quota: "rpm"}}}})
	code, body := s.generate(keyP2a, flash, userText("x"))
	require.Equal(t, http.StatusTooManyRequests, code)
	st := decodeError(t, body)
	require.Equal(t, gemini.QuotaRequestsPerMinute+gemini.FreeTierSuffix, st.Details[0].Violations[0].QuotaID)
	require.Equal(t, "10", st.Details[0].Violations[0].QuotaValue, "the limit in force for the model")
}
