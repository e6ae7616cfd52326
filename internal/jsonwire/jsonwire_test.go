package jsonwire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"quote \" and \\ backslash", `"quote \" and \\ backslash"`},
		{"lines\n\r\t", `"lines\n\r\t"`},
		{"\x01control", `"\u0001control"`},
		{"<html> & co", `"<html> & co"`},
		{"sep\u2028\u2029", `"sep\u2028\u2029"`},
		{"bad \xff utf8", `"bad \ufffd utf8"`},
		{"ünïcödé ✓", `"ünïcödé ✓"`},
	}
	for _, tc := range cases {
		got := AppendString(nil, tc.in)
		require.Equal(t, tc.want, string(got), tc.in)
		var back string
		require.NoError(t, json.Unmarshal(got, &back))
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff\xfe", "\u2028", "\x00\x1f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("invalid JSON %q for %q: %v", out, s, err)
		}
		want, _ := json.Marshal(s) // encoding/json also replaces invalid UTF-8
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("round trip of %q: got %q want %q", s, back, wantBack)
		}
	})
}
