// Package chsink is the ClickHouse sink of the processors: it turns batches of events
// into rows of request_logs, key_state_log and audit_log (the DDL is in
// schemas/chddl), and ClickHouse's materialized views derive error_logs, system_stats and
// api_key_metrics from request_logs.
//
// # Idempotence
//
// Kafka delivers at least once, so a batch can hold events that are already stored (a
// batch written but not committed before a crash, a rebalance, a replay, a record the
// ingress produced twice) or the same event twice. ReplacingMergeTree on request_logs
// would collapse such rows eventually, but a materialized view fires on every inserted
// block: a redelivered event that reached the INSERT would be counted twice in
// system_stats and api_key_metrics for good. So Write drops, before inserting,
//
//  1. repeats within the batch (by event_id), and
//  2. events the table already holds: one SELECT per table and batch that looks the
//     events up by their full sorting key in an external table (see chddl.Lookup); it
//     reads only the granules that could hold them.
//
// The lookup costs about as much as the insert, so it covers only the events that can
// have an earlier copy:
//
//   - Redelivery within the group. A partition's records are written in offset order,
//     one atomic INSERT per table and batch, so what a previous owner (or this sink
//     before a failed write) stored of a partition is a prefix of what is delivered
//     again: the events from the committed offset up to where that owner got. In
//     each generation of the consumer loop (consume.Batch.Generation), the events of a
//     partition are looked up batch after batch until a lookup finds none of them
//     stored; from there on the partition is verified for that table and its events
//     go in unchecked. A failed Write forgets every verification, as it may have
//     stored part of its batch.
//   - Records produced twice. The ingress ships its spool again after a restart and
//     resends a batch after a failed produce request; those copies land at new
//     offsets, and it marks them (schemas.HeaderMaybeDuplicate): marked events are
//     always looked up.
//
// An event without an origin is always looked up: processors replay builds its batches
// by hand, without origins, as it writes into tables that may hold its events already
// (in place, or a catch-up after a switch).
//
// The remaining window: two writers that check and insert the same event at the same
// time. processors/consume fences rebalances (a member finishes and commits its batch
// before the partitions move), so this takes a write that outlives the fence: a batch
// abandoned after DrainTimeout whose INSERT still lands on the server, or a member the
// group evicted while it kept writing (a process stalled past the session timeout).
// (An event the ingress produced twice is marked and keeps its record key, so both
// copies reach the same writer, in one batch or in later ones, and are caught.) Then request_logs
// holds the event twice until a merge collapses it; analysts who count with `FINAL` or
// uniqExact(id) (the queries in queries/) see it once, as do error_logs
// (ReplacingMergeTree) and api_key_metrics' consecutive_failures (uniqExact), while the
// additive rollups (system_stats, api_key_metrics totals) count it twice. A day's rollup
// can be checked against `SELECT count() FROM request_logs FINAL` and rebuilt from the
// topics (processors replay).
//
// A second window: an event older than request_logs' retention is no longer found, so
// replaying it into the live tables counts it again in system_stats (kept longer).
// Replays beyond the retention go into fresh tables.
package chsink

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	chcolumn "github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// Conn is the part of a clickhouse-go native connection the sink uses.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// Sink writes batches to ClickHouse. It is not safe for concurrent use: one consumer
// loop owns it.
type Sink struct {
	conn    Conn
	db      string
	cluster bool
	lookups struct{ request, keyState, audit chddl.Lookup }
	m       *Metrics
	now     func() time.Time

	// generation is the consumer generation of the last batch; verified holds the
	// partitions whose events, in that generation, need no lookup any more.
	generation uint64
	verified   map[partitionTable]bool

	seen   map[string]struct{}
	from   []origin
	pick   []int
	found  map[partitionTable]bool
	reqs   []*schemas.RequestEvent
	states []*schemas.KeyStateEvent
	audits []*schemas.AuditEvent
	req    requestRows
	ks     keyStateRows
	au     auditRows
	lk     lookupRows
}

