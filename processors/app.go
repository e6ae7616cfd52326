package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/geminicodeapi/gca/internal/health"
	"github.com/geminicodeapi/gca/processors/chsink"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/retention"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

const usage = `usage: processors [run|migrate|replay|check] [flags]

  run      (default) create topics and apply the ClickHouse migrations, then consume the
           event topics into ClickHouse until SIGTERM
  migrate  create topics and apply the ClickHouse migrations, then exit
  replay   rebuild Valkey state and ClickHouse tables from the topics (processors/replay)
  check    compare the live Valkey state with the events, -repair to fix it

Every flag also reads a GCA_* environment variable; see -h of a subcommand.
`

// startupTimeout bounds how long setup waits for Kafka and ClickHouse to come up.
const startupTimeout = 2 * time.Minute

// run is the whole program; main only adds signals and the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "replay":
		return runReplay(ctx, args, getenv, stderr)
	case "check":
		return runCheck(ctx, args, getenv, stderr)
	}
	if cmd != "run" && cmd != "migrate" {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	cfg := DefaultConfig()
	cfg.LoadEnv(getenv)
	fs := flag.NewFlagSet("processors "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage, "\nflags of ", cmd, ":\n")
		fs.PrintDefaults()
	}
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(&cfg, stderr)

	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        cfg.ClickHouseAddr,
		Auth:        clickhouse.Auth{Username: cfg.ClickHouseUser, Password: string(cfg.ClickHousePassword)},
		DialTimeout: 5 * time.Second,
		// Lookups and inserts of one loop are sequential; a few spare for health
		// checks and the retention job.
		MaxOpenConns: 8,
	})
	if err != nil {
		return fmt.Errorf("open clickhouse %v: %w", cfg.ClickHouseAddr, err)
	}
	defer func() {
		if err := conn.Close(); err != nil {
			log.Warn("close clickhouse", "err", err)
		}
	}()

	if cmd == "migrate" {
		v, err := setup(ctx, &cfg, conn, log)
		if err != nil {
			return err
		}
		log.Info("topics and migrations applied", "clickhouse_version", v.String(), "database", cfg.ClickHouseDatabase)
		return nil
	}
	return serve(ctx, &cfg, conn, log)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("instance", cfg.Instance)
}

// serve runs the consumers until ctx ends, then shuts down in order: stop fetching,
// write or drop the batch in hand, leave the groups, stop the ops server.
func serve(ctx context.Context, cfg *Config, conn driver.Conn, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	checks := &health.Checks{}
	checks.Add("clickhouse", conn.Ping)
	checks.Add("kafka", kafkaCheck(cfg))
	ops, _, err := startOps(cfg.ListenAddr, reg, checks, log, adminRoutes(cfg, log)...)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := ops.Shutdown(sctx); err != nil {
			log.Warn("stop ops server", "err", err)
		}
	}()

	v, err := setup(ctx, cfg, conn, log)
	if err != nil {
		return err
	}
	loopMetrics := consume.NewMetrics(reg)
	sink := chsink.New(conn, v, cfg.Schema(), chsink.NewMetrics(reg))
	chLoop, err := consume.New(cfg.Consumer(cfg.ClickHouseGroup), sink, loopMetrics, log)
	if err != nil {
		return err
	}
	loops := []*consume.Loop{chLoop}
	loops, closeValkey, err := addValkeyConsumer(cfg, loops, loopMetrics, reg, checks, log)
	if err != nil {
		return errors.Join(err, chLoop.Close())
	}
	defer closeValkey()

	g, gctx := errgroup.WithContext(ctx)
	for _, l := range loops {
		g.Go(func() error { return l.Run(gctx) })
	}
	if job := retention.New(conn, v, cfg.Schema(), log, time.Now); job.Needed() {
		g.Go(func() error {
			job.Run(gctx, cfg.RetentionInterval)
			return nil
		})
	}
	if cfg.StorageAutoOptimize { // query.go
		g.Go(func() error {
			autoOptimize(gctx, cfg, conn, log)
			return nil
		})
	}
	err = g.Wait()
	for _, l := range loops {
		if cerr := l.Close(); cerr != nil {
			log.Warn("close consumer", "err", cerr)
		}
	}
	log.Info("stopped")
	return err
}

// setup creates the topics and applies the migrations, retrying while Kafka or
// ClickHouse are still starting.
func setup(ctx context.Context, cfg *Config, conn driver.Conn, log *slog.Logger) (chddl.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	var v chddl.Version
	for attempt := 1; ; attempt++ {
		err := ensureTopics(ctx, cfg)
		if err == nil {
			err = chddl.Migrate(ctx, conn, cfg.Schema())
		}
		if err == nil {
			v, err = chddl.ServerVersion(ctx, conn)
		}
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return v, fmt.Errorf("set up topics and schema: %w", err)
		}
		log.Warn("set up topics and schema: retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("set up topics and schema: %w", err)
		case <-time.After(min(time.Duration(attempt)*time.Second, 5*time.Second)):
		}
	}
}

// ensureTopics creates the topics that do not exist, with the partitions and retention
// of schemas.Topics() and the broker's default replication factor, and waits until
// every partition has a leader (a consumer or writer racing topic creation sees
// "unknown topic" for seconds).
func ensureTopics(ctx context.Context, cfg *Config) error {
	names := map[string]string{
		schemas.TopicRequests:   cfg.TopicRequests,
		schemas.TopicKeyState:   cfg.TopicKeyState,
		schemas.TopicAudit:      cfg.TopicAudit,
		schemas.TopicDeadLetter: cfg.TopicDeadLetter,
	}
	req := &kafka.CreateTopicsRequest{}
	var want []string
	for _, spec := range schemas.Topics() {
		name := names[spec.Name]
		want = append(want, name)
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic:             name,
			NumPartitions:     spec.Partitions,
			ReplicationFactor: -1,
			ConfigEntries: []kafka.ConfigEntry{{
				ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(int64(spec.RetentionHours)*3_600_000, 10),
			}},
		})
	}
	c := &kafka.Client{Addr: kafka.TCP(cfg.KafkaBrokers...), Timeout: 10 * time.Second}
	resp, err := c.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: want})
		if err == nil && allLed(md) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for topic leaders: %w", errors.Join(ctx.Err(), err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLed(md *kafka.MetadataResponse) bool {
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
	}
	return len(md.Topics) > 0
}

func kafkaCheck(cfg *Config) health.CheckFunc {
	c := &kafka.Client{Addr: kafka.TCP(cfg.KafkaBrokers...), Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{cfg.TopicRequests}})
		if err != nil {
			return err
		}
		for _, t := range md.Topics {
			if t.Error != nil {
				return fmt.Errorf("topic %s: %w", t.Name, t.Error)
			}
		}
		return nil
	}
}

// startOps serves /health/live, /health/ready and /metrics, and returns the address
// it listens on.
func startOps(addr string, reg *prometheus.Registry, checks *health.Checks, log *slog.Logger, routes ...opsRoute) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/health/live", health.LiveHandler())
	mux.Handle("/health/ready", checks.ReadyHandler(2*time.Second))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	for _, r := range routes {
		mux.Handle(r.pattern, r.handler)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ops server", "err", err)
		}
	}()
	log.Info("ops server listening", "addr", ln.Addr().String())
	return srv, ln.Addr().String(), nil
}
