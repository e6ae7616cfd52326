package sdkcompat

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/ingress/openai"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// A made-up key of the real shape, used to check redaction.
const fakeKey = "AIzaSyA1b2C3d4E5f6G7h8I9j0K_lMnOpQrStUv"

// testVectors are the Gemini vectors the embedding answers are built from: the first
// has unit length already, the second does not (a cut-down vector).
var testVectors = []gemini.ContentEmbedding{
	{Values: []float32{0.6, 0.8, 0}},
	{Values: []float32{3, 0, 4}},
}

// fakeGateway is a minimal stand-in for the ingress handler: it decodes the request,
// translates it, records the Gemini body, and answers with a canned Gemini response.
type fakeGateway struct {
	opts    openai.ToGeminiOptions
	answer  string // testdata file: .gemini.json (one response) or .gemini.jsonl (stream)
	request chan *gemini.GenerateContentRequest
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, openai.NewError(500, openai.TypeServer, "", "", err.Error()))
		return
	}
	req, err := openai.DecodeChatRequest(body)
	if err == nil {
		var out *gemini.GenerateContentRequest
		out, err = req.ToGemini(g.opts)
		if err == nil {
			g.request <- out
		}
	}
	var e *openai.Error
	if errors.As(err, &e) {
		writeError(w, e)
		return
	}
	meta := openai.ResponseMeta{ID: "chatcmpl-sdk1", Created: 1700000000, Model: req.Model}
	raw, err := os.ReadFile(filepath.Join("..", "testdata", g.answer))
	if err != nil {
		writeError(w, openai.NewError(500, openai.TypeServer, "", "", err.Error()))
		return
	}
	if req.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		tr := openai.NewStreamTranslator(meta, req.IncludeUsage())
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			var chunk gemini.GenerateContentResponse
			if json.Unmarshal([]byte(line), &chunk) != nil {
				continue
			}
			out, _ := tr.Chunk(&chunk)
			_, _ = w.Write(out)
		}
		_, _ = w.Write(tr.Finish())
		return
	}
	var resp gemini.GenerateContentResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		writeError(w, openai.NewError(500, openai.TypeServer, "", "", err.Error()))
		return
	}
	b, _ := json.Marshal(openai.FromGemini(&resp, meta))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// writeError answers with an *openai.Error the way the ingress does.
func writeError(w http.ResponseWriter, e *openai.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status())
	_, _ = w.Write(e.Body())
}

// sdkClient is an OpenAI SDK client pointed at handler, without retries.
func sdkClient(t *testing.T, handler http.Handler) sdk.Client {
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return sdk.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("gca-test"), option.WithMaxRetries(0))
}

func newFakeGateway(t *testing.T, answer string, opts openai.ToGeminiOptions) *fakeGateway {
	return &fakeGateway{opts: opts, answer: answer, request: make(chan *gemini.GenerateContentRequest, 4)}
}

// weatherTool is the tool the SDK tests declare.
func weatherTool() sdk.ChatCompletionToolUnionParam {
	return sdk.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:        "get_weather",
		Description: sdk.String("Current weather."),
		Parameters: shared.FunctionParameters{
			"type":       "object",
			"properties": map[string]any{"city": map[string]any{"type": "string"}, "unit": map[string]any{"type": "string"}},
			"required":   []string{"city"},
		},
	})
}

