//go:build bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
)

// The helper roles this test binary plays when started with GCA_BENCH_ROLE, so that
// they are processes of their own that can be pinned (and measured) like the ingress.
const (
	roleEnv = "GCA_BENCH_ROLE"
	// roleProxy is the baseline of part 2: a bare httputil.ReverseProxy hop
	// (GCA_BENCH_LISTEN → GCA_BENCH_TARGET) with the ingress's upstream transport.
	roleProxy = "proxy"
	// roleState is the Valkey state writer (processors/statesink through
	// processors/consume) over GCA_BENCH_TOPICS, group GCA_BENCH_GROUP, key prefix
	// GCA_BENCH_PREFIX.
	roleState = "state"
)

func runRole(role string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("role", role)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch role {
	case roleProxy:
		err = runProxy(ctx, os.Getenv("GCA_BENCH_LISTEN"), os.Getenv("GCA_BENCH_TARGET"))
	case roleState:
		err = runStateConsumer(ctx, log)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		log.Error("role stopped", "err", err)
		return 1
	}
	return 0
}

// runProxy is the bare hop: no parsing, no key choice, no events. It uses the same
// transport (idle connections per host) and server timeouts as the ingress, so that
// the comparison is about what the gateway does, not about connection handling.
func runProxy(ctx context.Context, listen, target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("proxy target %q: %v", target, err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = upstream.NewTransport()
	rp.FlushInterval = -1 // streams pass through chunk by chunk, as through the gateway
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// stateSink adapts statesink.Writer to consume.Sink: request events become quota
// counters, health and applied marks; key-state events cool-downs and disabled keys.
// It is what the processors binary will run in its Valkey consumer group.
type stateSink struct{ w *statesink.Writer }

func (s stateSink) Write(ctx context.Context, b *consume.Batch) error {
	if err := s.w.ApplyRequests(ctx, b.Requests); err != nil {
		return err
	}
	return s.w.ApplyKeyStates(ctx, b.KeyStates)
}

func newValkey(addr string) (valkey.Client, error) { return newValkeyDB(addr, 0) }

func newValkeyDB(addr string, db int) (valkey.Client, error) {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true, SelectDB: db})
	if err != nil {
		return nil, fmt.Errorf("connect valkey %s: %w", addr, err)
	}
	return c, nil
}

func runStateConsumer(ctx context.Context, log *slog.Logger) error {
	vk, err := newValkey(os.Getenv("GCA_VALKEY_ADDR"))
	if err != nil {
		return err
	}
	defer vk.Close()
	reg := prometheus.NewRegistry()
	sink := stateSink{statesink.New(vk, schemas.Keys{Prefix: os.Getenv("GCA_BENCH_PREFIX")}, statesink.Options{Registerer: reg, Logger: log})}
	loop, err := consume.New(consume.Config{
		Brokers:         strings.Split(os.Getenv("GCA_KAFKA_BROKERS"), ","),
		GroupID:         os.Getenv("GCA_BENCH_GROUP"),
		Topics:          strings.Split(os.Getenv("GCA_BENCH_TOPICS"), ","),
		DeadLetterTopic: os.Getenv("GCA_BENCH_DEADLETTER"),
		// Batches are cut as the processors cut them by default (10000 records or
		// 200 ms): how long reservations stay pending is part of what is measured.
	}, sink, consume.NewMetrics(reg), log)
	if err != nil {
		return err
	}
	err = loop.Run(ctx)
	return errors.Join(err, loop.Close())
}
