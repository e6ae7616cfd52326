#!/usr/bin/env bash
# Local service stack for gca: Kafka 4.x (KRaft, single node), ClickHouse 18.16 (Debian),
# Valkey 8 (bookworm-backports; Debian's redis-server as a fallback). No Docker: everything
# runs as plain processes on 127.0.0.1 with its state under the run folder.
#
#   stack.sh install                  install what is missing (apt + Maven Central), idempotent
#   stack.sh start                    install if needed, start all, wait until ready, print summary
#   stack.sh stop                     stop what this script started (pid files), TERM then KILL
#   stack.sh status                   one line per service (exit 0 if all running, 3 otherwise)
#   stack.sh env                      export lines with the service addresses
#   stack.sh clean                    stop, then delete data/logs/pids (keeps the Kafka jars)
#   stack.sh start-one SVC            start one service (kafka|clickhouse|valkey), same data
#   stack.sh stop-one SVC             stop one service
#   stack.sh kafka-run CLASS [ARGS]   run a Kafka CLI class (e.g. org.apache.kafka.tools.TopicCommand)
#
# Environment: GCA_RUN_DIR (default <repo>/.run), GCA_KAFKA_PORT (9092),
# GCA_KAFKA_CONTROLLER_PORT (9093), GCA_CLICKHOUSE_PORT (9000), GCA_CLICKHOUSE_HTTP_PORT (8123),
# GCA_VALKEY_PORT (6379), GCA_KAFKA_VERSION (4.1.1), GCA_KAFKA_HEAP_OPTS (-Xms256m -Xmx768m).
# See deploy/local/README.md.
set -euo pipefail

# Debian puts clickhouse-server in /usr/sbin; make sure it is found for non-login shells too.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
RUN=${GCA_RUN_DIR:-$ROOT/.run}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)

