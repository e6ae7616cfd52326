//go:build faults

package faults

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
)

// rawResult is the answer to a hand-written HTTP/1.1 request.
type rawResult struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
	err       error
	took      time.Duration
}

// rawDo sends exactly the bytes of raw (a whole request) and reads one answer, so
// paths, header values and bodies reach the server unaltered by a client library.
func rawDo(addr, raw string) rawResult {
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return rawResult{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return rawResult{err: err}
	}
	return readRaw(conn, start)
}

func readRaw(conn net.Conn, start time.Time) rawResult {
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return rawResult{err: err, took: time.Since(start)}
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return rawResult{status: resp.StatusCode, header: resp.Header, body: b, requestID: resp.Header.Get("X-Request-Id"), took: time.Since(start)}
}

func post(path, authHeader, body string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n", path)
	if authHeader != "" {
		b.WriteString(authHeader + "\r\n")
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	return b.String()
}

func get(path, authHeader string) string {
	return fmt.Sprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nConnection: close\r\n\r\n", path, authHeader)
}

// hostileCase is one bad request and the status it must get.
type hostileCase struct {
	name  string
	proto string // the protocol whose error shape the answer must have
	raw   string
	want  int
	// recorded: the route has a handler, so the answer must have its event.
	recorded bool
}

// TestFaultHostileInput sends bad and hostile requests — oversized bodies, slow bodies
// and headers, deep nesting, invalid UTF-8, a huge n, CR/LF and spaces in model names,
// path traversal, unknown auth schemes, replayed and guessed tokens — and checks each
// gets the right refusal in its protocol's shape, that not one reaches the upstream (the
// simulator counts every request it receives), that the ingress never panics, and that
// every refusal of an API route is recorded.
func TestFaultHostileInput(t *testing.T) {
	env := e2e.Start(t, unlimited(e2e.Options{IngressEnv: []string{"GCA_MAX_BODY_BYTES=65536", "GCA_READ_TIMEOUT=2s"}}))
	in := env.Ingress[0]
	addr := in.Addr
	// The model list is fetched once at start; wait for it, then nothing may reach the
	// simulator.
	require.True(t, waitFor(10*time.Second, func() bool { return env.SimHits() > 0 }))
	time.Sleep(500 * time.Millisecond)
	hits := env.SimHits()

	bearer := "Authorization: Bearer " + env.Token
	xapi := "x-api-key: " + env.Token
	goog := "x-goog-api-key: " + env.Token
	big := `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"` + strings.Repeat("a", 100_000) + `"}]}`
	bigGemini := `{"contents":[{"role":"user","parts":[{"text":"` + strings.Repeat("a", 100_000) + `"}]}]}`
	deep := `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}]}`
	deepGemini := `{"contents":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`
	badUTF8 := "{\"model\":\"gemini-2.5-flash\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\xc3\x28\"}]}"
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	cases := []hostileCase{
		{"oversized body (Content-Length)", pOpenAI, post("/v1/chat/completions", bearer, big), 413, true},
		{"oversized body (Anthropic)", pClaude, post("/v1/messages", xapi, big), 413, true},
		{"oversized body (Gemini)", pGemini, post("/v1beta/models/gemini-2.5-flash:generateContent", goog, bigGemini), 413, true},
		{"oversized body (chunked, no length)", pOpenAI, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big), 413, true},
		{"deeply nested JSON", pOpenAI, post("/v1/chat/completions", bearer, deep), 400, true},
		{"deeply nested JSON (Gemini)", pGemini, post("/v1beta/models/gemini-2.5-flash:generateContent", goog, deepGemini), 400, true},
		{"invalid UTF-8", pOpenAI, post("/v1/chat/completions", bearer, badUTF8), 400, true},
		{"invalid UTF-8 (Anthropic)", pClaude, post("/v1/messages", xapi, strings.Replace(badUTF8, `"messages"`, `"max_tokens":10,"messages"`, 1)), 400, true},
		{"huge n (OpenAI n=1000)", pOpenAI, post("/v1/chat/completions", bearer, `{"model":"gemini-2.5-flash","n":1000,`+msgs+`}`), 400, true},
		{"huge candidateCount (Gemini, 1000)", pGemini, post("/v1beta/models/gemini-2.5-flash:generateContent", goog, `{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"candidateCount":1000}}`), 400, true},
		{"CR/LF in the model name", pOpenAI, post("/v1/chat/completions", bearer, `{"model":"gemini-2.5-flash\r\nX-Injected: 1",`+msgs+`}`), 400, true},
		{"CR/LF in the model name (Anthropic)", pClaude, post("/v1/messages", xapi, `{"model":"gemini-2.5-flash\r\nX-Injected: 1","max_tokens":10,`+msgs+`}`), 400, true},
		{"spaces in the model name", pOpenAI, post("/v1/chat/completions", bearer, `{"model":"gemini 2.5 flash",`+msgs+`}`), 400, true},
		{"CR/LF in the model path", pGemini, post("/v1beta/models/gemini-2.5-flash%0d%0aX-Injected:%201:generateContent", goog, `{"contents":[{"parts":[{"text":"hi"}]}]}`), 400, true},
		{"path traversal (encoded)", pGemini, post("/v1beta/models/..%2f..%2fadmin%2fkeys:generateContent", goog, `{"contents":[{"parts":[{"text":"hi"}]}]}`), 404, false},
		{"path traversal (dots in the model)", pGemini, post("/v1beta/models/..:generateContent", goog, `{"contents":[{"parts":[{"text":"hi"}]}]}`), 400, true},
		{"path traversal (GET model)", pGemini, get("/v1beta/models/..%2f..%2f..%2fetc%2fpasswd", goog), 404, false},
		{"path traversal (GET dots)", pGemini, get("/v1beta/models/..", goog), 400, true},
		{"path traversal (raw ../)", pGemini, post("/v1beta/models/../../admin/keys", goog, `{}`), 404, false},
		{"unknown method on a model", pGemini, post("/v1beta/models/gemini-2.5-flash:deleteEverything", goog, `{}`), 404, false},
		{"unknown auth scheme (Basic)", pOpenAI, post("/v1/chat/completions", "Authorization: Basic "+basic(env.Token), `{"model":"gemini-2.5-flash",`+msgs+`}`), 401, true},
		{"unknown auth scheme (Token)", pClaude, post("/v1/messages", "Authorization: Token "+env.Token, `{"model":"gemini-2.5-flash","max_tokens":10,`+msgs+`}`), 401, true},
		{"credential without a scheme", pOpenAI, post("/v1/chat/completions", "Authorization: "+env.Token, `{"model":"gemini-2.5-flash",`+msgs+`}`), 401, true},
		{"replayed token hash", pGemini, post("/v1beta/models/gemini-2.5-flash:generateContent", "x-goog-api-key: "+schemas.HashToken(env.Token), `{"contents":[{"parts":[{"text":"hi"}]}]}`), 401, true},
		{"token with one character changed", pOpenAI, post("/v1/chat/completions", "Authorization: Bearer "+flip(env.Token), `{"model":"gemini-2.5-flash",`+msgs+`}`), 401, true},
		{"oversized header", pOpenAI, post("/v1/chat/completions", bearer, `{}`, "X-Pad: "+strings.Repeat("p", 70<<10)), 431, false},
	}
	var answered []rawResult
	var recorded []result
	for _, c := range cases {
		r := rawDo(addr, c.raw)
		require.NoError(t, r.err, c.name)
		require.Equal(t, c.want, r.status, "%s: %.300s", c.name, r.body)
		require.Empty(t, r.header.Get("X-Injected"), "%s: a header was injected", c.name)
		if c.want != 431 {
			msg, err := errorShape(c.proto, r.body)
			require.NoError(t, err, c.name)
			require.NotContains(t, msg, env.Token, "%s: the credential is echoed", c.name)
		}
		answered = append(answered, r)
		if c.recorded {
			recorded = append(recorded, result{Proto: c.proto, Status: 200, Complete: true, RequestID: r.requestID})
		}
	}

	// Slow body: headers at once, then a byte every 500 ms; the 2 s read timeout ends it.
	slowBody := slowloris(t, addr, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"+bearer+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", " ")
	require.Less(t, slowBody.took, 4*time.Second, "a slow body held the connection %s", slowBody.took)
	// Slow headers: a header line every 500 ms.
	slowHeaders := slowloris(t, addr, "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n", "X-Slow: 1\r\n")
	require.Less(t, slowHeaders.took, 4*time.Second, "slow headers held the connection %s", slowHeaders.took)
	if slowBody.requestID != "" {
		recorded = append(recorded, result{Proto: pOpenAI, Status: 200, Complete: true, RequestID: slowBody.requestID})
	}

	// Guessed tokens: after 10 failures a source is refused with 429 (Retry-After) for
	// the rest of the minute, valid token included; a blocked guess never gets a 401
	// that would confirm anything.
	var codes []int
	for range 15 {
		r := rawDo(addr, post("/v1/chat/completions", "Authorization: Bearer gca_"+randomHex(16), `{"model":"gemini-2.5-flash",`+msgs+`}`))
		require.NoError(t, r.err)
		codes = append(codes, r.status)
		recorded = append(recorded, result{Proto: pOpenAI, Status: 200, Complete: true, RequestID: r.requestID})
		if r.status == http.StatusTooManyRequests {
			require.NotEmpty(t, r.header.Get("Retry-After"))
			_, err := errorShape(pOpenAI, r.body)
			require.NoError(t, err)
		}
	}
	require.Contains(t, codes, http.StatusTooManyRequests, "no failure limit: %v", codes)
	require.Equal(t, http.StatusTooManyRequests, codes[len(codes)-1], "%v", codes)
	valid := send(context.Background(), newHTTPClient(5*time.Second), "http://"+addr, env.Token, call{Proto: pOpenAI})
	require.Equal(t, http.StatusTooManyRequests, valid.Status, "a blocked source is refused even with a valid token")
	recorded = append(recorded, result{Proto: pOpenAI, Status: 200, Complete: true, RequestID: valid.RequestID})

	require.Equal(t, hits, env.SimHits(), "hostile requests reached the upstream")
	require.True(t, in.Running(), "the ingress died")
	noPanic(t, in)
	a := settle(t, env, scope{Stats: true}, recorded, in)
	require.Zero(t, a.Lost, "refusals without their event: %v", first(a.Missing, 5))
	require.Zero(t, a.Duplicated)
	a.Served = len(answered) + 2 + len(codes) + 1
	a.Scenario = "bad and hostile input"
	a.Note = fmt.Sprintf("%d kinds refused (413/400/401/404/431); slow body cut after %s, slow headers after %s (read timeout 2s); guessed tokens: %v then the valid token 429; 0 requests reached the upstream; no panic; lost = refusals of API routes without their event",
		len(cases), slowBody.took.Round(100*time.Millisecond), slowHeaders.took.Round(100*time.Millisecond), codes)
	report(t, a.row)
}

// slowloris writes head, then drip every 500 ms for up to 20 s, and returns when the
// server answers or closes the connection.
func slowloris(t *testing.T, addr, head, drip string) rawResult {
	t.Helper()
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(25 * time.Second))
	_, err = io.WriteString(conn, head)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(500 * time.Millisecond):
			}
			if _, err := io.WriteString(conn, drip); err != nil {
				return
			}
		}
	}()
	defer close(done)
	r := readRaw(conn, start)
	if r.err != nil {
		// Closed without an answer is also an end.
		r.err = nil
	}
	return r
}

func basic(s string) string { return hex.EncodeToString([]byte("user:" + s)) }

func flip(tok string) string {
	b := []byte(tok)
	i := len(b) - 1
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
