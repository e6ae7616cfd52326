package gemsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

func TestGenerateWireShape(t *testing.T) {
	s := newSim(t, Config{})
	resp := s.generateOK(keyP1a, flash, userText("What is the capital of France?"))

	require.Len(t, resp.Candidates, 1)
	c := resp.Candidates[0]
	require.Equal(t, "model", c.Content.Role)
	require.Equal(t, gemini.FinishStop, c.FinishReason)
	require.Equal(t, 0, c.Index)
	require.Len(t, c.Content.Parts, 1)
	require.Equal(t, "Simulated answer from gemini-2.5-flash to: What is the capital of France?", c.Content.Parts[0].Text)
	require.Equal(t, flash, resp.ModelVersion)
	require.Len(t, resp.ResponseID, 22)

	u := resp.UsageMetadata
	require.NotNil(t, u)
	require.EqualValues(t, CountTokens("What is the capital of France?"), u.PromptTokenCount)
	require.EqualValues(t, CountTokens(c.Content.Parts[0].Text), u.CandidatesTokenCount)
	require.Positive(t, u.ThoughtsTokenCount, "2.5 models think by default")
	require.Equal(t, u.PromptTokenCount+u.CandidatesTokenCount+u.ToolUsePromptTokenCount+u.ThoughtsTokenCount, u.TotalTokenCount)

	// The /v1/ prefix and the ?key= query parameter reach the same handler.
	code, body := s.do(http.MethodPost, "/v1/models/gemini-2.0-flash:generateContent?key="+keyP1a, "", userText("hi"))
	require.Equal(t, http.StatusOK, code, string(body))
}

func TestGenerateUsage(t *testing.T) {
	tools := []gemini.Tool{{FunctionDeclarations: []gemini.FunctionDeclaration{{
		Name: "lookup", Description: "Looks things up.", Parameters: json.RawMessage(`{"type":"OBJECT","properties":{"q":{"type":"STRING"}}}`),
	}}}}
	cases := []struct {
		name string
		// why the case exists
		why          string
		model        string
		req          gemini.GenerateContentRequest
		wantPrompt   int
		wantCached   int64
		wantThoughts bool
		wantThought  bool
	}{
		{name: "plain", why: "prompt is the text count; 2.5 thinks by default", model: flash,
			req: userText("hello world"), wantPrompt: CountTokens("hello world"), wantThoughts: true},
		{name: "budget zero", why: "thinkingBudget 0 turns thinking off on flash", model: flash,
			req:        withGen(userText("hello world"), &gemini.GenerationConfig{ThinkingConfig: &gemini.ThinkingConfig{ThinkingBudget: ptr(0)}}),
			wantPrompt: CountTokens("hello world")},
		{name: "no thinking model", why: "2.0 models never report thoughts", model: "gemini-2.0-flash",
			req: userText("hello world"), wantPrompt: CountTokens("hello world")},
		{name: "include thoughts", why: "a thought part comes before the answer", model: "gemini-2.5-pro",
			req:        withGen(userText("hello world"), &gemini.GenerationConfig{ThinkingConfig: &gemini.ThinkingConfig{IncludeThoughts: true}}),
			wantPrompt: CountTokens("hello world"), wantThoughts: true, wantThought: true},
		{name: "cached content", why: "cachedContentTokenCount is part of promptTokenCount", model: flash,
			req:        gemini.GenerateContentRequest{Contents: userText("a fairly long prompt that is cached").Contents, CachedContent: "cachedContents/abc"},
			wantPrompt: CountTokens("a fairly long prompt that is cached"), wantCached: int64(CountTokens("a fairly long prompt that is cached") / 2), wantThoughts: true},
		{name: "system, image and tools", why: "prompt covers system instruction, media and declarations", model: "gemini-2.0-flash",
			req: gemini.GenerateContentRequest{
				SystemInstruction: &gemini.Content{Parts: []gemini.Part{{Text: "Be brief."}}},
				Contents: []gemini.Content{{Role: "user", Parts: []gemini.Part{
					{Text: "Describe"}, {InlineData: &gemini.Blob{MimeType: "image/png", Data: "iVBORw0KGgo="}},
				}}},
				Tools:      tools,
				ToolConfig: &gemini.ToolConfig{FunctionCallingConfig: &gemini.FunctionCallingConfig{Mode: "NONE"}},
			},
			wantPrompt: CountTokens("Be brief.") + CountTokens("Describe") + imageTokens +
				tokensForBytes(len("lookup")+len("Looks things up.")+len(`{"type":"OBJECT","properties":{"q":{"type":"STRING"}}}`))},
	}
	s := newSim(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.generateOK(keyP1a, tc.model, tc.req)
			u := resp.UsageMetadata
			require.EqualValues(t, tc.wantPrompt, u.PromptTokenCount, tc.why)
			require.Equal(t, tc.wantCached, u.CachedContentTokenCount, tc.why)
			require.LessOrEqual(t, u.CachedContentTokenCount, u.PromptTokenCount)
			require.Equal(t, tc.wantThoughts, u.ThoughtsTokenCount > 0, tc.why)
			require.Zero(t, u.ToolUsePromptTokenCount)
			require.Equal(t, u.PromptTokenCount+u.CandidatesTokenCount+u.ToolUsePromptTokenCount+u.ThoughtsTokenCount, u.TotalTokenCount)
			parts := resp.Candidates[0].Content.Parts
			if tc.wantThought {
				require.Len(t, parts, 2)
				require.True(t, parts[0].Thought)
				require.NotEmpty(t, parts[0].Text)
				require.False(t, parts[1].Thought)
			} else {
				require.Len(t, parts, 1)
				require.False(t, parts[0].Thought)
			}
		})
	}
}

