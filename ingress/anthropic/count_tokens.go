package anthropic

import (
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// CountTokensRequest is a validated POST /v1/messages/count_tokens body: a messages
// body without max_tokens and stream (both ignored if sent).
type CountTokensRequest struct {
	MessagesRequest
}

// DecodeCountTokensRequest decodes and validates a count_tokens body with the same rules
// as DecodeMessagesRequest, except that max_tokens is not required.
func DecodeCountTokensRequest(body []byte) (*CountTokensRequest, error) {
	r, e := decodeRequest(body, false)
	if e != nil {
		return nil, e
	}
	return &CountTokensRequest{MessagesRequest: *r}, nil
}

// ToGemini builds a :countTokens body around a whole generateContentRequest, so that the
// system instruction and the tool declarations are counted too. Generation settings do
// not change the count and are left out.
//
// Gemini requires generateContentRequest.model ("models/{model}") inside a countTokens
// body; gemini.GenerateContentRequest has no such field yet, so the caller must add it
// until schemas/gemini does.
func (r *CountTokensRequest) ToGemini(opts ToGeminiOptions) (*gemini.CountTokensRequest, error) {
	g, e := r.toGemini(opts)
	if e != nil {
		return nil, e
	}
	g.GenerationConfig = nil
	return &gemini.CountTokensRequest{GenerateContentRequest: g}, nil
}

// CountTokensResponse is the count_tokens answer: {"input_tokens": total}.
func CountTokensResponse(total int64) []byte {
	b := make([]byte, 0, 32)
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, max(total, 0))
	return append(b, '}')
}
