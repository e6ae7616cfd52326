package openai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// testVectors are the Gemini vectors the golden embedding responses are built from:
// the first has unit length already, the second does not (a cut-down vector).
var testVectors = []gemini.ContentEmbedding{
	{Values: []float32{0.6, 0.8, 0}},
	{Values: []float32{3, 0, 4}},
	{Values: []float32{0, 0, 0}},
}

// TestEmbeddingGolden translates each request under testdata/embeddings to Gemini and
// a Gemini answer back, comparing both with golden files.
func TestEmbeddingGolden(t *testing.T) {
	dir := filepath.Join("testdata", "embeddings")
	names := inputsWithSuffix(t, dir, ".request.json")
	require.NotEmpty(t, names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			req, err := DecodeEmbeddingRequest(readFile(t, filepath.Join(dir, name+".request.json")))
			require.NoError(t, err)
			calls := req.ToGeminiEmbed("gemini-embedding-001")
			golden(t, filepath.Join(dir, name+".gemini.json"), indented(t, calls))

			out, err := FromGeminiEmbed(req, testVectors[:len(req.Input.Texts)], 42)
			require.NoError(t, err)
			golden(t, filepath.Join(dir, name+".openai.json"), indentBytes(t, out))
		})
	}
}

// TestEmbeddingBatches checks that many inputs are split into batches of at most 100,
// in order, each entry naming its model.
func TestEmbeddingBatches(t *testing.T) {
	texts := make([]string, 250)
	for i := range texts {
		texts[i] = "text " + strconv.Itoa(i)
	}
	body, err := json.Marshal(map[string]any{"model": "text-embedding-3-large", "input": texts})
	require.NoError(t, err)
	req, err := DecodeEmbeddingRequest(body)
	require.NoError(t, err)
	calls := req.ToGeminiEmbed("models/gemini-embedding-001")
	require.Nil(t, calls.Single)
	require.Len(t, calls.Batches, 3)
	var got []string
	for i, b := range calls.Batches {
		require.Len(t, b.Requests, []int{100, 100, 50}[i])
		for _, r := range b.Requests {
			require.Equal(t, "models/gemini-embedding-001", r.Model, "no doubled models/ prefix")
			got = append(got, r.Content.Parts[0].Text)
		}
	}
	require.Equal(t, texts, got)
}

// TestEmbeddingNormalisation checks that vectors leave with unit length and that
// base64 carries the same float32 values as the float form.
func TestEmbeddingNormalisation(t *testing.T) {
	req := &EmbeddingRequest{Model: "m", Input: EmbeddingInput{Texts: []string{"a", "b", "c"}, Present: true}}
	floats, err := FromGeminiEmbed(req, testVectors, 3)
	require.NoError(t, err)
	req.EncodingFormat = EncodingBase64
	b64, err := FromGeminiEmbed(req, testVectors, 3)
	require.NoError(t, err)

	var f, b struct {
		Data []struct {
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(floats, &f))
	require.NoError(t, json.Unmarshal(b64, &b))
	for i := range f.Data {
		var vec []float32
		require.NoError(t, json.Unmarshal(f.Data[i].Embedding, &vec))
		var s string
		require.NoError(t, json.Unmarshal(b.Data[i].Embedding, &s))
		raw, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err)
		require.Len(t, raw, 4*len(vec))
		var norm float64
		for k, v := range vec {
			require.Equal(t, v, math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:])))
			norm += float64(v) * float64(v)
		}
		if i < 2 {
			require.InDelta(t, 1, norm, 1e-6, "vector %d has unit length", i)
		} else {
			require.Zero(t, norm, "a zero vector stays zero")
		}
	}
}

// TestEmbeddingCountMismatch checks that a short upstream answer is a 502, not a
// response with missing vectors.
func TestEmbeddingCountMismatch(t *testing.T) {
	req := &EmbeddingRequest{Model: "m", Input: EmbeddingInput{Texts: []string{"a", "b"}, Present: true}}
	_, err := FromGeminiEmbed(req, testVectors[:1], 1)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 502, e.Status())
}

// TestBadEmbeddingRequests checks each bad embeddings request's status, param and code.
func TestBadEmbeddingRequests(t *testing.T) {
	cases := []struct{ name, body, param, code string }{
		{"malformed JSON", `{"model":`, "", ""},
		{"body is a string", `"hello"`, "", CodeInvalidType},
		{"missing model", `{"input":"x"}`, "model", CodeMissingParameter},
		{"missing input", `{"model":"m"}`, "input", CodeMissingParameter},
		{"null input", `{"model":"m","input":null}`, "input", CodeMissingParameter},
		{"empty array", `{"model":"m","input":[]}`, "input", CodeInvalidValue},
		{"empty string", `{"model":"m","input":""}`, "input[0]", CodeInvalidValue},
		{"blank element", `{"model":"m","input":["a","  "]}`, "input[1]", CodeInvalidValue},
		{"token array", `{"model":"m","input":[1,2,3]}`, "input", CodeUnsupportedValue},
		{"array of token arrays", `{"model":"m","input":[[1,2],[3]]}`, "input", CodeUnsupportedValue},
		{"input as object", `{"model":"m","input":{"text":"x"}}`, "input", CodeInvalidType},
		{"mixed array", `{"model":"m","input":["a",{"b":1}]}`, "input[1]", CodeInvalidType},
		{"bad encoding", `{"model":"m","input":"x","encoding_format":"int8"}`, "encoding_format", CodeInvalidValue},
		{"zero dimensions", `{"model":"m","input":"x","dimensions":0}`, "dimensions", CodeInvalidValue},
		{"dimensions as string", `{"model":"m","input":"x","dimensions":"768"}`, "dimensions", CodeInvalidType},
		{"too many inputs", `{"model":"m","input":[` + strings.Repeat(`"x",`, MaxEmbeddingInputs) + `"x"]}`, "input", CodeInvalidValue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeEmbeddingRequest([]byte(tc.body))
			require.Nil(t, req)
			e := requireClientError(t, err)
			require.Equal(t, 400, e.Status())
			require.Equal(t, TypeInvalidRequest, e.Type)
			require.Equal(t, tc.param, e.Param)
			require.Equal(t, tc.code, e.Code)
		})
	}
}