func TestGenerateOptions(t *testing.T) {
	cases := []struct {
		name       string
		why        string
		cfg        Config
		gen        *gemini.GenerationConfig
		wantTexts  []string
		wantFinish string
		check      func(t *testing.T, resp gemini.GenerateContentResponse)
	}{
		{name: "stop sequence", why: "text ends before the first stop sequence, finish STOP",
			gen:       &gemini.GenerationConfig{StopSequences: []string{"from", "answer"}},
			wantTexts: []string{"Simulated "}, wantFinish: gemini.FinishStop},
		{name: "max output tokens", why: "an answer over the budget is cut, finish MAX_TOKENS",
			gen:       &gemini.GenerationConfig{MaxOutputTokens: ptr(3)},
			wantTexts: []string{"Simulated an"}, wantFinish: gemini.FinishMaxTokens,
			check: func(t *testing.T, resp gemini.GenerateContentResponse) {
				require.EqualValues(t, 3, resp.UsageMetadata.CandidatesTokenCount)
			}},
		{name: "candidate count", why: "n candidates with their index, tokens summed",
			gen: &gemini.GenerationConfig{CandidateCount: ptr(3)},
			wantTexts: []string{
				"Simulated answer from gemini-2.5-flash to: ping",
				"Simulated answer from gemini-2.5-flash to: ping (candidate 2)",
				"Simulated answer from gemini-2.5-flash to: ping (candidate 3)",
			},
			wantFinish: gemini.FinishStop,
			check: func(t *testing.T, resp gemini.GenerateContentResponse) {
				sum := 0
				for i, c := range resp.Candidates {
					require.Equal(t, i, c.Index)
					sum += CountTokens(c.Content.Parts[0].Text)
				}
				require.EqualValues(t, sum, resp.UsageMetadata.CandidatesTokenCount)
			}},
		{name: "answer words", why: "answerWords makes longer answers for benchmarks",
			cfg:        Config{AnswerWords: 3},
			wantTexts:  []string{"Simulated answer from gemini-2.5-flash to: ping lorem ipsum dolor"},
			wantFinish: gemini.FinishStop},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, tc.cfg)
			resp := s.generateOK(keyP1a, flash, withGen(userText("ping"), tc.gen))
			require.Len(t, resp.Candidates, len(tc.wantTexts), tc.why)
			for i, want := range tc.wantTexts {
				require.Equal(t, want, resp.Candidates[i].Content.Parts[0].Text, tc.why)
				require.Equal(t, tc.wantFinish, resp.Candidates[i].FinishReason, tc.why)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
	}
}

