package gateway

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/openai"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

// geminiModels serves GET /v1beta/models.
func (g *Gateway) geminiModels(c *gin.Context) {
	x := g.begin(c, schemas.ClientGemini, "/v1beta/models")
	defer x.finish()
	if _, ok := g.authenticate(c); !ok {
		return
	}
	b, _ := json.Marshal(gemini.ListModelsResponse{Models: g.models.Models(c.Request.Context())})
	writeRaw(c, http.StatusOK, b)
}

// geminiModel serves GET /v1beta/models/{model}.
func (g *Gateway) geminiModel(c *gin.Context) {
	x := g.begin(c, schemas.ClientGemini, "/v1beta/models/{model}")
	defer x.finish()
	if _, ok := g.authenticate(c); !ok {
		return
	}
	name := c.Param("model")
	if !modelPattern.MatchString(name) {
		writeError(c, http.StatusBadRequest, "model name is malformed")
		return
	}
	md, ok := g.models.find(name)
	if !ok {
		writeError(c, http.StatusNotFound, "model "+name+" not found")
		return
	}
	b, _ := json.Marshal(md)
	writeRaw(c, http.StatusOK, b)
}

// openAIModels serves GET /v1/models: the Gemini models plus the configured aliases.
func (g *Gateway) openAIModels(c *gin.Context) {
	x := g.begin(c, schemas.ClientOpenAI, "/v1/models")
	defer x.finish()
	if _, ok := g.authenticate(c); !ok {
		return
	}
	writeRaw(c, http.StatusOK, openai.ModelList(g.models.Models(c.Request.Context()), g.models.Aliases(), x.start.Unix()))
}

// openAIModel serves GET /v1/models/{model}.
func (g *Gateway) openAIModel(c *gin.Context) {
	x := g.begin(c, schemas.ClientOpenAI, "/v1/models/{model}")
	defer x.finish()
	if _, ok := g.authenticate(c); !ok {
		return
	}
	name := c.Param("model")
	if !modelPattern.MatchString(name) {
		writeError(c, http.StatusBadRequest, "model name is malformed")
		return
	}
	owner := "google"
	if _, alias := g.models.Aliases()[name]; alias {
		owner = "gemini-code-api"
	} else if _, ok := g.models.find(strings.TrimPrefix(name, "models/")); !ok {
		writeError(c, http.StatusNotFound, "The model '"+name+"' does not exist")
		return
	}
	writeRaw(c, http.StatusOK, openai.ModelObject(name, owner, x.start.Unix()))
}
