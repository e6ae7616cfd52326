package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/ingress/publish"
	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/schemas"
)

// secret is a configuration value that must never be printed.
type secret string

func (s secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// Config is the ingress's whole configuration. Every field has a flag and an
// environment variable (the flag wins); the defaults are what `make run` uses.
type Config struct {
	Listen       string // GCA_LISTEN, 127.0.0.1:8080
	Instance     string // GCA_INSTANCE, <hostname>-<pid>
	KafkaBrokers string // GCA_KAFKA_BROKERS, 127.0.0.1:9092
	ValkeyAddr   string // GCA_VALKEY_ADDR, 127.0.0.1:6379
	ValkeyPrefix string // GCA_VALKEY_PREFIX, gca:
	// ValkeyTimeout bounds a reservation round trip; beyond it the pool turns degraded
	// and selects fail-open from its local view.
	ValkeyTimeout time.Duration // GCA_VALKEY_TIMEOUT, 250ms
	// Topic names, shared with the processors' flags of the same names.
	TopicRequests string // GCA_TOPIC_REQUESTS, gca.requests.v1
	TopicKeyState string // GCA_TOPIC_KEYSTATE, gca.keystate.v1
	TopicAudit    string // GCA_TOPIC_AUDIT, gca.audit.v1

	SpoolDir      string // GCA_SPOOL_DIR, .run/spool/ingress-<listen port>
	SpoolMaxBytes int64  // GCA_SPOOL_MAX_BYTES, 1 GiB
	SpoolPolicy   string // GCA_SPOOL_POLICY, reject | drop
	SpoolSync     bool   // GCA_SPOOL_SYNC, false

	UpstreamURL    string        // GCA_UPSTREAM_URL, the real Gemini API
	MaxAttempts    int           // GCA_MAX_ATTEMPTS, 3
	UpstreamBudget time.Duration // GCA_UPSTREAM_DEADLINE, 120s
	// Per-attempt bounds inside the deadline: a non-streaming attempt, the wait for a
	// stream's first event (both fail over to another key), and the silence between
	// two stream events (cuts the stream).
	AttemptTimeout    time.Duration // GCA_UPSTREAM_ATTEMPT_TIMEOUT, 90s
	FirstEventTimeout time.Duration // GCA_UPSTREAM_FIRST_EVENT_TIMEOUT, 60s
	StreamIdleTimeout time.Duration // GCA_UPSTREAM_STREAM_IDLE_TIMEOUT, 120s

	KeysFile   string // GCA_KEYS_FILE, none
	GeminiKeys secret // GCA_GEMINI_KEYS (env only): key, project:key or project:tier:key, comma-separated
	Strategy   string // GCA_STRATEGY, most_headroom

	AuthMode   string // GCA_AUTH_MODE, gateway | passthrough
	TokensFile string // GCA_TOKENS_FILE
	AdminToken secret // GCA_ADMIN_TOKEN (env only); the admin API is off without it

	Aliases      string // GCA_MODEL_ALIASES, name=model,... (see defaultAliases)
	DefaultModel string // GCA_DEFAULT_MODEL, none

	ResponseCacheSize int           // GCA_RESPONSE_CACHE_SIZE, 0 (off)
	ResponseCacheTTL  time.Duration // GCA_RESPONSE_CACHE_TTL, 1m
	MaxBodyBytes      int64         // GCA_MAX_BODY_BYTES, 20 MiB
	ReadTimeout       time.Duration // GCA_READ_TIMEOUT, 60s: a body must arrive within it
	CORSOrigins       string        // GCA_CORS_ORIGINS, none
	TrustedProxies    string        // GCA_TRUSTED_PROXIES, none
	ShutdownGrace     time.Duration // GCA_SHUTDOWN_GRACE, 30s
	RevalidateEvery   time.Duration // GCA_REVALIDATE_EVERY, 10m
	LogLevel          string        // GCA_LOG_LEVEL, info
	// PprofAddr serves net/http/pprof on a listener of its own, never on the client
	// API. Off by default; the benchmarks set it to profile the request path.
	PprofAddr string // GCA_PPROF_ADDR, none

	// ClickHouse for the admin API's queries and storage optimizer (/admin/queries,
	// /admin/storage/optimize); they answer 503 without it. The request path never
	// uses it.
	ClickHouseAddr     string // GCA_CLICKHOUSE_ADDR, none (native protocol, comma-separated)
	ClickHouseDatabase string // GCA_CLICKHOUSE_DATABASE, gca
	ClickHouseUser     string // GCA_CLICKHOUSE_USER, default
	ClickHousePassword secret // GCA_CLICKHOUSE_PASSWORD (env only), none
}

// defaultAliases maps common OpenAI and Anthropic model names to Gemini models.
const defaultAliases = "gpt-4o=gemini-2.5-pro,gpt-4.1=gemini-2.5-pro,o3=gemini-2.5-pro,gpt-4o-mini=gemini-2.5-flash," +
	"gpt-4.1-mini=gemini-2.5-flash,gpt-4.1-nano=gemini-2.5-flash-lite,gpt-3.5-turbo=gemini-2.5-flash-lite," +
	"text-embedding-3-small=gemini-embedding-001,text-embedding-3-large=gemini-embedding-001,text-embedding-ada-002=gemini-embedding-001," +
	"claude-opus-4*=gemini-2.5-pro,claude-sonnet-4*=gemini-2.5-flash,claude-3-7-sonnet*=gemini-2.5-flash," +
	"claude-3-5-sonnet*=gemini-2.5-flash,claude-haiku-4*=gemini-2.5-flash-lite,claude-3-5-haiku*=gemini-2.5-flash-lite"

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(name); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return def
}

