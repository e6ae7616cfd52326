package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// streamCases are the Gemini SSE bodies under testdata/streams.
var streamCases = []string{"text", "thinking_text", "tool_use", "parallel_tools", "cut", "blocked", "empty"}

// TestStreamGolden translates each Gemini stream and compares the exact SSE bytes with
// testdata/golden/sse/<case>.sse.
func TestStreamGolden(t *testing.T) {
	for _, name := range streamCases {
		t.Run(name, func(t *testing.T) {
			chunks := parseGeminiSSE(readTestdata(t, "streams/"+name+".sse"))
			out := translateStream(t, testMeta, false, chunks)
			events, err := parseSSE(out)
			require.NoError(t, err)
			require.NoError(t, checkEventOrder(events))
			checkGolden(t, "sse/"+name+".sse", out)
		})
	}
}

// eventSummary is what a test asserts about one event: its name and the distinctive
// part of its data.
func eventSummary(t *testing.T, ev sseEvent) string {
	t.Helper()
	var e struct {
		Index        int             `json:"index"`
		ContentBlock json.RawMessage `json:"content_block"`
		Delta        json.RawMessage `json:"delta"`
		Usage        json.RawMessage `json:"usage"`
		Message      struct {
			Usage json.RawMessage `json:"usage"`
		} `json:"message"`
	}
	require.NoError(t, json.Unmarshal(ev.data, &e))
	switch ev.name {
	case "message_start":
		return "start " + string(e.Message.Usage)
	case "content_block_start":
		return "block " + string(e.ContentBlock)
	case "content_block_delta":
		return "delta " + string(e.Delta)
	case "content_block_stop":
		return "stop"
	case "message_delta":
		return "end " + string(e.Delta) + " " + string(e.Usage)
	}
	return ev.name
}

