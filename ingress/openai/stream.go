package openai

import (
	"net/http"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// StreamTranslator turns the chunks of one streamGenerateContent call into OpenAI
// chat.completion.chunk server-sent events. Create one per request; it is not safe for
// concurrent use.
//
// The events follow OpenAI's stream exactly: the first event of each choice carries
// delta.role "assistant" and content "", text arrives in delta.content, thought
// summaries in delta.reasoning_content, and a function call (which Gemini delivers
// whole, never in pieces) as one delta.tool_calls entry with its id, name and full
// arguments, indexed by its position among the choice's tool calls. The choice's last
// event carries its finish_reason. With include_usage every event has "usage":null and
// Finish adds a chunk with empty choices and the usage of the last Gemini chunk that
// carried usageMetadata (Gemini's chunk usage is cumulative: it is never summed).
type StreamTranslator struct {
	meta         ResponseMeta
	includeUsage bool
	// prefix is `data: {"id":...,"object":"chat.completion.chunk","created":...,
	// "model":...,"choices":[`, shared by every event.
	prefix []byte
	// suffix closes choices and the object, and ends the event.
	suffix  []byte
	choices []streamChoice
	usage   gemini.UsageMetadata
	sawUse  bool
	done    bool
}

// streamChoice is what the translator remembers about one choice.
type streamChoice struct {
	index     int
	toolCalls int
	finished  bool
}

// NewStreamTranslator starts the translation of one stream. includeUsage is the
// request's stream_options.include_usage.
func NewStreamTranslator(meta ResponseMeta, includeUsage bool) *StreamTranslator {
	p := make([]byte, 0, 96+len(meta.ID)+len(meta.Model))
	p = append(p, `data: {"id":`...)
	p = appendString(p, meta.ID)
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = appendInt(p, meta.Created)
	p = append(p, `,"model":`...)
	p = appendString(p, meta.Model)
	p = append(p, `,"choices":[`...)
	suffix := "]}\n\n"
	if includeUsage {
		suffix = `],"usage":null}` + "\n\n"
	}
	return &StreamTranslator{meta: meta, includeUsage: includeUsage, prefix: p, suffix: []byte(suffix)}
}

// Chunk translates one Gemini chunk into zero or more SSE events.
func (t *StreamTranslator) Chunk(resp *gemini.GenerateContentResponse) ([]byte, error) {
	return t.AppendChunk(nil, resp)
}

// AppendChunk is Chunk appending to dst, for callers that reuse a buffer.
func (t *StreamTranslator) AppendChunk(dst []byte, resp *gemini.GenerateContentResponse) ([]byte, error) {
	if t.done {
		return dst, NewError(http.StatusInternalServerError, TypeServer, "", "", "stream chunk translated after the stream finished")
	}
	if resp == nil {
		return dst, nil
	}
	if resp.UsageMetadata != nil {
		t.usage, t.sawUse = *resp.UsageMetadata, true
	}
	if len(resp.Candidates) == 0 {
		if reason := blockReason(resp.PromptFeedback); reason != "" {
			dst = t.appendBlocked(dst, reason)
		}
		return dst, nil
	}
	for i := range resp.Candidates {
		c := &resp.Candidates[i]
		st, isNew := t.choice(c.Index)
		if st.finished {
			continue
		}
		if isNew {
			dst = t.appendRole(dst, c.Index)
		}
		dst = t.appendParts(dst, st, c)
		if c.FinishReason != "" {
			dst = t.appendFinish(dst, st, finishReason(c.FinishReason, st.toolCalls > 0))
		}
	}
	return dst, nil
}

// Finish returns the events that end the stream: a finish event for every choice that
// did not get one (an empty stream still yields one choice), the usage chunk when the
// client asked for it, and "data: [DONE]". Calling it again returns nothing.
func (t *StreamTranslator) Finish() []byte {
	if t.done {
		return nil
	}
	var dst []byte
	if len(t.choices) == 0 {
		st, _ := t.choice(0)
		dst = t.appendRole(dst, 0)
		dst = t.appendFinish(dst, st, FinishStop)
	}
	for i := range t.choices {
		if st := &t.choices[i]; !st.finished {
			dst = t.appendFinish(dst, st, finishReason("", st.toolCalls > 0))
		}
	}
	t.done = true
	if t.includeUsage {
		dst = append(dst, t.prefix...)
		dst = append(dst, `],"usage":`...)
		dst = appendUsage(dst, t.Usage())
		dst = append(dst, "}\n\n"...)
	}
	return append(dst, "data: [DONE]\n\n"...)
}

// Usage is the usage of the stream so far in OpenAI's terms, from the last chunk that
// carried usageMetadata (zero when none did).
func (t *StreamTranslator) Usage() Usage {
	if !t.sawUse {
		return Usage{}
	}
	return usageFrom(&t.usage)
}

// GeminiUsage is the last usageMetadata seen, in Gemini's terms, for accounting: the
// gateway records it even for a stream cut short. ok is false when no chunk carried
// usage.
func (t *StreamTranslator) GeminiUsage() (u gemini.UsageMetadata, ok bool) {
	return t.usage, t.sawUse
}

// ErrorEvent is the SSE event that reports an error after the stream has started (the
// HTTP status is already sent): data: {"error":{...}}. OpenAI's SDKs raise it as an
// API error. No [DONE] follows it.
func ErrorEvent(err *Error) []byte {
	if err == nil {
		err = NewError(http.StatusInternalServerError, TypeServer, "", "", "The stream ended with an unknown error.")
	}
	dst := make([]byte, 0, 112+len(err.Message)+len(err.Param))
	dst = append(dst, "data: "...)
	dst = err.appendBody(dst)
	return append(dst, "\n\n"...)
}

// choice finds or creates the state of the choice with the given index.
func (t *StreamTranslator) choice(index int) (st *streamChoice, isNew bool) {
	for i := range t.choices {
		if t.choices[i].index == index {
			return &t.choices[i], false
		}
	}
	t.choices = append(t.choices, streamChoice{index: index})
	return &t.choices[len(t.choices)-1], true
}

// appendBlocked reports a prompt Gemini refused: an empty choice 0 with a refusal and
// finish_reason content_filter.
func (t *StreamTranslator) appendBlocked(dst []byte, reason string) []byte {
	st, isNew := t.choice(0)
	if st.finished {
		return dst
	}
	if isNew {
		dst = t.appendRole(dst, 0)
	}
	dst = t.beginEvent(dst, 0)
	dst = append(dst, `{"refusal":`...)
	dst = appendString(dst, blockedRefusal(reason))
	dst = t.endEvent(dst, '}', "")
	return t.appendFinish(dst, st, FinishContentFilter)
}

// appendRole appends the first event of a choice.
func (t *StreamTranslator) appendRole(dst []byte, index int) []byte {
	dst = t.beginEvent(dst, index)
	dst = append(dst, `{"role":"assistant","content":""`...)
	return t.endEvent(dst, '}', "")
}

// appendFinish appends a choice's last event and marks it finished.
func (t *StreamTranslator) appendFinish(dst []byte, st *streamChoice, reason string) []byte {
	st.finished = true
	dst = t.beginEvent(dst, st.index)
	dst = append(dst, '{')
	return t.endEvent(dst, '}', reason)
}

// Kinds of delta a part contributes to.
const (
	deltaNone = iota
	deltaContent
	deltaReasoning
	deltaToolCalls
)

// partKind is the kind of delta a part belongs to; deltaNone for parts with nothing
// to show (empty text carrying only a signature, code execution, inline data).
func partKind(p *gemini.Part) int {
	switch {
	case p.FunctionCall != nil:
		return deltaToolCalls
	case p.Text == "":
		return deltaNone
	case p.Thought:
		return deltaReasoning
	}
	return deltaContent
}

// appendParts appends one event per run of consecutive parts of the same kind, so that
// order is kept and a chunk of several text parts costs one event.
func (t *StreamTranslator) appendParts(dst []byte, st *streamChoice, c *gemini.Candidate) []byte {
	parts := c.Content.Parts
	for i := 0; i < len(parts); {
		kind := partKind(&parts[i])
		if kind == deltaNone {
			i++
			continue
		}
		j := i + 1
		for j < len(parts) && partKind(&parts[j]) == kind {
			j++
		}
		dst = t.beginEvent(dst, st.index)
		switch kind {
		case deltaContent, deltaReasoning:
			if kind == deltaContent {
				dst = append(dst, `{"content":"`...)
			} else {
				dst = append(dst, `{"reasoning_content":"`...)
			}
			for k := i; k < j; k++ {
				dst = appendEscaped(dst, parts[k].Text)
			}
			dst = append(dst, '"')
		case deltaToolCalls:
			dst = append(dst, `{"tool_calls":[`...)
			for k := i; k < j; k++ {
				if k > i {
					dst = append(dst, ',')
				}
				dst = t.appendToolCall(dst, st, &parts[k])
			}
			dst = append(dst, ']')
		}
		dst = t.endEvent(dst, '}', "")
		i = j
	}
	return dst
}

// appendToolCall appends one delta.tool_calls entry and counts it.
func (t *StreamTranslator) appendToolCall(dst []byte, st *streamChoice, p *gemini.Part) []byte {
	fc := p.FunctionCall
	k := st.toolCalls
	st.toolCalls++
	dst = append(dst, `{"index":`...)
	dst = appendInt(dst, int64(k))
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, toolCallID(fc.ID, t.meta.ID, st.index, k))
	dst = append(dst, `,"type":"function","function":{"name":`...)
	dst = appendString(dst, fc.Name)
	dst = append(dst, `,"arguments":`...)
	dst = appendString(dst, compactArgs(fc.Args))
	dst = append(dst, '}')
	if p.ThoughtSignature != "" {
		dst = append(dst, `,"extra_content":{"google":{"thought_signature":`...)
		dst = appendString(dst, p.ThoughtSignature)
		dst = append(dst, "}}"...)
	}
	return append(dst, '}')
}

// beginEvent appends the start of an event for one choice, up to the delta's value.
func (t *StreamTranslator) beginEvent(dst []byte, index int) []byte {
	dst = append(dst, t.prefix...)
	dst = append(dst, `{"index":`...)
	dst = appendInt(dst, int64(index))
	return append(dst, `,"delta":`...)
}

// endEvent closes the delta with closer and ends the event with finish_reason (null
// when empty).
func (t *StreamTranslator) endEvent(dst []byte, closer byte, finish string) []byte {
	dst = append(dst, closer)
	dst = append(dst, `,"logprobs":null,"finish_reason":`...)
	dst = appendNullableString(dst, finish)
	dst = append(dst, '}')
	return append(dst, t.suffix...)
}
