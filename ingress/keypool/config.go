package keypool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/geminicodeapi/gca/schemas"
)

// Environment variables read by LoadEnv.
const (
	// EnvKeysFile names the JSON keys file.
	EnvKeysFile = "GCA_KEYS_FILE"
	// EnvKeys holds keys as a comma-separated list of items, each one of
	//
	//	key                    the key is its own project, of the default tier
	//	project:key            the key belongs to project, of the project's tier
	//	project:tier:key       ... and the project is of that tier
	//
	// Gemini keys contain no colon or comma, so the split is unambiguous. Blank items
	// (a trailing comma) are ignored. These keys are added to the file's.
	EnvKeys = "GCA_GEMINI_KEYS"
)

// Config is the key pool: the keys, the projects they belong to, and the limits of
// each tier. Load it with Load or LoadEnv and check it with Validate. Zero values have
// documented defaults, so an empty file plus GCA_GEMINI_KEYS is a working pool.
type Config struct {
	// Keys are the Gemini API keys of the pool.
	Keys []KeyConfig `json:"keys"`
	// Projects declare tiers and per-project limit overrides. A project that keys
	// name but that is not listed here is of DefaultTier.
	Projects []ProjectConfig `json:"projects,omitempty"`
	// DefaultTier is the tier of projects that declare none. Default "free".
	DefaultTier string `json:"default_tier,omitempty"`
	// PassthroughTier is the tier of a pass-through client's key that the pool does
	// not list (such a key is its own project). Default "free".
	PassthroughTier string `json:"passthrough_tier,omitempty"`
	// Limits override the built-in limits (DefaultLimits), per tier and then per model;
	// model "*" is the row for models a table does not name. A tier without built-in
	// limits ("tier2") is defined by naming it here.
	Limits map[string]map[string]Limits `json:"limits,omitempty"`
}

// KeyConfig is one key of the pool.
type KeyConfig struct {
	// Key is the secret; it never prints (see Secret).
	Key Secret `json:"key"`
	// Project is the Google Cloud project of the key; keys of one project share its
	// quotas. Default: the key's own hash, i.e. the key is its own project.
	Project string `json:"project,omitempty"`
	// Models, when set, is the only models the key may serve.
	Models []string `json:"models,omitempty"`
	// Weight is the key's share under the weighted strategy. Default 1.
	Weight int `json:"weight,omitempty"`
	// Tier of the key's project; may instead be set on the project.
	Tier string `json:"tier,omitempty"`
	// Name is an optional label shown by the admin API.
	Name string `json:"name,omitempty"`

	// origin says where the key came from, for error messages.
	origin string
}

// ProjectConfig declares a project.
type ProjectConfig struct {
	ID   string `json:"id"`
	Tier string `json:"tier,omitempty"`
	// Limits override the tier's limits for this project only, per model.
	Limits map[string]Limits `json:"limits,omitempty"`
}

// Load reads the keys file at path (none when path is empty) and adds the keys of
// envKeys (the GCA_GEMINI_KEYS format). It does not validate; call Validate.
func Load(path, envKeys string) (*Config, error) {
	cfg := &Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read keys file: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(cfg); err != nil {
			// encoding/json errors name offsets and types, never the values, so no key
			// can leak through this message.
			return nil, fmt.Errorf("decode keys file %s: %w", path, err)
		}
		for i := range cfg.Keys {
			cfg.Keys[i].origin = fmt.Sprintf("%s keys[%d]", path, i)
		}
	}
	keys, err := ParseEnvKeys(envKeys)
	if err != nil {
		return nil, err
	}
	cfg.Keys = append(cfg.Keys, keys...)
	return cfg, nil
}

// LoadEnv is Load with the path and keys taken from GCA_KEYS_FILE and GCA_GEMINI_KEYS.
func LoadEnv(getenv func(string) string) (*Config, error) {
	return Load(getenv(EnvKeysFile), getenv(EnvKeys))
}

// ParseEnvKeys reads the GCA_GEMINI_KEYS format (see EnvKeys).
func ParseEnvKeys(s string) ([]KeyConfig, error) {
	var keys []KeyConfig
	var errs []error
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		origin := fmt.Sprintf("%s item %d", EnvKeys, i+1)
		parts := strings.Split(item, ":")
		k := KeyConfig{origin: origin}
		switch len(parts) {
		case 1:
			k.Key = NewSecret(parts[0])
		case 2:
			k.Project, k.Key = strings.TrimSpace(parts[0]), NewSecret(strings.TrimSpace(parts[1]))
		case 3:
			k.Project, k.Tier = strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
			k.Key = NewSecret(strings.TrimSpace(parts[2]))
		default:
			// Say nothing of the item's text: it holds a key.
			errs = append(errs, fmt.Errorf("%s: %d colon-separated parts, want key, project:key or project:tier:key", origin, len(parts)))
			continue
		}
		keys = append(keys, k)
	}
	return keys, errors.Join(errs...)
}