// TestSDKToolRoundTrip runs two turns of a tool conversation through the SDK: the
// model calls tools, the client answers with tool messages built by the SDK helpers.
func TestSDKToolRoundTrip(t *testing.T) {
	ctx := context.Background()
	gw := newFakeGateway(t, "response/tool_calls.gemini.json", openai.ToGeminiOptions{MissingThoughtSignature: "skip_thought_signature_validator"})
	client := sdkClient(t, gw)

	params := sdk.ChatCompletionNewParams{
		Model: "gpt-4o",
		Messages: []sdk.ChatCompletionMessageParamUnion{
			sdk.SystemMessage("Use tools."),
			sdk.UserMessage([]sdk.ChatCompletionContentPartUnionParam{
				sdk.TextContentPart("Weather here?"),
				sdk.ImageContentPart(sdk.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64,iVBORw0KGgo=", Detail: "low"}),
			}),
		},
		Tools:               []sdk.ChatCompletionToolUnionParam{weatherTool()},
		ToolChoice:          sdk.ToolChoiceOptionFunctionToolChoice(sdk.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"}),
		MaxCompletionTokens: sdk.Int(100),
		ReasoningEffort:     shared.ReasoningEffortLow,
		Stop:                sdk.ChatCompletionNewParamsStopUnion{OfStringArray: []string{"END"}},
		Seed:                sdk.Int(7),
		Temperature:         sdk.Float(0.2),
		N:                   sdk.Int(1),
		User:                sdk.String("u-1"),
		Store:               sdk.Bool(false),
		Metadata:            shared.Metadata{"k": "v"},
		ParallelToolCalls:   sdk.Bool(true),
	}
	completion, err := client.Chat.Completions.New(ctx, params)
	require.NoError(t, err)

	// What Gemini was asked.
	g1 := <-gw.request
	require.Equal(t, "Use tools.", g1.SystemInstruction.Parts[0].Text)
	require.Equal(t, "image/png", g1.Contents[0].Parts[1].InlineData.MimeType)
	require.Equal(t, &gemini.FunctionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{"get_weather"}}, g1.ToolConfig.FunctionCallingConfig)
	require.Equal(t, 100, *g1.GenerationConfig.MaxOutputTokens)
	require.Equal(t, openai.BudgetLow, *g1.GenerationConfig.ThinkingConfig.ThinkingBudget)
	require.Equal(t, []string{"END"}, g1.GenerationConfig.StopSequences)
	require.Equal(t, int64(7), *g1.GenerationConfig.Seed)
	require.Equal(t, 0.2, *g1.GenerationConfig.Temperature)

	// What the SDK read back.
	require.Equal(t, "chatcmpl-sdk1", completion.ID)
	require.Equal(t, "gpt-4o", completion.Model, "the client's model name is reported")
	require.Len(t, completion.Choices, 1)
	choice := completion.Choices[0]
	require.Equal(t, "tool_calls", choice.FinishReason)
	require.Equal(t, "Checking both cities.", choice.Message.Content)
	require.Len(t, choice.Message.ToolCalls, 3)
	call := choice.Message.ToolCalls[0]
	require.Equal(t, "call_sdk1_0_0", call.ID)
	require.Equal(t, "function", call.Type)
	require.Equal(t, "get_weather", call.Function.Name)
	require.JSONEq(t, `{"city":"Paris","unit":"c"}`, call.Function.Arguments)
	require.Contains(t, call.RawJSON(), `"extra_content":{"google":{"thought_signature":"c2lnbmF0dXJlLWE="}}`)
	require.Equal(t, "gemini-call-7", choice.Message.ToolCalls[1].ID)
	require.Equal(t, int64(80), completion.Usage.PromptTokens)
	require.Equal(t, int64(40), completion.Usage.CompletionTokens)
	require.Equal(t, int64(120), completion.Usage.TotalTokens)

	// Second turn: the SDK's own helpers echo the assistant message and answer the calls.
	gw.answer = "response/text.gemini.json"
	params.Messages = append(params.Messages, choice.Message.ToParam())
	for i, c := range choice.Message.ToolCalls {
		params.Messages = append(params.Messages, sdk.ToolMessage([]string{`{"temp":21}`, "rainy", "12:00"}[i], c.ID))
	}
	completion, err = client.Chat.Completions.New(ctx, params)
	require.NoError(t, err)
	require.Equal(t, "Hello, world!", completion.Choices[0].Message.Content)
	require.Equal(t, "stop", completion.Choices[0].FinishReason)

	g2 := <-gw.request
	require.Len(t, g2.Contents, 3, "user, model (text and calls), user (three results)")
	model := g2.Contents[1]
	require.Equal(t, "model", model.Role)
	require.Equal(t, "Checking both cities.", model.Parts[0].Text)
	require.Equal(t, "call_sdk1_0_0", model.Parts[1].FunctionCall.ID)
	require.JSONEq(t, `{"city":"Paris","unit":"c"}`, string(model.Parts[1].FunctionCall.Args))
	// The Go SDK's ToParam drops extra_content, so the signature is lost on the way
	// back; the configured placeholder stands in for it.
	require.Equal(t, "skip_thought_signature_validator", model.Parts[1].ThoughtSignature)
	results := g2.Contents[2].Parts
	require.Len(t, results, 3)
	require.Equal(t, "get_weather", results[1].FunctionResponse.Name)
	require.Equal(t, "gemini-call-7", results[1].FunctionResponse.ID)
	require.JSONEq(t, `{"temp":21}`, string(results[0].FunctionResponse.Response))
	require.JSONEq(t, `{"result":"12:00"}`, string(results[2].FunctionResponse.Response))
}

// TestSDKStreaming reads translated streams with the SDK's stream decoder and its
// accumulator, which rejects chunks that do not fit OpenAI's stream rules.
func TestSDKStreaming(t *testing.T) {
	cases := []struct {
		answer       string
		includeUsage bool
		wantContent  string
		wantCalls    []string
		wantFinish   string
		wantTotal    int64
	}{
		{"stream/text.gemini.jsonl", false, "Hello, \"world\"\n— ünïcode ✓!", nil, "stop", 0},
		{"stream/text.gemini.jsonl", true, "Hello, \"world\"\n— ünïcode ✓!", nil, "stop", 14},
		{"stream/tool_call.gemini.jsonl", true, "Let me check.", []string{`{"city":"Paris"}`, `{"city":"London","unit":"c"}`, `{}`}, "tool_calls", 65},
		{"stream/thinking.gemini.jsonl", true, "Euclid's argument: multiply and add one.", nil, "stop", 169},
	}
	for _, tc := range cases {
		t.Run(tc.answer, func(t *testing.T) {
			gw := newFakeGateway(t, tc.answer, openai.ToGeminiOptions{})
			client := sdkClient(t, gw)
			params := sdk.ChatCompletionNewParams{
				Model:    "gemini-2.5-flash",
				Messages: []sdk.ChatCompletionMessageParamUnion{sdk.UserMessage("go")},
				Tools:    []sdk.ChatCompletionToolUnionParam{weatherTool()},
			}
			if tc.includeUsage {
				params.StreamOptions = sdk.ChatCompletionStreamOptionsParam{IncludeUsage: sdk.Bool(true)}
			}
			stream := client.Chat.Completions.NewStreaming(context.Background(), params)
			var acc sdk.ChatCompletionAccumulator
			chunks := 0
			for stream.Next() {
				chunk := stream.Current()
				require.Equal(t, "chat.completion.chunk", string(chunk.Object))
				require.Equal(t, "gemini-2.5-flash", chunk.Model)
				require.True(t, acc.AddChunk(chunk), "the accumulator accepts chunk %d", chunks)
				chunks++
			}
			require.NoError(t, stream.Err())
			<-gw.request

			require.Len(t, acc.Choices, 1)
			msg := acc.Choices[0].Message
			require.Equal(t, tc.wantContent, msg.Content)
			require.Equal(t, tc.wantFinish, acc.Choices[0].FinishReason)
			var args []string
			for _, c := range msg.ToolCalls {
				args = append(args, c.Function.Arguments)
				require.NotEmpty(t, c.ID)
			}
			require.Equal(t, tc.wantCalls, args)
			require.Equal(t, tc.wantTotal, acc.Usage.TotalTokens)
		})
	}
}

// TestSDKStreamError checks that an error event after the stream started surfaces as an
// error from the SDK's stream.
func TestSDKStreamError(t *testing.T) {
	client := sdkClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		tr := openai.NewStreamTranslator(openai.ResponseMeta{ID: "chatcmpl-e", Created: 1, Model: "m"}, false)
		out, _ := tr.Chunk(&gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{Content: gemini.Content{Parts: []gemini.Part{{Text: "par"}}}}}})
		_, _ = w.Write(out)
		_, _ = w.Write(openai.ErrorEvent(openai.FromGeminiError(503, []byte(`{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`))))
	}))
	stream := client.Chat.Completions.NewStreaming(context.Background(), sdk.ChatCompletionNewParams{
		Model: "m", Messages: []sdk.ChatCompletionMessageParamUnion{sdk.UserMessage("x")},
	})
	var content string
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			content += c.Delta.Content
		}
	}
	require.Equal(t, "par", content)
	require.Error(t, stream.Err())
	require.Contains(t, stream.Err().Error(), "The model is overloaded.")
}

