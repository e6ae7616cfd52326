package anthropic

import (
	"fmt"
	"net/http"
	"time"
)

// ErrorType is the "type" of an Anthropic error body.
type ErrorType string

// The error types of the Anthropic API. Each has one HTTP status (see Error.Status).
const (
	InvalidRequestError ErrorType = "invalid_request_error"
	AuthenticationError ErrorType = "authentication_error"
	BillingError        ErrorType = "billing_error"
	PermissionError     ErrorType = "permission_error"
	NotFoundError       ErrorType = "not_found_error"
	RequestTooLarge     ErrorType = "request_too_large"
	RateLimitError      ErrorType = "rate_limit_error"
	APIError            ErrorType = "api_error"
	TimeoutError        ErrorType = "timeout_error"
	OverloadedError     ErrorType = "overloaded_error"
)

// StatusOverloaded is Anthropic's non-standard "overloaded" status. Anthropic SDKs retry
// it like any status ≥ 500.
const StatusOverloaded = 529

// Status returns the HTTP status Anthropic answers with for this error type. An unknown
// type is a 500.
func (t ErrorType) Status() int {
	switch t {
	case InvalidRequestError:
		return http.StatusBadRequest
	case AuthenticationError:
		return http.StatusUnauthorized
	case BillingError:
		return http.StatusPaymentRequired
	case PermissionError:
		return http.StatusForbidden
	case NotFoundError:
		return http.StatusNotFound
	case RequestTooLarge:
		return http.StatusRequestEntityTooLarge
	case RateLimitError:
		return http.StatusTooManyRequests
	case TimeoutError:
		return http.StatusGatewayTimeout
	case OverloadedError:
		return StatusOverloaded
	default:
		return http.StatusInternalServerError
	}
}

// Error is an error in the Anthropic shape:
//
//	{"type":"error","error":{"type":"invalid_request_error","message":"..."}}
//
// Every error this package returns is an *Error; its status and body are what the client
// should receive.
type Error struct {
	// Type selects the HTTP status.
	Type ErrorType
	// Message is shown to the client. It never contains an API key.
	Message string
	// RetryAfter, when positive, is how long the client should wait; the gateway sends
	// it as a Retry-After header. It comes from Gemini's RetryInfo or "retry in" hint.
	RetryAfter time.Duration
	// RequestID, when set, is echoed as the body's top-level request_id, as Anthropic does.
	RequestID string
}

// NewError returns an error of the given type with a formatted message.
func NewError(t ErrorType, format string, args ...any) *Error {
	return &Error{Type: t, Message: fmt.Sprintf(format, args...)}
}

// invalidf is the 400 every validation failure returns.
func invalidf(format string, args ...any) *Error {
	return NewError(InvalidRequestError, format, args...)
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("anthropic %s (%d): %s", e.Type, e.Status(), e.Message)
}

// Status returns the HTTP status to answer with.
func (e *Error) Status() int {
	return e.Type.Status()
}

// Body returns the JSON body to answer with.
func (e *Error) Body() []byte {
	return appendErrorJSON(make([]byte, 0, 64+len(e.Message)), e)
}

// appendErrorJSON appends the Anthropic error object, the payload of both an error
// response and an error stream event.
func appendErrorJSON(b []byte, e *Error) []byte {
	b = append(b, `{"type":"error","error":{"type":`...)
	b = appendJSONString(b, string(e.Type))
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.Message)
	b = append(b, '}')
	if e.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, e.RequestID)
	}
	return append(b, '}')
}