// lookupRows are the columns of a lookup's external table.
type lookupRows struct {
	id, a, b []string
	ts       []time.Time
}

// New returns a sink for the database and server version the schema was migrated for.
func New(conn Conn, v chddl.Version, opts chddl.Options, m *Metrics) *Sink {
	s := &Sink{
		conn:     conn,
		db:       "`" + opts.Database + "`",
		cluster:  opts.Cluster != "",
		m:        m,
		now:      time.Now,
		seen:     map[string]struct{}{},
		found:    map[partitionTable]bool{},
		verified: map[partitionTable]bool{},
	}
	s.lookups.request = chddl.RequestLookup(v, opts)
	s.lookups.keyState = chddl.KeyStateLookup(v, opts)
	s.lookups.audit = chddl.AuditLookup(v, opts)
	return s
}

// Write inserts the batch's events that are not stored yet. It is safe to call again
// with the same batch after an error: what the failed call inserted is found and
// skipped.
func (s *Sink) Write(ctx context.Context, b *consume.Batch) (err error) {
	if b.Generation != s.generation {
		clear(s.verified)
		s.generation = b.Generation
	}
	defer func() {
		if err != nil {
			// Part of the batch may be stored: check it all again.
			clear(s.verified)
		}
	}()
	if s.cluster {
		// The Distributed tables must forward each insert before Write returns, or the
		// next lookup could miss rows still queued on this node.
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	}
	if err := s.writeRequests(ctx, b.Requests, b.RequestOrigins); err != nil {
		return err
	}
	if err := s.writeKeyStates(ctx, b.KeyStates, b.KeyStateOrigins); err != nil {
		return err
	}
	return s.writeAudits(ctx, b.Audits, b.AuditOrigins)
}

func (s *Sink) writeRequests(ctx context.Context, events []*schemas.RequestEvent, origins []consume.Origin) error {
	const table = "request_logs"
	if len(events) == 0 {
		return nil
	}
	fresh, from := unique(s, events, origins, s.reqs[:0], s.from[:0], func(e *schemas.RequestEvent) string { return e.EventID })
	s.lk.reset()
	for _, i := range s.plan(table, from) {
		e := fresh[i]
		s.lk.id = append(s.lk.id, e.EventID)
		s.lk.ts = append(s.lk.ts, eventTime(e.TimeMs))
		s.lk.a = append(s.lk.a, e.KeyHash)
		s.lk.b = append(s.lk.b, e.Model)
	}
	stored, err := s.lookup(ctx, table, s.lookups.request, []any{s.lk.id, s.lk.ts, s.lk.a, s.lk.b})
	if err != nil {
		return err
	}
	s.verify(table, from, func(i int) bool { _, ok := stored[fresh[i].EventID]; return ok })
	s.req.reset()
	for _, e := range fresh {
		if _, ok := stored[e.EventID]; !ok {
			s.req.add(e)
		}
	}
	s.reqs = clearTail(fresh)
	s.m.duplicates.WithLabelValues(table, "batch").Add(float64(len(events) - len(fresh)))
	s.m.duplicates.WithLabelValues(table, "stored").Add(float64(len(fresh) - s.req.len()))
	return s.insert(ctx, table, s.req.columns(), s.req.len())
}

