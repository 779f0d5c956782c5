#!/usr/bin/env bash
# Benchmarks how a three-server cluster copes with a follower that dies with
# pods on it: time from the kill until the survivors mark it NotReady, until
# no balancer sends it requests any more (goal 3 s), and until its replicas
# are ready elsewhere (goal 10 s plus a container start, measured in the
# same run as the baseline: apply of the example until every replica is
# ready).
#
#   scripts/bench/node-failover.sh
#
# Needs Docker with the example's images in the mirror on 127.0.0.1:5000
# (scripts/build-test-images.sh). Agents listen on 127.0.X.2-4 with a random
# X in 240..254 and bind the example's LoadBalancer on port 80 there. The
# measuring is done by node-failover.js; whatever happens, this script
# stops the agents by pid, removes the containers carrying this run's
# label, and removes the temp dir.
set -euo pipefail

readonly HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT=$(cd "${HERE}/../.." && pwd)
readonly MANIFEST="${ROOT}/examples/awesome-product.yaml"
readonly LABEL_KEY=io.flotilla.test-run
readonly REGISTRY=127.0.0.1:5000
WORK=""
RUN_ID=""

die() { printf 'node-failover: error: %s\n' "$*" >&2; exit 1; }

preflight() {
  local image
  image=$(awk '$1 == "image:" { print $2; exit }' "$MANIFEST")
  [[ -f "${ROOT}/build/src/main.js" ]] || die "run npx tsc -p . first"
  docker info >/dev/null 2>&1 || die "docker does not answer"
  curl -fs -m 5 -o /dev/null \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://${REGISTRY}/v2/${image%%:*}/manifests/${image##*:}" \
    || die "the mirror on ${REGISTRY} does not serve ${image}; run scripts/build-test-images.sh"
}

cleanup() {
  local rc=$? pid n ids
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
  if [[ -n "$RUN_ID" ]]; then
    for n in 2 3 4; do
      ids=$(docker ps -aq --filter "label=${LABEL_KEY}=${RUN_ID}-${n}" 2>/dev/null || true)
      # shellcheck disable=SC2086 # one id per word
      [[ -z "$ids" ]] || docker rm -f $ids >/dev/null 2>&1 || true
    done
  fi
  [[ -z "$WORK" ]] || rm -rf "$WORK"
  exit "$rc"
}

main() {
  preflight
  RUN_ID="bench-node-$(date +%s)-$$"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  WORK=$(mktemp -d /tmp/flotilla-node-bench.XXXXXX)
  : >"${WORK}/pids"
  timeout -k 5 300 node "${HERE}/node-failover.js" "$WORK" "${WORK}/pids" \
    "$((240 + RANDOM % 15))" "$RUN_ID" "$LABEL_KEY" "$MANIFEST"
}

main "$@"
