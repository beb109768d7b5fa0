#!/usr/bin/env bash
# gamegate's cost per call against the direct path. Run by hand, never by the tests:
#
#   bench/run.sh                      # quick: 100,000 calls in the soak
#   BENCH_CALLS=1000000 bench/run.sh  # full: 1,000,000 calls in the soak
#   bench/callgrind.sh                # only the callgrind profile and its floors (BENCH_ONLY=callgrind)
#
# Builds the release binary, starts the sandbox and gamegate on loopback (pinned to a core
# each), drives them with h2load (Debian's nghttp2-client, installed if missing), and writes
# bench/RESULTS.md. See bench/README.md for what is measured and how.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

CALLS=${BENCH_CALLS:-100000}                # soak on path (b); RSS after every tenth
TP_CALLS=${BENCH_TP_CALLS:-$((CALLS < 100000 ? CALLS : 100000))}  # closed loop, paths a, a', c
RATE=${BENCH_RATE:-1000}                    # open-loop rate, calls/s
LAT_SECS=${BENCH_LATENCY_SECS:-20}          # open-loop duration per path
SERIAL_CALLS=${BENCH_SERIAL_CALLS:-20000}   # one call at a time, per path
INFLIGHT=${BENCH_INFLIGHT:-1000}            # calls held in flight for the RSS figure
WARMUP=${BENCH_WARMUP:-5000}                # calls per path before measuring
LOAD_MAX=${BENCH_LOAD_MAX:-1.5}             # wait for a 1-minute load average below this
MAX_WAIT=${BENCH_MAX_WAIT:-600}             # ... but no longer than this (s)
PROFILE=${BENCH_PROFILE:-1}                 # 1: callgrind + perf cpu-clock after the figures
PROFILE_CALLS=${BENCH_PROFILE_CALLS:-2000}  # calls per path under callgrind
# BENCH_ONLY=callgrind (bench/callgrind.sh): the smoke calls, then only the callgrind profile and
# its floors, printed; no latency, throughput or memory figures, RESULTS.md left as it is.
ONLY=${BENCH_ONLY:-}
# The floors gamegate is built on, measured under callgrind after gamegate's profile
# (bench/floors/, built here): a tonic echo server, gamegate's upstream client and hyper's.
FLOORS=${BENCH_FLOORS:-1}
FLOORS_WARMUP=${BENCH_FLOORS_WARMUP:-500}   # client floors: requests before those counted
FLOORS_N1=${BENCH_FLOORS_N1:-500}           # ... two runs, per request = (I2 - I1) / (N2 - N1)
FLOORS_N2=${BENCH_FLOORS_N2:-2500}
FLOORS_TARGET=${BENCH_FLOORS_TARGET:-$HERE/floors/target}  # cargo target dir of bench/floors
FLOORS_BUILD=${BENCH_FLOORS_BUILD:-1}       # 0: use the floors binaries already built there
ECHO_PORT=${BENCH_ECHO_PORT:-18482}
case "$ONLY" in
  '') ;;
  callgrind) PROFILE=1 ;;
  *) echo "BENCH_ONLY is callgrind or unset, not $ONLY" >&2; exit 2 ;;
esac
[ "$FLOORS_N2" -gt "$FLOORS_N1" ] || { echo "BENCH_FLOORS_N2 must exceed BENCH_FLOORS_N1" >&2; exit 2; }
SB_PORT=${BENCH_SANDBOX_PORT:-18480}
GW_PORT=${BENCH_GATEWAY_PORT:-18481}
WORK=${BENCH_WORK:-$ROOT/target/bench}
# BENCH_STORE=redis: gamegate's state (the access token, idempotency records) in the machine's
# Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379, under a key prefix of this run's own)
# instead of in memory; its results go to RESULTS-redis.md, to set beside RESULTS.md.
STORE=${BENCH_STORE:-memory}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
case "$STORE" in
  memory) RESULTS=${BENCH_RESULTS:-$HERE/RESULTS.md} ;;
  redis) RESULTS=${BENCH_RESULTS:-$HERE/RESULTS-redis.md} ;;
  *) echo "BENCH_STORE is memory or redis, not $STORE" >&2; exit 2 ;;
esac
# Experiment: BENCH_BIN=path measures that binary instead of building this tree's.
# Experiment: LD_PRELOAD a shim that sets TCP_NODELAY on gamegate's accepted sockets (what a
# one-line fix in src/server.rs would do), to measure its effect without touching src/.
FORCE_NODELAY=${BENCH_FORCE_NODELAY:-0}

# Closed-loop load: gRPC over 8 connections x 16 streams; HTTP/1.1 (no multiplexing) over 64.
GRPC_CLOSED=(-c 8 -m 16)
H1_CLOSED=(-c 64 -m 1)
# Open loop: 10 connections at RATE/10 calls/s each.
OPEN_CONNS=10

STORAGE_PATH=/api/openDataContext/set_user_storage
MSDK_PATH=/relation/qqfriends_detail
STORAGE_RPC=gamegate.v1.StorageService/SetUserStorage
MSDK_RPC=gamegate.v1.RelationService/GetQqFriendsDetail
CALLER_TOKEN=bench-caller-token-0123456789
SB=http://127.0.0.1:$SB_PORT
GW=http://127.0.0.1:$GW_PORT
GRPC_HEADERS=(-H 'content-type: application/grpc' -H 'te: trailers'
  -H "authorization: Bearer $CALLER_TOKEN")

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------------------- tools, build
need_apt=()
command -v h2load >/dev/null && command -v nghttp >/dev/null || need_apt+=(nghttp2-client)
command -v curl >/dev/null || need_apt+=(curl)
command -v taskset >/dev/null || need_apt+=(util-linux)
command -v ss >/dev/null || need_apt+=(iproute2)
if [ "$PROFILE" = 1 ]; then
  command -v valgrind >/dev/null || need_apt+=(valgrind)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v python3 >/dev/null || die "python3 is needed"

