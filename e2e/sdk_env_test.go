//go:build integration

package e2e

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// The SDK tests (sdk_*_test.go) drive the gateway with the official OpenAI, Anthropic
// and Google Gen AI Go SDKs. Each file starts one Env and runs its cases as parallel
// subtests against it; the three files run in parallel with each other.

const (
	// sdkLatency delays every simulated call, so recorded latencies and the time to
	// first byte of a stream are measurably above zero.
	sdkLatency = 20 * time.Millisecond
	// sdkChunks and sdkChunkInterval shape every simulated stream. The gateway builds
	// its own upstream requests and does not forward the simulator's x-sim-* request
	// headers, so the shape is the simulator's config rather than a per-request header.
	sdkChunks        = 4
	sdkChunkInterval = 15 * time.Millisecond
	// sdkTinyModel gets one request a minute per project, in the simulator and in the
	// gateway's keys file alike, so that a few calls use the whole pool up and the next
	// one meets 429. No other case uses this model.
	sdkTinyModel = "gemini-2.0-flash"
	// sdkUpstreamTinyModel gets one request a minute per project in the simulator only:
	// the gateway believes in the tier's published limits, so it keeps sending until
	// Gemini's own 429s have cooled every project down (a quota lowered by Google, or a
	// keys file that is out of date).
	sdkUpstreamTinyModel = "gemini-2.5-flash-lite"
	// sdkPrompt is the prompt of the chat cases; the simulator's answer to it (and the
	// token counts) are deterministic, so a stream must add up to the plain answer.
	sdkPrompt = "Say hello to the SDK end-to-end test"
	// sdkToolResult is what the client's tool returns; the simulator quotes function
	// results in its answer as name=<compact JSON>.
	sdkToolResult = `{"temperature":21,"unit":"C"}`
)

// startSDKEnv starts the Env an SDK file shares among its subtests.
func startSDKEnv(t *testing.T) *e2e.Env {
	t.Helper()
	tiny := map[string]gemsim.Limits{sdkTinyModel: {RPM: 1}, sdkUpstreamTinyModel: {RPM: 1}}
	return e2e.Start(t, e2e.Options{
		Sim: func(c *gemsim.Config) {
			c.Latency = gemsim.Duration(sdkLatency)
			c.StreamChunks = sdkChunks
			c.ChunkInterval = gemsim.Duration(sdkChunkInterval)
			c.Limits = tiny
		},
		Limits: map[string]map[string]e2e.Limits{gemsim.TierOne: {sdkTinyModel: {RPM: 1}}},
	})
}

// sdkRow is the part of a request_logs row the SDK tests compare. Latency and time to
// first byte vary between runs: tests check their bounds, then copy them into the
// expected row.
type sdkRow struct {
	ClientType       string
	Endpoint         string
	Model            string
	OriginalModel    string
	StatusCode       uint16
	IsStream         uint8
	HasError         uint8
	ErrorType        string
	Interrupted      string
	InputTokens      uint64
	OutputTokens     uint64
	TotalTokens      uint64
	PromptTokens     uint64
	CandidatesTokens uint64
	ThoughtsTokens   uint64
	TokenHash        string
	ResponseTime     uint32
	TTFBMs           uint32
	// AttemptStatuses are the upstream calls' statuses, in order.
	AttemptStatuses []uint16
}

const sdkRowQuery = `SELECT client_type, endpoint, model, original_model, status_code, is_stream,
	has_error, error_type, interrupted, input_tokens, output_tokens, total_tokens, prompt_tokens,
	candidates_tokens, thoughts_tokens, token_hash, response_time, ttfb_ms, attempts.status
	FROM {db}.request_logs FINAL WHERE request_id = ?`

// readSDKRow waits for the request_logs row of requestID (the X-Request-Id the client
// got) and returns it.
func readSDKRow(t *testing.T, env *e2e.Env, requestID string) sdkRow {
	t.Helper()
	require.NotEmpty(t, requestID, "the answer carries X-Request-Id")
	n, err := env.WaitCount("SELECT count() FROM {db}.request_logs WHERE request_id = '"+requestID+"'", 1, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n, "one row for request %s", requestID)
	var r sdkRow
	q := strings.ReplaceAll(sdkRowQuery, "{db}", env.Database)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, env.CH.QueryRow(ctx, q, requestID).Scan(
		&r.ClientType, &r.Endpoint, &r.Model, &r.OriginalModel, &r.StatusCode, &r.IsStream,
		&r.HasError, &r.ErrorType, &r.Interrupted, &r.InputTokens, &r.OutputTokens, &r.TotalTokens,
		&r.PromptTokens, &r.CandidatesTokens, &r.ThoughtsTokens, &r.TokenHash, &r.ResponseTime, &r.TTFBMs,
		&r.AttemptStatuses))
	return r
}

