// Package consume is the Kafka consumer-group loop every processor runs: it fetches
// records, decodes them into schemas events, cuts them into batches by size and time, hands
// each batch to a Sink, and commits the batch's offsets only after the Sink has written it.
//
// Delivery guarantee: at least once, with no loss. A record's offset is committed only
// after the Sink returned nil for the batch that held it (or, for a record that cannot be
// decoded, after it was written to the dead-letter topic). A Sink error keeps the batch
// and retries it with capped backoff; a crash leaves the batch uncommitted, so its records
// are delivered again. Sinks must therefore be idempotent on event_id (processors/chsink
// and processors/statesink are).
//
// Rebalances are fenced: a member finishes (or abandons) the batch it is writing and
// commits it before it rejoins the group, and the group hands the partitions to another
// member only after that (see Loop). Instances sharing partitions therefore never write
// the same records at the same time; only a crash or an abandoned write makes a record
// arrive twice.
//
// One process may run several loops, one per consumer group (gca-clickhouse,
// gca-valkey), each with its own Sink and offsets.
package consume

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Sink writes batches. Write must be idempotent: after an error, a crash or a rebalance
// the same events arrive again, possibly mixed with new ones and possibly twice within one
// batch. Write must not keep the batch, its slices or the events after it returns: the
// loop reuses them. Returning an error makes the loop retry the same batch.
type Sink interface {
	Write(ctx context.Context, b *Batch) error
}

// Batch is the decoded events of one cut, each type in fetch order (per partition, that
// is the order of the topic). Records that could not be decoded are not in it: they went
// to the dead-letter topic.
type Batch struct {
	Requests  []*schemas.RequestEvent
	KeyStates []*schemas.KeyStateEvent
	Audits    []*schemas.AuditEvent
	// Offsets is the range of offsets the batch covers in each topic partition,
	// dead-lettered records included.
	Offsets []PartitionRange
	// RequestOrigins, KeyStateOrigins and AuditOrigins say where each event was read,
	// index for index with Requests, KeyStates and Audits. Batches built by hand may
	// leave them empty: then nothing is known of where their events come from.
	RequestOrigins  []Origin
	KeyStateOrigins []Origin
	AuditOrigins    []Origin
	// Generation numbers the loop's partition assignments: it changes whenever the
	// loop starts reading its partitions from their committed offsets again (a
	// rebalance, a restart), so a sink can tell the records it may have seen before.
	Generation uint64

	// last holds the last message per partition: the offsets to commit.
	last []kafka.Message
	// dead holds the dead-letter records to write before the batch is committed.
	dead    []kafka.Message
	records int
}

// Origin is where an event was read.
type Origin struct {
	Topic     string
	Partition int
	Offset    int64
	// MaybeDuplicate is set when the producer marked the record as possibly written
	// to Kafka before (schemas.HeaderMaybeDuplicate).
	MaybeDuplicate bool
}

// PartitionRange is the first and last offset of a batch in one topic partition.
type PartitionRange struct {
	Topic     string
	Partition int
	First     int64
	Last      int64
}

// Len is the number of events in the batch (dead letters excluded).
func (b *Batch) Len() int { return len(b.Requests) + len(b.KeyStates) + len(b.Audits) }

// Records is the number of Kafka records the batch covers (dead letters included).
func (b *Batch) Records() int { return b.records }

// DeadLetters is the number of records of the batch bound for the dead-letter topic.
func (b *Batch) DeadLetters() int { return len(b.dead) }

// track records a fetched message's position.
func (b *Batch) track(m kafka.Message) {
	b.records++
	for i := range b.Offsets {
		r := &b.Offsets[i]
		if r.Topic == m.Topic && r.Partition == m.Partition {
			// After a rebalance a partition can be delivered again from its committed
			// offset: keep the widest range, commit the highest offset.
			r.First = min(r.First, m.Offset)
			if m.Offset > r.Last {
				r.Last = m.Offset
				b.last[i] = m
			}
			return
		}
	}
	b.Offsets = append(b.Offsets, PartitionRange{Topic: m.Topic, Partition: m.Partition, First: m.Offset, Last: m.Offset})
	b.last = append(b.last, m)
}

// reset empties the batch, keeping its capacity.
func (b *Batch) reset() {
	clear(b.Requests)
	clear(b.KeyStates)
	clear(b.Audits)
	clear(b.RequestOrigins)
	clear(b.KeyStateOrigins)
	clear(b.AuditOrigins)
	clear(b.last)
	clear(b.dead)
	b.Requests = b.Requests[:0]
	b.KeyStates = b.KeyStates[:0]
	b.Audits = b.Audits[:0]
	b.RequestOrigins = b.RequestOrigins[:0]
	b.KeyStateOrigins = b.KeyStateOrigins[:0]
	b.AuditOrigins = b.AuditOrigins[:0]
	b.Offsets = b.Offsets[:0]
	b.last = b.last[:0]
	b.dead = b.dead[:0]
	b.records = 0
}
