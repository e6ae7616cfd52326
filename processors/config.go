package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// Config is the processors' configuration. Every field has a flag and a GCA_*
// environment variable; a flag wins over the environment, the environment over the
// default.
type Config struct {
	// KafkaBrokers: -kafka.brokers, GCA_KAFKA_BROKERS (comma-separated). Default 127.0.0.1:9092.
	KafkaBrokers []string
	// KafkaSessionTimeout: -kafka.session-timeout, GCA_KAFKA_SESSION_TIMEOUT. How long a
	// dead instance keeps its partitions. Default 10s.
	KafkaSessionTimeout time.Duration

	// Topics the processors read, and the dead-letter topic: -topic.requests,
	// -topic.keystate, -topic.audit, -topic.deadletter (GCA_TOPIC_REQUESTS, ...). Default
	// the schemas names (gca.requests.v1, ...). Tests and replays point them elsewhere.
	TopicRequests, TopicKeyState, TopicAudit, TopicDeadLetter string

	// ClickHouseAddr: -clickhouse.addr, GCA_CLICKHOUSE_ADDR (native protocol,
	// comma-separated). Default 127.0.0.1:9000.
	ClickHouseAddr []string
	// ClickHouseUser / ClickHousePassword: -clickhouse.user, GCA_CLICKHOUSE_USER (default
	// "default"); GCA_CLICKHOUSE_PASSWORD only (no flag: it would show in ps). Default "".
	ClickHouseUser     string
	ClickHousePassword Secret
	// ClickHouseDatabase: -clickhouse.database, GCA_CLICKHOUSE_DATABASE. Default gca.
	ClickHouseDatabase string
	// ClickHouseCluster: -clickhouse.cluster, GCA_CLICKHOUSE_CLUSTER. A cluster name
	// renders the cluster DDL (ON CLUSTER, Replicated*, Distributed). Default "" (one node).
	ClickHouseCluster string

	// ValkeyAddr: -valkey.addr, GCA_VALKEY_ADDR (comma-separated; a cluster works).
	// Default 127.0.0.1:6379. Used by the Valkey state consumer.
	ValkeyAddr []string
	// ValkeyPrefix: -valkey.prefix, GCA_VALKEY_PREFIX. The prefix of every state key;
	// the ingress must use the same one. Default "gca:".
	ValkeyPrefix string

	// ClickHouseGroup / ValkeyGroup: -group.clickhouse, -group.valkey
	// (GCA_GROUP_CLICKHOUSE, GCA_GROUP_VALKEY). Defaults gca-clickhouse, gca-valkey.
	ClickHouseGroup, ValkeyGroup string

	// BatchSize / BatchInterval: -batch.size, -batch.interval (GCA_BATCH_SIZE,
	// GCA_BATCH_INTERVAL). A batch is written when it holds BatchSize records or
	// BatchInterval after its first record. Defaults 10000 and 200ms.
	BatchSize     int
	BatchInterval time.Duration

	// RetentionDays: -retention.days, GCA_RETENTION_DAYS. request_logs, error_logs,
	// key_state_log and api_key_failures. 0 keeps forever. Default 30.
	RetentionDays int
	// StatsRetentionDays: -retention.stats-days, GCA_STATS_RETENTION_DAYS. system_stats.
	// Default 730.
	StatsRetentionDays int
	// RetentionInterval: -retention.interval, GCA_RETENTION_INTERVAL. How often expired
	// partitions are dropped on servers without TTL (18.16). Default 1h.
	RetentionInterval time.Duration
	// StorageAutoOptimize: -storage.auto-optimize, GCA_STORAGE_AUTO_OPTIMIZE. Carry out
	// the storage recommendations (queries/storage_recommendations.sql: drop partitions
	// past retention, merge partitions with too many parts) every RetentionInterval,
	// each action recorded as an audit event. Default false: an operator runs
	// `processors storage optimize --execute` or POST /admin/storage/optimize.
	StorageAutoOptimize bool

	// ListenAddr: -listen, GCA_LISTEN_ADDR. Serves /health/live, /health/ready and
	// /metrics. Default 127.0.0.1:8081.
	ListenAddr string
	// LogLevel: -log.level, GCA_LOG_LEVEL (debug, info, warn, error). Default info.
	LogLevel slog.Level
	// LogFormat: -log.format, GCA_LOG_FORMAT (json, text). Default json.
	LogFormat string
	// ShutdownTimeout: -shutdown-timeout, GCA_SHUTDOWN_TIMEOUT. How long the batch being
	// written may still finish and be committed at SIGTERM or when a rebalance takes
	// the partitions away; shorter than the session timeout. Default 5s.
	ShutdownTimeout time.Duration
	// AdminToken: GCA_ADMIN_TOKEN only (no flag: it would show in ps). When set, the
	// ops server's /admin/ endpoints require "Authorization: Bearer <token>". Default "".
	AdminToken Secret
	// Instance: -instance, GCA_INSTANCE. Names this process in dead-letter headers.
	// Default the host name.
	Instance string

	// envErrs are variables that could not be parsed, reported by Validate.
	envErrs []error
}

