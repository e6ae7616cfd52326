package openai

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// The fuzz targets run in CI for about ten seconds each:
//
//	go test ./ingress/openai -run '^$' -fuzz FuzzDecodeChatRequest -fuzztime 10s
//
// Their seed corpora are the golden inputs and the bad requests of the table tests.

// seedFiles adds every file matching pattern under testdata to the corpus.
func seedFiles(f *testing.F, pattern string, add func([]byte)) {
	matches, err := filepath.Glob(filepath.Join("testdata", pattern))
	require.NoError(f, err)
	require.NotEmpty(f, matches, pattern)
	for _, m := range matches {
		add(readFile(f, m))
	}
}

// FuzzDecodeChatRequest: decoding and translating any body never panics; a failure is
// always a 4xx *Error with a well-formed body; a success always yields a Gemini body
// that marshals (every raw JSON piece in it is valid) and has contents.
func FuzzDecodeChatRequest(f *testing.F) {
	seedFiles(f, "chat/*.request.json", func(b []byte) { f.Add(b) })
	for _, tc := range badRequestCases {
		f.Add([]byte(tc.body))
	}
	for _, s := range []string{`"a\n\u00e9\ud83d\ude00"`, `"\ud83d"`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// The hand-written string decoder must agree with encoding/json on every
		// string encoding/json accepts.
		var want string
		if json.Unmarshal(body, &want) == nil {
			got, ok := unquoteJSON(body)
			require.True(t, ok)
			require.Equal(t, want, got)
		}
		req, err := DecodeChatRequest(body)
		if err != nil {
			requireClientError(t, err)
			return
		}
		out, err := req.ToGemini(ToGeminiOptions{MaxN: 4, IncludeThoughts: true, MissingThoughtSignature: "skip"})
		if err != nil {
			requireClientError(t, err)
			return
		}
		require.NotEmpty(t, out.Contents)
		_, err = json.Marshal(out)
		require.NoError(t, err)
	})
}

// FuzzStreamTranslator: any sequence of Gemini chunks (one JSON object per line)
// produces a well-formed OpenAI stream, with or without usage, and the same chunks
// translate without panicking in the non-streaming path too.
func FuzzStreamTranslator(f *testing.F) {
	seedFiles(f, "stream/*.gemini.jsonl", func(b []byte) { f.Add(b, true); f.Add(b, false) })
	seedFiles(f, "response/*.gemini.json", func(b []byte) { f.Add(bytes.ReplaceAll(b, []byte("\n"), nil), true) })
	f.Fuzz(func(t *testing.T, jsonl []byte, includeUsage bool) {
		tr := NewStreamTranslator(testMeta, includeUsage)
		var out []byte
		for _, line := range bytes.Split(jsonl, []byte("\n")) {
			var chunk gemini.GenerateContentResponse
			if json.Unmarshal(line, &chunk) != nil {
				continue
			}
			var err error
			out, err = tr.AppendChunk(out, &chunk)
			require.NoError(t, err)

			c := FromGemini(&chunk, testMeta)
			require.NotEmpty(t, c.Choices)
			_, err = json.Marshal(c)
			require.NoError(t, err)
		}
		out = append(out, tr.Finish()...)
		requireWellFormedSSE(t, out, includeUsage)
	})
}

// FuzzDecodeEmbeddingRequest: decoding any body never panics; failures are 4xx
// *Errors; a success splits into Gemini calls covering every input once, and a
// response built for it is valid JSON.
func FuzzDecodeEmbeddingRequest(f *testing.F) {
	seedFiles(f, "embeddings/*.request.json", func(b []byte) { f.Add(b) })
	for _, s := range []string{`{"model":"m","input":[1,2]}`, `{"model":"m","input":[["a"]]}`, `{"model":"m","input":["a",{}]}`, `{"input":"x"}`, `[]`, `{"model":"m","input":"x","dimensions":-1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeEmbeddingRequest(body)
		if err != nil {
			requireClientError(t, err)
			return
		}
		calls := req.ToGeminiEmbed("gemini-embedding-001")
		n := 0
		if calls.Single != nil {
			require.Nil(t, calls.Batches)
			n = 1
		}
		for _, b := range calls.Batches {
			require.LessOrEqual(t, len(b.Requests), MaxEmbedBatch)
			n += len(b.Requests)
		}
		require.Equal(t, len(req.Input.Texts), n)
		vectors := make([]gemini.ContentEmbedding, n)
		for i := range vectors {
			vectors[i].Values = []float32{float32(i), 1, -2}
		}
		for _, format := range []string{EncodingFloat, EncodingBase64} {
			req.EncodingFormat = format
			out, err := FromGeminiEmbed(req, vectors, 1)
			require.NoError(t, err)
			require.True(t, json.Valid(out))
		}
	})
}
