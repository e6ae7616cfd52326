package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of request bodies. Real requests nest a dozen levels
// (a JSON schema inside a tool inside a message); a body nested thousands deep is an
// attack on the decoder.
const MaxJSONDepth = 128

// checkJSON refuses a body that is not valid UTF-8, not valid JSON, not an object, or
// nested deeper than MaxJSONDepth, before any decoder or the upstream sees it.
func checkJSON(b []byte) error {
	if len(b) == 0 {
		return errors.New("request body is empty")
	}
	if !utf8.Valid(b) {
		return errors.New("request body is not valid UTF-8")
	}
	if err := checkDepth(b); err != nil {
		return err
	}
	if !json.Valid(b) {
		// Unmarshal into nothing names the position of the syntax error.
		var v json.RawMessage
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("request body is not valid JSON: %w", err)
		}
		return errors.New("request body is not valid JSON")
	}
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return nil
		}
		return errors.New("request body must be a JSON object")
	}
	return nil
}

// checkDepth scans brackets outside strings.
func checkDepth(b []byte) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > MaxJSONDepth {
				return fmt.Errorf("request body nests deeper than %d levels", MaxJSONDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
