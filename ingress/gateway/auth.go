package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/access"
	"github.com/geminicodeapi/gca/schemas"
)

// Authenticator checks client credentials and per-token admission; *access.Authenticator
// is the one main wires.
type Authenticator interface {
	Authenticate(r *http.Request, clientIP string) (*access.Principal, error)
	Admit(ctx context.Context, p *access.Principal, model string) error
}

// authenticate identifies the client, or answers 401/403/429 in its protocol's shape.
func (g *Gateway) authenticate(c *gin.Context) (*access.Principal, bool) {
	p, err := g.auth.Authenticate(c.Request, c.ClientIP())
	if err != nil {
		g.writeAccessError(c, err)
		return nil, false
	}
	if x := exchangeOf(c); x != nil {
		x.ev.TokenHash = p.TokenHash
	}
	return p, true
}

// allowModel applies the token's allowed models and its own request limits.
func (g *Gateway) allowModel(c *gin.Context, p *access.Principal, model string) bool {
	if err := g.auth.Admit(c.Request.Context(), p, model); err != nil {
		g.writeAccessError(c, err)
		return false
	}
	return true
}

func (g *Gateway) writeAccessError(c *gin.Context, err error) {
	var ae *access.Error
	if !errors.As(err, &ae) {
		writeError(c, http.StatusInternalServerError, "authentication failed")
		return
	}
	var wait time.Duration
	if !ae.RetryAt.IsZero() {
		wait = ae.RetryAt.Sub(g.now())
	}
	if x := exchangeOf(c); x != nil {
		x.fail(ae.Status, errorTypeForStatus(ae.Status), ae.Message)
	}
	writeErrorRetry(c, ae.Status, ae.Message, wait)
}

func isPassthrough(p *access.Principal) bool { return p.Mode == access.ModePassthrough }

// writeSelectError answers when not a single upstream attempt could be made.
func (g *Gateway) writeSelectError(c *gin.Context, err error) {
	if exh := asExhausted(err); exh != nil {
		g.writeExhausted(c, exh)
		return
	}
	if c.Request.Context().Err() != nil {
		if x := exchangeOf(c); x != nil {
			x.fail(499, schemas.ErrClientGone, "client closed the request")
		}
		return
	}
	writeError(c, http.StatusServiceUnavailable, "no upstream attempt possible: "+err.Error())
}
