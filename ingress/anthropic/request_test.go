package anthropic

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

var (
	flash = ToGeminiOptions{Model: "gemini-2.5-flash"}
	pro   = ToGeminiOptions{Model: "gemini-2.5-pro"}
)

// TestToGeminiGolden translates each request under testdata/requests and compares the
// Gemini body with testdata/golden/togemini/<case>.json.
func TestToGeminiGolden(t *testing.T) {
	cases := []struct {
		name string
		file string
		opts ToGeminiOptions
	}{
		{name: "system_string", file: "system_string.json", opts: flash},
		// System blocks, cache_control ignored, consecutive user messages merged, a final
		// assistant prefill kept, empty text blocks dropped.
		{name: "system_blocks_multiturn", file: "system_blocks_multiturn.json", opts: flash},
		// The same request to a model whose output limit is below max_tokens.
		{name: "output_limit", file: "system_blocks_multiturn.json", opts: ToGeminiOptions{Model: "gemini-2.0-flash", OutputTokenLimit: 8192}},
		{name: "media", file: "media.json", opts: flash},
		{name: "tool_round_trip", file: "tool_round_trip.json", opts: flash},
		{name: "tool_choice_any", file: "tool_choice_any.json", opts: flash},
		{name: "tool_choice_tool", file: "tool_choice_tool.json", opts: flash},
		{name: "tool_choice_none", file: "tool_choice_none.json", opts: flash},
		{name: "stop_sequences", file: "stop_sequences.json", opts: flash},
		// Budget 31999 is clamped to flash's 24576.
		{name: "thinking_enabled_flash", file: "thinking_enabled.json", opts: flash},
		// An unknown model (Gemini 3) gets the budget unclamped.
		{name: "thinking_enabled_gemini3", file: "thinking_enabled.json", opts: ToGeminiOptions{Model: "gemini-3-pro-preview"}},
		{name: "thinking_disabled_flash", file: "thinking_disabled.json", opts: flash},
		// 2.5 Pro cannot stop thinking: no thinkingConfig.
		{name: "thinking_disabled_pro", file: "thinking_disabled.json", opts: pro},
		// 2.0 has no thinking at all: no thinkingConfig even when enabled.
		{name: "thinking_enabled_gemini2", file: "thinking_enabled.json", opts: ToGeminiOptions{Model: "models/gemini-2.0-flash"}},
		{name: "thinking_adaptive_omitted", file: "thinking_adaptive_omitted.json", opts: pro},
		{name: "assistant_first", file: "assistant_first.json", opts: flash},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeMessagesRequest(readTestdata(t, "requests/"+tc.file))
			require.NoError(t, err)
			g, err := req.ToGemini(tc.opts)
			require.NoError(t, err)
			checkGolden(t, "togemini/"+tc.name+".json", indentJSON(t, g))
		})
	}
}

