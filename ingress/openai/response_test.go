package openai

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// testMeta is the ResponseMeta of every golden response and stream.
var testMeta = ResponseMeta{ID: "chatcmpl-test42", Created: 1700000000, Model: "gpt-4o"}

// TestFromGeminiGolden translates each Gemini response under testdata/response and
// compares the OpenAI completion with the golden file next to it.
func TestFromGeminiGolden(t *testing.T) {
	cases := []struct{ name, why string }{
		{"text", "text parts concatenate; usage is mapped"},
		{"thinking", "thought parts go to reasoning_content, never content; thoughts count as completion and reasoning tokens"},
		{"tool_calls", "function calls become tool_calls: generated or Gemini ids, compact arguments, thought signature in extra_content; finish is tool_calls"},
		{"tool_calls_only", "a tools-only answer has null content"},
		{"n2", "each candidate is a choice with its index and own finish reason"},
		{"finish_safety", "SAFETY is content_filter"},
		{"finish_recitation", "RECITATION is content_filter"},
		{"finish_blocklist", "BLOCKLIST is content_filter"},
		{"finish_prohibited_content", "PROHIBITED_CONTENT is content_filter"},
		{"finish_spii", "SPII is content_filter"},
		{"finish_malformed_function_call", "MALFORMED_FUNCTION_CALL is stop"},
		{"finish_other", "OTHER is stop"},
		{"blocked_prompt", "no candidates and a blockReason is one content_filter choice with a refusal"},
		{"usage_cached_tooluse", "tool-use prompt tokens count as prompt, thoughts as completion; cached tokens are reported"},
		{"no_usage_empty_content", "a candidate without parts is an empty string content; missing usage is zero"},
	}
	dir := filepath.Join("testdata", "response")
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			var resp gemini.GenerateContentResponse
			require.NoError(t, json.Unmarshal(readFile(t, filepath.Join(dir, tc.name+".gemini.json")), &resp))
			golden(t, filepath.Join(dir, tc.name+".openai.json"), indented(t, FromGemini(&resp, testMeta)))
		})
	}
	requireAllCovered(t, inputsWithSuffix(t, dir, ".gemini.json"), covered)
}

// TestFinishReason pins the finish reason table documented in the package.
func TestFinishReason(t *testing.T) {
	cases := []struct {
		gemini      string
		calledTools bool
		want        string
	}{
		{"STOP", false, FinishStop},
		{"STOP", true, FinishToolCalls},
		{"", false, FinishStop},
		{"", true, FinishToolCalls},
		{"MAX_TOKENS", false, FinishLength},
		{"MAX_TOKENS", true, FinishLength},
		{"SAFETY", false, FinishContentFilter},
		{"RECITATION", false, FinishContentFilter},
		{"BLOCKLIST", false, FinishContentFilter},
		{"PROHIBITED_CONTENT", true, FinishContentFilter},
		{"SPII", false, FinishContentFilter},
		{"IMAGE_SAFETY", false, FinishContentFilter},
		{"MALFORMED_FUNCTION_CALL", false, FinishStop},
		{"MALFORMED_FUNCTION_CALL", true, FinishStop},
		{"UNEXPECTED_TOOL_CALL", false, FinishStop},
		{"OTHER", false, FinishStop},
		{"LANGUAGE", false, FinishStop},
		{"FINISH_REASON_UNSPECIFIED", false, FinishStop},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, finishReason(tc.gemini, tc.calledTools), "%s (tools %v)", tc.gemini, tc.calledTools)
	}
}

// TestUsageArithmetic pins how Gemini's counts add up to OpenAI's.
func TestUsageArithmetic(t *testing.T) {
	cases := []struct {
		name string
		in   *gemini.UsageMetadata
		want Usage
	}{
		{"nil", nil, Usage{}},
		{"plain", &gemini.UsageMetadata{PromptTokenCount: 10, CandidatesTokenCount: 5, TotalTokenCount: 15},
			Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}},
		{"thoughts are completion and reasoning tokens",
			&gemini.UsageMetadata{PromptTokenCount: 10, CandidatesTokenCount: 5, ThoughtsTokenCount: 100, TotalTokenCount: 115},
			Usage{PromptTokens: 10, CompletionTokens: 105, TotalTokens: 115, CompletionTokensDetails: CompletionTokensDetails{ReasoningTokens: 100}}},
		{"tool use prompt is prompt; cached is inside prompt",
			&gemini.UsageMetadata{PromptTokenCount: 1000, CachedContentTokenCount: 800, ToolUsePromptTokenCount: 50, CandidatesTokenCount: 20, ThoughtsTokenCount: 100, TotalTokenCount: 1170},
			Usage{PromptTokens: 1050, CompletionTokens: 120, TotalTokens: 1170,
				PromptTokensDetails: PromptTokensDetails{CachedTokens: 800}, CompletionTokensDetails: CompletionTokensDetails{ReasoningTokens: 100}}},
		{"missing total is the sum", &gemini.UsageMetadata{PromptTokenCount: 3, CandidatesTokenCount: 4},
			Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := usageFrom(tc.in)
			require.Equal(t, tc.want, got)
			// The hand-written encoder used by streams must agree with encoding/json.
			want, err := json.Marshal(got)
			require.NoError(t, err)
			require.JSONEq(t, string(want), string(appendUsage(nil, got)))
		})
	}
}

// TestToolCallIDs checks that generated ids are deterministic per completion, choice
// and position, and that Gemini's own ids win.
func TestToolCallIDs(t *testing.T) {
	require.Equal(t, "call_abc_0_0", toolCallID("", "chatcmpl-abc", 0, 0))
	require.Equal(t, "call_abc_1_2", toolCallID("", "chatcmpl-abc", 1, 2))
	require.Equal(t, "g-1", toolCallID("g-1", "chatcmpl-abc", 0, 0))

	var resp gemini.GenerateContentResponse
	require.NoError(t, json.Unmarshal(readFile(t, filepath.Join("testdata", "response", "tool_calls.gemini.json")), &resp))
	a := FromGemini(&resp, testMeta)
	b := FromGemini(&resp, testMeta)
	require.Equal(t, a.Choices[0].Message.ToolCalls, b.Choices[0].Message.ToolCalls)
	ids := []string{}
	for _, tc := range a.Choices[0].Message.ToolCalls {
		ids = append(ids, tc.ID)
	}
	require.Equal(t, []string{"call_test42_0_0", "gemini-call-7", "call_test42_0_2"}, ids)
}