// okRow is the expected row of a successful request, before token counts: one upstream
// call, answered at once (no failover).
func okRow(env *e2e.Env, clientType, endpoint, model, original string, stream bool) sdkRow {
	r := sdkRow{
		ClientType: clientType, Endpoint: endpoint, Model: model, OriginalModel: original,
		StatusCode: http.StatusOK, TokenHash: schemas.HashToken(env.Token), AttemptStatuses: []uint16{http.StatusOK},
	}
	if stream {
		r.IsStream = 1
	}
	return r
}

// errRow is the expected row of a request answered with an error before any upstream
// call.
func errRow(env *e2e.Env, clientType, endpoint, model, original string, status int, errType string) sdkRow {
	r := sdkRow{
		ClientType: clientType, Endpoint: endpoint, Model: model, OriginalModel: original,
		StatusCode: uint16(status), HasError: 1, ErrorType: errType, AttemptStatuses: []uint16{},
	}
	if status != http.StatusUnauthorized {
		r.TokenHash = schemas.HashToken(env.Token)
	}
	return r
}

// requireTimes checks the latency of a row against the simulator's shape and copies the
// varying fields into want. A request that went upstream took at least the simulator's
// latency. A stream's first byte comes after that latency and well before the stream's
// end, since the simulator spaces the chunks.
func requireTimes(t *testing.T, want *sdkRow, got sdkRow, upstream bool) {
	t.Helper()
	if upstream {
		require.GreaterOrEqual(t, got.ResponseTime, uint32(sdkLatency/time.Millisecond), "latency includes the upstream's")
	}
	if want.IsStream == 1 {
		require.GreaterOrEqual(t, got.TTFBMs, uint32(sdkLatency/time.Millisecond), "time to first byte includes the upstream's latency")
		spacing := uint32((sdkChunks - 1) * sdkChunkInterval / time.Millisecond)
		require.GreaterOrEqual(t, got.ResponseTime, got.TTFBMs+spacing*3/4,
			"the first byte went out with the first chunk, not at the end (ttfb %d ms, latency %d ms)", got.TTFBMs, got.ResponseTime)
	} else {
		require.Zero(t, got.TTFBMs, "no time to first byte for a buffered answer")
	}
	want.ResponseTime, want.TTFBMs = got.ResponseTime, got.TTFBMs
}

// requireRetryAfter checks a Retry-After header holds a whole number of seconds ≥ 1.
func requireRetryAfter(t *testing.T, h http.Header) {
	t.Helper()
	v := h.Get("Retry-After")
	require.NotEmpty(t, v, "a pool-exhausted 429 says when to come back")
	s, err := strconv.Atoi(v)
	require.NoError(t, err, "Retry-After %q is delay-seconds", v)
	require.GreaterOrEqual(t, s, 1)
	require.LessOrEqual(t, s, 61, "a per-minute quota frees within a minute")
}

// headerRecorder is an http.RoundTripper that keeps the headers of every response, for
// clients (genai) whose errors do not carry the HTTP response.
type headerRecorder struct {
	mu      sync.Mutex
	headers []http.Header
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		h.mu.Lock()
		h.headers = append(h.headers, resp.Header.Clone())
		h.mu.Unlock()
	}
	return resp, err
}

// last returns the headers of the latest response.
func (h *headerRecorder) last() http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.headers) == 0 {
		return http.Header{}
	}
	return h.headers[len(h.headers)-1]
}

// localRow is the expected row of a request the gateway answered itself (model lists).
func localRow(env *e2e.Env, clientType, endpoint string) sdkRow {
	r := okRow(env, clientType, endpoint, "", "", false)
	r.AttemptStatuses = []uint16{}
	return r
}

// requireExhaustedRow checks the row of a 429 the gateway gave when no key had quota
// left: any upstream call it still made met Gemini's own 429.
func requireExhaustedRow(t *testing.T, want sdkRow, got sdkRow) {
	t.Helper()
	for i, s := range got.AttemptStatuses {
		require.Equal(t, uint16(http.StatusTooManyRequests), s, "attempt %d", i)
	}
	want.AttemptStatuses = got.AttemptStatuses
	requireTimes(t, &want, got, false)
	require.Equal(t, want, got)
}

// upstream429s counts the 429s the simulator sent for model.
func upstream429s(env *e2e.Env, model string) int64 {
	var n int64
	for _, p := range env.Sim.Stats().Projects {
		n += p.Models[model].Rejected429
	}
	return n
}

// untilPoolExhausted calls do until it fails with 429 and returns that error; every
// earlier call must succeed. status extracts the HTTP status of an SDK error.
func untilPoolExhausted(t *testing.T, do func() error, status func(error) (int, bool)) error {
	t.Helper()
	// Three projects with one request a minute each: the fourth call at the latest
	// finds the pool empty (a few more if the calls straddle a minute boundary).
	for range 10 {
		err := do()
		if err == nil {
			continue
		}
		code, ok := status(err)
		require.True(t, ok, "an API error, got %v", err)
		require.Equal(t, http.StatusTooManyRequests, code, "%v", err)
		return err
	}
	t.Fatal("the pool was never exhausted")
	return nil
}
