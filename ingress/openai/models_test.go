package openai

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// TestModelList checks names without the models/ prefix, aliases after models in name
// order, no duplicates, and the owners.
func TestModelList(t *testing.T) {
	models := []gemini.Model{
		{Name: "models/gemini-2.5-flash"},
		{Name: "models/gemini-2.5-pro"},
		{Name: "models/gemini-2.5-flash"},
		{Name: ""},
		{Name: "models/gemini-embedding-001"},
	}
	aliases := map[string]string{"gpt-4o": "gemini-2.5-pro", "gpt-4o-mini": "gemini-2.5-flash", "gemini-2.5-pro": "gemini-2.5-pro"}
	got := ModelList(models, aliases, 1700000000)
	require.JSONEq(t, `{"object":"list","data":[
		{"id":"gemini-2.5-flash","object":"model","created":1700000000,"owned_by":"google"},
		{"id":"gemini-2.5-pro","object":"model","created":1700000000,"owned_by":"google"},
		{"id":"gemini-embedding-001","object":"model","created":1700000000,"owned_by":"google"},
		{"id":"gpt-4o","object":"model","created":1700000000,"owned_by":"gemini-code-api"},
		{"id":"gpt-4o-mini","object":"model","created":1700000000,"owned_by":"gemini-code-api"}
	]}`, string(got))

	require.JSONEq(t, `{"object":"list","data":[]}`, string(ModelList(nil, nil, 0)))
	require.True(t, json.Valid(ModelObject(`we"ird`, OwnerGateway, 1)))
}