SOURCE_BIN=${BENCH_BIN:-}
if [ -z "$SOURCE_BIN" ]; then
  log "building the release binary"
  (cd "$ROOT" && cargo build --release --bin gamegate --quiet)
  SOURCE_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gamegate
fi
if [ "$PROFILE" = 1 ] && [ "$FLOORS" = 1 ] && [ "$FLOORS_BUILD" = 1 ]; then
  # gamegate's client in client-floor is this tree's src/upstream (a path dependency), whatever
  # BENCH_BIN is.
  log "building the floors (bench/floors, release)"
  nice cargo build --release --quiet --manifest-path "$HERE/floors/Cargo.toml" \
    --target-dir "$FLOORS_TARGET" || die "building bench/floors"
fi
mkdir -p "$WORK"
rm -f "$WORK"/*.log "$WORK"/*.txt "$WORK"/*.kv "$WORK"/callgrind.* "$WORK"/perf.*
# A copy, so that a colleague's rebuild cannot swap the binary under a running measurement.
rm -f "$WORK/gamegate" "$WORK/echo-server" "$WORK/client-floor"
cp "$SOURCE_BIN" "$WORK/gamegate"
if [ "$PROFILE" = 1 ] && [ "$FLOORS" = 1 ]; then
  cp "$FLOORS_TARGET/release/echo-server" "$FLOORS_TARGET/release/client-floor" "$WORK/"
fi
BIN=$WORK/gamegate
PRELOAD=
if [ "$FORCE_NODELAY" = 1 ]; then
  cc -O2 -shared -fPIC -o "$WORK/nodelay.so" "$HERE/nodelay_preload.c" -ldl
  PRELOAD=$WORK/nodelay.so
fi

ENV_FILE=$WORK/results.env
: >"$ENV_FILE"
put() { printf '%s=%s\n' "$1" "$2" >>"$ENV_FILE"; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)
# Pinning: "pin CPU cmd..." runs cmd on that core. Background processes are started with
# "${SB_PIN[@]}" / "${GW_PIN[@]}" instead, so that $! is the process itself (taskset and env
# exec it), not a subshell.
if [ "$NPROC" -ge 2 ]; then
  SB_CPU=0 GW_CPU=1
  SB_PIN=(taskset -c 0) GW_PIN=(taskset -c 1)
  pin() { local cpu=$1; shift; taskset -c "$cpu" "$@"; }
else
  SB_CPU=any GW_CPU=any
  SB_PIN=() GW_PIN=()
  pin() { shift; "$@"; }
fi

put calls "$CALLS"
put date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put commit "$(git -C "$ROOT" rev-parse --short HEAD)"
if [ -n "$(git -C "$ROOT" status --porcelain -- src crates proto build.rs Cargo.toml Cargo.lock)" ]; then
  put dirty_note " + uncommitted changes in src/, crates/, proto/ or the manifests"
fi
[ -n "${BENCH_BIN:-}" ] && put dirty_note " (binary not built from this tree: BENCH_BIN=$BENCH_BIN)"
put nproc "$NPROC"
put cpu_model "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
put mem_total "$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
put kernel "Linux $(uname -r)"
put cpuidle "$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown)$(
  [ -r /sys/module/haltpoll/parameters/guest_halt_poll_ns ] &&
    echo ", guest_halt_poll_ns=$(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns)")"
put sandbox_cpu "$SB_CPU"
put gateway_cpu "$GW_CPU"
put load_max "$LOAD_MAX"
put rate "$RATE"
put inflight "$INFLIGHT"
put open_conns "$OPEN_CONNS"
[ "$FORCE_NODELAY" = 1 ] && put nodelay_note "yes (LD_PRELOAD shim, BENCH_FORCE_NODELAY=1)"

# ---------------------------------------------------------------------------- helpers
# user+sys clock ticks of a process (all threads): fields 14 and 15 of /proc/PID/stat.
ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; set -- $s; echo $((${12} + ${13})); }
uticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; set -- $s; echo "${12}"; }
sticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; set -- $s; echo "${13}"; }
# This shell's own and its reaped children's ticks (h2load, curl, python).
own_ticks() { local s; s=$(<"/proc/$$/stat"); s=${s##*) }; set -- $s; echo $((${12} + ${13} + ${14} + ${15})); }
# Busy ticks of the whole machine (all but idle and iowait).
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# Nanoseconds on a CPU of all threads (schedstat's first field): exact, where the clock ticks
# above sample at 100 Hz and miss or over-count short, timer-aligned bursts of work.
run_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
calc() { awk "BEGIN{printf \"$1\", $2}"; }
now() { date +%s.%N; }
upstream_count() { python3 "$HERE/bench.py" stats "$SB" "$1"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

H2_FAILED=0 H2_ERRORED=0
# run_h2 LABEL CPU h2load-args...: runs h2load pinned to CPU, parses its summary into H2_*.
run_h2() {
  local label=$1 cpu=$2; shift 2
  if ! pin "$cpu" h2load "$@" >"$WORK/$label.h2load.txt" 2>&1; then
    cat "$WORK/$label.h2load.txt" >&2
    die "h2load $label"
  fi
  unset H2_secs H2_rps H2_total H2_done H2_succeeded H2_failed H2_errored H2_data_bytes
  eval "$(python3 "$HERE/bench.py" h2load "$WORK/$label.h2load.txt" | sed 's/^/H2_/')"
  H2_FAILED=$((H2_FAILED + ${H2_failed:-0}))
  H2_ERRORED=$((H2_ERRORED + ${H2_errored:-0}))
}

# check LABEL UPSTREAM_DELTA CALLS DATA_PER_CALL: every call answered, every one reached the
# sandbox once, and every answer has the size of a successful one (a gRPC error is
# trailers-only: no DATA; h2load counts it as a success, this does not).
check() {
  local label=$1 delta=$2 calls=$3 per_call=$4 problems=
  [ "$delta" -eq "$calls" ] || problems+=" sandbox saw $delta requests;"
  [ "${H2_succeeded:-0}" -eq "$calls" ] || problems+=" h2load: ${H2_succeeded:-0} succeeded;"
  [ "${H2_data_bytes:-0}" -eq $((calls * per_call)) ] ||
    problems+=" answers carried ${H2_data_bytes:-0} bytes, not $calls x $per_call;"
  if [ -n "$problems" ]; then
    die "$label: $calls calls sent, but$problems see $WORK/$label.h2load.txt"
  fi
  put "${label}_check" "$calls/$calls"
}

# ---------------------------------------------------------------------------- start
SB_PID= GW_PID= ECHO_PID=
cleanup() {
  [ -n "$ECHO_PID" ] && kill "$ECHO_PID" 2>/dev/null || true
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null || true
  [ -n "$SB_PID" ] && kill "$SB_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() {
  local i
  for i in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "nothing listens on port $1"
}
for port in "$SB_PORT" "$GW_PORT" $([ "$FLOORS" = 1 ] && echo "$ECHO_PORT"); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
    die "port $port is taken; set BENCH_SANDBOX_PORT / BENCH_GATEWAY_PORT / BENCH_ECHO_PORT"
done

cat >"$WORK/gamegate.toml" <<EOF
listen = "127.0.0.1:$GW_PORT"

[[callers]]
name = "bench"
token = "$CALLER_TOKEN"
apps = ["*"]

[qq_minigame]
base_url = "$SB"
[qq_minigame.apps.1112345678]
secret = "demo-minigame-app-secret"
# Rate limits configured (issue 19: measured with them on), far above what the bench sends.
[qq_minigame.rate_limits]
platform = { rate_per_s = 1000000.0, burst = 100000 }
per_app = { rate_per_s = 1000000.0, burst = 100000 }

[msdk]
base_url = "$SB"
[msdk.apps.100703379]
msdkkey = "demo-msdk-qq-key-0001"
[msdk.rate_limits]
platform = { rate_per_s = 1000000.0, burst = 100000 }
per_app = { rate_per_s = 1000000.0, burst = 100000 }
EOF
if [ "$STORE" = redis ]; then
  command -v redis-cli >/dev/null && [ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = PONG ] ||
    die "BENCH_STORE=redis needs a Redis at $REDIS_URL"
  cat >>"$WORK/gamegate.toml" <<EOF

[store]
redis_url = "$REDIS_URL"
key_prefix = "gamegate-bench:$$:"
EOF
fi

# gamegate's GAMEGATE_* environment is configuration: GAMEGATE_LOG would be refused there as an
# unknown field, so gamegate runs at its default level (info; nothing is logged per successful
# call) and with no GAMEGATE_* variable at all.
GW_ENV=(env)
for name in $(env | grep -o '^GAMEGATE_[A-Za-z0-9_]*' || true); do GW_ENV+=(-u "$name"); done

start_sandbox() {
  GAMEGATE_LOG=warn "${SB_PIN[@]}" "$BIN" sandbox --listen "127.0.0.1:$SB_PORT" \
    >"$WORK/sandbox.log" 2>&1 &
  SB_PID=$!
  wait_port "$SB_PORT"
  # Keep older mini-game tokens valid: the direct path fetches its own.
  curl -fsS -X PUT -d '{"token_grace_secs": 86400}' "$SB/_sandbox/config" >/dev/null
}
start_gateway() { # [wrapper...]
  "${GW_PIN[@]}" "${GW_ENV[@]}" ${PRELOAD:+LD_PRELOAD=$PRELOAD} "$@" "$BIN" serve \
    --config "$WORK/gamegate.toml" >>"$WORK/gamegate.log" 2>&1 &
  GW_PID=$!
  wait_port "$GW_PORT"
}

# ---------------------------------------------------------------------------- quiet machine
log "uptime: $(uptime)"
waited=0
# Instruction counts do not wait for a quiet machine (BENCH_ONLY=callgrind).
[ "$ONLY" = callgrind ] && MAX_WAIT=0
while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN{exit !(l >= m)}'; do
  if [ "$waited" -ge "$MAX_WAIT" ]; then
    log "load still $(load1) after ${waited}s; measuring anyway (noted in RESULTS.md)"
    break
  fi
  log "1-minute load $(load1) >= $LOAD_MAX; waiting (${waited}s so far)"
  sleep 15
  waited=$((waited + 15))
done
put waited_secs "$waited"
put uptime_start "$(uptime | sed 's/^ *//')"

