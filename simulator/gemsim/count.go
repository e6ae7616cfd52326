package gemsim

import (
	"net/http"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// countTokens serves :countTokens with the same counting as promptTokenCount, so a
// client can predict usage. It consumes no generate quota (the real API gives it a
// separate, large limit that the simulator does not enforce).
func (c *call) countTokens() {
	var req gemini.CountTokensRequest
	if !c.decode(&req) {
		return
	}
	var resp gemini.CountTokensResponse
	switch {
	case len(req.Contents) > 0 && req.GenerateContentRequest != nil:
		c.writeError(errInvalidArgument("* CountTokensRequest: contents and generate_content_request must not both be set.\n"))
		return
	case req.GenerateContentRequest != nil:
		g := req.GenerateContentRequest
		total := promptTokens(g)
		resp = gemini.CountTokensResponse{TotalTokens: int64(total), CachedContentTokenCount: int64(cachedTokens(g, total))}
	default:
		resp.TotalTokens = int64(contentsTokens(req.Contents))
	}
	if !c.latency() {
		return
	}
	c.writeJSON(http.StatusOK, &resp)
}
