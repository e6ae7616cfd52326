package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/kafka-go"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/ingress/access"
	"github.com/geminicodeapi/gca/ingress/cache"
	"github.com/geminicodeapi/gca/ingress/gateway"
	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/ingress/publish"
	"github.com/geminicodeapi/gca/ingress/spool"
	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/internal/health"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/gemini"
)

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// app holds what the ingress runs and must close.
type app struct {
	cfg      Config
	log      *slog.Logger
	listener net.Listener
	srv      *http.Server
	vk       valkey.Client
	pool     *keypool.Pool
	auth     *access.Authenticator
	sp       *spool.Spool
	kw       *kafka.Writer
	pub      *publish.Publisher
	up       *upstream.Client
	gw       *gateway.Gateway
	ch       driver.Conn // nil without GCA_CLICKHOUSE_ADDR
}

// wire builds every component from the configuration. Nothing is started yet except
// the listener, so a busy port fails fast.
func wire(ctx context.Context, cfg Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	keysCfg, err := keypool.Load(cfg.KeysFile, string(cfg.GeminiKeys))
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	if err := keysCfg.Validate(); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	vk, err := valkey.NewClient(valkey.ClientOption{
		InitAddress:       splitList(cfg.ValkeyAddr),
		DisableCache:      true,
		ConnWriteTimeout:  2 * time.Second,
		Dialer:            net.Dialer{Timeout: 2 * time.Second},
		DisableRetry:      true,
		ForceSingleClient: len(splitList(cfg.ValkeyAddr)) == 1,
	})
	switch {
	case err != nil && vk != nil:
		// A single-node client comes back usable even when Valkey is down at start:
		// the pool serves from its local view (fail-open) until Valkey answers.
		log.Warn("valkey unreachable at start; serving fail-open within local limits", "addr", cfg.ValkeyAddr, "err", err)
	case err != nil:
		return nil, fmt.Errorf("connect valkey %s: %w", cfg.ValkeyAddr, err)
	}
	a.vk = vk
	pool, err := keypool.New(vk, keysCfg, keypool.Options{
		Prefix: cfg.ValkeyPrefix, Strategy: keypool.Strategy(cfg.Strategy),
		Logger: log, Registerer: reg, InstanceID: cfg.Instance, Timeout: cfg.ValkeyTimeout,
	})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("key pool: %w", err)
	}
	a.pool = pool

	auth, err := newAuthenticator(cfg, pool, access.Options{Valkey: vk, Prefix: cfg.ValkeyPrefix}, log, reg)
	if err != nil {
		a.close()
		return nil, err
	}
	a.auth = auth

	spoolDir := cfg.SpoolDir
	if spoolDir == "" {
		_, port, _ := net.SplitHostPort(cfg.Listen)
		spoolDir = filepath.Join(".run", "spool", "ingress-"+port)
	}
	sp, err := spool.Open(spoolDir, spool.Options{MaxBytes: cfg.SpoolMaxBytes, Sync: cfg.SpoolSync})
	if err != nil {
		a.close()
		return nil, fmt.Errorf("open spool: %w", err)
	}
	a.sp = sp
	if n := sp.TruncatedBytes(); n > 0 {
		log.Error("event spool: dropped bytes after the last intact record (a torn write, or corruption if large)", "bytes", n, "dir", spoolDir)
	}
	a.kw = publish.NewKafkaWriter(splitList(cfg.KafkaBrokers))
	a.pub = publish.New(sp, a.kw, publish.Options{
		Policy: publish.FullPolicy(cfg.SpoolPolicy), Logger: log, Registerer: reg,
		Topics: map[string]string{schemas.TopicRequests: cfg.TopicRequests, schemas.TopicKeyState: cfg.TopicKeyState, schemas.TopicAudit: cfg.TopicAudit},
	})

	a.up = upstream.New(pool, upstream.Options{
		BaseURL: strings.TrimSuffix(cfg.UpstreamURL, "/"), MaxAttempts: cfg.MaxAttempts, Deadline: cfg.UpstreamBudget,
		AttemptTimeout: cfg.AttemptTimeout, FirstEventTimeout: cfg.FirstEventTimeout, StreamIdleTimeout: cfg.StreamIdleTimeout,
		Instance: cfg.Instance, Logger: log,
		OnKeyState: func(e *schemas.KeyStateEvent) {
			if err := a.pub.Publish(schemas.TopicKeyState, e); err != nil {
				log.Error("publish key state event", "err", err, "project", e.Project)
			}
		},
	})

	aliases, _ := parseAliases(cfg.Aliases)
	models := gateway.NewModelCatalog(func(ctx context.Context) ([]gemini.Model, error) {
		return a.up.ListModels(ctx, pool.AnyKey())
	}, aliases, cfg.DefaultModel, time.Hour, nil, log)
	reg.MustRegister(cache.NewCollector(func() []cache.Stats { return a.gw.CacheStats() }))

	checks := &health.Checks{}
	checks.AddDegraded("valkey", func(context.Context) error {
		if pool.Degraded() {
			return errors.New("unreachable: selecting from the local view (fail-open within local limits)")
		}
		return nil
	})
	checks.AddDegraded("kafka", func(ctx context.Context) error {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", splitList(cfg.KafkaBrokers)[0])
		if err != nil {
			return fmt.Errorf("unreachable (events are spooled): %w", err)
		}
		return conn.Close()
	})
	checks.Add("event_spool", func(context.Context) error {
		if a.pub.Full() && a.pub.Policy() == publish.PolicyReject {
			return errors.New("spool full: new requests are refused until Kafka drains it")
		}
		return nil
	})

	var admin *gateway.Admin
	if cfg.AdminToken != "" {
		var ch gateway.ClickHouse
		if cfg.ClickHouseAddr != "" {
			// Opening dials nothing: a ClickHouse that is down only fails the admin
			// queries, never the start or the request path.
			a.ch, err = clickhouse.Open(&clickhouse.Options{
				Addr:        splitList(cfg.ClickHouseAddr),
				Auth:        clickhouse.Auth{Database: cfg.ClickHouseDatabase, Username: cfg.ClickHouseUser, Password: string(cfg.ClickHousePassword)},
				DialTimeout: 5 * time.Second, MaxOpenConns: 4,
			})
			if err != nil {
				a.close()
				return nil, fmt.Errorf("clickhouse %s: %w", cfg.ClickHouseAddr, err)
			}
			ch = a.ch
		}
		var editor gateway.KeyFileEditor
		if cfg.KeysFile != "" {
			editor = &keysFile{path: cfg.KeysFile, reload: a.reload}
		}
		admin = gateway.NewAdmin(gateway.AdminDeps{
			Auth: auth, Pool: pool, Publisher: a.pub, KeysFile: editor, Instance: cfg.Instance,
			Caches: func() []cache.Stats { return a.gw.CacheStats() }, Logger: log,
			Spool:      func() (int64, bool) { return a.pub.Pending(), a.pub.Full() },
			ClickHouse: ch,
		})
	}
	gw, err := gateway.New(gateway.Config{
		Instance: cfg.Instance, MaxBodyBytes: cfg.MaxBodyBytes, Aliases: aliases, DefaultModel: cfg.DefaultModel,
		CORSOrigins: splitList(cfg.CORSOrigins), TrustedProxies: splitList(cfg.TrustedProxies),
		ResponseCacheSize: cfg.ResponseCacheSize, ResponseCacheTTL: cfg.ResponseCacheTTL,
	}, gateway.Deps{
		Upstream: a.up, Auth: auth, Publisher: a.pub, Models: models, Admin: admin,
		UpstreamHealth: gateway.NewUpstreamHealth(func(ctx context.Context) error {
			_, err := a.up.ListModels(ctx, pool.AnyKey())
			return err
		}, 5*time.Minute, nil),
		Checks: checks, Registry: reg, Logger: log,
	})
	if err != nil {
		a.close()
		return nil, err
	}
	a.gw = gw
	a.srv = gw.Server(cfg.Listen, cfg.ReadTimeout)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		a.close()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	a.listener = ln
	go models.Warm(ctx)
	return a, nil
}

