package gemsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// benchBody is a typical small chat request.
const benchBody = `{"contents":[{"role":"user","parts":[{"text":"Write a haiku about rate limits and patient retries."}]}],"generationConfig":{"maxOutputTokens":256}}`

// BenchmarkHandlerGenerate measures the handler alone, without sockets.
func BenchmarkHandlerGenerate(b *testing.B) {
	srv := New(Config{Projects: testProjects(), Limits: map[string]Limits{flash: {}}})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1beta/models/gemini-2.5-flash:generateContent", strings.NewReader(benchBody))
			req.Header.Set("x-goog-api-key", keyP1a)
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkHTTP measures whole round trips over loopback with keep-alive, the way the
// gateway's direct baseline sees the simulator.
func BenchmarkHTTP(b *testing.B) {
	for _, bc := range []struct {
		name string
		path string
	}{
		{"generate", "/v1beta/models/gemini-2.5-flash:generateContent"},
		{"stream_sse", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := httptest.NewServer(New(Config{Projects: testProjects(), Limits: map[string]Limits{flash: {}}}))
			defer ts.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, err := http.NewRequest(http.MethodPost, ts.URL+bc.path, strings.NewReader(benchBody))
					if err != nil {
						b.Fatal(err)
					}
					req.Header.Set("x-goog-api-key", keyP1a)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, resp.Body); err != nil {
						b.Fatal(err)
					}
					if err := resp.Body.Close(); err != nil {
						b.Fatal(err)
					}
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}
