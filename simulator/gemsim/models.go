package gemsim

import (
	"net/http"
	"slices"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Generation methods as named in Model.SupportedGenerationMethods. The simulator's
// routes map onto them: streamGenerateContent needs generateContent, and
// batchEmbedContents needs embedContent.
const (
	methodGenerate      = "generateContent"
	methodStream        = "streamGenerateContent"
	methodCountTokens   = "countTokens"
	methodEmbed         = "embedContent"
	methodBatchEmbed    = "batchEmbedContents"
	methodListModels    = "listModels"
	methodGetModel      = "getModel"
	defaultEmbeddingDim = 768
)

// DefaultModels returns the models the simulator serves when Config.Models is empty,
// with the token limits and methods the real API lists for them.
func DefaultModels() []gemini.Model {
	temp1, temp2, topP := 1.0, 2.0, 0.95
	topK := 64
	chat := []string{"generateContent", "countTokens", "createCachedContent", "batchGenerateContent"}
	gen := func(id, display, version string, out int64, thinking bool) gemini.Model {
		return gemini.Model{
			Name:                       "models/" + id,
			Version:                    version,
			DisplayName:                display,
			Description:                display + " (simulated)",
			InputTokenLimit:            1_048_576,
			OutputTokenLimit:           out,
			SupportedGenerationMethods: slices.Clone(chat),
			Temperature:                &temp1,
			MaxTemperature:             &temp2,
			TopP:                       &topP,
			TopK:                       &topK,
			Thinking:                   thinking,
		}
	}
	embed := func(id, display, version string, methods ...string) gemini.Model {
		return gemini.Model{
			Name:                       "models/" + id,
			Version:                    version,
			DisplayName:                display,
			Description:                display + " (simulated)",
			InputTokenLimit:            2048,
			OutputTokenLimit:           1,
			SupportedGenerationMethods: methods,
		}
	}
	return []gemini.Model{
		gen("gemini-2.5-pro", "Gemini 2.5 Pro", "2.5", 65_536, true),
		gen("gemini-2.5-flash", "Gemini 2.5 Flash", "001", 65_536, true),
		gen("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", "001", 65_536, true),
		gen("gemini-2.0-flash", "Gemini 2.0 Flash", "2.0", 8192, false),
		embed("gemini-embedding-001", "Gemini Embedding 001", "001", "embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"),
		embed("text-embedding-004", "Text Embedding 004", "004", "embedContent"),
	}
}

// modelID strips the "models/" prefix of a resource name.
func modelID(name string) string {
	return strings.TrimPrefix(strings.TrimSpace(name), "models/")
}

// model is a served model with what the handlers need precomputed.
type model struct {
	info gemini.Model
	id   string
	// methods holds the supported generation methods, route names included.
	methods map[string]bool
	// embedDim is the default embedding size of an embedding model.
	embedDim int
}

// newModel prepares a configured model for serving.
func newModel(info gemini.Model) *model {
	m := &model{info: info, id: modelID(info.Name), methods: make(map[string]bool)}
	m.info.Name = "models/" + m.id
	if m.info.BaseModelID == "" {
		m.info.BaseModelID = m.id
	}
	for _, g := range info.SupportedGenerationMethods {
		m.methods[g] = true
	}
	if m.methods[methodGenerate] {
		m.methods[methodStream] = true
	}
	if m.methods[methodEmbed] {
		m.methods[methodBatchEmbed] = true
		m.methods[methodCountTokens] = true
		m.embedDim = defaultEmbeddingDim
		if m.id == "gemini-embedding-001" {
			m.embedDim = 3072
		}
	}
	return m
}

// embedding reports whether the model is an embedding model; its 429s name the
// embed_content quotas.
func (m *model) embedding() bool { return m.methods[methodEmbed] }

// listModels answers GET /v1beta/models with the list encoded once at start.
func (c *call) listModels() {
	c.writeRaw(http.StatusOK, c.s.modelList)
}

// getModel answers GET /v1beta/models/{model}.
func (c *call) getModel() {
	c.writeJSON(http.StatusOK, &c.model.info)
}