// Secret is a string that never prints.
type Secret string

func (Secret) String() string                 { return "[redacted]" }
func (s Secret) GoString() string             { return s.String() }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(s.String()) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		KafkaBrokers:        []string{"127.0.0.1:9092"},
		KafkaSessionTimeout: consume.DefaultSessionTimeout,
		TopicRequests:       schemas.TopicRequests,
		TopicKeyState:       schemas.TopicKeyState,
		TopicAudit:          schemas.TopicAudit,
		TopicDeadLetter:     schemas.TopicDeadLetter,
		ClickHouseAddr:      []string{"127.0.0.1:9000"},
		ClickHouseUser:      "default",
		ClickHouseDatabase:  chddl.DefaultDatabase,
		ValkeyAddr:          []string{"127.0.0.1:6379"},
		ValkeyPrefix:        schemas.DefaultPrefix,
		ClickHouseGroup:     "gca-clickhouse",
		ValkeyGroup:         "gca-valkey",
		BatchSize:           consume.DefaultBatchSize,
		BatchInterval:       consume.DefaultBatchInterval,
		RetentionDays:       chddl.DefaultRetentionDays,
		StatsRetentionDays:  chddl.DefaultStatsRetentionDays,
		RetentionInterval:   time.Hour,
		ListenAddr:          "127.0.0.1:8081",
		LogLevel:            slog.LevelInfo,
		LogFormat:           "json",
		ShutdownTimeout:     consume.DefaultDrainTimeout,
		Instance:            host,
	}
}

