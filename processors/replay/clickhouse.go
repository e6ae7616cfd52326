package replay

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/geminicodeapi/gca/schemas/chddl"
)

func quote(ident string) string { return "`" + strings.ReplaceAll(ident, "`", "") + "`" }

func databaseExists(ctx context.Context, conn chddl.Conn, db string) (bool, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.databases WHERE name = '"+db+"'")
	if err != nil {
		return false, fmt.Errorf("look up database %s: %w", db, err)
	}
	defer rows.Close()
	found := rows.Next()
	return found, rows.Err()
}

// tableInfo is a table of a database as system.tables describes it.
type tableInfo struct {
	name, engine string
}

func tables(ctx context.Context, conn chddl.Conn, db string) ([]tableInfo, error) {
	rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = '"+db+"' ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", db, err)
	}
	defer rows.Close()
	var out []tableInfo
	for rows.Next() {
		var t tableInfo
		if err := rows.Scan(&t.name, &t.engine); err != nil {
			return nil, fmt.Errorf("list tables of %s: %w", db, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// bookkeeping tables are the database's own, never swapped.
var bookkeeping = []string{"schema_migrations", metaTable}

// dataTables are the tables of db that hold rows: the event tables and the targets of
// the materialized views. Views and materialized views are not data: they refer to
// tables by name, so they follow a rename (see swapTables).
func dataTables(ctx context.Context, conn chddl.Conn, db string) ([]string, error) {
	ts, err := tables(ctx, conn, db)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts {
		if t.engine == "View" || t.engine == "MaterializedView" || slices.Contains(bookkeeping, t.name) || strings.HasPrefix(t.name, ".inner.") {
			continue
		}
		out = append(out, t.name)
	}
	return out, nil
}

// swapTables moves the live data tables aside into the replaced database and the
// fresh ones into their place, in one RENAME TABLE statement.
//
// What makes this a switch on ClickHouse 18.16 (tested in switch_integration_test.go
// and by hand): a materialized view names its source and its TO table; it finds them
// by name when a block is inserted (18.16 registers the dependency under the source's
// name and resolves the target by name). So after the rename, the live views fire on
// inserts into the fresh request_logs now under the live name and write into the fresh
// rollups now under the live names; the views of the fresh database have nothing left
// to fire on and are dropped with it. The plain views (system_stats, api_key_metrics)
// read by name too. One statement renames every table under one lock, but it is not
// an exchange: a query that runs between two of its renames can find a table missing
// (a writer retries; the live consumer's batch is retried and deduplicated). Current
// ClickHouse has EXCHANGE TABLES on Atomic databases for a strictly atomic swap.
func swapTables(ctx context.Context, conn chddl.Conn, live, fresh, replaced string, names []string) error {
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(replaced)); err != nil {
		return fmt.Errorf("create %s: %w", replaced, err)
	}
	liveTables, err := tables(ctx, conn, live)
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, t := range liveTables {
		exists[t.name] = true
	}
	var pairs []string
	for _, n := range names {
		if exists[n] {
			pairs = append(pairs, quote(live)+"."+quote(n)+" TO "+quote(replaced)+"."+quote(n))
		}
		pairs = append(pairs, quote(fresh)+"."+quote(n)+" TO "+quote(live)+"."+quote(n))
	}
	if err := conn.Exec(ctx, "RENAME TABLE "+strings.Join(pairs, ", ")); err != nil {
		return fmt.Errorf("swap the tables of %s for those of %s: %w", live, fresh, err)
	}
	return nil
}

// ensureSchema applies every statement of every migration to the database again,
// whatever schema_migrations records. The statements are idempotent (CREATE ... IF NOT
// EXISTS), so this recreates a table that was dropped by hand — which Migrate, trusting
// its records, would not — and changes nothing else. A materialized view keeps firing
// for a source table dropped and created again under the same name (18.16 keeps the
// dependency by name).
func ensureSchema(ctx context.Context, conn chddl.Conn, opts chddl.Options) error {
	v, err := chddl.ServerVersion(ctx, conn)
	if err != nil {
		return err
	}
	ms, err := chddl.Render(v, opts)
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(opts.Database)); err != nil {
		return fmt.Errorf("create database %s: %w", opts.Database, err)
	}
	for _, m := range ms {
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("re-apply migration %04d_%s statement %d to %s: %w", m.Version, m.Name, i+1, opts.Database, err)
			}
		}
	}
	return nil
}

// attachable are the tables an attach may copy: the event tables, each row an event.
// The materialized views' targets are not: their rows are aggregates the live views
// already hold, and copying them would count twice.
var attachable = []string{"request_logs", "key_state_log", "audit_log"}

// attachTable copies every partition of fresh.table into live.table without inserting
// (ALTER TABLE ... ATTACH PARTITION ... FROM, which fires no materialized view), then
// merges each partition it touched (OPTIMIZE ... FINAL) so that ReplacingMergeTree keeps
// one row per event: the copied one, as the attached parts are the newest. It returns
// the partitions attached.
func attachTable(ctx context.Context, conn chddl.Conn, live, fresh, table string) (int, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT partition_id FROM system.parts WHERE active AND database = '"+fresh+"' AND table = '"+table+"' ORDER BY partition_id")
	if err != nil {
		return 0, fmt.Errorf("list partitions of %s.%s: %w", fresh, table, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("list partitions of %s.%s: %w", fresh, table, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list partitions of %s.%s: %w", fresh, table, err)
	}
	dst, src := quote(live)+"."+quote(table), quote(fresh)+"."+quote(table)
	for _, id := range ids {
		if err := conn.Exec(ctx, "ALTER TABLE "+dst+" ATTACH PARTITION ID '"+id+"' FROM "+src); err != nil {
			return 0, fmt.Errorf("attach partition %s of %s to %s: %w", id, src, dst, err)
		}
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+dst+" PARTITION ID '"+id+"' FINAL"); err != nil {
			return 0, fmt.Errorf("merge partition %s of %s: %w", id, dst, err)
		}
	}
	return len(ids), nil
}

func dropDatabase(ctx context.Context, conn chddl.Conn, db string) error {
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quote(db)); err != nil {
		return fmt.Errorf("drop database %s: %w", db, err)
	}
	return nil
}
