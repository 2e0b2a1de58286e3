#!/usr/bin/env bash
# A real, single-node Apache Kafka broker on loopback for Nacre's tests and CI.
#
# One JVM is both broker and KRaft controller (no ZooKeeper). Its jars come from Maven Central
# through `mvn`, once, into a cache outside the checkout; nothing is installed system-wide.
#
#   kafka/broker.sh fetch
#       Caches the jars (idempotent) and prints the cache dir.
#   kafka/broker.sh start DIR PORT [CONTROLLER_PORT]
#       Starts a broker in the background, waits until it answers a metadata request, and prints
#       127.0.0.1:PORT.
#   kafka/broker.sh run DIR PORT [CONTROLLER_PORT]
#       The same broker in the foreground (exec), without waiting: for a harness that spawns it,
#       checks readiness itself and kills it. Prints nothing on stdout.
#   kafka/broker.sh stop DIR
#       Stops the broker started from DIR: SIGTERM, then SIGKILL (idempotent).
#   kafka/broker.sh topics ARGS...
#       Kafka's kafka-topics, e.g. topics --bootstrap-server 127.0.0.1:PORT --list
#
# DIR holds everything of one broker: server.properties, data/ (the log dirs), broker.log and
# broker.pid. A DIR that is already formatted is reused as it is (restart it with the same ports).
# The broker listens on 127.0.0.1:PORT (PLAINTEXT) and its controller on 127.0.0.1:CONTROLLER_PORT
# (default PORT+1); topics are not auto-created.
#
# Start-up time: on 2 cores busy with a parallel build, a broker is ready about 4 s after
# `start` (5 s in a new DIR, formatting included). Without the class-data sharing archive it is
# 7 s: much of a start is the JVM loading classes, so `fetch` also records the classes that one
# broker start loads in an archive (JDK 17's dynamic CDS), kept in the cache per JDK and set of
# jars, which later brokers and tools map instead of loading and verifying each class again.
#
# Environment:
#   NACRE_KAFKA_CACHE          jar cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/nacre/kafka)
#   NACRE_KAFKA_START_TIMEOUT  seconds `start` waits for the broker (default 60)
#   NACRE_KAFKA_STOP_TIMEOUT   seconds `stop` waits after SIGTERM before SIGKILL (default 20)
#   NACRE_KAFKA_HEAP_OPTS      the broker's heap flags (default -Xms128m -Xmx512m)
#   NACRE_KAFKA_JVM_OPTS       extra JVM flags for the broker, appended last
#   NACRE_KAFKA_LOG_LEVEL      root log level of broker.log (default INFO)
#   NACRE_KAFKA_CDS            0: neither make nor use the class-data sharing archive
#   JAVA_HOME                  the JDK to use (default: `java` on PATH; Kafka 4 brokers need 17+)
set -euo pipefail

# The one pinned Kafka release, and the log4j2 that release's kafka-server depends on (its slf4j
# binding must be the same version).
readonly KAFKA_VERSION=4.1.2
readonly SCALA_VERSION=2.13
readonly LOG4J_VERSION=2.25.3
readonly MAVEN_DEPENDENCY_PLUGIN_VERSION=3.8.1

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly CACHE_ROOT="${NACRE_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nacre/kafka}"
readonly VERSION_DIR="$CACHE_ROOT/$KAFKA_VERSION"
readonly LIBS="$VERSION_DIR/libs"
readonly JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
readonly START_TIMEOUT="${NACRE_KAFKA_START_TIMEOUT:-60}"
readonly STOP_TIMEOUT="${NACRE_KAFKA_STOP_TIMEOUT:-20}"

# JVM flags for a quick start rather than peak throughput: a test broker lives for seconds to
# minutes and moves little data. C1 only and the serial collector cut startup CPU (the machine
# may be busy compiling); class data sharing is used when the JDK has an archive.
readonly FAST_JVM_OPTS=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto -XX:-UsePerfData
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)

