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
	p, body, ok := g.admitRequest(c)
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
	greq, err := req.ToGemini(anthropic.ToGeminiOptions{Model: model, OutputTokenLimit: g.models.OutputLimit(model)})
	if err != nil {
		writeAnthropicError(c, err)
		return
	}
	meta := anthropic.ResponseMeta{ID: "msg_" + x.ev.RequestID, Model: req.Model}
	st := anthropic.NewStreamTranslator(meta)
	pinged := false
	g.generate(c, x, p, model, greq, req.Stream, translation{
		chunk: func(gr *gemini.GenerateContentResponse) ([]byte, error) {
			out, err := st.Chunk(gr)
			if err != nil || pinged || len(out) == 0 {
				return out, err
			}
			pinged = true
			return withPing(out), nil
		},
		end: func(cause string) []byte {
			if cause != "" {
				return anthropic.ErrorEvent(anthropic.NewError(anthropic.OverloadedError, "The upstream stream was interrupted before it finished."))
			}
			return st.Finish()
		},
		whole: func(gr *gemini.GenerateContentResponse) ([]byte, error) {
			return json.Marshal(anthropic.FromGemini(gr, meta))
		},
	})
}

// withPing puts one ping right after message_start, which opens the first output, as
// Anthropic's own streams do.
func withPing(out []byte) []byte {
	i := bytes.Index(out, []byte("\n\n"))
	if i < 0 {
		return out
	}
	ping := anthropic.Ping()
	b := make([]byte, 0, len(out)+len(ping))
	b = append(b, out[:i+2]...)
	b = append(b, ping...)
	return append(b, out[i+2:]...)
}

// anthropicCountTokens serves POST /v1/messages/count_tokens through Gemini's
// countTokens, which spends no generation quota.
func (g *Gateway) anthropicCountTokens(c *gin.Context) {
	x := g.begin(c, schemas.ClientClaude, "/v1/messages/count_tokens")
	defer x.finish()
	p, body, ok := g.admitRequest(c)
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
