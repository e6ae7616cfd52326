package openai

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// OpenAI finish reasons.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// finishReason maps a Gemini finishReason to OpenAI's:
//
//	STOP                                  → stop, or tool_calls when the choice called tools
//	MAX_TOKENS                            → length
//	SAFETY, RECITATION, BLOCKLIST,
//	PROHIBITED_CONTENT, SPII, IMAGE_*     → content_filter
//	MALFORMED_FUNCTION_CALL,
//	UNEXPECTED_TOOL_CALL,
//	TOO_MANY_TOOL_CALLS                   → stop
//	OTHER, LANGUAGE, unknown, none        → stop (tool_calls when the choice called tools)
//
// A malformed function call is the model failing to produce a call, not a filter and
// not a length limit: OpenAI has no reason for it, and "tool_calls" without tool calls
// breaks agent loops, so the choice ends as "stop" with whatever text came before it.
func finishReason(reason string, calledTools bool) string {
	switch reason {
	case gemini.FinishMaxTokens:
		return FinishLength
	case gemini.FinishSafety, gemini.FinishRecitation, "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return FinishContentFilter
	case gemini.FinishMalformedFunctionCall, "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS":
		return FinishStop
	}
	if calledTools {
		return FinishToolCalls
	}
	return FinishStop
}

// blockReason returns promptFeedback.blockReason: set when Gemini refused the prompt
// itself and returned no candidates.
func blockReason(feedback json.RawMessage) string {
	if len(feedback) == 0 {
		return ""
	}
	var f struct {
		BlockReason string `json:"blockReason"`
	}
	if json.Unmarshal(feedback, &f) != nil {
		return ""
	}
	return f.BlockReason
}

// blockedRefusal is the refusal text of the choice that stands for a blocked prompt.
func blockedRefusal(reason string) string {
	return "The prompt was blocked by Gemini's safety filters (" + reason + ")."
}

// Usage is the usage object of a completion or of the final stream chunk.
type Usage struct {
	PromptTokens            int64                   `json:"prompt_tokens"`
	CompletionTokens        int64                   `json:"completion_tokens"`
	TotalTokens             int64                   `json:"total_tokens"`
	PromptTokensDetails     PromptTokensDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails CompletionTokensDetails `json:"completion_tokens_details"`
}

// PromptTokensDetails is usage.prompt_tokens_details.
type PromptTokensDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// CompletionTokensDetails is usage.completion_tokens_details.
type CompletionTokensDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// usageFrom converts Gemini's usageMetadata:
//
//	prompt_tokens       = promptTokenCount + toolUsePromptTokenCount
//	completion_tokens   = candidatesTokenCount + thoughtsTokenCount
//	total_tokens        = totalTokenCount (their sum when Gemini sent no total)
//	cached_tokens       = cachedContentTokenCount (already inside promptTokenCount)
//	reasoning_tokens    = thoughtsTokenCount (already inside completion_tokens)
func usageFrom(u *gemini.UsageMetadata) Usage {
	if u == nil {
		return Usage{}
	}
	out := Usage{
		PromptTokens:            u.PromptTokenCount + u.ToolUsePromptTokenCount,
		CompletionTokens:        u.CandidatesTokenCount + u.ThoughtsTokenCount,
		TotalTokens:             u.TotalTokenCount,
		PromptTokensDetails:     PromptTokensDetails{CachedTokens: u.CachedContentTokenCount},
		CompletionTokensDetails: CompletionTokensDetails{ReasoningTokens: u.ThoughtsTokenCount},
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// appendUsage appends u as the JSON usage object.
func appendUsage(dst []byte, u Usage) []byte {
	dst = append(dst, `{"prompt_tokens":`...)
	dst = appendInt(dst, u.PromptTokens)
	dst = append(dst, `,"completion_tokens":`...)
	dst = appendInt(dst, u.CompletionTokens)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, u.TotalTokens)
	dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
	dst = appendInt(dst, u.PromptTokensDetails.CachedTokens)
	dst = append(dst, `},"completion_tokens_details":{"reasoning_tokens":`...)
	dst = appendInt(dst, u.CompletionTokensDetails.ReasoningTokens)
	return append(dst, "}}"...)
}

// toolCallID is the id of a tool call: Gemini's own id when it sent one, else one made
// from the completion id, the choice and the call's position, so that the same
// response always yields the same ids (streamed or not).
func toolCallID(geminiID, completionID string, choice, k int) string {
	if geminiID != "" {
		return geminiID
	}
	suffix := strings.TrimPrefix(completionID, "chatcmpl-")
	return "call_" + suffix + "_" + strconv.Itoa(choice) + "_" + strconv.Itoa(k)
}

// signatureExtra wraps a thought signature for a tool call's extra_content.
func signatureExtra(sig string) *ExtraContent {
	if sig == "" {
		return nil
	}
	return &ExtraContent{Google: &GoogleExtra{ThoughtSignature: sig}}
}
