#!/usr/bin/env bash
# Benchmarks how long `flotilla apply -f examples/awesome-product.yaml` takes
# until every replica is Running and ready, and how much memory the agent
# holds, each against a baseline measured in the same run:
#
#   scripts/bench/apply-to-ready.sh [--bin dist/flotilla] [--rounds N]
#                                   [--address 127.0.77.7] [--budget SECONDS]
#
# --bin runs the single-file binary instead of `node build/src/main.js`.
# --address is the loopback address the agent listens on; the example's
# LoadBalancer binds port 80 there, so pick one nothing else uses.
# --budget (default 270 s) is checked between rounds: once spent, the
# rounds done so far are reported; 60 s after it the run is killed.
# The measuring is done by apply-to-ready.js; this script checks the
# machine first and, whatever happens, stops what the run started: agents
# by pid, containers by the run's label, and the temp dir.
set -euo pipefail

readonly HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT=$(cd "${HERE}/../.." && pwd)
readonly MANIFEST="${ROOT}/examples/awesome-product.yaml"
readonly LABEL_KEY=io.flotilla.test-run
readonly REGISTRY=127.0.0.1:5000

BIN=""
ROUNDS=5
ADDRESS=127.0.77.7
BUDGET=270
WORK=""
RUN_ID=""
CHILD=""

log() { printf 'apply-to-ready: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

parse_args() {
  while (($#)); do
    case "$1" in
      --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
      --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
      --address) ADDRESS=${2:?--address needs an address}; shift 2 ;;
      --budget) BUDGET=${2:?--budget needs seconds}; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done
  [[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || die "expected --rounds as 1..99, got ${ROUNDS}"
  [[ "$BUDGET" =~ ^[1-9][0-9]*$ ]] || die "expected --budget in seconds, got ${BUDGET}"
  [[ "$ADDRESS" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] \
    || die "expected --address on 127.0.0.0/8, got ${ADDRESS}"
}

# The example's images are pulled with imagePullPolicy Always, so the
# mirror must serve them; otherwise dockerd would go looking elsewhere.
preflight() {
  local image
  image=$(awk '$1 == "image:" { print $2; exit }' "$MANIFEST")
  command -v node >/dev/null || die "node is not on PATH"
  docker info >/dev/null 2>&1 || die "docker does not answer"
  docker image inspect "$image" >/dev/null 2>&1 \
    || die "${image} missing; run scripts/build-test-images.sh"
  curl -fs -m 5 -o /dev/null \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://${REGISTRY}/v2/${image%%:*}/manifests/${image##*:}" \
    || die "the mirror on ${REGISTRY} does not serve ${image}; run scripts/build-test-images.sh"
  docker info --format '{{json .RegistryConfig.Mirrors}}' | grep -qF "$REGISTRY" \
    || die "dockerd does not use ${REGISTRY} as its mirror; run scripts/setup-machine.sh"
  if [[ -n "$BIN" ]]; then
    [[ -f "$BIN" && -x "$BIN" ]] || die "${BIN} is not an executable"
    BIN=$(realpath "$BIN")
  else
    [[ -f "${ROOT}/build/src/main.js" ]] || die "build/src/main.js missing; run npx tsc -p ."
  fi
}

# Only pids whose command line names this run count as ours, so a pid the
# kernel has handed to someone else since is left alone.
is_ours() {
  [[ -r "/proc/$1/cmdline" ]] \
    && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -e "$WORK" -e "$RUN_ID"
}

kill_recorded() {
  local signal=$1 pid
  while read -r pid; do
    if is_ours "$pid"; then kill "-${signal}" "$pid" 2>/dev/null || true; fi
  done <"${WORK}/pids"
}

any_recorded_alive() {
  local pid
  while read -r pid; do
    if is_ours "$pid"; then return 0; fi
  done <"${WORK}/pids"
  return 1
}

# The newest agent log tells why a run failed; the temp dir goes next.
show_last_log() {
  local last
  last=$(find "$WORK" -maxdepth 1 -name 'agent-*.log' -printf '%T@ %p\n' 2>/dev/null \
    | sort -n | tail -n 1 | cut -d' ' -f2-)
  [[ -n "$last" ]] || return 0
  log "last lines of ${last##*/}:"
  tail -n 5 "$last" >&2
}

cleanup() {
  local rc=$? i ids
  trap - EXIT INT TERM
  if [[ -n "$CHILD" ]] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  if [[ -n "$WORK" && -f "${WORK}/pids" ]]; then
    kill_recorded TERM
    for ((i = 0; i < 50; i++)); do any_recorded_alive || break; sleep 0.1; done
    kill_recorded KILL
  fi
  if [[ -n "$RUN_ID" ]]; then
    ids=$(docker ps -aq --filter "label=${LABEL_KEY}=${RUN_ID}" 2>/dev/null || true)
    if [[ -n "$ids" ]]; then
      # shellcheck disable=SC2086 # one id per word
      docker rm -f $ids >/dev/null 2>&1 || log "could not remove containers: ${ids//$'\n'/ }"
    fi
  fi
  if ((rc != 0)) && [[ -n "$WORK" ]]; then show_last_log; fi
  [[ -z "$WORK" ]] || rm -rf "$WORK"
  exit "$rc"
}

main() {
  parse_args "$@"
  preflight
  cd "$ROOT"

  RUN_ID="bench-$(date +%s)-$$"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  WORK=$(mktemp -d /tmp/flotilla-bench.XXXXXX)
  : >"${WORK}/pids"

  local args=(
    --work-dir "$WORK" --run-id "$RUN_ID" --pid-file "${WORK}/pids"
    --manifest "$MANIFEST" --address "$ADDRESS" --label-key "$LABEL_KEY"
    --rounds "$ROUNDS" --budget-s "$BUDGET"
  )
  [[ -z "$BIN" ]] || args+=(--bin "$BIN")

  # timeout gives the measuring a hard ceiling; the budget inside is the
  # soft one, checked between rounds, so the ceiling leaves it some slack.
  timeout -k 5 "$((BUDGET + 60))" node "${HERE}/apply-to-ready.js" "${args[@]}" &
  CHILD=$!
  wait "$CHILD"
}

main "$@"