// TestToGeminiSemantics pins the facts the goldens encode, so that regenerating them
// cannot silently accept a wrong translation.
func TestToGeminiSemantics(t *testing.T) {
	translate := func(t *testing.T, file string, opts ToGeminiOptions) *gemini.GenerateContentRequest {
		t.Helper()
		req, err := DecodeMessagesRequest(readTestdata(t, "requests/"+file))
		require.NoError(t, err)
		g, err := req.ToGemini(opts)
		require.NoError(t, err)
		return g
	}

	t.Run("system and sampling", func(t *testing.T) {
		g := translate(t, "system_string.json", flash)
		require.Equal(t, []gemini.Part{{Text: "You are a terse assistant."}}, g.SystemInstruction.Parts)
		require.Empty(t, g.SystemInstruction.Role)
		gc := g.GenerationConfig
		require.Equal(t, 1024, *gc.MaxOutputTokens)
		require.InDelta(t, 0.7, *gc.Temperature, 1e-9)
		require.InDelta(t, 0.9, *gc.TopP, 1e-9)
		require.Equal(t, 40, *gc.TopK)
		require.Nil(t, gc.ThinkingConfig, "no thinking field keeps the model default")
	})

	t.Run("turns merge and roles map", func(t *testing.T) {
		g := translate(t, "system_blocks_multiturn.json", flash)
		require.Len(t, g.SystemInstruction.Parts, 2, "the empty system block is dropped")
		roles := make([]string, len(g.Contents))
		for i, c := range g.Contents {
			roles[i] = c.Role
		}
		require.Equal(t, []string{"user", "model", "user", "model"}, roles)
		require.Equal(t, []gemini.Part{{Text: "And times 3?"}, {Text: "Answer with a number."}}, g.Contents[2].Parts)
		require.Equal(t, 64000, *g.GenerationConfig.MaxOutputTokens)
	})

	t.Run("output limit caps max tokens", func(t *testing.T) {
		g := translate(t, "system_blocks_multiturn.json", ToGeminiOptions{OutputTokenLimit: 8192})
		require.Equal(t, 8192, *g.GenerationConfig.MaxOutputTokens)
	})

	t.Run("tool round trip", func(t *testing.T) {
		g := translate(t, "tool_round_trip.json", flash)
		decls := g.Tools[0].FunctionDeclarations
		require.Len(t, decls, 2)
		require.JSONEq(t, `{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}`, string(decls[0].ParametersJSONSchema))
		require.Equal(t, "AUTO", g.ToolConfig.FunctionCallingConfig.Mode)

		model := g.Contents[1]
		require.Equal(t, "model", model.Role)
		require.Equal(t, "Let me check.", model.Parts[0].Text)
		require.Equal(t, &gemini.FunctionCall{ID: "toolu_01B", Name: "get_weather", Args: json.RawMessage(`{"city": "Oslo", "unit": "c"}`)}, model.Parts[2].FunctionCall)

		user := g.Contents[2].Parts
		require.Len(t, user, 5, "3 responses, 1 image from a result, 1 text")
		require.Equal(t, "toolu_01A", user[0].FunctionResponse.ID)
		require.Equal(t, "get_weather", user[0].FunctionResponse.Name)
		require.JSONEq(t, `{"result":"18°C, sunny"}`, string(user[0].FunctionResponse.Response))
		require.JSONEq(t, `{"error":"upstream timeout\nretry later"}`, string(user[1].FunctionResponse.Response))
		require.Equal(t, "read-file_v2", user[2].FunctionResponse.Name)
		require.Equal(t, "image/jpeg", user[3].InlineData.MimeType)
		require.Equal(t, "Summarise please.", user[4].Text)
	})

	t.Run("tool choice", func(t *testing.T) {
		require.Equal(t, &gemini.FunctionCallingConfig{Mode: "ANY"}, translate(t, "tool_choice_any.json", flash).ToolConfig.FunctionCallingConfig)
		require.Equal(t, &gemini.FunctionCallingConfig{Mode: "NONE"}, translate(t, "tool_choice_none.json", flash).ToolConfig.FunctionCallingConfig)
		require.Equal(t, &gemini.FunctionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{"record_answer"}}, translate(t, "tool_choice_tool.json", flash).ToolConfig.FunctionCallingConfig)
	})

	t.Run("stop sequences and top_k zero", func(t *testing.T) {
		gc := translate(t, "stop_sequences.json", flash).GenerationConfig
		require.Equal(t, []string{"</answer>", "\n\nHuman:", "STOP", "###", "END"}, gc.StopSequences)
		require.Nil(t, gc.TopK)
		require.InDelta(t, 0, *gc.Temperature, 0, "temperature 0 is sent, not dropped")
	})

	t.Run("media", func(t *testing.T) {
		parts := translate(t, "media.json", flash).Contents[0].Parts
		require.Equal(t, "image/png", parts[0].InlineData.MimeType)
		require.Equal(t, "application/pdf", parts[1].InlineData.MimeType)
		require.Equal(t, "Plain text attachment.", parts[2].Text)
	})

	t.Run("thinking signatures", func(t *testing.T) {
		g := translate(t, "thinking_enabled.json", flash)
		require.Equal(t, &gemini.ThinkingConfig{ThinkingBudget: ptr(24576), IncludeThoughts: true}, g.GenerationConfig.ThinkingConfig)
		first := g.Contents[1].Parts
		require.Equal(t, gemini.Part{Text: "I should run ls.", Thought: true}, first[0])
		require.Equal(t, "CiQB0e2Kb8sigFromGeminiFunctionCallPart==", first[1].ThoughtSignature, "the signature rides on the call, where Gemini validates it")
		second := g.Contents[3].Parts
		require.Len(t, second, 2, "placeholder signature and redacted_thinking dropped; empty thinking has no part")
		require.Equal(t, gemini.Part{Text: "Two Go files.", Thought: true}, second[0])
		require.Equal(t, gemini.Part{Text: "There are two files: a.go and b.go.", ThoughtSignature: "CiQB0e2Kb8sigFromGeminiTextPart=="}, second[1])
		third := g.Contents[5].Parts
		require.Equal(t, []gemini.Part{{Text: "Checking.", ThoughtSignature: "CiQB0e2Kb8sigTrailing=="}}, third, "a trailing signature goes to the closest earlier part")
	})

	t.Run("thinking off", func(t *testing.T) {
		require.Equal(t, &gemini.ThinkingConfig{ThinkingBudget: ptr(0)}, translate(t, "thinking_disabled.json", flash).GenerationConfig.ThinkingConfig)
		require.Nil(t, translate(t, "thinking_disabled.json", pro).GenerationConfig.ThinkingConfig)
		require.Equal(t, &gemini.ThinkingConfig{ThinkingBudget: ptr(-1)}, translate(t, "thinking_adaptive_omitted.json", pro).GenerationConfig.ThinkingConfig)
	})

	t.Run("assistant first, empty final assistant dropped", func(t *testing.T) {
		g := translate(t, "assistant_first.json", flash)
		require.Len(t, g.Contents, 2)
		require.Equal(t, "model", g.Contents[0].Role)
		require.Equal(t, "user", g.Contents[1].Role)
	})
}

