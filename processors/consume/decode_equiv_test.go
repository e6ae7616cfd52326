package consume

import (
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/geminicodeapi/gca/processors/internal/chtest"
	"github.com/geminicodeapi/gca/schemas"
)

// schemasDecode is decode done with schemas' own decoders (encoding/json).
func schemasDecode(typ string, b []byte) (any, error) {
	switch typ {
	case schemas.TypeRequest:
		return schemas.DecodeRequest(b)
	case schemas.TypeKeyState:
		return schemas.DecodeKeyState(b)
	case schemas.TypeAudit:
		return schemas.DecodeAudit(b)
	}
	return nil, nil
}

func generated(t testing.TB) []kafka.Message {
	g := chtest.NewGen(9, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	var out []kafka.Message
	for _, e := range g.Requests(2000, time.Hour) {
		out = append(out, chtest.Record(t, "r", e, false))
	}
	for _, e := range g.KeyStates(300, time.Hour) {
		out = append(out, chtest.Record(t, "k", e, false))
	}
	for _, e := range g.Audits(50, time.Hour) {
		out = append(out, chtest.Record(t, "a", e, false))
	}
	return out
}

// The fast decoder gives exactly what schemas' decoders give.
func TestDecodeMatchesSchemas(t *testing.T) {
	for _, m := range generated(t) {
		got, err := decode(&m)
		require.NoError(t, err)
		want, err := schemasDecode(header(&m, schemas.HeaderEventType), m.Value)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
}

// FuzzDecodeMatchesSchemas: for any bytes, the fast decoder accepts exactly what
// schemas' decoders accept, with the same result, and never panics.
func FuzzDecodeMatchesSchemas(f *testing.F) {
	for i, m := range generated(f) {
		if i%50 == 0 {
			f.Add(header(&m, schemas.HeaderEventType), m.Value)
		}
	}
	f.Add("request", []byte(`{"type":"request","v":1,"event_id":"e","ts_ms":1764000000000,"client_type":"openai","status":200,"EVENT_ID":"x"}`))
	f.Add("request", []byte(`{"type":"request","v":1,"event_id":"e","ts_ms":1.764e12,"client_type":"openai"}`))
	f.Add("audit", []byte(`{"type":"audit","event_id":"a","ts_ms":1764000000000,"action":"x","params":{"k":"\ud800"}}`))
	f.Fuzz(func(t *testing.T, typ string, b []byte) {
		if typ != schemas.TypeRequest && typ != schemas.TypeKeyState && typ != schemas.TypeAudit {
			return
		}
		m := kafka.Message{Value: b, Headers: []kafka.Header{{Key: schemas.HeaderEventType, Value: []byte(typ)}}}
		got, gotErr := decode(&m)
		want, wantErr := schemasDecode(typ, b)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("fast decoder error %v, schemas error %v for %q", gotErr, wantErr, b)
		}
		if wantErr == nil {
			require.Equal(t, want, got)
		}
	})
}

// BenchmarkDecode compares schemas' decoder (encoding/json) with the loop's, in CPU
// time per event: wall time on a shared machine says little.
func BenchmarkDecode(b *testing.B) {
	msgs := generated(b)[:2000] // request events
	for _, tc := range []struct {
		name string
		f    func(m *kafka.Message) error
	}{
		{"schemas", func(m *kafka.Message) error { _, err := schemas.DecodeRequest(m.Value); return err }},
		{"loop", func(m *kafka.Message) error { _, err := decode(m); return err }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				if err := tc.f(&msgs[i%len(msgs)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/event")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
