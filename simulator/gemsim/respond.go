package gemsim

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

const (
	contentTypeJSON = "application/json; charset=UTF-8"
	contentTypeSSE  = "text/event-stream"
	// malformedBody is what a malformed_json fault sends: the start of a real answer.
	malformedBody = `{"candidates": [{"content": {"parts": [{"text": "Simulated answer, cut sh`
)

// record counts a response for the call's key; calls with an unknown key are not counted.
func (c *call) record(code int) {
	if c.key != nil {
		c.key.record(code)
	}
}

// writeJSON encodes v as the response body.
func (c *call) writeJSON(code int, v any) {
	buf := c.s.getBuf()
	defer c.s.putBuf(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		c.s.log.Error("encode response", "method", c.method, "err", err)
		c.writeError(rpcError(http.StatusInternalServerError, msgInternal))
		return
	}
	c.writeRaw(code, buf.Bytes())
}

// writeRaw sends a complete JSON body, or half of it when a cut is pending.
func (c *call) writeRaw(code int, body []byte) {
	h := c.w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(code)
	c.record(code)
	if c.cutAfter >= 0 && code == http.StatusOK {
		c.write(body[:len(body)/2])
		c.cut()
		return
	}
	c.write(body)
}

// write sends bytes; a failure means the client left, and there is no one to tell.
func (c *call) write(b []byte) {
	if _, err := c.w.Write(b); err != nil {
		c.s.log.Debug("write response", "method", c.method, "err", err)
	}
}

// writeError sends a google.rpc error body with its own status code.
func (c *call) writeError(body *gemini.ErrorBody) {
	c.writeJSON(body.Error.Code, body)
}

// writeErrorIn200 sends an error body with status 200, as a broken proxy might; a stream
// gets it as its only event.
func (c *call) writeErrorIn200(body *gemini.ErrorBody) {
	if c.method != methodStream {
		c.writeJSON(http.StatusOK, body)
		return
	}
	sw := c.newStreamWriter()
	sw.begin()
	sw.chunk(body)
	sw.end()
}

// writeMalformed sends 200 with a body that is not JSON (for a stream, one broken event).
func (c *call) writeMalformed() {
	if c.method == methodStream && c.query.Get("alt") == "sse" {
		c.w.Header().Set("Content-Type", contentTypeSSE)
		c.w.WriteHeader(http.StatusOK)
		c.record(http.StatusOK)
		c.write([]byte("data: " + malformedBody + "\r\n\r\n"))
		return
	}
	c.writeRaw(http.StatusOK, []byte(malformedBody))
}

// flush pushes buffered bytes to the client.
func (c *call) flush() {
	if err := http.NewResponseController(c.w).Flush(); err != nil {
		c.s.log.Debug("flush response", "method", c.method, "err", err)
	}
}

// cut flushes what was written and closes the connection without finishing the body,
// so the client sees an unexpected EOF after a 200.
func (c *call) cut() {
	c.flush()
	c.closeConn(false)
}

// resetConn closes the connection before any byte of the response, with a TCP RST.
func (c *call) resetConn() {
	c.record(0)
	c.closeConn(true)
}

// closeConn hijacks and closes the connection. Where hijacking is impossible (HTTP/2,
// a ResponseRecorder) the handler just returns, ending the response early but cleanly.
func (c *call) closeConn(rst bool) {
	conn, _, err := http.NewResponseController(c.w).Hijack()
	if err != nil {
		c.s.log.Debug("hijack connection to cut it", "err", err)
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok && rst {
		// Linger 0 makes Close send an RST: "connection reset by peer" for the client.
		if err := tcp.SetLinger(0); err != nil {
			c.s.log.Debug("set linger 0", "err", err)
		}
	}
	if err := conn.Close(); err != nil {
		c.s.log.Debug("close hijacked connection", "err", err)
	}
}
