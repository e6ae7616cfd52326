package anthropic

import (
	"strconv"

	"github.com/geminicodeapi/gca/internal/jsonwire"
)

// appendJSONString appends s as a JSON string (jsonwire.AppendString): <, > and &
// stay literal as the Anthropic API sends them, invalid UTF-8 becomes U+FFFD. The
// stream is built with it rather than with encoding/json: it runs once per Gemini chunk
// and allocates nothing.
func appendJSONString(b []byte, s string) []byte { return jsonwire.AppendString(b, s) }

// appendInt appends a JSON integer.
func appendInt(b []byte, n int64) []byte {
	return strconv.AppendInt(b, n, 10)
}
