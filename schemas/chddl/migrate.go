package chddl

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Conn is the part of a clickhouse-go native connection the schema code uses.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// ServerVersion asks the server for its version.
func ServerVersion(ctx context.Context, conn Conn) (Version, error) {
	rows, err := conn.Query(ctx, "SELECT version()")
	if err != nil {
		return Version{}, fmt.Errorf("query clickhouse version: %w", err)
	}
	defer rows.Close()
	var s string
	if !rows.Next() {
		return Version{}, fmt.Errorf("query clickhouse version: no row: %w", rows.Err())
	}
	if err := rows.Scan(&s); err != nil {
		return Version{}, fmt.Errorf("scan clickhouse version: %w", err)
	}
	return ParseVersion(s)
}

// Migrate creates the database and applies every migration not yet recorded in its
// schema_migrations table, in order. Each statement is idempotent (IF NOT EXISTS), so a
// migration interrupted half-way, or applied by two processors starting at once, is
// simply applied again. A recorded migration whose file has changed since is an error:
// change the schema with a new migration instead.
func Migrate(ctx context.Context, conn Conn, opts Options) error {
	v, err := ServerVersion(ctx, conn)
	if err != nil {
		return err
	}
	migrations, err := Render(v, opts)
	if err != nil {
		return err
	}
	for _, stmt := range bootstrap(opts) {
		if err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("bootstrap schema_migrations in %s: %w", opts.Database, err)
		}
	}
	applied, err := appliedMigrations(ctx, conn, opts)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return fmt.Errorf("migration %04d_%s changed after it was applied to %s (checksum %.12s, recorded %.12s): add a new migration instead",
					m.Version, m.Name, opts.Database, m.Checksum, sum)
			}
			continue
		}
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("apply migration %04d_%s statement %d on clickhouse %s: %w", m.Version, m.Name, i+1, v, err)
			}
		}
		if err := record(ctx, conn, opts, m, v); err != nil {
			return err
		}
	}
	return nil
}

func bootstrap(opts Options) []string {
	db := quote(opts.Database)
	onCluster, engine := "", "ReplacingMergeTree(applied_at)"
	if opts.Cluster != "" {
		onCluster = " ON CLUSTER " + quote(opts.Cluster)
		engine = fmt.Sprintf("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/schema_migrations', '{replica}', applied_at)", opts.Database)
	}
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + db + onCluster,
		// Replicated (on a cluster) so that every node sees what one node applied.
		"CREATE TABLE IF NOT EXISTS " + db + ".schema_migrations" + onCluster + ` (
    version        UInt32,
    name           String,
    checksum       String,
    server_version String,
    applied_at     DateTime('UTC')
) ENGINE = ` + engine + `
ORDER BY version`,
	}
}

func appliedMigrations(ctx context.Context, conn Conn, opts Options) (map[int]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, argMax(checksum, applied_at) FROM "+quote(opts.Database)+".schema_migrations GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", opts.Database, err)
	}
	defer rows.Close()
	applied := map[int]string{}
	for rows.Next() {
		var (
			version uint32
			sum     string
		)
		if err := rows.Scan(&version, &sum); err != nil {
			return nil, fmt.Errorf("scan %s.schema_migrations: %w", opts.Database, err)
		}
		applied[int(version)] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", opts.Database, err)
	}
	return applied, nil
}

func record(ctx context.Context, conn Conn, opts Options, m Migration, v Version) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+quote(opts.Database)+".schema_migrations (version, name, checksum, server_version, applied_at)")
	if err != nil {
		return fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if err := b.Append(uint32(m.Version), m.Name, m.Checksum, v.String(), time.Now().UTC()); err != nil {
		_ = b.Abort()
		return fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
	}
	return nil
}
