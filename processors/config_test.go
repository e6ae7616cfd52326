package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// load builds a configuration the way run does: defaults, then the environment, then
// flags.
func load(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.LoadEnv(func(k string) string { return env[k] })
	fs := flag.NewFlagSet("processors", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func TestConfigDefaultsAreValid(t *testing.T) {
	cfg, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1:9092"}, cfg.KafkaBrokers)
	require.Equal(t, "gca-clickhouse", cfg.ClickHouseGroup)
	require.Equal(t, 10000, cfg.BatchSize)
	require.Equal(t, 200*time.Millisecond, cfg.BatchInterval)
	require.Equal(t, "127.0.0.1:8081", cfg.ListenAddr)
	require.Equal(t, 30, cfg.RetentionDays)
	require.Equal(t, 730, cfg.StatsRetentionDays)
}

// A flag wins over the environment, the environment over the default.
func TestConfigPrecedence(t *testing.T) {
	cfg, err := load(t, map[string]string{
		"GCA_KAFKA_BROKERS":       "k1:9092, k2:9092",
		"GCA_BATCH_SIZE":          "500",
		"GCA_CLICKHOUSE_DATABASE": "from_env",
		"GCA_LOG_LEVEL":           "debug",
	}, "-batch.size", "700", "-clickhouse.addr", "ch1:9000,ch2:9000")
	require.NoError(t, err)
	require.Equal(t, []string{"k1:9092", "k2:9092"}, cfg.KafkaBrokers)
	require.Equal(t, 700, cfg.BatchSize)
	require.Equal(t, "from_env", cfg.ClickHouseDatabase)
	require.Equal(t, []string{"ch1:9000", "ch2:9000"}, cfg.ClickHouseAddr)
	require.Equal(t, slog.LevelDebug, cfg.LogLevel)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		errs []string
	}{
		{
			name: "unparsable environment is reported, not ignored",
			env:  map[string]string{"GCA_BATCH_SIZE": "lots", "GCA_BATCH_INTERVAL": "5", "GCA_LOG_LEVEL": "loud"},
			errs: []string{`GCA_BATCH_SIZE="lots": not an integer`, `GCA_BATCH_INTERVAL="5": not a duration`, `GCA_LOG_LEVEL="loud"`},
		},
		{
			name: "addresses",
			args: []string{"-kafka.brokers", "localhost", "-clickhouse.addr", "", "-listen", "8081"},
			errs: []string{`kafka brokers: "localhost" is not host:port`, "clickhouse addr: no address", `listen: "8081" is not host:port`},
		},
		{
			name: "topics must differ",
			args: []string{"-topic.audit", "gca.requests.v1", "-topic.deadletter", ""},
			errs: []string{`topic.requests and topic.audit are both "gca.requests.v1"`, "topic.deadletter is empty"},
		},
		{
			name: "each sink its own group",
			args: []string{"-group.valkey", "gca-clickhouse"},
			errs: []string{`group.clickhouse and group.valkey are both "gca-clickhouse"`},
		},
		{
			name: "batching bounds",
			args: []string{"-batch.size", "0", "-batch.interval", "2m"},
			errs: []string{"batch.size 0 not in 1..1000000", "batch.interval 2m0s not in 1ms..1m"},
		},
		{
			name: "the drain must end before the group gives up on this member",
			args: []string{"-kafka.session-timeout", "6s", "-shutdown-timeout", "8s"},
			errs: []string{"shutdown-timeout 8s must be positive and shorter than kafka.session-timeout 6s"},
		},
		{
			name: "schema options",
			args: []string{"-clickhouse.database", "gca-prod", "-retention.days", "-1", "-retention.stats-days", "7"},
			errs: []string{`clickhouse database "gca-prod"`, "retention days -1 is negative"},
		},
		{
			name: "stats kept shorter than logs",
			args: []string{"-retention.days", "30", "-retention.stats-days", "7"},
			errs: []string{"stats retention (7 days) is shorter than log retention (30 days)"},
		},
		{
			name: "logging",
			args: []string{"-log.format", "xml", "-instance", ""},
			errs: []string{`log.format "xml": want json or text`, "instance is empty"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env, tc.args...)
			require.Error(t, err)
			for _, e := range tc.errs {
				require.ErrorContains(t, err, e)
			}
			// Every problem is reported at once, one per line.
			require.GreaterOrEqual(t, strings.Count(err.Error(), "\n")+1, len(tc.errs), "%v", err)
		})
	}
}

func TestSecretDoesNotPrint(t *testing.T) {
	cfg, err := load(t, map[string]string{"GCA_CLICKHOUSE_PASSWORD": "hunter2"})
	require.NoError(t, err)
	require.Equal(t, Secret("hunter2"), cfg.ClickHousePassword)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		require.NotContains(t, s, "hunter2")
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "password", cfg.ClickHousePassword)
	require.NotContains(t, b.String(), "hunter2")
}

func TestRunRejectsBadInvocations(t *testing.T) {
	ctx := t.Context()
	var stderr strings.Builder
	require.ErrorContains(t, run(ctx, []string{"frobnicate"}, func(string) string { return "" }, &stderr), `unknown command "frobnicate"`)
	require.Contains(t, stderr.String(), "usage: processors")
	require.ErrorContains(t, run(ctx, []string{"migrate", "extra"}, func(string) string { return "" }, io.Discard), "unexpected arguments")
	require.ErrorContains(t, run(ctx, nil, func(k string) string {
		if k == "GCA_BATCH_SIZE" {
			return "x"
		}
		return ""
	}, io.Discard), "invalid configuration")
	require.NoError(t, run(ctx, []string{"run", "-h"}, func(string) string { return "" }, io.Discard))
}
