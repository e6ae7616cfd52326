package keypool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

// TestSecretNeverPrints prints a key, and everything that holds one, every way Go can,
// and greps the output for the key.
func TestSecretNeverPrints(t *testing.T) {
	const plain = "AIzaSyPlaintextKeyThatMustNeverPrint0001"
	s := NewSecret(plain)
	kc := KeyConfig{Key: s, Project: "p1"}
	cfg := &Config{Keys: []KeyConfig{kc}}
	set := newKeySet(cfg)
	k := set.keys[0]
	lease := &Lease{Key: k, Model: "gemini-2.5-pro", Reservation: "r1"}
	values := map[string]any{
		"secret": s, "*secret": &s, "keyconfig": kc, "config": cfg, "*key": k, "key": *k, "lease": lease,
		"keys": []*Key{k}, "map": map[Secret]int{s: 1}, "err": fmt.Errorf("call with %v: %w", s, errors.New("boom")),
	}

	var out bytes.Buffer
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
			fmt.Fprintf(&out, name+" "+verb+": "+verb+"\n", v)
		}
		fmt.Fprintln(&out, v)
		b, err := json.Marshal(v)
		if err == nil {
			out.Write(b)
		}
		slog.New(slog.NewTextHandler(&out, nil)).Info("text", "v", v, "secret", s)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("json", "v", v, "secret", s)
	}
	text := out.String()
	require.NotContains(t, text, plain)
	require.NotContains(t, text, fmt.Sprintf("%x", plain))
	require.NotContains(t, text, strings.ToUpper(fmt.Sprintf("%x", plain)))
	require.Contains(t, text, schemas.HashKey(plain), "the hash stands in for the key")
	require.Equal(t, plain, s.Reveal())

	var back KeyConfig
	require.NoError(t, json.Unmarshal([]byte(`{"key":"`+plain+`"}`), &back))
	require.Equal(t, plain, back.Key.Reveal())
	err := json.Unmarshal([]byte(`{"key":12345}`), &back)
	require.Error(t, err)
}