start_sandbox
start_gateway
GW_THREADS=$(ls "/proc/$GW_PID/task" | wc -l)
put gateway_threads "$GW_THREADS"
put gateway_cmd "gamegate serve --config gamegate.toml${PRELOAD:+ (LD_PRELOAD TCP_NODELAY shim)}"
put store "$([ "$STORE" = redis ] && echo "redis ($REDIS_URL, redis-server unpinned)" || echo memory)"
sleep 1
put rss_idle_mib "$(mib "$(rss_kib "$GW_PID")")"

# ---------------------------------------------------------------------------- smoke
python3 "$HERE/bench.py" bodies "$WORK"
grpc_smoke() { # RPC BODY [BASE] -> prints the DATA bytes of the answer; dies unless grpc-status 0
  local out
  out=$(nghttp -v -d "$2" "${GRPC_HEADERS[@]}" "${3:-$GW}/$1" 2>&1 | tr -d '\0' || true)
  grep -aq 'grpc-status: 0' <<<"$out" || { echo "$out" >&2; die "smoke call of $1"; }
  grep -ao 'recv DATA frame <length=[0-9]*' <<<"$out" | grep -o '[0-9]*$' | awk '{s+=$1} END{print s+0}'
}
STORAGE_GRPC_BYTES=$(grpc_smoke "$STORAGE_RPC" "$WORK/storage.grpc")
FRIENDS_GRPC_BYTES=$(grpc_smoke "$MSDK_RPC" "$WORK/friends.grpc")
put c_answer_bytes "$FRIENDS_GRPC_BYTES"
TOKEN=$(curl -fsS "$SB/api/getToken?grant_type=client_credential&appid=1112345678&secret=demo-minigame-app-secret" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
eval "$(python3 "$HERE/bench.py" direct "$WORK" "$SB" "$TOKEN")"
direct_smoke() { # URL BODY WANT -> prints the size of the answer
  local answer
  answer=$(curl -fsS -H 'content-type: application/json' --data-binary "@$2" "$1")
  grep -q "$3" <<<"$answer" || die "direct smoke call: $answer"
  printf '%s' "$answer" | wc -c
}
STORAGE_JSON_BYTES=$(direct_smoke "$STORAGE_URL" "$WORK/storage.json" '"errcode":0')
FRIENDS_JSON_BYTES=$(direct_smoke "$MSDK_URL" "$WORK/friends.json" '"ret":0')
log "smoke calls answered: gRPC $STORAGE_GRPC_BYTES / $FRIENDS_GRPC_BYTES bytes, direct $STORAGE_JSON_BYTES / $FRIENDS_JSON_BYTES bytes"

H1_STORAGE=(--h1 -d "$WORK/storage.json" -H 'content-type: application/json' "$STORAGE_URL")
H1_MSDK=(--h1 -d "$WORK/friends.json" -H 'content-type: application/json' "$MSDK_URL")
GRPC_STORAGE=(-d "$WORK/storage.grpc" "${GRPC_HEADERS[@]}" "$GW/$STORAGE_RPC")
GRPC_MSDK=(-d "$WORK/friends.grpc" "${GRPC_HEADERS[@]}" "$GW/$MSDK_RPC")
# The storage RPC over the Connect protocol with JSON (issue 17), on the same HTTP/2 port.
CONNECT_STORAGE=(-d "$WORK/storage.connect.json" -H 'content-type: application/json'
  -H 'connect-protocol-version: 1' -H "authorization: Bearer $CALLER_TOKEN" "$GW/$STORAGE_RPC")

# ---------------------------------------------------------------------------- callgrind
# gamegate restarted under callgrind: 500 warm-up calls per path, counters zeroed, then
# PROFILE_CALLS calls per path, one dump each (callgrind.out.1, .2, .3).
profile_gamegate() {
  log "callgrind: $PROFILE_CALLS calls per gateway path"
  kill "$GW_PID"
  wait "$GW_PID" 2>/dev/null || true
  GW_PID=
  local preload_saved=$PRELOAD
  PRELOAD=
  start_gateway valgrind --tool=callgrind --dump-instr=no \
    --callgrind-out-file="$WORK/callgrind.out"
  PRELOAD=$preload_saved
  # Token fetch, connections, first-call allocations: not part of the profile.
  run_h2 cg_warm_b "$SB_CPU" -n 500 "${GRPC_CLOSED[@]}" "${GRPC_STORAGE[@]}"
  run_h2 cg_warm_c "$SB_CPU" -n 500 "${GRPC_CLOSED[@]}" "${GRPC_MSDK[@]}"
  run_h2 cg_warm_d "$SB_CPU" -n 500 "${GRPC_CLOSED[@]}" "${CONNECT_STORAGE[@]}"
  callgrind_control -z "$GW_PID" >/dev/null
  run_h2 cg_b "$SB_CPU" -n "$PROFILE_CALLS" "${GRPC_CLOSED[@]}" "${GRPC_STORAGE[@]}"
  callgrind_control -d storage "$GW_PID" >/dev/null
  run_h2 cg_c "$SB_CPU" -n "$PROFILE_CALLS" "${GRPC_CLOSED[@]}" "${GRPC_MSDK[@]}"
  callgrind_control -d msdk "$GW_PID" >/dev/null
  run_h2 cg_d "$SB_CPU" -n "$PROFILE_CALLS" "${GRPC_CLOSED[@]}" "${CONNECT_STORAGE[@]}"
  callgrind_control -d connect "$GW_PID" >/dev/null
  kill "$GW_PID"
  wait "$GW_PID" 2>/dev/null || true
  GW_PID=
}

# The floors (bench/floors/, README.md), under callgrind on gamegate's core:
# - the tonic echo server, loaded like gamegate (same h2load arguments and headers, a request
#   and an answer of the storage RPC's sizes): 500 warm-up calls, zero, PROFILE_CALLS calls, dump
#   (callgrind.echo.out.1);
# - the two HTTP/1.1 clients, sending the direct path's signed storage POST to the sandbox over 8
#   keep-alive connections: each run twice, FLOORS_WARMUP + FLOORS_N1 and FLOORS_WARMUP +
#   FLOORS_N2 requests (callgrind.client-CLIENT.N), every request checked by the sandbox's count.
profile_floors() {
  [ "$FLOORS" = 1 ] || return 0
  log "floors: tonic echo server under callgrind, $PROFILE_CALLS calls"
  eval "$(python3 "$HERE/bench.py" echo-sizes "$(stat -c %s "$WORK/storage.grpc")" "$STORAGE_GRPC_BYTES")"
  python3 "$HERE/bench.py" echo-body "$WORK/echo.grpc" "$ECHO_REQUEST_PAYLOAD"
  local echo_base=http://127.0.0.1:$ECHO_PORT
  "${GW_PIN[@]}" valgrind --tool=callgrind --dump-instr=no \
    --callgrind-out-file="$WORK/callgrind.echo.out" \
    "$WORK/echo-server" --listen "127.0.0.1:$ECHO_PORT" --reply-bytes "$ECHO_REPLY_PAYLOAD" \
    >"$WORK/echo.log" 2>&1 &
  ECHO_PID=$!
  wait_port "$ECHO_PORT"
  local echo_bytes
  echo_bytes=$(grpc_smoke floors.Echo/Echo "$WORK/echo.grpc" "$echo_base")
  [ "$echo_bytes" = "$STORAGE_GRPC_BYTES" ] ||
    die "the echo answer is $echo_bytes bytes, gamegate's storage answer $STORAGE_GRPC_BYTES"
  local echo_h2=(-d "$WORK/echo.grpc" "${GRPC_HEADERS[@]}" "$echo_base/floors.Echo/Echo")
  run_h2 cg_warm_echo "$SB_CPU" -n 500 "${GRPC_CLOSED[@]}" "${echo_h2[@]}"
  callgrind_control -z "$ECHO_PID" >/dev/null
  run_h2 cg_echo "$SB_CPU" -n "$PROFILE_CALLS" "${GRPC_CLOSED[@]}" "${echo_h2[@]}"
  callgrind_control -d echo "$ECHO_PID" >/dev/null
  check cg_echo "$PROFILE_CALLS" "$PROFILE_CALLS" "$STORAGE_GRPC_BYTES"
  kill "$ECHO_PID"
  wait "$ECHO_PID" 2>/dev/null || true
  ECHO_PID=
  local client n up0 up1 out
  for client in gamegate hyper; do
    for n in "$FLOORS_N1" "$FLOORS_N2"; do
      log "floors: $client client under callgrind, $FLOORS_WARMUP + $n requests"
      out=$WORK/client-$client.$n.log
      up0=$(upstream_count "$STORAGE_PATH")
      pin "$GW_CPU" valgrind --tool=callgrind --dump-instr=no \
        --callgrind-out-file="$WORK/callgrind.client-$client.$n" \
        "$WORK/client-floor" --client "$client" --url "$STORAGE_URL" \
        --body-file "$WORK/storage.json" --content-type application/json \
        --expect '"errcode":0' --connections 8 --warmup "$FLOORS_WARMUP" --requests "$n" \
        >"$out" 2>&1 || { tail -20 "$out" >&2; die "the $client client floor"; }
      up1=$(upstream_count "$STORAGE_PATH")
      [ $((up1 - up0)) -eq $((FLOORS_WARMUP + n)) ] ||
        die "$client client floor: the sandbox saw $((up1 - up0)) requests, not $((FLOORS_WARMUP + n))"
    done
  done
}

# profile.md: gamegate's paths, perf's split (when it ran), then the floors.
write_profile() {
  python3 "$HERE/bench.py" profile "$WORK" "$PROFILE_CALLS" >"$WORK/profile.md"
  if [ -s "$WORK/perf.dso.txt" ]; then
    { echo; python3 "$HERE/bench.py" perf "$WORK/perf.dso.txt" "$WORK/perf.sym.txt"; } >>"$WORK/profile.md"
  fi
  if [ "$FLOORS" = 1 ]; then
    { echo; python3 "$HERE/bench.py" floors "$WORK" "$PROFILE_CALLS" "$FLOORS_N1" "$FLOORS_N2"; } \
      >>"$WORK/profile.md"
  fi
  # The per-call figures, for the report's targets.
  cat "$WORK/profile.kv" "$WORK/floors.kv" 2>/dev/null >>"$ENV_FILE" || true
}

if [ "$ONLY" = callgrind ]; then
  profile_gamegate
  profile_floors
  write_profile
  cat "$WORK/profile.md"
  log "done: $WORK/profile.md (raw data in $WORK; RESULTS.md untouched)"
  exit 0
fi

log "warm-up: $WARMUP calls per path"
run_h2 warmup_a "$GW_CPU" -n "$WARMUP" "${H1_CLOSED[@]}" "${H1_STORAGE[@]}"
run_h2 warmup_am "$GW_CPU" -n "$WARMUP" "${H1_CLOSED[@]}" "${H1_MSDK[@]}"
run_h2 warmup_b "$SB_CPU" -n "$WARMUP" "${GRPC_CLOSED[@]}" "${GRPC_STORAGE[@]}"
run_h2 warmup_c "$SB_CPU" -n "$WARMUP" "${GRPC_CLOSED[@]}" "${GRPC_MSDK[@]}"
sleep 1
put rss_warm_mib "$(mib "$(rss_kib "$GW_PID")")"

MEASURE_BUSY0=$(busy_ticks) MEASURE_OWN0=$(own_ticks)
MEASURE_GW0=$(ticks "$GW_PID") MEASURE_SB0=$(ticks "$SB_PID") MEASURE_T0=$(now)

# ---------------------------------------------------------------------------- closed loop
# closed KEY CPU UPSTREAM_PATH DATA_PER_CALL CALLS h2load-args...
closed() {
  local key=$1 cpu=$2 path=$3 per_call=$4 calls=$5
  shift 5
  local up0 gw0 gwu0 gws0 sb0 up1
  up0=$(upstream_count "$path")
  gw0=$(ticks "$GW_PID") gwu0=$(uticks "$GW_PID") gws0=$(sticks "$GW_PID") sb0=$(ticks "$SB_PID")
  local gwns0 gwns1
  gwns0=$(run_ns "$GW_PID")
  run_h2 "closed_$key" "$cpu" -n "$calls" "$@"
  local gw1 gwu1 gws1 sb1
  gw1=$(ticks "$GW_PID") gwu1=$(uticks "$GW_PID") gws1=$(sticks "$GW_PID") sb1=$(ticks "$SB_PID")
  gwns1=$(run_ns "$GW_PID")
  up1=$(upstream_count "$path")
  check "$key" $((up1 - up0)) "$calls" "$per_call"
  put "${key}_calls" "$calls"
  put "${key}_rps" "$(calc '%.0f' "$H2_rps")"
  put "${key}_sb_cpu_us" "$(calc '%.1f' "($sb1 - $sb0) * 1000000 / $CLK_TCK / $calls")"
  if [ "$cpu" = "$SB_CPU" ]; then # a gateway path
    put "${key}_gw_cpu_us" "$(calc '%.1f' "($gw1 - $gw0) * 1000000 / $CLK_TCK / $calls")"
    put "${key}_gw_run_us" "$(calc '%.1f' "($gwns1 - $gwns0) / 1000 / $calls")"
    put "${key}_gw_user_us" "$(calc '%.1f' "($gwu1 - $gwu0) * 1000000 / $CLK_TCK / $calls")"
    put "${key}_gw_sys_us" "$(calc '%.1f' "($gws1 - $gws0) * 1000000 / $CLK_TCK / $calls")"
    put "${key}_gw_busy_pct" "$(calc '%.0f' "($gw1 - $gw0) * 100 / $CLK_TCK / $H2_secs")"
  fi
  log "closed loop $key: $calls calls, $H2_rps calls/s"
}

log "closed loop, direct (a) and (a'): $TP_CALLS calls each"
put a_h2_args "${H1_CLOSED[*]}"
closed a "$GW_CPU" "$STORAGE_PATH" "$STORAGE_JSON_BYTES" "$TP_CALLS" "${H1_CLOSED[@]}" "${H1_STORAGE[@]}"
closed am "$GW_CPU" "$MSDK_PATH" "$FRIENDS_JSON_BYTES" "$TP_CALLS" "${H1_CLOSED[@]}" "${H1_MSDK[@]}"

log "closed loop, gamegate MSDK (c): $TP_CALLS calls"
put c_h2_args "${GRPC_CLOSED[*]}"
closed c "$SB_CPU" "$MSDK_PATH" "$FRIENDS_GRPC_BYTES" "$TP_CALLS" "${GRPC_CLOSED[@]}" "${GRPC_MSDK[@]}"

# The soak is path (b)'s closed loop: CALLS calls in ten parts, RSS after each.
log "closed loop + soak, gamegate storage (b): $CALLS calls"
put b_h2_args "${GRPC_CLOSED[*]}"
chunk=$((CALLS / 10))
up0=$(upstream_count "$STORAGE_PATH")
gw0=$(ticks "$GW_PID") gwu0=$(uticks "$GW_PID") gws0=$(sticks "$GW_PID") sb0=$(ticks "$SB_PID")
gwns0=$(run_ns "$GW_PID")
series= secs=0 data=0 succeeded=0
for part in $(seq 1 10); do
  run_h2 "soak_$part" "$SB_CPU" -n "$chunk" "${GRPC_CLOSED[@]}" "${GRPC_STORAGE[@]}"
  secs=$(calc '%.3f' "$secs + $H2_secs")
  data=$((data + H2_data_bytes)) succeeded=$((succeeded + H2_succeeded))
  rss=$(mib "$(rss_kib "$GW_PID")")
  series+="${series:+, }$rss"
  [ "$part" = 1 ] && put soak_first_mib "$rss"
  log "soak: $((part * chunk)) calls, RSS $rss MiB, $H2_rps calls/s"
done
gw1=$(ticks "$GW_PID") gwu1=$(uticks "$GW_PID") gws1=$(sticks "$GW_PID") sb1=$(ticks "$SB_PID")
gwns1=$(run_ns "$GW_PID")
up1=$(upstream_count "$STORAGE_PATH")
soak_calls=$((chunk * 10))
H2_succeeded=$succeeded H2_data_bytes=$data
check b $((up1 - up0)) "$soak_calls" "$STORAGE_GRPC_BYTES"
put b_calls "$soak_calls"
put b_rps "$(calc '%.0f' "$soak_calls / $secs")"
put b_sb_cpu_us "$(calc '%.1f' "($sb1 - $sb0) * 1000000 / $CLK_TCK / $soak_calls")"
put b_gw_cpu_us "$(calc '%.1f' "($gw1 - $gw0) * 1000000 / $CLK_TCK / $soak_calls")"
put b_gw_run_us "$(calc '%.1f' "($gwns1 - $gwns0) / 1000 / $soak_calls")"
put b_gw_user_us "$(calc '%.1f' "($gwu1 - $gwu0) * 1000000 / $CLK_TCK / $soak_calls")"
put b_gw_sys_us "$(calc '%.1f' "($gws1 - $gws0) * 1000000 / $CLK_TCK / $soak_calls")"
put b_gw_busy_pct "$(calc '%.0f' "($gw1 - $gw0) * 100 / $CLK_TCK / $secs")"
put soak_chunk "$chunk"
put soak_first_calls "$chunk"
put soak_series "$series"
put soak_last_mib "$rss"
put soak_growth_mib "$(calc '%.1f' "$rss - $(grep '^soak_first_mib=' "$ENV_FILE" | cut -d= -f2)")"

# ---------------------------------------------------------------------------- open loop
# Open loop at RATE calls/s, two ways, each on one path at a time:
# - "even": one connection, one call every 1000/RATE ms from an h2load --timing-script-file.
#   h2load arms each call's timer when the previous one fires and libev rounds it up to the
#   millisecond, so the calls start evenly but somewhat slower than RATE (the rate achieved is
#   recorded next to the figures).
# - "bursts": h2load --rps over OPEN_CONNS connections. Their timers fire together, so this is
#   RATE/OPEN_CONNS bursts per second of OPEN_CONNS simultaneous calls (measured from the start
#   times in h2load's log), a queueing test more than a latency one.
# h2load runs beside gamegate for the gateway paths and on the same core for the direct path,
# so both paths cross between the two cores the same number of times (twice) and the
# difference is what gamegate adds.
# open_loop KEY UPSTREAM_PATH DATA_PER_CALL MODE h2load-args... URI
open_loop() {
  local key=$1 path=$2 per_call=$3 mode=$4
  shift 4
  local n=$((RATE * LAT_SECS)) up0 up1 gw0 gw1 uri=${*: -1} prefix streams=16
  # HTTP/1.1 has one call in flight per connection; gRPC gets room for late answers.
  if [ "$key" = a ] || [ "$key" = am ]; then
    streams=1
  elif [ "$mode" = bursts ]; then
    streams=4
  fi
  up0=$(upstream_count "$path")
  gw0=$(ticks "$GW_PID")
  local gwns0 gwns1
  gwns0=$(run_ns "$GW_PID")
  rm -f "$WORK/${mode}_$key".log*
  if [ "$mode" = even ]; then
    prefix=lat
    python3 "$HERE/bench.py" schedule "$WORK/schedule_$key.txt" "$n" "$RATE" "$uri"
    run_h2 "open_$key" "$GW_CPU" -c 1 -m "$streams" --timing-script-file="$WORK/schedule_$key.txt" \
      --log-file "$WORK/${mode}_$key.log" "${@:1:$#-1}"
  else
    prefix=burst
    run_h2 "burst_$key" "$GW_CPU" -n "$n" -c "$OPEN_CONNS" --rps $((RATE / OPEN_CONNS)) -m "$streams" \
      --log-file "$WORK/${mode}_$key.log" "$@"
  fi
  gw1=$(ticks "$GW_PID")
  gwns1=$(run_ns "$GW_PID")
  up1=$(upstream_count "$path")
  check "${prefix}_$key" $((up1 - up0)) "$n" "$per_call"
  eval "$(python3 "$HERE/bench.py" pct "$WORK/${mode}_$key.log" | sed 's/^/P_/')"
  local p
  for p in p50 p90 p99 p999 max rate long_gaps_pct short_gaps_pct; do
    eval "put ${prefix}_${key}_$p \"\$P_$p\""
  done
  case $key in
    b | c)
      put "${prefix}_${key}_gw_cpu_us" "$(calc '%.1f' "($gw1 - $gw0) * 1000000 / $CLK_TCK / $n")"
      put "${prefix}_${key}_gw_run_us" "$(calc '%.1f' "($gwns1 - $gwns0) / 1000 / $n")"
      ;;
  esac
  log "open loop ($mode) $key, started at $P_rate/s: p50 $P_p50 µs, p99 $P_p99 µs, p99.9 $P_p999 µs"
}
log "open loop at $RATE calls/s, $LAT_SECS s per path and mode"
for mode in even bursts; do
  open_loop a "$STORAGE_PATH" "$STORAGE_JSON_BYTES" "$mode" "${H1_STORAGE[@]}"
  open_loop b "$STORAGE_PATH" "$STORAGE_GRPC_BYTES" "$mode" "${GRPC_STORAGE[@]}"
  open_loop am "$MSDK_PATH" "$FRIENDS_JSON_BYTES" "$mode" "${H1_MSDK[@]}"
  open_loop c "$MSDK_PATH" "$FRIENDS_GRPC_BYTES" "$mode" "${GRPC_MSDK[@]}"
