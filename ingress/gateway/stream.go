package gateway

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/schemas"
)

// streamWriter turns upstream stream events into the client protocol's bytes.
type streamWriter interface {
	// contentType is the response's Content-Type.
	contentType() string
	// begin returns bytes to send before the first event (Anthropic's message_start
	// waits for the first chunk instead, so it may return nil).
	begin() []byte
	// event translates one upstream event. usage is the event's usageMetadata, if any.
	event(raw []byte) (out []byte, usage *schemas.Usage, err error)
	// end returns the closing bytes; cause is empty for a clean end, else the
	// interruption (schemas.InterruptedUpstream).
	end(cause string) []byte
}

// pumpStream relays a stream to the client, flushing every event as it arrives, and
// records the request: usage from the last event that carried it (never a sum), time
// to first byte, and an interruption by either side.
func (g *Gateway) pumpStream(c *gin.Context, x *exchange, s *upstream.Stream, w streamWriter) {
	defer s.Close()
	x.ev.Stream = true
	h := c.Writer.Header()
	h.Set("Content-Type", w.contentType())
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)

	var usage *schemas.Usage
	cause := ""
	write := func(b []byte) bool {
		if len(b) == 0 {
			return true
		}
		n, err := c.Writer.Write(b)
		x.written += int64(n)
		if err != nil {
			cause = schemas.InterruptedClient
			return false
		}
		c.Writer.Flush()
		x.markFirstByte()
		return true
	}
	if !write(w.begin()) {
		g.endStream(x, usage, cause, nil)
		return
	}
	for {
		raw, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cause = schemas.InterruptedUpstream
			if c.Request.Context().Err() != nil {
				cause = schemas.InterruptedClient
			}
			break
		}
		out, u, err := w.event(raw)
		if u != nil {
			usage = u
		}
		if err != nil {
			// A chunk that is not valid JSON: the upstream broke the stream.
			cause = schemas.InterruptedUpstream
			break
		}
		if !write(out) {
			break
		}
	}
	if cause == schemas.InterruptedClient {
		g.endStream(x, usage, cause, nil)
		return
	}
	tail := w.end(cause)
	g.endStream(x, usage, cause, tail)
	write(tail)
}

// endStream records the stream's outcome and publishes the event before the closing
// bytes go out, so a client that saw the end of its stream has its event spooled.
func (g *Gateway) endStream(x *exchange, usage *schemas.Usage, cause string, tail []byte) {
	x.setUsage(usage)
	if cause != "" {
		x.ev.Interrupted = cause
		if cause == schemas.InterruptedUpstream {
			x.ev.ErrorType = schemas.ErrUpstream
			x.ev.ErrorMessage = "upstream stream interrupted"
		} else {
			x.ev.ErrorType = schemas.ErrClientGone
			x.ev.ErrorMessage = "client disconnected mid-stream"
		}
	}
	x.emit(http.StatusOK, x.written+int64(len(tail)))
}
