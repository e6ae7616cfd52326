package gemsim

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

func TestCountTokens(t *testing.T) {
	cases := []struct {
		text string
		want int
	}{
		{"", 0}, {"a", 1}, {"abcd", 1}, {"abcde", 2}, {"héllo", 2}, {strings.Repeat("x", 400), 100},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, CountTokens(tc.text), tc.text)
	}
}

func TestPartTokens(t *testing.T) {
	cases := []struct {
		name string
		part gemini.Part
		want int
	}{
		{name: "text", part: gemini.Part{Text: "12345678"}, want: 2},
		{name: "inline image", part: gemini.Part{InlineData: &gemini.Blob{MimeType: "image/png", Data: strings.Repeat("A", 10_000)}}, want: imageTokens},
		{name: "file", part: gemini.Part{FileData: &gemini.FileData{FileURI: "https://example.com/f"}}, want: imageTokens},
		{name: "function call", part: gemini.Part{FunctionCall: &gemini.FunctionCall{Name: "f", Args: json.RawMessage(`{"a":1}`)}}, want: 2},
		{name: "function response", part: gemini.Part{FunctionResponse: &gemini.FunctionResponse{Name: "fn", Response: json.RawMessage(`{}`)}}, want: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, partTokens(&tc.part))
		})
	}
}
