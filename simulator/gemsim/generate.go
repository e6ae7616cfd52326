package gemsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// maxBodyBytes is the request size limit of the real API (20 MiB).
const maxBodyBytes = 20 << 20

// generate serves :generateContent and :streamGenerateContent: decode, validate,
// compose the answer, check and consume the quota, wait the latency, respond.
func (c *call) generate(stream bool) {
	var req gemini.GenerateContentRequest
	if !c.decode(&req) {
		return
	}
	if errBody := validateGenerate(&req); errBody != nil {
		c.writeError(errBody)
		return
	}
	prompt := promptTokens(&req)
	if limit := c.model.info.InputTokenLimit; limit > 0 && int64(prompt) > limit {
		c.writeError(errInvalidArgument(fmt.Sprintf("The input token count (%d) exceeds the maximum number of tokens allowed (%d).", prompt, limit)))
		return
	}
	r, errBody := c.compose(&req, prompt)
	if errBody != nil {
		c.writeError(errBody)
		return
	}
	var opts streamOpts
	if stream {
		if opts, errBody = c.streamOptions(); errBody != nil {
			c.writeError(errBody)
			return
		}
	}
	if !c.admit(1, prompt) || !c.latency() {
		return
	}
	if stream {
		c.stream(r, opts)
		return
	}
	c.writeJSON(http.StatusOK, r.response(c.model.id, c.s.ids.responseID()))
}

// validateGenerate rejects what the real API rejects before generating.
func validateGenerate(req *gemini.GenerateContentRequest) *gemini.ErrorBody {
	if len(req.Contents) == 0 {
		return errInvalidArgument("* GenerateContentRequest.contents: contents is not specified\n")
	}
	for i, content := range req.Contents {
		switch content.Role {
		case "", "user", "model", "function":
		default:
			return errInvalidArgument("Please use a valid role: user, model.")
		}
		if len(content.Parts) == 0 {
			return errInvalidArgument(fmt.Sprintf("* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty.\n", i))
		}
	}
	return nil
}

// readBody reads the whole request body before anything else happens, so that
// net/http watches the connection and cancels the request context when the client
// leaves during a latency, delay fault or stream interval. On failure it writes the 400.
func (c *call) readBody() bool {
	c.body = c.s.getBuf()
	if _, err := c.body.ReadFrom(http.MaxBytesReader(c.w, c.r.Body, maxBodyBytes)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			c.writeError(errInvalidArgument(fmt.Sprintf("Request payload size exceeds the limit: %d bytes.", maxBodyBytes)))
			return false
		}
		c.writeError(errInvalidArgument("Invalid JSON payload received. Cannot read the body: " + err.Error()))
		return false
	}
	return true
}

// decode parses the body into v; on failure it writes the 400 and returns false.
func (c *call) decode(v any) bool {
	if err := json.Unmarshal(c.body.Bytes(), v); err != nil {
		c.writeError(errInvalidArgument("Invalid JSON payload received. " + err.Error()))
		return false
	}
	return true
}
