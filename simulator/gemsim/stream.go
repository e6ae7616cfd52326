package gemsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Per-request overrides of the stream shape, for tests and benchmarks.
const (
	headerChunks        = "x-sim-chunks"
	headerChunkInterval = "x-sim-chunk-interval-ms"
)

// streamOpts is the shape of one stream.
type streamOpts struct {
	chunks   int
	interval time.Duration
}

// streamOptions reads the config and the x-sim-* header overrides.
func (c *call) streamOptions() (streamOpts, *gemini.ErrorBody) {
	o := streamOpts{chunks: c.s.cfg.StreamChunks, interval: time.Duration(c.s.cfg.ChunkInterval)}
	if v := c.r.Header.Get(headerChunks); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxStreamChunks {
			return o, errInvalidArgument(headerChunks + ": want an integer from 1 to " + strconv.Itoa(maxStreamChunks))
		}
		o.chunks = n
	}
	if v := c.r.Header.Get(headerChunkInterval); v != "" {
		ms, err := strconv.ParseFloat(v, 64)
		if err != nil || ms < 0 {
			return o, errInvalidArgument(headerChunkInterval + ": want a non-negative number of milliseconds")
		}
		o.interval = time.Duration(ms * float64(time.Millisecond))
	}
	return o, nil
}

// stream sends the reply as chunks: text split into opts.chunks pieces, each chunk with
// usageMetadata whose candidatesTokenCount is cumulative (as the real API reports it, so
// a client must take the last chunk, never the sum); the last chunk carries finishReason
// and the final usage. A function call arrives whole in one chunk. A pending cut closes
// the connection after cutAfter chunks.
func (c *call) stream(r *reply, opts streamOpts) {
	k := opts.chunks
	pieces := make([][]string, len(r.cands))
	for _, cand := range r.cands {
		if cand.call != nil {
			k = 1
			continue
		}
		k = min(k, max(1, utf8.RuneCountInString(cand.text)))
	}
	for i, cand := range r.cands {
		pieces[i] = splitRunes(cand.text, k)
	}
	responseID := c.s.ids.responseID()
	sw := c.newStreamWriter()
	sw.begin()
	sent := make([]int, len(r.cands))
	for n := 0; n < k; n++ {
		if n > 0 && !c.sleep(opts.interval) {
			return
		}
		if c.cutAfter == n {
			c.cut()
			return
		}
		last := n == k-1
		chunk := &gemini.GenerateContentResponse{
			Candidates:   make([]gemini.Candidate, len(r.cands)),
			ModelVersion: c.model.id,
			ResponseID:   responseID,
		}
		so := 0
		for i := range r.cands {
			sent[i] += len(pieces[i][n])
			cand := gemini.Candidate{
				Content: gemini.Content{Role: "model", Parts: r.parts(i, pieces[i][n], n == 0)},
				Index:   i,
			}
			if last {
				cand.FinishReason = r.cands[i].finish
			}
			chunk.Candidates[i] = cand
			if r.cands[i].call != nil {
				so += r.cands[i].tokens
			} else {
				so += CountTokens(r.cands[i].text[:sent[i]])
			}
		}
		chunk.UsageMetadata = r.usage(so)
		if !sw.chunk(chunk) {
			return
		}
	}
	if c.cutAfter >= 0 {
		c.cut()
		return
	}
	sw.end()
}

// splitRunes splits s into k pieces of about equal rune counts; k must not exceed the
// rune count unless s is empty, which gives k empty pieces.
func splitRunes(s string, k int) []string {
	out := make([]string, k)
	total := utf8.RuneCountInString(s)
	start, runes, piece := 0, 0, 0
	next := total / k
	for pos := range s {
		for piece < k-1 && runes == next {
			out[piece] = s[start:pos]
			start = pos
			piece++
			next = total * (piece + 1) / k
		}
		runes++
	}
	out[piece] = s[start:]
	return out
}

// streamWriter writes stream events: SSE "data: <json>\r\n\r\n" with ?alt=sse, else
// the elements of a JSON array "[{...},\r\n{...}]" as the real API streams it.
type streamWriter struct {
	c   *call
	sse bool
	n   int
	buf *bytes.Buffer
	enc *json.Encoder
}

// newStreamWriter prepares a writer for the call's ?alt choice.
func (c *call) newStreamWriter() *streamWriter {
	buf := new(bytes.Buffer)
	return &streamWriter{c: c, sse: c.query.Get("alt") == "sse", buf: buf, enc: json.NewEncoder(buf)}
}

// begin sends the 200 status and headers.
func (sw *streamWriter) begin() {
	h := sw.c.w.Header()
	if sw.sse {
		h.Set("Content-Type", contentTypeSSE)
	} else {
		h.Set("Content-Type", contentTypeJSON)
	}
	h.Set("Cache-Control", "no-cache")
	sw.c.w.WriteHeader(http.StatusOK)
	sw.c.record(http.StatusOK)
}

// chunk sends one event and flushes it; it returns false when the client is gone.
func (sw *streamWriter) chunk(v any) bool {
	sw.buf.Reset()
	switch {
	case sw.sse:
		sw.buf.WriteString("data: ")
	case sw.n == 0:
		sw.buf.WriteByte('[')
	default:
		sw.buf.WriteString(",\r\n")
	}
	if err := sw.enc.Encode(v); err != nil {
		sw.c.s.log.Error("encode stream chunk", "err", err)
		return false
	}
	sw.buf.Truncate(sw.buf.Len() - 1) // Encode's newline.
	if sw.sse {
		sw.buf.WriteString("\r\n\r\n")
	}
	sw.n++
	if _, err := sw.c.w.Write(sw.buf.Bytes()); err != nil {
		return false
	}
	sw.c.flush()
	return true
}

// end closes the JSON array; an SSE stream just ends.
func (sw *streamWriter) end() {
	if sw.sse {
		return
	}
	if sw.n == 0 {
		sw.c.write([]byte("[]"))
	} else {
		sw.c.write([]byte("]"))
	}
	sw.c.flush()
}
