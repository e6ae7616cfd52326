package keypool

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/geminicodeapi/gca/schemas"
)

// Secret holds a Gemini API key. Every way Go has to print a value — fmt with any verb,
// encoding/json, log/slog — shows only the key's hash (schemas.HashKey), so a key cannot
// reach a log line, an error message or an admin response by accident. Reveal is the one
// way to read the key, and only the HTTP client that calls Gemini should use it.
//
// The key sits in an unexported field of a struct: fmt's reflection would print the
// field of a plain struct, so Secret implements fmt.Formatter and handles every verb.
type Secret struct {
	key string
}

// NewSecret wraps a key.
func NewSecret(key string) Secret { return Secret{key: key} }

// Reveal returns the key itself, for the x-goog-api-key header of an upstream call.
func (s Secret) Reveal() string { return s.key }

// Hash is the key's identifier in events, logs and Valkey.
func (s Secret) Hash() string {
	if s.key == "" {
		return ""
	}
	return schemas.HashKey(s.key)
}

// IsZero reports whether no key is held.
func (s Secret) IsZero() bool { return s.key == "" }

// String returns the hash.
func (s Secret) String() string { return s.Hash() }

// GoString returns the hash, for %#v.
func (s Secret) GoString() string { return "keypool.Secret(" + s.Hash() + ")" }

// Format prints the hash for every verb, so that %d, %x or %q cannot reach the key.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.Hash()))
}

// LogValue makes slog print the hash.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.Hash()) }

// MarshalJSON writes the hash, never the key.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.Hash()) }

// MarshalText writes the hash, so a Secret used as a map key or in a text encoder is safe.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Hash()), nil }

// UnmarshalJSON reads the key from a JSON string (the keys file).
func (s *Secret) UnmarshalJSON(b []byte) error {
	var k string
	if err := json.Unmarshal(b, &k); err != nil {
		// The error of encoding/json quotes no input for a type mismatch, but be sure:
		return fmt.Errorf("key must be a JSON string")
	}
	s.key = k
	return nil
}
