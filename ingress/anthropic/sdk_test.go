package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	sdk "github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// These tests put the official Anthropic Go SDK on the other side of the wire: it
// decodes what this package writes and sends what this package must read.

// sdkClient returns an SDK client talking to handler, without retries.
func sdkClient(t *testing.T, handler http.HandlerFunc) sdk.Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return sdk.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("test-key"), option.WithMaxRetries(0))
}

func serveJSON(status int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func serveSSE(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(body)
	}
}

var minimalParams = sdk.MessageNewParams{
	Model:     "claude-sonnet-4-5",
	MaxTokens: 100,
	Messages:  []sdk.MessageParam{sdk.NewUserMessage(sdk.NewTextBlock("hi"))},
}

// requireSameMessage compares the SDK's view of a message with this package's.
func requireSameMessage(t *testing.T, want *Message, got *sdk.Message) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Model, string(got.Model))
	require.Equal(t, "assistant", string(got.Role))
	require.Equal(t, string(want.StopReason), string(got.StopReason))
	require.Equal(t, want.StopSequence, got.StopSequence)
	require.Equal(t, want.Usage.InputTokens, got.Usage.InputTokens)
	require.Equal(t, want.Usage.OutputTokens, got.Usage.OutputTokens)
	require.Equal(t, want.Usage.CacheReadInputTokens, got.Usage.CacheReadInputTokens)
	require.Equal(t, want.Usage.CacheCreationInputTokens, got.Usage.CacheCreationInputTokens)
	require.Len(t, got.Content, len(want.Content))
	for i, w := range want.Content {
		g := got.Content[i]
		require.Equal(t, w.Type, g.Type, "block %d", i)
		switch w.Type {
		case "text":
			require.Equal(t, w.Text, g.Text, "block %d", i)
		case "thinking":
			require.Equal(t, w.Thinking, g.Thinking, "block %d", i)
			require.Equal(t, w.Signature, g.Signature, "block %d", i)
		case "tool_use":
			require.Equal(t, w.ID, g.ID, "block %d", i)
			require.Equal(t, w.Name, g.Name, "block %d", i)
			require.JSONEq(t, string(w.Input), string(g.Input), "block %d", i)
		}
	}
}

// TestSDKReadsMessage serves each translated response to the SDK's Messages.New.
func TestSDKReadsMessage(t *testing.T) {
	for _, name := range responseCases {
		t.Run(name, func(t *testing.T) {
			want := FromGemini(readGeminiResponse(t, name), testMeta)
			body, err := json.Marshal(want)
			require.NoError(t, err)
			client := sdkClient(t, serveJSON(200, body))
			got, err := client.Messages.New(context.Background(), minimalParams)
			require.NoError(t, err)
			requireSameMessage(t, want, got)
		})
	}
}

// mergeChunks folds a Gemini stream into the one response generateContent would have
// returned: all parts in order, the last finishReason and the last usage.
func mergeChunks(chunks []*gemini.GenerateContentResponse) *gemini.GenerateContentResponse {
	merged := &gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{Content: gemini.Content{Role: "model"}}}}
	c := &merged.Candidates[0]
	for _, ch := range chunks {
		if ch.UsageMetadata != nil {
			merged.UsageMetadata = ch.UsageMetadata
		}
		if ch.PromptFeedback != nil {
			merged.PromptFeedback = ch.PromptFeedback
		}
		if len(ch.Candidates) == 0 {
			continue
		}
		c.Content.Parts = append(c.Content.Parts, ch.Candidates[0].Content.Parts...)
		if ch.Candidates[0].FinishReason != "" {
			c.FinishReason = ch.Candidates[0].FinishReason
		}
	}
	return merged
}

