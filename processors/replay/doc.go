// Package replay rebuilds the processors' derived state from the event topics, checks
// the live state against the events, and repairs it. It replaces the seed's
// DataSyncManager and ConsistencyChecker.
//
// # Replay
//
// Run reads a range of the request, key-state and audit topics — from the beginning, a
// time or given offsets, up to the high watermarks read when it starts, a time, or the
// live ClickHouse consumer's committed offsets — directly from the partitions (a
// kafka-go Reader per partition, no consumer group, so the live consumers' offsets never
// move), and writes it with the live consumers' own code: consume.Decode, chsink.Sink,
// statesink.Writer. There is no second implementation of the rules.
//
// The writers get a fixed clock taken from the events (the newest event time of the
// range, or Options.Now), so which contributions are written depends on the events
// alone. Expiry is absolute and computed from event time (schemas.Keys): a key whose
// window ended between that clock and the real present is written with an expiry in
// the past, which Valkey applies by deleting it at once — exactly what the live state
// did when the window ended. So the state a replay leaves, read at any moment, equals
// the live state built from the same events, read at that moment.
//
// In place, a replay writes into the live prefix and database. That is safe because
// both sinks are idempotent: an event already applied (its Valkey applied mark) or
// stored (a ClickHouse row with its event id) is skipped, so an in-place replay adds
// exactly what is missing. It cannot correct what is wrong: a counter that is too high
// keeps its marks. For that, replay into fresh state and switch (Switch).
//
// # Fresh state and the switch
//
// A fresh replay writes under its own Valkey prefix ("<live>-replay-<id>:") and into its
// own ClickHouse database ("<db>_replay_<id>", migrated with chddl), which can be
// compared with the live state and then switched to. Switch brings the fresh state up
// to the topics' end, makes it live in one atomic step — a Lua script per Valkey node
// that deletes the live derived keys and renames the fresh ones into their place; one
// RENAME TABLE statement for ClickHouse — and replays in place what arrived meanwhile.
// A cancelled replay deletes its fresh state; a cancelled switch stops before the atomic
// step, or finishes the catch-up after it: nothing is ever half-switched.
//
// ClickHouse can also take only the event tables of a fresh replay (SwitchAttach):
// their partitions are attached to the live tables, which fires no materialized view,
// so a lost request_logs is restored, or a new column backfilled, without the rollups
// counting anything twice.
//
// # Check and repair
//
// Check compares the live Valkey state with statesink.Expected over the events the
// live Valkey consumer group has consumed, and reports per key what differs and why;
// Repair writes the recomputed values and records the repair as an AuditEvent.
//
// RUNBOOK.md says how far back state can be rebuilt with the topics' retention, and
// gives the commands for the usual incidents.
package replay
