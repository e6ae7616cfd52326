package openai

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// badRequestCases are requests a client can get wrong, each with the error it must
// get back. stage says who finds the problem: DecodeChatRequest or ToGemini.
var badRequestCases = []struct {
	name  string
	body  string
	opts  ToGeminiOptions
	param string
	code  string
	stage string
}{
	// The body itself.
	{"malformed JSON", `{"model":"m","messages":[`, ToGeminiOptions{}, "", "", "decode"},
	{"empty body", ``, ToGeminiOptions{}, "", "", "decode"},
	{"body is an array", `[{"model":"m"}]`, ToGeminiOptions{}, "", CodeInvalidType, "decode"},
	{"trailing garbage", `{"model":"m","messages":[{"role":"user","content":"x"}]} x`, ToGeminiOptions{}, "", "", "decode"},

	// Wrong JSON types, reported with OpenAI's param path including indices.
	{"messages as object", `{"model":"m","messages":{"role":"user"}}`, ToGeminiOptions{}, "messages", CodeInvalidType, "decode"},
	{"message as string", `{"model":"m","messages":[{"role":"user","content":"x"},"hello"]}`, ToGeminiOptions{}, "messages[1]", CodeInvalidType, "decode"},
	{"temperature as string", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"0.5"}`, ToGeminiOptions{}, "temperature", CodeInvalidType, "decode"},
	{"model as number", `{"model":4,"messages":[{"role":"user","content":"x"}]}`, ToGeminiOptions{}, "model", CodeInvalidType, "decode"},
	{"n not an integer", `{"model":"m","messages":[{"role":"user","content":"x"}],"n":2.5}`, ToGeminiOptions{}, "n", CodeInvalidType, "decode"},
	{"n beyond int", `{"model":"m","messages":[{"role":"user","content":"x"}],"n":1e30}`, ToGeminiOptions{}, "n", CodeInvalidType, "decode"},
	{"stream as string", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}`, ToGeminiOptions{}, "stream", CodeInvalidType, "decode"},
	{"include_usage as string", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":"true"}}`, ToGeminiOptions{}, "stream_options.include_usage", CodeInvalidType, "decode"},
	{"content as number", `{"model":"m","messages":[{"role":"user","content":42}]}`, ToGeminiOptions{}, "messages[0].content", CodeInvalidType, "decode"},
	{"content part text as number", `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":7}]}]}`, ToGeminiOptions{}, "messages[1].content[1].text", CodeInvalidType, "decode"},
	{"image_url as string", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:image/png;base64,AA=="}]}]}`, ToGeminiOptions{}, "messages[0].content[0].image_url", CodeInvalidType, "decode"},
	{"tool_calls as object", `{"model":"m","messages":[{"role":"assistant","tool_calls":{}}]}`, ToGeminiOptions{}, "messages[0].tool_calls", CodeInvalidType, "decode"},
	{"arguments as object", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":{"a":1}}}]}]}`, ToGeminiOptions{}, "messages[1].tool_calls[0].function.arguments", CodeInvalidType, "decode"},
	{"tool_call_id as number", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":7,"content":"r"}]}`, ToGeminiOptions{}, "messages[1].tool_call_id", CodeInvalidType, "decode"},
	{"second tool call malformed", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"b","type":"function","function":"f"}]}]}`, ToGeminiOptions{}, "messages[1].tool_calls[1].function", CodeInvalidType, "decode"},
	{"stop as number", `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":5}`, ToGeminiOptions{}, "stop", CodeInvalidType, "decode"},
	{"stop element as number", `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a",5]}`, ToGeminiOptions{}, "stop[1]", CodeInvalidType, "decode"},
	{"tool_choice as number", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":1}`, ToGeminiOptions{}, "tool_choice", CodeInvalidType, "decode"},
	{"tool as string", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":["f"]}`, ToGeminiOptions{}, "tools[0]", CodeInvalidType, "decode"},
	{"tool name as number", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":1}}]}`, ToGeminiOptions{}, "tools[1].function.name", CodeInvalidType, "decode"},
	{"metadata values as numbers", `{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"a":1}}`, ToGeminiOptions{}, "metadata", CodeInvalidType, "decode"},

	// Missing and out-of-range values.
	{"missing model", `{"messages":[{"role":"user","content":"x"}]}`, ToGeminiOptions{}, "model", CodeMissingParameter, "decode"},
	{"missing messages", `{"model":"m"}`, ToGeminiOptions{}, "messages", CodeMissingParameter, "decode"},
	{"empty messages", `{"model":"m","messages":[]}`, ToGeminiOptions{}, "messages", CodeInvalidValue, "decode"},
	{"bad role", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"wizard","content":"x"}]}`, ToGeminiOptions{}, "messages[1].role", CodeInvalidValue, "decode"},
	{"missing role", `{"model":"m","messages":[{"content":"x"}]}`, ToGeminiOptions{}, "messages[0].role", CodeMissingParameter, "decode"},
	{"function role", `{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}`, ToGeminiOptions{}, "messages[0].role", CodeUnsupportedValue, "decode"},
	{"user content null", `{"model":"m","messages":[{"role":"user","content":null}]}`, ToGeminiOptions{}, "messages[0].content", CodeMissingParameter, "decode"},
	{"n 1000", `{"model":"m","messages":[{"role":"user","content":"x"}],"n":1000}`, ToGeminiOptions{}, "n", CodeInvalidValue, "decode"},
	{"n 0", `{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}`, ToGeminiOptions{}, "n", CodeInvalidValue, "decode"},
	{"n above the configured max", `{"model":"m","messages":[{"role":"user","content":"x"}],"n":3}`, ToGeminiOptions{MaxN: 2}, "n", CodeInvalidValue, "togemini"},
	{"temperature above 2", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":2.5}`, ToGeminiOptions{}, "temperature", CodeInvalidValue, "decode"},
	{"top_p above 1", `{"model":"m","messages":[{"role":"user","content":"x"}],"top_p":1.5}`, ToGeminiOptions{}, "top_p", CodeInvalidValue, "decode"},
	{"presence_penalty below -2", `{"model":"m","messages":[{"role":"user","content":"x"}],"presence_penalty":-3}`, ToGeminiOptions{}, "presence_penalty", CodeInvalidValue, "decode"},
	{"max_tokens 0", `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}`, ToGeminiOptions{}, "max_tokens", CodeInvalidValue, "decode"},
	{"max_completion_tokens negative", `{"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":-1}`, ToGeminiOptions{}, "max_completion_tokens", CodeInvalidValue, "decode"},
	{"five stop sequences", `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}`, ToGeminiOptions{}, "stop", CodeInvalidValue, "decode"},
	{"unknown reasoning effort", `{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}`, ToGeminiOptions{}, "reasoning_effort", CodeUnsupportedValue, "decode"},
	{"unknown response format", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}}`, ToGeminiOptions{}, "response_format.type", CodeInvalidValue, "decode"},
	{"json_schema without schema object", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}}`, ToGeminiOptions{}, "response_format.json_schema", CodeMissingParameter, "decode"},
	{"json_schema schema not an object", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":[1]}}}`, ToGeminiOptions{}, "response_format.json_schema.schema", CodeInvalidType, "decode"},

	// Unsupported features.
	{"logprobs true", `{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true}`, ToGeminiOptions{}, "logprobs", CodeUnsupportedParameter, "decode"},
	{"audio output", `{"model":"m","messages":[{"role":"user","content":"x"}],"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"}}`, ToGeminiOptions{}, "audio", CodeUnsupportedParameter, "decode"},
	{"legacy functions", `{"model":"m","messages":[{"role":"user","content":"x"}],"functions":[{"name":"f"}]}`, ToGeminiOptions{}, "functions", CodeUnsupportedParameter, "decode"},
	{"input_audio part", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]}`, ToGeminiOptions{}, "messages[0].content[0].type", CodeUnsupportedValue, "decode"},
	{"file part", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"file","file":{"file_id":"f"}}]}]}`, ToGeminiOptions{}, "messages[0].content[1].type", CodeUnsupportedValue, "decode"},
	{"image in a system message", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`, ToGeminiOptions{}, "messages[0].content[0].type", CodeInvalidValue, "decode"},
	{"part without type", `{"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]}`, ToGeminiOptions{}, "messages[0].content[0].type", CodeMissingParameter, "decode"},

	// Images.
	{"http image URL", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`, ToGeminiOptions{}, "messages[0].content[1].image_url.url", CodeInvalidValue, "decode"},
	{"file image URL", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}`, ToGeminiOptions{}, "messages[0].content[0].image_url.url", CodeInvalidValue, "decode"},
	{"data URL not base64", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,rawbytes"}}]}]}`, ToGeminiOptions{}, "messages[0].content[0].image_url.url", CodeInvalidValue, "decode"},
	{"data URL without MIME type", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,AA=="}}]}]}`, ToGeminiOptions{}, "messages[0].content[0].image_url.url", CodeInvalidValue, "decode"},
	{"image without URL", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, ToGeminiOptions{}, "messages[0].content[0].image_url.url", CodeMissingParameter, "decode"},

	// Tools.
	{"tool name starting with a digit", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"1abc"}}]}`, ToGeminiOptions{}, "tools[0].function.name", CodeInvalidValue, "decode"},
	{"tool name with a space", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"get weather"}}]}`, ToGeminiOptions{}, "tools[0].function.name", CodeInvalidValue, "decode"},
	{"tool name of 65 characters", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"` + strings.Repeat("a", 65) + `"}}]}`, ToGeminiOptions{}, "tools[0].function.name", CodeInvalidValue, "decode"},
	{"duplicate tool names", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]}`, ToGeminiOptions{}, "tools[1].function.name", CodeInvalidValue, "decode"},
	{"custom tool", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"f"}}]}`, ToGeminiOptions{}, "tools[0].type", CodeUnsupportedValue, "decode"},
	{"parameters not an object", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}]}`, ToGeminiOptions{}, "tools[0].function.parameters", CodeInvalidType, "decode"},
	{"tool_choice required without tools", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required"}`, ToGeminiOptions{}, "tool_choice", CodeInvalidValue, "decode"},
	{"tool_choice names an unknown function", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, ToGeminiOptions{}, "tool_choice", CodeInvalidValue, "decode"},
	{"tool_choice unknown string", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"always"}`, ToGeminiOptions{}, "tool_choice", CodeInvalidValue, "decode"},
	{"tool_choice custom", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"custom","custom":{"name":"f"}}}`, ToGeminiOptions{}, "tool_choice.type", CodeUnsupportedValue, "decode"},
	{"unknown tool_call_id", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_2","content":"r"}]}`, ToGeminiOptions{}, "messages[2].tool_call_id", CodeInvalidValue, "decode"},
	{"tool result before any call", `{"model":"m","messages":[{"role":"tool","tool_call_id":"call_1","content":"r"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, ToGeminiOptions{}, "messages[0].tool_call_id", CodeInvalidValue, "decode"},
	{"tool message without tool_call_id", `{"model":"m","messages":[{"role":"tool","content":"r"}]}`, ToGeminiOptions{}, "messages[0].tool_call_id", CodeMissingParameter, "decode"},
	{"tool call without id", `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, ToGeminiOptions{}, "messages[0].tool_calls[0].id", CodeMissingParameter, "decode"},
	{"invalid tool arguments JSON", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"city\": \"Par"}}]},{"role":"tool","tool_call_id":"c","content":"r"}]}`, ToGeminiOptions{}, "messages[1].tool_calls[0].function.arguments", CodeInvalidValue, "togemini"},
	{"tool arguments an array", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1,2]"}}]}]}`, ToGeminiOptions{}, "messages[1].tool_calls[0].function.arguments", CodeInvalidValue, "togemini"},

	// Nothing to send.
	{"only empty messages", `{"model":"m","messages":[{"role":"user","content":""},{"role":"assistant","content":null}]}`, ToGeminiOptions{}, "messages", CodeInvalidValue, "togemini"},
}

