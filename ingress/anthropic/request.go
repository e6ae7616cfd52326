package anthropic

import (
	"encoding/json"
)

// Roles of a message.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Block types of request content.
const (
	BlockText             = "text"
	BlockImage            = "image"
	BlockDocument         = "document"
	BlockToolUse          = "tool_use"
	BlockToolResult       = "tool_result"
	BlockThinking         = "thinking"
	BlockRedactedThinking = "redacted_thinking"
)

// Thinking modes of a request.
const (
	ThinkingEnabled  = "enabled"
	ThinkingDisabled = "disabled"
	ThinkingAdaptive = "adaptive"
)

// Tool choice types.
const (
	ToolChoiceAuto = "auto"
	ToolChoiceAny  = "any"
	ToolChoiceTool = "tool"
	ToolChoiceNone = "none"
)

// MessagesRequest is a validated POST /v1/messages body. DecodeMessagesRequest builds
// it; fields the gateway does not forward (cache_control, service_tier, citations
// settings) are not kept.
type MessagesRequest struct {
	// Model is the model name the client asked for (an alias the gateway resolves).
	Model string
	// MaxTokens is positive; it is zero only in a count_tokens request.
	MaxTokens int64
	// System holds the text of each system block, in order.
	System []string
	// Messages is the conversation as the client sent it; consecutive messages of one
	// role are merged only when translating.
	Messages []MessageParam
	Tools    []ToolParam
	// ToolChoice is nil when the client did not send one.
	ToolChoice    *ToolChoice
	StopSequences []string
	Temperature   *float64
	TopP          *float64
	TopK          *int64
	Stream        bool
	// Thinking is nil when the client did not send one: the model's default applies.
	Thinking *ThinkingParam
	// UserID is metadata.user_id, kept for logging only.
	UserID string
}

// MessageParam is one message of the conversation.
type MessageParam struct {
	Role    string
	Content []ContentBlockParam
}

// ContentBlockParam is one decoded content block. Type selects the meaningful fields.
// Plain-text documents are decoded into text blocks.
type ContentBlockParam struct {
	Type string
	// Text is the text of a text block.
	Text string
	// MediaType and Data are an image's or a PDF document's media type and base64 data;
	// Data is also a redacted_thinking block's payload (which ToGemini drops).
	MediaType string
	Data      string
	// ID, Name and Input describe a tool_use. Input is a JSON object.
	ID    string
	Name  string
	Input json.RawMessage
	// ToolUseID, IsError and Content describe a tool_result. Content holds only text,
	// image and document blocks.
	ToolUseID string
	IsError   bool
	Content   []ContentBlockParam
	// Thinking and Signature are a thinking block's text and signature.
	Thinking  string
	Signature string
}

// ToolParam is a custom tool. InputSchema is the JSON Schema object as sent.
type ToolParam struct {
	Name        string
	Description string
	InputSchema json.RawMessage
}

// ToolChoice says whether and which tool the model must call.
type ToolChoice struct {
	// Type is auto, any, tool or none.
	Type string
	// Name is the tool to call when Type is tool.
	Name string
	// DisableParallelToolUse is accepted but has no Gemini equivalent.
	DisableParallelToolUse bool
}

// ThinkingParam is the thinking configuration of a request.
type ThinkingParam struct {
	// Type is enabled, disabled or adaptive.
	Type string
	// BudgetTokens is at least 1024 when Type is enabled.
	BudgetTokens int64
	// Omitted is true for display "omitted": the model thinks, but the thoughts are not
	// returned (signatures still are).
	Omitted bool
}

// DecodeMessagesRequest decodes and validates a POST /v1/messages body. Unknown fields
// are ignored; a field of the wrong type, a missing required field or an unsupported
// feature is an *Error with status 400.
func DecodeMessagesRequest(body []byte) (*MessagesRequest, error) {
	r, err := decodeRequest(body, true)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// decodeRequest decodes a messages or count_tokens body. It returns *Error rather than
// error so that callers cannot wrap away the status; the exported functions convert a
// nil *Error to a nil error.
func decodeRequest(body []byte, messages bool) (*MessagesRequest, *Error) {
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, jsonError("", err)
	}
	r := &MessagesRequest{
		Model:         w.Model,
		StopSequences: w.StopSequences,
		Temperature:   w.Temperature,
		TopP:          w.TopP,
		TopK:          w.TopK,
	}
	if r.Model == "" {
		return nil, invalidf("model: field required")
	}
	if messages {
		if w.MaxTokens == nil {
			return nil, invalidf("max_tokens: field required")
		}
		if *w.MaxTokens < 1 {
			// Anthropic lets 0 pre-warm its prompt cache; Gemini has nothing like it.
			return nil, invalidf("max_tokens: must be at least 1, got %d (cache pre-warming with 0 is not supported by this gateway)", *w.MaxTokens)
		}
		r.MaxTokens = *w.MaxTokens
		r.Stream = w.Stream
	}
	if w.Metadata != nil && w.Metadata.UserID != nil {
		r.UserID = *w.Metadata.UserID
	}

	var e *Error
	if r.System, e = decodeSystem(w.System); e != nil {
		return nil, e
	}
	if r.Messages, e = decodeMessages(w.Messages); e != nil {
		return nil, e
	}
	if e = validateTurns(r.Messages); e != nil {
		return nil, e
	}
	if r.Tools, e = decodeTools(w.Tools); e != nil {
		return nil, e
	}
	if r.ToolChoice, e = decodeToolChoice(w.ToolChoice, r.Tools); e != nil {
		return nil, e
	}
	if r.Thinking, e = decodeThinking(w.Thinking); e != nil {
		return nil, e
	}
	if e = validateSampling(r); e != nil {
		return nil, e
	}
	return r, nil
}

// maxStopSequences is Gemini's limit on generationConfig.stopSequences.
const maxStopSequences = 5

// validateSampling checks the sampling parameters against Anthropic's ranges and the
// stop sequences against Gemini's limit.
func validateSampling(r *MessagesRequest) *Error {
	if t := r.Temperature; t != nil && (*t < 0 || *t > 1) {
		return invalidf("temperature: must be between 0 and 1, got %g", *t)
	}
	if p := r.TopP; p != nil && (*p < 0 || *p > 1) {
		return invalidf("top_p: must be between 0 and 1, got %g", *p)
	}
	if k := r.TopK; k != nil && *k < 0 {
		return invalidf("top_k: must be at least 0, got %d", *k)
	}
	if n := len(r.StopSequences); n > maxStopSequences {
		return invalidf("stop_sequences: at most %d stop sequences are supported by this gateway (the Gemini limit), got %d", maxStopSequences, n)
	}
	for i, s := range r.StopSequences {
		if s == "" {
			return invalidf("stop_sequences.%d: must not be empty", i)
		}
	}
	return nil
}
