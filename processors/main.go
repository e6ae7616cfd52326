// Command processors turns the event topics into derived state: the ClickHouse tables
// (request_logs, error_logs, key_state_log, audit_log, and through materialized views
// system_stats and api_key_metrics) and, in its own consumer group, the Valkey state the
// ingress reads. Offsets are committed only after a batch is written; the sinks drop
// events they already hold, so redelivery and replay never double count.
//
//	processors [run]    create topics, migrate ClickHouse, consume until SIGTERM
//	processors migrate  create topics, migrate ClickHouse, exit
//	processors query    list and run the analysts' queries (query.go)
//	processors storage  storage recommendations, executed with --execute (query.go)
//	processors replay   rebuild state from the topics, compare, switch (replaycmd.go)
//	processors check    compare live Valkey state with the events, -repair (replaycmd.go)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	var err error
	if len(os.Args) > 1 && isTool(os.Args[1]) {
		err = runTool(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	} else {
		err = run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "processors:", err)
		os.Exit(1)
	}
}
