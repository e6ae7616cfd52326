package openai

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A made-up key of the real shape, used to check redaction.
const fakeKey = "AIzaSyA1b2C3d4E5f6G7h8I9j0K_lMnOpQrStUv"

// TestFromGeminiError maps the upstream errors the gateway meets to what an OpenAI SDK
// understands.
func TestFromGeminiError(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantType   string
		wantCode   string
		wantRetry  time.Duration
		wantMsg    string
	}{
		{
			name:   "per-minute quota with RetryInfo",
			status: 429,
			body: `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"You exceeded your current quota. Please retry in 24.07s.","details":[
				{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.5-pro"},"quotaValue":"5"}]},
				{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},
				{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}`,
			wantStatus: 429, wantType: TypeRateLimit, wantCode: CodeRateLimitExceeded, wantRetry: 26 * time.Second,
			wantMsg: "You exceeded your current quota. Please retry in 24.07s.",
		},
		{
			name:   "per-day quota is insufficient_quota",
			status: 429,
			body: `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded.","details":[
				{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"100"}]}]}}`,
			wantStatus: 429, wantType: TypeRateLimit, wantCode: CodeInsufficientQuota, wantMsg: "Quota exceeded.",
		},
		{
			name:       "429 without details takes the retry hint from the message",
			status:     429,
			body:       `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Resource has been exhausted. Please retry in 1.5s."}}`,
			wantStatus: 429, wantType: TypeRateLimit, wantCode: CodeRateLimitExceeded, wantRetry: 1500 * time.Millisecond,
			wantMsg: "Resource has been exhausted. Please retry in 1.5s.",
		},
		{
			name:   "invalid key is 401 and the key is redacted",
			status: 400,
			body: `{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"API key not valid: ` + fakeKey + `. Please pass a valid API key.","details":[
				{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`,
			wantStatus: 401, wantType: TypeAuthentication, wantCode: CodeInvalidAPIKey,
			wantMsg: "API key not valid: [REDACTED]. Please pass a valid API key.",
		},
		{
			name:       "bad argument stays 400",
			status:     400,
			body:       `{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"* GenerateContentRequest.contents: contents is not specified"}}`,
			wantStatus: 400, wantType: TypeInvalidRequest, wantMsg: "* GenerateContentRequest.contents: contents is not specified",
		},
		{
			name:       "permission denied",
			status:     403,
			body:       `{"error":{"code":403,"status":"PERMISSION_DENIED","message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."}}`,
			wantStatus: 403, wantType: TypePermission,
			wantMsg: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
		},
		{
			name:       "unknown model",
			status:     404,
			body:       `{"error":{"code":404,"status":"NOT_FOUND","message":"models/gemini-9 is not found for API version v1beta, or is not supported for generateContent."}}`,
			wantStatus: 404, wantType: TypeNotFound, wantCode: CodeModelNotFound,
			wantMsg: "models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.",
		},
		{
			name:       "overloaded",
			status:     503,
			body:       `{"error":{"code":503,"status":"UNAVAILABLE","message":"The model is overloaded. Please try again later."}}`,
			wantStatus: 503, wantType: TypeServer, wantCode: CodeOverloaded, wantMsg: "The model is overloaded. Please try again later.",
		},
		{
			name:       "internal",
			status:     500,
			body:       `{"error":{"code":500,"status":"INTERNAL","message":"An internal error has occurred."}}`,
			wantStatus: 500, wantType: TypeServer, wantMsg: "An internal error has occurred.",
		},
		{
			name:       "deadline",
			status:     504,
			body:       `{"error":{"code":504,"status":"DEADLINE_EXCEEDED","message":"Deadline expired before operation could complete."}}`,
			wantStatus: 504, wantType: TypeServer, wantMsg: "Deadline expired before operation could complete.",
		},
		{
			name:       "HTML from a proxy",
			status:     502,
			body:       `<html><body>Bad gateway</body></html>`,
			wantStatus: 502, wantType: TypeServer, wantMsg: "Upstream Gemini API error: Bad Gateway.",
		},
		{
			name:       "empty body",
			status:     500,
			wantStatus: 500, wantType: TypeServer, wantMsg: "Upstream Gemini API error: Internal Server Error.",
		},
		{
			name:       "a success status is not an error a client can use",
			status:     200,
			body:       `{}`,
			wantStatus: 502, wantType: TypeServer, wantMsg: "Upstream Gemini API error: OK.",
		},
		{
			name:       "key= in a URL is redacted",
			status:     400,
			body:       `{"error":{"code":400,"status":"FAILED_PRECONDITION","message":"Request to https://generativelanguage.googleapis.com/v1beta/models/x:generateContent?alt=sse&key=sekret-value failed"}}`,
			wantStatus: 400, wantType: TypeInvalidRequest,
			wantMsg: "Request to https://generativelanguage.googleapis.com/v1beta/models/x:generateContent?alt=sse&key=[REDACTED] failed",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := FromGeminiError(tc.status, []byte(tc.body))
			require.Equal(t, tc.wantStatus, e.Status())
			require.Equal(t, tc.wantType, e.Type)
			require.Equal(t, tc.wantCode, e.Code)
			require.Equal(t, tc.wantRetry, e.RetryAfter)
			require.Equal(t, tc.wantMsg, e.Message)
			require.Empty(t, e.Param)
			requireErrorBody(t, e)
			require.NotContains(t, string(e.Body()), "AIza")
		})
	}
}

// TestRedactSecrets pins the redaction rules.
func TestRedactSecrets(t *testing.T) {
	cases := []struct{ in, want string }{
		{"nothing to hide", "nothing to hide"},
		{"key " + fakeKey + " leaked", "key [REDACTED] leaked"},
		{fakeKey + fakeKey, "[REDACTED][REDACTED]"},
		{"AIza too short", "AIza too short"},
		{"?key=abc&alt=sse", "?key=[REDACTED]&alt=sse"},
		{"?KEY=abc", "?KEY=[REDACTED]"},
		{"x-goog-api-key=" + fakeKey + " end", "x-goog-api-key=[REDACTED] end"},
		{`"key=" then nothing`, `"key=" then nothing`},
		{"monkey=banana", "monkey=[REDACTED]"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, redactSecrets(tc.in), tc.in)
	}
	// Redaction must not cut a multi-byte character in half.
	require.Equal(t, "é ✓ [REDACTED]", redactSecrets("é ✓ "+fakeKey))
}

// TestErrorBodyShape checks the error body byte for byte, including nulls.
func TestErrorBodyShape(t *testing.T) {
	e := invalidRequest("messages[0].content", CodeInvalidType, `Invalid "x"`)
	require.Equal(t, `{"error":{"message":"Invalid \"x\"","type":"invalid_request_error","param":"messages[0].content","code":"invalid_type"}}`, string(e.Body()))
	e = NewError(500, "", "", "", "boom")
	require.Equal(t, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`, string(e.Body()))
	require.True(t, strings.HasPrefix(e.Error(), "openai 500"))
	require.Equal(t, 500, (&Error{}).Status(), "a zero status is a 500, never a 0 on the wire")
}
