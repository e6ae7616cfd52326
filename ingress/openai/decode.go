package openai

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// DecodeChatRequest parses and validates a chat completions body. It returns an *Error
// (status 400) naming the offending field, e.g. param "messages[2].content", when the
// body is not JSON, a known field has the wrong type, or a value is out of range.
// Checks that need the translation itself (data URLs, tool call arguments) are made by
// ToGemini.
func DecodeChatRequest(body []byte) (*ChatRequest, error) {
	var r ChatRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, decodeFailure(body, err)
	}
	if e := r.validate(); e != nil {
		return nil, e
	}
	return &r, nil
}

// decodeFailure explains why body did not decode into a ChatRequest.
//
// encoding/json reports the field path of a type error without array indices
// ("messages.content"), and OpenAI's param names the element ("messages[2].content").
// The happy path decodes once; only on failure are messages and tools decoded again one
// element at a time to find the index.
func decodeFailure(body []byte, err error) *Error {
	if e := malformedBody(body, err); e != nil {
		return e
	}
	var probe struct {
		Messages json.RawMessage `json:"messages"`
		Tools    json.RawMessage `json:"tools"`
	}
	if json.Unmarshal(body, &probe) == nil {
		if de := locateMessage(probe.Messages); de != nil {
			return de.toError()
		}
		if de := locate[Tool](probe.Tools, "tools"); de != nil {
			return de.toError()
		}
	}
	return asDecodeError("", err).toError()
}

// malformedBody reports a body that is not JSON or not a JSON object, or returns nil.
func malformedBody(body []byte, err error) *Error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) || firstByte(body) == 0 {
		return invalidRequest("", "", "We could not parse the JSON body of your request. The body must be a JSON object.")
	}
	if firstByte(body) != '{' {
		return invalidRequest("", CodeInvalidType, "The request body must be a JSON object, but got "+jsonKind(body)+".")
	}
	return nil
}

// locateMessage finds the first message that does not decode and, when the problem is
// in its tool calls, the tool call too. Tool calls have no decoder of their own (that
// would cost a second validation pass on every request), so their index is found
// here, on the error path only.
func locateMessage(data []byte) *decodeError {
	de := locate[Message](data, "messages")
	if de == nil {
		return nil
	}
	i := strings.Index(de.path, ".tool_calls")
	if i < 0 {
		return de
	}
	if rest := de.path[i+len(".tool_calls"):]; rest != "" && rest[0] != '.' {
		return de // already indexed, or another field such as tool_call_id
	}
	var elems []json.RawMessage
	if json.Unmarshal(data, &elems) != nil {
		return de
	}
	// de.path starts with messages[n]; n is the element to look into.
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(de.path[:i], "messages["), "]"))
	if err != nil || n < 0 || n >= len(elems) {
		return de
	}
	var probe struct {
		ToolCalls json.RawMessage `json:"tool_calls"`
	}
	if json.Unmarshal(elems[n], &probe) != nil {
		return de
	}
	if inner := locate[ToolCall](probe.ToolCalls, "tool_calls"); inner != nil {
		inner.path = joinPath(de.path[:i], inner.path)
		return inner
	}
	return de
}

// decodeError is a decoding problem at a path relative to the value being decoded. It
// travels up through custom UnmarshalJSON methods, gaining a prefix at each level, and
// becomes an *Error at the top.
type decodeError struct {
	path string
	code string
	// want and got describe a type mismatch (code CodeInvalidType).
	want, got string
	// detail is a sentence about the value for the other codes.
	detail string
}

func (e *decodeError) Error() string { return e.toError().Message }

// toError renders the problem as a 400 invalid_request_error.
func (e *decodeError) toError() *Error {
	param := e.path
	var msg string
	switch {
	case e.code == CodeInvalidType && param == "":
		msg = "The request body must be a JSON object, but got " + e.got + "."
	case e.code == CodeInvalidType:
		msg = "Invalid type for '" + param + "': expected " + e.want + ", but got " + e.got + " instead."
	case e.code == CodeUnsupportedValue || e.code == CodeUnsupportedParameter:
		msg = "Unsupported value for '" + param + "': " + e.detail
	case e.code == CodeMissingParameter:
		msg = "Missing required parameter '" + param + "': " + e.detail
	case param == "":
		msg = e.detail
	default:
		msg = "Invalid value for '" + param + "': " + e.detail
	}
	return invalidRequest(param, e.code, msg)
}

// typeError is a type mismatch at path.
func typeError(path, want, got string) *decodeError {
	return &decodeError{path: path, code: CodeInvalidType, want: want, got: got}
}

// valueError is a bad value at path.
func valueError(path, code, detail string) *decodeError {
	return &decodeError{path: path, code: code, detail: detail}
}

// locate decodes the elements of the JSON array data one by one as T and describes the
// first one that fails, with a path like name[3].field. It returns nil when data is
// absent or null or every element decodes (the failure is then about the array itself).
func locate[T any](data []byte, name string) *decodeError {
	switch firstByte(data) {
	case 0, 'n':
		return nil
	case '[':
	default:
		return typeError(name, "an array", jsonKind(data))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return asDecodeError(name, err)
	}
	for i, raw := range elems {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return asDecodeError(name+"["+strconv.Itoa(i)+"]", err)
		}
	}
	return nil
}

// asDecodeError describes err, returned by json.Unmarshal of a value at prefix.
func asDecodeError(prefix string, err error) *decodeError {
	var de *decodeError
	if errors.As(err, &de) {
		out := *de
		out.path = joinPath(prefix, de.path)
		return &out
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return typeError(joinPath(prefix, te.Field), describeType(te.Type), describeValue(te.Value))
	}
	return valueError(prefix, "", "We could not parse the JSON body of your request: "+err.Error())
}

// joinPath appends a relative path to a prefix: "messages[2]" + "content" is
// "messages[2].content", "content" + "[1]" is "content[1]".
func joinPath(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	}
	return prefix + "." + path
}

// describeType names the JSON type a Go type decodes from.
func describeType(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a valid value"
}

// describeValue turns the Value of a json.UnmarshalTypeError ("string", "number 1e999")
// into words.
func describeValue(v string) string {
	switch v {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "a boolean"
	case "object":
		return "an object"
	case "array":
		return "an array"
	}
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return "the number " + n + ", which is out of range or not an integer"
	}
	return v
}
