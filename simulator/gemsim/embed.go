package gemsim

import (
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// maxBatchEmbed is the most entries one :batchEmbedContents may carry.
const maxBatchEmbed = 100

// embed serves :embedContent; it consumes one request of the embedding model's quota.
func (c *call) embed() {
	var req gemini.EmbedContentRequest
	if !c.decode(&req) {
		return
	}
	vec, errBody := c.embedding(&req, "EmbedContentRequest")
	if errBody != nil {
		c.writeError(errBody)
		return
	}
	if !c.admit(1, contentsTokens([]gemini.Content{req.Content})) || !c.latency() {
		return
	}
	c.writeJSON(http.StatusOK, &gemini.EmbedContentResponse{Embedding: vec})
}

// batchEmbed serves :batchEmbedContents. Each entry must name the URL's model as
// "models/{model}", and each counts as one request against the quota.
func (c *call) batchEmbed() {
	var req gemini.BatchEmbedContentsRequest
	if !c.decode(&req) {
		return
	}
	switch {
	case len(req.Requests) == 0:
		c.writeError(errInvalidArgument("* BatchEmbedContentsRequest.requests: requests is not specified\n"))
		return
	case len(req.Requests) > maxBatchEmbed:
		c.writeError(errInvalidArgument(fmt.Sprintf("* BatchEmbedContentsRequest.requests: at most %d requests can be in one batch\n", maxBatchEmbed)))
		return
	}
	resp := gemini.BatchEmbedContentsResponse{Embeddings: make([]gemini.ContentEmbedding, len(req.Requests))}
	tokens := 0
	for i := range req.Requests {
		e := &req.Requests[i]
		field := fmt.Sprintf("BatchEmbedContentsRequest.requests[%d]", i)
		if !strings.HasPrefix(e.Model, "models/") {
			c.writeError(errInvalidArgument(fmt.Sprintf("* %s.model: unexpected model name format\n", field)))
			return
		}
		if modelID(e.Model) != c.model.id {
			c.writeError(errInvalidArgument(fmt.Sprintf("* %s.model: %s does not match the model of the batch, models/%s\n", field, e.Model, c.model.id)))
			return
		}
		vec, errBody := c.embedding(e, field)
		if errBody != nil {
			c.writeError(errBody)
			return
		}
		resp.Embeddings[i] = vec
		tokens += contentsTokens([]gemini.Content{e.Content})
	}
	if !c.admit(len(req.Requests), tokens) || !c.latency() {
		return
	}
	c.writeJSON(http.StatusOK, &resp)
}

// embedding computes the deterministic vector of one request: the text's hash seeds a
// full-size vector of unit length, and outputDimensionality keeps its prefix, so, as
// with the real gemini-embedding-001, only full-size vectors are normalised.
func (c *call) embedding(req *gemini.EmbedContentRequest, field string) (gemini.ContentEmbedding, *gemini.ErrorBody) {
	full := c.model.embedDim
	dim := full
	if req.OutputDimensionality != nil {
		dim = *req.OutputDimensionality
	}
	if dim < 1 || dim > full {
		return gemini.ContentEmbedding{}, errInvalidArgument(fmt.Sprintf("* %s.output_dimensionality: must be between 1 and %d\n", field, full))
	}
	if len(req.Content.Parts) == 0 {
		return gemini.ContentEmbedding{}, errInvalidArgument(fmt.Sprintf("* %s.content: content is not specified\n", field))
	}
	h := fnv.New64a()
	h.Write([]byte(c.model.id))
	for _, p := range req.Content.Parts {
		h.Write([]byte{0})
		h.Write([]byte(p.Text))
	}
	seed := h.Sum64()
	vals := make([]float64, full)
	var norm float64
	for i := range vals {
		v := float64(splitmix64(seed+uint64(i))>>11)/(1<<53)*2 - 1
		vals[i] = v
		norm += v * v
	}
	norm = math.Sqrt(norm)
	out := make([]float32, dim)
	for i := range out {
		out[i] = float32(vals[i] / norm)
	}
	return gemini.ContentEmbedding{Values: out}, nil
}
