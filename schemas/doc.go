// Package schemas owns the wire contract between the ingress and the processors: the
// versioned event types and their JSON encoding, the Kafka topic names and record keys,
// the Valkey key layout the processors write and the ingress reads, the quota windows
// (minute and Pacific day), and the ClickHouse DDL (in the subpackage chddl).
//
// Every event carries a unique event_id. Kafka delivery is at least once (kafka-go has no
// idempotent producer), so every sink deduplicates on event_id: ClickHouse drops rows
// whose event_id it already holds before they reach the materialized views, and Valkey
// marks each (event, project) it has applied.
package schemas
