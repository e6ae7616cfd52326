// Package e2e holds the end-to-end tests: real ingress and processors processes, the
// real local Kafka, ClickHouse and Valkey, the Gemini simulator as upstream. They run
// under `make test-integration` (build tag integration).
package e2e
