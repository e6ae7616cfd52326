package openai

import (
	"strconv"
)

// Limits checked while decoding.
const (
	// MaxCandidates is the largest n Gemini accepts as candidateCount.
	MaxCandidates = 8
	// MaxStopSequences is OpenAI's limit on stop (Gemini allows 5).
	MaxStopSequences = 4
	// maxToolNameLen is Gemini's limit on a function name.
	maxToolNameLen = 64
)

// Reasoning efforts a client may ask for.
const (
	EffortNone    = "none"
	EffortMinimal = "minimal"
	EffortLow     = "low"
	EffortMedium  = "medium"
	EffortHigh    = "high"
)

// validate checks the decoded request and reports the first problem.
func (r *ChatRequest) validate() *Error {
	if r.Model == "" {
		return invalidRequest("model", CodeMissingParameter, "You must provide a model parameter.")
	}
	if r.Messages == nil {
		return invalidRequest("messages", CodeMissingParameter, "Missing required parameter: 'messages'.")
	}
	if len(r.Messages) == 0 {
		return invalidRequest("messages", CodeInvalidValue, "Invalid 'messages': empty array. Expected an array with minimum length 1.")
	}
	if e := r.validateSampling(); e != nil {
		return e
	}
	if e := r.validateTools(); e != nil {
		return e
	}
	return r.validateMessages()
}

// validateSampling checks the numeric and enumerated generation parameters.
func (r *ChatRequest) validateSampling() *Error {
	if r.N != nil && (*r.N < 1 || *r.N > MaxCandidates) {
		return invalidRequest("n", CodeInvalidValue, "Invalid 'n': must be between 1 and "+strconv.Itoa(MaxCandidates)+", got "+strconv.Itoa(*r.N)+".")
	}
	if e := checkRange("temperature", r.Temperature, 0, 2); e != nil {
		return e
	}
	if e := checkRange("top_p", r.TopP, 0, 1); e != nil {
		return e
	}
	if e := checkRange("presence_penalty", r.PresencePenalty, -2, 2); e != nil {
		return e
	}
	if e := checkRange("frequency_penalty", r.FrequencyPenalty, -2, 2); e != nil {
		return e
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return invalidRequest("max_tokens", CodeInvalidValue, "Invalid 'max_tokens': must be at least 1.")
	}
	if r.MaxCompletionTokens != nil && *r.MaxCompletionTokens < 1 {
		return invalidRequest("max_completion_tokens", CodeInvalidValue, "Invalid 'max_completion_tokens': must be at least 1.")
	}
	if len(r.Stop) > MaxStopSequences {
		return invalidRequest("stop", CodeInvalidValue, "Invalid 'stop': at most "+strconv.Itoa(MaxStopSequences)+" stop sequences are allowed.")
	}
	switch r.ReasoningEffort {
	case "", EffortNone, EffortMinimal, EffortLow, EffortMedium, EffortHigh:
	default:
		return invalidRequest("reasoning_effort", CodeUnsupportedValue, "Unsupported value for 'reasoning_effort': "+strconv.Quote(r.ReasoningEffort)+"; supported values are none, minimal, low, medium and high.")
	}
	if r.Logprobs != nil && *r.Logprobs {
		return invalidRequest("logprobs", CodeUnsupportedParameter, "Unsupported parameter: 'logprobs' is not supported by this gateway.")
	}
	if present(r.Functions) {
		return invalidRequest("functions", CodeUnsupportedParameter, "Unsupported parameter: 'functions' is deprecated and not supported by this gateway; use 'tools'.")
	}
	if present(r.FunctionCall) {
		return invalidRequest("function_call", CodeUnsupportedParameter, "Unsupported parameter: 'function_call' is deprecated and not supported by this gateway; use 'tool_choice'.")
	}
	if present(r.Audio) {
		return invalidRequest("audio", CodeUnsupportedParameter, "Unsupported parameter: audio output is not supported by this gateway.")
	}
	for i, m := range r.Modalities {
		if m != "text" {
			return invalidRequest("modalities["+strconv.Itoa(i)+"]", CodeUnsupportedValue, "Unsupported value for 'modalities': only text output is supported by this gateway.")
		}
	}
	if f := r.ResponseFormat; f != nil {
		switch f.Type {
		case FormatText, FormatJSONObject:
		case FormatJSONSchema:
			if f.JSONSchema == nil {
				return invalidRequest("response_format.json_schema", CodeMissingParameter, "Missing required parameter: 'response_format.json_schema'.")
			}
			if s := firstByte(f.JSONSchema.Schema); s != 0 && s != 'n' && s != '{' {
				return invalidRequest("response_format.json_schema.schema", CodeInvalidType, "Invalid type for 'response_format.json_schema.schema': expected an object.")
			}
		default:
			return invalidRequest("response_format.type", CodeInvalidValue, "Invalid value for 'response_format.type': supported values are text, json_object and json_schema.")
		}
	}
	return nil
}

