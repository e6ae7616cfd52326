package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/schemas"
)

// Gemini methods the native surface forwards.
const (
	methodGenerate       = "generateContent"
	methodStream         = "streamGenerateContent"
	methodCountTokens    = "countTokens"
	methodEmbed          = "embedContent"
	methodBatchEmbed     = "batchEmbedContents"
	geminiStreamSSEValue = "sse"
)

// geminiCall serves POST /v1beta/models/{model}:{method}. The body goes upstream as the
// client sent it; only the key is the gateway's.
func (g *Gateway) geminiCall(c *gin.Context) {
	param := c.Param("model")
	i := strings.LastIndexByte(param, ':')
	if i < 0 {
		writeError(c, http.StatusNotFound, "expected /v1beta/models/{model}:{method}")
		return
	}
	name, method := param[:i], param[i+1:]
	switch method {
	case methodGenerate, methodStream, methodCountTokens, methodEmbed, methodBatchEmbed:
	default:
		writeError(c, http.StatusNotFound, "method "+truncate(method, 64)+" is not supported by this gateway")
		return
	}
	x := g.begin(c, schemas.ClientGemini, endpointFor(method))
	defer x.finish()
	p, body, ok := g.admitRequest(c)
	if !ok {
		return
	}
	model, ok := g.resolveModel(c, name)
	if !ok || !g.allowModel(c, p, model) || !g.checkNative(c, method, body) {
		return
	}
	stream := method == methodStream
	x.ev.Stream = stream
	call := &upstream.Call{
		Model: model, Method: method, Body: body, Stream: stream,
		EstimatedTokens: estimateTokens(body), Subset: p.Keys, RequestID: x.ev.RequestID,
	}
	if method == methodCountTokens {
		// countTokens has its own quota upstream and never spends generate quota.
		call.EstimatedTokens = 0
	}
	resp, ok := g.send(c, call)
	if !ok {
		return
	}
	if resp.Stream != nil {
		g.pumpStream(c, x, resp.Stream, &nativeStream{sse: c.Query("alt") == geminiStreamSSEValue})
		return
	}
	if resp.Status != http.StatusOK {
		g.writeUpstreamFailure(c, resp, isPassthrough(p))
		return
	}
	switch method {
	case methodEmbed, methodBatchEmbed:
		// Gemini's embed answers carry no usage: the estimate is what is recorded, as
		// for OpenAI embeddings.
		x.setUsage(&schemas.Usage{Prompt: call.EstimatedTokens, Total: call.EstimatedTokens})
	default:
		x.setUsage(resp.Usage)
	}
	if !x.emitOrRefuse(http.StatusOK, int64(len(resp.Body))) {
		return
	}
	c.Data(http.StatusOK, "application/json", resp.Body)
}

// nativeGenerate is the part of a native generateContent body the gateway bounds
// itself. Gemini's JSON accepts both camelCase and snake_case field names.
type nativeGenerate struct {
	GenerationConfig      *nativeGenerationConfig `json:"generationConfig"`
	GenerationConfigSnake *nativeGenerationConfig `json:"generation_config"`
}

type nativeGenerationConfig struct {
	CandidateCount      *int `json:"candidateCount"`
	CandidateCountSnake *int `json:"candidate_count"`
}

// checkNative refuses, before anything goes upstream, a native generate call asking
// for more candidates than the gateway serves (Config.MaxN, the cap of OpenAI's n): a
// huge candidateCount would multiply the upstream's work and the quota it spends.
func (g *Gateway) checkNative(c *gin.Context, method string, body []byte) bool {
	if method != methodGenerate && method != methodStream {
		return true
	}
	var req nativeGenerate
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(c, http.StatusBadRequest, "request body is not a generateContent request: "+truncate(err.Error(), 200))
		return false
	}
	for _, gc := range []*nativeGenerationConfig{req.GenerationConfig, req.GenerationConfigSnake} {
		if gc == nil {
			continue
		}
		for _, n := range []*int{gc.CandidateCount, gc.CandidateCountSnake} {
			if n != nil && (*n < 1 || *n > g.cfg.MaxN) {
				writeError(c, http.StatusBadRequest, fmt.Sprintf("generationConfig.candidateCount must be between 1 and %d", g.cfg.MaxN))
				return false
			}
		}
	}
	return true
}

// send makes the upstream call and records its attempts. It answers the client and
// returns false when no attempt could be made.
func (g *Gateway) send(c *gin.Context, call *upstream.Call) (*upstream.Response, bool) {
	x := exchangeOf(c)
	useCache := g.respCache != nil && cacheable(call)
	if useCache {
		if resp, ok := g.respCache.get(call); ok {
			x.ev.CacheHit = true
			return resp, true
		}
	}
	resp, err := g.up.Do(c.Request.Context(), call)
	if err != nil {
		g.writeSelectError(c, err)
		return nil, false
	}
	x.setUpstream(resp)
	if useCache {
		g.respCache.put(call, resp)
	}
	return resp, true
}

// nativeStream relays Gemini's own events unchanged: as SSE when the client asked for
// alt=sse, else as the JSON array Gemini streams by default.
type nativeStream struct {
	sse bool
	n   int
}

func (s *nativeStream) contentType() string {
	if s.sse {
		return "text/event-stream"
	}
	return "application/json"
}

func (s *nativeStream) begin() []byte { return nil }

func (s *nativeStream) event(raw []byte) ([]byte, *schemas.Usage, error) {
	pr, ok := upstream.Probe(raw)
	if !ok {
		return nil, nil, errMalformedChunk
	}
	var out []byte
	if s.sse {
		out = make([]byte, 0, len(raw)+10)
		out = append(out, "data: "...)
		out = append(out, raw...)
		out = append(out, "\r\n\r\n"...)
	} else {
		out = make([]byte, 0, len(raw)+3)
		if s.n == 0 {
			out = append(out, '[')
		} else {
			out = append(out, ",\r\n"...)
		}
		out = append(out, raw...)
	}
	s.n++
	return out, pr.Usage, nil
}

func (s *nativeStream) end(string) []byte {
	if s.sse {
		return nil
	}
	if s.n == 0 {
		return []byte("[]")
	}
	return []byte("]")
}