// serve runs until ctx ends, then shuts down in order: stop accepting and drain the
// in-flight requests and streams (ShutdownGrace), ship what is left in the spool to
// Kafka (10 s; what does not make it stays in the spool for the next start), close.
func (a *app) serve(ctx context.Context) error {
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(bg); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Error("background task stopped", "task", name, "err", err)
			}
		}()
	}
	start("publisher", a.pub.Run)
	start("keypool", a.pool.Run)
	start("reload", a.reloadLoop)
	start("revalidate", a.revalidateLoop)
	if a.cfg.PprofAddr != "" {
		start("pprof", a.servePprof)
	}

	srvErr := make(chan error, 1)
	go func() { srvErr <- a.srv.Serve(a.listener) }()
	a.log.Info("ingress listening", "addr", a.cfg.Listen, "instance", a.cfg.Instance, "auth_mode", a.cfg.AuthMode, "upstream", a.cfg.UpstreamURL)

	var err error
	select {
	case <-ctx.Done():
	case err = <-srvErr:
	}
	a.log.Info("ingress shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGrace)
	if serr := a.srv.Shutdown(sctx); serr != nil {
		a.log.Warn("drain requests", "err", serr)
		_ = a.srv.Close()
	}
	cancel()
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if ferr := a.pub.Flush(fctx); ferr != nil {
		a.log.Warn("flush events to kafka; the rest stays spooled for the next start", "err", ferr)
	}
	cancel()
	stopBG()
	wg.Wait()
	a.close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (a *app) close() {
	if a.ch != nil {
		if err := a.ch.Close(); err != nil {
			a.log.Warn("close clickhouse", "err", err)
		}
	}
	if a.sp != nil {
		if err := a.sp.Close(); err != nil {
			a.log.Error("close spool", "err", err)
		}
	}
	if a.kw != nil {
		if err := a.kw.Close(); err != nil {
			a.log.Warn("close kafka writer", "err", err)
		}
	}
	if a.vk != nil {
		a.vk.Close()
	}
}

// reloadLoop reloads the keys (and tokens) on SIGHUP and when the keys file changes.
func (a *app) reloadLoop(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	changed := make(chan struct{}, 1)
	if a.cfg.KeysFile != "" {
		go func() {
			if err := keypool.Watch(ctx, a.cfg.KeysFile, func() {
				select {
				case changed <- struct{}{}:
				default:
				}
			}); err != nil && ctx.Err() == nil {
				a.log.Warn("watch keys file; reload with SIGHUP", "err", err)
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		case <-changed:
		}
		if err := a.reload(); err != nil {
			a.log.Error("reload: keeping the current pool and tokens", "err", err)
		}
	}
}

// reload re-reads the keys and tokens and publishes a key_added or key_removed event
// per change, so the pool's history is in the topic like every other key change.
func (a *app) reload() error {
	cfg, err := keypool.Load(a.cfg.KeysFile, string(a.cfg.GeminiKeys))
	if err != nil {
		return fmt.Errorf("reload keys: %w", err)
	}
	old := map[string]string{}
	for _, k := range a.pool.Keys() {
		old[k.Hash] = k.Project
	}
	ch, err := a.pool.Reload(cfg)
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	emit := func(kind, hash, project string) {
		id, err := schemas.NewEventID()
		if err != nil {
			return
		}
		e := &schemas.KeyStateEvent{Type: schemas.TypeKeyState, V: schemas.KeyStateVersion, EventID: id, TimeMs: now,
			Instance: a.cfg.Instance, Kind: kind, KeyHash: hash, Project: project, Reason: schemas.ReasonOperator, Source: schemas.SourceAdmin}
		if err := a.pub.Publish(schemas.TopicKeyState, e); err != nil {
			a.log.Error("publish key change", "kind", kind, "key_id", hash, "err", err)
		}
	}
	for _, h := range ch.Added {
		if k := a.pool.Key(h); k != nil {
			emit(schemas.KindKeyAdded, h, k.Project())
		}
	}
	for _, h := range ch.Removed {
		emit(schemas.KindKeyRemoved, h, old[h])
	}
	a.log.Info("keys reloaded", "added", len(ch.Added), "removed", len(ch.Removed))
	if err := a.auth.Reload(); err != nil {
		return fmt.Errorf("reload tokens: %w", err)
	}
	return nil
}
