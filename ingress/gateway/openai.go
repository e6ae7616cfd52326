package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/openai"
	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

var errMalformedChunk = errors.New("upstream sent a malformed stream chunk")

// writeOpenAIError answers with a translator error (already in OpenAI's shape).
func writeOpenAIError(c *gin.Context, err error) {
	var oe *openai.Error
	if !errors.As(err, &oe) {
		writeError(c, http.StatusBadRequest, err.Error())
		return
	}
	if x := exchangeOf(c); x != nil {
		x.fail(oe.Status(), errorTypeForStatus(oe.Status()), oe.Message)
	}
	writeRaw(c, oe.Status(), oe.Body())
}

// writeRaw writes a complete JSON answer after publishing the event.
func writeRaw(c *gin.Context, status int, body []byte) {
	if x := exchangeOf(c); x != nil && !x.emitOrRefuse(status, int64(len(body))) {
		return
	}
	c.Data(status, "application/json", body)
}

// openAIChat serves POST /v1/chat/completions.
func (g *Gateway) openAIChat(c *gin.Context) {
	x := g.begin(c, schemas.ClientOpenAI, "/v1/chat/completions")
	defer x.finish()
	p, body, ok := g.admitRequest(c)
	if !ok {
		return
	}
	req, err := openai.DecodeChatRequest(body)
	if err != nil {
		writeOpenAIError(c, err)
		return
	}
	model, ok := g.resolveModel(c, req.Model)
	if !ok || !g.allowModel(c, p, model) {
		return
	}
	greq, err := req.ToGemini(openai.ToGeminiOptions{MaxN: g.cfg.MaxN})
	if err != nil {
		writeOpenAIError(c, err)
		return
	}
	meta := openai.ResponseMeta{ID: "chatcmpl-" + x.ev.RequestID, Created: x.start.Unix(), Model: req.Model}
	st := openai.NewStreamTranslator(meta, req.IncludeUsage())
	g.generate(c, x, p, model, greq, req.Stream, translation{
		chunk: st.Chunk,
		end: func(cause string) []byte {
			if cause != "" {
				return openai.ErrorEvent(openai.NewError(http.StatusBadGateway, openai.TypeServer, "", "", "The upstream stream was interrupted before it finished."))
			}
			return st.Finish()
		},
		whole: func(gr *gemini.GenerateContentResponse) ([]byte, error) {
			return json.Marshal(openai.FromGemini(gr, meta))
		},
	})
}

// openAIEmbeddings serves POST /v1/embeddings: one input is an embedContent call,
// several are batchEmbedContents calls of at most 100 inputs each.
func (g *Gateway) openAIEmbeddings(c *gin.Context) {
	x := g.begin(c, schemas.ClientOpenAI, "/v1/embeddings")
	defer x.finish()
	p, body, ok := g.admitRequest(c)
	if !ok {
		return
	}
	req, err := openai.DecodeEmbeddingRequest(body)
	if err != nil {
		writeOpenAIError(c, err)
		return
	}
	model, ok := g.resolveModel(c, req.Model)
	if !ok || !g.allowModel(c, p, model) {
		return
	}
	calls := req.ToGeminiEmbed(model)
	var vectors []gemini.ContentEmbedding
	var estimate int64
	var attempts []schemas.Attempt
	run := func(method string, v any, into func([]byte) error) bool {
		b, err := json.Marshal(v)
		if err != nil {
			writeError(c, http.StatusInternalServerError, "encode upstream request")
			return false
		}
		est := estimateTokens(b)
		estimate += est
		resp, ok := g.send(c, &upstream.Call{Model: model, Method: method, Body: b, EstimatedTokens: est, Subset: p.Keys, RequestID: x.ev.RequestID})
		if !ok {
			return false
		}
		attempts = append(attempts, resp.Attempts...)
		resp.Attempts = attempts
		x.setUpstream(resp)
		if resp.Status != http.StatusOK {
			g.writeUpstreamFailure(c, resp, isPassthrough(p))
			return false
		}
		if err := into(resp.Body); err != nil {
			writeError(c, http.StatusBadGateway, "the Gemini API returned a malformed embedding response")
			return false
		}
		return true
	}
	if calls.Single != nil {
		if !run(methodEmbed, calls.Single, func(b []byte) error {
			var r gemini.EmbedContentResponse
			if err := json.Unmarshal(b, &r); err != nil {
				return err
			}
			vectors = append(vectors, r.Embedding)
			return nil
		}) {
			return
		}
	}
	for i := range calls.Batches {
		if !run(methodBatchEmbed, &calls.Batches[i], func(b []byte) error {
			var r gemini.BatchEmbedContentsResponse
			if err := json.Unmarshal(b, &r); err != nil {
				return err
			}
			if len(r.Embeddings) != len(calls.Batches[i].Requests) {
				return fmt.Errorf("%d embeddings for %d inputs", len(r.Embeddings), len(calls.Batches[i].Requests))
			}
			vectors = append(vectors, r.Embeddings...)
			return nil
		}) {
			return
		}
	}
	// Gemini's embed answers carry no usage: the estimate is what is recorded.
	x.setUsage(&schemas.Usage{Prompt: estimate, Total: estimate})
	out, err := openai.FromGeminiEmbed(req, vectors, estimate)
	if err != nil {
		writeOpenAIError(c, err)
		return
	}
	writeRaw(c, http.StatusOK, out)
}
