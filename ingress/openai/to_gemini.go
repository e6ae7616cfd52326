package openai

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// ToGeminiOptions are the per-deployment (or per-model) choices of the translation.
// The zero value is usable.
type ToGeminiOptions struct {
	// MaxN caps n (Gemini's candidateCount). Zero means MaxCandidates (8, Gemini's own
	// limit); larger values are treated as MaxCandidates.
	MaxN int
	// IncludeThoughts asks Gemini for thought summaries, returned to the client as
	// reasoning_content. Only thinking models accept it.
	IncludeThoughts bool
	// MinThinkingBudget is the thinking budget that reasoning_effort "none" and
	// "minimal" map to. 0 turns thinking off; models that cannot turn it off
	// (gemini-2.5-pro) need their minimum, 128.
	MinThinkingBudget int
	// MissingThoughtSignature, when not empty, is sent as the thoughtSignature of the
	// first function call of every assistant turn that came back without one. Gemini 3
	// rejects function-call history without signatures; Google documents the value
	// "skip_thought_signature_validator" for histories that did not come from Gemini.
	MissingThoughtSignature string
}

// maxN is the effective cap on n.
func (o ToGeminiOptions) maxN() int {
	if o.MaxN <= 0 || o.MaxN > MaxCandidates {
		return MaxCandidates
	}
	return o.MaxN
}

// ToGemini translates the request into a Gemini generateContent body. The model goes
// in the URL and is not part of the body. It returns an *Error (400) for what only the
// translation finds: image URLs that are not data: URLs, tool call arguments that are
// not a JSON object, n above opts.MaxN, and a conversation with nothing to send.
func (r *ChatRequest) ToGemini(opts ToGeminiOptions) (*gemini.GenerateContentRequest, error) {
	if r.N != nil && (*r.N < 1 || *r.N > opts.maxN()) {
		return nil, invalidRequest("n", CodeInvalidValue, "Invalid 'n': must be between 1 and "+strconv.Itoa(opts.maxN())+".")
	}
	out := &gemini.GenerateContentRequest{}
	b := turnBuilder{contents: make([]gemini.Content, 0, len(r.Messages))}
	for i := range r.Messages {
		if e := b.add(&r.Messages[i], i, opts); e != nil {
			return nil, e
		}
	}
	switch {
	case len(b.contents) > 0:
		if len(b.system) > 0 {
			out.SystemInstruction = &gemini.Content{Parts: b.system}
		}
	case len(b.system) > 0:
		// Gemini needs at least one content; a conversation of system messages alone
		// is sent as the user's turn.
		b.contents = append(b.contents, gemini.Content{Role: "user", Parts: b.system})
	default:
		return nil, invalidRequest("messages", CodeInvalidValue, "Invalid 'messages': no message has any content to send.")
	}
	out.Contents = b.contents
	r.toolsToGemini(out)
	out.GenerationConfig = r.generationConfig(opts)
	return out, nil
}

// turnBuilder collects Gemini turns, merging consecutive turns of the same role: tool
// results that follow each other become one user turn with several functionResponse
// parts, as Gemini expects for parallel calls.
type turnBuilder struct {
	contents []gemini.Content
	system   []gemini.Part
	// calls maps a tool call id to its function name, for the functionResponse parts.
	calls map[string]string
}

// add translates one message.
func (b *turnBuilder) add(m *Message, i int, opts ToGeminiOptions) *Error {
	switch m.Role {
	case RoleSystem, RoleDeveloper:
		b.system = appendTextParts(b.system, &m.Content)
		return nil
	case RoleUser:
		parts, e := userParts(&m.Content, i)
		if e != nil {
			return e
		}
		b.push("user", parts)
		return nil
	case RoleAssistant:
		parts, e := b.assistantParts(m, i, opts)
		if e != nil {
			return e
		}
		b.push("model", parts)
		return nil
	case RoleTool:
		return b.toolResult(m, i)
	}
	return invalidRequest("messages["+strconv.Itoa(i)+"].role", CodeInvalidValue, "Invalid value for 'messages["+strconv.Itoa(i)+"].role'.")
}

// push appends parts as a turn of role, or to the last turn when it has the same role.
func (b *turnBuilder) push(role string, parts []gemini.Part) {
	if len(parts) == 0 {
		return
	}
	if n := len(b.contents); n > 0 && b.contents[n-1].Role == role {
		b.contents[n-1].Parts = append(b.contents[n-1].Parts, parts...)
		return
	}
	b.contents = append(b.contents, gemini.Content{Role: role, Parts: parts})
}