KAFKA_PORT=${GCA_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${GCA_KAFKA_CONTROLLER_PORT:-9093}
CH_PORT=${GCA_CLICKHOUSE_PORT:-9000}
CH_HTTP_PORT=${GCA_CLICKHOUSE_HTTP_PORT:-8123}
VALKEY_PORT=${GCA_VALKEY_PORT:-6379}

KAFKA_VERSION=${GCA_KAFKA_VERSION:-4.1.1}
# Tried in order when $KAFKA_VERSION cannot be resolved from Maven Central.
KAFKA_FALLBACK_VERSIONS=${GCA_KAFKA_FALLBACK_VERSIONS:-4.0.1 4.2.0}
KAFKA_HEAP_OPTS=${GCA_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
KAFKA_WAIT_SECS=${GCA_KAFKA_WAIT_SECS:-90}
WAIT_SECS=${GCA_STACK_WAIT_SECS:-60}
STOP_WAIT_SECS=20

SERVICES=(kafka clickhouse valkey)
LOGS=$RUN/logs
PIDS=$RUN/pids
KAFKA_DIR=$RUN/kafka
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_DATA=$KAFKA_DIR/data
KAFKA_STAMP=$KAFKA_LIBS/.gca-installed
CH_DIR=$RUN/clickhouse
VALKEY_DIR=$RUN/valkey
INSTALL_LOG=$LOGS/install.log

JAVA=""
APT_UPDATED=0
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_CREATED=0

# ----------------------------------------------------------------------------- helpers

say()  { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die()  { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

cleanup() {
    if (( POLICY_RC_CREATED )); then rm -f "$POLICY_RC"; POLICY_RC_CREATED=0; fi
}
trap cleanup EXIT

ensure_dirs() { mkdir -p "$LOGS" "$PIDS" "$KAFKA_DIR" "$CH_DIR" "$VALKEY_DIR"; }

# Serialise mutating subcommands: several engineers/tests may call this script at once.
take_lock() {
    ensure_dirs
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$RUN/.stack.lock"
        flock -w 600 9 || die "another stack.sh is still running (lock $RUN/.stack.lock)"
    fi
}

# Substitute @NAME@ placeholders: render SRC DST NAME=VALUE...
render() {
    local src=$1 dst=$2 kv k v content
    shift 2
    content=$(<"$src")
    for kv in "$@"; do
        k=${kv%%=*}; v=${kv#*=}
        content=${content//@"$k"@/$v}
    done
    printf '%s\n' "$content" >"$dst.tmp.$$"
    mv -f "$dst.tmp.$$" "$dst"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

elapsed() { printf '%ss' "$(( SECONDS - $1 ))"; }

# ----------------------------------------------------------------------------- binaries

find_java() {
    if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then JAVA=$JAVA_HOME/bin/java
    elif [[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]]; then JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
    elif command -v java >/dev/null 2>&1; then JAVA=$(command -v java)
    else JAVA=""; return 1
    fi
}

ch_server_bin() {
    if command -v clickhouse-server >/dev/null 2>&1; then command -v clickhouse-server
    elif command -v clickhouse >/dev/null 2>&1; then echo "$(command -v clickhouse) server"
    else return 1
    fi
}
ch_client_bin() {
    if command -v clickhouse-client >/dev/null 2>&1; then command -v clickhouse-client
    elif command -v clickhouse >/dev/null 2>&1; then echo "$(command -v clickhouse) client"
    else return 1
    fi
}
valkey_server_bin() {
    if command -v valkey-server >/dev/null 2>&1; then command -v valkey-server
    elif command -v redis-server >/dev/null 2>&1; then command -v redis-server
    else return 1
    fi
}
valkey_cli_bin() {
    if command -v valkey-cli >/dev/null 2>&1; then command -v valkey-cli
    elif command -v redis-cli >/dev/null 2>&1; then command -v redis-cli
    else return 1
    fi
}

kafka_stamp_want() {
    printf 'requested=%s pom=%s\n' "$KAFKA_VERSION" \
        "$(cat "$SCRIPT_DIR/kafka/pom.xml" | sha1sum | cut -c1-12)"
}
kafka_installed() {
    [[ -f $KAFKA_STAMP ]] && [[ $(head -n1 "$KAFKA_STAMP") == "$(kafka_stamp_want)" ]]
}
kafka_installed_version() { sed -n 's/^installed=//p' "$KAFKA_STAMP" 2>/dev/null || true; }

ch_installed() { command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; }
valkey_installed() { valkey_server_bin >/dev/null && valkey_cli_bin >/dev/null; }

all_installed() { find_java && kafka_installed && ch_installed && valkey_installed; }

# ----------------------------------------------------------------------------- apt

need_root() { [[ $EUID -eq 0 ]] || die "installing packages needs root (apt-get); run as root"; }

# Keep package maintainer scripts from starting system services: we run our own processes.
guard_services() {
    if [[ ! -e $POLICY_RC ]]; then
        printf '#!/bin/sh\n# written by gca deploy/local/stack.sh for the duration of an install\nexit 101\n' >"$POLICY_RC"
        chmod 755 "$POLICY_RC"
        POLICY_RC_CREATED=1
    fi
}

apt_update() {
    (( APT_UPDATED )) && return 0
    say "apt-get update"
    if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >>"$INSTALL_LOG" 2>&1; then
        APT_UPDATED=1
    else
        warn "apt-get update failed (see $INSTALL_LOG)"; return 1
    fi
}

apt_install() {
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" >>"$INSTALL_LOG" 2>&1
}

# If a package did start (or enable) a system service anyway, stop and disable it.
stop_system_services() {
    local s
    for s in clickhouse-server valkey-server redis-server; do
        if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
            if systemctl list-unit-files "$s.service" >/dev/null 2>&1 &&
               { systemctl is-active --quiet "$s" || systemctl is-enabled --quiet "$s"; } 2>/dev/null; then
                say "disabling system service $s (we run our own)"
                systemctl disable --now "$s" >>"$INSTALL_LOG" 2>&1 || warn "could not disable $s"
            fi
        elif [[ -x /etc/init.d/$s ]]; then
            if /etc/init.d/"$s" status >/dev/null 2>&1; then
                say "stopping system service $s (we run our own)"
                /etc/init.d/"$s" stop >>"$INSTALL_LOG" 2>&1 || warn "could not stop $s"
            fi
            command -v update-rc.d >/dev/null 2>&1 && update-rc.d "$s" disable >>"$INSTALL_LOG" 2>&1 || true
        fi
    done
}

os_codename() { ( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" ) || true; }

ensure_backports_source() {
    local codename=$1 f=/etc/apt/sources.list.d/gca-$1-backports.sources
    if grep -Rqs -- "$codename-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
        return 0
    fi
    say "adding $codename-backports apt source ($f)"
    cat >"$f" <<EOF
# Added by gca deploy/local/stack.sh for valkey-server 8 (bookworm has no valkey in main).
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

install_clickhouse() {
    ch_installed && return 0
    if ! apt_install clickhouse-server clickhouse-client; then
        apt_update || true
        apt_install clickhouse-server clickhouse-client ||
            { tail -n 20 "$INSTALL_LOG" >&2; die "could not install clickhouse-server/clickhouse-client"; }
    fi
}

install_valkey() {
    valkey_installed && return 0
    local codename; codename=$(os_codename)
    if [[ $codename == bookworm ]]; then
        ensure_backports_source "$codename"
        if ! apt-cache madison valkey-server 2>/dev/null | grep -q -- "$codename-backports"; then
            apt_update || true
        fi
        if apt_install -t "$codename-backports" valkey-server; then return 0; fi
    else
        if apt_install valkey-server; then return 0; fi
        apt_update || true
        if apt_install valkey-server; then return 0; fi
    fi
    warn "valkey-server could not be installed; falling back to Debian's redis-server (see $INSTALL_LOG)"
    if ! apt_install redis-server; then
        apt_update || true
        apt_install redis-server || { tail -n 20 "$INSTALL_LOG" >&2; die "could not install valkey-server nor redis-server"; }
    fi
}

install_java_maven() {
    find_java || apt_install openjdk-17-jre-headless || { apt_update && apt_install openjdk-17-jre-headless; } ||
        die "could not install Java 17"
    find_java || die "java not found after install"
    command -v mvn >/dev/null 2>&1 || apt_install maven || { apt_update && apt_install maven; } ||
        die "could not install maven"
}

# ----------------------------------------------------------------------------- kafka install

install_kafka() {
    kafka_installed && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn not found"
    find_java || die "java not found"
    local tmp=$KAFKA_DIR/libs.tmp v ok="" t0=$SECONDS
    for v in $KAFKA_VERSION $KAFKA_FALLBACK_VERSIONS; do
        rm -rf "$tmp"
        say "Kafka $v: copying broker jars from Maven Central into $KAFKA_LIBS"
        if JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$JAVA")")") \
            mvn -q -B -Dstyle.color=never -f "$SCRIPT_DIR/kafka/pom.xml" -Dkafka.version="$v" \
                dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
                >>"$INSTALL_LOG" 2>&1 &&
           [[ -f $tmp/kafka_2.13-$v.jar ]]; then
            ok=$v; break
        fi
        warn "Kafka $v could not be resolved (see $INSTALL_LOG)"
    done
    [[ -n $ok ]] || { tail -n 30 "$INSTALL_LOG" >&2; die "no Kafka version could be resolved from Maven Central"; }
    [[ $ok == "$KAFKA_VERSION" ]] || warn "using Kafka $ok instead of $KAFKA_VERSION"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    { kafka_stamp_want; echo "installed=$ok"; } >"$KAFKA_STAMP"
    say "Kafka $ok: $(ls "$KAFKA_LIBS"/*.jar | wc -l) jars installed in $(elapsed "$t0")"
}

cmd_install() {
    ensure_dirs
    local t0=$SECONDS
    if all_installed; then
        say "everything is installed (Kafka $(kafka_installed_version), $(installed_versions_short))"
        return 0
    fi
    local need_apt=0
    find_java && command -v mvn >/dev/null 2>&1 || need_apt=1
    ch_installed || need_apt=1
    valkey_installed || need_apt=1
    if (( need_apt )); then
        need_root
        guard_services
        install_java_maven
    fi
    # Maven downloads and apt run side by side (both mostly wait on the network).
    local kpid=""
    if ! kafka_installed; then
        install_kafka & kpid=$!
    fi
    if (( need_apt )); then
        install_clickhouse
        install_valkey
        stop_system_services
        cleanup
    fi
    if [[ -n $kpid ]]; then wait "$kpid" || die "Kafka install failed"; fi
    say "installed in $(elapsed "$t0"): Kafka $(kafka_installed_version), $(installed_versions_short)"
}

installed_versions_short() {
    local ch vk
    ch=$(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null || echo '?')
    if command -v valkey-server >/dev/null 2>&1; then
        vk="Valkey $(valkey-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
    else
        vk="Redis $(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p') (fallback)"
    fi
    printf 'ClickHouse %s, %s' "$ch" "$vk"
}

# ----------------------------------------------------------------------------- processes

pid_file() { printf '%s/%s.pid' "$PIDS" "$1"; }

# Is PID a live process of service SVC started for this run folder? (Guards against stale pid
# files whose pid was reused, and never matches another run folder's or the system's servers.)
is_ours() {
    local svc=$1 pid=$2 state comm cmd cwd
    [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || return 1
    state=$(awk '/^State:/{print $2; exit}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $state && $state != Z && $state != X ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    case $svc in
        kafka)      [[ $comm == java && $cmd == *" kafka.Kafka $KAFKA_DIR/server.properties"* ]] ;;
        clickhouse) [[ $comm == clickhouse* && $cmd == *"--config-file=$CH_DIR/config.xml"* ]] ;;
        # valkey/redis rewrite their command line ("valkey-server 127.0.0.1:6379"); the working
        # directory is the `dir` of our config.
        valkey)     [[ ( $comm == valkey-server || $comm == redis-server ) && $cwd == "$VALKEY_DIR" ]] ;;
        *)          return 1 ;;
    esac
}

# Prints the pid of SVC if its pid file points to a live process of ours.
svc_pid() {
    local f pid
    f=$(pid_file "$1")
    [[ -f $f ]] || return 1
    pid=$(<"$f")
    is_ours "$1" "$pid" || return 1
    printf '%s' "$pid"
}

svc_ports() {
    case $1 in
        kafka)      echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
        clickhouse) echo "$CH_PORT $CH_HTTP_PORT" ;;
        valkey)     echo "$VALKEY_PORT" ;;
    esac
}
svc_addr() {
    case $1 in
        kafka)      echo "127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)" ;;
        clickhouse) echo "127.0.0.1:$CH_PORT (native; http 127.0.0.1:$CH_HTTP_PORT)" ;;
        valkey)     echo "127.0.0.1:$VALKEY_PORT" ;;
    esac
}
svc_logs() {
    case $1 in
        kafka)      echo "$LOGS/kafka.out $LOGS/kafka.log" ;;
        clickhouse) echo "$LOGS/clickhouse.out $LOGS/clickhouse.err.log $LOGS/clickhouse.log" ;;
        valkey)     echo "$LOGS/valkey.out $LOGS/valkey.log" ;;
    esac
}

