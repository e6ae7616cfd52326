package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// FromGeminiError maps a Gemini error response (its HTTP status and body) to the
// Anthropic error a client should see. Gemini's message is kept, with any API key
// redacted; a body that is not a google.rpc error (a proxy's HTML page, a cut
// connection) gives a generic message instead of its text.
//
// Statuses: 400 → 400 invalid_request_error, except an invalid API key → 401
// authentication_error; 401 → 401; 403 → 403 permission_error; 404 → 404 not_found_error;
// 413 → 413 request_too_large; 429 → 429 rate_limit_error with RetryAfter from
// RetryInfo; 408 and 504 → 504 timeout_error; 503 → 529 overloaded_error (see the
// package doc); other 5xx → 500 api_error; other 4xx → 400 invalid_request_error. A 2xx
// status (an error object inside a successful stream) is an api_error.
func FromGeminiError(status int, body []byte) *Error {
	obj := errorObject(body)
	c := gemini.Classify(status, obj)

	var t ErrorType
	switch {
	case c.Failure == gemini.FailureKeyInvalid:
		t = AuthenticationError
	case status == http.StatusForbidden:
		t = PermissionError
	case status == http.StatusNotFound:
		t = NotFoundError
	case status == http.StatusRequestEntityTooLarge:
		t = RequestTooLarge
	case status == http.StatusTooManyRequests:
		t = RateLimitError
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		t = TimeoutError
	case status == http.StatusServiceUnavailable:
		t = OverloadedError
	case status >= 400 && status < 500:
		t = InvalidRequestError
	default:
		t = APIError
	}

	msg := redactKeys(strings.TrimSpace(c.Message))
	if msg == "" {
		msg = fmt.Sprintf("upstream Gemini API returned HTTP %d", status)
		if c.Status != "" {
			msg += " " + c.Status
		}
	}
	e := &Error{Type: t, Message: msg}
	if t == RateLimitError || t == OverloadedError {
		e.RetryAfter = c.RetryDelay
	}
	return e
}

// errorObject returns the google.rpc error object of body. A streaming call can answer
// with the object wrapped in an array ([{"error":{...}}]); that array is unwrapped.
func errorObject(body []byte) []byte {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return body
	}
	var arr []json.RawMessage
	if json.Unmarshal(trimmed, &arr) != nil || len(arr) == 0 {
		return body
	}
	return arr[0]
}

// redactKeys removes Google API keys (AIza followed by 35 key characters) and the
// values of key= query parameters from s, so that an upstream message echoing a URL or
// a key never reaches a client or a log.
func redactKeys(s string) string {
	const (
		prefix   = "AIza"
		keyLen   = 39
		redacted = "[redacted]"
	)
	if !strings.Contains(s, prefix) && !strings.Contains(strings.ToLower(s), "key=") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], prefix) && i+keyLen <= len(s) && allKeyChars(s[i+len(prefix):i+keyLen]) {
			b.WriteString(redacted)
			i += keyLen
			// A longer run of key characters is still one secret.
			for i < len(s) && isKeyChar(s[i]) {
				i++
			}
			continue
		}
		if i+4 <= len(s) && strings.EqualFold(s[i:i+4], "key=") {
			b.WriteString(s[i : i+4])
			i += 4
			j := i
			for j < len(s) && !isValueEnd(s[j]) {
				j++
			}
			if j > i {
				b.WriteString(redacted)
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// isKeyChar reports whether c can appear in a Google API key.
func isKeyChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}

func allKeyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isKeyChar(s[i]) {
			return false
		}
	}
	return true
}

// isValueEnd reports whether c ends a query parameter value inside free text.
func isValueEnd(c byte) bool {
	switch c {
	case '&', ' ', '\t', '\n', '\r', '"', '\'', '`', ')', ']', '}', '>', '<', ',', ';':
		return true
	}
	return false
}
