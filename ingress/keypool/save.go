package keypool

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// fileKey mirrors KeyConfig with the key as a plain string: the one place where a key
// is written out on purpose, into the keys file.
type fileKey struct {
	Key     string   `json:"key"`
	Project string   `json:"project,omitempty"`
	Models  []string `json:"models,omitempty"`
	Weight  int      `json:"weight,omitempty"`
	Tier    string   `json:"tier,omitempty"`
	Name    string   `json:"name,omitempty"`
}

type fileConfig struct {
	Keys            []fileKey                    `json:"keys"`
	Projects        []ProjectConfig              `json:"projects,omitempty"`
	DefaultTier     string                       `json:"default_tier,omitempty"`
	PassthroughTier string                       `json:"passthrough_tier,omitempty"`
	Limits          map[string]map[string]Limits `json:"limits,omitempty"`
}

// Save writes the config as a keys file that Load reads back, keys in plain text (the
// file is the keys' home; it is written with mode 0600). The write is atomic: a
// temporary file in the same directory renamed over path, so a watcher or a reload
// never reads half a file. Load the file alone (Load(path, "")) before editing it, or
// the keys from GCA_GEMINI_KEYS end up in the file.
func (c *Config) Save(path string) error {
	fc := fileConfig{Projects: c.Projects, DefaultTier: c.DefaultTier, PassthroughTier: c.PassthroughTier, Limits: c.Limits}
	fc.Keys = make([]fileKey, 0, len(c.Keys))
	for _, k := range c.Keys {
		fc.Keys = append(fc.Keys, fileKey{Key: k.Key.Reveal(), Project: k.Project, Models: k.Models, Weight: k.Weight, Tier: k.Tier, Name: k.Name})
	}
	b, err := json.MarshalIndent(fc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode keys file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*.json")
	if err != nil {
		return fmt.Errorf("write keys file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write keys file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync keys file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close keys file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace keys file: %w", err)
	}
	return nil
}