show_logs() {
    local f
    for f in $(svc_logs "$1"); do
        [[ -s $f ]] || continue
        printf -- '----- last 30 lines of %s -----\n' "$f" >&2
        tail -n 30 "$f" | cut -c1-400 >&2
    done
}

# launch SVC DIR OUTFILE CMD...: start CMD in DIR, detached (own session, immune to SIGHUP),
# stdout/stderr appended to OUTFILE; writes the pid file.
launch() {
    local svc=$1 dir=$2 out=$3
    shift 3
    printf '===== %s stack.sh: starting %s =====\n' "$(date -Is)" "$svc" >>"$out"
    # The subshell is not a process-group leader, so setsid does not fork: $! is the server.
    # fd 9 is the stack lock: the server must not inherit it, or the lock outlives this script.
    ( exec 9>&-; cd "$dir" && exec setsid nohup "$@" >>"$out" 2>&1 </dev/null ) &
    local pid=$! i
    echo "$pid" >"$(pid_file "$svc")"
    # The subshell turns into the server through three execs (setsid, nohup, the server).
    # Wait for them: until then is_ours does not recognise the pid, and a readiness check
    # right after the launch (start-one) would take the server for one that exited.
    for (( i = 0; i < 100; i++ )); do
        case $(cat "/proc/$pid/comm" 2>/dev/null) in
            bash|setsid|nohup) sleep 0.05 ;;
            *) break ;;
        esac
    done
}