func TestGenerateRejects(t *testing.T) {
	cases := []struct {
		name       string
		why        string
		path       string
		method     string
		body       any
		wantCode   int
		wantStatus string
		wantMsg    string
	}{
		{name: "malformed json", why: "bad JSON is INVALID_ARGUMENT", body: `{"contents": [`,
			wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "Invalid JSON payload received."},
		{name: "wrong type", why: "a type mismatch is bad JSON too", body: `{"contents": "hi"}`,
			wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "Invalid JSON payload received."},
		{name: "no contents", why: "the API requires contents", body: `{}`,
			wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "contents is not specified"},
		{name: "empty parts", why: "each content needs parts", body: `{"contents":[{"role":"user","parts":[]}]}`,
			wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "contents.parts must not be empty"},
		{name: "bad role", why: "only user and model turns exist", body: `{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}`,
			wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "Please use a valid role: user, model."},
		{name: "too many candidates", why: "candidateCount is 1..8",
			body:     withGen(userText("x"), &gemini.GenerationConfig{CandidateCount: ptr(9)}),
			wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "candidate_count"},
		{name: "pro without thinking", why: "gemini-2.5-pro refuses thinkingBudget 0",
			path:     "/v1beta/models/gemini-2.5-pro:generateContent",
			body:     withGen(userText("x"), &gemini.GenerationConfig{ThinkingConfig: &gemini.ThinkingConfig{ThinkingBudget: ptr(0)}}),
			wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "only works in thinking mode"},
		{name: "unknown model", why: "an unknown model is NOT_FOUND in google.rpc shape",
			path: "/v1beta/models/gemini-9-ultra:generateContent", body: userText("x"),
			wantCode: 404, wantStatus: "NOT_FOUND", wantMsg: "models/gemini-9-ultra is not found for API version v1beta"},
		{name: "embedding model", why: "a model without generateContent is NOT_FOUND for it",
			path: "/v1beta/models/gemini-embedding-001:generateContent", body: userText("x"),
			wantCode: 404, wantStatus: "NOT_FOUND", wantMsg: "not supported for generateContent"},
		{name: "unknown method", why: "only the documented methods are routed",
			path: "/v1beta/models/gemini-2.5-flash:predict", body: userText("x"),
			wantCode: 404, wantStatus: "NOT_FOUND", wantMsg: "Method not found."},
		{name: "GET on generate", why: "methods are POST only",
			method: http.MethodGet, wantCode: 404, wantStatus: "NOT_FOUND", wantMsg: "Method not found."},
	}
	s := newSim(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/v1beta/models/gemini-2.5-flash:generateContent"
			}
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			code, body := s.do(method, path, keyP1a, tc.body)
			require.Equal(t, tc.wantCode, code, string(body))
			st := decodeError(t, body)
			require.Equal(t, tc.wantCode, st.Code)
			require.Equal(t, tc.wantStatus, st.Status, tc.why)
			require.Contains(t, st.Message, tc.wantMsg, tc.why)
		})
	}
	// Rejected requests consume no quota.
	require.Empty(t, s.stats().Projects["p1"].Models)
}

