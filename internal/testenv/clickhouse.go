package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouse opens a native-protocol connection to a fresh database and returns it with
// the database name. The database is dropped when the test ends.
func ClickHouse(t testing.TB) (driver.Conn, string) {
	t.Helper()
	db := UniqueName(t, "gca_test")
	admin := OpenClickHouse(t, "default")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
		t.Fatalf("create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	})
	return OpenClickHouse(t, db), db
}

// OpenClickHouse opens a connection to an existing database, closed when the test ends.
func OpenClickHouse(t testing.TB, database string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{ClickHouseAddr()},
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("open clickhouse %s: %v", ClickHouseAddr(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("clickhouse at %s unreachable (start the stack with `make stack-up`): %v", ClickHouseAddr(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