done
# One call at a time (h2load -c 1 -m 1, closed loop): the cores never sit idle long enough to
# halt, so this shows gamegate's own share of the latency without the cost of waking an idle
# vCPU. h2load beside gamegate, as in the open loop.
serial() {
  local key=$1 path=$2 per_call=$3
  shift 3
  local up0 up1
  up0=$(upstream_count "$path")
  rm -f "$WORK/serial_$key".log*
  run_h2 "serial_$key" "$GW_CPU" -n "$SERIAL_CALLS" -c 1 -m 1 --log-file "$WORK/serial_$key.log" "$@"
  up1=$(upstream_count "$path")
  check "serial_$key" $((up1 - up0)) "$SERIAL_CALLS" "$per_call"
  eval "$(python3 "$HERE/bench.py" pct "$WORK/serial_$key.log" | sed 's/^/P_/')"
  local p
  for p in p50 p90 p99 p999 max; do
    eval "put ser_${key}_$p \"\$P_$p\""
  done
  log "serial $key: p50 $P_p50 µs, p99 $P_p99 µs, p99.9 $P_p999 µs"
}
log "one call at a time: $SERIAL_CALLS calls per path"
serial a "$STORAGE_PATH" "$STORAGE_JSON_BYTES" "${H1_STORAGE[@]}"
serial b "$STORAGE_PATH" "$STORAGE_GRPC_BYTES" "${GRPC_STORAGE[@]}"
serial am "$MSDK_PATH" "$FRIENDS_JSON_BYTES" "${H1_MSDK[@]}"
serial c "$MSDK_PATH" "$FRIENDS_GRPC_BYTES" "${GRPC_MSDK[@]}"

