// Command ingress is the gateway's HTTP server: the OpenAI, Anthropic and Gemini client
// protocols in front of a pool of Gemini keys. See the README for configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && args[0] == "token" {
		return tokenCommand(args[1:], os.Stdout, os.Stderr)
	}
	fs := flag.NewFlagSet("ingress", flag.ContinueOnError)
	var cfg Config
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "ingress: invalid configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	app, err := wire(ctx, cfg, log)
	if err != nil {
		log.Error("start ingress", "err", err)
		return 1
	}
	if err := app.serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("ingress stopped", "err", err)
		return 1
	}
	return 0
}
