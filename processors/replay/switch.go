package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SwitchMode says how ClickHouse takes a fresh replay's tables.
type SwitchMode string

const (
	// SwitchSwap replaces every live data table by the fresh one (RENAME TABLE), then
	// catches up in place. Valkey always switches this way.
	SwitchSwap SwitchMode = "swap"
	// SwitchAttach copies the partitions of the fresh event tables named in
	// AttachTables into the live ones (ATTACH PARTITION ... FROM, which fires no
	// materialized view) and leaves every other table alone: what restores a lost
	// request_logs, or backfills a new column, without counting anything twice in the
	// rollups. The replay must have ended at the live consumer's committed offsets
	// (Options.ToCommitted).
	SwitchAttach SwitchMode = "attach"
)

// SwitchOptions configure Switch. The embedded Options name the replay (ID), the
// targets to switch and the clients; the range fields are ignored: the replay's Meta
// says where it ended.
type SwitchOptions struct {
	Options
	Mode SwitchMode
	// AttachTables are the tables SwitchAttach copies (default request_logs).
	AttachTables []string
	// WaitLive bounds the wait for the live ClickHouse consumer to reach the replay's
	// end before a ClickHouse switch (default 2m).
	WaitLive time.Duration
	// Offline switches Valkey project by project instead of in one script per node:
	// no single step holds Valkey for long, but the processors' Valkey consumer must be
	// stopped meanwhile (Switch refuses while its group ValkeyGroup has a member).
	Offline bool
	// Auditor, when set, records the switch on the audit topic.
	Auditor *Auditor
	Actor   string
}

// SwitchStats is what a switch did.
type SwitchStats struct {
	ID string
	// PreCatchUp is what was replayed into the fresh state before switching (events
	// after the replay's end); CatchUp what was replayed in place after it.
	PreCatchUp, CatchUp Stats
	// ValkeyDeleted live keys were replaced by ValkeyMoved fresh ones.
	ValkeyDeleted, ValkeyMoved int64
	// Tables swapped, and the database the old live tables went to.
	Tables   []string
	Replaced string
	// Attached counts partitions per table.
	Attached map[string]int
	Took     time.Duration
}

// maxCatchUpPasses bounds the passes that bring the fresh state close to the live one
// before a switch.
const maxCatchUpPasses = 5

// Switch makes a completed fresh replay the live state.
//
// Valkey: the fresh state is brought up to the topics' end (in passes, until a pass
// finds little new), then luaSwap replaces the live derived keys by the fresh ones in
// one atomic step per node, then the events that arrived since are replayed in place —
// their applied marks went with the old live state, so each counts once. The in-place
// catch-up runs to completion even when ctx is cancelled (the live state lacks those
// events until it ends); it is the only step after the swap.
//
// ClickHouse (SwitchSwap): the fresh tables are brought up to the end likewise; Switch
// waits until the live ClickHouse consumer has committed at least as far (so that no
// batch it writes later holds an event the fresh tables already have), renames the
// tables (swapTables), and replays in place what the live consumer committed before
// the rename into the old tables. SwitchAttach: see the constant.
//
// Before the atomic step, cancelling ctx leaves the live state untouched and the
// fresh state ready for another Switch.
func Switch(ctx context.Context, so SwitchOptions) (SwitchStats, error) {
	started := time.Now()
	so.applyDefaults(started)
	if so.Mode == "" {
		so.Mode = SwitchSwap
	}
	if len(so.AttachTables) == 0 {
		so.AttachTables = []string{"request_logs"}
	}
	if so.WaitLive <= 0 {
		so.WaitLive = 2 * time.Minute
	}
	if so.Actor == "" {
		so.Actor = "processors replay"
	}
	st := SwitchStats{ID: so.ID, Attached: map[string]int{}}
	if err := so.validateSwitch(); err != nil {
		return st, err
	}
	s := &switcher{so: &so, log: so.Logger.With("replay", so.ID), broker: newBroker(so.Brokers)}
	if so.Target.Has(TargetValkey) {
		if err := s.valkey(ctx, &st); err != nil {
			return st, err
		}
	}
	if so.Target.Has(TargetClickHouse) {
		var err error
		if so.Mode == SwitchAttach {
			err = s.attach(ctx, &st)
		} else {
			err = s.clickhouse(ctx, &st)
		}
		if err != nil {
			return st, err
		}
	}
	st.Took = time.Since(started)
	return st, nil
}

