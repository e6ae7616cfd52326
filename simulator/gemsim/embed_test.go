package gemsim

import (
	"encoding/json"
	"math"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// embedOK embeds one text and returns the vector.
func embedOK(t *testing.T, s *sim, model, text string, dim *int) []float32 {
	t.Helper()
	code, body := s.do(http.MethodPost, "/v1beta/models/"+model+":embedContent", keyP1a, gemini.EmbedContentRequest{
		Content: gemini.Content{Parts: []gemini.Part{{Text: text}}}, OutputDimensionality: dim,
	})
	require.Equal(t, http.StatusOK, code, string(body))
	var resp gemini.EmbedContentResponse
	require.NoError(t, json.Unmarshal(body, &resp))
	return resp.Embedding.Values
}

// norm is the Euclidean length of v.
func norm(v []float32) float64 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	return math.Sqrt(n)
}

func TestEmbedContent(t *testing.T) {
	s := newSim(t, Config{})
	full := embedOK(t, s, "gemini-embedding-001", "the quick brown fox", nil)
	require.Len(t, full, 3072)
	require.InDelta(t, 1, norm(full), 1e-4, "full-size vectors are normalised")
	require.Equal(t, full, embedOK(t, s, "gemini-embedding-001", "the quick brown fox", nil), "deterministic")
	require.NotEqual(t, full, embedOK(t, s, "gemini-embedding-001", "the lazy dog", nil))

	short := embedOK(t, s, "gemini-embedding-001", "the quick brown fox", ptr(256))
	require.Equal(t, full[:256], short, "a smaller dimensionality is a prefix, as with Matryoshka embeddings")
	require.Len(t, embedOK(t, s, "text-embedding-004", "x", nil), 768)

	other := newSim(t, Config{Seed: 99})
	require.Equal(t, full, embedOK(t, other, "gemini-embedding-001", "the quick brown fox", nil), "vectors depend on the text only")
}

func TestBatchEmbedContents(t *testing.T) {
	entry := func(model, text string) gemini.EmbedContentRequest {
		return gemini.EmbedContentRequest{Model: model, Content: gemini.Content{Parts: []gemini.Part{{Text: text}}}}
	}
	many := gemini.BatchEmbedContentsRequest{}
	for range 101 {
		many.Requests = append(many.Requests, entry("models/gemini-embedding-001", "x"))
	}
	cases := []struct {
		name     string
		why      string
		req      gemini.BatchEmbedContentsRequest
		wantCode int
		wantMsg  string
	}{
		{name: "two entries", why: "one embedding per entry, in order",
			req:      gemini.BatchEmbedContentsRequest{Requests: []gemini.EmbedContentRequest{entry("models/gemini-embedding-001", "a"), entry("models/gemini-embedding-001", "b")}},
			wantCode: 200},
		{name: "bare model name", why: "entries must say models/{model}",
			req:      gemini.BatchEmbedContentsRequest{Requests: []gemini.EmbedContentRequest{entry("gemini-embedding-001", "a")}},
			wantCode: 400, wantMsg: "requests[0].model: unexpected model name format"},
		{name: "other model", why: "entries must name the URL's model",
			req:      gemini.BatchEmbedContentsRequest{Requests: []gemini.EmbedContentRequest{entry("models/gemini-embedding-001", "a"), entry("models/text-embedding-004", "b")}},
			wantCode: 400, wantMsg: "requests[1].model"},
		{name: "empty", why: "a batch needs entries", wantCode: 400, wantMsg: "requests is not specified"},
		{name: "too many", why: "at most 100 entries", req: many, wantCode: 400, wantMsg: "at most 100"},
	}
	s := newSim(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.do(http.MethodPost, "/v1beta/models/gemini-embedding-001:batchEmbedContents", keyP1a, tc.req)
			require.Equal(t, tc.wantCode, code, string(body))
			if tc.wantCode != 200 {
				require.Contains(t, decodeError(t, body).Message, tc.wantMsg, tc.why)
				return
			}
			var resp gemini.BatchEmbedContentsResponse
			require.NoError(t, json.Unmarshal(body, &resp))
			require.Len(t, resp.Embeddings, len(tc.req.Requests))
			require.Equal(t, embedOK(t, s, "gemini-embedding-001", "a", nil), resp.Embeddings[0].Values)
		})
	}
	require.EqualValues(t, 3, s.srv.Stats().Projects["p1"].Models["gemini-embedding-001"].Accepted, "two batch entries and one single embed")

	code, body := s.do(http.MethodPost, "/v1beta/models/gemini-2.5-flash:embedContent", keyP1a, entry("", "x"))
	require.Equal(t, http.StatusNotFound, code, "a chat model does not embed: %s", body)
}
