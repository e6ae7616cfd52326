package gemsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// Keys of the default test pool: project p1 has two keys, p2 one valid and one forbidden.
const (
	keyP1a    = "AIzaSyTest-p1-a"
	keyP1b    = "AIzaSyTest-p1-b"
	keyP2a    = "AIzaSyTest-p2-a"
	keyBanned = "AIzaSyTest-p2-banned"
	flash     = "gemini-2.5-flash"
)

// testClock is a settable clock for quota windows.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testProjects is the default pool of the tests.
func testProjects() []ProjectConfig {
	return []ProjectConfig{
		{ID: "p1", Keys: []string{keyP1a, keyP1b}},
		{ID: "p2", Keys: []string{keyP2a}, ForbiddenKeys: []string{keyBanned}},
	}
}

// sim is a simulator behind a real HTTP server.
type sim struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server
}

// newSim starts a simulator; a config without projects gets testProjects.
func newSim(t *testing.T, cfg Config) *sim {
	t.Helper()
	if cfg.Projects == nil {
		cfg.Projects = testProjects()
	}
	require.NoError(t, cfg.Validate())
	srv := New(cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &sim{t: t, srv: srv, ts: ts}
}

// do sends a request and reads the whole answer.
func (s *sim) do(method, path, key string, body any, headers ...string) (int, []byte) {
	s.t.Helper()
	resp, data, err := s.try(method, path, key, body, headers...)
	require.NoError(s.t, err)
	return resp.StatusCode, data
}

// try is do without failing on transport errors, for fault tests.
func (s *sim) try(method, path, key string, body any, headers ...string) (*http.Response, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(s.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.ts.URL+path, rd)
	require.NoError(s.t, err)
	if key != "" {
		req.Header.Set("x-goog-api-key", key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.ts.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { require.NoError(s.t, resp.Body.Close()) }()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

// generate posts a generateContent request for model.
func (s *sim) generate(key, model string, req any) (int, []byte) {
	s.t.Helper()
	return s.do(http.MethodPost, "/v1beta/models/"+model+":generateContent", key, req)
}

// generateOK posts and decodes a successful answer.
func (s *sim) generateOK(key, model string, req any) gemini.GenerateContentResponse {
	s.t.Helper()
	code, body := s.generate(key, model, req)
	require.Equal(s.t, http.StatusOK, code, string(body))
	var resp gemini.GenerateContentResponse
	require.NoError(s.t, json.Unmarshal(body, &resp))
	return resp
}

// stats reads /sim/stats over HTTP.
func (s *sim) stats() Stats {
	s.t.Helper()
	code, body := s.do(http.MethodGet, "/sim/stats", "", nil)
	require.Equal(s.t, http.StatusOK, code)
	var st Stats
	require.NoError(s.t, json.Unmarshal(body, &st))
	return st
}

// inject queues a fault through the control API.
func (s *sim) inject(rule FaultRule) {
	s.t.Helper()
	code, body := s.do(http.MethodPost, "/sim/faults", "", rule)
	require.Equal(s.t, http.StatusOK, code, string(body))
}

// userText is a one-turn request.
func userText(text string) gemini.GenerateContentRequest {
	return gemini.GenerateContentRequest{Contents: []gemini.Content{{Role: "user", Parts: []gemini.Part{{Text: text}}}}}
}

// decodeError reads a google.rpc error body.
func decodeError(t *testing.T, body []byte) gemini.Status {
	t.Helper()
	var eb gemini.ErrorBody
	require.NoError(t, json.Unmarshal(body, &eb), string(body))
	return eb.Error
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