// RegisterFlags binds the config to flags with defaults taken from the environment.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&c.Listen, "listen", env("GCA_LISTEN", "127.0.0.1:8080"), "address of the client API, health and metrics")
	fs.StringVar(&c.Instance, "instance", env("GCA_INSTANCE", fmt.Sprintf("%s-%d", host, os.Getpid())), "name of this ingress in events")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", env("GCA_KAFKA_BROKERS", "127.0.0.1:9092"), "comma-separated Kafka bootstrap brokers")
	fs.StringVar(&c.ValkeyAddr, "valkey-addr", env("GCA_VALKEY_ADDR", "127.0.0.1:6379"), "Valkey address (comma-separated for a cluster)")
	fs.StringVar(&c.ValkeyPrefix, "valkey-prefix", env("GCA_VALKEY_PREFIX", schemas.DefaultPrefix), "prefix of the Valkey keys")
	fs.DurationVar(&c.ValkeyTimeout, "valkey-timeout", envDur("GCA_VALKEY_TIMEOUT", 250*time.Millisecond), "bound of a key reservation round trip before failing open (keep it well above Valkey's p99 under load)")
	fs.StringVar(&c.TopicRequests, "topic.requests", env("GCA_TOPIC_REQUESTS", schemas.TopicRequests), "topic of request events")
	fs.StringVar(&c.TopicKeyState, "topic.keystate", env("GCA_TOPIC_KEYSTATE", schemas.TopicKeyState), "topic of key-state events")
	fs.StringVar(&c.TopicAudit, "topic.audit", env("GCA_TOPIC_AUDIT", schemas.TopicAudit), "topic of audit events")
	fs.StringVar(&c.SpoolDir, "spool-dir", env("GCA_SPOOL_DIR", ""), "directory of the event spool (default .run/spool/ingress-<port>)")
	fs.Int64Var(&c.SpoolMaxBytes, "spool-max-bytes", envInt("GCA_SPOOL_MAX_BYTES", 1<<30), "bound of the event spool")
	fs.StringVar(&c.SpoolPolicy, "spool-policy", env("GCA_SPOOL_POLICY", string(publish.PolicyReject)), "when the spool is full: reject (503) or drop (count the loss)")
	fs.BoolVar(&c.SpoolSync, "spool-sync", envBool("GCA_SPOOL_SYNC", false), "fsync the spool on every event (survives power loss, costs latency)")
	fs.StringVar(&c.UpstreamURL, "upstream-url", env("GCA_UPSTREAM_URL", upstream.DefaultBaseURL), "Gemini API base URL")
	fs.IntVar(&c.MaxAttempts, "max-attempts", int(envInt("GCA_MAX_ATTEMPTS", 3)), "upstream attempts per request, the first included")
	fs.DurationVar(&c.UpstreamBudget, "upstream-deadline", envDur("GCA_UPSTREAM_DEADLINE", 120*time.Second), "deadline of a request's upstream attempts together")
	fs.DurationVar(&c.AttemptTimeout, "upstream-attempt-timeout", envDur("GCA_UPSTREAM_ATTEMPT_TIMEOUT", 90*time.Second), "bound of one non-streaming upstream attempt (then another key is tried)")
	fs.DurationVar(&c.FirstEventTimeout, "upstream-first-event-timeout", envDur("GCA_UPSTREAM_FIRST_EVENT_TIMEOUT", 60*time.Second), "bound of the wait for a stream's first event (then another key is tried)")
	fs.DurationVar(&c.StreamIdleTimeout, "upstream-stream-idle-timeout", envDur("GCA_UPSTREAM_STREAM_IDLE_TIMEOUT", 120*time.Second), "longest silence between two stream events before the stream is cut")
	fs.StringVar(&c.KeysFile, "keys-file", env("GCA_KEYS_FILE", ""), "JSON file of Gemini keys, projects and limits (watched for changes)")
	c.GeminiKeys = secret(os.Getenv("GCA_GEMINI_KEYS"))
	fs.StringVar(&c.Strategy, "strategy", env("GCA_STRATEGY", "most_headroom"), "key selection: most_headroom, round_robin or weighted")
	fs.StringVar(&c.AuthMode, "auth-mode", env("GCA_AUTH_MODE", "gateway"), "gateway (operator-issued tokens) or passthrough (clients send Gemini keys)")
	fs.StringVar(&c.TokensFile, "tokens-file", env("GCA_TOKENS_FILE", ""), "JSON file of hashed client tokens (gateway mode)")
	c.AdminToken = secret(os.Getenv("GCA_ADMIN_TOKEN"))
	fs.StringVar(&c.Aliases, "model-aliases", env("GCA_MODEL_ALIASES", defaultAliases), "name=model pairs; a name ending in * matches by prefix")
	fs.StringVar(&c.DefaultModel, "default-model", env("GCA_DEFAULT_MODEL", ""), "model for unknown names (empty: unknown names are 404)")
	fs.IntVar(&c.ResponseCacheSize, "response-cache-size", int(envInt("GCA_RESPONSE_CACHE_SIZE", 0)), "entries of the response cache for identical non-streaming requests (0: off)")
	fs.DurationVar(&c.ResponseCacheTTL, "response-cache-ttl", envDur("GCA_RESPONSE_CACHE_TTL", time.Minute), "how long a cached response is served")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", envInt("GCA_MAX_BODY_BYTES", 20<<20), "largest request body accepted")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", envDur("GCA_READ_TIMEOUT", 60*time.Second), "time a client has to send its whole request")
	fs.StringVar(&c.CORSOrigins, "cors-origins", env("GCA_CORS_ORIGINS", ""), "comma-separated browser origins allowed (empty: none)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", env("GCA_TRUSTED_PROXIES", ""), "comma-separated proxies whose X-Forwarded-For is believed")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", envDur("GCA_SHUTDOWN_GRACE", 30*time.Second), "drain time for requests and streams on SIGTERM")
	fs.DurationVar(&c.RevalidateEvery, "revalidate-every", envDur("GCA_REVALIDATE_EVERY", 10*time.Minute), "how often disabled keys are re-probed")
	fs.StringVar(&c.LogLevel, "log-level", env("GCA_LOG_LEVEL", "info"), "debug, info, warn or error")
	fs.StringVar(&c.PprofAddr, "pprof-addr", env("GCA_PPROF_ADDR", ""), "address of a separate net/http/pprof listener (empty: off)")
	fs.StringVar(&c.ClickHouseAddr, "clickhouse-addr", env("GCA_CLICKHOUSE_ADDR", ""), "ClickHouse native-protocol addresses for the admin queries (empty: they answer 503)")
	fs.StringVar(&c.ClickHouseDatabase, "clickhouse-database", env("GCA_CLICKHOUSE_DATABASE", "gca"), "ClickHouse database of the admin queries")
	fs.StringVar(&c.ClickHouseUser, "clickhouse-user", env("GCA_CLICKHOUSE_USER", "default"), "ClickHouse user of the admin queries (password from GCA_CLICKHOUSE_PASSWORD)")
	c.ClickHousePassword = secret(os.Getenv("GCA_CLICKHOUSE_PASSWORD"))
}

