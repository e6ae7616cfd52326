package anthropic

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// blockContext says where a content block appears, which decides the block types it
// may have.
type blockContext int

const (
	inUser blockContext = iota
	inAssistant
	inToolResult
)

func (c blockContext) allows(t string) bool {
	switch c {
	case inUser:
		return t == BlockText || t == BlockImage || t == BlockDocument || t == BlockToolResult
	case inAssistant:
		return t == BlockText || t == BlockToolUse || t == BlockThinking || t == BlockRedactedThinking
	default:
		return t == BlockText || t == BlockImage || t == BlockDocument
	}
}

func (c blockContext) String() string {
	switch c {
	case inUser:
		return "user messages"
	case inAssistant:
		return "assistant messages"
	default:
		return "tool_result content"
	}
}

// isImageMediaType reports whether t is an image type Anthropic accepts. Gemini does
// not list image/gif; such an image is passed on and Gemini decides.
func isImageMediaType(t string) bool {
	switch t {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
		return true
	}
	return false
}

// decodeSystem reads system: a string or an array of text blocks. cache_control and
// citations on the blocks are ignored; empty blocks are dropped.
func decodeSystem(raw json.RawMessage) ([]string, *Error) {
	switch jsonKind(raw) {
	case 0, 'n':
		return nil, nil
	case '"':
		var s string
		if e := unmarshalAt(raw, &s, "system"); e != nil {
			return nil, e
		}
		if s == "" {
			return nil, nil
		}
		return []string{s}, nil
	case '[':
		var blocks []wireBlock
		if e := unmarshalAt(raw, &blocks, "system"); e != nil {
			return nil, e
		}
		out := make([]string, 0, len(blocks))
		for i, b := range blocks {
			if b.Type != BlockText {
				return nil, invalidf("system.%d.type: system blocks must be of type \"text\", got %q", i, b.Type)
			}
			if b.Text != "" {
				out = append(out, b.Text)
			}
		}
		return out, nil
	}
	return nil, invalidf("system: expected string or array of text blocks")
}

// decodeMessages decodes every message's role and content.
func decodeMessages(ws []wireMessage) ([]MessageParam, *Error) {
	if len(ws) == 0 {
		return nil, invalidf("messages: at least one message is required")
	}
	out := make([]MessageParam, len(ws))
	for i, w := range ws {
		path := "messages." + strconv.Itoa(i)
		var ctx blockContext
		switch w.Role {
		case RoleUser:
			ctx = inUser
		case RoleAssistant:
			ctx = inAssistant
		default:
			return nil, invalidf("%s.role: must be \"user\" or \"assistant\", got %q", path, w.Role)
		}
		blocks, e := decodeContent(w.Content, path+".content", ctx)
		if e != nil {
			return nil, e
		}
		if len(blocks) == 0 && (ctx == inUser || i != len(ws)-1) {
			return nil, invalidf("%s: content must not be empty (only a final assistant message may be empty)", path)
		}
		out[i] = MessageParam{Role: w.Role, Content: blocks}
	}
	return out, nil
}

// decodeContent reads content: a string (one text block) or an array of blocks.
func decodeContent(raw json.RawMessage, path string, ctx blockContext) ([]ContentBlockParam, *Error) {
	switch jsonKind(raw) {
	case 0, 'n':
		if ctx == inToolResult {
			return nil, nil
		}
		return nil, invalidf("%s: field required", path)
	case '"':
		var s string
		if e := unmarshalAt(raw, &s, path); e != nil {
			return nil, e
		}
		if s == "" {
			return nil, nil
		}
		return []ContentBlockParam{{Type: BlockText, Text: s}}, nil
	case '[':
		var ws []wireBlock
		if e := unmarshalAt(raw, &ws, path); e != nil {
			return nil, e
		}
		out := make([]ContentBlockParam, 0, len(ws))
		for i := range ws {
			b, keep, e := decodeBlock(&ws[i], path+"."+strconv.Itoa(i), ctx)
			if e != nil {
				return nil, e
			}
			if keep {
				out = append(out, b)
			}
		}
		return out, nil
	}
	return nil, invalidf("%s: expected string or array of content blocks", path)
}

