package anthropic

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const quota429 = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. Please retry in 24.07s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.5-flash"},"quotaValue":"10"}]},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}`

// A real-looking key, split so that secret scanners do not flag this file.
const fakeKey = "AIza" + "SyD3xAmPlE_kEy-0123456789abcdefghijk"

func TestFromGeminiError(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantType   ErrorType
		wantMsg    string
		wantRetry  time.Duration
	}{
		{
			name: "quota 429 keeps retry delay", status: 429, body: quota429,
			wantStatus: 429, wantType: RateLimitError, wantMsg: "You exceeded your current quota", wantRetry: 26 * time.Second,
		},
		{
			name: "429 without details uses the message hint", status: 429,
			body:       `{"error":{"code":429,"message":"Resource exhausted. Please retry in 1.5s.","status":"RESOURCE_EXHAUSTED"}}`,
			wantStatus: 429, wantType: RateLimitError, wantMsg: "Resource exhausted", wantRetry: 1500 * time.Millisecond,
		},
		{
			// Overloaded: Anthropic's own status for it, which SDKs and Claude Code retry.
			name: "503 is 529 overloaded", status: 503,
			body:       `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`,
			wantStatus: 529, wantType: OverloadedError, wantMsg: "The model is overloaded.",
		},
		{
			name: "500 internal", status: 500,
			body:       `{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`,
			wantStatus: 500, wantType: APIError, wantMsg: "An internal error has occurred.",
		},
		{
			name: "504 deadline", status: 504,
			body:       `{"error":{"code":504,"message":"Deadline expired before operation could complete.","status":"DEADLINE_EXCEEDED"}}`,
			wantStatus: 504, wantType: TimeoutError, wantMsg: "Deadline expired",
		},
		{
			name: "400 invalid argument", status: 400,
			body:       `{"error":{"code":400,"message":"* GenerateContentRequest.contents: contents is not specified","status":"INVALID_ARGUMENT"}}`,
			wantStatus: 400, wantType: InvalidRequestError, wantMsg: "contents is not specified",
		},
		{
			name: "400 invalid key is an authentication error", status: 400,
			body:       `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`,
			wantStatus: 401, wantType: AuthenticationError, wantMsg: "API key not valid.",
		},
		{
			name: "403 permission", status: 403,
			body:       `{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}`,
			wantStatus: 403, wantType: PermissionError, wantMsg: "Method doesn't allow unregistered callers",
		},
		{
			name: "404 model", status: 404,
			body:       `{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}`,
			wantStatus: 404, wantType: NotFoundError, wantMsg: "models/gemini-9 is not found",
		},
		{
			name: "413 too large", status: 413, body: `{"error":{"code":413,"message":"Request payload size exceeds the limit: 20971520 bytes.","status":"INVALID_ARGUMENT"}}`,
			wantStatus: 413, wantType: RequestTooLarge, wantMsg: "Request payload size exceeds",
		},
		{
			name: "HTML from a proxy gives a generic message", status: 502, body: `<html><body>Bad Gateway</body></html>`,
			wantStatus: 500, wantType: APIError, wantMsg: "upstream Gemini API returned HTTP 502",
		},
		{
			name: "empty body", status: 503, body: ``,
			wantStatus: 529, wantType: OverloadedError, wantMsg: "upstream Gemini API returned HTTP 503",
		},
		{
			name: "streaming error wrapped in an array", status: 429,
			body:       `[{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}]`,
			wantStatus: 429, wantType: RateLimitError, wantMsg: "Quota exceeded", wantRetry: 3 * time.Second,
		},
		{
			name: "status without message names the rpc status", status: 500, body: `{"error":{"code":500,"status":"INTERNAL"}}`,
			wantStatus: 500, wantType: APIError, wantMsg: "HTTP 500 INTERNAL",
		},
		{
			name: "other 4xx", status: 409, body: `{"error":{"code":409,"message":"conflict","status":"ABORTED"}}`,
			wantStatus: 400, wantType: InvalidRequestError, wantMsg: "conflict",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := FromGeminiError(tc.status, []byte(tc.body))
			requireAPIError(t, e, tc.wantStatus, tc.wantType, tc.wantMsg)
			require.Equal(t, tc.wantRetry, e.RetryAfter)
		})
	}
}

func TestFromGeminiErrorNeverLeaksKeys(t *testing.T) {
	cases := []struct {
		name string
		msg  string
		want string
	}{
		{name: "bare key", msg: "API key " + fakeKey + " is not valid", want: "API key [redacted] is not valid"},
		{name: "key in URL", msg: "GET https://generativelanguage.googleapis.com/v1beta/models?key=" + fakeKey + "&alt=sse failed", want: "GET https://generativelanguage.googleapis.com/v1beta/models?key=[redacted]&alt=sse failed"},
		{name: "short key param", msg: "bad ?key=abc123 (not a key format)", want: "bad ?key=[redacted] (not a key format)"},
		{name: "api_key param", msg: "api_key=s3cr3t", want: "api_key=[redacted]"},
		{name: "KEY upper case", msg: "KEY=hunter2", want: "KEY=[redacted]"},
		{name: "empty key param untouched", msg: "key= then nothing", want: "key= then nothing"},
		{name: "AIza prefix too short is not a key", msg: "AIzaShort", want: "AIzaShort"},
		{name: "nothing to redact", msg: "The model is overloaded.", want: "The model is overloaded."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"error":{"code":400,"message":` + string(appendJSONString(nil, tc.msg)) + `,"status":"INVALID_ARGUMENT"}}`
			e := FromGeminiError(400, []byte(body))
			require.Equal(t, tc.want, e.Message)
			require.NotContains(t, string(e.Body()), fakeKey)
			require.NotContains(t, e.Error(), fakeKey)
		})
	}
	require.False(t, strings.Contains(redactKeys(strings.Repeat(fakeKey, 3)), "AIza"), "back-to-back keys")
}

func TestErrorTypesAndBody(t *testing.T) {
	cases := []struct {
		typ    ErrorType
		status int
	}{
		{InvalidRequestError, 400}, {AuthenticationError, 401}, {BillingError, 402},
		{PermissionError, 403}, {NotFoundError, 404}, {RequestTooLarge, 413},
		{RateLimitError, 429}, {APIError, 500}, {TimeoutError, 504}, {OverloadedError, 529},
		{ErrorType("mystery"), 500},
	}
	for _, tc := range cases {
		t.Run(string(tc.typ), func(t *testing.T) {
			require.Equal(t, tc.status, NewError(tc.typ, "m").Status())
		})
	}
	e := NewError(RateLimitError, "pool exhausted for %s", "gemini-2.5-pro")
	e.RequestID = "req_1"
	require.Equal(t, `{"type":"error","error":{"type":"rate_limit_error","message":"pool exhausted for gemini-2.5-pro"},"request_id":"req_1"}`, string(e.Body()))
	require.Equal(t, "anthropic rate_limit_error (429): pool exhausted for gemini-2.5-pro", e.Error())
}
