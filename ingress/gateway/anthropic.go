package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/anthropic"
	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// writeAnthropicError answers with a translator error (already in Anthropic's shape).
func writeAnthropicError(c *gin.Context, err error) {
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		writeError(c, http.StatusBadRequest, err.Error())
		return
	}
	ae.RequestID = c.GetString(ctxRequestID)
	if x := exchangeOf(c); x != nil {
		x.fail(ae.Status(), errorTypeForStatus(ae.Status()), ae.Message)
	}
	writeRaw(c, ae.Status(), ae.Body())
}

// anthropicMessages serves POST /v1/messages.
func (g *Gateway) anthropicMessages(c *gin.Context) {
	x := g.begin(c, schemas.ClientClaude, "/v1/messages")
	defer x.finish()
	p, ok := g.authenticate(c)
	if !ok {
		return
	}
	body, ok := g.readBody(c)
	if !ok {
		return
	}
	req, err := anthropic.DecodeMessagesRequest(body)
	if err != nil {
		writeAnthropicError(c, err)
		return
	}
	model, ok := g.resolveModel(c, req.Model)
	if !ok || !g.allowModel(c, p, model) {
		return
	}
	x.ev.Stream = req.Stream
	greq, err := req.ToGemini(anthropic.ToGeminiOptions{Model: model, OutputTokenLimit: g.models.OutputLimit(model)})
	if err != nil {
		writeAnthropicError(c, err)
		return
	}
	gbody, err := json.Marshal(greq)
	if err != nil {
		writeError(c, http.StatusInternalServerError, "encode upstream request")
		return
	}
	resp, ok := g.send(c, &upstream.Call{
		Model: model, Method: methodGenerate, Body: gbody, Stream: req.Stream,
		EstimatedTokens: estimateTokens(gbody), Subset: p.Keys, RequestID: x.ev.RequestID,
	})
	if !ok {
		return
	}
	meta := anthropic.ResponseMeta{ID: "msg_" + x.ev.RequestID, Model: req.Model}
	if resp.Stream != nil {
		g.pumpStream(c, x, resp.Stream, &anthropicStream{t: anthropic.NewStreamTranslator(meta)})
		return
	}
	if resp.Status != http.StatusOK {
		g.writeUpstreamFailure(c, resp, isPassthrough(p))
		return
	}
	var gr gemini.GenerateContentResponse
	if err := json.Unmarshal(resp.Body, &gr); err != nil {
		writeError(c, http.StatusBadGateway, "the Gemini API returned a malformed response")
		return
	}
	if gr.UsageMetadata != nil {
		u := upstream.UsageFrom(gr.UsageMetadata)
		x.setUsage(&u)
	}
	out, err := json.Marshal(anthropic.FromGemini(&gr, meta))
	if err != nil {
		writeError(c, http.StatusInternalServerError, "encode response")
		return
	}
	writeRaw(c, http.StatusOK, out)
}

// anthropicStream adapts the Anthropic stream translator to the pump. message_start
// goes out with the first Gemini chunk (so it carries the prompt's token count),
// followed by one ping, as Anthropic's own streams do.
type anthropicStream struct {
	t      *anthropic.StreamTranslator
	pinged bool
}

func (s *anthropicStream) contentType() string { return "text/event-stream" }
func (s *anthropicStream) begin() []byte       { return nil }

func (s *anthropicStream) event(raw []byte) ([]byte, *schemas.Usage, error) {
	var gr gemini.GenerateContentResponse
	if err := json.Unmarshal(raw, &gr); err != nil {
		return nil, nil, errMalformedChunk
	}
	out, err := s.t.Chunk(&gr)
	if err != nil {
		return nil, nil, err
	}
	if !s.pinged && len(out) > 0 {
		// The first output opens with message_start; the ping goes right after it.
		s.pinged = true
		if i := bytes.Index(out, []byte("\n\n")); i >= 0 {
			ping := anthropic.Ping()
			withPing := make([]byte, 0, len(out)+len(ping))
			withPing = append(withPing, out[:i+2]...)
			withPing = append(withPing, ping...)
			out = append(withPing, out[i+2:]...)
		}
	}
	var u *schemas.Usage
	if gr.UsageMetadata != nil {
		v := upstream.UsageFrom(gr.UsageMetadata)
		u = &v
	}
	return out, u, nil
}

func (s *anthropicStream) end(cause string) []byte {
	if cause != "" {
		return anthropic.ErrorEvent(anthropic.NewError(anthropic.OverloadedError, "The upstream stream was interrupted before it finished."))
	}
	return s.t.Finish()
}

// anthropicCountTokens serves POST /v1/messages/count_tokens through Gemini's
// countTokens, which spends no generation quota.
func (g *Gateway) anthropicCountTokens(c *gin.Context) {
	x := g.begin(c, schemas.ClientClaude, "/v1/messages/count_tokens")
	defer x.finish()
	p, ok := g.authenticate(c)
	if !ok {
		return
	}
	body, ok := g.readBody(c)
	if !ok {
		return
	}
	req, err := anthropic.DecodeCountTokensRequest(body)
	if err != nil {
		writeAnthropicError(c, err)
		return
	}
	model, ok := g.resolveModel(c, req.Model)
	if !ok || !g.allowModel(c, p, model) {
		return
	}
	creq, err := req.ToGemini(anthropic.ToGeminiOptions{Model: model})
	if err != nil {
		writeAnthropicError(c, err)
		return
	}
	creq.GenerateContentRequest.Model = "models/" + model
	gbody, err := json.Marshal(creq)
	if err != nil {
		writeError(c, http.StatusInternalServerError, "encode upstream request")
		return
	}
	resp, ok := g.send(c, &upstream.Call{Model: model, Method: methodCountTokens, Body: gbody, Subset: p.Keys, RequestID: x.ev.RequestID})
	if !ok {
		return
	}
	if resp.Status != http.StatusOK {
		g.writeUpstreamFailure(c, resp, isPassthrough(p))
		return
	}
	var cr gemini.CountTokensResponse
	if err := json.Unmarshal(resp.Body, &cr); err != nil {
		writeError(c, http.StatusBadGateway, "the Gemini API returned a malformed countTokens response")
		return
	}
	writeRaw(c, http.StatusOK, anthropic.CountTokensResponse(cr.TotalTokens))
}
