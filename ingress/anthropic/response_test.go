package anthropic

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

var testMeta = ResponseMeta{ID: "msg_01TEST", Model: "claude-sonnet-4-5"}

// responseCases are the Gemini responses under testdata/responses.
var responseCases = []string{
	"text", "thinking_text", "tool_calls", "max_tokens", "safety", "prompt_blocked",
	"cached_usage", "signed_call_only", "malformed_call",
}

func readGeminiResponse(t testing.TB, name string) *gemini.GenerateContentResponse {
	t.Helper()
	var r gemini.GenerateContentResponse
	require.NoError(t, json.Unmarshal(readTestdata(t, "responses/"+name+".json"), &r))
	return &r
}

// TestFromGeminiGolden translates each Gemini response and compares the Anthropic
// message with testdata/golden/fromgemini/<case>.json.
func TestFromGeminiGolden(t *testing.T) {
	for _, name := range responseCases {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(FromGemini(readGeminiResponse(t, name), testMeta))
			require.NoError(t, err)
			var buf bytes.Buffer
			require.NoError(t, json.Indent(&buf, raw, "", "  "))
			buf.WriteByte('\n')
			checkGolden(t, "fromgemini/"+name+".json", buf.Bytes())
		})
	}
}

// TestFromGeminiContent pins the blocks, stop reasons and usage the goldens hold.
func TestFromGeminiContent(t *testing.T) {
	cases := []struct {
		name    string
		content []ContentBlock
		stop    StopReason
		usage   Usage
	}{
		{
			name:    "text",
			content: []ContentBlock{{Type: "text", Text: "Hello! How can I help you today?"}},
			stop:    StopEndTurn,
			usage:   Usage{InputTokens: 12, OutputTokens: 9},
		},
		{
			// The signature on the text part goes onto the open thinking block.
			name: "thinking_text",
			content: []ContentBlock{
				{Type: "thinking", Thinking: "**Considering the question**\nThe user asks for a capital.", Signature: "CpcBAdHtim9sigOnTextPart"},
				{Type: "text", Text: "The capital of France is Paris."},
			},
			stop:  StopEndTurn,
			usage: Usage{InputTokens: 10, OutputTokens: 128},
		},
		{
			// The thinking block was closed by the text, so the call's signature gets an
			// empty thinking block of its own; calls without ids get derived ones.
			name: "tool_calls",
			content: []ContentBlock{
				{Type: "thinking", Thinking: "I'll look both up.", Signature: UnsignedThinking},
				{Type: "text", Text: "Checking the weather."},
				{Type: "thinking", Signature: "EjQKMgFsigOnFirstCall"},
				{Type: "tool_use", ID: "toolu_01TEST_0", Name: "get_weather", Input: json.RawMessage(`{"city":"Paris","unit":"c"}`)},
				{Type: "tool_use", ID: "call_gemini_7", Name: "get_weather", Input: json.RawMessage(`{"city":"Oslo"}`)},
				{Type: "tool_use", ID: "toolu_01TEST_2", Name: "list_cities", Input: json.RawMessage(`{}`)},
			},
			stop:  StopToolUse,
			usage: Usage{InputTokens: 250, OutputTokens: 70},
		},
		{
			name:    "max_tokens",
			content: []ContentBlock{{Type: "text", Text: "Once upon a time, in a land far"}},
			stop:    StopMaxTokens,
			usage:   Usage{InputTokens: 5, OutputTokens: 10},
		},
		{name: "safety", content: []ContentBlock{}, stop: StopRefusal, usage: Usage{InputTokens: 30}},
		{name: "prompt_blocked", content: []ContentBlock{}, stop: StopRefusal, usage: Usage{InputTokens: 44}},
		{
			// 10000 prompt of which 8192 cached, plus 50 tool-use prompt; 7 + 300 thoughts.
			name:    "cached_usage",
			content: []ContentBlock{{Type: "text", Text: "Using the cached context: yes."}},
			stop:    StopEndTurn,
			usage:   Usage{InputTokens: 1858, CacheReadInputTokens: 8192, OutputTokens: 307},
		},
		{
			name: "signed_call_only",
			content: []ContentBlock{
				{Type: "thinking", Signature: "Gemini3SignatureOnCall"},
				{Type: "tool_use", ID: "toolu_01TEST_0", Name: "bash", Input: json.RawMessage(`{"command":"ls -la"}`)},
			},
			stop:  StopToolUse,
			usage: Usage{InputTokens: 80, OutputTokens: 76},
		},
		{name: "malformed_call", content: []ContentBlock{}, stop: StopEndTurn, usage: Usage{InputTokens: 80}},
	}
	require.Len(t, cases, len(responseCases))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := FromGemini(readGeminiResponse(t, tc.name), testMeta)
			require.Equal(t, tc.content, m.Content)
			require.Equal(t, tc.stop, m.StopReason)
			require.Equal(t, tc.usage, m.Usage)
			require.Equal(t, "msg_01TEST", m.ID)
			require.Equal(t, "claude-sonnet-4-5", m.Model)
			require.Empty(t, m.StopSequence, "Gemini never says which stop sequence ended a turn")
		})
	}
}

