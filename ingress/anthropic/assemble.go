package anthropic

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Block types of response content.
const (
	blockText     = "text"
	blockThinking = "thinking"
	blockToolUse  = "tool_use"
)

// opKind is one step of building the response content, in stream order.
type opKind uint8

const (
	// opStart opens block index with the block's empty form.
	opStart opKind = iota
	opTextDelta
	opThinkingDelta
	opSignatureDelta
	// opInputDelta carries a tool call's whole input JSON.
	opInputDelta
	opStop
)

// op is one step. block is set for opStart, text for the deltas.
type op struct {
	kind  opKind
	index int
	block ContentBlock
	text  string
}

// assembler turns Gemini parts into content-block steps. The non-streaming and the
// streaming translation share it, so they cannot disagree about block boundaries,
// signatures or tool ids: a new block starts whenever the part kind changes (thought,
// text, function call), consecutive parts of one kind continue a block, and every
// function call is a block of its own.
type assembler struct {
	meta ResponseMeta
	ops  []op
	// open is the type of the open block ("" when none); next is the index the next
	// block gets, so the open block is next-1.
	open string
	next int
	// signed is true when the open thinking block already has its signature.
	signed    bool
	toolCalls int
	// finish is the last finishReason seen; blocked is set by a promptFeedback
	// blockReason.
	finish  string
	blocked bool
	usage   gemini.UsageMetadata
	// hasUsage is true once a chunk carried usageMetadata.
	hasUsage bool
}

func newAssembler(meta ResponseMeta) assembler {
	return assembler{meta: meta}
}

// add takes one Gemini response (or stream chunk). Only the first candidate is read:
// the gateway never asks for more than one.
func (a *assembler) add(resp *gemini.GenerateContentResponse) {
	if resp == nil {
		return
	}
	if resp.UsageMetadata != nil {
		a.usage = *resp.UsageMetadata
		a.hasUsage = true
	}
	if promptBlocked(resp.PromptFeedback) {
		a.blocked = true
	}
	if len(resp.Candidates) == 0 {
		return
	}
	c := &resp.Candidates[0]
	for i := range c.Content.Parts {
		a.part(&c.Content.Parts[i])
	}
	if c.FinishReason != "" {
		a.finish = c.FinishReason
	}
}

// promptBlocked reports whether promptFeedback says the prompt was blocked.
func promptBlocked(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	var pf struct {
		BlockReason string `json:"blockReason"`
	}
	return json.Unmarshal(raw, &pf) == nil && pf.BlockReason != ""
}

func (a *assembler) part(p *gemini.Part) {
	switch {
	case p.FunctionCall != nil:
		a.signature(p.ThoughtSignature)
		a.close()
		a.toolUse(p.FunctionCall)
	case p.Thought:
		if p.Text == "" && p.ThoughtSignature == "" {
			return
		}
		if a.open != blockThinking || a.signed {
			a.start(ContentBlock{Type: blockThinking})
		}
		if p.Text != "" {
			a.ops = append(a.ops, op{kind: opThinkingDelta, index: a.next - 1, text: p.Text})
		}
		if p.ThoughtSignature != "" {
			a.ops = append(a.ops, op{kind: opSignatureDelta, index: a.next - 1, text: p.ThoughtSignature})
			a.signed = true
		}
	case p.Text != "" || p.ThoughtSignature != "":
		a.signature(p.ThoughtSignature)
		if p.Text == "" {
			return
		}
		if a.open != blockText {
			a.start(ContentBlock{Type: blockText})
		}
		a.ops = append(a.ops, op{kind: opTextDelta, index: a.next - 1, text: p.Text})
	}
	// inlineData, executableCode and the like have no Anthropic form and are skipped.
}

// signature places the thoughtSignature of a non-thought part: on the open thinking
// block if it has none yet, else on a new empty thinking block.
func (a *assembler) signature(sig string) {
	if sig == "" {
		return
	}
	if a.open != blockThinking || a.signed {
		a.start(ContentBlock{Type: blockThinking})
	}
	a.ops = append(a.ops, op{kind: opSignatureDelta, index: a.next - 1, text: sig})
	a.signed = true
}

// start closes the open block and opens b.
func (a *assembler) start(b ContentBlock) {
	a.close()
	a.ops = append(a.ops, op{kind: opStart, index: a.next, block: b})
	a.open = b.Type
	a.signed = false
	a.next++
}

// close ends the open block. A thinking block that never got a signature gets the
// UnsignedThinking placeholder first.
func (a *assembler) close() {
	if a.open == "" {
		return
	}
	if a.open == blockThinking && !a.signed {
		a.ops = append(a.ops, op{kind: opSignatureDelta, index: a.next - 1, text: UnsignedThinking})
	}
	a.ops = append(a.ops, op{kind: opStop, index: a.next - 1})
	a.open = ""
	a.signed = false
}

// toolUse emits a whole tool_use block: Gemini sends a function call in one piece.
func (a *assembler) toolUse(fc *gemini.FunctionCall) {
	id := fc.ID
	if id == "" {
		id = a.toolID(a.toolCalls)
	}
	a.toolCalls++
	a.start(ContentBlock{Type: blockToolUse, ID: id, Name: fc.Name})
	a.ops = append(a.ops, op{kind: opInputDelta, index: a.next - 1, text: toolInput(fc.Args)})
	a.close()
}

// toolID derives a deterministic id for the n-th call of a message from the message
// id: "toolu_<message id without msg_>_<n>".
func (a *assembler) toolID(n int) string {
	base := strings.TrimPrefix(a.meta.ID, "msg_")
	if base == "" {
		base = "gca"
	}
	return "toolu_" + base + "_" + strconv.Itoa(n)
}

// toolInput returns a function call's args as compact JSON; anything but a JSON object
// (Anthropic's input is always one) becomes {}.
func toolInput(args json.RawMessage) string {
	if jsonKind(args) != '{' {
		return "{}"
	}
	var buf bytes.Buffer
	buf.Grow(len(args))
	if json.Compact(&buf, args) != nil {
		return "{}"
	}
	return buf.String()
}

// stopReason maps how Gemini ended to Anthropic's stop_reason:
//
//   - STOP (and the non-error OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...) → end_turn,
//     or tool_use when the message has a tool call;
//   - MAX_TOKENS → max_tokens;
//   - SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY and a blocked
//     prompt → refusal;
//   - no finishReason at all → max_tokens: the answer was cut short (see package doc).
func (a *assembler) stopReason() StopReason {
	switch a.finish {
	case "":
		if a.blocked {
			return StopRefusal
		}
		return StopMaxTokens
	case gemini.FinishMaxTokens:
		return StopMaxTokens
	case gemini.FinishSafety, gemini.FinishRecitation, "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return StopRefusal
	}
	if a.toolCalls > 0 {
		return StopToolUse
	}
	return StopEndTurn
}

// messageUsage converts the last usage seen (see Usage).
func (a *assembler) messageUsage() Usage {
	u := &a.usage
	return Usage{
		InputTokens:          max(u.PromptTokenCount-u.CachedContentTokenCount, 0) + u.ToolUsePromptTokenCount,
		CacheReadInputTokens: u.CachedContentTokenCount,
		OutputTokens:         u.CandidatesTokenCount + u.ThoughtsTokenCount,
	}
}
