#!/usr/bin/env bash
# Benchmarks commits through the admin API on a three-server Raft cluster
# against a one-server agent measured in the same run (the baseline):
# single-client p50 latency and commits per second with 16 clients.
#
#   scripts/bench/raft-commits.sh
#
# BENCH_SEQUENTIAL, BENCH_CONCURRENT and BENCH_CLIENTS change the counts;
# BENCH_WRITE=patch|create the kind of write (see raft-commits.js), and
# BENCH_MAIN another build's build/src/main.js.
# Agents listen on 127.0.X.2-4 and 127.0.X.10 with a random X in 240..254;
# the writes are ClusterIP Services, so no container is started. Whatever
# happens, the agents are stopped by pid and the temp dir is removed.
set -euo pipefail

readonly HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT=$(cd "${HERE}/../.." && pwd)
WORK=""

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  if [[ -n "$WORK" && -f "${WORK}/pids" ]]; then
    while read -r pid; do
      # Only a pid whose command line names this run's temp dir is ours.
      if [[ -r "/proc/${pid}/cmdline" ]] \
        && { tr '\0' ' ' <"/proc/${pid}/cmdline"; } 2>/dev/null | grep -qF "$WORK"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"${WORK}/pids"
  fi
  [[ -z "$WORK" ]] || rm -rf "$WORK"
  exit "$rc"
}

main() {
  [[ -f "${ROOT}/build/src/main.js" ]] || { echo "run npx tsc -p . first" >&2; exit 1; }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  WORK=$(mktemp -d /tmp/flotilla-raft-bench.XXXXXX)
  : >"${WORK}/pids"
  timeout -k 5 300 node "${HERE}/raft-commits.js" "$WORK" "${WORK}/pids" "$((240 + RANDOM % 15))"
}

main "$@"
