package anthropic

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// update rewrites the golden files: go test ./ingress/anthropic -update.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// checkGolden compares got with the golden file at path (under testdata/golden), or
// rewrites the file when -update is set.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	path = filepath.Join("testdata", "golden", path)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing; run go test ./ingress/anthropic -update")
	require.Equal(t, string(want), string(got), "output differs from %s", path)
}

// readTestdata reads a file under testdata.
func readTestdata(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	require.NoError(t, err)
	return b
}

// indentJSON marshals v as indented JSON without HTML escaping, for readable goldens.
func indentJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	return buf.Bytes()
}

// parseGeminiSSE reads a Gemini streamGenerateContent?alt=sse body into its chunks.
// Lines that are not "data: <json>" or that do not decode are skipped.
func parseGeminiSSE(body []byte) []*gemini.GenerateContentResponse {
	var out []*gemini.GenerateContentResponse
	for _, line := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue
		}
		var r gemini.GenerateContentResponse
		if json.Unmarshal([]byte(strings.TrimSpace(data)), &r) != nil {
			continue
		}
		out = append(out, &r)
	}
	return out
}

// translateStream runs chunks through a translator and returns the whole SSE body.
func translateStream(t testing.TB, meta ResponseMeta, start bool, chunks []*gemini.GenerateContentResponse) []byte {
	t.Helper()
	tr := NewStreamTranslator(meta)
	var out []byte
	if start {
		out = append(out, tr.Start()...)
	}
	for _, c := range chunks {
		b, err := tr.Chunk(c)
		require.NoError(t, err)
		out = append(out, b...)
	}
	return append(out, tr.Finish()...)
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// parseSSE splits an Anthropic SSE body into events, requiring the exact framing this
// package writes: "event: <name>\ndata: <json>\n\n".
func parseSSE(body []byte) ([]sseEvent, error) {
	if len(body) == 0 {
		return nil, nil
	}
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		return nil, fmt.Errorf("body does not end with a blank line")
	}
	var out []sseEvent
	for _, raw := range bytes.Split(body[:len(body)-2], []byte("\n\n")) {
		lines := bytes.Split(raw, []byte("\n"))
		if len(lines) != 2 {
			return nil, fmt.Errorf("event %d has %d lines: %q", len(out), len(lines), raw)
		}
		name, ok1 := bytes.CutPrefix(lines[0], []byte("event: "))
		data, ok2 := bytes.CutPrefix(lines[1], []byte("data: "))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("event %d is not event/data: %q", len(out), raw)
		}
		if !json.Valid(data) {
			return nil, fmt.Errorf("event %d data is not JSON: %q", len(out), data)
		}
		var typed struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(data, &typed); err != nil || typed.Type != string(name) {
			return nil, fmt.Errorf("event %d named %q has data type %q", len(out), name, typed.Type)
		}
		out = append(out, sseEvent{name: string(name), data: data})
	}
	return out, nil
}

// checkEventOrder verifies the Anthropic event grammar: message_start first and once,
// blocks started with consecutive indices from 0, deltas only for the open block and
// of its type, every start matched by a stop before the next start, and message_delta
// then message_stop at the end with nothing after.
func checkEventOrder(events []sseEvent) error {
	if len(events) == 0 {
		return fmt.Errorf("no events")
	}
	if events[0].name != "message_start" {
		return fmt.Errorf("first event is %s", events[0].name)
	}
	next, open, openType := 0, -1, ""
	sawDelta := false
	for i, ev := range events[1:] {
		var e struct {
			Index        *int `json:"index"`
			ContentBlock struct {
				Type string `json:"type"`
			} `json:"content_block"`
			Delta struct {
				Type       string  `json:"type"`
				StopReason *string `json:"stop_reason"`
			} `json:"delta"`
		}
		if err := json.Unmarshal(ev.data, &e); err != nil {
			return fmt.Errorf("event %d: %w", i+1, err)
		}
		if sawDelta && ev.name != "message_stop" {
			return fmt.Errorf("event %d: %s after message_delta", i+1, ev.name)
		}
		switch ev.name {
		case "message_start":
			return fmt.Errorf("event %d: second message_start", i+1)
		case "content_block_start":
			if open >= 0 {
				return fmt.Errorf("event %d: block %d started while %d is open", i+1, *e.Index, open)
			}
			if e.Index == nil || *e.Index != next {
				return fmt.Errorf("event %d: block start index %v, want %d", i+1, e.Index, next)
			}
			open, openType = next, e.ContentBlock.Type
			next++
		case "content_block_delta":
			if e.Index == nil || *e.Index != open {
				return fmt.Errorf("event %d: delta for block %v, open is %d", i+1, e.Index, open)
			}
			want := map[string]string{"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "thinking", "input_json_delta": "tool_use"}[e.Delta.Type]
			if want != openType {
				return fmt.Errorf("event %d: %s in a %s block", i+1, e.Delta.Type, openType)
			}
		case "content_block_stop":
			if e.Index == nil || *e.Index != open {
				return fmt.Errorf("event %d: stop for block %v, open is %d", i+1, e.Index, open)
			}
			open = -1
		case "message_delta":
			if open >= 0 {
				return fmt.Errorf("event %d: message_delta with block %d open", i+1, open)
			}
			if e.Delta.StopReason == nil {
				return fmt.Errorf("event %d: message_delta without stop_reason", i+1)
			}
			sawDelta = true
		case "message_stop":
			if !sawDelta {
				return fmt.Errorf("event %d: message_stop before message_delta", i+1)
			}
			if i+2 != len(events) {
				return fmt.Errorf("event %d: message_stop is not last", i+1)
			}
			return nil
		default:
			return fmt.Errorf("event %d: unexpected event %s", i+1, ev.name)
		}
	}
	return fmt.Errorf("stream ended without message_stop")
}