// LoadEnv overrides fields from GCA_* variables; unparsable values are kept for
// Validate to report.
func (c *Config) LoadEnv(getenv func(string) string) {
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	list := func(name string, dst *[]string) {
		if v := getenv(name); v != "" {
			*dst = splitList(v)
		}
	}
	num := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not an integer", name, v))
				return
			}
			*dst = n
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				c.envErrs = append(c.envErrs, fmt.Errorf("%s=%q: not a duration (e.g. 200ms, 1h)", name, v))
				return
			}
			*dst = d
		}
	}
	list("GCA_KAFKA_BROKERS", &c.KafkaBrokers)
	dur("GCA_KAFKA_SESSION_TIMEOUT", &c.KafkaSessionTimeout)
	str("GCA_TOPIC_REQUESTS", &c.TopicRequests)
	str("GCA_TOPIC_KEYSTATE", &c.TopicKeyState)
	str("GCA_TOPIC_AUDIT", &c.TopicAudit)
	str("GCA_TOPIC_DEADLETTER", &c.TopicDeadLetter)
	list("GCA_CLICKHOUSE_ADDR", &c.ClickHouseAddr)
	str("GCA_CLICKHOUSE_USER", &c.ClickHouseUser)
	if v := getenv("GCA_CLICKHOUSE_PASSWORD"); v != "" {
		c.ClickHousePassword = Secret(v)
	}
	str("GCA_CLICKHOUSE_DATABASE", &c.ClickHouseDatabase)
	str("GCA_CLICKHOUSE_CLUSTER", &c.ClickHouseCluster)
	list("GCA_VALKEY_ADDR", &c.ValkeyAddr)
	str("GCA_VALKEY_PREFIX", &c.ValkeyPrefix)
	str("GCA_GROUP_CLICKHOUSE", &c.ClickHouseGroup)
	str("GCA_GROUP_VALKEY", &c.ValkeyGroup)
	num("GCA_BATCH_SIZE", &c.BatchSize)
	dur("GCA_BATCH_INTERVAL", &c.BatchInterval)
	num("GCA_RETENTION_DAYS", &c.RetentionDays)
	num("GCA_STATS_RETENTION_DAYS", &c.StatsRetentionDays)
	dur("GCA_RETENTION_INTERVAL", &c.RetentionInterval)
	if v := getenv("GCA_STORAGE_AUTO_OPTIMIZE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("GCA_STORAGE_AUTO_OPTIMIZE=%q: not a boolean", v))
		}
		c.StorageAutoOptimize = b
	}
	str("GCA_LISTEN_ADDR", &c.ListenAddr)
	if v := getenv("GCA_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("GCA_LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	str("GCA_LOG_FORMAT", &c.LogFormat)
	dur("GCA_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	str("GCA_INSTANCE", &c.Instance)
	if v := getenv("GCA_ADMIN_TOKEN"); v != "" {
		c.AdminToken = Secret(v)
	}
}

// RegisterFlags registers a flag per field, defaulting to the field's current value.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	listFlag(fs, &c.KafkaBrokers, "kafka.brokers", "Kafka bootstrap brokers, comma-separated (GCA_KAFKA_BROKERS)")
	fs.DurationVar(&c.KafkaSessionTimeout, "kafka.session-timeout", c.KafkaSessionTimeout, "consumer group session timeout (GCA_KAFKA_SESSION_TIMEOUT)")
	fs.StringVar(&c.TopicRequests, "topic.requests", c.TopicRequests, "request events topic (GCA_TOPIC_REQUESTS)")
	fs.StringVar(&c.TopicKeyState, "topic.keystate", c.TopicKeyState, "key state events topic (GCA_TOPIC_KEYSTATE)")
	fs.StringVar(&c.TopicAudit, "topic.audit", c.TopicAudit, "audit events topic (GCA_TOPIC_AUDIT)")
	fs.StringVar(&c.TopicDeadLetter, "topic.deadletter", c.TopicDeadLetter, "dead-letter topic (GCA_TOPIC_DEADLETTER)")
	listFlag(fs, &c.ClickHouseAddr, "clickhouse.addr", "ClickHouse native-protocol addresses, comma-separated (GCA_CLICKHOUSE_ADDR)")
	fs.StringVar(&c.ClickHouseUser, "clickhouse.user", c.ClickHouseUser, "ClickHouse user (GCA_CLICKHOUSE_USER; password only from GCA_CLICKHOUSE_PASSWORD)")
	fs.StringVar(&c.ClickHouseDatabase, "clickhouse.database", c.ClickHouseDatabase, "ClickHouse database (GCA_CLICKHOUSE_DATABASE)")
	fs.StringVar(&c.ClickHouseCluster, "clickhouse.cluster", c.ClickHouseCluster, "ClickHouse cluster for ON CLUSTER DDL; empty for one node (GCA_CLICKHOUSE_CLUSTER)")
	listFlag(fs, &c.ValkeyAddr, "valkey.addr", "Valkey addresses, comma-separated (GCA_VALKEY_ADDR)")
	fs.StringVar(&c.ValkeyPrefix, "valkey.prefix", c.ValkeyPrefix, "prefix of the Valkey state keys, as the ingress's (GCA_VALKEY_PREFIX)")
	fs.StringVar(&c.ClickHouseGroup, "group.clickhouse", c.ClickHouseGroup, "consumer group of the ClickHouse writer (GCA_GROUP_CLICKHOUSE)")
	fs.StringVar(&c.ValkeyGroup, "group.valkey", c.ValkeyGroup, "consumer group of the Valkey state writer (GCA_GROUP_VALKEY)")
	fs.IntVar(&c.BatchSize, "batch.size", c.BatchSize, "records per batch (GCA_BATCH_SIZE)")
	fs.DurationVar(&c.BatchInterval, "batch.interval", c.BatchInterval, "longest wait after a batch's first record (GCA_BATCH_INTERVAL)")
	fs.IntVar(&c.RetentionDays, "retention.days", c.RetentionDays, "days of request/error/key-state logs; 0 keeps forever (GCA_RETENTION_DAYS)")
	fs.IntVar(&c.StatsRetentionDays, "retention.stats-days", c.StatsRetentionDays, "days of system_stats; 0 keeps forever (GCA_STATS_RETENTION_DAYS)")
	fs.DurationVar(&c.RetentionInterval, "retention.interval", c.RetentionInterval, "how often expired partitions are dropped on ClickHouse without TTL (GCA_RETENTION_INTERVAL)")
	fs.BoolVar(&c.StorageAutoOptimize, "storage.auto-optimize", c.StorageAutoOptimize, "carry out the storage recommendations every retention.interval, each recorded as an audit event (GCA_STORAGE_AUTO_OPTIMIZE)")
	fs.StringVar(&c.ListenAddr, "listen", c.ListenAddr, "address of /health/live, /health/ready and /metrics (GCA_LISTEN_ADDR)")
	fs.TextVar(&c.LogLevel, "log.level", c.LogLevel, "debug, info, warn or error (GCA_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log.format", c.LogFormat, "json or text (GCA_LOG_FORMAT)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long the batch in hand may still be written at shutdown (GCA_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.Instance, "instance", c.Instance, "name of this process in dead-letter headers (GCA_INSTANCE)")
}

func listFlag(fs *flag.FlagSet, dst *[]string, name, usage string) {
	fs.Func(name, usage+" (default "+strings.Join(*dst, ",")+")", func(v string) error {
		*dst = splitList(v)
		return nil
	})
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Schema returns the ClickHouse schema options.
func (c *Config) Schema() chddl.Options {
	return chddl.Options{
		Database:           c.ClickHouseDatabase,
		Cluster:            c.ClickHouseCluster,
		RetentionDays:      c.RetentionDays,
		StatsRetentionDays: c.StatsRetentionDays,
	}
}

// Consumer returns the loop configuration of a consumer group.
func (c *Config) Consumer(group string) consume.Config {
	return consume.Config{
		Brokers:         c.KafkaBrokers,
		GroupID:         group,
		Topics:          []string{c.TopicRequests, c.TopicKeyState, c.TopicAudit},
		DeadLetterTopic: c.TopicDeadLetter,
		Consumer:        group + "@" + c.Instance,
		BatchSize:       c.BatchSize,
		BatchInterval:   c.BatchInterval,
		DrainTimeout:    c.ShutdownTimeout,
		SessionTimeout:  c.KafkaSessionTimeout,
	}
}

// Validate reports every problem at once, before anything connects.
func (c *Config) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	addrs := func(what string, list []string) {
		if len(list) == 0 {
			errs = append(errs, fmt.Errorf("%s: no address", what))
		}
		for _, a := range list {
			if _, _, err := net.SplitHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not host:port", what, a))
			}
		}
	}
	addrs("kafka brokers", c.KafkaBrokers)
	addrs("clickhouse addr", c.ClickHouseAddr)
	addrs("valkey addr", c.ValkeyAddr)
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port", c.ListenAddr))
	}
	topics := map[string]string{}
	for _, t := range []struct{ what, name string }{
		{"requests", c.TopicRequests}, {"keystate", c.TopicKeyState}, {"audit", c.TopicAudit}, {"deadletter", c.TopicDeadLetter},
	} {
		switch {
		case t.name == "":
			errs = append(errs, fmt.Errorf("topic.%s is empty", t.what))
		case topics[t.name] != "":
			errs = append(errs, fmt.Errorf("topic.%s and topic.%s are both %q", topics[t.name], t.what, t.name))
		default:
			topics[t.name] = t.what
		}
	}
	if c.ClickHouseGroup == "" || c.ValkeyGroup == "" {
		errs = append(errs, errors.New("consumer group names must not be empty"))
	} else if c.ClickHouseGroup == c.ValkeyGroup {
		errs = append(errs, fmt.Errorf("group.clickhouse and group.valkey are both %q: each sink needs its own offsets", c.ClickHouseGroup))
	}
	if c.BatchSize < 1 || c.BatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("batch.size %d not in 1..1000000", c.BatchSize))
	}
	if c.BatchInterval < time.Millisecond || c.BatchInterval > time.Minute {
		errs = append(errs, fmt.Errorf("batch.interval %s not in 1ms..1m", c.BatchInterval))
	}
	if c.KafkaSessionTimeout < 6*time.Second || c.KafkaSessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("kafka.session-timeout %s not in 6s..5m (the broker's default bounds)", c.KafkaSessionTimeout))
	}
	if err := c.Schema().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RetentionInterval < time.Minute {
		errs = append(errs, fmt.Errorf("retention.interval %s is below 1m", c.RetentionInterval))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log.format %q: want json or text", c.LogFormat))
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout >= c.KafkaSessionTimeout {
		// The batch in hand is also finished when a rebalance takes the partitions
		// away; the group waits for this member at most a session timeout.
		errs = append(errs, fmt.Errorf("shutdown-timeout %s must be positive and shorter than kafka.session-timeout %s", c.ShutdownTimeout, c.KafkaSessionTimeout))
	}
	if c.Instance == "" {
		errs = append(errs, errors.New("instance is empty"))
	}
	return errors.Join(errs...)
}
