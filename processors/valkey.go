package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/internal/health"
	"github.com/geminicodeapi/gca/processors/consume"
	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
)

// stateSink feeds a batch to the Valkey state writer: key-state events first (they
// come from their own topic, keyed by project, in order), then the request events.
type stateSink struct {
	w *statesink.Writer
}

func (s stateSink) Write(ctx context.Context, b *consume.Batch) error {
	if err := s.w.ApplyKeyStates(ctx, b.KeyStates); err != nil {
		return fmt.Errorf("apply key states to valkey: %w", err)
	}
	if err := s.w.ApplyRequests(ctx, b.Requests); err != nil {
		return fmt.Errorf("apply requests to valkey: %w", err)
	}
	return nil
}

// addValkeyConsumer joins the Valkey state writer to the process: its own consumer
// group, its own offsets, the same loop as the ClickHouse writer, and a readiness check
// that fails while Valkey is unreachable.
func addValkeyConsumer(cfg *Config, loops []*consume.Loop, m *consume.Metrics, reg prometheus.Registerer, checks *health.Checks, log *slog.Logger) ([]*consume.Loop, func(), error) {
	client, err := valkey.NewClient(valkey.ClientOption{
		InitAddress:       cfg.ValkeyAddr,
		DisableCache:      true,
		ForceSingleClient: len(cfg.ValkeyAddr) == 1,
		Dialer:            net.Dialer{Timeout: 5 * time.Second},
	})
	if err != nil && client == nil {
		return loops, nil, fmt.Errorf("connect valkey %v: %w", cfg.ValkeyAddr, err)
	}
	if err != nil {
		// Valkey is down at start: the loop retries its batches until it answers.
		log.Warn("valkey unreachable at start; state writes wait for it", "err", err)
	}
	w := statesink.New(client, schemas.Keys{Prefix: cfg.ValkeyPrefix}, statesink.Options{Registerer: reg, Logger: log})
	loop, err := consume.New(cfg.Consumer(cfg.ValkeyGroup), stateSink{w: w}, m, log.With("sink", "valkey"))
	if err != nil {
		client.Close()
		return loops, nil, fmt.Errorf("valkey consumer: %w", err)
	}
	checks.Add("valkey", func(ctx context.Context) error {
		return client.Do(ctx, client.B().Ping().Build()).Error()
	})
	return append(loops, loop), client.Close, nil
}