val() { grep "^$1=" "$ENV_FILE" | tail -1 | cut -d= -f2; }
for p in p50 p99 p999; do
  put "added_b_$p" $(($(val "lat_b_$p") - $(val "lat_a_$p")))
  put "added_c_$p" $(($(val "lat_c_$p") - $(val "lat_am_$p")))
  put "badded_b_$p" $(($(val "burst_b_$p") - $(val "burst_a_$p")))
  put "badded_c_$p" $(($(val "burst_c_$p") - $(val "burst_am_$p")))
  put "sadded_b_$p" $(($(val "ser_b_$p") - $(val "ser_a_$p")))
  put "sadded_c_$p" $(($(val "ser_c_$p") - $(val "ser_am_$p")))
done

# ---------------------------------------------------------------------------- in flight
log "RSS with $INFLIGHT calls in flight (sandbox latency fault, 2000 ms)"
curl -fsS -X POST -d "{\"path\": \"$STORAGE_PATH\", \"latency_ms\": 2000, \"times\": 0}" \
  "$SB/_sandbox/faults" >/dev/null
up0=$(upstream_count "$STORAGE_PATH")
per_conn=$(((INFLIGHT + OPEN_CONNS - 1) / OPEN_CONNS))
"${SB_PIN[@]}" h2load -n "$INFLIGHT" -c "$OPEN_CONNS" -m "$per_conn" "${GRPC_STORAGE[@]}" \
  >"$WORK/inflight.h2load.txt" 2>&1 &