// accumulateSDK streams body to the SDK and accumulates the events into a message.
func accumulateSDK(t *testing.T, body []byte) *sdk.Message {
	t.Helper()
	client := sdkClient(t, serveSSE(body))
	stream := client.Messages.NewStreaming(context.Background(), minimalParams)
	defer func() { require.NoError(t, stream.Close()) }()
	var acc sdk.Message
	for stream.Next() {
		require.NoError(t, acc.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	return &acc
}

// TestSDKAccumulatesStream streams each translated Gemini stream to the SDK, with and
// without an early Start, and checks that the accumulated message equals the
// non-streaming translation of the same parts.
func TestSDKAccumulatesStream(t *testing.T) {
	for _, name := range streamCases {
		for _, early := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: "/early_start"}[early], func(t *testing.T) {
				chunks := parseGeminiSSE(readTestdata(t, "streams/"+name+".sse"))
				got := accumulateSDK(t, translateStream(t, testMeta, early, chunks))
				requireSameMessage(t, FromGemini(mergeChunks(chunks), testMeta), got)
			})
		}
	}

	t.Run("explicit tool input and usage", func(t *testing.T) {
		chunks := parseGeminiSSE(readTestdata(t, "streams/parallel_tools.sse"))
		got := accumulateSDK(t, translateStream(t, testMeta, true, chunks))
		require.Len(t, got.Content, 3)
		require.Equal(t, "Let me run two things.", got.Content[0].Text)
		require.Equal(t, "fc_1", got.Content[1].ID)
		require.JSONEq(t, `{"path":"a.txt"}`, string(got.Content[1].Input))
		require.Equal(t, "toolu_01TEST_1", got.Content[2].ID)
		require.JSONEq(t, `{"path":"b.txt"}`, string(got.Content[2].Input))
		var input struct{ Path string }
		require.NoError(t, json.Unmarshal(got.Content[2].Input, &input))
		require.Equal(t, "b.txt", input.Path)
		require.Equal(t, sdk.StopReasonToolUse, got.StopReason)
		require.Equal(t, int64(56), got.Usage.InputTokens, "300 prompt - 256 cached + 12 tool-use prompt")
		require.Equal(t, int64(256), got.Usage.CacheReadInputTokens)
		require.Equal(t, int64(30), got.Usage.OutputTokens)
	})

	t.Run("explicit thinking", func(t *testing.T) {
		chunks := parseGeminiSSE(readTestdata(t, "streams/tool_use.sse"))
		got := accumulateSDK(t, translateStream(t, testMeta, false, chunks))
		require.Equal(t, "Need to list files first.", got.Content[0].Thinking)
		require.Equal(t, "CikBcallSig", got.Content[0].Signature)
		require.JSONEq(t, `{"command":"ls -la /tmp","description":"List \"tmp\""}`, string(got.Content[1].Input))
		require.Equal(t, int64(38), got.Usage.OutputTokens, "18 candidates + 20 thoughts")
	})
}

// TestSDKRequestsDecode sends requests built with the SDK's own param types and decodes
// the bytes it put on the wire.
func TestSDKRequestsDecode(t *testing.T) {
	params := sdk.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 4096,
		System:    []sdk.TextBlockParam{{Text: "You are helpful.", CacheControl: sdk.NewCacheControlEphemeralParam()}},
		Messages: []sdk.MessageParam{
			sdk.NewUserMessage(sdk.NewTextBlock("What's in this picture, and the weather in Paris?"), sdk.NewImageBlockBase64("image/png", "iVBORw0KGgo=")),
			sdk.NewAssistantMessage(
				sdk.NewThinkingBlock("sig-from-gemini", "Look at the image, then call the tool."),
				sdk.NewTextBlock("A cat. Checking the weather."),
				sdk.NewToolUseBlock("toolu_1", map[string]any{"city": "Paris"}, "get_weather"),
			),
			sdk.NewUserMessage(sdk.NewToolResultBlock("toolu_1", "sunny, 21°C", false)),
		},
		Tools: []sdk.ToolUnionParam{{OfTool: &sdk.ToolParam{
			Name:        "get_weather",
			Description: sdk.String("Weather for a city."),
			InputSchema: sdk.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}, Required: []string{"city"}},
		}}},
		ToolChoice:    sdk.ToolChoiceUnionParam{OfAuto: &sdk.ToolChoiceAutoParam{DisableParallelToolUse: sdk.Bool(true)}},
		Thinking:      sdk.ThinkingConfigParamOfEnabled(2048),
		StopSequences: []string{"END"},
		Temperature:   sdk.Float(1),
		Metadata:      sdk.MetadataParam{UserID: sdk.String("user-7")},
	}

	var captured []byte
	reply, err := json.Marshal(FromGemini(readGeminiResponse(t, "text"), testMeta))
	require.NoError(t, err)
	client := sdkClient(t, func(w http.ResponseWriter, r *http.Request) {
		captured, _ = io.ReadAll(r.Body)
		serveJSON(200, reply)(w, r)
	})
	_, err = client.Messages.New(context.Background(), params)
	require.NoError(t, err)

	req, err := DecodeMessagesRequest(captured)
	require.NoError(t, err, "body: %s", captured)
	require.Equal(t, "claude-sonnet-4-5", req.Model)
	require.Equal(t, "user-7", req.UserID)
	require.True(t, req.ToolChoice.DisableParallelToolUse)

	g, err := req.ToGemini(flash)
	require.NoError(t, err)
	require.Equal(t, "You are helpful.", g.SystemInstruction.Parts[0].Text)
	require.Equal(t, &gemini.Blob{MimeType: "image/png", Data: "iVBORw0KGgo="}, g.Contents[0].Parts[1].InlineData)
	model := g.Contents[1].Parts
	require.Equal(t, gemini.Part{Text: "Look at the image, then call the tool.", Thought: true}, model[0])
	require.Equal(t, gemini.Part{Text: "A cat. Checking the weather.", ThoughtSignature: "sig-from-gemini"}, model[1])
	require.Equal(t, "get_weather", model[2].FunctionCall.Name)
	require.JSONEq(t, `{"city":"Paris"}`, string(model[2].FunctionCall.Args))
	fr := g.Contents[2].Parts[0].FunctionResponse
	require.Equal(t, "get_weather", fr.Name)
	require.JSONEq(t, `{"result":"sunny, 21°C"}`, string(fr.Response))
	require.JSONEq(t, `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`, string(g.Tools[0].FunctionDeclarations[0].ParametersJSONSchema))
	require.Equal(t, &gemini.ThinkingConfig{ThinkingBudget: ptr(2048), IncludeThoughts: true}, g.GenerationConfig.ThinkingConfig)
	require.Equal(t, []string{"END"}, g.GenerationConfig.StopSequences)

	t.Run("streaming request sets stream", func(t *testing.T) {
		client := sdkClient(t, func(w http.ResponseWriter, r *http.Request) {
			captured, _ = io.ReadAll(r.Body)
			serveSSE(translateStream(t, testMeta, false, nil))(w, r)
		})
		stream := client.Messages.NewStreaming(context.Background(), minimalParams)
		for stream.Next() {
		}
		require.NoError(t, stream.Err())
		req, err := DecodeMessagesRequest(captured)
		require.NoError(t, err)
		require.True(t, req.Stream)
	})

	t.Run("count tokens", func(t *testing.T) {
		client := sdkClient(t, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			req, err := DecodeCountTokensRequest(body)
			if err != nil {
				var e *Error
				errors.As(err, &e)
				serveJSON(e.Status(), e.Body())(w, r)
				return
			}
			g, err := req.ToGemini(flash)
			require.NoError(t, err)
			require.Equal(t, "count me", g.GenerateContentRequest.SystemInstruction.Parts[0].Text)
			serveJSON(200, CountTokensResponse(321))(w, r)
		})
		res, err := client.Messages.CountTokens(context.Background(), sdk.MessageCountTokensParams{
			Model:    "claude-sonnet-4-5",
			System:   sdk.MessageCountTokensParamsSystemUnion{OfString: sdk.String("count me")},
			Messages: []sdk.MessageParam{sdk.NewUserMessage(sdk.NewTextBlock("hello"))},
		})
		require.NoError(t, err)
		require.Equal(t, int64(321), res.InputTokens)
	})
}

