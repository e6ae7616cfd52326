package anthropic

import (
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// maxToolNameLen is Anthropic's limit on a tool name, which Gemini shares.
const maxToolNameLen = 64

// validToolName reports whether name matches ^[a-zA-Z0-9_-]{1,64}$.
func validToolName(name string) bool {
	if name == "" || len(name) > maxToolNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// decodeTools accepts custom tools only. Server tools (web_search, computer use, bash,
// text_editor, code_execution, ...) are identified by a type other than "custom" and are
// refused by name: Gemini cannot run Anthropic's server-side tools.
func decodeTools(ws []wireTool) ([]ToolParam, *Error) {
	if len(ws) == 0 {
		return nil, nil
	}
	out := make([]ToolParam, 0, len(ws))
	names := make(map[string]bool, len(ws))
	for i, w := range ws {
		if w.Type != "" && w.Type != "custom" {
			return nil, invalidf("tools.%d: server tool %q (type %q) is not supported by this gateway; only custom tools with an input_schema are", i, w.Name, w.Type)
		}
		if !validToolName(w.Name) {
			return nil, invalidf("tools.%d.name: must match ^[a-zA-Z0-9_-]{1,64}$, got %q", i, w.Name)
		}
		if names[w.Name] {
			return nil, invalidf("tools.%d.name: tool names must be unique, %q is repeated", i, w.Name)
		}
		names[w.Name] = true
		if jsonKind(w.InputSchema) != '{' {
			return nil, invalidf("tools.%d.input_schema: expected a JSON Schema object", i)
		}
		out = append(out, ToolParam{Name: w.Name, Description: w.Description, InputSchema: w.InputSchema})
	}
	return out, nil
}

// decodeToolChoice checks tool_choice against the declared tools. auto and none are
// meaningful without tools; any and tool are not.
func decodeToolChoice(w *wireToolChoice, tools []ToolParam) (*ToolChoice, *Error) {
	if w == nil {
		return nil, nil
	}
	tc := &ToolChoice{Type: w.Type, Name: w.Name, DisableParallelToolUse: w.DisableParallelToolUse}
	switch w.Type {
	case ToolChoiceAuto, ToolChoiceNone:
		return tc, nil
	case ToolChoiceAny:
	case ToolChoiceTool:
		if w.Name == "" {
			return nil, invalidf("tool_choice.name: field required when type is \"tool\"")
		}
		if !hasTool(tools, w.Name) {
			return nil, invalidf("tool_choice.name: no tool named %q in tools", w.Name)
		}
	default:
		return nil, invalidf("tool_choice.type: must be one of auto, any, tool, none, got %q", w.Type)
	}
	if len(tools) == 0 {
		return nil, invalidf("tool_choice: type %q requires tools", w.Type)
	}
	return tc, nil
}

func hasTool(tools []ToolParam, name string) bool {
	for _, t := range tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

// geminiTools declares the tools as one Gemini tool of function declarations. The
// input_schema is passed as parametersJsonSchema, which takes full JSON Schema, so no
// schema rewriting is needed.
func geminiTools(tools []ToolParam) []gemini.Tool {
	if len(tools) == 0 {
		return nil
	}
	decls := make([]gemini.FunctionDeclaration, len(tools))
	for i, t := range tools {
		decls[i] = gemini.FunctionDeclaration{
			Name:                 t.Name,
			Description:          t.Description,
			ParametersJSONSchema: t.InputSchema,
		}
	}
	return []gemini.Tool{{FunctionDeclarations: decls}}
}

// geminiToolConfig maps tool_choice: auto → AUTO, any → ANY, tool → ANY restricted to
// the named function, none → NONE. disable_parallel_tool_use has no Gemini equivalent
// and is dropped. Without tools there is nothing to configure.
func geminiToolConfig(tc *ToolChoice, tools []ToolParam) *gemini.ToolConfig {
	if tc == nil || len(tools) == 0 {
		return nil
	}
	fc := &gemini.FunctionCallingConfig{}
	switch tc.Type {
	case ToolChoiceAny:
		fc.Mode = "ANY"
	case ToolChoiceTool:
		fc.Mode = "ANY"
		fc.AllowedFunctionNames = []string{tc.Name}
	case ToolChoiceNone:
		fc.Mode = "NONE"
	default:
		fc.Mode = "AUTO"
	}
	return &gemini.ToolConfig{FunctionCallingConfig: fc}
}