func ptr[T any](v T) *T { return &v }

// badRequest is a body DecodeMessagesRequest must refuse with a 400 whose message
// contains want.
type badRequest struct {
	name string
	body string
	want string
}

// badRequests lists each kind of bad input; the fuzz test is seeded with them too.
func badRequests() []badRequest {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	const base = `"model":"m","max_tokens":10,`
	toolsAndCall := `"tools":[{"name":"t","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"go"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"t","input":{}}]},`
	return []badRequest{
		{"malformed JSON", `{"model":`, "malformed JSON"},
		{"empty body", ``, "malformed JSON"},
		{"not an object", `[]`, "request body: expected object, got array"},
		{"model wrong type", `{"model":5,"max_tokens":10,` + user + `}`, "model: expected string, got number"},
		{"max_tokens wrong type", `{"model":"m","max_tokens":"10",` + user + `}`, "max_tokens: expected integer, got string"},
		{"max_tokens fractional", `{"model":"m","max_tokens":1.5,` + user + `}`, "max_tokens: expected integer, got number 1.5"},
		{"missing model", `{"max_tokens":10,` + user + `}`, "model: field required"},
		{"missing max_tokens", `{"model":"m",` + user + `}`, "max_tokens: field required"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,` + user + `}`, "max_tokens: must be at least 1"},
		{"empty messages", `{` + base + `"messages":[]}`, "messages: at least one message is required"},
		{"missing messages", `{"model":"m","max_tokens":10}`, "messages: at least one message is required"},
		{"messages wrong type", `{` + base + `"messages":{}}`, "messages: expected array, got object"},
		{"bad role", `{` + base + `"messages":[{"role":"system","content":"x"}]}`, `messages.0.role: must be "user" or "assistant", got "system"`},
		{"role wrong type", `{` + base + `"messages":[{"role":1,"content":"x"}]}`, "messages.role: expected string, got number"},
		{"content wrong type", `{` + base + `"messages":[{"role":"user","content":5}]}`, "messages.0.content: expected string or array"},
		{"content missing", `{` + base + `"messages":[{"role":"user"}]}`, "messages.0.content: field required"},
		{"empty user content", `{` + base + `"messages":[{"role":"user","content":""}]}`, "messages.0: content must not be empty"},
		{"block text wrong type", `{` + base + `"messages":[{"role":"user","content":[{"type":"text","text":5}]}]}`, "messages.0.content.text: expected string, got number"},
		{"block without type", `{` + base + `"messages":[{"role":"user","content":[{"text":"x"}]}]}`, "messages.0.content.0.type: field required"},
		{"unsupported block", `{` + base + `"messages":[{"role":"user","content":[{"type":"search_result","source":"https://x","title":"t","content":[]}]}]}`, `content block type "search_result" is not supported`},
		{"thinking in user turn", `{` + base + `"messages":[{"role":"user","content":[{"type":"thinking","thinking":"x","signature":"s"}]}]}`, `"thinking" blocks are not allowed in user messages`},
		{"tool_result in assistant turn", `{` + base + `"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"a"}]}]}`, `"tool_result" blocks are not allowed in assistant messages`},
		{"url image", `{` + base + `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]}]}`, "messages.0.content.0.source: image URLs are not supported: this gateway never fetches remote URLs"},
		{"url document", `{` + base + `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://example.com/a.pdf"}}]}]}`, "document URLs are not supported"},
		{"file image", `{` + base + `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_1"}}]}]}`, `image source type "file" is not supported`},
		{"image bad media type", `{` + base + `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/bmp","data":"AA=="}}]}]}`, "source.media_type: must be one of"},
		{"image source wrong type", `{` + base + `"messages":[{"role":"user","content":[{"type":"image","source":"AA=="}]}]}`, "messages.0.content.0.source: expected object"},
		{"image data wrong type", `{` + base + `"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":7}}]}]}`, "messages.0.content.0.source.data: expected string, got number"},
		{"document not pdf", `{` + base + `"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/msword","data":"AA=="}}]}]}`, `document media type "application/msword" is not supported`},
		{"tool_use input not object", `{` + base + `"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"t","input":[1]}]}]}`, "messages.1.content.0.input: expected object"},
		{"unknown tool_use_id", `{` + base + toolsAndCall + `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_2","content":"r"}]}]}`, "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_2"},
		{"tool_result without tool_use", `{` + base + `"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}]}]}`, "unexpected `tool_use_id`"},
		{"tool_result answers an older turn", `{` + base + toolsAndCall + `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}]},{"role":"assistant","content":"ok"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}]}]}`, "messages.4.content.0: unexpected `tool_use_id`"},
		{"unanswered tool_use", `{` + base + toolsAndCall + `{"role":"user","content":"never mind"}]}`, "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"},
		{"answered twice", `{` + base + toolsAndCall + `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1"},{"type":"tool_result","tool_use_id":"toolu_1"}]}]}`, "more than one `tool_result` block answers"},
		{"duplicate tool_use id", `{` + base + `"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"t"},{"type":"tool_use","id":"a","name":"t"}]}]}`, "`tool_use` ids must be unique"},
		{"tool_result content wrong type", `{` + base + toolsAndCall + `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":5}]}]}`, "messages.2.content.0.content: expected string or array"},
		{"too many stop sequences", `{` + base + `"stop_sequences":["a","b","c","d","e","f"],` + user + `}`, "stop_sequences: at most 5 stop sequences"},
		{"empty stop sequence", `{` + base + `"stop_sequences":[""],` + user + `}`, "stop_sequences.0: must not be empty"},
		{"stop sequences wrong type", `{` + base + `"stop_sequences":"a",` + user + `}`, "stop_sequences: expected array, got string"},
		{"web search tool", `{` + base + `"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}],` + user + `}`, `tools.0: server tool "web_search" (type "web_search_20250305") is not supported`},
		{"computer use tool", `{` + base + `"tools":[{"type":"computer_20250124","name":"computer","display_width_px":1024,"display_height_px":768}],` + user + `}`, `server tool "computer"`},
		{"bad tool name", `{` + base + `"tools":[{"name":"get weather","input_schema":{"type":"object"}}],` + user + `}`, "tools.0.name: must match ^[a-zA-Z0-9_-]{1,64}$"},
		{"tool name too long", `{` + base + `"tools":[{"name":"` + strings.Repeat("a", 65) + `","input_schema":{"type":"object"}}],` + user + `}`, "tools.0.name: must match"},
		{"duplicate tool names", `{` + base + `"tools":[{"name":"t","input_schema":{"type":"object"}},{"name":"t","input_schema":{"type":"object"}}],` + user + `}`, "tool names must be unique"},
		{"missing input_schema", `{` + base + `"tools":[{"name":"t"}],` + user + `}`, "tools.0.input_schema: expected a JSON Schema object"},
		{"tool_choice unknown tool", `{` + base + `"tools":[{"name":"t","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"u"},` + user + `}`, `tool_choice.name: no tool named "u"`},
		{"tool_choice any without tools", `{` + base + `"tool_choice":{"type":"any"},` + user + `}`, `tool_choice: type "any" requires tools`},
		{"tool_choice bad type", `{` + base + `"tool_choice":{"type":"required"},` + user + `}`, "tool_choice.type: must be one of auto, any, tool, none"},
		{"temperature out of range", `{` + base + `"temperature":1.5,` + user + `}`, "temperature: must be between 0 and 1"},
		{"top_p out of range", `{` + base + `"top_p":-0.1,` + user + `}`, "top_p: must be between 0 and 1"},
		{"negative top_k", `{` + base + `"top_k":-1,` + user + `}`, "top_k: must be at least 0"},
		{"thinking budget too small", `{` + base + `"thinking":{"type":"enabled","budget_tokens":512},` + user + `}`, "thinking.budget_tokens: must be at least 1024"},
		{"thinking budget missing", `{` + base + `"thinking":{"type":"enabled"},` + user + `}`, "thinking.budget_tokens: field required"},
		{"thinking bad type", `{` + base + `"thinking":{"type":"on"},` + user + `}`, "thinking.type: must be"},
		{"system wrong type", `{` + base + `"system":5,` + user + `}`, "system: expected string or array"},
		{"system block not text", `{` + base + `"system":[{"type":"image"}],` + user + `}`, `system.0.type: system blocks must be of type "text"`},
		{"metadata wrong type", `{` + base + `"metadata":"x",` + user + `}`, "metadata: expected object, got string"},
		{"stream wrong type", `{` + base + `"stream":"yes",` + user + `}`, "stream: expected boolean, got string"},
	}
}

// TestDecodeErrors feeds each kind of bad input and checks the status, type and message.
func TestDecodeErrors(t *testing.T) {
	for _, tc := range badRequests() {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMessagesRequest([]byte(tc.body))
			requireAPIError(t, err, 400, InvalidRequestError, tc.want)
		})
	}
}