// TestStreamEvents pins the event sequences the goldens hold.
func TestStreamEvents(t *testing.T) {
	cases := []struct {
		name string
		want []string
	}{
		{
			// Consecutive text chunks continue one block; usage comes from the last chunk.
			name: "text",
			want: []string{
				`start {"input_tokens":7,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}`,
				`block {"type":"text","text":""}`,
				`delta {"type":"text_delta","text":"Hello"}`,
				`delta {"type":"text_delta","text":", wor"}`,
				`delta {"type":"text_delta","text":"ld! \"quoted\" <b>&</b>\n"}`,
				`stop`,
				`end {"stop_reason":"end_turn","stop_sequence":null} {"input_tokens":7,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":9}`,
				`message_stop`,
			},
		},
		{
			// Thinking, then text; the trailing empty signed part becomes an empty
			// thinking block after the text.
			name: "thinking_text",
			want: []string{
				`start {"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":40}`,
				`block {"type":"thinking","thinking":"","signature":""}`,
				`delta {"type":"thinking_delta","thinking":"**Planning**\nThe user wants"}`,
				`delta {"type":"thinking_delta","thinking":" a haiku."}`,
				`delta {"type":"signature_delta","signature":"gca-unsigned-thinking"}`,
				`stop`,
				`block {"type":"text","text":""}`,
				`delta {"type":"text_delta","text":"Autumn moonlight—\n"}`,
				`delta {"type":"text_delta","text":"a worm digs silently\ninto the chestnut."}`,
				`stop`,
				`block {"type":"thinking","thinking":"","signature":""}`,
				`delta {"type":"signature_delta","signature":"CrEBAdHtim8trailingSig"}`,
				`stop`,
				`end {"stop_reason":"end_turn","stop_sequence":null} {"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":102}`,
				`message_stop`,
			},
		},
		{
			// The call's signature closes the open thinking block; the call's args arrive
			// as one input_json_delta.
			name: "tool_use",
			want: []string{
				`start {"input_tokens":120,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":20}`,
				`block {"type":"thinking","thinking":"","signature":""}`,
				`delta {"type":"thinking_delta","thinking":"Need to list files first."}`,
				`delta {"type":"signature_delta","signature":"CikBcallSig"}`,
				`stop`,
				`block {"type":"tool_use","id":"toolu_01TEST_0","name":"bash","input":{}}`,
				`delta {"type":"input_json_delta","partial_json":"{\"command\":\"ls -la /tmp\",\"description\":\"List \\\"tmp\\\"\"}"}`,
				`stop`,
				`end {"stop_reason":"tool_use","stop_sequence":null} {"input_tokens":120,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":38}`,
				`message_stop`,
			},
		},
		{
			// Two calls in one chunk are two blocks; the final chunk's empty text opens
			// nothing; cached tokens are reported apart and toolUsePrompt counts as input.
			name: "parallel_tools",
			want: []string{
				`start {"input_tokens":44,"cache_creation_input_tokens":0,"cache_read_input_tokens":256,"output_tokens":6}`,
				`block {"type":"text","text":""}`,
				`delta {"type":"text_delta","text":"Let me run two things."}`,
				`stop`,
				`block {"type":"tool_use","id":"fc_1","name":"read","input":{}}`,
				`delta {"type":"input_json_delta","partial_json":"{\"path\":\"a.txt\"}"}`,
				`stop`,
				`block {"type":"tool_use","id":"toolu_01TEST_1","name":"read","input":{}}`,
				`delta {"type":"input_json_delta","partial_json":"{\"path\":\"b.txt\"}"}`,
				`stop`,
				`end {"stop_reason":"tool_use","stop_sequence":null} {"input_tokens":56,"cache_creation_input_tokens":0,"cache_read_input_tokens":256,"output_tokens":30}`,
				`message_stop`,
			},
		},
		{
			// Cut upstream: the open text block is closed, stop_reason is max_tokens and
			// usage is the last one seen (the final chunk had none).
			name: "cut",
			want: []string{
				`start {"input_tokens":15,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":12}`,
				`block {"type":"thinking","thinking":"","signature":""}`,
				`delta {"type":"thinking_delta","thinking":"Thinking about it"}`,
				`delta {"type":"signature_delta","signature":"gca-unsigned-thinking"}`,
				`stop`,
				`block {"type":"text","text":""}`,
				`delta {"type":"text_delta","text":"The first half of the ans"}`,
				`delta {"type":"text_delta","text":"wer, then the connection drops"}`,
				`stop`,
				`end {"stop_reason":"max_tokens","stop_sequence":null} {"input_tokens":15,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":18}`,
				`message_stop`,
			},
		},
		{
			name: "blocked",
			want: []string{
				`start {"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}`,
				`end {"stop_reason":"refusal","stop_sequence":null} {"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}`,
				`message_stop`,
			},
		},
		{
			// No chunk at all: Finish still produces a complete, empty message.
			name: "empty",
			want: []string{
				`start {"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}`,
				`end {"stop_reason":"max_tokens","stop_sequence":null} {"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}`,
				`message_stop`,
			},
		},
	}
	require.Len(t, cases, len(streamCases))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := translateStream(t, testMeta, false, parseGeminiSSE(readTestdata(t, "streams/"+tc.name+".sse")))
			events, err := parseSSE(out)
			require.NoError(t, err)
			got := make([]string, len(events))
			for i, ev := range events {
				got[i] = eventSummary(t, ev)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestStreamMessageStart(t *testing.T) {
	chunks := parseGeminiSSE(readTestdata(t, "streams/text.sse"))

	t.Run("first chunk carries message_start", func(t *testing.T) {
		tr := NewStreamTranslator(testMeta)
		out, err := tr.Chunk(chunks[0])
		require.NoError(t, err)
		require.True(t, bytes.HasPrefix(out, []byte(`event: message_start
data: {"type":"message_start","message":{"id":"msg_01TEST","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":7,`)), string(out))
		require.Nil(t, tr.Start(), "message_start was already sent")
	})

	t.Run("early Start has zero usage and message_delta corrects it", func(t *testing.T) {
		tr := NewStreamTranslator(testMeta)
		start := tr.Start()
		require.Contains(t, string(start), `"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}`)
		require.Nil(t, tr.Start())
		var out []byte
		for _, c := range chunks {
			b, err := tr.Chunk(c)
			require.NoError(t, err)
			require.NotContains(t, string(b), "message_start")
			out = append(out, b...)
		}
		out = append(out, tr.Finish()...)
		require.Contains(t, string(out), `"usage":{"input_tokens":7,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":9}`)
		events, err := parseSSE(append(start, out...))
		require.NoError(t, err)
		require.NoError(t, checkEventOrder(events))
	})
}

func TestStreamLifecycle(t *testing.T) {
	tr := NewStreamTranslator(testMeta)
	out, err := tr.Chunk(nil)
	require.NoError(t, err)
	require.Contains(t, string(out), "message_start", "even an empty chunk starts the message")
	end := tr.Finish()
	require.Contains(t, string(end), "message_stop")
	require.Nil(t, tr.Finish(), "Finish is idempotent")
	require.Nil(t, tr.Start())
	_, err = tr.Chunk(&gemini.GenerateContentResponse{})
	require.True(t, errors.Is(err, ErrStreamFinished))
}

func TestPingAndErrorEvent(t *testing.T) {
	require.Equal(t, "event: ping\ndata: {\"type\":\"ping\"}\n\n", string(Ping()))
	e := &Error{Type: OverloadedError, Message: "The model is \"overloaded\"."}
	require.Equal(t, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"The model is \\\"overloaded\\\".\"}}\n\n", string(ErrorEvent(e)))
	events, err := parseSSE(ErrorEvent(nil))
	require.NoError(t, err)
	require.Len(t, events, 1)
}
