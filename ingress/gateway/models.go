package gateway

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/geminicodeapi/gca/ingress/cache"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// ModelLister fetches the upstream model list; main wires the upstream client with a
// key from the pool.
type ModelLister func(ctx context.Context) ([]gemini.Model, error)

// ModelCatalog is the model list (cached for ModelsTTL, warmed up at start) and the
// alias table. When the upstream list cannot be fetched, the built-in list of known
// Gemini models stands in, so a cold start without upstream still resolves names.
type ModelCatalog struct {
	list    ModelLister
	aliases map[string]string
	prefix  []aliasPrefix
	def     string
	cache   *cache.Cache[[]gemini.Model]
	log     *slog.Logger

	mu      sync.Mutex // one refresh at a time
	fetched bool
}

type aliasPrefix struct{ prefix, target string }

const catalogKey = "models"

// NewModelCatalog returns a catalog; aliases with a trailing "*" match by prefix.
func NewModelCatalog(list ModelLister, aliases map[string]string, defaultModel string, ttl time.Duration, now func() time.Time, log *slog.Logger) *ModelCatalog {
	m := &ModelCatalog{list: list, aliases: map[string]string{}, def: defaultModel,
		cache: cache.New[[]gemini.Model]("model_list", 1, ttl, now), log: log}
	for k, v := range aliases {
		if p, ok := strings.CutSuffix(k, "*"); ok {
			m.prefix = append(m.prefix, aliasPrefix{p, v})
			continue
		}
		m.aliases[k] = v
	}
	// Longest prefix first, so "claude-3-5-haiku*" beats "claude-3*".
	sort.Slice(m.prefix, func(i, j int) bool { return len(m.prefix[i].prefix) > len(m.prefix[j].prefix) })
	return m
}

// Stats returns the model-list cache's counters.
func (m *ModelCatalog) Stats() cache.Stats { return m.cache.Stats() }

// Aliases returns the exact aliases (for model lists).
func (m *ModelCatalog) Aliases() map[string]string { return m.aliases }

// Models returns the model list, refreshing it when the cache entry expired.
func (m *ModelCatalog) Models(ctx context.Context) []gemini.Model {
	if v, ok := m.cache.Get(catalogKey); ok {
		return v
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.cache.Get(catalogKey); ok {
		return v
	}
	if m.list != nil {
		models, err := m.list(ctx)
		if err == nil && len(models) > 0 {
			m.cache.Set(catalogKey, models)
			m.fetched = true
			return models
		}
		m.log.Warn("fetch upstream model list; using the built-in list", "err", err)
	}
	builtin := BuiltinModels()
	// Retry the upstream soon rather than after a whole TTL.
	m.cache.SetTTL(catalogKey, builtin, time.Minute)
	return builtin
}

// Warm fetches the model list once at start.
func (m *ModelCatalog) Warm(ctx context.Context) { m.Models(ctx) }

// Resolve maps a client model name to the Gemini model to call.
func (m *ModelCatalog) Resolve(name string) (string, bool) {
	name = strings.TrimPrefix(name, "models/")
	if t, ok := m.aliases[name]; ok {
		return t, true
	}
	for _, p := range m.prefix {
		if strings.HasPrefix(name, p.prefix) {
			return p.target, true
		}
	}
	if _, ok := m.find(name); ok {
		return name, true
	}
	if m.def != "" {
		return m.def, true
	}
	return "", false
}

// Find returns the model's description.
func (m *ModelCatalog) find(name string) (gemini.Model, bool) {
	for _, md := range m.Models(context.Background()) {
		if strings.TrimPrefix(md.Name, "models/") == name {
			return md, true
		}
	}
	return gemini.Model{}, false
}

// OutputLimit is the model's outputTokenLimit, 0 when unknown.
func (m *ModelCatalog) OutputLimit(model string) int64 {
	md, _ := m.find(model)
	return md.OutputTokenLimit
}

// BuiltinModels is the list used until the upstream's is fetched.
func BuiltinModels() []gemini.Model {
	gen := []string{"generateContent", "countTokens", "streamGenerateContent"}
	emb := []string{"embedContent", "batchEmbedContents", "countTokens"}
	return []gemini.Model{
		{Name: "models/gemini-2.5-pro", DisplayName: "Gemini 2.5 Pro", InputTokenLimit: 1048576, OutputTokenLimit: 65536, SupportedGenerationMethods: gen, Thinking: true},
		{Name: "models/gemini-2.5-flash", DisplayName: "Gemini 2.5 Flash", InputTokenLimit: 1048576, OutputTokenLimit: 65536, SupportedGenerationMethods: gen, Thinking: true},
		{Name: "models/gemini-2.5-flash-lite", DisplayName: "Gemini 2.5 Flash-Lite", InputTokenLimit: 1048576, OutputTokenLimit: 65536, SupportedGenerationMethods: gen, Thinking: true},
		{Name: "models/gemini-2.0-flash", DisplayName: "Gemini 2.0 Flash", InputTokenLimit: 1048576, OutputTokenLimit: 8192, SupportedGenerationMethods: gen},
		{Name: "models/gemini-embedding-001", DisplayName: "Gemini Embedding 001", InputTokenLimit: 2048, OutputTokenLimit: 1, SupportedGenerationMethods: emb},
		{Name: "models/text-embedding-004", DisplayName: "Text Embedding 004", InputTokenLimit: 2048, OutputTokenLimit: 1, SupportedGenerationMethods: emb},
	}
}
