package openai

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// streamCases are the Gemini chunk sequences under testdata/stream.
var streamCases = []struct {
	name         string
	includeUsage bool
	why          string
}{
	{"text", false, "role first, text deltas, finish on the last chunk; no usage anywhere"},
	{"text_usage", true, "usage:null on every chunk, then one usage chunk from the last Gemini usage (not the sum)"},
	{"tool_call", true, "whole function calls as one delta each, indexed across chunks, ids generated or kept; finish tool_calls"},
	{"thinking", true, "thought text in reasoning_content; empty signature-only parts emit nothing; thoughts count in usage"},
	{"n2", true, "two choices, each with its own role event and finish reason"},
	{"blocked", true, "a blocked prompt is a refusal and content_filter on choice 0"},
	{"safety_midstream", false, "a candidate stopped by SAFETY ends with content_filter"},
	{"cut_without_finish", true, "Finish closes a choice that never got a finish reason"},
	{"usage_only_tail", true, "a usage-only chunk after the finish still sets the usage"},
}

// TestStreamGolden feeds each chunk sequence through a StreamTranslator and compares
// the SSE bytes with the golden file.
func TestStreamGolden(t *testing.T) {
	dir := filepath.Join("testdata", "stream")
	covered := map[string]bool{}
	for _, tc := range streamCases {
		covered[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			out := translateStream(t, readFile(t, filepath.Join(dir, tc.name+".gemini.jsonl")), tc.includeUsage)
			requireWellFormedSSE(t, out, tc.includeUsage)
			golden(t, filepath.Join(dir, tc.name+".sse"), out)
		})
	}
	requireAllCovered(t, inputsWithSuffix(t, dir, ".gemini.jsonl"), covered)
}

// translateStream runs one Gemini chunk per line through a translator.
func translateStream(t testing.TB, jsonl []byte, includeUsage bool) []byte {
	t.Helper()
	tr := NewStreamTranslator(testMeta, includeUsage)
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var chunk gemini.GenerateContentResponse
		require.NoError(t, json.Unmarshal(sc.Bytes(), &chunk))
		var err error
		out, err = tr.AppendChunk(out, &chunk)
		require.NoError(t, err)
	}
	require.NoError(t, sc.Err())
	return append(out, tr.Finish()...)
}

