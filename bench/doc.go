// Package bench measures the gateway side by side with its baselines, on the local
// stack (real Kafka, ClickHouse and Valkey) and the Gemini simulator, and prints one
// table: every figure repeated, its median and spread, its baseline measured in the
// same run and the ratio to it, and whether it meets the target of issue 8.
//
//	make bench          # full run, < 15 minutes; writes bench/results.json
//	make bench-smoke    # every part with tiny sizes, < 1 minute; fails when a part errors
//	make bench BENCH_ARGS='-parts latency,quota -pin=false'   # writes .run/bench-parts.json
//
// The benchmarks live in files built only with the "bench" tag, so `make test` never
// runs them. The parts:
//
//  1. latency: one connection, direct calls to the simulator and calls through the
//     gateway interleaved pair by pair; the added latency is gateway minus its
//     neighbouring direct sample (native, OpenAI-translated, first chunk of a stream),
//     with a bare reverse-proxy hop measured the same way, and the ingress's Valkey
//     reservation round trip next to a plain GET.
//  2. throughput: 64 connections, gateway vs a bare httputil.ReverseProxy hop to the
//     same simulator, runs interleaved (ABBA); also the server's CPU time per request.
//  3. streams: 2,000 concurrent SSE streams at 20 chunks/s through one ingress: 60
//     chunks each, so that they are all open at once.
//  4. pipeline: events produced at a steady rate by the ingress's Kafka writer,
//     consumed by processors/consume into processors/chsink and processors/statesink.
//  5. replay: 1M events waiting in a fresh topic consumed by fresh consumer groups
//     into fresh ClickHouse tables and a fresh Valkey prefix, as a replay does.
//  6. quota: a burst against a small pool through two ingress instances.
//
// A full run also writes CPU profiles of the ingress (throughput, streams) and of the
// consumers (replay), with their top functions, under $GCA_RUN_DIR/bench.
//
// # CPU layout
//
// On a machine with at least two CPUs and taskset, the load generator (this test
// process) runs on the first CPU and the servers under test — the ingress or the bare
// proxy, and the simulator — on the others, so the server side is the bottleneck in
// parts 1–3 and both sides of every ratio get the same core. The Valkey state consumer
// that the gateway's steady state needs (it turns the ingress's pending reservations
// into counters) runs as its own process, unpinned, like Kafka, ClickHouse and Valkey,
// which the stack shares with the rest of the machine. Parts 4 and 5 have no load
// generator apart from the pipeline: they run unpinned on every CPU. Part 6 measures
// counts, not time. Pinning keeps this run's processes apart; it reserves nothing, so
// other work on the machine still competes for both CPUs (the load average at the
// start and the end of the run is in results.json).
//
// Helper processes (the bare proxy, the state consumer) are this test binary started
// again with GCA_BENCH_ROLE set; see roles_test.go. Parts 4 and 5 keep their Valkey
// state in a database of their own (see claimValkeyDB), emptied at the end.
package bench
