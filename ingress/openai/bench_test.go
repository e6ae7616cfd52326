package openai

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// The benchmarks cover the translation on every request's hot path:
//
//	go test ./ingress/openai -run '^$' -bench . -benchmem

// longConversation is a 40-turn chat with tools, about 30 KB: a coding agent's
// request rather than a chat app's.
func longConversation(b *testing.B) []byte {
	msgs := []map[string]any{{"role": "system", "content": strings.Repeat("You are a careful coding agent. ", 40)}}
	for i := 0; i < 20; i++ {
		msgs = append(msgs,
			map[string]any{"role": "user", "content": strings.Repeat("Please look at function number "+strconv.Itoa(i)+" and explain it. ", 8)},
			map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
				"id": "call_" + strconv.Itoa(i), "type": "function",
				"function": map[string]any{"name": "read_file", "arguments": `{"path":"src/file` + strconv.Itoa(i) + `.go","start":1,"end":200}`},
			}}},
			map[string]any{"role": "tool", "tool_call_id": "call_" + strconv.Itoa(i), "content": strings.Repeat("func f() { return nil }\n", 30)},
			map[string]any{"role": "assistant", "content": strings.Repeat("The function returns nil. ", 12)},
		)
	}
	body, err := json.Marshal(map[string]any{
		"model": "gpt-4o", "messages": msgs, "temperature": 0.2, "stream": true,
		"tools": []any{map[string]any{"type": "function", "function": map[string]any{
			"name": "read_file", "description": "Read part of a file.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{
				"path": map[string]any{"type": "string"}, "start": map[string]any{"type": "integer"}, "end": map[string]any{"type": "integer"},
			}, "required": []string{"path"}},
		}}},
	})
	require.NoError(b, err)
	return body
}

// BenchmarkToGemini measures the whole request path: decode and validate the OpenAI
// body, translate it, and marshal the Gemini body that goes on the wire.
func BenchmarkToGemini(b *testing.B) {
	inputs := []struct {
		name string
		body []byte
	}{
		{"chat", readFile(b, filepath.Join("testdata", "chat", "system_multiturn.request.json"))},
		{"tools", readFile(b, filepath.Join("testdata", "chat", "tool_round_trip.request.json"))},
		{"agent_40_turns", longConversation(b)},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.body)))
			for b.Loop() {
				req, err := DecodeChatRequest(in.body)
				if err != nil {
					b.Fatal(err)
				}
				out, err := req.ToGemini(ToGeminiOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The stages of the agent request, to see where the time goes.
	body := longConversation(b)
	req, err := DecodeChatRequest(body)
	require.NoError(b, err)
	out, err := req.ToGemini(ToGeminiOptions{})
	require.NoError(b, err)
	b.Run("agent_40_turns/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = DecodeChatRequest(body)
		}
	})
	b.Run("agent_40_turns/translate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = req.ToGemini(ToGeminiOptions{})
		}
	})
	b.Run("agent_40_turns/marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(out)
		}
	})
}

// BenchmarkFromGemini measures a non-streaming answer: translate and marshal.
func BenchmarkFromGemini(b *testing.B) {
	long := gemini.GenerateContentResponse{
		Candidates:    []gemini.Candidate{{Content: gemini.Content{Parts: []gemini.Part{{Text: strings.Repeat("A paragraph of generated text. ", 130)}}}, FinishReason: "STOP"}},
		UsageMetadata: &gemini.UsageMetadata{PromptTokenCount: 100, CandidatesTokenCount: 900, TotalTokenCount: 1000},
	}
	var tools gemini.GenerateContentResponse
	require.NoError(b, json.Unmarshal(readFile(b, filepath.Join("testdata", "response", "tool_calls.gemini.json")), &tools))
	for _, in := range []struct {
		name string
		resp *gemini.GenerateContentResponse
	}{{"text_4KB", &long}, {"tool_calls", &tools}} {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(FromGemini(in.resp, testMeta)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamChunk measures one typical streamed chunk (a sentence of text with
// cumulative usage) turned into SSE, with a reused buffer and with a fresh one.
func BenchmarkStreamChunk(b *testing.B) {
	chunk := &gemini.GenerateContentResponse{
		Candidates:    []gemini.Candidate{{Content: gemini.Content{Role: "model", Parts: []gemini.Part{{Text: "The quick brown fox jumps over the lazy dog, \"quoted\" and ünïcode.\n"}}}}},
		UsageMetadata: &gemini.UsageMetadata{PromptTokenCount: 100, CandidatesTokenCount: 20, TotalTokenCount: 120},
	}
	call := &gemini.GenerateContentResponse{
		Candidates: []gemini.Candidate{{Content: gemini.Content{Role: "model", Parts: []gemini.Part{{FunctionCall: &gemini.FunctionCall{
			Name: "read_file", Args: json.RawMessage(`{"path":"src/main.go","start":1,"end":200}`)}}}}}},
	}
	b.Run("text/reused_buffer", func(b *testing.B) {
		tr := NewStreamTranslator(testMeta, true)
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = tr.AppendChunk(buf[:0], chunk)
		}
	})
	b.Run("text/new_buffer", func(b *testing.B) {
		tr := NewStreamTranslator(testMeta, true)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = tr.Chunk(chunk)
		}
	})
	b.Run("tool_call/reused_buffer", func(b *testing.B) {
		tr := NewStreamTranslator(testMeta, true)
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = tr.AppendChunk(buf[:0], call)
		}
	})
}
