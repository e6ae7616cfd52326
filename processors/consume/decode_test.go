package consume

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/schemas"
)

func request() *schemas.RequestEvent {
	return &schemas.RequestEvent{Type: schemas.TypeRequest, V: 1, EventID: "e-1", TimeMs: 1_764_000_000_000,
		ClientType: schemas.ClientOpenAI, Method: "POST", Endpoint: "/v1/chat/completions", Model: "gemini-2.5-flash", Status: 200}
}

func record(t *testing.T, typ string, v any) kafka.Message {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	m := kafka.Message{Topic: "requests", Partition: 3, Offset: 41, Key: []byte("k"), Value: b}
	if typ != "" {
		m.Headers = []kafka.Header{{Key: schemas.HeaderEventType, Value: []byte(typ)}}
	}
	return m
}

func TestDecode(t *testing.T) {
	ks := &schemas.KeyStateEvent{Type: schemas.TypeKeyState, V: 1, EventID: "s-1", TimeMs: 1_764_000_000_000,
		Kind: schemas.KindDisable, KeyHash: "abc", Project: "p1"}
	audit := &schemas.AuditEvent{Type: schemas.TypeAudit, V: 1, EventID: "a-1", TimeMs: 1_764_000_000_000, Action: "replay_switch"}
	invalid := request()
	invalid.Status = 700
	for _, tc := range []struct {
		name  string
		msg   kafka.Message
		want  any    // the decoded event
		class string // or the dead-letter class
		why   string
	}{
		// The producer's header routes the record without looking at the body.
		{name: "request by header", msg: record(t, schemas.TypeRequest, request()), want: request()},
		{name: "key state by header", msg: record(t, schemas.TypeKeyState, ks), want: ks},
		{name: "audit by header", msg: record(t, schemas.TypeAudit, audit), want: audit},
		// A producer that set no header (an older ingress, a hand-written record) is
		// routed by the JSON type.
		{name: "request by JSON type", msg: record(t, "", request()), want: request()},
		{name: "key state by JSON type", msg: record(t, "", ks), want: ks},
		{name: "not JSON", msg: kafka.Message{Value: []byte("\x00\x01garbage")}, class: ReasonMalformed, why: "read event type"},
		{name: "truncated JSON with header", msg: kafka.Message{Value: []byte(`{"type":"request","v":1,"event_id":`),
			Headers: []kafka.Header{{Key: schemas.HeaderEventType, Value: []byte("request")}}}, class: ReasonMalformed, why: "decode request event"},
		{name: "wrong JSON types", msg: kafka.Message{Value: []byte(`{"type":"request","v":"one"}`)}, class: ReasonMalformed, why: "decode request event"},
		{name: "schema violation", msg: record(t, schemas.TypeRequest, invalid), class: ReasonInvalid, why: "status 700 out of range"},
		// A key state event under a request header fails the request schema.
		{name: "header and body disagree", msg: record(t, schemas.TypeRequest, ks), class: ReasonInvalid, why: `type "key_state" is not "request"`},
		{name: "unknown type", msg: record(t, "", map[string]any{"type": "mystery"}), class: ReasonUnknownType, why: `unknown event type "mystery"`},
		{name: "unknown header", msg: record(t, "billing", request()), class: ReasonUnknownType, why: `unknown event type "billing"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := decode(&tc.msg)
			if tc.class == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, ev)
				return
			}
			var de *decodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.class, de.class)
			require.ErrorContains(t, err, tc.why)
		})
	}
}

func TestDeadLetterKeepsTheRecord(t *testing.T) {
	m := record(t, schemas.TypeRequest, request())
	m.Headers = append(m.Headers, kafka.Header{Key: "traceparent", Value: []byte("00-abc-01")})
	dl := deadLetter(&m, errString(strings.Repeat("x", 5000)), "gca-clickhouse@host-1")
	require.Equal(t, m.Key, dl.Key)
	require.Equal(t, m.Value, dl.Value)
	require.Empty(t, dl.Topic, "the writer sets the dead-letter topic")
	got := map[string]string{}
	for _, h := range dl.Headers {
		got[h.Key] = string(h.Value)
	}
	require.Equal(t, map[string]string{
		schemas.HeaderEventType:    "request",
		"traceparent":              "00-abc-01",
		schemas.HeaderDLQReason:    strings.Repeat("x", maxReasonBytes),
		schemas.HeaderDLQTopic:     "requests",
		schemas.HeaderDLQPartition: "3",
		schemas.HeaderDLQOffset:    "41",
		schemas.HeaderDLQConsumer:  "gca-clickhouse@host-1",
	}, got)
}

type errString string

func (e errString) Error() string { return string(e) }
