// Command simulator serves a simulated Gemini API (package gemsim) for demos, tests and
// benchmarks of the gateway:
//
//	go run ./simulator -addr 127.0.0.1:8090 -config sim.json
//
// Keys come from the config file, from GCA_SIM_KEYS ("project:key,..." or "key,..."),
// or, with neither, from a printed demo pool of three projects with two keys each.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// shutdownTimeout bounds how long open streams may finish after SIGTERM.
const shutdownTimeout = 10 * time.Second

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger, os.Args[1:]); err != nil {
		logger.Error("simulator stopped", "err", err)
		os.Exit(1)
	}
}

// run reads flags, environment and config file, validates, and serves until SIGTERM or
// SIGINT, then shuts down gracefully.
func run(logger *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	addr := fs.String("addr", gemsim.DefaultAddr, "listen address")
	configPath := fs.String("config", "", "JSON config file (optional)")
	latency := fs.Duration("latency", 0, "delay before the first byte of every Gemini call (overrides the file)")
	chunkInterval := fs.Duration("chunk-interval", 0, "pause between stream chunks (overrides the file)")
	keysOut := fs.String("keys-out", "", "write the simulator's keys, grouped by project, as a gateway keys file (make run uses it)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	var cfg gemsim.Config
	if *configPath != "" {
		var err error
		if cfg, err = gemsim.LoadConfig(*configPath); err != nil {
			return err
		}
	}
	if env := os.Getenv("GCA_SIM_KEYS"); env != "" {
		projects, err := gemsim.ParseKeys(env)
		if err != nil {
			return fmt.Errorf("read GCA_SIM_KEYS: %w", err)
		}
		cfg.Projects = append(cfg.Projects, projects...)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "latency":
			cfg.Latency = gemsim.Duration(*latency)
		case "chunk-interval":
			cfg.ChunkInterval = gemsim.Duration(*chunkInterval)
		}
	})
	demo := len(cfg.Projects) == 0
	if demo {
		cfg.Projects = gemsim.DemoProjects()
	}
	cfg.Logger = logger
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid simulator config: %w", err)
	}

	if *keysOut != "" {
		if err := writeKeysFile(*keysOut, cfg.Projects); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: gemsim.New(cfg), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	logger.Info("gemini simulator listening", "addr", ln.Addr().String(), "projects", len(cfg.Projects))
	if demo {
		for _, p := range cfg.Projects {
			logger.Info("demo project", "project", p.ID, "tier", p.Tier, "keys", strings.Join(p.Keys, ","))
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		closeErr := srv.Close()
		return fmt.Errorf("shut down: %w", errors.Join(err, closeErr))
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// writeKeysFile writes the projects and their keys in the gateway's keys-file format
// ({"keys":[{"key","project","tier"}]}), so a demo gateway uses exactly the simulator's
// pool. The file holds fake keys only; it is still written 0600, as a real one must be.
func writeKeysFile(path string, projects []gemsim.ProjectConfig) error {
	type key struct {
		Key     string `json:"key"`
		Project string `json:"project"`
		Tier    string `json:"tier,omitempty"`
	}
	var out struct {
		Keys []key `json:"keys"`
	}
	for _, p := range projects {
		tier := p.Tier // the simulator's tier names are the gateway's
		if tier == "" {
			tier = gemsim.TierFree
		}
		for _, k := range p.Keys {
			out.Keys = append(out.Keys, key{Key: k, Project: p.ID, Tier: tier})
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode keys file: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write keys file %s: %w", path, err)
	}
	return nil
}
