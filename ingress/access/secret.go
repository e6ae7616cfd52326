package access

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Secret holds a credential from the configuration (the admin token). Every way Go
// has to print a value shows "[redacted]"; Reveal is the only way to read it.
type Secret struct {
	v string
}

// NewSecret wraps a credential.
func NewSecret(v string) Secret { return Secret{v: v} }

// Reveal returns the credential.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no credential is held.
func (s Secret) IsZero() bool { return s.v == "" }

func (s Secret) sum() [32]byte { return sha256.Sum256([]byte(s.v)) }

const redacted = "[redacted]"

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]".
func (s Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue makes slog print "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON writes "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText writes "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalJSON reads the credential from a JSON string.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("secret must be a JSON string")
	}
	s.v = v
	return nil
}
