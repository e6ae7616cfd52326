package openai

import (
	"encoding/json"
)

// ChatRequest is the body of POST /v1/chat/completions as OpenAI SDKs send it. Fields
// this gateway does not know are ignored (SDKs add fields faster than gateways follow);
// fields it knows must have the right JSON type.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Tools               []Tool          `json:"tools"`
	ToolChoice          *ToolChoice     `json:"tool_choice"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
	ResponseFormat      *ResponseFormat `json:"response_format"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Stop                StopSequences   `json:"stop"`
	N                   *int            `json:"n"`
	Seed                *int64          `json:"seed"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	ReasoningEffort     string          `json:"reasoning_effort"`
	Stream              bool            `json:"stream"`
	StreamOptions       *StreamOptions  `json:"stream_options"`
	User                string          `json:"user"`
	Logprobs            *bool           `json:"logprobs"`
	Modalities          []string        `json:"modalities"`
	Audio               json.RawMessage `json:"audio"`
	// Functions and FunctionCall are the deprecated forms of tools and tool_choice;
	// they are refused rather than silently dropped.
	Functions    json.RawMessage `json:"functions"`
	FunctionCall json.RawMessage `json:"function_call"`
	// Metadata and Store are accepted and ignored: there is nothing to store them in.
	Metadata map[string]string `json:"metadata"`
	Store    *bool             `json:"store"`
}

// IncludeUsage reports whether a streaming client asked for the final usage chunk.
func (r *ChatRequest) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// StreamOptions is stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Roles of chat messages.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one entry of messages.
type Message struct {
	Role    string         `json:"role"`
	Content MessageContent `json:"content"`
	// Name is accepted and ignored: Gemini turns have no author name.
	Name       string     `json:"name"`
	ToolCalls  []ToolCall `json:"tool_calls"`
	ToolCallID string     `json:"tool_call_id"`
}

// ContentForm says how a message's content was sent.
type ContentForm int

// The forms of message content.
const (
	// ContentAbsent: content was missing or null.
	ContentAbsent ContentForm = iota
	// ContentString: content was a string, held in Text.
	ContentString
	// ContentParts: content was an array of parts, held in Parts.
	ContentParts
)

// MessageContent is a message's content: a string or an array of parts.
type MessageContent struct {
	Form  ContentForm
	Text  string
	Parts []ContentPart
}

// UnmarshalJSON accepts a string, an array of parts, or null.
func (c *MessageContent) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*c = MessageContent{}
		return nil
	case '"':
		c.Form = ContentString
		c.Parts = nil
		if s, ok := unquoteJSON(b); ok {
			c.Text = s
			return nil
		}
		return json.Unmarshal(b, &c.Text)
	case '[':
		c.Form = ContentParts
		c.Text = ""
		if err := json.Unmarshal(b, &c.Parts); err != nil {
			if de := locate[ContentPart](b, "content"); de != nil {
				return de
			}
			return asDecodeError("content", err)
		}
		return nil
	}
	return typeError("content", "a string or an array of content parts", jsonKind(b))
}

// Content part types.
const (
	PartText       = "text"
	PartImageURL   = "image_url"
	PartRefusal    = "refusal"
	PartInputAudio = "input_audio"
	PartFile       = "file"
)

// ContentPart is one part of an array content. Only text and image_url are translated;
// input_audio and file are recognised so that they can be refused by name.
type ContentPart struct {
	Type     string    `json:"type"`
	Text     string    `json:"text"`
	ImageURL *ImageURL `json:"image_url"`
	Refusal  string    `json:"refusal"`
}

// ImageURL is an image_url part's payload. Detail (auto, low, high) has no Gemini
// counterpart in the wire types and is ignored.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail"`
}

// ToolCall is an assistant's call of a function, in requests (history) and in responses.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
	// ExtraContent carries Gemini's thought signature the way Gemini's own
	// OpenAI-compatible endpoint does (extra_content.google.thought_signature), so
	// that clients that echo tool calls back keep Gemini 3's function calling working.
	ExtraContent *ExtraContent `json:"extra_content,omitempty"`
}

