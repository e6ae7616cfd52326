// Package testenv connects integration tests to the real Kafka, ClickHouse and Valkey
// servers that deploy/local/stack.sh starts, and gives each test its own topic, database
// or key prefix so tests never see each other's data.
//
// Addresses come from GCA_KAFKA_BROKERS, GCA_CLICKHOUSE_ADDR and GCA_VALKEY_ADDR, with the
// stack's defaults. A server that cannot be reached fails the test: integration tests run
// only under `make test-integration`, which starts the stack first, so an unreachable
// server is a broken environment, never a reason to skip.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// KafkaBrokers returns the broker addresses.
func KafkaBrokers() []string {
	return strings.Split(env("GCA_KAFKA_BROKERS", "127.0.0.1:9092"), ",")
}

// ClickHouseAddr returns the native-protocol address of ClickHouse.
func ClickHouseAddr() string { return env("GCA_CLICKHOUSE_ADDR", "127.0.0.1:9000") }

// ValkeyAddr returns the Valkey address.
func ValkeyAddr() string { return env("GCA_VALKEY_ADDR", "127.0.0.1:6379") }

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// UniqueName returns base plus a random suffix, usable as a topic, database or prefix
// name (letters, digits and underscores only).
func UniqueName(t testing.TB, base string) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random suffix: %v", err)
	}
	return base + "_" + hex.EncodeToString(b[:])
}

// Context returns a context cancelled when the test ends.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