// sseChunk is the part of a chunk the structural checks look at.
type sseChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Choices []struct {
		Index        int             `json:"index"`
		Delta        json.RawMessage `json:"delta"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

// requireWellFormedSSE checks the stream's framing and the invariants every OpenAI
// stream keeps: every event is "data: <JSON>\n\n", [DONE] comes once and last, every
// choice starts with a role delta and finishes exactly once, nothing follows a finish,
// and usage appears only as the client asked.
func requireWellFormedSSE(t testing.TB, out []byte, includeUsage bool) {
	t.Helper()
	events := splitEvents(t, out)
	require.NotEmpty(t, events)
	require.Equal(t, "[DONE]", events[len(events)-1], "the stream ends with [DONE]")
	started := map[int]bool{}
	finished := map[int]bool{}
	usageChunks := 0
	for i, data := range events[:len(events)-1] {
		var c sseChunk
		require.NoError(t, json.Unmarshal([]byte(data), &c), "event %d is not JSON: %s", i, data)
		require.Equal(t, "chat.completion.chunk", c.Object)
		require.Equal(t, testMeta.ID, c.ID)
		if !includeUsage {
			require.Empty(t, c.Usage, "usage is absent without include_usage")
		} else {
			require.NotEmpty(t, c.Usage, "usage is present (null or set) with include_usage")
		}
		if len(c.Choices) == 0 {
			require.True(t, includeUsage, "only the usage chunk has no choices")
			require.NotEqual(t, "null", string(c.Usage))
			usageChunks++
			require.Equal(t, len(events)-2, i, "the usage chunk is the last before [DONE]")
			continue
		}
		require.Len(t, c.Choices, 1, "one choice per event")
		ch := c.Choices[0]
		require.False(t, finished[ch.Index], "choice %d has an event after its finish", ch.Index)
		if !started[ch.Index] {
			require.JSONEq(t, `{"role":"assistant","content":""}`, string(ch.Delta), "the first event of a choice carries the role")
			started[ch.Index] = true
		}
		if ch.FinishReason != nil {
			finished[ch.Index] = true
		}
	}
	require.Equal(t, started, finished, "every started choice finishes")
	if includeUsage {
		require.Equal(t, 1, usageChunks)
	}
}

// splitEvents splits an SSE byte stream into the data of its events, failing on
// anything that is not a single data line followed by a blank line.
func splitEvents(t testing.TB, out []byte) []string {
	t.Helper()
	require.True(t, bytes.HasSuffix(out, []byte("\n\n")), "the stream ends with a blank line")
	var events []string
	for _, ev := range strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		require.True(t, ok, "event without data: %q", ev)
		require.NotContains(t, data, "\n", "an event is one line")
		events = append(events, data)
	}
	return events
}

// TestStreamMatchesNonStreaming checks that the text, reasoning and tool calls a client
// assembles from the stream equal what the non-streaming translation of the merged
// chunks says.
func TestStreamMatchesNonStreaming(t *testing.T) {
	for _, name := range []string{"text", "tool_call", "thinking"} {
		t.Run(name, func(t *testing.T) {
			jsonl := readFile(t, filepath.Join("testdata", "stream", name+".gemini.jsonl"))
			merged := gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{}}}
			for _, line := range bytes.Split(bytes.TrimSpace(jsonl), []byte("\n")) {
				var c gemini.GenerateContentResponse
				require.NoError(t, json.Unmarshal(line, &c))
				merged.Candidates[0].Content.Parts = append(merged.Candidates[0].Content.Parts, c.Candidates[0].Content.Parts...)
				if c.Candidates[0].FinishReason != "" {
					merged.Candidates[0].FinishReason = c.Candidates[0].FinishReason
				}
				if c.UsageMetadata != nil {
					merged.UsageMetadata = c.UsageMetadata
				}
			}
			want := FromGemini(&merged, testMeta)

			var content, reasoning strings.Builder
			var calls []ToolCall
			var finish string
			var usage Usage
			for _, data := range splitEvents(t, translateStream(t, jsonl, true)) {
				if data == "[DONE]" {
					continue
				}
				var c struct {
					Choices []struct {
						Delta struct {
							Content          string     `json:"content"`
							ReasoningContent string     `json:"reasoning_content"`
							ToolCalls        []ToolCall `json:"tool_calls"`
						} `json:"delta"`
						FinishReason *string `json:"finish_reason"`
					} `json:"choices"`
					Usage *Usage `json:"usage"`
				}
				require.NoError(t, json.Unmarshal([]byte(data), &c))
				if c.Usage != nil {
					usage = *c.Usage
				}
				for _, ch := range c.Choices {
					content.WriteString(ch.Delta.Content)
					reasoning.WriteString(ch.Delta.ReasoningContent)
					calls = append(calls, ch.Delta.ToolCalls...)
					if ch.FinishReason != nil {
						finish = *ch.FinishReason
					}
				}
			}
			msg := want.Choices[0].Message
			wantContent := ""
			if msg.Content != nil {
				wantContent = *msg.Content
			}
			require.Equal(t, wantContent, content.String())
			require.Equal(t, msg.ReasoningContent, reasoning.String())
			require.Equal(t, msg.ToolCalls, calls)
			require.Equal(t, want.Choices[0].FinishReason, finish)
			require.Equal(t, want.Usage, usage)
		})
	}
}

// TestStreamUsageIsLastNotSum checks the rule that matters most for accounting.
func TestStreamUsageIsLastNotSum(t *testing.T) {
	tr := NewStreamTranslator(testMeta, true)
	for _, total := range []int64{9, 13, 14} {
		_, err := tr.Chunk(&gemini.GenerateContentResponse{
			Candidates:    []gemini.Candidate{{Content: gemini.Content{Parts: []gemini.Part{{Text: "x"}}}}},
			UsageMetadata: &gemini.UsageMetadata{PromptTokenCount: 8, CandidatesTokenCount: total - 8, TotalTokenCount: total},
		})
		require.NoError(t, err)
	}
	u, ok := tr.GeminiUsage()
	require.True(t, ok)
	require.Equal(t, int64(14), u.TotalTokenCount)
	require.Equal(t, Usage{PromptTokens: 8, CompletionTokens: 6, TotalTokens: 14}, tr.Usage())
}

// TestStreamAfterFinish checks that the translator refuses chunks after Finish and that
// Finish is idempotent.
func TestStreamAfterFinish(t *testing.T) {
	tr := NewStreamTranslator(testMeta, false)
	require.NotEmpty(t, tr.Finish())
	require.Empty(t, tr.Finish())
	_, err := tr.Chunk(&gemini.GenerateContentResponse{})
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 500, e.Status())
}

// TestErrorEvent checks the error event sent after a stream has started.
func TestErrorEvent(t *testing.T) {
	ev := ErrorEvent(NewError(429, TypeRateLimit, CodeRateLimitExceeded, "", "slow down"))
	require.Equal(t, `data: {"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`+"\n\n", string(ev))
	require.True(t, strings.HasPrefix(string(ErrorEvent(nil)), `data: {"error":{`))
}

// TestAppendString checks the hand-written JSON string encoder against encoding/json
// on the characters that need care.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " backslash \ slash /`, "\n\r\t\b\f\x00\x1f", "ünïcode ✓ 😀", "\u2028\u2029", "<>&", "bad \xff utf8 \xc3"} {
		got := appendString(nil, s)
		require.True(t, json.Valid(got), "%q", got)
		var back string
		require.NoError(t, json.Unmarshal(got, &back))
		want := strings.ToValidUTF8(s, "\uFFFD")
		require.Equal(t, want, back)
	}
}

// TestUnquoteJSON checks the hand-written string decoder against encoding/json,
// including the escapes and broken input encoding/json repairs.
func TestUnquoteJSON(t *testing.T) {
	for _, in := range []string{`""`, `"plain"`, `"a\"b\\c\/d"`, `"\b\f\n\r\t"`, `"\u00e9\u2028"`, `"\ud83d\ude00"`,
		`"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d"`, `"\ud83d\u0041"`, "\"bad \xff utf8\"", `"ünïcode ✓"`, ` "padded" `} {
		var want string
		require.NoError(t, json.Unmarshal([]byte(in), &want), in)
		got, ok := unquoteJSON([]byte(in))
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{``, `"`, `"\"`, `"abc\"`, `"a"b"`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"tab\there\"", `abc`, `"abc`} {
		_, ok := unquoteJSON([]byte(in))
		require.False(t, ok, in)
	}
}