// present reports whether a raw field was sent with a value other than null.
func present(raw []byte) bool {
	b := firstByte(raw)
	return b != 0 && b != 'n'
}

// checkRange reports a value outside [lo, hi].
func checkRange(param string, v *float64, lo, hi float64) *Error {
	if v == nil || (*v >= lo && *v <= hi) {
		return nil
	}
	return invalidRequest(param, CodeInvalidValue, "Invalid '"+param+"': must be between "+
		strconv.FormatFloat(lo, 'g', -1, 64)+" and "+strconv.FormatFloat(hi, 'g', -1, 64)+", got "+
		strconv.FormatFloat(*v, 'g', -1, 64)+".")
}

// validateTools checks tools and tool_choice.
func (r *ChatRequest) validateTools() *Error {
	// A set, not a nested loop: a body of 200k tools must not cost 10^10 comparisons.
	var names map[string]bool
	if len(r.Tools) > 0 {
		names = make(map[string]bool, len(r.Tools))
	}
	for i := range r.Tools {
		t := &r.Tools[i]
		p := "tools[" + strconv.Itoa(i) + "]"
		if t.Type != "function" {
			return invalidRequest(p+".type", CodeUnsupportedValue, "Unsupported value for '"+p+".type': only function tools are supported.")
		}
		if !validToolName(t.Function.Name) {
			return invalidRequest(p+".function.name", CodeInvalidValue, "Invalid '"+p+".function.name': "+strconv.Quote(t.Function.Name)+
				" must start with a letter or underscore and contain only letters, digits, underscores, dots, colons and dashes, at most 64 characters.")
		}
		if names[t.Function.Name] {
			return invalidRequest(p+".function.name", CodeInvalidValue, "Invalid '"+p+".function.name': duplicate function name "+strconv.Quote(t.Function.Name)+".")
		}
		names[t.Function.Name] = true
		if s := firstByte(t.Function.Parameters); s != 0 && s != 'n' && s != '{' {
			return invalidRequest(p+".function.parameters", CodeInvalidType, "Invalid type for '"+p+".function.parameters': expected a JSON Schema object.")
		}
	}
	tc := r.ToolChoice
	if tc == nil {
		return nil
	}
	switch tc.Mode {
	case ToolChoiceNone:
		return nil
	case ToolChoiceAuto:
		if tc.Allowed == nil {
			return nil
		}
	case ToolChoiceRequired, ToolChoiceFunction:
	default:
		return invalidRequest("tool_choice", CodeInvalidValue, "Invalid value for 'tool_choice': "+strconv.Quote(tc.Mode)+"; supported values are none, auto, required or a function.")
	}
	if len(r.Tools) == 0 {
		return invalidRequest("tool_choice", CodeInvalidValue, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.")
	}
	chosen := tc.Allowed
	if tc.Mode == ToolChoiceFunction {
		chosen = []string{tc.Function}
	}
	for _, n := range chosen {
		if !names[n] {
			return invalidRequest("tool_choice", CodeInvalidValue, "Invalid value for 'tool_choice': no function named "+strconv.Quote(n)+" in 'tools'.")
		}
	}
	return nil
}

// validToolName applies Gemini's rule for function names: a letter or underscore, then
// letters, digits, underscores, dots, colons or dashes, 64 characters at most.
func validToolName(s string) bool {
	if len(s) == 0 || len(s) > maxToolNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// validateMessages checks roles, the parts each role may carry, and that every tool
// message answers a tool call made earlier. Paths for messages are built only when
// there is an error to report: this runs for every message of every request.
func (r *ChatRequest) validateMessages() *Error {
	var calls map[string]bool
	for i := range r.Messages {
		m := &r.Messages[i]
		p := func() string { return "messages[" + strconv.Itoa(i) + "]" }
		switch m.Role {
		case RoleSystem, RoleDeveloper:
			if e := checkParts(m, i, PartText); e != nil {
				return e
			}
		case RoleUser:
			if m.Content.Form == ContentAbsent {
				return invalidRequest(p()+".content", CodeMissingParameter, "Missing required parameter: '"+p()+".content'.")
			}
			if e := checkParts(m, i, PartText, PartImageURL); e != nil {
				return e
			}
		case RoleAssistant:
			if e := checkParts(m, i, PartText, PartRefusal); e != nil {
				return e
			}
			for j := range m.ToolCalls {
				tc := &m.ToolCalls[j]
				tp := func() string { return p() + ".tool_calls[" + strconv.Itoa(j) + "]" }
				if tc.Type != "" && tc.Type != "function" {
					return invalidRequest(tp()+".type", CodeUnsupportedValue, "Unsupported value for '"+tp()+".type': only function tool calls are supported.")
				}
				if tc.ID == "" {
					return invalidRequest(tp()+".id", CodeMissingParameter, "Missing required parameter: '"+tp()+".id'.")
				}
				if tc.Function.Name == "" {
					return invalidRequest(tp()+".function.name", CodeMissingParameter, "Missing required parameter: '"+tp()+".function.name'.")
				}
				if calls == nil {
					calls = make(map[string]bool)
				}
				calls[tc.ID] = true
			}
		case RoleTool:
			if m.ToolCallID == "" {
				return invalidRequest(p()+".tool_call_id", CodeMissingParameter, "Missing required parameter: '"+p()+".tool_call_id'.")
			}
			if !calls[m.ToolCallID] {
				return invalidRequest(p()+".tool_call_id", CodeInvalidValue, "Invalid '"+p()+".tool_call_id': "+strconv.Quote(m.ToolCallID)+
					" does not answer a tool call of an earlier assistant message.")
			}
			if e := checkParts(m, i, PartText); e != nil {
				return e
			}
		case "function":
			return invalidRequest(p()+".role", CodeUnsupportedValue, "Unsupported value for '"+p()+".role': the deprecated function role is not supported; use tool messages.")
		case "":
			return invalidRequest(p()+".role", CodeMissingParameter, "Missing required parameter: '"+p()+".role'.")
		default:
			return invalidRequest(p()+".role", CodeInvalidValue, "Invalid value for '"+p()+".role': "+strconv.Quote(m.Role)+
				"; supported values are system, developer, user, assistant and tool.")
		}
	}
	return nil
}

// checkParts refuses content parts whose type the role of message i cannot carry.
func checkParts(m *Message, i int, allowed ...string) *Error {
	for j := range m.Content.Parts {
		part := &m.Content.Parts[j]
		pp := func() string { return "messages[" + strconv.Itoa(i) + "].content[" + strconv.Itoa(j) + "]" }
		ok := false
		for _, a := range allowed {
			ok = ok || part.Type == a
		}
		switch {
		case part.Type == PartInputAudio || part.Type == PartFile:
			return invalidRequest(pp()+".type", CodeUnsupportedValue, "Unsupported value for '"+pp()+".type': "+part.Type+" content parts are not supported by this gateway.")
		case part.Type == "":
			return invalidRequest(pp()+".type", CodeMissingParameter, "Missing required parameter: '"+pp()+".type'.")
		case !ok:
			return invalidRequest(pp()+".type", CodeInvalidValue, "Invalid value for '"+pp()+".type': "+strconv.Quote(part.Type)+" parts are not allowed in "+m.Role+" messages.")
		case part.Type == PartImageURL && (part.ImageURL == nil || part.ImageURL.URL == ""):
			return invalidRequest(pp()+".image_url.url", CodeMissingParameter, "Missing required parameter: '"+pp()+".image_url.url'.")
		case part.Type == PartImageURL:
			if _, _, problem := parseDataURL(part.ImageURL.URL); problem != "" {
				return invalidRequest(pp()+".image_url.url", CodeInvalidValue, "Invalid value for '"+pp()+".image_url.url': "+problem)
			}
		}
	}
	return nil
}