func (s *Sink) writeKeyStates(ctx context.Context, events []*schemas.KeyStateEvent, origins []consume.Origin) error {
	const table = "key_state_log"
	if len(events) == 0 {
		return nil
	}
	fresh, from := unique(s, events, origins, s.states[:0], s.from[:0], func(e *schemas.KeyStateEvent) string { return e.EventID })
	s.lk.reset()
	for _, i := range s.plan(table, from) {
		e := fresh[i]
		s.lk.id = append(s.lk.id, e.EventID)
		s.lk.ts = append(s.lk.ts, eventTime(e.TimeMs))
		s.lk.a = append(s.lk.a, e.Project)
	}
	stored, err := s.lookup(ctx, table, s.lookups.keyState, []any{s.lk.id, s.lk.ts, s.lk.a})
	if err != nil {
		return err
	}
	s.verify(table, from, func(i int) bool { _, ok := stored[fresh[i].EventID]; return ok })
	s.ks.reset()
	for _, e := range fresh {
		if _, ok := stored[e.EventID]; !ok {
			s.ks.add(e)
		}
	}
	s.states = clearTail(fresh)
	s.m.duplicates.WithLabelValues(table, "batch").Add(float64(len(events) - len(fresh)))
	s.m.duplicates.WithLabelValues(table, "stored").Add(float64(len(fresh) - s.ks.len()))
	return s.insert(ctx, table, s.ks.columns(), s.ks.len())
}

func (s *Sink) writeAudits(ctx context.Context, events []*schemas.AuditEvent, origins []consume.Origin) error {
	const table = "audit_log"
	if len(events) == 0 {
		return nil
	}
	fresh, from := unique(s, events, origins, s.audits[:0], s.from[:0], func(e *schemas.AuditEvent) string { return e.EventID })
	s.lk.reset()
	for _, i := range s.plan(table, from) {
		e := fresh[i]
		s.lk.id = append(s.lk.id, e.EventID)
		s.lk.ts = append(s.lk.ts, eventTime(e.TimeMs))
	}
	stored, err := s.lookup(ctx, table, s.lookups.audit, []any{s.lk.id, s.lk.ts})
	if err != nil {
		return err
	}
	s.verify(table, from, func(i int) bool { _, ok := stored[fresh[i].EventID]; return ok })
	s.au.reset()
	for _, e := range fresh {
		if _, ok := stored[e.EventID]; !ok {
			s.au.add(e)
		}
	}
	s.audits = clearTail(fresh)
	s.m.duplicates.WithLabelValues(table, "batch").Add(float64(len(events) - len(fresh)))
	s.m.duplicates.WithLabelValues(table, "stored").Add(float64(len(fresh) - s.au.len()))
	return s.insert(ctx, table, s.au.columns(), s.au.len())
}

// unique appends to dst the events of src whose id was not seen earlier in src, and to
// from their origins (an unknown origin when origins does not match src).
func unique[E any](s *Sink, src []E, origins []consume.Origin, dst []E, from []origin, id func(E) string) ([]E, []origin) {
	clear(s.seen)
	known := len(origins) == len(src)
	for i, e := range src {
		k := id(e)
		if _, dup := s.seen[k]; dup {
			continue
		}
		s.seen[k] = struct{}{}
		dst = append(dst, e)
		if known {
			from = append(from, origin{Origin: origins[i], known: true})
		} else {
			from = append(from, origin{})
		}
	}
	s.from = from
	return dst, from
}

// origin is where a fresh event was read, if known, and why it is looked up.
type origin struct {
	consume.Origin
	known bool
	why   string // "" when it is not looked up
}

// partitionTable is a partition whose events go to a table.
type partitionTable struct {
	topic     string
	partition int
	table     string
}

// Reasons to look an event up (the why label of gca_processor_dedupe_events_total).
const (
	whyUnknown    = "unknown"
	whyMarked     = "maybe_duplicate"
	whyUnverified = "unverified"
	whySkipped    = "skipped"
)

// plan decides which fresh events to look up and returns their indexes; see the
// package doc.
func (s *Sink) plan(table string, from []origin) []int {
	s.pick = s.pick[:0]
	var unknown, marked, unverified int
	for i := range from {
		o := &from[i]
		switch {
		case !o.known:
			o.why = whyUnknown
			unknown++
		case o.MaybeDuplicate:
			o.why = whyMarked
			marked++
		case !s.verified[partitionTable{o.Topic, o.Partition, table}]:
			o.why = whyUnverified
			unverified++
		default:
			continue
		}
		s.pick = append(s.pick, i)
	}
	// One metric update per reason and batch, not per event.
	for why, n := range map[string]int{whyUnknown: unknown, whyMarked: marked, whyUnverified: unverified, whySkipped: len(from) - len(s.pick)} {
		if n > 0 {
			s.m.lookedUp.WithLabelValues(table, why).Add(float64(n))
		}
	}
	return s.pick
}

