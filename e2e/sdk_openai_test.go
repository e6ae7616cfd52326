//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

// openAIChatModel is an alias: the row must record both names.
const (
	openAIChatModel   = "gpt-4o-mini"
	openAIMappedModel = "gemini-2.5-flash"
	openAIEmbedModel  = "text-embedding-3-small"
	openAIEmbedMapped = "gemini-embedding-001"
)

// TestSDKOpenAI drives the OpenAI surface with github.com/openai/openai-go/v3.
func TestSDKOpenAI(t *testing.T) {
	t.Parallel()
	env := startSDKEnv(t)
	// No SDK retries: every case must see the gateway's first answer.
	client := openai.NewClient(option.WithBaseURL(env.URL(0)+"/v1/"), option.WithAPIKey(env.Token), option.WithMaxRetries(0))
	ctx := context.Background()

	chatParams := func() openai.ChatCompletionNewParams {
		return openai.ChatCompletionNewParams{
			Model: openAIChatModel,
			Messages: []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage("You are terse."),
				openai.UserMessage(sdkPrompt),
			},
		}
	}
	// requireUsage checks DESIGN §3's arithmetic: completion = candidates + thoughts,
	// with the thoughts in completion_tokens_details.reasoning_tokens.
	requireUsage := func(t *testing.T, u openai.CompletionUsage) {
		t.Helper()
		require.Positive(t, u.PromptTokens)
		require.Positive(t, u.CompletionTokensDetails.ReasoningTokens, "2.5 models think by default in the simulator")
		require.Greater(t, u.CompletionTokens, u.CompletionTokensDetails.ReasoningTokens, "completion = candidates + thoughts")
		require.Equal(t, u.PromptTokens+u.CompletionTokens, u.TotalTokens)
	}
	// chatRow is the row expected for a chat completion with usage u.
	chatRow := func(stream bool, u openai.CompletionUsage) sdkRow {
		r := okRow(env, schemas.ClientOpenAI, "/v1/chat/completions", openAIMappedModel, openAIChatModel, stream)
		r.InputTokens, r.PromptTokens = uint64(u.PromptTokens), uint64(u.PromptTokens)
		r.OutputTokens, r.TotalTokens = uint64(u.CompletionTokens), uint64(u.TotalTokens)
		r.ThoughtsTokens = uint64(u.CompletionTokensDetails.ReasoningTokens)
		r.CandidatesTokens = r.OutputTokens - r.ThoughtsTokens
		return r
	}

	t.Run("ChatAndStream", func(t *testing.T) {
		t.Parallel()
		var httpResp *http.Response
		res, err := client.Chat.Completions.New(ctx, chatParams(), option.WithResponseInto(&httpResp))
		require.NoError(t, err)
		require.Len(t, res.Choices, 1)
		text := res.Choices[0].Message.Content
		require.True(t, strings.HasPrefix(text, "Simulated answer from "+openAIMappedModel+" to: "+sdkPrompt), text)
		require.Equal(t, "stop", res.Choices[0].FinishReason)
		require.Equal(t, openAIChatModel, res.Model, "the answer names the model the client asked for")
		requireUsage(t, res.Usage)
		want := chatRow(false, res.Usage)
		row := readSDKRow(t, env, httpResp.Header.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)

		// The same request streamed must add up to the same answer and usage.
		params := chatParams()
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		var streamResp *http.Response
		stream := client.Chat.Completions.NewStreaming(ctx, params, option.WithResponseInto(&streamResp))
		var acc openai.ChatCompletionAccumulator
		chunks, usageChunks := 0, 0
		for stream.Next() {
			chunk := stream.Current()
			require.True(t, acc.AddChunk(chunk))
			chunks++
			if chunk.JSON.Usage.Valid() && chunk.Usage.TotalTokens > 0 {
				usageChunks++
				require.Empty(t, chunk.Choices, "the usage chunk has no choices")
			}
		}
		require.NoError(t, stream.Err())
		require.NoError(t, stream.Close())
		require.GreaterOrEqual(t, chunks, sdkChunks, "the answer came in pieces")
		require.Equal(t, 1, usageChunks, "include_usage gives one final usage chunk")
		require.Len(t, acc.Choices, 1)
		require.Equal(t, text, acc.Choices[0].Message.Content)
		require.Equal(t, "stop", acc.Choices[0].FinishReason)
		require.Equal(t, res.Usage.PromptTokens, acc.Usage.PromptTokens)
		require.Equal(t, res.Usage.CompletionTokens, acc.Usage.CompletionTokens)
		require.Equal(t, res.Usage.TotalTokens, acc.Usage.TotalTokens)
		require.Equal(t, res.Usage.CompletionTokensDetails.ReasoningTokens, acc.Usage.CompletionTokensDetails.ReasoningTokens)
		want = chatRow(true, acc.Usage)
		row = readSDKRow(t, env, streamResp.Header.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)
	})

	t.Run("ToolRoundTrip", func(t *testing.T) {
		t.Parallel()
		params := openai.ChatCompletionNewParams{
			Model:    openAIChatModel,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the weather in Paris?")},
			Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
				Name:        "get_weather",
				Description: openai.String("Current weather of a city"),
				Parameters: shared.FunctionParameters{
					"type":       "object",
					"properties": map[string]any{"city": map[string]any{"type": "string"}},
					"required":   []string{"city"},
				},
			})},
		}
		var httpResp *http.Response
		res, err := client.Chat.Completions.New(ctx, params, option.WithResponseInto(&httpResp))
		require.NoError(t, err)
		require.Equal(t, "tool_calls", res.Choices[0].FinishReason)
		calls := res.Choices[0].Message.ToolCalls
		require.Len(t, calls, 1)
		require.NotEmpty(t, calls[0].ID)
		require.Equal(t, "get_weather", calls[0].Function.Name)
		require.JSONEq(t, `{"city":"example"}`, calls[0].Function.Arguments)
		requireUsage(t, res.Usage)
		want := chatRow(false, res.Usage)
		row := readSDKRow(t, env, httpResp.Header.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)

		// Streamed, the call arrives as tool-call deltas that accumulate to the same call.
		stream := client.Chat.Completions.NewStreaming(ctx, params)
		var acc openai.ChatCompletionAccumulator
		var finished []openai.FinishedChatCompletionToolCall
		for stream.Next() {
			acc.AddChunk(stream.Current())
			if tc, ok := acc.JustFinishedToolCall(); ok {
				finished = append(finished, tc)
			}
		}
		require.NoError(t, stream.Err())
		require.NoError(t, stream.Close())
		require.Len(t, finished, 1)
		require.NotEmpty(t, finished[0].ID, "the simulator numbers its calls, so the id differs from the first request's")
		require.Equal(t, "get_weather", finished[0].Name)
		require.JSONEq(t, calls[0].Function.Arguments, finished[0].Arguments)
		require.Equal(t, "tool_calls", acc.Choices[0].FinishReason)

		// The client runs the tool and sends its result back.
		params.Messages = append(params.Messages, res.Choices[0].Message.ToParam(), openai.ToolMessage(sdkToolResult, calls[0].ID))
		final, err := client.Chat.Completions.New(ctx, params)
		require.NoError(t, err)
		require.Equal(t, "stop", final.Choices[0].FinishReason)
		require.Empty(t, final.Choices[0].Message.ToolCalls)
		require.Contains(t, final.Choices[0].Message.Content, "get_weather="+sdkToolResult)
	})

	t.Run("JSONObject", func(t *testing.T) {
		t.Parallel()
		params := chatParams()
		params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}}
		var httpResp *http.Response
		res, err := client.Chat.Completions.New(ctx, params, option.WithResponseInto(&httpResp))
		require.NoError(t, err)
		var obj map[string]any
		require.NoError(t, json.Unmarshal([]byte(res.Choices[0].Message.Content), &obj), res.Choices[0].Message.Content)
		require.NotEmpty(t, obj)
		requireUsage(t, res.Usage)
		want := chatRow(false, res.Usage)
		row := readSDKRow(t, env, httpResp.Header.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)
	})

	t.Run("JSONSchema", func(t *testing.T) {
		t.Parallel()
		params := chatParams()
		params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{
				Name:   "person",
				Strict: openai.Bool(true),
				Schema: map[string]any{
					"type": "object",
					"properties": map[string]any{
						"name":   map[string]any{"type": "string"},
						"age":    map[string]any{"type": "integer"},
						"colors": map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": []string{"red", "blue"}}},
					},
					"required":             []string{"name", "age", "colors"},
					"additionalProperties": false,
				},
			},
		}}
		var httpResp *http.Response
		res, err := client.Chat.Completions.New(ctx, params, option.WithResponseInto(&httpResp))
		require.NoError(t, err)
		var person struct {
			Name   string   `json:"name"`
			Age    int      `json:"age"`
			Colors []string `json:"colors"`
		}
		dec := json.NewDecoder(strings.NewReader(res.Choices[0].Message.Content))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&person), res.Choices[0].Message.Content)
		require.NotEmpty(t, person.Name)
		require.NotZero(t, person.Age)
		require.NotEmpty(t, person.Colors)
		require.Equal(t, "red", person.Colors[0], "the simulator fills enums with their first value")
		want := chatRow(false, res.Usage)
		row := readSDKRow(t, env, httpResp.Header.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)
	})

	t.Run("Embeddings", func(t *testing.T) {
		t.Parallel()
		inputs := []string{"the first text", "the second text", "the third text"}
		var oneResp *http.Response
		one, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: openAIEmbedModel,
			Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String(inputs[1])},
		}, option.WithResponseInto(&oneResp))
		require.NoError(t, err)
		require.Len(t, one.Data, 1)
		require.Len(t, one.Data[0].Embedding, 3072, "gemini-embedding-001's full size")
		requireUnit(t, one.Data[0].Embedding)
		require.Positive(t, one.Usage.PromptTokens)
		require.Equal(t, one.Usage.PromptTokens, one.Usage.TotalTokens)

		var manyResp *http.Response
		many, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model:      openAIEmbedModel,
			Input:      openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
			Dimensions: openai.Int(256),
		}, option.WithResponseInto(&manyResp))
		require.NoError(t, err)
		require.Len(t, many.Data, len(inputs))
		for i, d := range many.Data {
			require.Equal(t, int64(i), d.Index)
			require.Len(t, d.Embedding, 256)
			requireUnit(t, d.Embedding)
		}
		require.NotEqual(t, many.Data[0].Embedding, many.Data[1].Embedding)
		// A shorter vector is a prefix of the full one, renormalised.
		require.InDelta(t, cosine(one.Data[0].Embedding[:256], many.Data[1].Embedding), 1, 1e-6)

		// base64, as the Python SDK asks by default, decodes to the same vector.
		b64, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model:          openAIEmbedModel,
			Input:          openai.EmbeddingNewParamsInputUnion{OfString: openai.String(inputs[1])},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64,
		})
		require.NoError(t, err)
		require.InDeltaSlice(t, one.Data[0].Embedding, b64.Data[0].Embedding, 1e-6)

		for _, c := range []struct {
			resp   *http.Response
			tokens int64
		}{{oneResp, one.Usage.PromptTokens}, {manyResp, many.Usage.PromptTokens}} {
			want := okRow(env, schemas.ClientOpenAI, "/v1/embeddings", openAIEmbedMapped, openAIEmbedModel, false)
			want.InputTokens, want.PromptTokens, want.TotalTokens = uint64(c.tokens), uint64(c.tokens), uint64(c.tokens)
			row := readSDKRow(t, env, c.resp.Header.Get("X-Request-Id"))
			requireTimes(t, &want, row, true)
			require.Equal(t, want, row)
		}
	})

	t.Run("Models", func(t *testing.T) {
		t.Parallel()
		var httpResp *http.Response
		page, err := client.Models.List(ctx, option.WithResponseInto(&httpResp))
		require.NoError(t, err)
		owners := map[string]string{}
		for _, m := range page.Data {
			owners[m.ID] = m.OwnedBy
		}
		for _, id := range []string{"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-embedding-001"} {
			require.Equal(t, "google", owners[id], "model %s", id)
		}
		for _, id := range []string{"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"} {
			require.Equal(t, "gemini-code-api", owners[id], "alias %s", id)
		}
		m, err := client.Models.Get(ctx, "gpt-4o")
		require.NoError(t, err)
		require.Equal(t, "gpt-4o", m.ID)
		want := localRow(env, schemas.ClientOpenAI, "/v1/models")
		row := readSDKRow(t, env, httpResp.Header.Get("X-Request-Id"))
		requireTimes(t, &want, row, false)
		require.Equal(t, want, row)
	})

	t.Run("UnknownModel", func(t *testing.T) {
		t.Parallel()
		params := chatParams()
		params.Model = "gpt-no-such-model"
		_, err := client.Chat.Completions.New(ctx, params)
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusNotFound, apiErr.StatusCode)
		require.Contains(t, apiErr.Message, "gpt-no-such-model")
		require.NotEmpty(t, apiErr.Type)
		row := readSDKRow(t, env, apiErr.Response.Header.Get("X-Request-Id"))
		want := errRow(env, schemas.ClientOpenAI, "/v1/chat/completions", "gpt-no-such-model", "gpt-no-such-model", http.StatusNotFound, schemas.ErrNotFound)
		requireTimes(t, &want, row, false)
		require.Equal(t, want, row)
	})

	t.Run("BadToken", func(t *testing.T) {
		t.Parallel()
		bad := openai.NewClient(option.WithBaseURL(env.URL(0)+"/v1/"), option.WithAPIKey("gca-not-a-token"), option.WithMaxRetries(0))
		_, err := bad.Chat.Completions.New(ctx, chatParams())
		var apiErr *openai.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
		require.Equal(t, "authentication_error", apiErr.Type)
		require.Equal(t, "invalid_api_key", apiErr.Code)
		row := readSDKRow(t, env, apiErr.Response.Header.Get("X-Request-Id"))
		want := errRow(env, schemas.ClientOpenAI, "/v1/chat/completions", "", "", http.StatusUnauthorized, schemas.ErrAuth)
		requireTimes(t, &want, row, false)
		require.Equal(t, want, row)
	})

	// exhausted checks the SDK's view of a pool-exhausted 429 and its row.
	exhausted := func(t *testing.T, model string) {
		t.Helper()
		err := untilPoolExhausted(t, func() error {
			params := chatParams()
			params.Model = model
			_, err := client.Chat.Completions.New(ctx, params)
			return err
		}, func(err error) (int, bool) {
			var e *openai.Error
			if errors.As(err, &e) {
				return e.StatusCode, true
			}
			return 0, false
		})
		var e *openai.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, "rate_limit_error", e.Type)
		require.Equal(t, "rate_limit_exceeded", e.Code)
		requireRetryAfter(t, e.Response.Header)
		row := readSDKRow(t, env, e.Response.Header.Get("X-Request-Id"))
		requireExhaustedRow(t, errRow(env, schemas.ClientOpenAI, "/v1/chat/completions", model, model, http.StatusTooManyRequests, schemas.ErrQuotaExhausted), row)
	}
	t.Run("PoolExhausted", func(t *testing.T) {
		t.Parallel()
		exhausted(t, sdkTinyModel)
	})
	t.Run("UpstreamQuota", func(t *testing.T) {
		t.Parallel()
		exhausted(t, sdkUpstreamTinyModel)
		require.Positive(t, upstream429s(env, sdkUpstreamTinyModel), "Gemini's own 429s used the pool up")
	})
}

func requireUnit(t *testing.T, v []float64) {
	t.Helper()
	var n float64
	for _, x := range v {
		n += x * x
	}
	require.InDelta(t, 1, math.Sqrt(n), 1e-3, "unit length, as OpenAI's embeddings are")
}

func cosine(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	return ab / math.Sqrt(aa*bb)
}
