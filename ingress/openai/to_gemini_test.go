package openai

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// TestToGeminiGolden translates each request under testdata/chat and compares the
// Gemini body with the golden file next to it.
func TestToGeminiGolden(t *testing.T) {
	cases := []struct {
		name string
		opts ToGeminiOptions
		why  string
	}{
		{"system_multiturn", ToGeminiOptions{}, "system and developer messages become systemInstruction in order; consecutive user turns merge; an empty assistant turn is dropped; unknown fields are ignored"},
		{"system_only", ToGeminiOptions{}, "Gemini needs a content: a lone system prompt is sent as the user turn"},
		{"image_data_url", ToGeminiOptions{}, "data: URLs become inlineData with a lower-cased MIME type"},
		{"tools_choice_auto", ToGeminiOptions{}, "tools become functionDeclarations with the raw JSON Schema; auto is AUTO"},
		{"tools_choice_none", ToGeminiOptions{}, "none is NONE"},
		{"tools_choice_required", ToGeminiOptions{}, "required is ANY"},
		{"tools_choice_named", ToGeminiOptions{}, "a named function is ANY restricted to it"},
		{"tools_choice_allowed", ToGeminiOptions{}, "allowed_tools auto is VALIDATED restricted to the list"},
		{"tool_round_trip", ToGeminiOptions{}, "tool calls become functionCall parts with ids, parsed args and the thought signature; consecutive tool results form one user turn"},
		{"tool_round_trip_missing_signature", ToGeminiOptions{MissingThoughtSignature: "skip_thought_signature_validator"}, "the configured placeholder signature goes on the first call of a turn only"},
		{"json_object", ToGeminiOptions{}, "json_object is responseMimeType application/json"},
		{"json_schema", ToGeminiOptions{}, "json_schema adds the raw schema as responseJsonSchema"},
		{"reasoning_none", ToGeminiOptions{}, "none turns thinking off"},
		{"reasoning_minimal", ToGeminiOptions{MinThinkingBudget: 128}, "minimal is the smallest budget the model allows"},
		{"reasoning_low", ToGeminiOptions{IncludeThoughts: true}, "low is 1024, with thought summaries requested"},
		{"reasoning_medium", ToGeminiOptions{}, "medium is 8192"},
		{"reasoning_high", ToGeminiOptions{}, "high is 24576"},
		{"sampling_n2_stop", ToGeminiOptions{}, "n, stop (empty dropped), sampling, penalties, seed folded to int32; max_completion_tokens wins over max_tokens"},
		{"stop_string", ToGeminiOptions{}, "a single stop string is a one-element stopSequences"},
	}
	dir := filepath.Join("testdata", "chat")
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeChatRequest(readFile(t, filepath.Join(dir, tc.name+".request.json")))
			require.NoError(t, err)
			out, err := req.ToGemini(tc.opts)
			require.NoError(t, err)
			golden(t, filepath.Join(dir, tc.name+".gemini.json"), indented(t, out))
		})
	}
	requireAllCovered(t, inputsWithSuffix(t, dir, ".request.json"), covered)
}

// TestToGeminiRoundTripDetails checks the parts of the tool round trip that matter
// most one by one, independently of the golden file.
func TestToGeminiRoundTripDetails(t *testing.T) {
	req, err := DecodeChatRequest(readFile(t, filepath.Join("testdata", "chat", "tool_round_trip.request.json")))
	require.NoError(t, err)
	out, err := req.ToGemini(ToGeminiOptions{})
	require.NoError(t, err)

	require.Equal(t, []gemini.Part{{Text: "Use tools when useful."}}, out.SystemInstruction.Parts)
	roles := make([]string, len(out.Contents))
	for i, c := range out.Contents {
		roles[i] = c.Role
	}
	require.Equal(t, []string{"user", "model", "user", "model", "user"}, roles)

	calls := out.Contents[1].Parts
	require.Len(t, calls, 3)
	require.Equal(t, "call_a", calls[0].FunctionCall.ID)
	require.Equal(t, "c2lnbmF0dXJlLWE=", calls[0].ThoughtSignature)
	require.JSONEq(t, `{"city":"Paris"}`, string(calls[0].FunctionCall.Args))
	require.JSONEq(t, `{}`, string(calls[2].FunctionCall.Args), "empty arguments are an empty object")
	require.Empty(t, calls[1].ThoughtSignature)

	results := out.Contents[2].Parts
	require.Len(t, results, 3, "three tool messages are one user turn")
	want := []struct{ id, name, response string }{
		{"call_a", "get_weather", `{"temp": 21, "sky": "clear"}`},
		{"call_b", "get_weather", `{"result":"rainy, 12C"}`},
		{"call_c", "now", `{"result":"[\"not\", \"an object\"]"}`},
	}
	for i, w := range want {
		fr := results[i].FunctionResponse
		require.Equal(t, w.id, fr.ID)
		require.Equal(t, w.name, fr.Name, "the name comes from the earlier tool call")
		require.JSONEq(t, w.response, string(fr.Response))
	}
}