// requireAPIError checks that err is an *Error with the status, type and message, and
// that its body is the Anthropic error JSON.
func requireAPIError(t *testing.T, err error, status int, typ ErrorType, msg string) {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "want *Error, got %T %v", err, err)
	require.Equal(t, status, e.Status())
	require.Equal(t, typ, e.Type)
	require.Contains(t, e.Message, msg)
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(e.Body(), &body))
	require.Equal(t, "error", body.Type)
	require.Equal(t, string(typ), body.Error.Type)
	require.Equal(t, e.Message, body.Error.Message)
}

// TestDecodeAccepts covers inputs that are valid although they look odd.
func TestDecodeAccepts(t *testing.T) {
	cases := []struct {
		name  string
		body  string
		check func(t *testing.T, r *MessagesRequest)
	}{
		{
			name: "nulls are absent values",
			body: `{"model":"m","max_tokens":5,"system":null,"tools":null,"tool_choice":null,"thinking":null,"metadata":null,"messages":[{"role":"user","content":"x"}]}`,
			check: func(t *testing.T, r *MessagesRequest) {
				require.Nil(t, r.System)
				require.Nil(t, r.Thinking)
				require.Nil(t, r.ToolChoice)
			},
		},
		{
			name: "tool_use without input gets an empty object",
			body: `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"t"}]}]}`,
			check: func(t *testing.T, r *MessagesRequest) {
				require.JSONEq(t, `{}`, string(r.Messages[1].Content[0].Input))
			},
		},
		{
			name: "tool_result with no content, auto choice without tools",
			body: `{"model":"m","max_tokens":5,"tool_choice":{"type":"auto"},"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"t","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a"}]}]}`,
			check: func(t *testing.T, r *MessagesRequest) {
				g, err := r.ToGemini(flash)
				require.NoError(t, err)
				require.Nil(t, g.ToolConfig, "nothing to configure without tools")
				require.JSONEq(t, `{"result":""}`, string(g.Contents[2].Parts[0].FunctionResponse.Response))
			},
		},
		{
			name: "metadata user id kept",
			body: `{"model":"m","max_tokens":5,"metadata":{"user_id":"u-1"},"messages":[{"role":"user","content":"x"}]}`,
			check: func(t *testing.T, r *MessagesRequest) {
				require.Equal(t, "u-1", r.UserID)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeMessagesRequest([]byte(tc.body))
			require.NoError(t, err)
			tc.check(t, r)
		})
	}
}