log() { echo "kafka/broker.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# The comment at the top of this file; exits with status $1 (default 2: a usage error).
usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

# Milliseconds since the epoch (bash's SECONDS counts whole seconds, too coarse for deadlines).
now_ms() {
  local us=${EPOCHREALTIME/[.,]/}
  echo $((us / 1000))
}

# What the script leaves behind, however it exits (an error, Ctrl-C, SIGTERM): children started
# with run_child are ended (a killed fetch must not leave mvn downloading into a deleted dir),
# throw-away brokers in CLEANUP_BROKERS are stopped, and paths in CLEANUP are removed.
CHILDREN=()
CLEANUP_BROKERS=()
CLEANUP=()
cleanup() {
  local pid dir
  for pid in "${CHILDREN[@]}"; do
    if is_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  for dir in "${CLEANUP_BROKERS[@]}"; do (cmd_stop "$dir") 2>/dev/null || true; done
  ((${#CLEANUP[@]} == 0)) || rm -rf -- "${CLEANUP[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs "$@" as a child that cleanup ends if this script is interrupted; returns its status.
run_child() {
  "$@" &
  CHILDREN+=("$!")
  local status=0
  wait "$!" || status=$?
  return "$status"
}

# exec "$@" in place of this shell, cleaning up first (exec skips the EXIT trap).
exec_cleaned() {
  cleanup
  trap - EXIT INT TERM
  exec "$@"
}

# ---------------------------------------------------------------------------------------------
# fetch

# The throw-away project whose runtime dependencies are the broker: kafka_2.13 (the broker, the
# controller and the storage tool), kafka-tools (kafka-topics), and log4j2 with its slf4j binding
# so the broker logs through kafka/log4j2.properties. kafka-tools' Kafka Connect runtime (Jetty,
# Jersey) serves only the Connect tools, so it is left out.
write_pom() {
  cat >"$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>nacre.test</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jakarta.rs</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-api</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>$MAVEN_DEPENDENCY_PLUGIN_VERSION</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
}

# Makes sure $LIBS holds the broker's jars. A cache that exists is complete: it only ever appears
# by renaming a finished download into place, so an interrupted fetch leaves nothing behind but a
# .fetch-* temp dir that the next fetch ignores (and that is safe to delete). With the cache
# present this does no network access and starts no JVM.
ensure_fetched() {
  [[ -d "$LIBS" ]] && return 0

  command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: apt-get install maven) to fetch Kafka's jars"
  mkdir -p "$CACHE_ROOT"
  # Leftovers of fetches that were killed outright (an hour old: surely not still running).
  find "$CACHE_ROOT" -maxdepth 1 -name '.fetch-*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
  local tmp
  tmp="$(mktemp -d "$CACHE_ROOT/.fetch-$KAFKA_VERSION.XXXXXX")"
  CLEANUP+=("$tmp")

  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $VERSION_DIR"
  write_pom "$tmp/pom.xml"
  if ! run_child mvn -B -q -U -Dstyle.color=never -f "$tmp/pom.xml" \
    "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN_VERSION:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$tmp/version/libs" >"$tmp/mvn.log" 2>&1; then
    # Maven's own words about what it could not resolve or download (the first error lines, which
    # name the artifact and the repository's answer), or the end of its output if it has none.
    local errors
    errors="$(sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" | grep -E '^\[ERROR\] +[^ ]' |
      grep -vE '[Rr]e-run Maven|For more information|\[Help [0-9]+\] http' | sed 's/ -> \[Help [0-9]*\]$//' | head -n 5)" || true
    if [[ -n "$errors" ]]; then
      echo "$errors" >&2
    else
      tail -n 20 "$tmp/mvn.log" >&2
    fi
    die "could not fetch Kafka $KAFKA_VERSION from Maven Central (mvn dependency:copy-dependencies failed, see above); nothing was cached"
  fi
  [[ -f "$tmp/version/libs/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ]] ||
    die "mvn succeeded but kafka_$SCALA_VERSION-$KAFKA_VERSION.jar is missing from its output; nothing was cached"
  cp "$tmp/pom.xml" "$tmp/version/pom.xml" # what the cache was made from, for the curious

  # The atomic step. If another fetch finished first, its cache is as good as ours.
  if ! mv -T "$tmp/version" "$VERSION_DIR" 2>/dev/null; then
    [[ -d "$LIBS" ]] || die "could not move the fetched jars into $VERSION_DIR"
  fi
  log "cached $(find "$LIBS" -name '*.jar' | wc -l) jars"
}

# ---------------------------------------------------------------------------------------------
# class-data sharing

# Prints the path of the broker's CDS archive for the JDK in use; fails if CDS is turned off or
# the JDK's layout is unknown. An archive only fits the exact JVM build and the exact jars (the
# JVM checks their sizes and times) that made it, so its name carries a checksum of the path,
# size and modification time of that JVM's libjvm.so and of every jar.
cds_archive() {
  [[ "${NACRE_KAFKA_CDS:-1}" != 0 ]] || return 1
  local java_bin libjvm key
  java_bin="$(readlink -f "$(command -v "$JAVA")")" || return 1
  libjvm="${java_bin%/bin/java}/lib/server/libjvm.so"
  [[ -f "$libjvm" ]] || return 1
  key="$(stat -c '%n %s %Y' "$libjvm" "$LIBS"/*.jar | cksum | cut -d' ' -f1)"
  echo "$VERSION_DIR/cds/broker-$key.jsa"
}

# Makes the CDS archive for this JDK if it is missing: starts a throw-away broker with
# -XX:ArchiveClassesAtExit, waits until it serves metadata, and stops it; the JVM writes the
# archive as it exits. Takes ten seconds or so, once per JDK. A failure only costs speed: it is
# reported, remembered (so that later starts do not retry) and brokers start without an archive.
ensure_cds() {
  local archive
  archive="$(cds_archive)" || return 0
  [[ -f "$archive" || -f "$archive.failed" ]] && return 0

  log "recording the broker's classes for faster starts (once per JDK, about 10 s)"
  mkdir -p "$VERSION_DIR/cds"
  local dir port tries=0
  dir="$(mktemp -d "${TMPDIR:-/tmp}/nacre-kafka-cds.XXXXXX")"
  CLEANUP+=("$dir" "$archive.$$")
  CLEANUP_BROKERS+=("$dir/broker")
  while :; do
    port=$((20000 + RANDOM % 40000))
    ! port_in_use "$port" && ! port_in_use $((port + 1)) && break
    ((++tries < 20)) || {
      log "no free port pair for the recording broker; brokers start without a CDS archive"
      return 0
    }
  done
  if (CDS_DUMP="$archive.$$" cmd_start "$dir/broker" "$port") >/dev/null 2>"$dir/record.log" &&
    (cmd_stop "$dir/broker") 2>>"$dir/record.log" && [[ -s "$archive.$$" ]]; then
    mv -f "$archive.$$" "$archive"
    # Archives of other JDKs or jars are of no more use (and 50 MB each).
    find "$VERSION_DIR/cds" -maxdepth 1 -name 'broker-*' ! -name "${archive##*/}" -delete
  else
    (cmd_stop "$dir/broker") 2>/dev/null || true
    cat "$dir/record.log" >&2
    [[ -f "$dir/broker/broker.log" ]] && show_log_tail "$dir/broker/broker.log"
    log "could not record a CDS archive (see above); brokers start without one, more slowly"
    : >"$archive.failed"
  fi
}

# ---------------------------------------------------------------------------------------------
# helpers for start, run and stop

check_port() {
  if ! [[ "$2" =~ ^[0-9]+$ ]] || (("$2" < 1 || "$2" > 65535)); then
    die "$1 must be a port number (1-65535), not '$2'"
  fi
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True if process $1 exists and is not a zombie (kill -0 succeeds on an unreaped zombie).
is_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

# True if process $1 is the broker of directory $2 (guards against a reused pid).
is_broker_of() {
  is_alive "$1" || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *" kafka.Kafka $2/server.properties"* ]]
}

# One Kafka Metadata request (v4: all topics) to 127.0.0.1:$1, spoken over bash's /dev/tcp. True
# if the broker answers and lists itself (node 1) at 127.0.0.1:$1: it then serves clients, and
# is unfenced (a fenced broker is not listed).
metadata_ready() {
  local port=$1
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    # Size 26; api key 3 (Metadata), version 4, correlation id 0x4e41, client id "nacre-probe",
    # topics null (all), allow_auto_topic_creation false.
    printf '\x00\x00\x00\x1a\x00\x03\x00\x04\x00\x00\x4e\x41\x00\x0bnacre-probe\xff\xff\xff\xff\x00' >&3
    # Size, correlation id, throttle time, broker count, then the first broker: node id, host,
    # port. Any valid response is at least 40 bytes long.
    local -a b
    read -r -a b < <(timeout 2 head -c 40 <&3 | od -An -v -tu1 | tr '\n' ' ')
    ((${#b[@]} == 40)) || exit 1
    be32() { echo $(((b[$1] << 24) | (b[$1 + 1] << 16) | (b[$1 + 2] << 8) | b[$1 + 3])); }
    (($(be32 4) == 0x4e41 && $(be32 12) >= 1 && $(be32 16) == 1)) || exit 1
    local host=127.0.0.1 i code
    ((((b[20] << 8) | b[21]) == ${#host})) || exit 1
    for ((i = 0; i < ${#host}; i++)); do
      printf -v code '%d' "'${host:i:1}"
      ((b[22 + i] == code)) || exit 1
    done
    (($(be32 $((22 + ${#host}))) == port))
  ) 2>/dev/null
}

# A Kafka cluster id: 16 random bytes in URL-safe base64 without padding, as Kafka's Uuid prints
# them (Kafka never makes one that starts with '-', so neither do we).
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    [[ "$id" != -* ]] && break
  done
  echo "$id"
}

# Sets TOOL_CMD to the start of the command line of one of Kafka's tools (the class and its
# arguments follow). Tools load many of the broker's classes, so they use its CDS archive too.
tool_cmd() {
  TOOL_CMD=("$JAVA" "${FAST_JVM_OPTS[@]}" -Xmx256m
    -Dlog4j2.configurationFile="$SCRIPT_DIR/tools-log4j2.properties")
  local archive
  if archive="$(cds_archive)" && [[ -f "$archive" ]]; then
    TOOL_CMD+=(-XX:SharedArchiveFile="$archive")
  fi
  TOOL_CMD+=(-cp "$LIBS/*")
}

# Formats DIR/data for a new single-node cluster: a single-voter dynamic quorum (--standalone),
# where the controller is its own majority. The tool writes into a temp dir that is then renamed
# to DIR/data, so an interrupted format leaves no half-formatted data behind.
format_data() {
  [[ ! -e "$DIR/data" ]] || rmdir "$DIR/data" 2>/dev/null ||
    die "$DIR/data exists but holds no Kafka metadata (no meta.properties); remove it or use another DIR"
  local tmp
  tmp="$(mktemp -d "$DIR/.data-format.XXXXXX")"
  CLEANUP+=("$tmp")
  sed "s|^log.dirs=.*|log.dirs=$tmp/data|" "$DIR/server.properties" >"$tmp/server.properties"
  tool_cmd
  if ! run_child "${TOOL_CMD[@]}" kafka.tools.StorageTool format --standalone -t "$(new_cluster_id)" \
    -c "$tmp/server.properties" >"$tmp/format.out" 2>&1; then
    cat "$tmp/format.out" >&2
    die "formatting $DIR/data failed"
  fi
  mv -T "$tmp/data" "$DIR/data" || die "could not move the formatted data into $DIR/data"
  sed "s|$tmp/data|$DIR/data|g" "$tmp/format.out" >>"$DIR/broker.log"
  rm -rf "$tmp"
}

# Everything that `start` and `run` share: validates the arguments, fetches if needed, writes
# DIR/server.properties and formats DIR/data unless it is formatted already. Sets DIR, PORT and
# CONTROLLER_PORT, and BROKER_CMD (the broker's command line).
prepare() {
  (($# == 2 || $# == 3)) || usage
  check_port PORT "$2"
  PORT=$2
  CONTROLLER_PORT=${3:-$((PORT + 1))}
  check_port CONTROLLER_PORT "$CONTROLLER_PORT"
  ((PORT != CONTROLLER_PORT)) || die "PORT and CONTROLLER_PORT must differ"
  command -v "$JAVA" >/dev/null || die "java not found: install a JDK 17 or newer, or set JAVA_HOME"

  mkdir -p "$1"
  DIR="$(cd "$1" && pwd)"
  if [[ -f "$DIR/broker.pid" ]] && is_broker_of "$(<"$DIR/broker.pid")" "$DIR"; then
    die "a broker already runs from $DIR (pid $(<"$DIR/broker.pid")); stop it first: kafka/broker.sh stop $DIR"
  fi
  local p
  for p in "$PORT" "$CONTROLLER_PORT"; do
    ! port_in_use "$p" || die "127.0.0.1:$p is already in use"
  done

  ensure_fetched
  [[ -n "${CDS_DUMP:-}" ]] || ensure_cds

  cat >"$DIR/server.properties" <<EOF
# Written by kafka/broker.sh: a single-node KRaft broker for tests, on loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DIR/data

# Topics exist only when a test creates them.
auto.create.topics.enable=false
num.partitions=1

# One node: every internal topic has one replica, and one partition so that it is quick to make.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Consumer groups start without waiting for more members.
group.initial.rebalance.delay.ms=0

# Small thread pools: tests share a small machine.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
EOF

  [[ -f "$DIR/data/meta.properties" ]] || format_data

  local -a heap extra
  local archive
  BROKER_CMD=("$JAVA" "${FAST_JVM_OPTS[@]}")
  read -r -a heap <<<"${NACRE_KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
  BROKER_CMD+=("${heap[@]}")
  if [[ -n "${CDS_DUMP:-}" ]]; then
    BROKER_CMD+=(-XX:ArchiveClassesAtExit="$CDS_DUMP")
  elif archive="$(cds_archive)" && [[ -f "$archive" ]]; then
    BROKER_CMD+=(-XX:SharedArchiveFile="$archive")
  fi
  BROKER_CMD+=(-Dlog4j2.configurationFile="$SCRIPT_DIR/log4j2.properties"
    -Dnacre.kafka.log="$DIR/broker.log" -Dnacre.kafka.log.level="${NACRE_KAFKA_LOG_LEVEL:-INFO}"
    -Dkafka.logs.dir="$DIR")
  if [[ -n "${NACRE_KAFKA_JVM_OPTS:-}" ]]; then
    read -r -a extra <<<"$NACRE_KAFKA_JVM_OPTS"
    BROKER_CMD+=("${extra[@]}")
  fi
  BROKER_CMD+=(-cp "$LIBS/*" kafka.Kafka "$DIR/server.properties")

  echo "=== kafka/broker.sh: Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (controller $CONTROLLER_PORT), $(date -u +%FT%TZ) ===" \
    >>"$DIR/broker.log"
}

show_log_tail() {
  echo "--- last lines of $1 ---" >&2
  tail -n "${2:-40}" "$1" >&2 || true
}

# Stops process $1 (the broker of $2): SIGTERM, then SIGKILL after $STOP_TIMEOUT seconds.
stop_pid() {
  local pid=$1 dir=$2 deadline
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(($(now_ms) + STOP_TIMEOUT * 1000))
  while is_alive "$pid" && (($(now_ms) < deadline)); do sleep 0.1; done
  if is_alive "$pid"; then
    log "broker (pid $pid) still runs ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + 5000))
    while is_alive "$pid" && (($(now_ms) < deadline)); do sleep 0.1; done
    ! is_alive "$pid" || die "broker (pid $pid) survived SIGKILL"
  fi
  rm -f "$dir/broker.pid"
}

# ---------------------------------------------------------------------------------------------
# subcommands

cmd_fetch() {
  (($# == 0)) || usage
  ensure_fetched
  ensure_cds
  echo "$VERSION_DIR"
}

cmd_start() {
  prepare "$@"
  "${BROKER_CMD[@]}" </dev/null >>"$DIR/broker.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$DIR/broker.pid"

  local started deadline
  started=$(now_ms)
  deadline=$((started + START_TIMEOUT * 1000))
  until metadata_ready "$PORT"; do
    if ! is_alive "$pid"; then
      local status=0
      wait "$pid" || status=$?
      rm -f "$DIR/broker.pid"
      show_log_tail "$DIR/broker.log"
      die "the broker's JVM exited (status $status) before it was ready; log: $DIR/broker.log"
    fi
    if (($(now_ms) >= deadline)); then
      show_log_tail "$DIR/broker.log"
      log "the broker was not ready within ${START_TIMEOUT}s (NACRE_KAFKA_START_TIMEOUT); stopping it"
      stop_pid "$pid" "$DIR"
      exit 1
    fi
    sleep 0.2
  done
  local took=$(($(now_ms) - started))
  log "broker ready in $((took / 1000)).$((took % 1000 / 100))s (pid $pid, log $DIR/broker.log)"
  echo "127.0.0.1:$PORT"
}

cmd_run() {
  prepare "$@"
  # The JVM takes this shell's pid, so `stop DIR` works for it too. Its stdout goes to stderr:
  # the broker logs to DIR/broker.log, and stdout stays empty for whoever spawned us.
  echo "$$" >"$DIR/broker.pid"
  exec_cleaned "${BROKER_CMD[@]}" 1>&2
}

cmd_stop() {
  (($# == 1)) || usage
  [[ -d "$1" ]] || return 0
  local dir pid
  dir="$(cd "$1" && pwd)"
  [[ -f "$dir/broker.pid" ]] || return 0
  pid="$(<"$dir/broker.pid")"
  if ! [[ "$pid" =~ ^[0-9]+$ ]] || ! is_broker_of "$pid" "$dir"; then
    rm -f "$dir/broker.pid" # stale: that broker is gone
    return 0
  fi
  stop_pid "$pid" "$dir"
  log "stopped the broker of $dir (pid $pid)"
}

cmd_topics() {
  ensure_fetched
  command -v "$JAVA" >/dev/null || die "java not found: install a JDK 17 or newer, or set JAVA_HOME"
  tool_cmd
  exec_cleaned "${TOOL_CMD[@]}" org.apache.kafka.tools.TopicCommand "$@"
}

(($# >= 1)) || usage
subcommand=$1
shift
case "$subcommand" in
  fetch) cmd_fetch "$@" ;;
  start) cmd_start "$@" ;;
  run) cmd_run "$@" ;;
  stop) cmd_stop "$@" ;;
  topics) cmd_topics "$@" ;;
  -h | --help | help) usage 0 ;;
  *)
    log "unknown subcommand '$subcommand'"
    usage
    ;;
esac