// appendTextParts appends the text of c as text parts, skipping empty text (Gemini
// rejects empty text parts).
func appendTextParts(dst []gemini.Part, c *MessageContent) []gemini.Part {
	switch c.Form {
	case ContentString:
		if c.Text != "" {
			dst = append(dst, gemini.Part{Text: c.Text})
		}
	case ContentParts:
		for j := range c.Parts {
			p := &c.Parts[j]
			text := p.Text
			if p.Type == PartRefusal {
				text = p.Refusal
			}
			if (p.Type == PartText || p.Type == PartRefusal) && text != "" {
				dst = append(dst, gemini.Part{Text: text})
			}
		}
	}
	return dst
}

// userParts translates a user message's content: text, and images given as data URLs.
func userParts(c *MessageContent, i int) ([]gemini.Part, *Error) {
	if c.Form != ContentParts {
		return appendTextParts(nil, c), nil
	}
	parts := make([]gemini.Part, 0, len(c.Parts))
	for j := range c.Parts {
		p := &c.Parts[j]
		pp := func() string { return "messages[" + strconv.Itoa(i) + "].content[" + strconv.Itoa(j) + "]" }
		switch p.Type {
		case PartText:
			if p.Text != "" {
				parts = append(parts, gemini.Part{Text: p.Text})
			}
		case PartImageURL:
			if p.ImageURL == nil {
				return nil, invalidRequest(pp()+".image_url", CodeMissingParameter, "Missing required parameter: '"+pp()+".image_url'.")
			}
			mime, data, problem := parseDataURL(p.ImageURL.URL)
			if problem != "" {
				return nil, invalidRequest(pp()+".image_url.url", CodeInvalidValue, "Invalid value for '"+pp()+".image_url.url': "+problem)
			}
			parts = append(parts, gemini.Part{InlineData: &gemini.Blob{MimeType: mime, Data: data}})
		default:
			return nil, invalidRequest(pp()+".type", CodeUnsupportedValue, "Unsupported value for '"+pp()+".type': "+strconv.Quote(p.Type)+" parts are not supported in user messages.")
		}
	}
	return parts, nil
}

// assistantParts translates an assistant message: its text, then its tool calls as
// functionCall parts carrying the call id and the parsed arguments.
func (b *turnBuilder) assistantParts(m *Message, i int, opts ToGeminiOptions) ([]gemini.Part, *Error) {
	var parts []gemini.Part
	if n := len(m.ToolCalls); n > 0 {
		parts = make([]gemini.Part, 0, n+1)
	}
	parts = appendTextParts(parts, &m.Content)
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		args, ok := argsObject(tc.Function.Arguments)
		if !ok {
			ap := "messages[" + strconv.Itoa(i) + "].tool_calls[" + strconv.Itoa(j) + "].function.arguments"
			return nil, invalidRequest(ap, CodeInvalidValue, "Invalid value for '"+ap+"': the arguments must be a JSON object encoded as a string.")
		}
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, invalidRequest("messages["+strconv.Itoa(i)+"].tool_calls["+strconv.Itoa(j)+"]", CodeMissingParameter,
				"Missing required parameter: a tool call needs an id and a function name.")
		}
		part := gemini.Part{
			FunctionCall:     &gemini.FunctionCall{ID: tc.ID, Name: tc.Function.Name, Args: args},
			ThoughtSignature: tc.thoughtSignature(),
		}
		if j == 0 && part.ThoughtSignature == "" {
			part.ThoughtSignature = opts.MissingThoughtSignature
		}
		parts = append(parts, part)
		if b.calls == nil {
			b.calls = make(map[string]string)
		}
		b.calls[tc.ID] = tc.Function.Name
	}
	return parts, nil
}

// argsObject checks that a tool call's arguments are a JSON object and returns them as
// raw JSON. Empty arguments (sent by some clients for functions without parameters)
// are an empty object.
func argsObject(s string) (json.RawMessage, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return json.RawMessage("{}"), true
	}
	raw := json.RawMessage(s)
	if s[0] != '{' || !json.Valid(raw) {
		return nil, false
	}
	return raw, true
}

// toolResult translates a tool message into a functionResponse part of a user turn.
func (b *turnBuilder) toolResult(m *Message, i int) *Error {
	name, ok := b.calls[m.ToolCallID]
	if !ok {
		p := "messages[" + strconv.Itoa(i) + "].tool_call_id"
		return invalidRequest(p, CodeInvalidValue, "Invalid '"+p+"': "+strconv.Quote(m.ToolCallID)+" does not answer a tool call of an earlier assistant message.")
	}
	part := gemini.Part{FunctionResponse: &gemini.FunctionResponse{
		ID:       m.ToolCallID,
		Name:     name,
		Response: toolResponse(toolText(&m.Content)),
	}}
	b.push("user", []gemini.Part{part})
	return nil
}

