#!/usr/bin/env bash
# Only the callgrind part of bench/run.sh: the sandbox and gamegate started, one smoke call per
# path, then gamegate under callgrind (instructions and allocation calls per call, storage, MSDK,
# Connect JSON) and the floors of bench/floors/ (tonic echo server, gamegate's upstream client,
# hyper's client), printed as markdown and kept in target/bench/profile.md. No latency,
# throughput, memory or soak figures; bench/RESULTS.md is left as it is. Minutes, not the
# quarter of an hour of run.sh.
#
#   bench/callgrind.sh                                    # builds gamegate and bench/floors
#   BENCH_BIN=/path/to/release/gamegate bench/callgrind.sh
#   BENCH_FLOORS=0 bench/callgrind.sh                     # gamegate's paths only
#
# Every BENCH_* knob of run.sh applies (BENCH_PROFILE_CALLS, BENCH_FLOORS_N1/N2, ports, ...).
set -euo pipefail
BENCH_ONLY=callgrind exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" "$@"
