package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Audit actions this package records.
const (
	ActionReplaySwitch      = "replay_switch"
	ActionConsistencyRepair = schemas.SourceConsistencyFix // "consistency_repair"
)

// Auditor writes AuditEvents to the audit topic, as every other producer does: JSON
// value, the gca-type and gca-v headers, acknowledged by all replicas.
type Auditor struct {
	w        *kafka.Writer
	instance string
	now      func() time.Time
}

// NewAuditor returns an Auditor writing to topic; instance names this process in the
// events.
func NewAuditor(brokers []string, topic, instance string) *Auditor {
	return &Auditor{
		w: &kafka.Writer{
			Addr:         kafka.TCP(brokers...),
			Topic:        topic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			// kafka-go's default 1s batch timeout would delay the write for nothing.
			BatchTimeout: 2 * time.Millisecond,
			MaxAttempts:  5,
		},
		instance: instance,
		now:      time.Now,
	}
}

// Record writes one AuditEvent and returns it.
func (a *Auditor) Record(ctx context.Context, actor, action, target string, params map[string]string, result string) (*schemas.AuditEvent, error) {
	id, err := schemas.NewEventID()
	if err != nil {
		return nil, err
	}
	e := &schemas.AuditEvent{
		Type: schemas.TypeAudit, V: schemas.AuditVersion, EventID: id, TimeMs: a.now().UnixMilli(),
		Instance: a.instance, Actor: actor, Action: action, Target: target, Params: params, Result: result,
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("audit event: %w", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode audit event: %w", err)
	}
	msg := kafka.Message{Key: []byte(e.RecordKey()), Value: b, Headers: []kafka.Header{
		{Key: schemas.HeaderEventType, Value: []byte(schemas.TypeAudit)},
		{Key: schemas.HeaderEventVersion, Value: []byte(strconv.Itoa(schemas.AuditVersion))},
		// kafka-go retries a failed produce request itself (MaxAttempts), which can
		// append the record twice; audit events are rare, so each is checked.
		{Key: schemas.HeaderMaybeDuplicate, Value: []byte("1")},
	}}
	if err := a.w.WriteMessages(ctx, msg); err != nil {
		return nil, fmt.Errorf("write audit event %s to %s: %w", action, a.w.Topic, err)
	}
	return e, nil
}

// Close flushes and closes the writer.
func (a *Auditor) Close() error { return a.w.Close() }