// TestSDKErrors checks that the SDK turns the package's errors into its own *Error with
// the status, type, code and param intact.
func TestSDKErrors(t *testing.T) {
	quota := `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded for ` + fakeKey + `.","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}`
	client := sdkClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := openai.DecodeChatRequest(body); err != nil {
			writeError(w, err.(*openai.Error))
			return
		}
		writeError(w, openai.FromGeminiError(429, []byte(quota)))
	}))
	ctx := context.Background()

	_, err := client.Chat.Completions.New(ctx, sdk.ChatCompletionNewParams{
		Model: "m", Messages: []sdk.ChatCompletionMessageParamUnion{sdk.UserMessage("x")}, N: sdk.Int(1000),
	})
	var apiErr *sdk.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 400, apiErr.StatusCode)
	require.Equal(t, openai.TypeInvalidRequest, apiErr.Type)
	require.Equal(t, "n", apiErr.Param)
	require.Equal(t, openai.CodeInvalidValue, apiErr.Code)

	_, err = client.Chat.Completions.New(ctx, sdk.ChatCompletionNewParams{
		Model: "m", Messages: []sdk.ChatCompletionMessageParamUnion{sdk.UserMessage("x")},
	})
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 429, apiErr.StatusCode)
	require.Equal(t, openai.TypeRateLimit, apiErr.Type)
	require.Equal(t, openai.CodeInsufficientQuota, apiErr.Code)
	require.Equal(t, "Quota exceeded for [REDACTED].", apiErr.Message)
}

