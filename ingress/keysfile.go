package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas"
)

// keysFile edits the operator's keys file for the admin API: it adds or removes one key
// entry, leaves every other field as it was, writes the file atomically (0600: it holds
// secrets), and reloads the pool, which publishes key_added / key_removed events.
type keysFile struct {
	path   string
	reload func() error
	mu     sync.Mutex
}

// rawKeysFile keeps the keys as raw JSON so secrets are written back as they were read
// (keypool.Secret refuses to marshal its secret, by design).
type rawKeysFile struct {
	Keys []json.RawMessage          `json:"keys"`
	Rest map[string]json.RawMessage `json:"-"`
}

func (f *keysFile) read() (*rawKeysFile, error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("read keys file: %w", err)
	}
	all := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("decode keys file: %w", err)
	}
	r := &rawKeysFile{Rest: all}
	if k, ok := all["keys"]; ok {
		if err := json.Unmarshal(k, &r.Keys); err != nil {
			return nil, fmt.Errorf("decode keys of keys file: %w", err)
		}
	}
	delete(all, "keys")
	return r, nil
}

func (f *keysFile) write(r *rawKeysFile) error {
	out := map[string]any{}
	for k, v := range r.Rest {
		out[k] = v
	}
	out["keys"] = r.Keys
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode keys file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".keys-*.json")
	if err != nil {
		return fmt.Errorf("write keys file: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o600)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write keys file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("replace keys file: %w", err)
	}
	return nil
}

type keyEntry struct {
	Key     string   `json:"key"`
	Project string   `json:"project,omitempty"`
	Models  []string `json:"models,omitempty"`
	Weight  int      `json:"weight,omitempty"`
	Tier    string   `json:"tier,omitempty"`
	Name    string   `json:"name,omitempty"`
}

// AddKey appends a key and reloads; it refuses a key already present.
func (f *keysFile) AddKey(kc keypool.KeyConfig) (string, error) {
	secret := kc.Key.Reveal()
	if secret == "" {
		return "", errors.New("key is empty")
	}
	if kc.Project != "" {
		if err := schemas.ValidateProject(kc.Project); err != nil {
			return "", err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.read()
	if err != nil {
		return "", err
	}
	hash := schemas.HashKey(secret)
	for _, raw := range r.Keys {
		var e keyEntry
		if json.Unmarshal(raw, &e) == nil && schemas.HashKey(e.Key) == hash {
			return "", fmt.Errorf("key %s is already in the pool", hash)
		}
	}
	b, err := json.Marshal(keyEntry{Key: secret, Project: kc.Project, Models: kc.Models, Weight: kc.Weight, Tier: kc.Tier, Name: kc.Name})
	if err != nil {
		return "", fmt.Errorf("encode key: %w", err)
	}
	r.Keys = append(r.Keys, b)
	if err := f.write(r); err != nil {
		return "", err
	}
	return hash, f.reload()
}

// RemoveKey drops the key with the hash and reloads.
func (f *keysFile) RemoveKey(hash string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.read()
	if err != nil {
		return err
	}
	kept := r.Keys[:0]
	found := false
	for _, raw := range r.Keys {
		var e keyEntry
		if json.Unmarshal(raw, &e) == nil && schemas.HashKey(e.Key) == hash {
			found = true
			continue
		}
		kept = append(kept, raw)
	}
	if !found {
		return fmt.Errorf("key %s is not in the keys file (keys from GCA_GEMINI_KEYS cannot be removed here)", hash)
	}
	r.Keys = kept
	if err := f.write(r); err != nil {
		return err
	}
	return f.reload()
}
