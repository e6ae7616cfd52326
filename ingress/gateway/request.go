package gateway

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/schemas"
)

// modelPattern is what a model name may look like. Anything else (slashes, dots
// climbing a path, CR/LF smuggled into a header) is refused before it is used.
var modelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$`)

// readBody reads a JSON request body within the configured limit and checks it is
// well-formed. It writes the client's error and returns false when it is not.
func (g *Gateway) readBody(c *gin.Context) ([]byte, bool) {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeError(c, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			return nil, false
		}
	}
	if c.Request.ContentLength > g.cfg.MaxBodyBytes {
		writeError(c, http.StatusRequestEntityTooLarge, "request body exceeds the gateway's limit")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(c, http.StatusRequestEntityTooLarge, "request body exceeds the gateway's limit")
			return nil, false
		}
		// A body that stopped arriving (the server's read timeout) or a client that
		// left: nothing to serve.
		writeError(c, http.StatusBadRequest, "could not read the request body")
		return nil, false
	}
	if x := exchangeOf(c); x != nil {
		x.ev.RequestBytes = int64(len(body))
	}
	if err := checkJSON(body); err != nil {
		writeError(c, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return body, true
}

// resolveModel maps the client's model name to the Gemini model to call, or answers
// 404 (unknown) or 400 (malformed) and returns false.
func (g *Gateway) resolveModel(c *gin.Context, name string) (string, bool) {
	if name == "" {
		writeError(c, http.StatusBadRequest, "model is required")
		return "", false
	}
	if !modelPattern.MatchString(name) {
		writeError(c, http.StatusBadRequest, "model name is malformed")
		return "", false
	}
	mapped, ok := g.models.Resolve(name)
	if !ok {
		if x := exchangeOf(c); x != nil {
			x.setModel(name, name)
		}
		writeError(c, http.StatusNotFound, "model "+name+" does not exist or is not served by this gateway")
		return "", false
	}
	if x := exchangeOf(c); x != nil {
		x.setModel(name, mapped)
	}
	return mapped, true
}

// estimateTokens estimates a request's input tokens from its Gemini body before it is
// sent, for the TPM headroom check: about four bytes per token, which over-estimates
// JSON (keys and punctuation are not tokens) and so errs on the side of not
// over-admitting. The real count replaces it once the answer's usageMetadata arrives.
func estimateTokens(geminiBody []byte) int64 {
	return int64(len(geminiBody)+3) / 4
}

// endpointFor names a native Gemini call in events with the model as a placeholder, so
// the endpoint has a bounded set of values.
func endpointFor(method string) string {
	return "/v1beta/models/{model}:" + method
}

var _ = schemas.ClientGemini