// FunctionCall is the function half of a ToolCall. Arguments is JSON text.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ExtraContent is the provider-specific extension object on a tool call.
type ExtraContent struct {
	Google *GoogleExtra `json:"google,omitempty"`
}

// GoogleExtra holds the Gemini-specific data of a tool call.
type GoogleExtra struct {
	ThoughtSignature string `json:"thought_signature,omitempty"`
}

// thoughtSignature returns the tool call's Gemini thought signature, if any.
func (tc *ToolCall) thoughtSignature() string {
	if tc.ExtraContent == nil || tc.ExtraContent.Google == nil {
		return ""
	}
	return tc.ExtraContent.Google.ThoughtSignature
}

// Tool is one entry of tools. Only type "function" exists in Gemini.
type Tool struct {
	Type     string             `json:"type"`
	Function FunctionDefinition `json:"function"`
}

// FunctionDefinition declares a function. Parameters is a JSON Schema kept as raw bytes
// and handed to Gemini's parametersJsonSchema unchanged. Strict is accepted and ignored.
type FunctionDefinition struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// Tool choice modes. ToolChoiceFunction is the object form naming one function.
const (
	ToolChoiceNone     = "none"
	ToolChoiceAuto     = "auto"
	ToolChoiceRequired = "required"
	ToolChoiceFunction = "function"
)

// ToolChoice is tool_choice: "none", "auto", "required", {"type":"function",
// "function":{"name":...}}, or {"type":"allowed_tools","allowed_tools":{"mode":...,
// "tools":[...]}}.
type ToolChoice struct {
	// Mode is one of the ToolChoice* constants.
	Mode string
	// Function is the function's name when Mode is ToolChoiceFunction.
	Function string
	// Allowed lists the functions of an allowed_tools choice; Mode is then auto or
	// required.
	Allowed []string
}

// wireToolChoice is the object form of tool_choice.
type wireToolChoice struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
	AllowedTools *struct {
		Mode  string `json:"mode"`
		Tools []struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
	} `json:"allowed_tools"`
}

// UnmarshalJSON accepts the string and object forms.
func (tc *ToolChoice) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case '"':
		*tc = ToolChoice{}
		return json.Unmarshal(b, &tc.Mode)
	case '{':
		var w wireToolChoice
		if err := json.Unmarshal(b, &w); err != nil {
			return asDecodeError("tool_choice", err)
		}
		switch w.Type {
		case "function":
			*tc = ToolChoice{Mode: ToolChoiceFunction, Function: w.Function.Name}
			return nil
		case "allowed_tools":
			if w.AllowedTools == nil {
				return valueError("tool_choice.allowed_tools", CodeMissingParameter, "allowed_tools is required when type is allowed_tools.")
			}
			*tc = ToolChoice{Mode: w.AllowedTools.Mode}
			for _, t := range w.AllowedTools.Tools {
				tc.Allowed = append(tc.Allowed, t.Function.Name)
			}
			return nil
		}
		return valueError("tool_choice.type", CodeUnsupportedValue, "only function and allowed_tools tool choices are supported.")
	}
	return typeError("tool_choice", "a string or an object", jsonKind(b))
}

// StopSequences is stop: a string or an array of strings.
type StopSequences []string

// UnmarshalJSON accepts a string, an array of strings, or null.
func (s *StopSequences) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*s = nil
		return nil
	case '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return asDecodeError("stop", err)
		}
		*s = StopSequences{one}
		return nil
	case '[':
		var many []string
		if err := json.Unmarshal(b, &many); err != nil {
			if de := locate[string](b, "stop"); de != nil {
				return de
			}
			return asDecodeError("stop", err)
		}
		*s = many
		return nil
	}
	return typeError("stop", "a string or an array of strings", jsonKind(b))
}

// Response format types.
const (
	FormatText       = "text"
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

// ResponseFormat is response_format.
type ResponseFormat struct {
	Type       string            `json:"type"`
	JSONSchema *JSONSchemaFormat `json:"json_schema"`
}

// JSONSchemaFormat is response_format.json_schema. Schema is kept raw and handed to
// Gemini's responseJsonSchema unchanged; Strict is accepted and ignored.
type JSONSchemaFormat struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Strict      *bool           `json:"strict"`
}
