package gemsim

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// parseStream reads every chunk of a stream body in either wire form.
func parseStream(t *testing.T, sse bool, body []byte) []gemini.GenerateContentResponse {
	t.Helper()
	var chunks []gemini.GenerateContentResponse
	if !sse {
		require.True(t, strings.HasPrefix(string(body), "["), string(body))
		require.NoError(t, json.Unmarshal(body, &chunks), string(body))
		return chunks
	}
	events := strings.Split(string(body), "\r\n\r\n")
	require.Equal(t, "", events[len(events)-1], "every event ends with CRLF CRLF")
	for _, ev := range events[:len(events)-1] {
		data, ok := strings.CutPrefix(ev, "data: ")
		require.True(t, ok, ev)
		var chunk gemini.GenerateContentResponse
		require.NoError(t, json.Unmarshal([]byte(data), &chunk), data)
		chunks = append(chunks, chunk)
	}
	return chunks
}

// streamPath is the stream route of model, as SSE or as a JSON array.
func streamPath(model string, sse bool) string {
	p := "/v1beta/models/" + model + ":streamGenerateContent"
	if sse {
		p += "?alt=sse"
	}
	return p
}

func TestStream(t *testing.T) {
	cases := []struct {
		name       string
		why        string
		sse        bool
		headers    []string
		gen        *gemini.GenerationConfig
		wantChunks int
	}{
		{name: "sse", why: "SSE events, default 4 chunks", sse: true, wantChunks: 4},
		{name: "json array", why: "without alt=sse the API streams a JSON array", wantChunks: 4},
		{name: "header override", why: "x-sim-chunks reshapes one request", sse: true,
			headers: []string{headerChunks, "7", headerChunkInterval, "1"}, wantChunks: 7},
		{name: "thoughts", why: "the thought part arrives in the first chunk", sse: true, wantChunks: 4,
			gen: &gemini.GenerationConfig{ThinkingConfig: &gemini.ThinkingConfig{IncludeThoughts: true}}},
		{name: "two candidates", why: "every chunk carries a piece of each candidate", sse: true, wantChunks: 4,
			gen: &gemini.GenerationConfig{CandidateCount: ptr(2)}},
	}
	s := newSim(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := withGen(userText("Tell me about streaming"), tc.gen)
			whole := s.generateOK(keyP1a, flash, req)

			resp, body, err := s.try(http.MethodPost, streamPath(flash, tc.sse), keyP1a, req, tc.headers...)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			if tc.sse {
				require.Equal(t, contentTypeSSE, resp.Header.Get("Content-Type"))
			} else {
				require.Equal(t, contentTypeJSON, resp.Header.Get("Content-Type"))
				require.Contains(t, string(body), "},\r\n{", "array elements are separated by ,CRLF")
			}
			chunks := parseStream(t, tc.sse, body)
			require.Len(t, chunks, tc.wantChunks, tc.why)

			texts := make([]strings.Builder, len(whole.Candidates))
			var prev, sum int64
			for i, ch := range chunks {
				last := i == len(chunks)-1
				require.Len(t, ch.Candidates, len(whole.Candidates))
				for j, c := range ch.Candidates {
					require.Equal(t, j, c.Index)
					require.Equal(t, last, c.FinishReason != "", "only the last chunk finishes")
					for k, p := range c.Content.Parts {
						if p.Thought {
							require.Zero(t, i, "thoughts come first")
							require.Zero(t, k)
							continue
						}
						texts[j].WriteString(p.Text)
					}
				}
				u := ch.UsageMetadata
				require.NotNil(t, u)
				require.Equal(t, whole.UsageMetadata.PromptTokenCount, u.PromptTokenCount)
				require.GreaterOrEqual(t, u.CandidatesTokenCount, prev, "usage is cumulative")
				require.Equal(t, u.PromptTokenCount+u.CandidatesTokenCount+u.ThoughtsTokenCount, u.TotalTokenCount)
				prev = u.CandidatesTokenCount
				sum += u.CandidatesTokenCount
				require.Equal(t, whole.ModelVersion, ch.ModelVersion)
				require.Equal(t, chunks[0].ResponseID, ch.ResponseID)
			}
			final := chunks[len(chunks)-1]
			require.Equal(t, *whole.UsageMetadata, *final.UsageMetadata, "the last chunk holds the totals")
			require.Greater(t, sum, final.UsageMetadata.CandidatesTokenCount, "summing chunks would over-count")
			for j := range texts {
				require.Equal(t, whole.Candidates[j].Content.Parts[len(whole.Candidates[j].Content.Parts)-1].Text, texts[j].String())
				require.Equal(t, whole.Candidates[j].FinishReason, final.Candidates[j].FinishReason)
			}
		})
	}
}

