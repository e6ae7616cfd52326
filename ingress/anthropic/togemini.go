package anthropic

import (
	"encoding/json"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Gemini roles.
const (
	geminiUser  = "user"
	geminiModel = "model"
)

// ToGeminiOptions carries what the translation needs to know about the upstream model.
type ToGeminiOptions struct {
	// Model is the Gemini model the request goes to, after alias resolution
	// (e.g. "gemini-2.5-flash"). It decides how thinking is turned off and how a
	// thinking budget is clamped. Default: empty, treated as an unknown thinking model.
	Model string
	// OutputTokenLimit, when positive, caps maxOutputTokens: Anthropic clients often ask
	// for more than a Gemini model can produce (the model's outputTokenLimit from the
	// models list). Default: 0, no cap.
	OutputTokenLimit int64
}

// ToGemini translates the request to a Gemini generateContent body: system →
// systemInstruction, user/assistant → user/model turns (consecutive messages of a role
// merged), tool_use → functionCall, tool_result → functionResponse, tools →
// functionDeclarations, tool_choice → functionCallingConfig, sampling and thinking →
// generationConfig. It fails only on a request DecodeMessagesRequest would have refused.
func (r *MessagesRequest) ToGemini(opts ToGeminiOptions) (*gemini.GenerateContentRequest, error) {
	out, e := r.toGemini(opts)
	if e != nil {
		return nil, e
	}
	return out, nil
}

func (r *MessagesRequest) toGemini(opts ToGeminiOptions) (*gemini.GenerateContentRequest, *Error) {
	contents, e := geminiContents(r.Messages)
	if e != nil {
		return nil, e
	}
	out := &gemini.GenerateContentRequest{
		Contents:          contents,
		SystemInstruction: systemInstruction(r.System),
		Tools:             geminiTools(r.Tools),
		ToolConfig:        geminiToolConfig(r.ToolChoice, r.Tools),
		GenerationConfig:  r.generationConfig(opts),
	}
	return out, nil
}

func systemInstruction(system []string) *gemini.Content {
	if len(system) == 0 {
		return nil
	}
	parts := make([]gemini.Part, len(system))
	for i, s := range system {
		parts[i] = gemini.Part{Text: s}
	}
	return &gemini.Content{Parts: parts}
}

func (r *MessagesRequest) generationConfig(opts ToGeminiOptions) *gemini.GenerationConfig {
	gc := &gemini.GenerationConfig{
		StopSequences:  r.StopSequences,
		Temperature:    r.Temperature,
		TopP:           r.TopP,
		ThinkingConfig: geminiThinking(r.Thinking, opts.Model),
	}
	if r.MaxTokens > 0 {
		n := r.MaxTokens
		if opts.OutputTokenLimit > 0 {
			n = min(n, opts.OutputTokenLimit)
		}
		m := int(n)
		gc.MaxOutputTokens = &m
	}
	// top_k 0 means "not set": Gemini requires a positive topK.
	if r.TopK != nil && *r.TopK > 0 {
		k := int(*r.TopK)
		gc.TopK = &k
	}
	return gc
}

// geminiContents converts the conversation turn by turn. An empty final assistant
// message (allowed by Anthropic) has no Gemini form and is dropped.
func geminiContents(msgs []MessageParam) ([]gemini.Content, *Error) {
	ts := turnsOf(msgs)
	out := make([]gemini.Content, 0, len(ts))
	// names maps the tool_use ids of the previous assistant turn to their tool names,
	// which Gemini's functionResponse needs and Anthropic's tool_result lacks.
	var names map[string]string
	for _, t := range ts {
		if t.role == RoleAssistant {
			parts, n := modelParts(msgs[t.first:t.end])
			names = n
			if len(parts) > 0 {
				out = append(out, gemini.Content{Role: geminiModel, Parts: parts})
			}
			continue
		}
		parts, e := userParts(msgs[t.first:t.end], t.first, names)
		if e != nil {
			return nil, e
		}
		names = nil
		if len(parts) > 0 {
			out = append(out, gemini.Content{Role: geminiUser, Parts: parts})
		}
	}
	return out, nil
}

// userParts converts a user turn. Function responses come first (Gemini pairs them with
// the previous turn's calls), then the images and PDFs of tool results, then the rest.
func userParts(msgs []MessageParam, base int, names map[string]string) ([]gemini.Part, *Error) {
	var responses, attachments, rest []gemini.Part
	for i, m := range msgs {
		for j := range m.Content {
			b := &m.Content[j]
			switch b.Type {
			case BlockToolResult:
				name, ok := names[b.ToolUseID]
				if !ok {
					return nil, invalidf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", base+i, j, b.ToolUseID)
				}
				text, files := splitToolResult(b.Content)
				responses = append(responses, gemini.Part{FunctionResponse: &gemini.FunctionResponse{
					ID:       b.ToolUseID,
					Name:     name,
					Response: toolResponse(text, b.IsError),
				}})
				attachments = append(attachments, files...)
			default:
				if p, ok := inputPart(b); ok {
					rest = append(rest, p)
				}
			}
		}
	}
	parts := make([]gemini.Part, 0, len(responses)+len(attachments)+len(rest))
	parts = append(parts, responses...)
	parts = append(parts, attachments...)
	return append(parts, rest...), nil
}

// inputPart converts a text, image or document block.
func inputPart(b *ContentBlockParam) (gemini.Part, bool) {
	switch b.Type {
	case BlockText:
		return gemini.Part{Text: b.Text}, b.Text != ""
	case BlockImage, BlockDocument:
		return gemini.Part{InlineData: &gemini.Blob{MimeType: b.MediaType, Data: b.Data}}, true
	}
	return gemini.Part{}, false
}

// splitToolResult joins the text of a tool result with newlines and returns its images
// and documents as parts.
func splitToolResult(content []ContentBlockParam) (string, []gemini.Part) {
	var text strings.Builder
	var files []gemini.Part
	for i := range content {
		b := &content[i]
		if b.Type == BlockText {
			if text.Len() > 0 {
				text.WriteByte('\n')
			}
			text.WriteString(b.Text)
			continue
		}
		if p, ok := inputPart(b); ok {
			files = append(files, p)
		}
	}
	return text.String(), files
}

// toolResponse is the functionResponse.response object: {"result": text}, or
// {"error": text} for a failed tool.
func toolResponse(text string, isError bool) json.RawMessage {
	key := `{"result":`
	if isError {
		key = `{"error":`
	}
	b := make([]byte, 0, len(key)+len(text)+8)
	b = append(b, key...)
	b = appendJSONString(b, text)
	return append(b, '}')
}

// modelParts converts an assistant turn and returns the tool names by tool_use id.
// Thinking signatures are placed as described in the package doc.
func modelParts(msgs []MessageParam) ([]gemini.Part, map[string]string) {
	var parts []gemini.Part
	var names map[string]string
	sig := pendingSignature{own: -1}
	for _, m := range msgs {
		for j := range m.Content {
			b := &m.Content[j]
			switch b.Type {
			case BlockThinking:
				parts = sig.settle(parts)
				own := -1
				if b.Thinking != "" {
					parts = append(parts, gemini.Part{Text: b.Thinking, Thought: true})
					own = len(parts) - 1
				}
				if b.Signature != "" && b.Signature != UnsignedThinking {
					sig = pendingSignature{value: b.Signature, own: own}
				}
			case BlockText:
				if b.Text != "" {
					parts = append(parts, gemini.Part{Text: b.Text, ThoughtSignature: sig.take()})
				}
			case BlockToolUse:
				if names == nil {
					names = make(map[string]string)
				}
				names[b.ID] = b.Name
				parts = append(parts, gemini.Part{
					FunctionCall:     &gemini.FunctionCall{ID: b.ID, Name: b.Name, Args: b.Input},
					ThoughtSignature: sig.take(),
				})
			}
			// redacted_thinking comes from a real Claude and means nothing to Gemini.
		}
	}
	return sig.settle(parts), names
}

// pendingSignature is a thinking block's signature waiting for the part it belongs on.
type pendingSignature struct {
	value string
	// own is the index of the thinking block's own thought part, or -1.
	own int
}

// take hands the signature to the part being appended after its thinking block.
func (s *pendingSignature) take() string {
	v := s.value
	*s = pendingSignature{own: -1}
	return v
}

// settle places a signature that no following part took: on its own thought part,
// else on the closest earlier unsigned non-thought part, else nowhere.
func (s *pendingSignature) settle(parts []gemini.Part) []gemini.Part {
	v := s.value
	own := s.own
	*s = pendingSignature{own: -1}
	if v == "" {
		return parts
	}
	if own >= 0 {
		parts[own].ThoughtSignature = v
		return parts
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if !parts[i].Thought && parts[i].ThoughtSignature == "" {
			parts[i].ThoughtSignature = v
			break
		}
	}
	return parts
}