// TestBadRequests checks that each bad request gets a 400 invalid_request_error with
// the right param and code, from the right stage, with a well-formed body.
func TestBadRequests(t *testing.T) {
	for _, tc := range badRequestCases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeChatRequest([]byte(tc.body))
			if tc.stage == "decode" {
				require.Error(t, err)
				require.Nil(t, req)
			} else {
				require.NoError(t, err, "decoding should pass; the translation finds this problem")
				var out any
				out, err = req.ToGemini(tc.opts)
				require.Error(t, err)
				require.Nil(t, out)
			}
			e := requireClientError(t, err)
			require.Equal(t, 400, e.Status())
			require.Equal(t, TypeInvalidRequest, e.Type)
			require.Equal(t, tc.param, e.Param)
			require.Equal(t, tc.code, e.Code)
			if tc.param != "" {
				require.Contains(t, e.Message, tc.param, "the message names the field")
			}
		})
	}
}

// requireClientError checks that err is an *Error with a 4xx status whose body is the
// OpenAI error object with the same fields, and returns it.
func requireClientError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "error is %T, not *Error", err)
	require.GreaterOrEqual(t, e.Status(), 400)
	require.Less(t, e.Status(), 500)
	requireErrorBody(t, e)
	return e
}

// requireErrorBody checks that e's body is exactly the OpenAI error object.
func requireErrorBody(t testing.TB, e *Error) {
	t.Helper()
	var body struct {
		Error map[string]*string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(e.Body(), &body), "body %s", e.Body())
	require.Len(t, body.Error, 4, "message, type, param, code and nothing else")
	require.NotNil(t, body.Error["message"])
	require.NotEmpty(t, *body.Error["message"])
	require.Equal(t, e.Message, *body.Error["message"])
	require.Equal(t, e.Type, *body.Error["type"])
	for key, want := range map[string]string{"param": e.Param, "code": e.Code} {
		got, ok := body.Error[key]
		require.True(t, ok, "%s is present, as null when empty", key)
		if want == "" {
			require.Nil(t, got)
		} else {
			require.Equal(t, want, *got)
		}
	}
}

// TestDecodeAcceptsWhatSDKsSend checks lenient inputs that real clients produce.
func TestDecodeAcceptsWhatSDKsSend(t *testing.T) {
	cases := []struct{ name, body string }{
		{"unknown fields", `{"model":"m","messages":[{"role":"user","content":"x","future":1}],"service_tier":"auto","prediction":{"type":"content"},"web_search_options":{}}`},
		{"nulls for optional fields", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":null,"stop":null,"tools":null,"tool_choice":null,"response_format":null,"n":null,"logprobs":null}`},
		{"logprobs false", `{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":false}`},
		{"assistant with null content and tool calls", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"ok"}]}`},
		{"refusal part in assistant history", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]},{"role":"user","content":"y"}]}`},
		{"tool_choice none without tools", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"none"}`},
		{"text modality", `{"model":"m","messages":[{"role":"user","content":"x"}],"modalities":["text"]}`},
		{"data URL with parameters", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/webp;name=a.webp;base64,UklGRg=="}}]}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeChatRequest([]byte(tc.body))
			require.NoError(t, err)
			_, err = req.ToGemini(ToGeminiOptions{})
			require.NoError(t, err)
		})
	}
}