func TestStreamFunctionCallIsOneChunk(t *testing.T) {
	s := newSim(t, Config{})
	req := userText("Weather?")
	req.Tools = []gemini.Tool{{FunctionDeclarations: []gemini.FunctionDeclaration{{Name: "get_weather"}}}}
	code, body := s.do(http.MethodPost, streamPath(flash, true), keyP1a, req)
	require.Equal(t, http.StatusOK, code)
	chunks := parseStream(t, true, body)
	require.Len(t, chunks, 1)
	fc := chunks[0].Candidates[0].Content.Parts[0].FunctionCall
	require.NotNil(t, fc)
	require.Equal(t, "get_weather", fc.Name)
	require.JSONEq(t, `{}`, string(fc.Args))
	require.Equal(t, gemini.FinishStop, chunks[0].Candidates[0].FinishReason)
}

func TestStreamFlushesEachChunk(t *testing.T) {
	s := newSim(t, Config{ChunkInterval: Duration(50 * time.Millisecond)})
	req, err := http.NewRequest(http.MethodPost, s.ts.URL+streamPath(flash, true), strings.NewReader(`{"contents":[{"parts":[{"text":"hi"}]}]}`))
	require.NoError(t, err)
	req.Header.Set("x-goog-api-key", keyP1a)
	start := time.Now()
	resp, err := s.ts.Client().Do(req)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "data: "))
	require.Less(t, time.Since(start), 40*time.Millisecond, "the first chunk arrives before the interval")
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "three intervals between four chunks")
}

func TestConcurrentStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 concurrent streams")
	}
	const streams = 2000
	s := newSim(t, Config{
		ChunkInterval: Duration(2 * time.Millisecond),
		Limits:        map[string]Limits{flash: {}},
	})
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: streams}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	body := `{"contents":[{"parts":[{"text":"hello"}]}]}`
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	start := time.Now()
	for range streams {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, s.ts.URL+streamPath(flash, true), strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("x-goog-api-key", keyP1a)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			data, err := io.ReadAll(resp.Body)
			if cerr := resp.Body.Close(); err == nil {
				err = cerr
			}
			if err == nil && strings.Count(string(data), "data: ") != DefaultStreamChunks {
				err = io.ErrUnexpectedEOF
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("%d streams of %d chunks in %v", streams, DefaultStreamChunks, time.Since(start))
	require.EqualValues(t, streams, s.srv.Stats().Projects["p1"].Models[flash].Accepted)
}

func TestStreamHeaderValidation(t *testing.T) {
	s := newSim(t, Config{})
	cases := []struct {
		header, value string
	}{
		{headerChunks, "0"}, {headerChunks, "many"}, {headerChunkInterval, "-1"}, {headerChunkInterval, "soon"},
	}
	for _, tc := range cases {
		code, body := s.do(http.MethodPost, streamPath(flash, true), keyP1a, userText("x"), tc.header, tc.value)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", tc.header, body)
		require.Contains(t, decodeError(t, body).Message, tc.header)
	}
	require.Empty(t, s.stats().Projects["p1"].Models, "a rejected stream consumes no quota")
}