func TestUsageArithmetic(t *testing.T) {
	cases := []struct {
		name  string
		in    *gemini.UsageMetadata
		wantU Usage
	}{
		{name: "no usage", in: nil, wantU: Usage{}},
		{name: "plain", in: &gemini.UsageMetadata{PromptTokenCount: 100, CandidatesTokenCount: 20}, wantU: Usage{InputTokens: 100, OutputTokens: 20}},
		{name: "thoughts are output", in: &gemini.UsageMetadata{PromptTokenCount: 100, CandidatesTokenCount: 20, ThoughtsTokenCount: 500}, wantU: Usage{InputTokens: 100, OutputTokens: 520}},
		{name: "cached is subtracted and reported apart", in: &gemini.UsageMetadata{PromptTokenCount: 5000, CachedContentTokenCount: 4096, CandidatesTokenCount: 1}, wantU: Usage{InputTokens: 904, CacheReadInputTokens: 4096, OutputTokens: 1}},
		{name: "tool use prompt is input", in: &gemini.UsageMetadata{PromptTokenCount: 10, ToolUsePromptTokenCount: 90}, wantU: Usage{InputTokens: 100}},
		// A malformed count must not go negative.
		{name: "cached above prompt", in: &gemini.UsageMetadata{PromptTokenCount: 10, CachedContentTokenCount: 50}, wantU: Usage{InputTokens: 0, CacheReadInputTokens: 50}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := FromGemini(&gemini.GenerateContentResponse{UsageMetadata: tc.in}, testMeta)
			require.Equal(t, tc.wantU, m.Usage)
		})
	}
}

func TestStopReasons(t *testing.T) {
	call := gemini.Part{FunctionCall: &gemini.FunctionCall{Name: "f"}}
	text := gemini.Part{Text: "x"}
	cases := []struct {
		finish  string
		part    gemini.Part
		blocked bool
		want    StopReason
	}{
		{finish: "STOP", part: text, want: StopEndTurn},
		{finish: "STOP", part: call, want: StopToolUse},
		{finish: "MAX_TOKENS", part: call, want: StopMaxTokens},
		{finish: "MAX_TOKENS", part: text, want: StopMaxTokens},
		{finish: "SAFETY", part: text, want: StopRefusal},
		{finish: "RECITATION", part: text, want: StopRefusal},
		{finish: "BLOCKLIST", part: text, want: StopRefusal},
		{finish: "PROHIBITED_CONTENT", part: text, want: StopRefusal},
		{finish: "SPII", part: text, want: StopRefusal},
		{finish: "IMAGE_SAFETY", part: text, want: StopRefusal},
		{finish: "OTHER", part: text, want: StopEndTurn},
		{finish: "MALFORMED_FUNCTION_CALL", part: text, want: StopEndTurn},
		{finish: "UNEXPECTED_TOOL_CALL", part: call, want: StopToolUse},
		{finish: "", part: text, want: StopMaxTokens},
		{finish: "", part: text, blocked: true, want: StopRefusal},
	}
	for _, tc := range cases {
		t.Run(tc.finish, func(t *testing.T) {
			resp := &gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{
				Content:      gemini.Content{Role: "model", Parts: []gemini.Part{tc.part}},
				FinishReason: tc.finish,
			}}}
			if tc.blocked {
				resp.PromptFeedback = json.RawMessage(`{"blockReason":"OTHER"}`)
			}
			require.Equal(t, tc.want, FromGemini(resp, testMeta).StopReason)
		})
	}
}

