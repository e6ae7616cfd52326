package gateway

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/publish"
	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/schemas"
)

// exchange is one client request as the gateway records it. It builds the request
// event as the request proceeds and publishes it exactly once: right before the last
// bytes of the answer are written (so an answer the client received always has its
// event in the spool), or, for a request that ends otherwise (an error, a client that
// went away, a panic), when the handler returns.
type exchange struct {
	g     *Gateway
	c     *gin.Context
	start time.Time
	ev    schemas.RequestEvent
	log   *slog.Logger

	once      sync.Once
	recorded  bool
	firstByte time.Time
	// written counts response bytes the handler wrote itself (streams); for buffered
	// answers the size is set with the final write.
	written int64
}

// begin opens the exchange for a request.
func (g *Gateway) begin(c *gin.Context, clientType, endpoint string) *exchange {
	now := g.now()
	x := &exchange{g: g, c: c, start: now}
	rid := c.GetString(ctxRequestID)
	x.ev = schemas.RequestEvent{
		Type: schemas.TypeRequest, V: schemas.RequestVersion, TimeMs: now.UnixMilli(),
		Instance: g.cfg.Instance, RequestID: rid, ClientType: clientType,
		ClientIP: c.ClientIP(), UserAgent: truncate(c.Request.UserAgent(), 256),
		Referer: truncate(c.Request.Referer(), 256), Method: c.Request.Method, Endpoint: endpoint,
		RequestBytes: max(c.Request.ContentLength, 0),
	}
	x.log = g.log.With("request_id", rid, "client_type", clientType)
	c.Set(ctxExchange, x)
	return x
}

// exchangeOf returns the request's exchange, if a handler began one.
func exchangeOf(c *gin.Context) *exchange {
	v, ok := c.Get(ctxExchange)
	if !ok {
		return nil
	}
	x, _ := v.(*exchange)
	return x
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// setModel records the model the client asked for and the one sent upstream.
func (x *exchange) setModel(original, mapped string) {
	x.ev.OriginalModel = truncate(original, 128)
	x.ev.Model = truncate(mapped, 128)
}

// markFirstByte records the time to first byte of a stream.
func (x *exchange) markFirstByte() {
	if x.firstByte.IsZero() {
		x.firstByte = x.g.now()
	}
}

// setUpstream copies what the upstream call learned into the event.
func (x *exchange) setUpstream(r *upstream.Response) {
	if r == nil {
		return
	}
	x.ev.Attempts = r.Attempts
	if n := len(r.Attempts); n > 0 {
		last := r.Attempts[n-1]
		x.ev.KeyHash, x.ev.Project = last.KeyHash, last.Project
	}
}

// setUsage records the final usage and makes the counted attempt carry the real input
// tokens, which the processors count against TPM in place of the estimate.
func (x *exchange) setUsage(u *schemas.Usage) {
	if u == nil || x.ev.CacheHit {
		// A cached answer spent no tokens.
		return
	}
	x.ev.Usage = *u
	if n := len(x.ev.Attempts); n > 0 && x.ev.Attempts[n-1].Counted && u.Input() > 0 {
		x.ev.Attempts[n-1].InputTokens = u.Input()
	}
}

// fail records the error the client is about to receive.
func (x *exchange) fail(status int, errType, msg string) {
	x.ev.Status = status
	x.ev.ErrorType = errType
	x.ev.ErrorMessage = truncate(redact(msg), 512)
}

// emit publishes the event once. status and responseBytes describe the answer as it
// will have been sent; later calls do nothing. It reports whether the event is in the
// spool.
func (x *exchange) emit(status int, responseBytes int64) bool {
	x.once.Do(func() {
		now := x.g.now()
		if x.ev.Status == 0 {
			x.ev.Status = status
		}
		x.ev.LatencyMs = now.Sub(x.start).Milliseconds()
		if !x.firstByte.IsZero() {
			x.ev.TTFBMs = x.firstByte.Sub(x.start).Milliseconds()
		}
		x.ev.ResponseBytes = responseBytes
		if x.ev.ErrorType == "" && (x.ev.Status < 200 || x.ev.Status >= 300) {
			x.ev.ErrorType = errorTypeForStatus(x.ev.Status)
		}
		if x.ev.ClientType == "" {
			x.ev.ClientType = schemas.ClientUnknown
		}
		id, err := schemas.NewEventID()
		if err != nil {
			x.log.Error("request event id", "err", err)
			return
		}
		x.ev.EventID = id
		x.g.metrics.observe(&x.ev)
		if err := x.g.pub.Publish(schemas.TopicRequests, &x.ev); err != nil {
			x.log.Error("publish request event", "err", err, "event_id", id)
			return
		}
		x.recorded = true
	})
	return x.recorded
}

// emitOrRefuse publishes the event of a successful buffered answer about to be written.
// With the reject policy an answer whose event could not be recorded (the spool filled
// up while the request ran) is not served: the client gets the 503 of a full spool
// instead, and it returns false.
func (x *exchange) emitOrRefuse(status int, responseBytes int64) bool {
	if x.emit(status, responseBytes) || status >= 300 || x.g.pub.Policy() != publish.PolicyReject {
		return true
	}
	writeSpoolFull(x.c)
	return false
}

// finish is deferred by every handler: it publishes the event of a request that did
// not publish it on its way out, with what the writer actually sent.
func (x *exchange) finish() {
	status := x.c.Writer.Status()
	size := int64(x.c.Writer.Size())
	if size < 0 {
		size = 0
	}
	if x.written > size {
		size = x.written
	}
	if x.c.Request.Context().Err() != nil && x.ev.Status == 0 && !x.c.Writer.Written() {
		// The client left before any answer: nginx's 499, recorded as such.
		x.fail(499, schemas.ErrClientGone, "client closed the request")
	}
	x.emit(status, size)
}

func errorTypeForStatus(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return schemas.ErrRateLimited
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return schemas.ErrAuth
	case status == http.StatusNotFound:
		return schemas.ErrNotFound
	case status == http.StatusGatewayTimeout || status == http.StatusRequestTimeout:
		return schemas.ErrTimeout
	case status == 499:
		return schemas.ErrClientGone
	case status >= 400 && status < 500:
		return schemas.ErrBadRequest
	case status >= 500:
		return schemas.ErrUpstream
	}
	return ""
}

// redact removes anything shaped like a Gemini API key from a message that will be
// stored or shown.
func redact(s string) string { return upstream.RedactKeys(s) }