func (k *KeyConfig) label(i int) string {
	if k.origin != "" {
		return k.origin
	}
	return fmt.Sprintf("keys[%d]", i)
}

func (c *Config) defaultTier() string {
	if c.DefaultTier == "" {
		return TierFree
	}
	return c.DefaultTier
}

func (c *Config) passthroughTier() string {
	if c.PassthroughTier == "" {
		return TierFree
	}
	return c.PassthroughTier
}

func (c *Config) knownTier(t string) bool {
	if DefaultLimits(t) != nil {
		return true
	}
	_, ok := c.Limits[t]
	return ok
}

// Validate reports every problem of the config at once. No message contains a key:
// keys are named by position and hash.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !c.knownTier(c.defaultTier()) {
		add("default_tier %q has no limits: use free, tier1 or define it under limits", c.defaultTier())
	}
	if !c.knownTier(c.passthroughTier()) {
		add("passthrough_tier %q has no limits: use free, tier1 or define it under limits", c.passthroughTier())
	}
	for tier, table := range c.Limits {
		for model, l := range table {
			if model != AnyModel {
				if err := ValidateModel(NormalizeModel(model)); err != nil {
					add("limits.%s: %w", tier, err)
				}
			}
			if err := l.validate(); err != nil {
				add("limits.%s.%s: %w", tier, model, err)
			}
		}
	}

	projectTier := map[string]string{}
	for i, p := range c.Projects {
		if err := schemas.ValidateProject(p.ID); err != nil {
			add("projects[%d]: %w", i, err)
		}
		if _, dup := projectTier[p.ID]; dup {
			add("projects[%d]: project %q declared twice", i, p.ID)
		}
		tier := p.Tier
		if tier == "" {
			tier = c.defaultTier()
		} else if !c.knownTier(tier) {
			add("projects[%d] (%s): tier %q has no limits", i, p.ID, tier)
		}
		projectTier[p.ID] = tier
		for model, l := range p.Limits {
			if model != AnyModel {
				if err := ValidateModel(NormalizeModel(model)); err != nil {
					add("projects[%d] (%s) limits: %w", i, p.ID, err)
				}
			}
			if err := l.validate(); err != nil {
				add("projects[%d] (%s) limits.%s: %w", i, p.ID, model, err)
			}
		}
	}

	seen := map[string]string{}
	keyTier := map[string]string{} // project -> tier named by its first key that names one
	for i := range c.Keys {
		k := &c.Keys[i]
		label := k.label(i)
		if k.Key.IsZero() {
			add("%s: key is empty", label)
			continue
		}
		h := k.Key.Hash()
		label += " (" + h + ")"
		if first, dup := seen[h]; dup {
			add("%s: duplicate of %s", label, first)
		} else {
			seen[h] = label
		}
		if strings.ContainsAny(k.Key.Reveal(), " \t\r\n,:") {
			add("%s: key contains whitespace, a comma or a colon", label)
		}
		project := k.Project
		if project == "" {
			project = h
		}
		if err := schemas.ValidateProject(project); err != nil {
			add("%s: %w", label, err)
		}
		if k.Weight < 0 {
			add("%s: weight %d is negative", label, k.Weight)
		}
		for _, m := range k.Models {
			if err := ValidateModel(NormalizeModel(m)); err != nil {
				add("%s: models: %w", label, err)
			}
		}
		if k.Tier != "" {
			if !c.knownTier(k.Tier) {
				add("%s: tier %q has no limits", label, k.Tier)
			}
			if pt, declared := projectTier[project]; declared && c.projectDeclaresTier(project) && pt != k.Tier {
				add("%s: tier %q contradicts project %s's tier %q", label, k.Tier, project, pt)
			}
			if t, ok := keyTier[project]; ok && t != k.Tier {
				add("%s: tier %q contradicts tier %q of another key of project %s", label, k.Tier, t, project)
			} else {
				keyTier[project] = k.Tier
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Config) projectDeclaresTier(id string) bool {
	i := slices.IndexFunc(c.Projects, func(p ProjectConfig) bool { return p.ID == id })
	return i >= 0 && c.Projects[i].Tier != ""
}
