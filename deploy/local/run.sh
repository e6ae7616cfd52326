#!/usr/bin/env bash
# `make run` / `make stop`: the whole gateway on this machine.
#
# start: the stack (Kafka, ClickHouse, Valkey), the processors, and the ingress on
#        127.0.0.1:8080. Without Gemini keys (GCA_GEMINI_KEYS or GCA_KEYS_FILE) the Gemini
#        simulator runs on 127.0.0.1:8090 and serves as the upstream, with a demo pool of
#        3 projects x 2 keys. A demo client token is issued once and written to
#        .run/demo-token; the script ends by printing a curl that uses it.
# stop:  stops what start started (by pid file), then the stack.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUN="${GCA_RUN_DIR:-$ROOT/.run}"
BIN="$RUN/bin"
PIDS="$RUN/pids"
LOGS="$RUN/logs"
LISTEN="${GCA_LISTEN:-127.0.0.1:8080}"
SIM_ADDR="${GCA_SIM_ADDR:-127.0.0.1:8090}"
OPS_ADDR="${GCA_PROCESSORS_LISTEN:-127.0.0.1:8081}"
mkdir -p "$BIN" "$PIDS" "$LOGS"

alive() { [[ -f "$PIDS/$1.pid" ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

wait_http() { # name url seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "run: $1 did not become ready at $2; last log lines:" >&2
  tail -n 30 "$LOGS/$1.log" >&2 || true
  return 1
}

launch() { # name cmd...
  local name=$1; shift
  if alive "$name"; then echo "run: $name already running (pid $(cat "$PIDS/$name.pid"))"; return; fi
  nohup "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
  echo "run: started $name (pid $!, log $LOGS/$name.log)"
}

stop_one() {
  local name=$1 pid
  alive "$name" || { rm -f "$PIDS/$name.pid"; return; }
  pid=$(cat "$PIDS/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDS/$name.pid"
  echo "run: stopped $name"
}

start() {
  "$ROOT/deploy/local/stack.sh" start
  # shellcheck disable=SC1090
  source <("$ROOT/deploy/local/stack.sh" env)
  (cd "$ROOT" && go build -o "$BIN/ingress" ./ingress && go build -o "$BIN/processors" ./processors && go build -o "$BIN/gemini-sim" ./simulator)

  "$BIN/processors" migrate >>"$LOGS/processors.log" 2>&1
  launch processors "$BIN/processors" run -listen "$OPS_ADDR"
  wait_http processors "http://$OPS_ADDR/health/ready" 60

  local upstream="${GCA_UPSTREAM_URL:-}"
  local keys_file="${GCA_KEYS_FILE:-}"
  if [[ -z "${GCA_GEMINI_KEYS:-}" && -z "$keys_file" ]]; then
    launch gemini-sim "$BIN/gemini-sim" -addr "$SIM_ADDR" -keys-out "$RUN/demo-keys.json"
    wait_http gemini-sim "http://$SIM_ADDR/sim/stats" 30
    upstream="http://$SIM_ADDR"
    keys_file="$RUN/demo-keys.json"
    echo "run: no Gemini keys configured: the simulator at $upstream is the upstream (demo pool in $keys_file)"
  fi
  local tokens="${GCA_TOKENS_FILE:-$RUN/tokens.json}"
  if [[ ! -s "$RUN/admin-token" ]]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/admin-token")
  fi
  if [[ ! -s "$RUN/demo-token" ]]; then
    "$BIN/ingress" token add -tokens-file "$tokens" -name demo >"$RUN/demo-token"
    chmod 600 "$RUN/demo-token"
  fi
  GCA_UPSTREAM_URL="${upstream:-https://generativelanguage.googleapis.com}" GCA_KEYS_FILE="$keys_file" \
    GCA_TOKENS_FILE="$tokens" GCA_LISTEN="$LISTEN" GCA_SPOOL_DIR="$RUN/spool/ingress" \
    GCA_ADMIN_TOKEN="${GCA_ADMIN_TOKEN:-$(cat "$RUN/admin-token")}" GCA_CLICKHOUSE_ADDR="$GCA_CLICKHOUSE_ADDR" \
    launch ingress "$BIN/ingress"
  wait_http ingress "http://$LISTEN/health/ready" 60

  local token
  token=$(cat "$RUN/demo-token")
  cat <<MSG

Gemini Code API is running: ingress http://$LISTEN, processors http://$OPS_ADDR, logs in $LOGS.
Try it (the demo token is in .run/demo-token):

  curl -s http://$LISTEN/v1beta/models/gemini-2.5-flash:generateContent \\
    -H "x-goog-api-key: $token" -H 'Content-Type: application/json' \\
    -d '{"contents":[{"role":"user","parts":[{"text":"Hello, Gemini"}]}]}'

  curl -s http://$LISTEN/v1/chat/completions -H "Authorization: Bearer $token" \\
    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'

Admin API (token in .run/admin-token):  curl -s -H "Authorization: Bearer \$(cat .run/admin-token)" http://$LISTEN/admin/keys
Then see the row:  clickhouse-client --port 9000 -q 'SELECT timestamp, client_type, model, status_code, total_tokens FROM gca.request_logs ORDER BY timestamp DESC LIMIT 5'
Stop everything:   make stop
MSG
}

case "${1:-}" in
  start) start ;;
  stop)
    stop_one ingress
    stop_one gemini-sim
    stop_one processors
    "$ROOT/deploy/local/stack.sh" stop
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