// decodeBlock converts one wire block. keep is false for a block that carries nothing
// (an empty text block).
func decodeBlock(w *wireBlock, path string, ctx blockContext) (b ContentBlockParam, keep bool, e *Error) {
	if !ctx.allows(w.Type) {
		switch w.Type {
		case BlockText, BlockImage, BlockDocument, BlockToolUse, BlockToolResult, BlockThinking, BlockRedactedThinking:
			return b, false, invalidf("%s: %q blocks are not allowed in %s", path, w.Type, ctx)
		case "":
			return b, false, invalidf("%s.type: field required", path)
		}
		return b, false, invalidf("%s: content block type %q is not supported by this gateway", path, w.Type)
	}
	b.Type = w.Type
	switch w.Type {
	case BlockText:
		b.Text = w.Text
		return b, w.Text != "", nil
	case BlockImage:
		return decodeImage(w, path)
	case BlockDocument:
		return decodeDocument(w, path)
	case BlockToolUse:
		if w.ID == "" {
			return b, false, invalidf("%s.id: field required", path)
		}
		if w.Name == "" {
			return b, false, invalidf("%s.name: field required", path)
		}
		b.ID, b.Name = w.ID, w.Name
		switch jsonKind(w.Input) {
		case 0, 'n':
			b.Input = json.RawMessage(`{}`)
		case '{':
			b.Input = w.Input
		default:
			return b, false, invalidf("%s.input: expected object", path)
		}
		return b, true, nil
	case BlockToolResult:
		if w.ToolUseID == "" {
			return b, false, invalidf("%s.tool_use_id: field required", path)
		}
		b.ToolUseID, b.IsError = w.ToolUseID, w.IsError
		if b.Content, e = decodeContent(w.Content, path+".content", inToolResult); e != nil {
			return b, false, e
		}
		return b, true, nil
	case BlockThinking:
		b.Thinking, b.Signature = w.Thinking, w.Signature
		return b, true, nil
	default: // BlockRedactedThinking
		b.Data = w.Data
		return b, true, nil
	}
}

// sourceOf decodes a block's source object.
func sourceOf(w *wireBlock, path string) (wireSource, *Error) {
	var s wireSource
	if jsonKind(w.Source) != '{' {
		return s, invalidf("%s.source: expected object", path)
	}
	e := unmarshalAt(w.Source, &s, path+".source")
	return s, e
}

// refuseURL is the answer to a url source: the gateway never fetches remote URLs.
func refuseURL(path, what string) *Error {
	return invalidf("%s.source: %s URLs are not supported: this gateway never fetches remote URLs; send the %s as base64", path, what, what)
}

func decodeImage(w *wireBlock, path string) (ContentBlockParam, bool, *Error) {
	b := ContentBlockParam{Type: BlockImage}
	s, e := sourceOf(w, path)
	if e != nil {
		return b, false, e
	}
	switch s.Type {
	case "base64":
	case "url":
		return b, false, refuseURL(path, "image")
	default:
		return b, false, invalidf("%s.source.type: image source type %q is not supported; use \"base64\"", path, s.Type)
	}
	if !isImageMediaType(s.MediaType) {
		return b, false, invalidf("%s.source.media_type: must be one of image/jpeg, image/png, image/gif, image/webp, got %q", path, s.MediaType)
	}
	if s.Data == "" {
		return b, false, invalidf("%s.source.data: field required", path)
	}
	b.MediaType, b.Data = s.MediaType, s.Data
	return b, true, nil
}

// decodeDocument accepts a base64 PDF (kept as a document) and a plain-text source
// (turned into a text block); every other source is a 400.
func decodeDocument(w *wireBlock, path string) (ContentBlockParam, bool, *Error) {
	s, e := sourceOf(w, path)
	if e != nil {
		return ContentBlockParam{}, false, e
	}
	switch {
	case s.Type == "base64" && s.MediaType == "application/pdf":
		if s.Data == "" {
			return ContentBlockParam{}, false, invalidf("%s.source.data: field required", path)
		}
		return ContentBlockParam{Type: BlockDocument, MediaType: s.MediaType, Data: s.Data}, true, nil
	case s.Type == "text":
		return ContentBlockParam{Type: BlockText, Text: s.Data}, s.Data != "", nil
	case s.Type == "url":
		return ContentBlockParam{}, false, refuseURL(path, "document")
	}
	what := fmt.Sprintf("source type %q", s.Type)
	if s.Type == "base64" {
		what = fmt.Sprintf("media type %q", s.MediaType)
	}
	return ContentBlockParam{}, false, invalidf("%s.source: document %s is not supported; send a base64 application/pdf or a text source", path, what)
}
