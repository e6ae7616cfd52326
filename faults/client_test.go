//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// The three client protocols.
const (
	pOpenAI = "openai"
	pClaude = "claude"
	pGemini = "gemini"
)

var protocols = []string{pOpenAI, pClaude, pGemini}

// model is served by every Env's default tier-1 projects.
const model = "gemini-2.5-flash"

// call describes one client request.
type call struct {
	Proto  string
	Stream bool
	Model  string
	// Text is the user's message.
	Text string
	// Header adds headers (e.g. x-sim-chunks for the simulator, Origin).
	Header http.Header
}

// result is what a client got.
type result struct {
	Worker, Seq int
	Proto       string
	Stream      bool
	Status      int
	RequestID   string
	Header      http.Header
	Body        []byte
	// Complete: the whole answer arrived: valid JSON of the protocol's success shape,
	// or a stream with its protocol's closing event.
	Complete bool
	Err      error
	Took     time.Duration
}

// served reports whether the client got a complete successful answer.
func (r result) served() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 && r.Complete }

func (c call) request(base, token string) *http.Request {
	if c.Model == "" {
		c.Model = model
	}
	if c.Text == "" {
		c.Text = "fault test"
	}
	text, _ := json.Marshal(c.Text)
	var path, body string
	h := http.Header{"Content-Type": {"application/json"}}
	switch c.Proto {
	case pOpenAI:
		path = "/v1/chat/completions"
		body = fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%s}],"stream":%t}`, c.Model, text, c.Stream)
		h.Set("Authorization", "Bearer "+token)
	case pClaude:
		path = "/v1/messages"
		body = fmt.Sprintf(`{"model":%q,"max_tokens":256,"messages":[{"role":"user","content":%s}],"stream":%t}`, c.Model, text, c.Stream)
		h.Set("x-api-key", token)
		h.Set("anthropic-version", "2023-06-01")
	default:
		path = "/v1beta/models/" + c.Model + ":generateContent"
		if c.Stream {
			path = "/v1beta/models/" + c.Model + ":streamGenerateContent?alt=sse"
		}
		body = fmt.Sprintf(`{"contents":[{"role":"user","parts":[{"text":%s}]}]}`, text)
		h.Set("x-goog-api-key", token)
	}
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	return req
}

// newHTTPClient returns a client with its own connections, so a killed ingress or a
// cut connection affects only its own requests.
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

// send makes the call and reads the whole answer.
func send(ctx context.Context, hc *http.Client, base, token string, c call) result {
	req := c.request(base, token).WithContext(ctx)
	start := time.Now()
	r := result{Proto: c.Proto, Stream: c.Stream}
	resp, err := hc.Do(req)
	if err != nil {
		r.Err, r.Took = err, time.Since(start)
		return r
	}
	r.Status, r.Header, r.RequestID = resp.StatusCode, resp.Header, resp.Header.Get("X-Request-Id")
	r.Body, err = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	r.Took = time.Since(start)
	if err != nil {
		r.Err = err
		return r
	}
	r.Complete = complete(c.Proto, c.Stream, r.Status, r.Body)
	return r
}

// complete checks that a body is a whole answer of its protocol.
func complete(proto string, stream bool, status int, b []byte) bool {
	if status < 200 || status >= 300 {
		return json.Valid(b)
	}
	if stream {
		switch proto {
		case pOpenAI:
			return bytes.HasSuffix(bytes.TrimSpace(b), []byte("data: [DONE]"))
		case pClaude:
			return bytes.Contains(b, []byte("event: message_stop")) && !bytes.Contains(b, []byte("event: error"))
		default:
			return bytes.Contains(b, []byte(`"finishReason"`))
		}
	}
	var v map[string]json.RawMessage
	if json.Unmarshal(b, &v) != nil {
		return false
	}
	switch proto {
	case pOpenAI:
		return v["choices"] != nil
	case pClaude:
		return v["content"] != nil
	default:
		return v["candidates"] != nil
	}
}

// errorShape checks that an error body is in the protocol's own shape and returns its
// message. OpenAI: {"error":{"message","type",...}}; Anthropic:
// {"type":"error","error":{"type","message"}}; Gemini: {"error":{"code","message","status"}}.
func errorShape(proto string, b []byte) (string, error) {
	var v struct {
		Type  string `json:"type"`
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    any    `json:"code"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("error body is not JSON: %w: %.200s", err, b)
	}
	if v.Error == nil || v.Error.Message == "" {
		return "", fmt.Errorf("no error.message in %.300s", b)
	}
	switch proto {
	case pOpenAI:
		if v.Error.Type == "" || v.Type != "" {
			return "", fmt.Errorf("not OpenAI's error shape: %.300s", b)
		}
	case pClaude:
		if v.Type != "error" || v.Error.Type == "" {
			return "", fmt.Errorf("not Anthropic's error shape: %.300s", b)
		}
	default:
		if v.Error.Status == "" || v.Error.Code == nil {
			return "", fmt.Errorf("not Gemini's error shape: %.300s", b)
		}
	}
	return v.Error.Message, nil
}

// unlimited returns Env options whose model has no quota, neither in the simulator nor
// in the gateway's view, so load tests measure delivery, not quota refusals.
func unlimited(o e2e.Options) e2e.Options {
	prev := o.Sim
	o.Sim = func(c *gemsim.Config) {
		if c.Limits == nil {
			c.Limits = map[string]gemsim.Limits{}
		}
		c.Limits[model] = gemsim.Limits{}
		if prev != nil {
			prev(c)
		}
	}
	if o.Limits == nil {
		o.Limits = map[string]map[string]e2e.Limits{}
	}
	for _, tier := range []string{gemsim.TierOne, gemsim.TierFree} {
		if o.Limits[tier] == nil {
			o.Limits[tier] = map[string]e2e.Limits{}
		}
		o.Limits[tier][model] = e2e.Limits{}
	}
	return o
}
