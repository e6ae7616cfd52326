package openai

import (
	"net/http"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// FromGeminiError turns an error response of the Gemini API (status and body, which
// may be empty or not JSON) into the OpenAI error a client should see. The upstream
// message is kept, with anything that looks like an API key removed, because Gemini
// echoes keys back in some messages and URLs.
//
// The status is one the OpenAI SDKs map to the right exception:
//
//	400 API_KEY_INVALID, 401 → 401 authentication_error, code invalid_api_key
//	400, other 4xx          → same status, invalid_request_error
//	403                     → 403 permission_error
//	404                     → 404 not_found_error (code model_not_found when it names a model)
//	429 per-day quota       → 429 rate_limit_error, code insufficient_quota
//	429 otherwise           → 429 rate_limit_error, code rate_limit_exceeded
//	503                     → 503 server_error, code overloaded
//	other 5xx               → same status, server_error
//	anything else           → 502 server_error
//
// RetryAfter is set from the 429's RetryInfo or its "Please retry in 24s" hint.
func FromGeminiError(status int, body []byte) *Error {
	c := gemini.Classify(status, body)
	msg := redactSecrets(c.Message)
	if msg == "" {
		msg = "Upstream Gemini API error"
		if t := http.StatusText(status); t != "" {
			msg += ": " + t
		}
		msg += "."
	}
	switch {
	case status == http.StatusTooManyRequests:
		code := CodeRateLimitExceeded
		if c.Failure == gemini.FailureDayQuota {
			code = CodeInsufficientQuota
		}
		e := NewError(status, TypeRateLimit, code, "", msg)
		e.RetryAfter = c.RetryDelay
		return e
	case c.Failure == gemini.FailureKeyInvalid:
		return NewError(http.StatusUnauthorized, TypeAuthentication, CodeInvalidAPIKey, "", msg)
	case status == http.StatusForbidden:
		return NewError(status, TypePermission, "", "", msg)
	case status == http.StatusNotFound:
		code := ""
		if strings.Contains(strings.ToLower(msg), "model") {
			code = CodeModelNotFound
		}
		return NewError(status, TypeNotFound, code, "", msg)
	case status == http.StatusServiceUnavailable:
		return NewError(status, TypeServer, CodeOverloaded, "", msg)
	case status >= 400 && status < 500:
		return NewError(status, TypeInvalidRequest, "", "", msg)
	case status >= 500 && status < 600:
		return NewError(status, TypeServer, "", "", msg)
	}
	return NewError(http.StatusBadGateway, TypeServer, "", "", msg)
}

// The pieces of a Gemini API key: "AIza" and 35 URL-safe base64 characters.
const (
	keyPrefix    = "AIza"
	keyBodyLen   = 35
	redactedMark = "[REDACTED]"
)

// redactSecrets removes Gemini API keys (AIza followed by 35 characters of
// [0-9A-Za-z_-]) and the values of key= query parameters from s.
func redactSecrets(s string) string {
	if !strings.Contains(s, keyPrefix) && !containsFold(s, "key=") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], keyPrefix) && isKeyBody(s[i+len(keyPrefix):]) {
			b.WriteString(redactedMark)
			i += len(keyPrefix) + keyBodyLen
			continue
		}
		if i+4 <= len(s) && strings.EqualFold(s[i:i+4], "key=") {
			j := i + 4
			for j < len(s) && !endsQueryValue(s[j]) {
				j++
			}
			b.WriteString(s[i : i+4])
			if j > i+4 {
				b.WriteString(redactedMark)
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// isKeyBody reports whether s starts with the 35 characters that follow "AIza" in a key.
func isKeyBody(s string) bool {
	if len(s) < keyBodyLen {
		return false
	}
	for i := 0; i < keyBodyLen; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// endsQueryValue reports whether c ends a query parameter value inside a message.
func endsQueryValue(c byte) bool {
	switch c {
	case '&', '#', ' ', '\t', '\n', '\r', '"', '\'', '<', '>', '(', ')', '[', ']', '{', '}', ',', ';', '`':
		return true
	}
	return false
}

// containsFold reports whether s contains the ASCII string sub, ignoring case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
