//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"
)

// prompt is the content of every call: short, as in the overhead benchmarks of other
// gateways, so that the gateway's own work is not hidden behind body handling.
const prompt = "Write one sentence about why connection pooling matters."

var (
	nativeBody = []byte(`{"contents":[{"role":"user","parts":[{"text":"` + prompt + `"}]}]}`)
	openaiBody = []byte(`{"model":"` + benchModel + `","messages":[{"role":"user","content":"` + prompt + `"}]}`)
)

// call is one kind of request, sent again and again.
type call struct {
	client *http.Client
	url    string
	header http.Header
	body   []byte
	stream bool
}

// newClient returns a client keeping up to conns connections to each host.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxConnsPerHost:     conns,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
	}}
}

// nativeCall is generateContent (or streamGenerateContent over SSE) of benchModel at
// base; credential goes where Gemini SDKs put it, and is a Gemini key for the
// simulator and a gateway token for the ingress.
func nativeCall(c *http.Client, base, credential string, stream bool) *call {
	url := base + "/v1beta/models/" + benchModel + ":generateContent"
	if stream {
		url = base + "/v1beta/models/" + benchModel + ":streamGenerateContent?alt=sse"
	}
	h := http.Header{"Content-Type": {"application/json"}, "X-Goog-Api-Key": {credential}}
	return &call{client: c, url: url, header: h, body: nativeBody, stream: stream}
}

// openaiCall is a non-streaming chat completion through the gateway's translation.
func openaiCall(c *http.Client, base, token string) *call {
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + token}}
	return &call{client: c, url: base + "/v1/chat/completions", header: h, body: openaiBody}
}

// do sends the call and reads the whole answer. It returns the time until the answer
// was read, or for a stream until its first data line arrived (the rest is read
// too, so that the connection is reused).
func (c *call) do() (time.Duration, error) {
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(c.body))
	if err != nil {
		return 0, err
	}
	req.Header = c.header.Clone()
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, &statusError{resp.StatusCode, string(b)}
	}
	if !c.stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	r := bufio.NewReader(resp.Body)
	var first time.Duration
	for first == 0 {
		line, err := r.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data:")) {
			first = time.Since(start)
		}
		if err != nil {
			return 0, fmt.Errorf("stream ended before its first chunk: %w", err)
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return 0, err
	}
	return first, nil
}

type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.code, e.body) }
