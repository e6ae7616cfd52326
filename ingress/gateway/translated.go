package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/access"
	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// admitRequest is every handler's first step after begin: the client's credentials and
// its request body. It answers the client itself and returns false when either fails.
func (g *Gateway) admitRequest(c *gin.Context) (*access.Principal, []byte, bool) {
	p, ok := g.authenticate(c)
	if !ok {
		return nil, nil, false
	}
	body, ok := g.readBody(c)
	if !ok {
		return nil, nil, false
	}
	return p, body, true
}

// translation is what a translated protocol contributes to a generateContent call: its
// stream translator and the translation of a whole answer.
type translation struct {
	// chunk translates one stream chunk into client bytes.
	chunk func(*gemini.GenerateContentResponse) ([]byte, error)
	// end returns the stream's closing bytes; cause is empty for a clean end.
	end func(cause string) []byte
	// whole translates a non-streaming answer into the client's body.
	whole func(*gemini.GenerateContentResponse) ([]byte, error)
}

// generate sends a translated request as generateContent (or its stream) and answers
// the client in its own protocol.
func (g *Gateway) generate(c *gin.Context, x *exchange, p *access.Principal, model string, greq *gemini.GenerateContentRequest, stream bool, t translation) {
	x.ev.Stream = stream
	gbody, err := json.Marshal(greq)
	if err != nil {
		writeError(c, http.StatusInternalServerError, "encode upstream request")
		return
	}
	resp, ok := g.send(c, &upstream.Call{
		Model: model, Method: methodGenerate, Body: gbody, Stream: stream,
		EstimatedTokens: estimateTokens(gbody), Subset: p.Keys, RequestID: x.ev.RequestID,
	})
	if !ok {
		return
	}
	if resp.Stream != nil {
		g.pumpStream(c, x, resp.Stream, &translatedStream{t: t})
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
	out, err := t.whole(&gr)
	if err != nil {
		writeError(c, http.StatusInternalServerError, "encode response")
		return
	}
	writeRaw(c, http.StatusOK, out)
}

// translatedStream adapts a protocol's stream translation to the pump: each upstream
// event is decoded once, translated, and its usage handed to the accounting.
type translatedStream struct {
	t translation
}

func (s *translatedStream) contentType() string { return "text/event-stream" }
func (s *translatedStream) begin() []byte       { return nil }

func (s *translatedStream) event(raw []byte) ([]byte, *schemas.Usage, error) {
	var gr gemini.GenerateContentResponse
	if err := json.Unmarshal(raw, &gr); err != nil {
		return nil, nil, errMalformedChunk
	}
	out, err := s.t.chunk(&gr)
	if err != nil {
		return nil, nil, err
	}
	var u *schemas.Usage
	if gr.UsageMetadata != nil {
		v := upstream.UsageFrom(gr.UsageMetadata)
		u = &v
	}
	return out, u, nil
}

func (s *translatedStream) end(cause string) []byte { return s.t.end(cause) }
