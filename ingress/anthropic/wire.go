package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// wireRequest is the JSON shape of a messages or count_tokens body. Fields whose JSON
// type varies (system, content, source) stay raw and are decoded where their path is
// known, so that an error can name the exact field.
type wireRequest struct {
	Model         string          `json:"model"`
	MaxTokens     *int64          `json:"max_tokens"`
	System        json.RawMessage `json:"system"`
	Messages      []wireMessage   `json:"messages"`
	Tools         []wireTool      `json:"tools"`
	ToolChoice    *wireToolChoice `json:"tool_choice"`
	StopSequences []string        `json:"stop_sequences"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int64          `json:"top_k"`
	Stream        bool            `json:"stream"`
	Metadata      *wireMetadata   `json:"metadata"`
	Thinking      *wireThinking   `json:"thinking"`
}

type wireMetadata struct {
	UserID *string `json:"user_id"`
}

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// wireBlock is the union of every content block's fields. Fields that other block types
// use with another JSON type (source, content, input) stay raw, so an unsupported block
// type is reported as unsupported rather than as a type error.
type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    json.RawMessage `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
	Data      string          `json:"data"`
}

type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

type wireTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

type wireThinking struct {
	Type         string `json:"type"`
	BudgetTokens *int64 `json:"budget_tokens"`
	Display      string `json:"display"`
}

// jsonKind is the first significant byte of a JSON value, or 0 for an absent one.
func jsonKind(raw json.RawMessage) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	k := jsonKind(raw)
	return k == 0 || k == 'n'
}

// unmarshalAt decodes raw into v, reporting errors at path (e.g. "messages.2.content").
func unmarshalAt(raw json.RawMessage, v any, path string) *Error {
	if err := json.Unmarshal(raw, v); err != nil {
		return jsonError(path, err)
	}
	return nil
}

// jsonError turns an encoding/json error into a 400 naming the field and the types.
func jsonError(path string, err error) *Error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := joinPath(path, te.Field)
		if field == "" {
			field = "request body"
		}
		return invalidf("%s: expected %s, got %s", field, jsonTypeName(te.Type), te.Value)
	case errors.As(err, &se):
		return invalidf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	default:
		if path == "" {
			path = "request body"
		}
		return invalidf("%s: %s", path, err.Error())
	}
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "." + b
}

// jsonTypeName names a Go type the way a client thinks of JSON.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return fmt.Sprint(t)
}