func (so *SwitchOptions) validateSwitch() error {
	var errs []error
	if !idPattern.MatchString(so.ID) {
		errs = append(errs, fmt.Errorf("id %q must match %s", so.ID, idPattern))
	}
	if so.Target == 0 || so.Target&^TargetBoth != 0 {
		errs = append(errs, fmt.Errorf("target %s: want valkey, clickhouse or both", so.Target))
	}
	if so.Target.Has(TargetValkey) {
		if so.Valkey == nil {
			errs = append(errs, errors.New("no valkey client"))
		}
		errs = append(errs, checkPrefixes(so.LivePrefix, so.FreshPrefix))
		if so.Offline && so.ValkeyGroup == "" {
			errs = append(errs, errors.New("offline switch: no valkey consumer group to check"))
		}
	}
	if so.Target.Has(TargetClickHouse) {
		if so.ClickHouse == nil {
			errs = append(errs, errors.New("no clickhouse connection"))
		}
		if so.Schema.Cluster != "" {
			errs = append(errs, errors.New("a ClickHouse cluster cannot be switched by rename or attach here: point GCA_CLICKHOUSE_DATABASE at the fresh database instead (see RUNBOOK.md)"))
		}
		if so.ClickHouseGroup == "" {
			errs = append(errs, errors.New("no clickhouse consumer group"))
		}
		switch so.Mode {
		case SwitchSwap:
		case SwitchAttach:
			for _, t := range so.AttachTables {
				if !slices.Contains(attachable, t) {
					errs = append(errs, fmt.Errorf("attach %s: only the event tables %v can be attached (the others are rollups the live views already hold)", t, attachable))
				}
			}
		default:
			errs = append(errs, fmt.Errorf("switch mode %q: want swap or attach", so.Mode))
		}
	}
	if len(so.Brokers) == 0 {
		errs = append(errs, errors.New("no kafka brokers"))
	}
	return errors.Join(errs...)
}

type switcher struct {
	so     *SwitchOptions
	log    *slog.Logger
	broker broker
}

// topicsOf are the topics a target's state is made of, in replay order.
func (s *switcher) topicsOf(t Target) []string {
	ts := []string{s.so.Topics.Requests, s.so.Topics.KeyState}
	if t == TargetClickHouse {
		ts = append(ts, s.so.Topics.Audit)
	}
	return ts
}

// spansBetween returns the records after from up to to, grouped by topic in order.
func spansBetween(topics []string, parts map[string][]int, from, to Offsets) ([][]span, int64) {
	var out [][]span
	var n int64
	for _, t := range topics {
		var ts []span
		for _, p := range parts[t] {
			a, _ := from.Get(t, p)
			b, ok := to.Get(t, p)
			if !ok {
				b = a
			}
			sp := span{Topic: t, Partition: p, Start: a, End: max(a, b)}
			n += sp.records()
			ts = append(ts, sp)
		}
		out = append(out, ts)
	}
	return out, n
}

// catchUp replays what lies between meta.End and the high watermarks into the sinks
// newSinks builds, pass after pass until enough says the last pass was enough (or
// maxPasses), and advances meta.End. enough gets the pass's stats and how many
// key-state records it read.
func (s *switcher) catchUp(ctx context.Context, phase string, target Target, m *Meta, newSinks func(clock time.Time) (sinks, error),
	st *Stats, maxPasses int, enough func(pass Stats, keyStates int64) bool) error {
	topics := s.topicsOf(target)
	parts, err := s.broker.partitions(ctx, topics...)
	if err != nil {
		return err
	}
	for range maxPasses {
		hw, err := s.broker.highWatermarks(ctx, parts)
		if err != nil {
			return err
		}
		spans, n := spansBetween(topics, parts, m.End, hw)
		if n == 0 {
			return nil
		}
		var keyStates int64
		for _, sp := range spans[1] {
			keyStates += sp.records()
		}
		var pass Stats
		if err := s.applyRange(ctx, phase, spans, newSinks, &pass); err != nil {
			return err
		}
		add(st, pass)
		for t, ps := range hw {
			for p, off := range ps {
				m.End.Set(t, p, off)
			}
		}
		if enough(pass, keyStates) {
			return nil
		}
	}
	return nil
}