// toolText is the text of a tool message: its string, or its text parts joined.
func toolText(c *MessageContent) string {
	if c.Form != ContentParts {
		return c.Text
	}
	if len(c.Parts) == 1 {
		return c.Parts[0].Text
	}
	var sb strings.Builder
	for j := range c.Parts {
		sb.WriteString(c.Parts[j].Text)
	}
	return sb.String()
}

// toolResponse is the functionResponse.response for a tool's output: the output itself
// when it is a JSON object (Gemini's response is a Struct), else {"result": output}.
func toolResponse(content string) json.RawMessage {
	if t := strings.TrimSpace(content); t != "" && t[0] == '{' {
		if raw := json.RawMessage(t); json.Valid(raw) {
			return raw
		}
	}
	out := make([]byte, 0, len(content)+16)
	out = append(out, `{"result":`...)
	out = appendString(out, content)
	return append(out, '}')
}

// toolsToGemini translates tools and tool_choice.
func (r *ChatRequest) toolsToGemini(out *gemini.GenerateContentRequest) {
	if len(r.Tools) == 0 {
		return
	}
	decls := make([]gemini.FunctionDeclaration, len(r.Tools))
	for i := range r.Tools {
		f := &r.Tools[i].Function
		decls[i] = gemini.FunctionDeclaration{Name: f.Name, Description: f.Description}
		if s := firstByte(f.Parameters); s != 0 && s != 'n' {
			// Gemini's parametersJsonSchema takes full JSON Schema, so the client's
			// schema passes unchanged ($ref, anyOf and additionalProperties included).
			decls[i].ParametersJSONSchema = f.Parameters
		}
	}
	out.Tools = []gemini.Tool{{FunctionDeclarations: decls}}
	if r.ToolChoice == nil {
		return
	}
	fc := &gemini.FunctionCallingConfig{}
	switch tc := r.ToolChoice; tc.Mode {
	case ToolChoiceNone:
		fc.Mode = "NONE"
	case ToolChoiceRequired:
		fc.Mode = "ANY"
		fc.AllowedFunctionNames = tc.Allowed
	case ToolChoiceFunction:
		fc.Mode = "ANY"
		fc.AllowedFunctionNames = []string{tc.Function}
	default:
		fc.Mode = "AUTO"
		if tc.Allowed != nil {
			// Gemini restricts function names only in ANY and VALIDATED modes;
			// VALIDATED lets the model answer in text or call one of them.
			fc.Mode = "VALIDATED"
			fc.AllowedFunctionNames = tc.Allowed
		}
	}
	out.ToolConfig = &gemini.ToolConfig{FunctionCallingConfig: fc}
}

// generationConfig translates sampling, limits, output format and reasoning, or
// returns nil when the request sets none of them.
func (r *ChatRequest) generationConfig(opts ToGeminiOptions) *gemini.GenerationConfig {
	gc := gemini.GenerationConfig{
		Temperature:      r.Temperature,
		TopP:             r.TopP,
		PresencePenalty:  r.PresencePenalty,
		FrequencyPenalty: r.FrequencyPenalty,
		CandidateCount:   r.N,
		ThinkingConfig:   thinkingConfig(r.ReasoningEffort, opts),
	}
	maxTokens := r.MaxTokens
	if r.MaxCompletionTokens != nil {
		maxTokens = r.MaxCompletionTokens
	}
	if maxTokens != nil {
		n := int(min(*maxTokens, math.MaxInt32))
		gc.MaxOutputTokens = &n
	}
	if r.Seed != nil {
		// Gemini's seed is an int32; OpenAI seeds outside its range are folded,
		// deterministically, to a non-negative one.
		s := *r.Seed
		if s < math.MinInt32 || s > math.MaxInt32 {
			s &= math.MaxInt32
		}
		gc.Seed = &s
	}
	for _, s := range r.Stop {
		if s != "" {
			gc.StopSequences = append(gc.StopSequences, s)
		}
	}
	if f := r.ResponseFormat; f != nil {
		switch f.Type {
		case FormatJSONObject:
			gc.ResponseMimeType = "application/json"
		case FormatJSONSchema:
			gc.ResponseMimeType = "application/json"
			if f.JSONSchema != nil {
				if s := firstByte(f.JSONSchema.Schema); s != 0 && s != 'n' {
					gc.ResponseJSONSchema = f.JSONSchema.Schema
				}
			}
		}
	}
	if gc.Temperature == nil && gc.TopP == nil && gc.PresencePenalty == nil && gc.FrequencyPenalty == nil &&
		gc.CandidateCount == nil && gc.ThinkingConfig == nil && gc.MaxOutputTokens == nil && gc.Seed == nil &&
		gc.StopSequences == nil && gc.ResponseMimeType == "" {
		return nil
	}
	return &gc
}
