package consume

import "github.com/segmentio/kafka-go"

// Decode turns a record into an event — *schemas.RequestEvent, *schemas.KeyStateEvent or
// *schemas.AuditEvent — with the routing and validation the loop applies. It is for
// readers that consume partitions outside a consumer group (processors/replay), so that
// they accept and reject exactly the records the live consumers do. The error is the
// reason the loop would dead-letter the record.
func Decode(m *kafka.Message) (any, error) { return decode(m) }