// quick ends the catch-up before a switch once a pass takes under a second: what is
// left is caught up after the switch.
func quick(pass Stats, _ int64) bool { return pass.Duration < time.Second }

// noKeyStates ends the catch-up after a switch once a pass read no key-state record.
// Until then, the live consumer may have applied a key-state event newer than this
// pass's range before the pass applied older events of the same project; the next pass
// re-applies the newer one, and re-applying a suffix in order ends in the right state
// (statesink's key-state ops are overwrites, maxima and deletes). Request events need
// no such care: their applied marks make the order irrelevant.
func noKeyStates(_ Stats, keyStates int64) bool { return keyStates == 0 }

func add(st *Stats, pass Stats) {
	st.Records += pass.Records
	st.Events += pass.Events
	st.Requests += pass.Requests
	st.KeyStates += pass.KeyStates
	st.Audits += pass.Audits
	st.Rejected += pass.Rejected
	st.Duration += pass.Duration
	st.WriteTime += pass.WriteTime
	st.Clock = pass.Clock
}

// applyRange replays spans into the sinks newSinks builds with the spans' clock.
func (s *switcher) applyRange(ctx context.Context, phase string, spans [][]span, newSinks func(clock time.Time) (sinks, error), st *Stats) error {
	var all []span
	for _, ts := range spans {
		all = append(all, ts...)
	}
	clock, err := (source{brokers: s.so.Brokers, log: s.so.Logger}).newest(ctx, all)
	if err != nil {
		return err
	}
	if now := time.Now(); clock.IsZero() || clock.After(now) {
		clock = now // as in Run
	}
	sk, err := newSinks(clock)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := (applier{opts: &s.so.Options, log: s.so.Logger, sinks: sk}).apply(ctx, phase, spans, st); err != nil {
		return err
	}
	st.Duration = time.Since(start)
	st.Clock = clock
	return nil
}

// afterSwap is the context of the in-place catch-up: the switch already happened, so
// an interrupt must not leave the live state without the newest events.
func afterSwap(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
}

func (s *switcher) valkey(ctx context.Context, st *SwitchStats) error {
	o := s.so
	m, err := loadMeta(ctx, &o.Options, TargetValkey)
	if err != nil {
		return err
	}
	fresh := func(clock time.Time) (sinks, error) {
		return sinks{vk: stateWriter(o.Valkey, o.FreshPrefix, clock, o.Logger)}, nil
	}
	if err := s.catchUp(ctx, "catch-up (fresh valkey)", TargetValkey, &m, fresh, &st.PreCatchUp, maxCatchUpPasses, quick); err != nil {
		return fmt.Errorf("bring replay %s up to date before the switch (nothing switched): %w", o.ID, err)
	}
	if err := saveMeta(ctx, &o.Options, Meta{ID: m.ID, Target: m.Target, Complete: true, ClockMs: m.ClockMs, Started: m.Started,
		Finished: time.Now().UTC(), Topics: m.Topics, End: m.End, Records: m.Records, Events: m.Events,
		LivePrefix: m.LivePrefix, FreshPrefix: o.FreshPrefix}); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("switch of replay %s cancelled before the swap; nothing switched: %w", o.ID, err)
	}
	swap := swapValkey
	if o.Offline {
		n, err := s.broker.members(ctx, o.ValkeyGroup)
		if err != nil {
			return fmt.Errorf("offline switch of replay %s (nothing switched): %w", o.ID, err)
		}
		if n > 0 {
			return fmt.Errorf("offline switch of replay %s (nothing switched): the valkey consumer group %s has %d members; stop the processors first, or switch without -offline", o.ID, o.ValkeyGroup, n)
		}
		swap = swapValkeyByProject
	}
	deleted, moved, err := swap(ctx, o.Valkey, o.LivePrefix, o.FreshPrefix)
	st.ValkeyDeleted, st.ValkeyMoved = deleted, moved
	if err != nil {
		return err
	}
	s.log.Info("valkey switched", "deleted", deleted, "moved", moved, "from", o.FreshPrefix, "to", o.LivePrefix)
	actx, cancel := afterSwap(ctx)
	defer cancel()
	live := func(clock time.Time) (sinks, error) {
		return sinks{vk: stateWriter(o.Valkey, o.LivePrefix, clock, o.Logger)}, nil
	}
	resume := m.End.Clone()
	if err := s.catchUp(actx, "catch-up (live valkey)", TargetValkey, &m, live, &st.CatchUp, 20, noKeyStates); err != nil {
		return fmt.Errorf("valkey was switched to replay %s, but the catch-up failed; finish it with `processors replay -target valkey -into inplace%s`: %w",
			o.ID, offsetFlags(resume), err)
	}
	if _, err := deleteKeys(actx, o.Valkey, o.FreshPrefix); err != nil {
		return fmt.Errorf("remove what is left of %s: %w", o.FreshPrefix, err)
	}
	s.audit(actx, "valkey:"+o.LivePrefix, map[string]string{
		"id": o.ID, "from": o.FreshPrefix, "deleted": strconv.FormatInt(deleted, 10), "moved": strconv.FormatInt(moved, 10),
		"catch_up_events": strconv.FormatInt(st.CatchUp.Events, 10), "resumed_at": resume.String(),
	})
	return nil
}

