#!/usr/bin/env bash
# Checks that the state database stays under a fixed bound under churn:
# 100,000 scale/apply changes through the Raft command log in process
# (see state-size.js), printing the database size over time.
#
#   scripts/bench/state-size.sh
#
# BENCH_CHANGES and BENCH_BOUND_MIB change the count and the bound. The
# database lives on /dev/shm when it exists: the size does not depend on
# the disk, and fsync would make the run take many minutes. The temp dir
# is removed whatever happens.
set -euo pipefail

readonly HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT=$(cd "${HERE}/../.." && pwd)
WORK=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -z "$WORK" ]] || rm -rf "$WORK"
  exit "$rc"
}

main() {
  [[ -f "${ROOT}/build/test/db/state-churn.js" ]] || { echo "run npx tsc -p . first" >&2; exit 1; }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local base=/tmp
  [[ -d /dev/shm && -w /dev/shm ]] && base=/dev/shm
  WORK=$(mktemp -d "${base}/flotilla-state-size.XXXXXX")
  timeout -k 5 1200 node "${HERE}/state-size.js" "$WORK"
}

main "$@"