func TestToolsRoundTrip(t *testing.T) {
	params := json.RawMessage(`{
		"type": "OBJECT",
		"properties": {
			"city": {"type": "STRING"},
			"unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]},
			"days": {"type": "INTEGER"},
			"detail": {"type": "OBJECT", "properties": {"hourly": {"type": "BOOLEAN"}, "note": {"type": "STRING"}}, "required": ["hourly"]},
			"optional": {"type": "STRING"}
		},
		"required": ["city", "unit", "days", "detail"]
	}`)
	tools := []gemini.Tool{{FunctionDeclarations: []gemini.FunctionDeclaration{
		{Name: "get_weather", Description: "Weather for a city.", Parameters: params},
		{Name: "get_time", Description: "Time in a city.", ParametersJSONSchema: json.RawMessage(`{"type":"object","properties":{"tz":{"type":["string","null"]}},"required":["tz"]}`)},
	}}}
	s := newSim(t, Config{})

	cases := []struct {
		name     string
		why      string
		cfg      *gemini.ToolConfig
		wantName string
		wantArgs string
	}{
		{name: "auto", why: "the first declared function is called with required args only",
			wantName: "get_weather", wantArgs: `{"city":"example","days":1,"detail":{"hourly":true},"unit":"celsius"}`},
		{name: "allowed names", why: "ANY with allowedFunctionNames picks an allowed one; JSON Schema types work",
			cfg:      &gemini.ToolConfig{FunctionCallingConfig: &gemini.FunctionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{"get_time"}}},
			wantName: "get_time", wantArgs: `{"tz":"example"}`},
		{name: "none", why: "mode NONE answers with text",
			cfg: &gemini.ToolConfig{FunctionCallingConfig: &gemini.FunctionCallingConfig{Mode: "NONE"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := userText("What's the weather in Paris?")
			req.Tools, req.ToolConfig = tools, tc.cfg
			resp := s.generateOK(keyP1a, flash, req)
			c := resp.Candidates[0]
			require.Equal(t, gemini.FinishStop, c.FinishReason)
			require.Len(t, c.Content.Parts, 1)
			fc := c.Content.Parts[0].FunctionCall
			if tc.wantName == "" {
				require.Nil(t, fc, tc.why)
				require.Contains(t, c.Content.Parts[0].Text, "Simulated answer")
				return
			}
			require.NotNil(t, fc, tc.why)
			require.Equal(t, tc.wantName, fc.Name)
			require.JSONEq(t, tc.wantArgs, string(fc.Args), tc.why)
			require.True(t, strings.HasPrefix(fc.ID, "call_"))
			require.NotEmpty(t, c.Content.Parts[0].ThoughtSignature, "2.5 models sign calls made while thinking")
			require.EqualValues(t, tokensForBytes(len(fc.Name)+len(fc.Args)), resp.UsageMetadata.CandidatesTokenCount)
		})
	}

	// The round trip: the model's call and the tool's result go back; the answer quotes it.
	first := s.generateOK(keyP1a, flash, gemini.GenerateContentRequest{Contents: userText("Weather in Paris?").Contents, Tools: tools})
	call := first.Candidates[0].Content.Parts[0]
	require.NotNil(t, call.FunctionCall)
	req := gemini.GenerateContentRequest{
		Tools: tools,
		Contents: []gemini.Content{
			{Role: "user", Parts: []gemini.Part{{Text: "Weather in Paris?"}}},
			{Role: "model", Parts: []gemini.Part{call}},
			{Role: "user", Parts: []gemini.Part{{FunctionResponse: &gemini.FunctionResponse{
				ID: call.FunctionCall.ID, Name: "get_weather", Response: json.RawMessage(`{"temperature": 21, "sky": "clear"}`),
			}}}},
		},
	}
	second := s.generateOK(keyP1a, flash, req)
	part := second.Candidates[0].Content.Parts[0]
	require.Nil(t, part.FunctionCall, "a function result is answered with text, not another call")
	require.Contains(t, part.Text, `get_weather={"temperature":21,"sky":"clear"}`)
}

func TestJSONMode(t *testing.T) {
	cases := []struct {
		name string
		why  string
		gen  gemini.GenerationConfig
		want string
	}{
		{name: "no schema", why: "without a schema the answer is wrapped",
			gen:  gemini.GenerationConfig{ResponseMimeType: "application/json"},
			want: `{"answer":"Simulated answer from gemini-2.5-flash to: List colors"}`},
		{name: "openapi schema", why: "responseSchema in Gemini's OpenAPI subset, every property filled",
			gen: gemini.GenerationConfig{ResponseMimeType: "application/json", ResponseSchema: json.RawMessage(`{
				"type":"ARRAY","items":{"type":"OBJECT","properties":{"name":{"type":"STRING"},"hex":{"type":"STRING"},"score":{"type":"NUMBER"}}}}`)},
			want: `[{"name":"example","hex":"example","score":1}]`},
		{name: "json schema with refs", why: "responseJsonSchema from pydantic uses $defs and anyOf with null",
			gen: gemini.GenerationConfig{ResponseMimeType: "application/json", ResponseJSONSchema: json.RawMessage(`{
				"$defs":{"Color":{"type":"object","properties":{"name":{"type":"string"},"primary":{"type":"boolean"}},"required":["name"]}},
				"type":"object","properties":{"colors":{"type":"array","items":{"$ref":"#/$defs/Color"}},"note":{"anyOf":[{"type":"null"},{"type":"string"}]}}}`)},
			want: `{"colors":[{"name":"example","primary":true}],"note":"example"}`},
	}
	s := newSim(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.generateOK(keyP1a, flash, withGen(userText("List colors"), &tc.gen))
			text := resp.Candidates[0].Content.Parts[0].Text
			require.True(t, json.Valid([]byte(text)), text)
			require.JSONEq(t, tc.want, text, tc.why)
		})
	}
}

// withGen sets a request's generation config.
func withGen(req gemini.GenerateContentRequest, gc *gemini.GenerationConfig) gemini.GenerateContentRequest {
	req.GenerationConfig = gc
	return req
}
