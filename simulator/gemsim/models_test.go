package gemsim

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

func TestModels(t *testing.T) {
	s := newSim(t, Config{})
	code, body := s.do(http.MethodGet, "/v1beta/models", keyP1a, nil)
	require.Equal(t, http.StatusOK, code)
	var list gemini.ListModelsResponse
	require.NoError(t, json.Unmarshal(body, &list))
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
		require.NotEmpty(t, m.SupportedGenerationMethods)
		require.Positive(t, m.InputTokenLimit)
	}
	require.Equal(t, []string{
		"models/gemini-2.5-pro", "models/gemini-2.5-flash", "models/gemini-2.5-flash-lite",
		"models/gemini-2.0-flash", "models/gemini-embedding-001", "models/text-embedding-004",
	}, names)

	cases := []struct {
		name     string
		path     string
		key      string
		wantCode int
		wantName string
	}{
		{name: "one model", path: "/v1beta/models/gemini-2.5-pro", key: keyP1a, wantCode: 200, wantName: "models/gemini-2.5-pro"},
		{name: "v1 prefix", path: "/v1/models/gemini-2.0-flash", key: keyP1a, wantCode: 200, wantName: "models/gemini-2.0-flash"},
		{name: "unknown", path: "/v1beta/models/gemini-0", key: keyP1a, wantCode: 404},
		{name: "no key", path: "/v1beta/models", wantCode: 403},
		{name: "not a route", path: "/v2/models", key: keyP1a, wantCode: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := s.do(http.MethodGet, tc.path, tc.key, nil)
			require.Equal(t, tc.wantCode, code, string(body))
			if tc.wantName != "" {
				var m gemini.Model
				require.NoError(t, json.Unmarshal(body, &m))
				require.Equal(t, tc.wantName, m.Name)
			}
		})
	}
}

func TestCustomModels(t *testing.T) {
	s := newSim(t, Config{Models: []gemini.Model{
		{Name: "gemini-3-preview", SupportedGenerationMethods: []string{"generateContent", "countTokens"}, InputTokenLimit: 10, Thinking: true},
	}})
	resp := s.generateOK(keyP1a, "gemini-3-preview", userText("short"))
	require.Positive(t, resp.UsageMetadata.ThoughtsTokenCount)

	code, body := s.generate(keyP1a, "gemini-3-preview", userText("this prompt is longer than ten tokens, by design"))
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, decodeError(t, body).Message, "exceeds the maximum number of tokens allowed (10)")

	code, _ = s.generate(keyP1a, flash, userText("x"))
	require.Equal(t, http.StatusNotFound, code, "configured models replace the defaults")
}
