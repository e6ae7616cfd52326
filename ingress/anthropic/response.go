package anthropic

import (
	"encoding/json"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// StopReason is a message's stop_reason. The empty value is JSON null (a message_start
// has no stop reason yet).
type StopReason string

// The stop reasons this package produces.
const (
	StopEndTurn   StopReason = "end_turn"
	StopMaxTokens StopReason = "max_tokens"
	StopToolUse   StopReason = "tool_use"
	StopRefusal   StopReason = "refusal"
)

// ResponseMeta is what the gateway knows about a response that Gemini does not say.
type ResponseMeta struct {
	// ID is the message id, "msg_..." (unique per request: tool ids derive from it).
	ID string
	// Model is the model name the client asked for, echoed back.
	Model string
}

// Message is a POST /v1/messages response.
type Message struct {
	ID           string
	Model        string
	Content      []ContentBlock
	StopReason   StopReason
	StopSequence string
	Usage        Usage
}

// ContentBlock is one block of a response: text, thinking or tool_use.
type ContentBlock struct {
	Type      string
	Text      string
	Thinking  string
	Signature string
	ID        string
	Name      string
	// Input is the tool call's input object.
	Input json.RawMessage
}

// Usage is a response's token usage. InputTokens excludes the tokens read from the
// context cache, which are reported in CacheReadInputTokens, as Anthropic does.
type Usage struct {
	InputTokens              int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
	OutputTokens             int64
}

// FromGemini translates a generateContent response. Thought parts become thinking
// blocks, text parts text blocks and function calls tool_use blocks (with Gemini's id,
// or "toolu_<id>_<n>" derived from meta.ID); see the package doc for signatures, stop
// reasons and usage.
func FromGemini(resp *gemini.GenerateContentResponse, meta ResponseMeta) *Message {
	a := newAssembler(meta)
	if resp != nil && len(resp.Candidates) > 0 {
		// Each part yields at most a start, a signature, a delta and a stop.
		a.ops = make([]op, 0, 4*len(resp.Candidates[0].Content.Parts)+2)
	}
	a.add(resp)
	a.close()
	return &Message{
		ID:         meta.ID,
		Model:      meta.Model,
		Content:    applyOps(make([]ContentBlock, 0, a.next), a.ops),
		StopReason: a.stopReason(),
		Usage:      a.messageUsage(),
	}
}

// applyOps builds content blocks from assembler steps.
func applyOps(blocks []ContentBlock, ops []op) []ContentBlock {
	var sb strings.Builder
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opStart:
			blocks = append(blocks, o.block)
			continue
		case opStop:
			continue
		}
		b := &blocks[o.index]
		switch o.kind {
		case opTextDelta:
			b.Text = concat(&sb, b.Text, o.text)
		case opThinkingDelta:
			b.Thinking = concat(&sb, b.Thinking, o.text)
		case opSignatureDelta:
			b.Signature = o.text
		case opInputDelta:
			b.Input = json.RawMessage(o.text)
		}
	}
	return blocks
}

func concat(sb *strings.Builder, a, b string) string {
	if a == "" {
		return b
	}
	sb.Reset()
	sb.Grow(len(a) + len(b))
	sb.WriteString(a)
	sb.WriteString(b)
	return sb.String()
}

// Body returns the message as the JSON response body. It is what MarshalJSON returns,
// without encoding/json's second pass that re-validates and compacts the output.
func (m *Message) Body() []byte {
	n := 256
	for i := range m.Content {
		c := &m.Content[i]
		n += 64 + len(c.Text) + len(c.Thinking) + len(c.Signature) + len(c.Input)
	}
	return appendMessageJSON(make([]byte, 0, n), m)
}

// MarshalJSON writes the Anthropic message object.
func (m Message) MarshalJSON() ([]byte, error) {
	return m.Body(), nil
}

// appendMessageJSON writes the message object; message_start uses it too.
func appendMessageJSON(b []byte, m *Message) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendJSONString(b, m.Model)
	b = append(b, `,"content":[`...)
	for i := range m.Content {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendBlockJSON(b, &m.Content[i])
	}
	b = append(b, `],"stop_reason":`...)
	b = appendNullableString(b, string(m.StopReason))
	b = append(b, `,"stop_sequence":`...)
	b = appendNullableString(b, m.StopSequence)
	b = append(b, `,"usage":`...)
	b = appendUsageJSON(b, &m.Usage)
	return append(b, '}')
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// MarshalJSON writes the Anthropic block object: only the fields of its type.
func (c ContentBlock) MarshalJSON() ([]byte, error) {
	return appendBlockJSON(nil, &c), nil
}

func appendBlockJSON(b []byte, c *ContentBlock) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, c.Type)
	switch c.Type {
	case blockThinking:
		b = append(b, `,"thinking":`...)
		b = appendJSONString(b, c.Thinking)
		b = append(b, `,"signature":`...)
		b = appendJSONString(b, c.Signature)
	case blockToolUse:
		b = append(b, `,"id":`...)
		b = appendJSONString(b, c.ID)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, c.Name)
		b = append(b, `,"input":`...)
		if len(c.Input) == 0 {
			b = append(b, "{}"...)
		} else {
			b = append(b, c.Input...)
		}
	default:
		b = append(b, `,"text":`...)
		b = appendJSONString(b, c.Text)
	}
	return append(b, '}')
}

// MarshalJSON writes the Anthropic usage object.
func (u Usage) MarshalJSON() ([]byte, error) {
	return appendUsageJSON(nil, &u), nil
}

func appendUsageJSON(b []byte, u *Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.InputTokens)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = appendInt(b, u.CacheCreationInputTokens)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = appendInt(b, u.CacheReadInputTokens)
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, u.OutputTokens)
	return append(b, '}')
}