// TestReasoningBudgets pins the reasoning_effort table documented in the package.
func TestReasoningBudgets(t *testing.T) {
	budget := func(n int) *int { return &n }
	cases := []struct {
		effort string
		opts   ToGeminiOptions
		want   *gemini.ThinkingConfig
	}{
		{"", ToGeminiOptions{}, nil},
		{"", ToGeminiOptions{IncludeThoughts: true}, &gemini.ThinkingConfig{IncludeThoughts: true}},
		{EffortNone, ToGeminiOptions{}, &gemini.ThinkingConfig{ThinkingBudget: budget(0)}},
		{EffortNone, ToGeminiOptions{IncludeThoughts: true}, &gemini.ThinkingConfig{ThinkingBudget: budget(0)}},
		{EffortMinimal, ToGeminiOptions{}, &gemini.ThinkingConfig{ThinkingBudget: budget(0)}},
		{EffortMinimal, ToGeminiOptions{MinThinkingBudget: 128}, &gemini.ThinkingConfig{ThinkingBudget: budget(128)}},
		{EffortLow, ToGeminiOptions{}, &gemini.ThinkingConfig{ThinkingBudget: budget(1024)}},
		{EffortMedium, ToGeminiOptions{}, &gemini.ThinkingConfig{ThinkingBudget: budget(8192)}},
		{EffortHigh, ToGeminiOptions{IncludeThoughts: true}, &gemini.ThinkingConfig{ThinkingBudget: budget(24576), IncludeThoughts: true}},
	}
	for _, tc := range cases {
		t.Run(tc.effort, func(t *testing.T) {
			require.Equal(t, tc.want, thinkingConfig(tc.effort, tc.opts))
		})
	}
}

// TestToolChoiceModes pins the tool_choice table.
func TestToolChoiceModes(t *testing.T) {
	cases := []struct {
		choice string
		want   gemini.FunctionCallingConfig
	}{
		{`"none"`, gemini.FunctionCallingConfig{Mode: "NONE"}},
		{`"auto"`, gemini.FunctionCallingConfig{Mode: "AUTO"}},
		{`"required"`, gemini.FunctionCallingConfig{Mode: "ANY"}},
		{`{"type":"function","function":{"name":"b"}}`, gemini.FunctionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{"b"}}},
		{`{"type":"allowed_tools","allowed_tools":{"mode":"required","tools":[{"type":"function","function":{"name":"a"}}]}}`,
			gemini.FunctionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{"a"}}},
		{`{"type":"allowed_tools","allowed_tools":{"mode":"auto","tools":[{"type":"function","function":{"name":"a"}}]}}`,
			gemini.FunctionCallingConfig{Mode: "VALIDATED", AllowedFunctionNames: []string{"a"}}},
	}
	for _, tc := range cases {
		t.Run(tc.choice, func(t *testing.T) {
			body := `{"model":"m","messages":[{"role":"user","content":"x"}],
				"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],
				"tool_choice":` + tc.choice + `}`
			req, err := DecodeChatRequest([]byte(body))
			require.NoError(t, err)
			out, err := req.ToGemini(ToGeminiOptions{})
			require.NoError(t, err)
			require.Equal(t, tc.want, *out.ToolConfig.FunctionCallingConfig)
			require.Len(t, out.Tools, 1)
			require.Len(t, out.Tools[0].FunctionDeclarations, 2)
		})
	}
}

// TestToGeminiNoGenerationConfig checks that a plain request sends no generationConfig
// at all rather than an empty object.
func TestToGeminiNoGenerationConfig(t *testing.T) {
	req, err := DecodeChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	out, err := req.ToGemini(ToGeminiOptions{})
	require.NoError(t, err)
	b, err := json.Marshal(out)
	require.NoError(t, err)
	require.JSONEq(t, `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`, string(b))
}
