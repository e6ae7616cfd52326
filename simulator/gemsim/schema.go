package gemsim

import (
	"encoding/json"
	"strings"
)

// maxSchemaDepth bounds recursion through nested and self-referencing schemas.
const maxSchemaDepth = 12

// exampleJSON builds a value that satisfies a schema, deterministically: the first enum
// value or const, "example" for strings, 1 for numbers, true for booleans, one element
// for arrays and, for objects, either the required properties (allProps false, as for
// function-call arguments) or every property (as for JSON-mode answers). It reads both
// the OpenAPI subset of Gemini (type "STRING") and JSON Schema (type "string", type
// lists, anyOf/oneOf/allOf, $ref into $defs or definitions).
func exampleJSON(schema json.RawMessage, allProps bool) ([]byte, error) {
	var root any
	if len(schema) > 0 {
		if err := json.Unmarshal(schema, &root); err != nil {
			return nil, err
		}
	}
	g := schemaGen{root: root, allProps: allProps}
	return json.Marshal(g.value(root, 0))
}

// schemaGen carries the root schema, against which $ref pointers resolve.
type schemaGen struct {
	root     any
	allProps bool
}

// value builds the example of one schema node.
func (g schemaGen) value(node any, depth int) any {
	s, ok := node.(map[string]any)
	if !ok || depth > maxSchemaDepth {
		return nil
	}
	if ref, ok := s["$ref"].(string); ok {
		return g.value(g.resolve(ref), depth+1)
	}
	if v, ok := s["const"]; ok {
		return v
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if alts, ok := s[k].([]any); ok && len(alts) > 0 {
			return g.value(firstNonNull(alts), depth+1)
		}
	}
	switch schemaType(s) {
	case "string":
		return "example"
	case "number", "integer":
		return 1
	case "boolean":
		return true
	case "null":
		return nil
	case "array":
		return []any{g.value(s["items"], depth+1)}
	case "object":
		return g.object(s, depth)
	}
	return "example"
}

// object builds an object with the required (or all) properties.
func (g schemaGen) object(s map[string]any, depth int) map[string]any {
	props, _ := s["properties"].(map[string]any)
	out := make(map[string]any, len(props))
	if g.allProps {
		for name, p := range props {
			out[name] = g.value(p, depth+1)
		}
		return out
	}
	required, _ := s["required"].([]any)
	for _, r := range required {
		if name, ok := r.(string); ok {
			out[name] = g.value(props[name], depth+1)
		}
	}
	return out
}

// resolve follows a local JSON pointer such as "#/$defs/Item"; anything else resolves
// to nothing.
func (g schemaGen) resolve(ref string) any {
	path, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil
	}
	node := g.root
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if part == "" {
			continue
		}
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = m[part]
	}
	return node
}

// schemaType reads a node's type in lower case: the first non-null entry of a type list,
// or a type implied by properties or items when none is given.
func schemaType(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return strings.ToLower(t)
	case []any:
		for _, v := range t {
			if name, ok := v.(string); ok && !strings.EqualFold(name, "null") {
				return strings.ToLower(name)
			}
		}
		return "null"
	}
	if _, ok := s["properties"]; ok {
		return "object"
	}
	if _, ok := s["items"]; ok {
		return "array"
	}
	return ""
}

// firstNonNull picks the first alternative that is not {"type":"null"}.
func firstNonNull(alts []any) any {
	for _, a := range alts {
		if m, ok := a.(map[string]any); ok && schemaType(m) != "null" {
			return a
		}
	}
	return alts[0]
}
