#!/usr/bin/env bash
# Benchmarks how long a three-server cluster takes, after its leader is
# killed, to commit the next write, against a write on the healthy cluster
# measured in the same run (the baseline). Goal: 2 s.
#
#   scripts/bench/leader-failover.sh [ROUNDS]     (default 3)
#
# Agents listen on 127.0.X.2-4 with a random X in 240..254; the writes are
# ClusterIP Services, so no container is started. Whatever happens, the
# agents are stopped by pid and the temp dir is removed.
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
  WORK=$(mktemp -d /tmp/flotilla-leader-bench.XXXXXX)
  : >"${WORK}/pids"
  timeout -k 5 300 node "${HERE}/leader-failover.js" "$WORK" "${WORK}/pids" \
    "$((240 + RANDOM % 15))" "${1:-3}"
}

main "$@"