// TestSDKEmbeddings reads translated embeddings, float and base64, with the SDK.
func TestSDKEmbeddings(t *testing.T) {
	client := sdkClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := openai.DecodeEmbeddingRequest(body)
		if err != nil {
			writeError(w, err.(*openai.Error))
			return
		}
		calls := req.ToGeminiEmbed("gemini-embedding-001")
		var vectors []gemini.ContentEmbedding
		if calls.Single != nil {
			vectors = testVectors[:1]
		} else {
			vectors = testVectors[:len(calls.Batches[0].Requests)]
		}
		out, err := openai.FromGeminiEmbed(req, vectors, 11)
		if err != nil {
			writeError(w, err.(*openai.Error))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}))
	for _, format := range []sdk.EmbeddingNewParamsEncodingFormat{sdk.EmbeddingNewParamsEncodingFormatFloat, sdk.EmbeddingNewParamsEncodingFormatBase64} {
		t.Run(string(format), func(t *testing.T) {
			res, err := client.Embeddings.New(context.Background(), sdk.EmbeddingNewParams{
				Model:          "text-embedding-3-small",
				Input:          sdk.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
				EncodingFormat: format,
				Dimensions:     sdk.Int(3),
			})
			require.NoError(t, err)
			require.Equal(t, "text-embedding-3-small", res.Model)
			require.Len(t, res.Data, 2)
			require.InDeltaSlice(t, []float64{0.6, 0.8, 0}, res.Data[0].Embedding, 1e-6)
			require.InDeltaSlice(t, []float64{0.6, 0, 0.8}, res.Data[1].Embedding, 1e-6)
			require.Equal(t, int64(1), res.Data[1].Index)
			require.Equal(t, int64(11), res.Usage.PromptTokens)
		})
	}
	_, err := client.Embeddings.New(context.Background(), sdk.EmbeddingNewParams{
		Model: "m", Input: sdk.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 2}},
	})
	var apiErr *sdk.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 400, apiErr.StatusCode)
	require.Equal(t, openai.CodeUnsupportedValue, apiErr.Code)
}

// TestSDKModels reads the model list with the SDK.
func TestSDKModels(t *testing.T) {
	client := sdkClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openai.ModelList([]gemini.Model{{Name: "models/gemini-2.5-pro"}}, map[string]string{"gpt-4o": "gemini-2.5-pro"}, 1700000000))
	}))
	page, err := client.Models.List(context.Background())
	require.NoError(t, err)
	require.Len(t, page.Data, 2)
	require.Equal(t, "gemini-2.5-pro", page.Data[0].ID)
	require.Equal(t, "google", page.Data[0].OwnedBy)
	require.Equal(t, "gpt-4o", page.Data[1].ID)
	require.Equal(t, int64(1700000000), page.Data[1].Created)
}