// TestSDKErrors checks that the SDK recognises the status and type of each error, both
// as a response and as a stream error event.
func TestSDKErrors(t *testing.T) {
	_, decodeErr := DecodeMessagesRequest([]byte(`{"model":"m","messages":[]}`))
	var invalid *Error
	require.True(t, errors.As(decodeErr, &invalid))
	cases := []struct {
		name   string
		err    *Error
		status int
		typ    sdk.ErrorType
	}{
		{name: "invalid request", err: invalid, status: 400, typ: sdk.ErrorTypeInvalidRequestError},
		{name: "rate limit", err: FromGeminiError(429, []byte(quota429)), status: 429, typ: sdk.ErrorTypeRateLimitError},
		{name: "overloaded", err: FromGeminiError(503, []byte(`{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`)), status: 529, typ: sdk.ErrorTypeOverloadedError},
		{name: "authentication", err: NewError(AuthenticationError, "invalid x-api-key"), status: 401, typ: sdk.ErrorTypeAuthenticationError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := sdkClient(t, serveJSON(tc.err.Status(), tc.err.Body()))
			_, err := client.Messages.New(context.Background(), minimalParams)
			var apiErr *sdk.Error
			require.True(t, errors.As(err, &apiErr), "got %T %v", err, err)
			require.Equal(t, tc.status, apiErr.StatusCode)
			require.Equal(t, tc.typ, apiErr.Type())
		})
	}

	t.Run("error event mid-stream", func(t *testing.T) {
		tr := NewStreamTranslator(testMeta)
		body, err := tr.Chunk(&gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{Content: gemini.Content{Parts: []gemini.Part{{Text: "partial"}}}}}})
		require.NoError(t, err)
		body = append(body, Ping()...)
		body = append(body, ErrorEvent(FromGeminiError(503, nil))...)
		client := sdkClient(t, serveSSE(body))
		stream := client.Messages.NewStreaming(context.Background(), minimalParams)
		var acc sdk.Message
		for stream.Next() {
			require.NoError(t, acc.Accumulate(stream.Current()))
		}
		var apiErr *sdk.Error
		require.True(t, errors.As(stream.Err(), &apiErr), "got %T %v", stream.Err(), stream.Err())
		require.Equal(t, sdk.ErrorTypeOverloadedError, apiErr.Type())
		require.Equal(t, "partial", acc.Content[0].Text)
	})
}