// verify marks verified, for table, the partitions whose unverified events of this
// batch were looked up and none found stored: what an earlier writer stored of a
// partition is a prefix of it, so nothing after them can be stored either.
func (s *Sink) verify(table string, from []origin, stored func(i int) bool) {
	clear(s.found)
	for _, i := range s.pick {
		o := from[i]
		if o.why != whyUnverified {
			continue
		}
		k := partitionTable{o.Topic, o.Partition, table}
		s.found[k] = s.found[k] || stored(i)
	}
	for k, found := range s.found {
		if !found {
			s.verified[k] = true
		}
	}
}

// clearTail drops the references a reused slice holds, so decoded events can be freed.
func clearTail[E any](s []E) []E {
	clear(s)
	return s[:0]
}

func (l *lookupRows) reset() {
	l.id, l.a, l.b, l.ts = l.id[:0], l.a[:0], l.b[:0], l.ts[:0]
}

// lookup returns the ids of the batch that table already holds. cols are the external
// table's columns in the order of lk.Columns; the first is the id, the second the time.
func (s *Sink) lookup(ctx context.Context, table string, lk chddl.Lookup, cols []any) (map[string]struct{}, error) {
	if len(cols[0].([]string)) == 0 {
		return nil, nil // nothing to look up
	}
	start := s.now()
	defs := make([]func(*ext.Table) error, len(lk.Columns))
	for i, c := range lk.Columns {
		defs[i] = ext.Column(c.Name, chcolumn.Type(c.Type))
	}
	tbl, err := ext.NewTable(chddl.BatchTable, defs...)
	if err != nil {
		return nil, fmt.Errorf("dedupe lookup in %s: %w", table, err)
	}
	for i, data := range cols {
		if _, err := tbl.Block().Columns[i].Append(data); err != nil {
			return nil, fmt.Errorf("dedupe lookup in %s: column %s: %w", table, lk.Columns[i].Name, err)
		}
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, t := range cols[1].([]time.Time) {
		lo, hi = min(lo, t.Unix()), max(hi, t.Unix())
	}
	query := fmt.Sprintf(lk.Query, lo, hi+1)
	rows, err := s.conn.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), query)
	if err != nil {
		return nil, fmt.Errorf("dedupe lookup in %s: %w", table, err)
	}
	defer rows.Close()
	var stored map[string]struct{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("dedupe lookup in %s: scan: %w", table, err)
		}
		if stored == nil {
			stored = map[string]struct{}{}
		}
		stored[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dedupe lookup in %s: %w", table, err)
	}
	s.m.lookupSeconds.WithLabelValues(table).Observe(s.now().Sub(start).Seconds())
	return stored, nil
}

// insert sends the rows as one block (one INSERT, so the materialized views see each
// event once), naming every column: never INSERT ... VALUES, which hangs on 18.16 with
// clickhouse-go.
func (s *Sink) insert(ctx context.Context, table string, cols []column, n int) error {
	if n == 0 {
		return nil
	}
	start := s.now()
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".`"+table+"` ("+names(cols)+")")
	if err != nil {
		return fmt.Errorf("prepare insert into %s: %w", table, err)
	}
	for i, c := range cols {
		if err := b.Column(i).Append(c.data); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert into %s: column %s: %w", table, c.name, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", n, table, err)
	}
	s.m.insertSeconds.WithLabelValues(table).Observe(s.now().Sub(start).Seconds())
	s.m.rows.WithLabelValues(table).Add(float64(n))
	return nil
}
