package gemsim

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExampleJSON(t *testing.T) {
	cases := []struct {
		name     string
		schema   string
		allProps bool
		want     string
	}{
		{name: "no schema", schema: ``, want: `null`},
		{name: "scalars", schema: `{"type":"OBJECT","properties":{"s":{"type":"STRING"},"n":{"type":"NUMBER"},"i":{"type":"INTEGER"},"b":{"type":"BOOLEAN"}},"required":["s","n","i","b"]}`,
			want: `{"s":"example","n":1,"i":1,"b":true}`},
		{name: "required only", schema: `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"required":["b"]}`,
			want: `{"b":"example"}`},
		{name: "all properties", schema: `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"required":["b"]}`,
			allProps: true, want: `{"a":"example","b":"example"}`},
		{name: "enum and const", schema: `{"type":"object","properties":{"e":{"type":"string","enum":["x","y"]},"c":{"const":42}}}`,
			allProps: true, want: `{"e":"x","c":42}`},
		{name: "nullable type list", schema: `{"type":["null","integer"]}`, want: `1`},
		{name: "array of objects", schema: `{"type":"array","items":{"type":"object","properties":{"k":{"type":"boolean"}},"required":["k"]}}`,
			want: `[{"k":true}]`},
		{name: "ref", schema: `{"definitions":{"P":{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]}},"$ref":"#/definitions/P"}`,
			want: `{"x":1}`},
		{name: "oneOf", schema: `{"oneOf":[{"type":"null"},{"type":"string"}]}`, want: `"example"`},
		{name: "implied object", schema: `{"properties":{"q":{"type":"string"}},"required":["q"]}`, want: `{"q":"example"}`},
		{name: "self reference stops", schema: `{"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}},"required":["next"]}},"$ref":"#/$defs/N"}`,
			want: `{"next":{"next":{"next":{"next":{"next":{"next":null}}}}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := exampleJSON(json.RawMessage(tc.schema), tc.allProps)
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(got))
		})
	}
	_, err := exampleJSON(json.RawMessage(`{`), false)
	require.Error(t, err)
}