// Validate reports every problem at once, before anything connects.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if c.Instance == "" {
		errs = append(errs, errors.New("instance is empty"))
	}
	if c.KafkaBrokers == "" {
		errs = append(errs, errors.New("kafka-brokers is empty"))
	}
	if c.ValkeyAddr == "" {
		errs = append(errs, errors.New("valkey-addr is empty"))
	}
	if c.SpoolMaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("spool-max-bytes %d is below 1 MiB", c.SpoolMaxBytes))
	}
	switch publish.FullPolicy(c.SpoolPolicy) {
	case publish.PolicyReject, publish.PolicyDrop:
	default:
		errs = append(errs, fmt.Errorf("spool-policy %q: use reject or drop", c.SpoolPolicy))
	}
	if !strings.HasPrefix(c.UpstreamURL, "http://") && !strings.HasPrefix(c.UpstreamURL, "https://") {
		errs = append(errs, fmt.Errorf("upstream-url %q must be http(s)", c.UpstreamURL))
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 10 {
		errs = append(errs, fmt.Errorf("max-attempts %d not in 1..10", c.MaxAttempts))
	}
	if c.UpstreamBudget <= 0 {
		errs = append(errs, errors.New("upstream-deadline must be positive"))
	}
	if c.AttemptTimeout <= 0 || c.FirstEventTimeout <= 0 || c.StreamIdleTimeout <= 0 {
		errs = append(errs, errors.New("upstream-attempt-timeout, upstream-first-event-timeout and upstream-stream-idle-timeout must be positive"))
	}
	switch c.AuthMode {
	case "gateway":
		if c.TokensFile == "" {
			errs = append(errs, errors.New("auth-mode gateway needs tokens-file"))
		}
		if c.KeysFile == "" && c.GeminiKeys == "" {
			errs = append(errs, errors.New("auth-mode gateway needs Gemini keys: keys-file or GCA_GEMINI_KEYS"))
		}
	case "passthrough":
	default:
		errs = append(errs, fmt.Errorf("auth-mode %q: use gateway or passthrough", c.AuthMode))
	}
	if _, err := parseAliases(c.Aliases); err != nil {
		errs = append(errs, err)
	}
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("pprof-addr %q: %w", c.PprofAddr, err))
		}
	}
	for _, a := range splitList(c.ClickHouseAddr) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("clickhouse-addr %q: %w", a, err))
		}
	}
	if c.ClickHouseAddr != "" && !identifier.MatchString(c.ClickHouseDatabase) {
		errs = append(errs, fmt.Errorf("clickhouse-database %q must match %s", c.ClickHouseDatabase, identifier))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max-body-bytes %d is too small", c.MaxBodyBytes))
	}
	if c.ValkeyTimeout <= 0 {
		errs = append(errs, errors.New("valkey-timeout must be positive"))
	}
	if c.ReadTimeout <= 0 || c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("read-timeout and shutdown-grace must be positive"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: use debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

func parseAliases(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range splitList(s) {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("model alias %q: want name=model", pair)
		}
		out[k] = v
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