H2_PID=$!
max_rss=0 conns=0
for _ in $(seq 1 30); do
  sleep 0.1
  r=$(rss_kib "$GW_PID")
  [ "$r" -gt "$max_rss" ] && max_rss=$r
  c=$(ss -Htn state established "( dport = :$SB_PORT )" | wc -l)
  [ "$c" -gt "$conns" ] && conns=$c
done
wait "$H2_PID" || { cat "$WORK/inflight.h2load.txt" >&2; die "h2load inflight"; }
curl -fsS -X DELETE "$SB/_sandbox/faults" >/dev/null
unset H2_secs H2_succeeded H2_data_bytes H2_failed H2_errored
eval "$(python3 "$HERE/bench.py" h2load "$WORK/inflight.h2load.txt" | sed 's/^/H2_/')"
H2_FAILED=$((H2_FAILED + ${H2_failed:-0})) H2_ERRORED=$((H2_ERRORED + ${H2_errored:-0}))
up1=$(upstream_count "$STORAGE_PATH")
check inflight $((up1 - up0)) "$INFLIGHT" "$STORAGE_GRPC_BYTES"
awk -v s="$H2_secs" 'BEGIN{exit !(s >= 2.0)}' || die "in-flight calls took $H2_secs s, not >= 2 s"
put rss_inflight_mib "$(mib "$max_rss")"
put inflight_upstream_conns "$conns"
put inflight_secs "$H2_secs"
put hwm_after_inflight_mib "$(mib "$(hwm_kib "$GW_PID")")"
sleep 2
put rss_after_inflight_mib "$(mib "$(rss_kib "$GW_PID")")"
log "in flight: RSS max $(mib "$max_rss") MiB, $conns upstream connections"