// TestFromGeminiOddInput covers responses that are legal JSON but odd.
func TestFromGeminiOddInput(t *testing.T) {
	t.Run("nil response", func(t *testing.T) {
		m := FromGemini(nil, testMeta)
		require.Empty(t, m.Content)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		require.Contains(t, string(b), `"content":[]`)
	})
	t.Run("non-object args become an empty input", func(t *testing.T) {
		resp := &gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{FinishReason: "STOP", Content: gemini.Content{Parts: []gemini.Part{
			{FunctionCall: &gemini.FunctionCall{Name: "a", Args: json.RawMessage(`[1,2]`)}},
			{FunctionCall: &gemini.FunctionCall{Name: "b", Args: json.RawMessage(`{"x":`)}},
		}}}}}
		m := FromGemini(resp, ResponseMeta{})
		require.Equal(t, json.RawMessage(`{}`), m.Content[0].Input)
		require.Equal(t, json.RawMessage(`{}`), m.Content[1].Input)
		require.Equal(t, "toolu_gca_1", m.Content[1].ID, "without a message id the prefix is gca")
		_, err := json.Marshal(m)
		require.NoError(t, err)
	})
	t.Run("only the first candidate counts; inlineData is skipped", func(t *testing.T) {
		resp := &gemini.GenerateContentResponse{Candidates: []gemini.Candidate{
			{FinishReason: "STOP", Content: gemini.Content{Parts: []gemini.Part{{Text: "a"}, {InlineData: &gemini.Blob{MimeType: "image/png", Data: "AA=="}}, {Text: "b"}}}},
			{FinishReason: "STOP", Content: gemini.Content{Parts: []gemini.Part{{Text: "other"}}}},
		}}
		require.Equal(t, []ContentBlock{{Type: "text", Text: "ab"}}, FromGemini(resp, testMeta).Content)
	})
	t.Run("consecutive signed thoughts are separate blocks", func(t *testing.T) {
		resp := &gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{FinishReason: "STOP", Content: gemini.Content{Parts: []gemini.Part{
			{Text: "one", Thought: true, ThoughtSignature: "s1"},
			{Text: "two", Thought: true},
			{Text: "three", Thought: true, ThoughtSignature: "s2"},
			{Text: "answer"},
		}}}}}
		require.Equal(t, []ContentBlock{
			{Type: "thinking", Thinking: "one", Signature: "s1"},
			{Type: "thinking", Thinking: "twothree", Signature: "s2"},
			{Type: "text", Text: "answer"},
		}, FromGemini(resp, testMeta).Content)
	})
}

// TestSignatureRoundTrip sends Gemini's model turn through FromGemini and back through
// ToGemini (as a client echoing the message would) and checks every signature lands on
// a part where Gemini expects it.
func TestSignatureRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		parts []gemini.Part
		want  []gemini.Part
	}{
		{
			name:  "signed call after thoughts",
			parts: []gemini.Part{{Text: "plan", Thought: true}, {FunctionCall: &gemini.FunctionCall{ID: "c1", Name: "f", Args: json.RawMessage(`{"a":1}`)}, ThoughtSignature: "S"}},
			want:  []gemini.Part{{Text: "plan", Thought: true}, {FunctionCall: &gemini.FunctionCall{ID: "c1", Name: "f", Args: json.RawMessage(`{"a":1}`)}, ThoughtSignature: "S"}},
		},
		{
			name:  "signed call without thoughts (Gemini 3, thoughts hidden)",
			parts: []gemini.Part{{FunctionCall: &gemini.FunctionCall{ID: "c1", Name: "f", Args: json.RawMessage(`{}`)}, ThoughtSignature: "S"}, {FunctionCall: &gemini.FunctionCall{ID: "c2", Name: "f", Args: json.RawMessage(`{}`)}}},
			want:  []gemini.Part{{FunctionCall: &gemini.FunctionCall{ID: "c1", Name: "f", Args: json.RawMessage(`{}`)}, ThoughtSignature: "S"}, {FunctionCall: &gemini.FunctionCall{ID: "c2", Name: "f", Args: json.RawMessage(`{}`)}}},
		},
		{
			name:  "signed text after text",
			parts: []gemini.Part{{Text: "thinking", Thought: true}, {Text: "a"}, {Text: "b", ThoughtSignature: "S"}},
			want:  []gemini.Part{{Text: "thinking", Thought: true}, {Text: "a"}, {Text: "b", ThoughtSignature: "S"}},
		},
		{
			name:  "unsigned thoughts lose nothing",
			parts: []gemini.Part{{Text: "thinking", Thought: true}, {Text: "answer"}},
			want:  []gemini.Part{{Text: "thinking", Thought: true}, {Text: "answer"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := FromGemini(&gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{FinishReason: "STOP", Content: gemini.Content{Role: "model", Parts: tc.parts}}}}, testMeta)
			var blocks []ContentBlockParam
			var results []ContentBlockParam
			for _, b := range m.Content {
				blocks = append(blocks, ContentBlockParam{Type: b.Type, Text: b.Text, Thinking: b.Thinking, Signature: b.Signature, ID: b.ID, Name: b.Name, Input: b.Input})
				if b.Type == "tool_use" {
					results = append(results, ContentBlockParam{Type: BlockToolResult, ToolUseID: b.ID})
				}
			}
			msgs := []MessageParam{{Role: RoleUser, Content: []ContentBlockParam{{Type: BlockText, Text: "q"}}}, {Role: RoleAssistant, Content: blocks}}
			if len(results) > 0 {
				msgs = append(msgs, MessageParam{Role: RoleUser, Content: results})
			}
			req := &MessagesRequest{Model: "m", MaxTokens: 10, Messages: msgs}
			require.Nil(t, validateTurns(req.Messages))
			g, err := req.ToGemini(flash)
			require.NoError(t, err)
			require.Equal(t, tc.want, g.Contents[1].Parts)
		})
	}
}
