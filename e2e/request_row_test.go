//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// requestRow is the part of a request_logs row the end-to-end test checks.
type requestRow struct {
	ID            string
	ClientType    string
	APIKeyHash    string
	Project       string
	Model         string
	OriginalModel string
	Endpoint      string
	ResponseTime  uint32
	StatusCode    uint16
	InputTokens   uint64
	OutputTokens  uint64
	TotalTokens   uint64
	Thoughts      uint64
	IsStream      uint8
	HasError      uint8
	RequestSize   uint64
	ResponseSize  uint64
	TokenHash     string
	Attempts      uint64
}

const requestRowQuery = `SELECT id, client_type, api_key_hash, project, model, original_model, endpoint,
	response_time, status_code, input_tokens, output_tokens, total_tokens, thoughts_tokens,
	is_stream, has_error, request_size, response_size, token_hash, length(attempts.key_hash)
	FROM {db}.request_logs FINAL WHERE request_id = ?`

func readRequestRow(t *testing.T, env *e2e.Env, requestID string) requestRow {
	t.Helper()
	_, err := env.WaitCount("SELECT count() FROM {db}.request_logs WHERE request_id = '"+requestID+"'", 1, 30*time.Second)
	require.NoError(t, err)
	var r requestRow
	q := bytes.ReplaceAll([]byte(requestRowQuery), []byte("{db}"), []byte(env.Database))
	require.NoError(t, env.CH.QueryRow(context.Background(), string(q), requestID).Scan(
		&r.ID, &r.ClientType, &r.APIKeyHash, &r.Project, &r.Model, &r.OriginalModel, &r.Endpoint,
		&r.ResponseTime, &r.StatusCode, &r.InputTokens, &r.OutputTokens, &r.TotalTokens, &r.Thoughts,
		&r.IsStream, &r.HasError, &r.RequestSize, &r.ResponseSize, &r.TokenHash, &r.Attempts))
	return r
}

// TestGenerateContentEndToEnd sends one native generateContent call through the ingress
// and finds its row in ClickHouse, field by field.
func TestGenerateContentEndToEnd(t *testing.T) {
	env := e2e.Start(t, e2e.Options{Sim: func(c *gemsim.Config) {
		// A visible latency, so the recorded response time must be real.
		c.Latency = gemsim.Duration(25 * time.Millisecond)
	}})
	body := []byte(`{"contents":[{"role":"user","parts":[{"text":"Hello from the end-to-end test"}]}]}`)
	req, err := http.NewRequest(http.MethodPost, env.URL(0)+"/v1beta/models/gemini-2.5-flash:generateContent", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("x-goog-api-key", env.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	respBody, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, string(respBody))
	var gr gemini.GenerateContentResponse
	require.NoError(t, json.Unmarshal(respBody, &gr))
	require.NotNil(t, gr.UsageMetadata)
	u := gr.UsageMetadata
	requestID := resp.Header.Get("X-Request-Id")
	require.NotEmpty(t, requestID)

	row := readRequestRow(t, env, requestID)

	validHashes := map[string]string{}
	for _, p := range e2e.DefaultProjects() {
		for _, k := range p.Keys {
			validHashes[schemas.HashKey(k)] = p.ID
		}
	}
	project, ok := validHashes[row.APIKeyHash]
	require.True(t, ok, "api_key_hash %q is the hash of a pool key", row.APIKeyHash)
	require.Equal(t, project, row.Project)
	require.GreaterOrEqual(t, row.ResponseTime, uint32(25), "latency includes the upstream's 25 ms")
	require.Equal(t, requestRow{
		ID: row.ID, ClientType: schemas.ClientGemini, APIKeyHash: row.APIKeyHash, Project: project,
		Model: "gemini-2.5-flash", OriginalModel: "gemini-2.5-flash",
		Endpoint: "/v1beta/models/{model}:generateContent", ResponseTime: row.ResponseTime,
		StatusCode:   200,
		InputTokens:  uint64(u.PromptTokenCount + u.ToolUsePromptTokenCount),
		OutputTokens: uint64(u.CandidatesTokenCount + u.ThoughtsTokenCount),
		TotalTokens:  uint64(u.TotalTokenCount), Thoughts: uint64(u.ThoughtsTokenCount),
		IsStream: 0, HasError: 0, RequestSize: uint64(len(body)), ResponseSize: uint64(len(respBody)),
		TokenHash: schemas.HashToken(env.Token), Attempts: 1,
	}, row)
	require.NotZero(t, u.ThoughtsTokenCount, "2.5 models think by default in the simulator")
}