kill_pid() { # kill_pid SVC PID: TERM, wait, KILL
    local svc=$1 pid=$2 deadline=$(( SECONDS + STOP_WAIT_SECS ))
    kill -TERM "$pid" 2>/dev/null || true
    while is_ours "$svc" "$pid" && (( SECONDS < deadline )); do sleep 0.2; done
    if is_ours "$svc" "$pid"; then
        warn "$svc (pid $pid) still running after ${STOP_WAIT_SECS}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$(( SECONDS + 10 ))
        while is_ours "$svc" "$pid" && (( SECONDS < deadline )); do sleep 0.2; done
    fi
    # Reap it if it happens to be our child (start and stop in one invocation).
    wait "$pid" 2>/dev/null || true
}

fail_start() { # fail_start SVC PID MESSAGE
    local svc=$1 pid=$2
    printf '[stack] ERROR: %s: %s\n' "$svc" "$3" >&2
    show_logs "$svc"
    if [[ -n $pid ]] && is_ours "$svc" "$pid"; then kill_pid "$svc" "$pid"; fi
    rm -f "$(pid_file "$svc")"
    exit 1
}

# Refuse to start when another process already holds one of our ports.
check_ports_free() {
    local svc=$1 p
    for p in $(svc_ports "$svc"); do
        if port_open "$p"; then
            die "$svc: 127.0.0.1:$p is already in use by another process (not started by this script for $RUN). Stop it or set the GCA_*_PORT variables."
        fi
    done
}