# ---------------------------------------------------------------------------- wrap up
MEASURE_T1=$(now)
busy=$(($(busy_ticks) - MEASURE_BUSY0))
ours=$(($(ticks "$GW_PID") - MEASURE_GW0 + $(ticks "$SB_PID") - MEASURE_SB0 + $(own_ticks) - MEASURE_OWN0))
put foreign_cpu_pct "$(calc '%.0f' "($busy - $ours) * 100 / $CLK_TCK / ($MEASURE_T1 - $MEASURE_T0)")"
put uptime_end "$(uptime | sed 's/^ *//')"
put rpc_failed "$(grep -c 'rpc failed' "$WORK/gamegate.log" || true)"
put gw_warnings "$(grep -cE 'WARN|ERROR' "$WORK/gamegate.log" || true)"
put h2_failed "$H2_FAILED"
put h2_errored "$H2_ERRORED"
grep -E 'WARN|ERROR' "$WORK/gamegate.log" | head -5 >&2 || true

# ---------------------------------------------------------------------------- profile
if [ "$PROFILE" = 1 ]; then
  # Kernel vs user time, sampled on the CPU clock (this VM has no hardware counters).
  if perf record -e cpu-clock -o "$WORK/perf.probe" true >/dev/null 2>&1; then
    log "perf: sampling gamegate during $TP_CALLS storage calls"
    perf record -e cpu-clock -F 4999 -g -o "$WORK/perf.data" -p "$GW_PID" \
      >"$WORK/perf.record.log" 2>&1 &
    PERF_PID=$!
    sleep 0.5
    run_h2 perf_b "$SB_CPU" -n "$TP_CALLS" "${GRPC_CLOSED[@]}" "${GRPC_STORAGE[@]}"
    kill -INT "$PERF_PID"
    wait "$PERF_PID" || true
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null \
      >"$WORK/perf.dso.txt" || true
    perf report -i "$WORK/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null \
      >"$WORK/perf.sym.txt" || true
  fi
  profile_gamegate
  profile_floors
  write_profile
  put profile_file "$WORK/profile.md"
fi

python3 "$HERE/bench.py" report "$ENV_FILE" "$RESULTS"
log "done: $RESULTS (raw data in $WORK)"
