package anthropic

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// seedFiles adds every file matching pattern under testdata to the corpus.
func seedFiles(f *testing.F, pattern string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", pattern))
	require.NoError(f, err)
	require.NotEmpty(f, paths)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
}

// requireClientError checks that err is nil or an *Error with a 4xx status and a valid
// Anthropic error body.
func requireClientError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	require.True(t, errors.As(err, &e), "error is %T, not *Error: %v", err, err)
	require.GreaterOrEqual(t, e.Status(), 400)
	require.Less(t, e.Status(), 500)
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type    ErrorType `json:"type"`
			Message string    `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(e.Body(), &body), "body %q", e.Body())
	require.Equal(t, "error", body.Type)
	require.Equal(t, e.Type, body.Error.Type)
	require.Equal(t, e.Message, body.Error.Message)
}

// FuzzDecodeMessagesRequest: decoding never panics and fails only with a 4xx *Error;
// a request that decodes always translates, for every model, to a body that marshals.
func FuzzDecodeMessagesRequest(f *testing.F) {
	seedFiles(f, "requests/*.json")
	for _, bad := range badRequests() {
		f.Add([]byte(bad.body))
	}
	optsList := []ToGeminiOptions{flash, pro, {}, {Model: "gemini-2.0-flash", OutputTokenLimit: 100}, {Model: "gemini-2.5-flash-lite"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeMessagesRequest(body)
		requireClientError(t, err)
		creq, cerr := DecodeCountTokensRequest(body)
		requireClientError(t, cerr)
		if err == nil {
			require.NoError(t, cerr, "a valid messages body is a valid count_tokens body")
			for _, opts := range optsList {
				g, err := req.ToGemini(opts)
				require.NoError(t, err, "ToGemini refused a decoded request")
				b, err := json.Marshal(g)
				require.NoError(t, err)
				require.True(t, json.Valid(b))
			}
		}
		if cerr == nil {
			g, err := creq.ToGemini(flash)
			require.NoError(t, err)
			_, err = json.Marshal(g)
			require.NoError(t, err)
		}
	})
}

// chunksFromProgram turns arbitrary bytes into Gemini chunks, so that every fuzz input
// exercises the translator even when it is not a Gemini SSE body. Each byte is an
// instruction; the next byte, where needed, is its operand.
func chunksFromProgram(prog []byte) []*gemini.GenerateContentResponse {
	finishes := []string{"STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "MALFORMED_FUNCTION_CALL", "PROHIBITED_CONTENT", ""}
	argsList := []string{`{"a":1}`, `{}`, `[1]`, `"s"`, `null`, `{"nested":{"x":[1,2,"\u2028"]}}`, ``, `{"k":"v"}`}
	texts := []string{"a", "", "hello \"world\"\n", "\u2028<&>", "\xff\xfe", "ü", " ", "\x00"}
	var out []*gemini.GenerateContentResponse
	cur := &gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{}}}
	parts := func() *[]gemini.Part {
		if len(cur.Candidates) == 0 {
			cur.Candidates = []gemini.Candidate{{}}
		}
		return &cur.Candidates[0].Content.Parts
	}
	for i := 0; i < len(prog); i++ {
		arg := 0
		if i+1 < len(prog) {
			arg = int(prog[i+1])
		}
		switch prog[i] % 10 {
		case 0:
			*parts() = append(*parts(), gemini.Part{Text: texts[arg%len(texts)], Thought: true})
		case 1:
			*parts() = append(*parts(), gemini.Part{Text: texts[arg%len(texts)]})
		case 2:
			id := ""
			if arg%2 == 0 {
				id = "call_" + strconv.Itoa(arg)
			}
			*parts() = append(*parts(), gemini.Part{FunctionCall: &gemini.FunctionCall{ID: id, Name: "fn", Args: json.RawMessage(argsList[arg%len(argsList)])}})
		case 3:
			*parts() = append(*parts(), gemini.Part{Text: texts[arg%len(texts)], ThoughtSignature: "sig" + strconv.Itoa(arg)})
		case 4:
			*parts() = append(*parts(), gemini.Part{Text: texts[arg%len(texts)], Thought: true, ThoughtSignature: "tsig" + strconv.Itoa(arg)})
		case 5:
			*parts() = append(*parts(), gemini.Part{FunctionCall: &gemini.FunctionCall{Name: "fn", Args: json.RawMessage(`{"i":1}`)}, ThoughtSignature: "csig"})
		case 6:
			parts()
			cur.Candidates[0].FinishReason = finishes[arg%len(finishes)]
		case 7:
			cur.UsageMetadata = &gemini.UsageMetadata{PromptTokenCount: int64(arg), CachedContentTokenCount: int64(arg % 7), CandidatesTokenCount: int64(i), ThoughtsTokenCount: int64(arg % 3)}
		case 8:
			*parts() = append(*parts(), gemini.Part{InlineData: &gemini.Blob{MimeType: "image/png", Data: "AA=="}})
		case 9:
			out = append(out, cur)
			cur = &gemini.GenerateContentResponse{Candidates: []gemini.Candidate{{}}}
			if arg%5 == 0 {
				cur.Candidates = nil
				cur.PromptFeedback = json.RawMessage(`{"blockReason":"SAFETY"}`)
			}
		}
	}
	return append(out, cur)
}

// FuzzStreamTranslator: arbitrary Gemini chunks never panic, and the output is
// well-formed SSE in Anthropic's event grammar (every block started is stopped, indices
// increase from 0) whose tool inputs accumulate to JSON objects. The SDK's own
// accumulation is checked by TestSDKAccumulatesStream; it is too slow to run per exec.
func FuzzStreamTranslator(f *testing.F) {
	seedFiles(f, "streams/*.sse")
	f.Add([]byte{0, 1, 0, 2, 1, 3, 9, 1, 1, 0, 5, 0, 2, 3, 6, 0, 7, 9})
	f.Add([]byte{4, 1, 4, 2, 3, 0, 8, 0, 2, 1, 2, 2, 9, 0, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		chunks := parseGeminiSSE(data)
		if len(chunks) == 0 {
			chunks = chunksFromProgram(data)
		}
		early := len(data) > 0 && data[0]&1 == 1
		out := translateStream(t, testMeta, early, chunks)
		events, err := parseSSE(out)
		require.NoError(t, err)
		require.NoError(t, checkEventOrder(events))
		inputs := map[int]string{}
		for _, ev := range events {
			if ev.name != "content_block_delta" {
				continue
			}
			var e struct {
				Index int `json:"index"`
				Delta struct {
					Type        string `json:"type"`
					PartialJSON string `json:"partial_json"`
				} `json:"delta"`
			}
			require.NoError(t, json.Unmarshal(ev.data, &e))
			if e.Delta.Type == "input_json_delta" {
				inputs[e.Index] += e.Delta.PartialJSON
			}
		}
		for i, in := range inputs {
			require.Equal(t, byte('{'), jsonKind(json.RawMessage(in)), "block %d input %q", i, in)
			require.True(t, json.Valid([]byte(in)), "block %d input %q", i, in)
		}
	})
}

// FuzzAppendJSONString: the hand-written string encoder decodes to what encoding/json's
// own encoding decodes to.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t", "\x00\x1f\x7f", "\u2028\u2029", "<&>", "\xff", "ü€𝄞"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ours := appendJSONString(nil, s)
		require.True(t, json.Valid(ours), "%q", ours)
		std, err := json.Marshal(s)
		require.NoError(t, err)
		var a, b string
		require.NoError(t, json.Unmarshal(ours, &a))
		require.NoError(t, json.Unmarshal(std, &b))
		require.Equal(t, b, a)
	})
}
