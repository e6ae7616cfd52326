package gemsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Tiers a project can be on. The tier selects the default limits and the quota ids of
// 429 bodies (free-tier ids carry the "-FreeTier" suffix).
const (
	TierFree = "free"
	TierOne  = "tier1"
)

// Defaults applied by New to zero-valued fields.
const (
	DefaultStreamChunks = 4
	DefaultAddr         = "127.0.0.1:8090"
)

// Bounds checked by Validate.
const (
	maxStreamChunks = 10_000
	maxAnswerWords  = 1_000_000
)

// Limits are the quotas of one model for one project. Zero means unlimited.
type Limits struct {
	// RPM is requests per clock minute.
	RPM int64 `json:"rpm"`
	// TPM is input (prompt) tokens per clock minute.
	TPM int64 `json:"tpm"`
	// RPD is requests per day; the day ends at midnight America/Los_Angeles.
	RPD int64 `json:"rpd"`
}

// ProjectConfig is one Google Cloud project and the keys that belong to it. Keys of one
// project share its quotas.
type ProjectConfig struct {
	// ID names the project in stats and logs. Required and unique.
	ID string `json:"id"`
	// Tier is TierFree (the default when empty) or TierOne.
	Tier string `json:"tier,omitempty"`
	// Keys are the valid API keys of the project.
	Keys []string `json:"keys"`
	// ForbiddenKeys are known keys that get 403 PERMISSION_DENIED (a suspended consumer).
	ForbiddenKeys []string `json:"forbidden_keys,omitempty"`
}

// Config configures a simulated Gemini API. The zero value is usable: New fills every
// zero field with its documented default.
type Config struct {
	// Projects are the key pool. Default: none (every key is then invalid until keys are
	// added through POST /sim/config/keys); the command uses DemoProjects instead.
	Projects []ProjectConfig `json:"projects,omitempty"`
	// Limits override the tier defaults per model name, for every project. An entry
	// replaces all three limits of its model; zero means unlimited.
	Limits map[string]Limits `json:"limits,omitempty"`
	// Models are served by GET /v1beta/models and accepted in paths. Default: DefaultModels.
	Models []gemini.Model `json:"models,omitempty"`
	// Latency is the delay before the first byte of every accepted Gemini call. Default 0.
	Latency Duration `json:"latency,omitempty"`
	// LatencyJitter adds a seeded uniform delay in [0, LatencyJitter) to Latency. Default 0.
	LatencyJitter Duration `json:"latencyJitter,omitempty"`
	// StreamChunks is how many chunks a streamed text answer is split into. Default 4.
	StreamChunks int `json:"streamChunks,omitempty"`
	// ChunkInterval is the pause between stream chunks. Default 0.
	ChunkInterval Duration `json:"chunkInterval,omitempty"`
	// AnswerWords appends that many filler words to every text answer. Default 0.
	AnswerWords int `json:"answerWords,omitempty"`
	// Bare429Fraction is the share (0..1) of quota 429s sent without details, as the
	// real API sometimes does. Chosen by a generator seeded with Seed. Default 0.
	Bare429Fraction float64 `json:"bare429Fraction,omitempty"`
	// Seed seeds every pseudo-random choice (jitter, bare 429s, response ids). Default 0.
	Seed int64 `json:"seed,omitempty"`
	// Faults are queued at start, as if posted to /sim/faults. Default none.
	Faults []FaultRule `json:"faults,omitempty"`

	// Now is the clock of every quota window. Default time.Now.
	Now func() time.Time `json:"-"`
	// Logger receives control-API and lifecycle logs. Default: discarded.
	Logger *slog.Logger `json:"-"`
}

