package consume

import (
	"fmt"
	"strconv"

	"github.com/bytedance/sonic"
	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Dead-letter reason classes, the values of the metric label "reason". The header
// carries the full error.
const (
	ReasonMalformed   = "malformed"    // not JSON, or JSON of the wrong shape
	ReasonInvalid     = "invalid"      // decoded, but violates the event's schema
	ReasonUnknownType = "unknown_type" // neither the gca-type header nor the JSON type is known
)

// maxReasonBytes bounds the reason header: a validation error can list many problems.
const maxReasonBytes = 1024

// decodeError is a record that cannot become an event.
type decodeError struct {
	class string
	err   error
}

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// decode turns a record into an event, routed by the gca-type header, or by the JSON
// "type" field when a producer did not set the header (Decode exports it).
//
// The event types and their validation are schemas'; the JSON is read with sonic in
// its encoding/json-compatible configuration instead of encoding/json (what
// schemas.DecodeRequest uses): the same struct tags and semantics for about a quarter of
// the CPU per event (5–6 µs against 21–27 µs on this machine, see BenchmarkDecode),
// which is most of the processors' own work per event. TestDecodeMatchesSchemas and
// FuzzDecodeMatchesSchemas hold it to schemas' decoders (goccy/go-json, tried first,
// resolves case-variant duplicate keys differently and was dropped).
func decode(m *kafka.Message) (ev any, err error) {
	defer func() {
		// A decoder bug must not take the processor down on one bad record.
		if p := recover(); p != nil {
			ev, err = nil, &decodeError{ReasonMalformed, fmt.Errorf("decode event: decoder panic: %v", p)}
		}
	}()
	typ := header(m, schemas.HeaderEventType)
	if typ == "" {
		var peek struct {
			Type string `json:"type"`
		}
		if err := unmarshal(m.Value, &peek); err != nil {
			return nil, &decodeError{ReasonMalformed, fmt.Errorf("read event type: %w", err)}
		}
		typ = peek.Type
	}
	switch typ {
	case schemas.TypeRequest:
		var e schemas.RequestEvent
		return decodeInto(m.Value, &e, "request", e.Validate, func() string { return e.EventID })
	case schemas.TypeKeyState:
		var e schemas.KeyStateEvent
		return decodeInto(m.Value, &e, "key state", e.Validate, func() string { return e.EventID })
	case schemas.TypeAudit:
		var e schemas.AuditEvent
		return decodeInto(m.Value, &e, "audit", e.Validate, func() string { return e.EventID })
	}
	return nil, &decodeError{ReasonUnknownType, fmt.Errorf("unknown event type %q", typ)}
}

// decodeInto unmarshals b into e and validates it, with schemas' error wording.
func decodeInto[E any](b []byte, e *E, kind string, validate func() error, id func() string) (any, error) {
	if err := unmarshal(b, e); err != nil {
		return nil, &decodeError{ReasonMalformed, fmt.Errorf("decode %s event: %w", kind, err)}
	}
	if err := validate(); err != nil {
		return nil, &decodeError{ReasonInvalid, fmt.Errorf("validate %s event %s: %w", kind, id(), err)}
	}
	return e, nil
}

// unmarshal is encoding/json's Unmarshal, faster; see decode.
func unmarshal(b []byte, v any) error { return sonic.ConfigStd.Unmarshal(b, v) }

func header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// deadLetter is the record written to the dead-letter topic for m: key, value, time and
// headers unchanged, plus the DLQ headers naming the reason and where m came from.
func deadLetter(m *kafka.Message, reason error, consumer string) kafka.Message {
	why := reason.Error()
	if len(why) > maxReasonBytes {
		why = why[:maxReasonBytes]
	}
	headers := make([]kafka.Header, 0, len(m.Headers)+5)
	headers = append(headers, m.Headers...)
	headers = append(headers,
		kafka.Header{Key: schemas.HeaderDLQReason, Value: []byte(why)},
		kafka.Header{Key: schemas.HeaderDLQTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: schemas.HeaderDLQPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: schemas.HeaderDLQOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
		kafka.Header{Key: schemas.HeaderDLQConsumer, Value: []byte(consumer)},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: headers, Time: m.Time}
}
