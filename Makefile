# Gemini Code API — make targets. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

RUN     ?= $(CURDIR)/.run
BIN     := $(RUN)/bin
GO      ?= go
STACK   := deploy/local/stack.sh
export GCA_RUN_DIR := $(RUN)

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Start the stack, processors and ingress (the simulator as upstream without Gemini keys); prints a curl to try.
	@deploy/local/run.sh start

.PHONY: stop
stop: ## Stop what `make run` started (ingress, processors, simulator, stack).
	@deploy/local/run.sh stop

.PHONY: build
build: ## Build the binaries into .run/bin.
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ingress ./ingress
	$(GO) build -o $(BIN)/processors ./processors
	$(GO) build -o $(BIN)/gemini-sim ./simulator

.PHONY: test
test: ## Start what the tests need, then run unit, integration and fault tests.
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-integration
	@$(MAKE) --no-print-directory test-faults

.PHONY: test-unit
test-unit: ## Unit tests (no servers), vet, and a short fuzz of every decoder.
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory fuzz-short

.PHONY: test-integration
test-integration: stack-up ## Integration tests against the real Kafka, ClickHouse and Valkey (starts them).
	@deploy/local/chdb.sh >/dev/null
	source <($(STACK) env) && source <(deploy/local/chdb.sh env) && \
	  $(GO) test -tags integration -count=1 -p 2 -timeout 25m ./...

.PHONY: test-faults
test-faults: stack-up build ## Fault scenarios (Kafka/ClickHouse/Valkey down, crashes); prints the loss table.
	source <($(STACK) env) && set -o pipefail && GCA_E2E_BIN=$(BIN) $(GO) test -tags faults -count=1 -p 1 -timeout 20m -v -run 'TestFault' ./faults/ 2>&1 | tee $(RUN)/faults.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|scenario|\|)' || (tail -50 $(RUN)/faults.log; exit 1)

FUZZTIME ?= 10s
.PHONY: fuzz-short
# A failing input is written to the package's testdata/fuzz and runs first on every later
# run, so a target that fails is run once more: a real failure fails again at once, while
# a failure of the fuzzing engine itself (a worker that hung on a loaded machine) does
# not stop CI. Either way the output of the failed run is printed.
fuzz-short: ## Run each fuzz target for FUZZTIME (default 10s).
	@set -e; mkdir -p $(RUN); for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$spec/*_test.go | sed 's/func //'); do \
	    echo "fuzz $$spec $$f"; \
	    if ! $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime=3s $$spec >$(RUN)/fuzz.log 2>&1; then \
	      tail -40 $(RUN)/fuzz.log; echo "fuzz $$spec $$f failed; once more"; \
	      $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime=3s $$spec >$(RUN)/fuzz.log 2>&1 || { tail -40 $(RUN)/fuzz.log; exit 1; }; \
	    fi; \
	  done; done

BENCH_ARGS ?=
BENCH_TEST := $(GO) test -tags bench -count=1 -run '^TestBench$$' -v ./bench
# A run of some parts only (-parts ...) goes to .run/, so it never replaces the full run
# the README's table comes from.
BENCH_OUT = $(if $(findstring -parts,$(BENCH_ARGS)),$(RUN)/bench-parts.json,results.json)

.PHONY: bench
bench: stack-up build ## Benchmarks side by side (latency, throughput, streams, pipeline, replay, quota), < 15 min; writes bench/results.json.
	@mkdir -p $(RUN)
	set -o pipefail; source <($(STACK) env) && GCA_E2E_BIN=$(BIN) $(BENCH_TEST) -timeout 20m -args -out $(BENCH_OUT) $(BENCH_ARGS) 2>&1 | tee $(RUN)/bench.log

.PHONY: bench-smoke
bench-smoke: stack-up build ## Every benchmark with tiny sizes (< 1 min, for CI): fails when a part errors, not when a target is missed.
	@mkdir -p $(RUN)
	set -o pipefail; source <($(STACK) env) && GCA_E2E_BIN=$(BIN) $(BENCH_TEST) -timeout 5m -args -smoke -out $(RUN)/bench-smoke.json $(BENCH_ARGS) 2>&1 | tee $(RUN)/bench-smoke.log

.PHONY: stack-up
stack-up: ## Install (if missing) and start Kafka, ClickHouse and Valkey under .run/.
	@$(STACK) start

.PHONY: stack-down
stack-down: ## Stop the stack (only what it started).
	@$(STACK) stop

.PHONY: stack-status
stack-status: ## Show the stack's services.
	@$(STACK) status

.PHONY: migrate
migrate: stack-up ## Create the topics and apply the ClickHouse migrations.
	source <($(STACK) env) && $(GO) run ./processors migrate

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go')
