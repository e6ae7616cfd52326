//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genai"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
)

const genaiModel = "gemini-2.5-flash"

// newGenai returns a Gemini API client for the gateway and the recorder of its
// responses' headers (genai's errors do not carry the HTTP response).
func newGenai(t *testing.T, env *e2e.Env, key string) (*genai.Client, *headerRecorder) {
	t.Helper()
	rec := &headerRecorder{}
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey:      key,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  &http.Client{Transport: rec},
		HTTPOptions: genai.HTTPOptions{BaseURL: env.URL(0) + "/", APIVersion: "v1beta"},
	})
	require.NoError(t, err)
	return client, rec
}

// TestSDKGemini drives the native Gemini surface with google.golang.org/genai.
func TestSDKGemini(t *testing.T) {
	t.Parallel()
	env := startSDKEnv(t)
	ctx := context.Background()

	// usageRow is the row expected for a generateContent call with usage u, which
	// the native surface passes through as it is.
	usageRow := func(t *testing.T, endpoint string, stream bool, u *genai.GenerateContentResponseUsageMetadata) sdkRow {
		t.Helper()
		require.NotNil(t, u)
		require.Positive(t, u.PromptTokenCount)
		require.Positive(t, u.CandidatesTokenCount)
		require.Positive(t, u.ThoughtsTokenCount, "2.5 models think by default in the simulator")
		require.Equal(t, u.PromptTokenCount+u.CandidatesTokenCount+u.ThoughtsTokenCount+u.ToolUsePromptTokenCount, u.TotalTokenCount)
		r := okRow(env, schemas.ClientGemini, endpoint, genaiModel, genaiModel, stream)
		r.InputTokens = uint64(u.PromptTokenCount + u.ToolUsePromptTokenCount)
		r.OutputTokens = uint64(u.CandidatesTokenCount + u.ThoughtsTokenCount)
		r.TotalTokens = uint64(u.TotalTokenCount)
		r.PromptTokens = uint64(u.PromptTokenCount)
		r.CandidatesTokens = uint64(u.CandidatesTokenCount)
		r.ThoughtsTokens = uint64(u.ThoughtsTokenCount)
		return r
	}
	config := func() *genai.GenerateContentConfig {
		return &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("You are terse.", genai.RoleUser)}
	}

	t.Run("GenerateAndStream", func(t *testing.T) {
		t.Parallel()
		client, _ := newGenai(t, env, env.Token)
		resp, err := client.Models.GenerateContent(ctx, genaiModel, genai.Text(sdkPrompt), config())
		require.NoError(t, err)
		text := resp.Text()
		require.True(t, strings.HasPrefix(text, "Simulated answer from "+genaiModel+" to: "+sdkPrompt), text)
		require.Equal(t, genai.FinishReasonStop, resp.Candidates[0].FinishReason)
		want := usageRow(t, "/v1beta/models/{model}:generateContent", false, resp.UsageMetadata)
		row := readSDKRow(t, env, resp.SDKHTTPResponse.Headers.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)

		// Streamed: the pieces add up to the same text; the last chunk's usage (never
		// a sum) equals the plain answer's.
		var b strings.Builder
		var last *genai.GenerateContentResponse
		chunks := 0
		for chunk, err := range client.Models.GenerateContentStream(ctx, genaiModel, genai.Text(sdkPrompt), config()) {
			require.NoError(t, err)
			b.WriteString(chunk.Text())
			last = chunk
			chunks++
		}
		require.GreaterOrEqual(t, chunks, sdkChunks)
		require.Equal(t, text, b.String())
		require.Equal(t, genai.FinishReasonStop, last.Candidates[0].FinishReason)
		require.Equal(t, *resp.UsageMetadata, *last.UsageMetadata)
		want = usageRow(t, "/v1beta/models/{model}:streamGenerateContent", true, last.UsageMetadata)
		row = readSDKRow(t, env, last.SDKHTTPResponse.Headers.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)
	})

	t.Run("ToolRoundTrip", func(t *testing.T) {
		t.Parallel()
		client, _ := newGenai(t, env, env.Token)
		cfg := &genai.GenerateContentConfig{Tools: []*genai.Tool{{FunctionDeclarations: []*genai.FunctionDeclaration{{
			Name:        "get_weather",
			Description: "Current weather of a city",
			Parameters: &genai.Schema{
				Type:       genai.TypeObject,
				Properties: map[string]*genai.Schema{"city": {Type: genai.TypeString}},
				Required:   []string{"city"},
			},
		}}}}}
		contents := genai.Text("What is the weather in Paris?")
		resp, err := client.Models.GenerateContent(ctx, genaiModel, contents, cfg)
		require.NoError(t, err)
		calls := resp.FunctionCalls()
		require.Len(t, calls, 1)
		require.Equal(t, "get_weather", calls[0].Name)
		require.Equal(t, map[string]any{"city": "example"}, calls[0].Args)
		require.NotEmpty(t, calls[0].ID)
		turn := resp.Candidates[0].Content
		require.NotEmpty(t, turn.Parts[len(turn.Parts)-1].ThoughtSignature, "2.5 models sign their calls")
		want := usageRow(t, "/v1beta/models/{model}:generateContent", false, resp.UsageMetadata)
		row := readSDKRow(t, env, resp.SDKHTTPResponse.Headers.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)

		// The model's turn goes back untouched (signature included), then the result.
		var result map[string]any
		require.NoError(t, json.Unmarshal([]byte(sdkToolResult), &result))
		answer := genai.NewPartFromFunctionResponse("get_weather", result)
		answer.FunctionResponse.ID = calls[0].ID
		contents = append(contents, turn, genai.NewContentFromParts([]*genai.Part{answer}, genai.RoleUser))
		final, err := client.Models.GenerateContent(ctx, genaiModel, contents, cfg)
		require.NoError(t, err)
		require.Empty(t, final.FunctionCalls())
		require.Contains(t, final.Text(), "get_weather="+sdkToolResult)
	})

	t.Run("JSONMode", func(t *testing.T) {
		t.Parallel()
		client, _ := newGenai(t, env, env.Token)
		type person struct {
			Name string `json:"name"`
			Age  int    `json:"age"`
		}
		decode := func(t *testing.T, text string) person {
			var p person
			dec := json.NewDecoder(strings.NewReader(text))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&p), text)
			require.NotEmpty(t, p.Name)
			require.NotZero(t, p.Age)
			return p
		}
		// responseSchema, the OpenAPI subset.
		resp, err := client.Models.GenerateContent(ctx, genaiModel, genai.Text(sdkPrompt), &genai.GenerateContentConfig{
			ResponseMIMEType: "application/json",
			ResponseSchema: &genai.Schema{
				Type: genai.TypeObject,
				Properties: map[string]*genai.Schema{
					"name": {Type: genai.TypeString},
					"age":  {Type: genai.TypeInteger},
				},
				Required: []string{"name", "age"},
			},
		})
		require.NoError(t, err)
		decode(t, resp.Text())
		want := usageRow(t, "/v1beta/models/{model}:generateContent", false, resp.UsageMetadata)
		row := readSDKRow(t, env, resp.SDKHTTPResponse.Headers.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)

		// responseJsonSchema, full JSON Schema.
		resp, err = client.Models.GenerateContent(ctx, genaiModel, genai.Text(sdkPrompt), &genai.GenerateContentConfig{
			ResponseMIMEType: "application/json",
			ResponseJsonSchema: map[string]any{
				"type":                 "object",
				"properties":           map[string]any{"name": map[string]any{"type": "string"}, "age": map[string]any{"type": "integer"}},
				"required":             []string{"name", "age"},
				"additionalProperties": false,
			},
		})
		require.NoError(t, err)
		decode(t, resp.Text())
	})

	t.Run("Embeddings", func(t *testing.T) {
		t.Parallel()
		client, _ := newGenai(t, env, env.Token)
		const model = "gemini-embedding-001"
		texts := []string{"the first text", "the second text", "the third text"}
		// genai calls batchEmbedContents for the Gemini API, with one content or many.
		one, err := client.Models.EmbedContent(ctx, model, genai.Text(texts[1]), nil)
		require.NoError(t, err)
		require.Len(t, one.Embeddings, 1)
		require.Len(t, one.Embeddings[0].Values, 3072)

		var contents []*genai.Content
		for _, s := range texts {
			contents = append(contents, genai.NewContentFromText(s, genai.RoleUser))
		}
		many, err := client.Models.EmbedContent(ctx, model, contents, &genai.EmbedContentConfig{OutputDimensionality: genai.Ptr[int32](256)})
		require.NoError(t, err)
		require.Len(t, many.Embeddings, len(texts))
		for _, e := range many.Embeddings {
			require.Len(t, e.Values, 256)
		}
		require.NotEqual(t, many.Embeddings[0].Values, many.Embeddings[1].Values)
		require.Equal(t, one.Embeddings[0].Values[:256], many.Embeddings[1].Values, "a shorter vector is a prefix of the full one")
		want := okRow(env, schemas.ClientGemini, "/v1beta/models/{model}:batchEmbedContents", model, model, false)
		row := readSDKRow(t, env, many.SDKHTTPResponse.Headers.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		// Embed answers carry no usage: the gateway records its estimate of the input
		// (about four bytes per token of the request body), as for OpenAI embeddings.
		require.Positive(t, row.PromptTokens)
		want.PromptTokens, want.InputTokens, want.TotalTokens = row.PromptTokens, row.PromptTokens, row.PromptTokens
		require.Equal(t, want, row)

		// embedContent is not reachable through genai's Gemini API backend: plain HTTP.
		body := `{"content":{"parts":[{"text":"` + texts[1] + `"}]}}`
		req, err := http.NewRequest(http.MethodPost, env.URL(0)+"/v1beta/models/"+model+":embedContent", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("x-goog-api-key", env.Token)
		req.Header.Set("Content-Type", "application/json")
		hr, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		raw, err := io.ReadAll(hr.Body)
		require.NoError(t, err)
		require.NoError(t, hr.Body.Close())
		require.Equal(t, http.StatusOK, hr.StatusCode, string(raw))
		var single struct {
			Embedding genai.ContentEmbedding `json:"embedding"`
		}
		require.NoError(t, json.Unmarshal(raw, &single))
		require.Equal(t, one.Embeddings[0].Values, single.Embedding.Values)
		want = okRow(env, schemas.ClientGemini, "/v1beta/models/{model}:embedContent", model, model, false)
		row = readSDKRow(t, env, hr.Header.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		est := uint64(len(body)+3) / 4 // the body went upstream untouched
		want.PromptTokens, want.InputTokens, want.TotalTokens = est, est, est
		require.Equal(t, want, row)
	})

	t.Run("Models", func(t *testing.T) {
		t.Parallel()
		client, _ := newGenai(t, env, env.Token)
		page, err := client.Models.List(ctx, nil)
		require.NoError(t, err)
		byName := map[string]*genai.Model{}
		for _, m := range page.Items {
			byName[m.Name] = m
		}
		for _, name := range []string{"models/gemini-2.5-pro", "models/gemini-2.5-flash", "models/gemini-embedding-001"} {
			require.Contains(t, byName, name)
		}
		require.Contains(t, byName["models/gemini-2.5-flash"].SupportedActions, "generateContent")
		require.Positive(t, byName["models/gemini-2.5-flash"].InputTokenLimit)
		m, err := client.Models.Get(ctx, genaiModel, nil)
		require.NoError(t, err)
		require.Equal(t, "models/"+genaiModel, m.Name)
		want := localRow(env, schemas.ClientGemini, "/v1beta/models")
		row := readSDKRow(t, env, page.SDKHTTPResponse.Headers.Get("X-Request-Id"))
		requireTimes(t, &want, row, false)
		require.Equal(t, want, row)
	})

	t.Run("CountTokens", func(t *testing.T) {
		t.Parallel()
		client, _ := newGenai(t, env, env.Token)
		count, err := client.Models.CountTokens(ctx, genaiModel, genai.Text(sdkPrompt), nil)
		require.NoError(t, err)
		resp, err := client.Models.GenerateContent(ctx, genaiModel, genai.Text(sdkPrompt), nil)
		require.NoError(t, err)
		require.Equal(t, resp.UsageMetadata.PromptTokenCount, count.TotalTokens, "the count is what the same prompt is billed")
		want := okRow(env, schemas.ClientGemini, "/v1beta/models/{model}:countTokens", genaiModel, genaiModel, false)
		row := readSDKRow(t, env, count.SDKHTTPResponse.Headers.Get("X-Request-Id"))
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row, "countTokens spends no generation tokens")
	})

	t.Run("UnknownModel", func(t *testing.T) {
		t.Parallel()
		client, rec := newGenai(t, env, env.Token)
		_, err := client.Models.GenerateContent(ctx, "gemini-no-such-model", genai.Text(sdkPrompt), nil)
		var apiErr genai.APIError
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusNotFound, apiErr.Code)
		require.Equal(t, "NOT_FOUND", apiErr.Status)
		require.Contains(t, apiErr.Message, "gemini-no-such-model")
		row := readSDKRow(t, env, rec.last().Get("X-Request-Id"))
		want := errRow(env, schemas.ClientGemini, "/v1beta/models/{model}:generateContent", "gemini-no-such-model", "gemini-no-such-model", http.StatusNotFound, schemas.ErrNotFound)
		requireTimes(t, &want, row, false)
		require.Equal(t, want, row)
	})

	t.Run("BadToken", func(t *testing.T) {
		t.Parallel()
		client, rec := newGenai(t, env, "gca-not-a-token")
		_, err := client.Models.GenerateContent(ctx, genaiModel, genai.Text(sdkPrompt), nil)
		var apiErr genai.APIError
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusUnauthorized, apiErr.Code)
		require.Equal(t, "UNAUTHENTICATED", apiErr.Status)
		row := readSDKRow(t, env, rec.last().Get("X-Request-Id"))
		want := errRow(env, schemas.ClientGemini, "/v1beta/models/{model}:generateContent", "", "", http.StatusUnauthorized, schemas.ErrAuth)
		requireTimes(t, &want, row, false)
		require.Equal(t, want, row)
	})

	// exhausted checks the SDK's view of a pool-exhausted 429 and its row.
	exhausted := func(t *testing.T, model string) {
		t.Helper()
		client, rec := newGenai(t, env, env.Token)
		err := untilPoolExhausted(t, func() error {
			_, err := client.Models.GenerateContent(ctx, model, genai.Text(sdkPrompt), nil)
			return err
		}, func(err error) (int, bool) {
			var e genai.APIError
			if errors.As(err, &e) {
				return e.Code, true
			}
			return 0, false
		})
		var e genai.APIError
		require.ErrorAs(t, err, &e)
		require.Equal(t, "RESOURCE_EXHAUSTED", e.Status)
		requireRetryAfter(t, rec.last())
		// Gemini's clients read the wait from RetryInfo, as in the real API's 429s.
		require.Contains(t, e.Details, map[string]any{
			"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": rec.last().Get("Retry-After") + "s",
		})
		row := readSDKRow(t, env, rec.last().Get("X-Request-Id"))
		requireExhaustedRow(t, errRow(env, schemas.ClientGemini, "/v1beta/models/{model}:generateContent", model, model, http.StatusTooManyRequests, schemas.ErrQuotaExhausted), row)
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
