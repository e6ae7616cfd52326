//go:build integration

package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

// claude-sonnet-4* is a prefix alias of gemini-2.5-flash in the default config.
const (
	anthropicModel  = anthropic.ModelClaudeSonnet4_5
	anthropicMapped = "gemini-2.5-flash"
)

// TestSDKAnthropic drives the Anthropic surface with github.com/anthropics/anthropic-sdk-go.
// Anthropic has no JSON mode, embeddings or model list to test.
func TestSDKAnthropic(t *testing.T) {
	t.Parallel()
	env := startSDKEnv(t)
	client := anthropic.NewClient(option.WithBaseURL(env.URL(0)), option.WithAPIKey(env.Token), option.WithMaxRetries(0))
	ctx := context.Background()

	params := func() anthropic.MessageNewParams {
		return anthropic.MessageNewParams{
			Model:     anthropicModel,
			MaxTokens: 1024,
			System:    []anthropic.TextBlockParam{{Text: "You are terse."}},
			Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(sdkPrompt))},
		}
	}
	// messageRow is the row expected for a message with usage u. Anthropic's usage
	// folds the thoughts into output_tokens; the row keeps them apart, so the
	// candidates are what is left of output_tokens.
	messageRow := func(t *testing.T, stream bool, u anthropic.Usage, got sdkRow) sdkRow {
		t.Helper()
		require.Positive(t, u.InputTokens)
		require.Positive(t, got.ThoughtsTokens, "2.5 models think by default in the simulator")
		require.Less(t, got.ThoughtsTokens, uint64(u.OutputTokens), "output_tokens = candidates + thoughts")
		r := okRow(env, schemas.ClientClaude, "/v1/messages", anthropicMapped, string(anthropicModel), stream)
		r.InputTokens, r.PromptTokens = uint64(u.InputTokens), uint64(u.InputTokens)
		r.OutputTokens = uint64(u.OutputTokens)
		r.TotalTokens = uint64(u.InputTokens + u.OutputTokens)
		r.ThoughtsTokens = got.ThoughtsTokens
		r.CandidatesTokens = r.OutputTokens - r.ThoughtsTokens
		return r
	}

	t.Run("MessageAndStream", func(t *testing.T) {
		t.Parallel()
		var httpResp *http.Response
		msg, err := client.Messages.New(ctx, params(), option.WithResponseInto(&httpResp))
		require.NoError(t, err)
		text := messageText(msg)
		require.True(t, strings.HasPrefix(text, "Simulated answer from "+anthropicMapped+" to: "+sdkPrompt), text)
		require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
		require.Equal(t, anthropicModel, msg.Model)
		require.Zero(t, msg.Usage.CacheReadInputTokens)
		row := readSDKRow(t, env, httpResp.Header.Get("X-Request-Id"))
		want := messageRow(t, false, msg.Usage, row)
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)

		// Streamed: the exact event sequence, and the same answer and usage.
		var streamResp *http.Response
		stream := client.Messages.NewStreaming(ctx, params(), option.WithResponseInto(&streamResp))
		var acc anthropic.Message
		var types []string
		deltas := 0
		for stream.Next() {
			ev := stream.Current()
			require.NoError(t, acc.Accumulate(ev))
			if ev.Type == "content_block_delta" {
				deltas++
				if len(types) > 0 && types[len(types)-1] == "content_block_delta" {
					continue
				}
			}
			types = append(types, ev.Type)
		}
		require.NoError(t, stream.Err())
		require.NoError(t, stream.Close())
		require.Equal(t, []string{"message_start", "content_block_start", "content_block_delta",
			"content_block_stop", "message_delta", "message_stop"}, types, "pings are skipped by the SDK")
		require.GreaterOrEqual(t, deltas, sdkChunks, "the text came in pieces")
		require.Equal(t, text, messageText(&acc))
		require.Equal(t, anthropic.StopReasonEndTurn, acc.StopReason)
		require.Equal(t, msg.Usage.InputTokens, acc.Usage.InputTokens)
		require.Equal(t, msg.Usage.OutputTokens, acc.Usage.OutputTokens)
		row = readSDKRow(t, env, streamResp.Header.Get("X-Request-Id"))
		want = messageRow(t, true, acc.Usage, row)
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)
	})

	t.Run("Thinking", func(t *testing.T) {
		t.Parallel()
		p := params()
		p.MaxTokens = 4096 // above the thinking budget, as Anthropic requires
		p.Thinking = anthropic.ThinkingConfigParamOfEnabled(1024)
		msg, err := client.Messages.New(ctx, p)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(msg.Content), 2)
		require.Equal(t, "thinking", msg.Content[0].Type, "thought summaries come back as a thinking block first")
		require.NotEmpty(t, msg.Content[0].Signature, "clients echo thinking blocks back with their signature")
		require.True(t, strings.HasPrefix(messageText(msg), "Simulated answer from "), messageText(msg))

		// The thinking block goes back as the SDK built it.
		p.Messages = append(p.Messages, msg.ToParam(), anthropic.NewUserMessage(anthropic.NewTextBlock("And again")))
		again, err := client.Messages.New(ctx, p)
		require.NoError(t, err)
		require.Contains(t, messageText(again), "And again")
	})

	t.Run("ToolRoundTrip", func(t *testing.T) {
		t.Parallel()
		p := params()
		p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What is the weather in Paris?"))}
		p.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
			Name:        "get_weather",
			Description: anthropic.String("Current weather of a city"),
			InputSchema: anthropic.ToolInputSchemaParam{
				Properties: map[string]any{"city": map[string]any{"type": "string"}},
				Required:   []string{"city"},
			},
		}}}
		var httpResp *http.Response
		msg, err := client.Messages.New(ctx, p, option.WithResponseInto(&httpResp))
		require.NoError(t, err)
		require.Equal(t, anthropic.StopReasonToolUse, msg.StopReason)
		use := toolUse(msg)
		require.NotNil(t, use)
		require.NotEmpty(t, use.ID)
		require.Equal(t, "get_weather", use.Name)
		require.JSONEq(t, `{"city":"example"}`, string(use.Input))
		row := readSDKRow(t, env, httpResp.Header.Get("X-Request-Id"))
		want := messageRow(t, false, msg.Usage, row)
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row)

		// Streamed, the input arrives as input_json_delta and accumulates to the same call.
		stream := client.Messages.NewStreaming(ctx, p)
		var acc anthropic.Message
		jsonDeltas := 0
		for stream.Next() {
			ev := stream.Current()
			require.NoError(t, acc.Accumulate(ev))
			if ev.Type == "content_block_delta" && ev.Delta.Type == "input_json_delta" {
				jsonDeltas++
			}
		}
		require.NoError(t, stream.Err())
		require.NoError(t, stream.Close())
		require.Positive(t, jsonDeltas)
		streamed := toolUse(&acc)
		require.NotNil(t, streamed)
		require.Equal(t, "get_weather", streamed.Name)
		require.JSONEq(t, string(use.Input), string(streamed.Input))
		require.Equal(t, anthropic.StopReasonToolUse, acc.StopReason)

		// The client runs the tool and answers with a tool_result.
		p.Messages = append(p.Messages, msg.ToParam(),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, sdkToolResult, false)))
		final, err := client.Messages.New(ctx, p)
		require.NoError(t, err)
		require.Equal(t, anthropic.StopReasonEndTurn, final.StopReason)
		require.Nil(t, toolUse(final))
		// A tool_result's text goes to Gemini as {"result": text}.
		require.Contains(t, messageText(final), `get_weather={"result":`)
		require.Contains(t, messageText(final), `temperature`)
	})

	t.Run("CountTokens", func(t *testing.T) {
		t.Parallel()
		var httpResp *http.Response
		count, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
			Model:    anthropicModel,
			System:   anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: []anthropic.TextBlockParam{{Text: "You are terse."}}},
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(sdkPrompt))},
		}, option.WithResponseInto(&httpResp))
		require.NoError(t, err)
		// The same prompt as a message: the count is what the message is billed.
		msg, err := client.Messages.New(ctx, params())
		require.NoError(t, err)
		require.Equal(t, msg.Usage.InputTokens, count.InputTokens)
		row := readSDKRow(t, env, httpResp.Header.Get("X-Request-Id"))
		want := okRow(env, schemas.ClientClaude, "/v1/messages/count_tokens", anthropicMapped, string(anthropicModel), false)
		requireTimes(t, &want, row, true)
		require.Equal(t, want, row, "countTokens spends no generation tokens")
	})

	t.Run("UnknownModel", func(t *testing.T) {
		t.Parallel()
		p := params()
		p.Model = "claude-no-such-model"
		_, err := client.Messages.New(ctx, p)
		var apiErr *anthropic.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusNotFound, apiErr.StatusCode)
		require.EqualValues(t, "not_found_error", apiErr.Type())
		require.Contains(t, apiErr.RawJSON(), "claude-no-such-model")
		row := readSDKRow(t, env, apiErr.Response.Header.Get("X-Request-Id"))
		want := errRow(env, schemas.ClientClaude, "/v1/messages", "claude-no-such-model", "claude-no-such-model", http.StatusNotFound, schemas.ErrNotFound)
		requireTimes(t, &want, row, false)
		require.Equal(t, want, row)
	})

	t.Run("BadToken", func(t *testing.T) {
		t.Parallel()
		bad := anthropic.NewClient(option.WithBaseURL(env.URL(0)), option.WithAPIKey("gca-not-a-token"), option.WithMaxRetries(0))
		_, err := bad.Messages.New(ctx, params())
		var apiErr *anthropic.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
		require.EqualValues(t, "authentication_error", apiErr.Type())
		row := readSDKRow(t, env, apiErr.Response.Header.Get("X-Request-Id"))
		want := errRow(env, schemas.ClientClaude, "/v1/messages", "", "", http.StatusUnauthorized, schemas.ErrAuth)
		requireTimes(t, &want, row, false)
		require.Equal(t, want, row)
	})

	// exhausted checks the SDK's view of a pool-exhausted 429 and its row.
	exhausted := func(t *testing.T, model string) {
		t.Helper()
		err := untilPoolExhausted(t, func() error {
			p := params()
			p.Model = anthropic.Model(model)
			_, err := client.Messages.New(ctx, p)
			return err
		}, func(err error) (int, bool) {
			var e *anthropic.Error
			if errors.As(err, &e) {
				return e.StatusCode, true
			}
			return 0, false
		})
		var e *anthropic.Error
		require.ErrorAs(t, err, &e)
		require.EqualValues(t, "rate_limit_error", e.Type())
		requireRetryAfter(t, e.Response.Header)
		row := readSDKRow(t, env, e.Response.Header.Get("X-Request-Id"))
		requireExhaustedRow(t, errRow(env, schemas.ClientClaude, "/v1/messages", model, model, http.StatusTooManyRequests, schemas.ErrQuotaExhausted), row)
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

// messageText joins a message's text blocks.
func messageText(m *anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// toolUse returns a message's first tool_use block.
func toolUse(m *anthropic.Message) *anthropic.ContentBlockUnion {
	for i := range m.Content {
		if m.Content[i].Type == "tool_use" {
			return &m.Content[i]
		}
	}
	return nil
}
