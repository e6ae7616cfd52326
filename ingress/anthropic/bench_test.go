package anthropic

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

func BenchmarkDecodeMessagesRequest(b *testing.B) {
	body := readTestdata(b, "requests/tool_round_trip.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessagesRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToGemini(b *testing.B) {
	for _, file := range []string{"tool_round_trip.json", "thinking_enabled.json"} {
		b.Run(strings.TrimSuffix(file, ".json"), func(b *testing.B) {
			req, err := DecodeMessagesRequest(readTestdata(b, "requests/"+file))
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := req.ToGemini(flash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFromGemini includes writing the body, which the handler always does.
func BenchmarkFromGemini(b *testing.B) {
	for _, name := range []string{"text", "tool_calls"} {
		b.Run(name, func(b *testing.B) {
			resp := readGeminiResponse(b, name)
			b.ReportAllocs()
			for b.Loop() {
				if len(FromGemini(resp, testMeta).Body()) == 0 {
					b.Fatal("empty body")
				}
			}
		})
	}
}

// BenchmarkStreamChunk measures one typical text chunk of an ongoing stream.
func BenchmarkStreamChunk(b *testing.B) {
	chunk := &gemini.GenerateContentResponse{
		Candidates:    []gemini.Candidate{{Content: gemini.Content{Role: "model", Parts: []gemini.Part{{Text: "The quick brown fox jumps over the lazy dog, \"quoted\" and\nmultiline. "}}}}},
		UsageMetadata: &gemini.UsageMetadata{PromptTokenCount: 100, CandidatesTokenCount: 20, TotalTokenCount: 120},
	}
	tr := NewStreamTranslator(testMeta)
	_, err := tr.Chunk(chunk)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Chunk(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamToolChunk measures a chunk carrying a function call.
func BenchmarkStreamToolChunk(b *testing.B) {
	chunk := &gemini.GenerateContentResponse{
		Candidates: []gemini.Candidate{{Content: gemini.Content{Role: "model", Parts: []gemini.Part{{FunctionCall: &gemini.FunctionCall{Name: "bash", Args: json.RawMessage(`{"command": "ls -la /tmp", "timeout": 30}`)}}}}}},
	}
	tr := NewStreamTranslator(testMeta)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Chunk(chunk); err != nil {
			b.Fatal(err)
		}
	}
}