// LoadConfig reads a JSON config file. Unknown fields are errors, so that a typo does not
// silently fall back to a default.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read simulator config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("decode simulator config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate reports every problem of the config at once. Zero values are valid: they
// stand for the defaults.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, validateProjects(c.Projects, nil)...)
	for model, l := range c.Limits {
		if strings.TrimSpace(model) == "" {
			errs = append(errs, errors.New("limits: empty model name"))
		}
		if l.RPM < 0 || l.TPM < 0 || l.RPD < 0 {
			errs = append(errs, fmt.Errorf("limits[%s]: negative limit", model))
		}
	}
	seen := make(map[string]bool, len(c.Models))
	for i, m := range c.Models {
		id := modelID(m.Name)
		switch {
		case id == "":
			errs = append(errs, fmt.Errorf("models[%d]: empty name", i))
		case seen[id]:
			errs = append(errs, fmt.Errorf("models[%d]: duplicate model %s", i, id))
		}
		seen[id] = true
		if len(m.SupportedGenerationMethods) == 0 {
			errs = append(errs, fmt.Errorf("models[%d] %s: no supportedGenerationMethods", i, id))
		}
		if m.InputTokenLimit < 0 || m.OutputTokenLimit < 0 {
			errs = append(errs, fmt.Errorf("models[%d] %s: negative token limit", i, id))
		}
	}
	if c.Latency < 0 || c.LatencyJitter < 0 || c.ChunkInterval < 0 {
		errs = append(errs, errors.New("latency, latencyJitter and chunkInterval must not be negative"))
	}
	if c.StreamChunks < 0 || c.StreamChunks > maxStreamChunks {
		errs = append(errs, fmt.Errorf("streamChunks %d: want 0 (default %d) to %d", c.StreamChunks, DefaultStreamChunks, maxStreamChunks))
	}
	if c.AnswerWords < 0 || c.AnswerWords > maxAnswerWords {
		errs = append(errs, fmt.Errorf("answerWords %d: want 0 to %d", c.AnswerWords, maxAnswerWords))
	}
	if c.Bare429Fraction < 0 || c.Bare429Fraction > 1 {
		errs = append(errs, fmt.Errorf("bare429Fraction %g: want 0 to 1", c.Bare429Fraction))
	}
	for i, f := range c.Faults {
		if err := f.validate(); err != nil {
			errs = append(errs, fmt.Errorf("faults[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// validateProjects checks projects on their own and against the keys already known
// (taken, which may be nil).
func validateProjects(projects []ProjectConfig, taken map[string]bool) []error {
	var errs []error
	ids := make(map[string]bool, len(projects))
	keys := make(map[string]bool)
	for i, p := range projects {
		switch {
		case strings.TrimSpace(p.ID) == "":
			errs = append(errs, fmt.Errorf("projects[%d]: empty id", i))
		case ids[p.ID]:
			errs = append(errs, fmt.Errorf("projects[%d]: duplicate id %s", i, p.ID))
		}
		ids[p.ID] = true
		if p.Tier != "" && p.Tier != TierFree && p.Tier != TierOne {
			errs = append(errs, fmt.Errorf("projects[%d] %s: tier %q: want %q or %q", i, p.ID, p.Tier, TierFree, TierOne))
		}
		if len(p.Keys)+len(p.ForbiddenKeys) == 0 {
			errs = append(errs, fmt.Errorf("projects[%d] %s: no keys", i, p.ID))
		}
		for _, k := range append(append([]string(nil), p.Keys...), p.ForbiddenKeys...) {
			switch {
			case strings.TrimSpace(k) == "":
				errs = append(errs, fmt.Errorf("projects[%d] %s: empty key", i, p.ID))
			case keys[k] || taken[k]:
				errs = append(errs, fmt.Errorf("projects[%d] %s: key %s is listed twice", i, p.ID, k))
			}
			keys[k] = true
		}
	}
	return errs
}

// withDefaults returns the config with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.StreamChunks == 0 {
		c.StreamChunks = DefaultStreamChunks
	}
	if len(c.Models) == 0 {
		c.Models = DefaultModels()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Duration is a time.Duration that reads from JSON as a Go duration string ("250ms",
// "1.5s") or as a number of milliseconds, and writes as a string.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("read duration: %w", err)
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("read duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("read duration %s: want a string like \"250ms\" or milliseconds", b)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}