func TestCountTokens(t *testing.T) {
	t.Run("whole request counted, max_tokens not required", func(t *testing.T) {
		body := `{"model":"claude-sonnet-4-5","system":"be brief","tools":[{"name":"t","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"hello"}]}`
		r, err := DecodeCountTokensRequest([]byte(body))
		require.NoError(t, err)
		require.Equal(t, "claude-sonnet-4-5", r.Model)
		g, err := r.ToGemini(flash)
		require.NoError(t, err)
		require.Nil(t, g.Contents, "contents and generateContentRequest are exclusive")
		gr := g.GenerateContentRequest
		require.Equal(t, "be brief", gr.SystemInstruction.Parts[0].Text)
		require.Equal(t, "t", gr.Tools[0].FunctionDeclarations[0].Name)
		require.Nil(t, gr.GenerationConfig)
		require.Equal(t, []gemini.Content{{Role: "user", Parts: []gemini.Part{{Text: "hello"}}}}, gr.Contents)
	})
	t.Run("same validation", func(t *testing.T) {
		_, err := DecodeCountTokensRequest([]byte(`{"messages":[{"role":"user","content":"x"}]}`))
		requireAPIError(t, err, 400, InvalidRequestError, "model: field required")
		_, err = DecodeCountTokensRequest([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"http://x"}}]}]}`))
		requireAPIError(t, err, 400, InvalidRequestError, "never fetches remote URLs")
	})
	t.Run("response", func(t *testing.T) {
		require.Equal(t, `{"input_tokens":1234}`, string(CountTokensResponse(1234)))
		require.Equal(t, `{"input_tokens":0}`, string(CountTokensResponse(-3)))
	})
}