# ----------------------------------------------------------------------------- kafka

# ApiVersions v0 request over a raw socket; succeeds when the broker answers with error 0.
kafka_api_versions_ok() {
    local hex
    hex=$(timeout 3 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/'"$KAFKA_PORT"' || exit 1
        printf "\x00\x00\x00\x0d\x00\x12\x00\x00\x00\x00\x00\x07\x00\x03gca" >&3
        head -c 10 <&3 | od -An -tx1 | tr -d " \n"' 2>/dev/null) || return 1
    [[ ${hex:8:12} == 000000070000 ]]
}

kafka_cluster_id() {
    local f=$KAFKA_DIR/cluster.id
    if [[ ! -s $f ]]; then
        # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding (22 chars).
        head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$f"
    fi
    cat "$f"
}

LAUNCHED=0

start_kafka() {
    local pid
    LAUNCHED=0
    if pid=$(svc_pid kafka); then say "kafka already running (pid $pid)"; return 0; fi
    rm -f "$(pid_file kafka)"
    check_ports_free kafka
    find_java || die "java not found"
    kafka_installed || die "Kafka jars missing: run '$0 install'"
    mkdir -p "$KAFKA_DATA"
    render "$SCRIPT_DIR/kafka/server.properties.tmpl" "$KAFKA_DIR/server.properties" \
        KAFKA_PORT="$KAFKA_PORT" CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" DATA_DIR="$KAFKA_DATA"
    cp -f "$SCRIPT_DIR/kafka/log4j2.xml" "$KAFKA_DIR/log4j2.xml"
    local jvm=( $KAFKA_HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
                -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
                -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
                -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" -Dkafka.logs.dir="$LOGS" )
    if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
        local id; id=$(kafka_cluster_id)
        say "kafka: formatting KRaft storage (cluster id $id)"
        printf '===== %s stack.sh: formatting storage =====\n' "$(date -Is)" >>"$LOGS/kafka.out"
        ( cd "$KAFKA_DIR" && "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/tools-log4j2.xml" \
            -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format --standalone \
            -t "$id" -c "$KAFKA_DIR/server.properties" >>"$LOGS/kafka.out" 2>&1 ) ||
            fail_start kafka "" "StorageTool format failed"
    fi
    launch kafka "$KAFKA_DIR" "$LOGS/kafka.out" \
        "$JAVA" "${jvm[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
    LAUNCHED=1
    say "kafka: started (pid $(<"$(pid_file kafka)")), waiting for 127.0.0.1:$KAFKA_PORT"
}

# The broker enables its PLAINTEXT acceptors only at the end of startup, after it has been
# unfenced by the controller, so an answered ApiVersions means it serves clients.
kafka_ready() {
    port_open "$KAFKA_PORT" && kafka_api_versions_ok
}

# ----------------------------------------------------------------------------- clickhouse

start_clickhouse() {
    local pid
    LAUNCHED=0
    if pid=$(svc_pid clickhouse); then say "clickhouse already running (pid $pid)"; return 0; fi
    rm -f "$(pid_file clickhouse)"
    check_ports_free clickhouse
    local bin; bin=$(ch_server_bin) || die "clickhouse-server missing: run '$0 install'"
    mkdir -p "$CH_DIR"/{data,tmp,user_files,format_schemas}
    render "$SCRIPT_DIR/clickhouse/config.xml" "$CH_DIR/config.xml" \
        LOG_DIR="$LOGS" CH_DIR="$CH_DIR" TCP_PORT="$CH_PORT" HTTP_PORT="$CH_HTTP_PORT"
    cp -f "$SCRIPT_DIR/clickhouse/users.xml" "$CH_DIR/users.xml"
    # shellcheck disable=SC2086 # $bin may be "clickhouse server"
    launch clickhouse "$CH_DIR" "$LOGS/clickhouse.out" $bin --config-file="$CH_DIR/config.xml"
    LAUNCHED=1
    say "clickhouse: started (pid $(<"$(pid_file clickhouse)")), waiting for 127.0.0.1:$CH_PORT"
}

# (No bare TCP probes on the native port: 18.16 logs a warning for every connection that
# sends nothing. The HTTP port is used for cheap liveness checks instead.)
clickhouse_ready() {
    local cli; cli=$(ch_client_bin) || return 1
    # shellcheck disable=SC2086 # $cli may be "clickhouse client"
    [[ $(timeout 10 $cli --host 127.0.0.1 --port "$CH_PORT" -q 'SELECT 1' 2>/dev/null) == 1 ]]
}

# ----------------------------------------------------------------------------- valkey

start_valkey() {
    local pid
    LAUNCHED=0
    if pid=$(svc_pid valkey); then say "valkey already running (pid $pid)"; return 0; fi
    rm -f "$(pid_file valkey)"
    check_ports_free valkey
    local bin; bin=$(valkey_server_bin) || die "valkey-server missing: run '$0 install'"
    [[ $bin == *redis-server ]] && warn "valkey-server is not installed; running Debian's redis-server instead"
    render "$SCRIPT_DIR/valkey/valkey.conf" "$VALKEY_DIR/valkey.conf" \
        PORT="$VALKEY_PORT" DIR="$VALKEY_DIR" LOG_DIR="$LOGS" PID_FILE="$VALKEY_DIR/server.pid"
    launch valkey "$VALKEY_DIR" "$LOGS/valkey.out" "$bin" "$VALKEY_DIR/valkey.conf"
    LAUNCHED=1
    say "valkey: started (pid $(<"$(pid_file valkey)")), waiting for 127.0.0.1:$VALKEY_PORT"
}

valkey_ready() {
    local cli; cli=$(valkey_cli_bin) || return 1
    [[ $(timeout 5 "$cli" -h 127.0.0.1 -p "$VALKEY_PORT" ping 2>/dev/null) == PONG ]]
}

# ----------------------------------------------------------------------------- orchestration

valid_svc() { [[ " ${SERVICES[*]} " == *" $1 "* ]] || die "unknown service '$1' (kafka|clickhouse|valkey)"; }

wait_ready() { # wait_ready SVC
    local svc=$1 pid t0=$SECONDS timeout=$WAIT_SECS
    [[ $svc == kafka ]] && timeout=$KAFKA_WAIT_SECS
    pid=$(<"$(pid_file "$svc")")
    while :; do
        is_ours "$svc" "$pid" || fail_start "$svc" "" "process $pid exited during startup"
        if "${svc}_ready"; then
            say "$svc: ready in $(elapsed "$t0") at $(svc_addr "$svc")"
            return 0
        fi
        (( SECONDS - t0 < timeout )) || fail_start "$svc" "$pid" "not ready after ${timeout}s"
        sleep 0.5
    done
}

start_services() { # start_services SVC...
    local svc started=() order=()
    # Launch everything first, then wait: the services boot in parallel. Valkey and ClickHouse
    # go first so that they boot while Kafka formats its storage (a JVM run of a few seconds).
    for svc in valkey clickhouse kafka; do
        if [[ " $* " == *" $svc "* ]]; then order+=("$svc"); fi
    done
    for svc in "${order[@]}"; do
        "start_$svc"
        if (( LAUNCHED )); then started+=("$svc"); fi
    done
    for svc in ${started[@]+"${started[@]}"}; do wait_ready "$svc"; done
}

ensure_installed() {
    if ! all_installed; then
        say "some components are missing; installing"
        cmd_install
    fi
    find_java || true
}

stop_service() {
    local svc=$1 pid f
    f=$(pid_file "$svc")
    if pid=$(svc_pid "$svc"); then
        say "$svc: stopping (pid $pid)"
        kill_pid "$svc" "$pid"
        if is_ours "$svc" "$pid"; then
            warn "$svc (pid $pid) did not exit"; return 1
        fi
        say "$svc: stopped"
    else
        [[ -f $f ]] && say "$svc: not running (removing stale pid file)" || say "$svc: not running"
    fi
    rm -f "$f"
}

cmd_start() {
    local t0=$SECONDS
    take_lock
    ensure_installed
    start_services "${SERVICES[@]}"
    say "stack is up ($(elapsed "$t0"))"
    cmd_status || true
    echo
    echo "# environment for the gateway (also: eval \"\$($0 env)\")"
    cmd_env
}

cmd_stop() {
    take_lock
    local svc rc=0 pids=()
    # All three in parallel (each: SIGTERM, up to 20 s, then SIGKILL).
    for svc in "${SERVICES[@]}"; do stop_service "$svc" & pids+=($!); done
    for svc in "${pids[@]}"; do wait "$svc" || rc=1; done
    return $rc
}

cmd_status() {
    local svc pid rc=0 note
    for svc in "${SERVICES[@]}"; do
        if pid=$(svc_pid "$svc"); then
            note=""
            case $svc in
                kafka)      kafka_api_versions_ok || note="  (not answering on $KAFKA_PORT)" ;;
                clickhouse) port_open "$CH_HTTP_PORT" || note="  (not answering on $CH_HTTP_PORT)" ;;
                valkey)     port_open "$VALKEY_PORT" || note="  (not answering on $VALKEY_PORT)" ;;
            esac
            printf '%-11s running  pid %-8s %s%s\n' "$svc" "$pid" "$(svc_addr "$svc")" "$note"
        else
            printf '%-11s stopped  %-12s %s\n' "$svc" "-" "$(svc_addr "$svc")"
            rc=3
        fi
    done
    return $rc
}

