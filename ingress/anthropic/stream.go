package anthropic

import (
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// streamError is a constant sentinel error of the stream translator.
type streamError string

func (e streamError) Error() string { return string(e) }

// ErrStreamFinished is returned by Chunk after Finish: the client's stream is closed.
const ErrStreamFinished streamError = "anthropic stream: chunk after finish"

// StreamTranslator turns the chunks of one Gemini streamGenerateContent call into the
// Anthropic event stream, as SSE bytes ready to write:
//
//	message_start
//	(content_block_start, content_block_delta..., content_block_stop)...
//	message_delta
//	message_stop
//
// Blocks are strictly sequential and numbered from 0. A translator serves one request
// and is not safe for concurrent use.
type StreamTranslator struct {
	asm      assembler
	started  bool
	finished bool
}

// NewStreamTranslator returns a translator for one streamed response.
func NewStreamTranslator(meta ResponseMeta) *StreamTranslator {
	return &StreamTranslator{asm: newAssembler(meta)}
}

// Start returns message_start now, before Gemini has answered, for a gateway that must
// commit the response early; its usage is then zero (message_delta carries the real
// counts). Without Start the first Chunk emits message_start with the prompt's token
// count. Start returns nil once message_start was emitted.
func (t *StreamTranslator) Start() []byte {
	if t.started || t.finished {
		return nil
	}
	return t.messageStart(nil)
}

// Chunk translates one Gemini chunk into zero or more events. Usage is taken from the
// last chunk that carried usageMetadata. It fails only after Finish.
func (t *StreamTranslator) Chunk(resp *gemini.GenerateContentResponse) ([]byte, error) {
	if t.finished {
		return nil, ErrStreamFinished
	}
	t.asm.add(resp)
	var out []byte
	if !t.started {
		out = t.messageStart(out)
	}
	return t.flush(out), nil
}

// Finish ends the stream: it closes the open block, then emits message_delta (stop
// reason and final usage) and message_stop. For a stream that ended without a
// finishReason the stop reason is max_tokens (see the package doc). It emits
// message_start first when no chunk ever arrived, so the client always sees a complete
// message. Finish returns nil when called again.
func (t *StreamTranslator) Finish() []byte {
	if t.finished {
		return nil
	}
	t.asm.close()
	var out []byte
	if !t.started {
		out = t.messageStart(out)
	}
	out = t.flush(out)
	t.finished = true

	u := t.asm.messageUsage()
	out = appendEventStart(out, "message_delta")
	out = append(out, `{"type":"message_delta","delta":{"stop_reason":`...)
	out = appendNullableString(out, string(t.asm.stopReason()))
	out = append(out, `,"stop_sequence":null},"usage":`...)
	out = appendUsageJSON(out, &u)
	out = append(out, "}\n\n"...)
	out = appendEventStart(out, "message_stop")
	return append(out, `{"type":"message_stop"}`+"\n\n"...)
}

// messageStart appends message_start with the usage known so far.
func (t *StreamTranslator) messageStart(out []byte) []byte {
	t.started = true
	m := Message{ID: t.asm.meta.ID, Model: t.asm.meta.Model, Usage: t.asm.messageUsage()}
	out = appendEventStart(out, "message_start")
	out = append(out, `{"type":"message_start","message":`...)
	out = appendMessageJSON(out, &m)
	return append(out, "}\n\n"...)
}

// flush appends the assembler's pending steps as events and clears them.
func (t *StreamTranslator) flush(out []byte) []byte {
	if len(t.asm.ops) == 0 {
		return out
	}
	need := 0
	for i := range t.asm.ops {
		need += eventOverhead + len(t.asm.ops[i].text)
	}
	out = growBytes(out, need)
	for i := range t.asm.ops {
		out = appendOpEvent(out, &t.asm.ops[i])
	}
	clear(t.asm.ops)
	t.asm.ops = t.asm.ops[:0]
	return out
}

// eventOverhead is about the size of a content-block event without its text.
const eventOverhead = 128

// growBytes makes room for n more bytes in b.
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// appendOpEvent appends one content-block event.
func appendOpEvent(b []byte, o *op) []byte {
	switch o.kind {
	case opStart:
		b = appendEventStart(b, "content_block_start")
		b = append(b, `{"type":"content_block_start","index":`...)
		b = appendInt(b, int64(o.index))
		b = append(b, `,"content_block":`...)
		b = appendBlockJSON(b, &o.block)
		return append(b, "}\n\n"...)
	case opStop:
		b = appendEventStart(b, "content_block_stop")
		b = append(b, `{"type":"content_block_stop","index":`...)
		b = appendInt(b, int64(o.index))
		return append(b, "}\n\n"...)
	}
	var typ, field string
	switch o.kind {
	case opTextDelta:
		typ, field = "text_delta", "text"
	case opThinkingDelta:
		typ, field = "thinking_delta", "thinking"
	case opSignatureDelta:
		typ, field = "signature_delta", "signature"
	default:
		typ, field = "input_json_delta", "partial_json"
	}
	b = appendEventStart(b, "content_block_delta")
	b = append(b, `{"type":"content_block_delta","index":`...)
	b = appendInt(b, int64(o.index))
	b = append(b, `,"delta":{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","`...)
	b = append(b, field...)
	b = append(b, `":`...)
	b = appendJSONString(b, o.text)
	return append(b, "}}\n\n"...)
}

// appendEventStart appends "event: <name>\ndata: "; the caller appends the JSON and a
// blank line.
func appendEventStart(b []byte, name string) []byte {
	b = append(b, "event: "...)
	b = append(b, name...)
	return append(b, "\ndata: "...)
}

// Ping returns a ping event; the gateway sends one on a timer while Gemini is silent,
// which keeps proxies from closing an idle connection. Anthropic SDKs skip it.
func Ping() []byte {
	return []byte("event: ping\ndata: {\"type\":\"ping\"}\n\n")
}

// ErrorEvent returns an error event, the way an Anthropic stream reports a failure after
// the response has started (the SDKs raise it as an API error). Nothing may follow it.
func ErrorEvent(err *Error) []byte {
	if err == nil {
		err = NewError(APIError, "internal error")
	}
	b := appendEventStart(make([]byte, 0, 96+len(err.Message)), "error")
	b = appendErrorJSON(b, err)
	return append(b, "\n\n"...)
}
