package gemsim

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

func TestCountTokensEndpoint(t *testing.T) {
	s := newSim(t, Config{})
	full := gemini.GenerateContentRequest{
		SystemInstruction: &gemini.Content{Parts: []gemini.Part{{Text: "Answer in French."}}},
		Contents:          userText("How many tokens is this?").Contents,
		CachedContent:     "cachedContents/xyz",
	}
	cases := []struct {
		name       string
		why        string
		body       any
		wantCode   int
		wantTotal  int64
		wantCached int64
	}{
		{name: "contents", why: "contents alone",
			body: gemini.CountTokensRequest{Contents: userText("How many tokens is this?").Contents}, wantCode: 200,
			wantTotal: int64(CountTokens("How many tokens is this?"))},
		{name: "whole request", why: "a generateContentRequest counts like promptTokenCount",
			body: gemini.CountTokensRequest{GenerateContentRequest: &full}, wantCode: 200,
			wantTotal:  int64(CountTokens("How many tokens is this?") + CountTokens("Answer in French.")),
			wantCached: int64(CountTokens("How many tokens is this?")+CountTokens("Answer in French.")) / 2},
		{name: "both", why: "contents and generateContentRequest exclude each other",
			body: gemini.CountTokensRequest{Contents: full.Contents, GenerateContentRequest: &full}, wantCode: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.do(http.MethodPost, "/v1beta/models/gemini-2.5-flash:countTokens", keyP1a, tc.body)
			require.Equal(t, tc.wantCode, code, string(body))
			if code != 200 {
				return
			}
			var resp gemini.CountTokensResponse
			require.NoError(t, json.Unmarshal(body, &resp))
			require.Equal(t, tc.wantTotal, resp.TotalTokens, tc.why)
			require.Equal(t, tc.wantCached, resp.CachedContentTokenCount, tc.why)
		})
	}
	gen := s.generateOK(keyP1a, flash, full)
	require.EqualValues(t, cases[1].wantTotal, gen.UsageMetadata.PromptTokenCount, "countTokens predicts promptTokenCount")
}
