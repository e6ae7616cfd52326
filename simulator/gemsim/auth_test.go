package gemsim

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

func TestAuth(t *testing.T) {
	cases := []struct {
		name        string
		why         string
		path        string
		key         string
		wantCode    int
		wantBody    string
		wantFailure gemini.Failure
	}{
		{name: "missing key", why: "no header and no ?key= is an unregistered caller",
			wantCode:    http.StatusForbidden,
			wantBody:    `{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}`,
			wantFailure: gemini.FailureForbidden},
		{name: "unknown key", why: "the real 400 with ErrorInfo API_KEY_INVALID", key: "AIzaSyNotAKey",
			wantCode:    http.StatusBadRequest,
			wantBody:    `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`,
			wantFailure: gemini.FailureKeyInvalid},
		{name: "unknown key in query", why: "?key= is read like the header",
			path:        "/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaSyNotAKey",
			wantCode:    http.StatusBadRequest,
			wantFailure: gemini.FailureKeyInvalid},
		{name: "forbidden key", why: "a suspended consumer is 403 PERMISSION_DENIED", key: keyBanned,
			wantCode:    http.StatusForbidden,
			wantBody:    `{"error":{"code":403,"message":"Permission denied: Consumer 'projects/p2' has been suspended.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED","domain":"googleapis.com","metadata":{"consumer":"projects/p2","service":"generativelanguage.googleapis.com"}}]}}`,
			wantFailure: gemini.FailureForbidden},
		{name: "auth before model", why: "an invalid key is reported even for an unknown model",
			path: "/v1beta/models/nope:generateContent", key: "AIzaSyNotAKey",
			wantCode: http.StatusBadRequest, wantFailure: gemini.FailureKeyInvalid},
		{name: "valid key in query", why: "a valid ?key= authenticates",
			path:     "/v1beta/models/gemini-2.5-flash:generateContent?key=" + keyP2a,
			wantCode: http.StatusOK, wantFailure: gemini.FailureNone},
	}
	s := newSim(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/v1beta/models/gemini-2.5-flash:generateContent"
			}
			code, body := s.do(http.MethodPost, path, tc.key, userText("x"))
			require.Equal(t, tc.wantCode, code, string(body))
			if tc.wantBody != "" {
				require.JSONEq(t, tc.wantBody, string(body), tc.why)
			}
			require.Equal(t, tc.wantFailure, gemini.Classify(code, body).Failure, tc.why)
		})
	}
	st := s.stats()
	require.Equal(t, map[int]int64{403: 1}, st.Keys[keyBanned].Responses)
	require.True(t, st.Keys[keyBanned].Forbidden)
}

// TestClassifierReadsSimulatorBodies proves the gateway's classifier understands every
// error the simulator sends, quota and faults alike.
func TestClassifierReadsSimulatorBodies(t *testing.T) {
	cases := []struct {
		name      string
		fault     *Fault
		limits    Limits
		want      gemini.Failure
		wantRPM   bool
		wantTPM   bool
		wantRPD   bool
		wantDelay bool
	}{
		{name: "rpm quota", limits: Limits{RPM: 1}, want: gemini.FailureMinuteQuota, wantRPM: true, wantDelay: true},
		{name: "tpm quota", limits: Limits{TPM: 1}, want: gemini.FailureMinuteQuota, wantTPM: true, wantDelay: true},
		{name: "rpd quota", limits: Limits{RPD: 1}, want: gemini.FailureDayQuota, wantRPD: true, wantDelay: true},
		{name: "forced rpd fault", fault: &Fault{Status: 429, Quota: "rpd"}, want: gemini.FailureDayQuota, wantRPD: true, wantDelay: true},
		{name: "bare 429 fault", fault: &Fault{Status: 429}, want: gemini.FailureQuotaUnknown},
		{name: "503 overloaded", fault: &Fault{Status: 503}, want: gemini.FailureUpstream},
		{name: "500 internal", fault: &Fault{Status: 500}, want: gemini.FailureUpstream},
		{name: "504 deadline", fault: &Fault{Status: 504}, want: gemini.FailureUpstream},
		{name: "400 key invalid fault", fault: &Fault{Status: 400}, want: gemini.FailureKeyInvalid},
		{name: "400 bad request fault", fault: &Fault{Status: 400, Message: "Request contains an invalid argument."}, want: gemini.FailureClient},
		{name: "403 fault", fault: &Fault{Status: 403}, want: gemini.FailureForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, Config{Limits: map[string]Limits{flash: tc.limits}})
			if tc.fault != nil {
				s.inject(FaultRule{Key: keyP1a, Fault: *tc.fault})
			} else {
				code, _ := s.generate(keyP1a, flash, userText("x"))
				require.Equal(t, http.StatusOK, code)
			}
			code, body := s.generate(keyP1a, flash, userText("more than one token"))
			require.GreaterOrEqual(t, code, 400)
			c := gemini.Classify(code, body)
			require.Equal(t, tc.want, c.Failure, string(body))
			require.Equal(t, tc.wantRPM, c.RPM)
			require.Equal(t, tc.wantTPM, c.TPM)
			require.Equal(t, tc.wantRPD, c.RPD)
			require.Equal(t, tc.wantDelay, c.RetryDelay > 0)
		})
	}
}
