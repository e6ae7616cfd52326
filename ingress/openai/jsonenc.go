package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/geminicodeapi/gca/internal/jsonwire"
)

// The stream translator, the error bodies and the model and embedding lists are written
// with the append-style helpers below instead of encoding/json: they run once per SSE
// event on the hot path, and appending into one buffer costs no reflection and a single
// allocation per event batch.

// appendString appends s as a JSON string (jsonwire.AppendString).
func appendString(dst []byte, s string) []byte { return jsonwire.AppendString(dst, s) }

// appendEscaped appends the inside of the JSON string s, without quotes, so that
// several pieces can form one JSON string.
func appendEscaped(dst []byte, s string) []byte { return jsonwire.AppendEscaped(dst, s) }

// appendKey appends a JSON object key and its colon; key must need no escaping.
func appendKey(dst []byte, key string) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendNullableString appends s as a JSON string, or null when s is empty.
func appendNullableString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, s)
}

// appendInt appends a decimal integer.
func appendInt(dst []byte, n int64) []byte {
	return strconv.AppendInt(dst, n, 10)
}

// compactArgs returns the function call arguments Gemini sent (a JSON object, often
// pretty-printed in non-streaming responses) as the compact JSON text OpenAI clients
// expect in function.arguments. Missing or null arguments become "{}".
func compactArgs(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "{}"
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		// A RawMessage that came out of json.Unmarshal is valid JSON; this branch only
		// runs for hand-built responses, which are passed on as they are.
		return string(raw)
	}
	return buf.String()
}

// unquoteJSON decodes the JSON string b the way encoding/json does (invalid UTF-8 and
// lone surrogates become U+FFFD) without a second validation pass and without
// reflection; ok is false when b is not a well-formed JSON string, and the caller then
// lets encoding/json report the problem. Message content is the bulk of every request,
// and this halves the cost of decoding it.
func unquoteJSON(b []byte) (s string, ok bool) {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	i := 0
	for i < len(in) && in[i] >= 0x20 && in[i] < utf8.RuneSelf && in[i] != '"' && in[i] != '\\' {
		i++
	}
	if i == len(in) {
		return string(in), true
	}
	out := make([]byte, i, len(in))
	copy(out, in[:i])
	for i < len(in) {
		c := in[i]
		switch {
		case c == '\\':
			if i+1 == len(in) {
				return "", false
			}
			switch e := in[i+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(in[i+2:])
				if r < 0 {
					return "", false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+1 < len(in) && in[i] == '\\' && in[i+1] == 'u' {
						if dec := utf16.DecodeRune(r, hex4(in[i+2:])); dec != unicode.ReplacementChar {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			i += 2
		case c == '"' || c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, unicode.ReplacementChar)
			} else {
				out = append(out, in[i:i+size]...)
			}
			i += size
		}
	}
	return string(out), true
}

// hex4 reads the four hex digits of a \u escape, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// firstByte returns the first non-space byte of a JSON value, or 0 for blank input.
func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// jsonKind names the kind of a JSON value the way error messages talk about it.
func jsonKind(b []byte) string {
	switch firstByte(b) {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case 0:
		return "nothing"
	}
	return "a number"
}
