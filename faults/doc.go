// Package faults proves the gateway's delivery and safety promises under failure. Its
// tests (build tag faults, run by `make test-faults`) start the real ingress and
// processors binaries against the real Kafka, ClickHouse and Valkey of the local stack,
// stop and restart those services, kill the binaries, make the simulated Gemini API
// misbehave and send hostile input, and then compare what clients were served with what
// reached Kafka and ClickHouse. At the end they print one table row per scenario:
// requests served, events produced, rows found, lost and duplicated.
//
// The tests stop and start services with deploy/local/stack.sh stop-one/start-one, for
// the stack that GCA_RUN_DIR and the GCA_*_PORT variables describe; they refuse to run
// when those do not match the addresses in GCA_KAFKA_BROKERS, GCA_CLICKHOUSE_ADDR and
// GCA_VALKEY_ADDR, so a run can never stop a stack it is not using. All traffic goes to
// 127.0.0.1.
package faults
