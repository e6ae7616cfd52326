package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Meta is what a completed fresh replay records beside its state: where it ended, so
// that a switch (possibly a later run) catches up from exactly there.
type Meta struct {
	ID       string `json:"id"`
	Target   string `json:"target"`
	Complete bool   `json:"complete"`
	// ClockMs is the fixed clock the replay wrote with.
	ClockMs  int64     `json:"clock_ms"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Topics   Topics    `json:"topics"`
	// End is the offset after the last record the fresh state holds, per partition.
	End           Offsets `json:"end"`
	Records       int64   `json:"records"`
	Events        int64   `json:"events"`
	LivePrefix    string  `json:"live_prefix,omitempty"`
	FreshPrefix   string  `json:"fresh_prefix,omitempty"`
	LiveDatabase  string  `json:"live_database,omitempty"`
	FreshDatabase string  `json:"fresh_database,omitempty"`
}

// metaKey is the Valkey key of a fresh prefix's Meta. It has no "{project}" tag, so a
// switch never moves it.
func metaKey(freshPrefix string) string { return freshPrefix + "replay" }

// metaTable is the fresh database's table holding its Meta, one row per write; the
// newest wins.
const metaTable = "replay_meta"

// ErrNoReplay says no completed fresh replay has the id.
var ErrNoReplay = errors.New("no completed fresh replay")

func saveMeta(ctx context.Context, o *Options, m Meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode replay meta: %w", err)
	}
	if m.FreshPrefix != "" {
		if err := o.Valkey.Do(ctx, o.Valkey.B().Set().Key(metaKey(m.FreshPrefix)).Value(string(b)).Build()).Error(); err != nil {
			return fmt.Errorf("record replay %s in valkey: %w", m.ID, err)
		}
	}
	if m.FreshDatabase != "" {
		db := quote(m.FreshDatabase) + "." + metaTable
		if err := o.ClickHouse.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+db+" (seq UInt64, meta String) ENGINE = MergeTree ORDER BY seq"); err != nil {
			return fmt.Errorf("record replay %s in clickhouse: %w", m.ID, err)
		}
		batch, err := o.ClickHouse.PrepareBatch(ctx, "INSERT INTO "+db+" (seq, meta)")
		if err != nil {
			return fmt.Errorf("record replay %s in clickhouse: %w", m.ID, err)
		}
		if err := batch.Append(uint64(time.Now().UnixNano()), string(b)); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("record replay %s in clickhouse: %w", m.ID, err)
		}
		if err := batch.Send(); err != nil {
			return fmt.Errorf("record replay %s in clickhouse: %w", m.ID, err)
		}
	}
	return nil
}

// loadMeta finds the Meta of a completed fresh replay of the target.
func loadMeta(ctx context.Context, o *Options, target Target) (Meta, error) {
	var raw string
	switch {
	case target.Has(TargetValkey):
		s, err := o.Valkey.Do(ctx, o.Valkey.B().Get().Key(metaKey(o.FreshPrefix)).Build()).ToString()
		if valkey.IsValkeyNil(err) {
			return Meta{}, fmt.Errorf("%w %s under valkey prefix %s", ErrNoReplay, o.ID, o.FreshPrefix)
		}
		if err != nil {
			return Meta{}, fmt.Errorf("read replay %s from valkey: %w", o.ID, err)
		}
		raw = s
	default:
		db := FreshDatabase(o.Schema.Database, o.ID)
		rows, err := o.ClickHouse.Query(ctx, "SELECT meta FROM "+quote(db)+"."+metaTable+" ORDER BY seq DESC LIMIT 1")
		if err != nil {
			return Meta{}, fmt.Errorf("%w %s in clickhouse database %s: %w", ErrNoReplay, o.ID, db, err)
		}
		if rows.Next() {
			err = rows.Scan(&raw)
		}
		rows.Close()
		if err != nil {
			return Meta{}, fmt.Errorf("read replay %s from clickhouse: %w", o.ID, err)
		}
		if raw == "" {
			return Meta{}, fmt.Errorf("%w %s in clickhouse database %s", ErrNoReplay, o.ID, db)
		}
	}
	var m Meta
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return Meta{}, fmt.Errorf("decode replay %s meta: %w", o.ID, err)
	}
	if !m.Complete {
		return Meta{}, fmt.Errorf("%w %s: it did not complete", ErrNoReplay, o.ID)
	}
	return m, nil
}

// Drop deletes a fresh replay's state: its Valkey prefix (every key under it) and its
// ClickHouse database, for the targets in opts.Target. It is what an aborted replay
// does on its way out, and what an operator runs for a replay not switched to.
func Drop(ctx context.Context, opts Options) error {
	opts.applyDefaults(time.Now())
	var errs []error
	if opts.Target.Has(TargetValkey) && opts.Valkey != nil {
		if err := checkPrefixes(opts.LivePrefix, opts.FreshPrefix); err != nil {
			errs = append(errs, err)
		} else if _, err := deleteKeys(ctx, opts.Valkey, opts.FreshPrefix); err != nil {
			errs = append(errs, err)
		}
	}
	if opts.Target.Has(TargetClickHouse) && opts.ClickHouse != nil {
		db := FreshDatabase(opts.Schema.Database, opts.ID)
		if db == opts.Schema.Database {
			errs = append(errs, fmt.Errorf("refusing to drop the live database %s", db))
		} else if err := dropDatabase(ctx, opts.ClickHouse, db); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