cmd_env() {
    echo "export GCA_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
    echo "export GCA_CLICKHOUSE_ADDR=127.0.0.1:$CH_PORT"
    echo "export GCA_VALKEY_ADDR=127.0.0.1:$VALKEY_PORT"
}

cmd_clean() {
    cmd_stop || die "could not stop every service; not deleting data"
    [[ -n $RUN && $RUN != / ]] || die "refusing to clean RUN='$RUN'"
    say "deleting data under $RUN (keeping $KAFKA_LIBS)"
    rm -rf "$KAFKA_DATA" "$KAFKA_DIR/cluster.id" "$KAFKA_DIR/server.properties" "$KAFKA_DIR/log4j2.xml" \
           "$KAFKA_DIR/libs.tmp" "$CH_DIR" "$VALKEY_DIR" \
           "$PIDS/kafka.pid" "$PIDS/clickhouse.pid" "$PIDS/valkey.pid"
    # Only this script's service logs: other tools may keep theirs in $LOGS too; keep install.log.
    rm -f "$LOGS"/kafka.log* "$LOGS"/kafka.out "$LOGS"/clickhouse.log* "$LOGS"/clickhouse.err.log* \
          "$LOGS"/clickhouse.out "$LOGS"/valkey.log "$LOGS"/valkey.out
    say "clean"
}

usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

main() {
    local cmd=${1:-help}
    case $cmd in
        install)   take_lock; cmd_install ;;
        start)     cmd_start ;;
        stop)      cmd_stop ;;
        status)    cmd_status ;;
        env)       cmd_env ;;
        clean)     cmd_clean ;;
        start-one)
            [[ $# -eq 2 ]] || die "usage: $0 start-one kafka|clickhouse|valkey"
            valid_svc "$2"; take_lock; ensure_installed; start_services "$2" ;;
        stop-one)
            [[ $# -eq 2 ]] || die "usage: $0 stop-one kafka|clickhouse|valkey"
            valid_svc "$2"; take_lock; stop_service "$2" ;;
        kafka-run)
            # Run a Kafka CLI class on the broker's classpath, e.g.
            #   stack.sh kafka-run org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
            [[ $# -ge 2 ]] || die "usage: $0 kafka-run CLASS [ARGS...]"
            shift
            kafka_installed || die "Kafka jars missing: run '$0 install'"
            find_java || die "java not found"
            exec "$JAVA" -Xmx512m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/tools-log4j2.xml" \
                -cp "$KAFKA_LIBS/*" "$@" ;;
        help|-h|--help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