// offsetFlags renders offsets as -offsets flags for a resume command.
func offsetFlags(o Offsets) string {
	var b strings.Builder
	for _, part := range strings.Fields(o.String()) {
		b.WriteString(" -offsets " + part)
	}
	return b.String()
}

// waitLive waits until the live ClickHouse consumer has committed at least end.
// ok is false when the group has never committed (no live consumer writes).
func (s *switcher) waitLive(ctx context.Context, parts map[string][]int, end Offsets) (bool, error) {
	deadline := time.Now().Add(s.so.WaitLive)
	for {
		c, err := s.broker.committed(ctx, s.so.ClickHouseGroup, parts)
		if errors.Is(err, ErrNoCommits) {
			return false, nil
		}
		if err != nil {
			return true, err
		}
		ok, behind := c.AtLeast(end)
		if ok {
			return true, nil
		}
		if time.Now().After(deadline) {
			return true, fmt.Errorf("the live clickhouse consumer (group %s) has not reached the replay's end after %s (%s): is it running?", s.so.ClickHouseGroup, s.so.WaitLive, behind)
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *switcher) clickhouse(ctx context.Context, st *SwitchStats) error {
	o := s.so
	m, err := loadMeta(ctx, &o.Options, TargetClickHouse)
	if err != nil {
		return err
	}
	freshDB := o.Schema
	freshDB.Database = FreshDatabase(o.Schema.Database, o.ID)
	fresh := func(time.Time) (sinks, error) {
		sk, err := tableSink(ctx, o.ClickHouse, freshDB)
		return sinks{ch: sk}, err
	}
	if err := s.catchUp(ctx, "catch-up (fresh clickhouse)", TargetClickHouse, &m, fresh, &st.PreCatchUp, maxCatchUpPasses, quick); err != nil {
		return fmt.Errorf("bring replay %s up to date before the switch (nothing switched): %w", o.ID, err)
	}
	topics := s.topicsOf(TargetClickHouse)
	parts, err := s.broker.partitions(ctx, topics...)
	if err != nil {
		return err
	}
	liveConsumer, err := s.waitLive(ctx, parts, m.End)
	if err != nil {
		return fmt.Errorf("switch of replay %s (nothing switched): %w", o.ID, err)
	}
	names, err := dataTables(ctx, o.ClickHouse, freshDB.Database)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("switch of replay %s cancelled before the rename; nothing switched: %w", o.ID, err)
	}
	st.Replaced = ReplacedDatabase(o.Schema.Database, o.ID)
	if err := swapTables(ctx, o.ClickHouse, o.Schema.Database, freshDB.Database, st.Replaced, names); err != nil {
		return err
	}
	st.Tables = names
	s.log.Info("clickhouse switched", "tables", names, "replaced_into", st.Replaced)
	actx, cancel := afterSwap(ctx)
	defer cancel()
	// What the live consumer wrote into the old tables after the replay's end: up to
	// its committed offsets now (later batches land in the new tables by name).
	end, err := s.broker.highWatermarks(actx, parts)
	if err == nil && liveConsumer {
		end, err = s.broker.committed(actx, o.ClickHouseGroup, parts)
	}
	resume := m.End.Clone()
	if err == nil {
		live := func(time.Time) (sinks, error) {
			sk, err := tableSink(actx, o.ClickHouse, o.Schema)
			return sinks{ch: sk}, err
		}
		spans, _ := spansBetween(topics, parts, m.End, end)
		err = s.applyRange(actx, "catch-up (live clickhouse)", spans, live, &st.CatchUp)
	}
	if err != nil {
		return fmt.Errorf("clickhouse was switched to replay %s, but the catch-up failed; finish it with `processors replay -target clickhouse -into inplace%s`: %w",
			o.ID, offsetFlags(resume), err)
	}
	if err := dropDatabase(actx, o.ClickHouse, freshDB.Database); err != nil {
		return err
	}
	s.audit(actx, "clickhouse:"+o.Schema.Database, map[string]string{
		"id": o.ID, "mode": string(SwitchSwap), "tables": strings.Join(names, ","), "replaced_into": st.Replaced,
		"catch_up_events": strconv.FormatInt(st.CatchUp.Events, 10), "resumed_at": resume.String(),
	})
	return nil
}

func (s *switcher) attach(ctx context.Context, st *SwitchStats) error {
	o := s.so
	m, err := loadMeta(ctx, &o.Options, TargetClickHouse)
	if err != nil {
		return err
	}
	freshDB := FreshDatabase(o.Schema.Database, o.ID)
	parts, err := s.broker.partitions(ctx, s.topicsOf(TargetClickHouse)...)
	if err != nil {
		return err
	}
	// Every attached row must be an event the live rollups already counted: the live
	// consumer must have committed past the replay's end, or its next batch would find
	// the attached rows, skip them, and the rollups would never count them.
	liveConsumer, err := s.waitLive(ctx, parts, m.End)
	if err != nil {
		return fmt.Errorf("attach of replay %s (nothing attached): %w", o.ID, err)
	}
	if !liveConsumer {
		return fmt.Errorf("attach of replay %s: the live clickhouse consumer (group %s) has committed nothing, so the rollups hold none of these events; replay in place instead", o.ID, o.ClickHouseGroup)
	}
	if err := ensureSchema(ctx, o.ClickHouse, o.Schema); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("attach of replay %s cancelled; nothing attached: %w", o.ID, err)
	}
	actx, cancel := afterSwap(ctx)
	defer cancel()
	for _, t := range o.AttachTables {
		n, err := attachTable(actx, o.ClickHouse, o.Schema.Database, freshDB, t)
		if err != nil {
			return fmt.Errorf("attach replay %s: %w (attaching again is safe: rows collapse by event id)", o.ID, err)
		}
		st.Attached[t] = n
	}
	if err := dropDatabase(actx, o.ClickHouse, freshDB); err != nil {
		return err
	}
	att := make([]string, 0, len(st.Attached))
	for t, n := range st.Attached {
		att = append(att, t+"="+strconv.Itoa(n))
	}
	slices.Sort(att)
	s.audit(actx, "clickhouse:"+o.Schema.Database, map[string]string{
		"id": o.ID, "mode": string(SwitchAttach), "partitions": strings.Join(att, ","), "end": m.End.String(),
	})
	return nil
}

func (s *switcher) audit(ctx context.Context, target string, params map[string]string) {
	if s.so.Auditor == nil {
		return
	}
	if _, err := s.so.Auditor.Record(ctx, s.so.Actor, ActionReplaySwitch, target, params, "ok"); err != nil {
		s.so.Logger.Warn("record the switch on the audit topic", "err", err)
	}
}
