package openai

import (
	"net/http"
	"strconv"
	"time"
)

// Error types of the OpenAI error body. The SDKs choose their exception class from the
// HTTP status; the type tells a human (and some clients' retry logic) what went wrong.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"
)

// Error codes of the OpenAI error body. OpenAI leaves code null for many errors; these
// are the ones its API and SDK users branch on.
const (
	CodeMissingParameter     = "missing_required_parameter"
	CodeInvalidType          = "invalid_type"
	CodeInvalidValue         = "invalid_value"
	CodeUnsupportedValue     = "unsupported_value"
	CodeUnsupportedParameter = "unsupported_parameter"
	CodeInvalidAPIKey        = "invalid_api_key"
	CodeModelNotFound        = "model_not_found"
	CodeRateLimitExceeded    = "rate_limit_exceeded"
	CodeInsufficientQuota    = "insufficient_quota"
	CodeOverloaded           = "overloaded"
)

// Error is an error in the shape OpenAI clients expect:
//
//	{"error":{"message":"...","type":"invalid_request_error","param":"messages[2].content","code":null}}
//
// together with the HTTP status to send it with. Every error this package returns is an
// *Error, so a handler can write it without inspecting it.
type Error struct {
	status int

	// Message is a sentence for a human. It never contains an API key.
	Message string
	// Type is one of the Type* constants.
	Type string
	// Param names the offending request field, e.g. "messages[2].content"; empty when
	// the error is not about one field (it is then sent as null).
	Param string
	// Code is one of the Code* constants, or empty (sent as null).
	Code string
	// RetryAfter is how long the client should wait before retrying, when upstream said
	// so (a 429's RetryInfo); the handler sends it as a Retry-After header.
	RetryAfter time.Duration
}

// NewError builds an Error. Status is the HTTP status; typ, code and param follow the
// OpenAI error body (code and param may be empty).
func NewError(status int, typ, code, param, message string) *Error {
	return &Error{status: status, Type: typ, Code: code, Param: param, Message: message}
}

// invalidRequest is a 400 invalid_request_error about param.
func invalidRequest(param, code, message string) *Error {
	return NewError(http.StatusBadRequest, TypeInvalidRequest, code, param, message)
}

// Error implements error.
func (e *Error) Error() string {
	s := "openai " + strconv.Itoa(e.status) + " " + e.Type
	if e.Param != "" {
		s += " (" + e.Param + ")"
	}
	return s + ": " + e.Message
}

// Status is the HTTP status code to answer with.
func (e *Error) Status() int {
	if e.status == 0 {
		return http.StatusInternalServerError
	}
	return e.status
}

// Body is the JSON error body: {"error":{"message","type","param","code"}}.
func (e *Error) Body() []byte {
	return e.appendBody(make([]byte, 0, 96+len(e.Message)+len(e.Param)))
}

// appendBody appends the JSON error body to dst.
func (e *Error) appendBody(dst []byte) []byte {
	dst = append(dst, `{"error":{"message":`...)
	dst = appendString(dst, e.Message)
	dst = append(dst, `,"type":`...)
	typ := e.Type
	if typ == "" {
		typ = TypeServer
	}
	dst = appendString(dst, typ)
	dst = append(dst, `,"param":`...)
	dst = appendNullableString(dst, e.Param)
	dst = append(dst, `,"code":`...)
	dst = appendNullableString(dst, e.Code)
	return append(dst, "}}"...)
}
