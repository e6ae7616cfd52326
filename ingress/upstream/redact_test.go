package upstream

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedactKeys(t *testing.T) {
	key := "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
	require.Len(t, key, 39)
	cases := []struct{ name, in, want string }{
		// An upstream message quoting the key, as an invalid-key answer can.
		{"in a sentence", "API key " + key + " not valid.", "API key [REDACTED] not valid."},
		// A proxy's error page quoting the URL it was asked for.
		{"in a query", "GET /v1beta/models?key=" + key + "&alt=sse failed", "GET /v1beta/models?key=[REDACTED]&alt=sse failed"},
		{"two keys", key + "," + key, "[REDACTED],[REDACTED]"},
		{"at the end", "key=" + key, "key=[REDACTED]"},
		// Words starting with AIza and short ids are not keys.
		{"short run", "AIzaTest is a name", "AIzaTest is a name"},
		{"no key", "The model is overloaded.", "The model is overloaded."},
		{"empty", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, RedactKeys(c.in))
		})
	}
}
