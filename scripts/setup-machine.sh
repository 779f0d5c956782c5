#!/usr/bin/env bash
# Prepares a Debian machine for Flotilla's CI: Docker with a local registry
# mirror on 127.0.0.1:5000, busybox for the test images, and the load
# balancers the benchmarks compare against. Run as root. Every step checks
# first, so running it again on a prepared machine changes nothing.
set -euo pipefail

readonly REGISTRY_ADDR=127.0.0.1:5000
readonly REGISTRY_URL="http://${REGISTRY_ADDR}"
readonly CONFIG_DIR=/etc/flotilla-ci
readonly REGISTRY_CONFIG="${CONFIG_DIR}/registry.yml"
readonly REGISTRY_DATA=/var/lib/flotilla-ci/registry
readonly DOCKERD_LOG=/var/log/dockerd.log
readonly REGISTRY_LOG=/var/log/flotilla-registry.log
readonly PACKAGES=(
  docker.io docker-registry busybox-static iptables nginx haproxy curl
)
readonly WAIT_SECONDS=60

log() { printf 'setup-machine: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Polls a command once a second until it succeeds or WAIT_SECONDS pass.
wait_for() {
  local what=$1; shift
  local i
  for ((i = 0; i < WAIT_SECONDS; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "${what} did not come up within ${WAIT_SECONDS}s"
}

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == 'install ok installed' ]]
}

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    log "packages already installed"
    return
  fi

  log "installing ${missing[*]}"
  # nginx and haproxy must not start on install: they would hold port 80
  # and the benchmarks start them with their own configs. A policy-rc.d
  # that answers 101 tells the maintainer scripts not to start services.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
}

docker_answers() { docker info >/dev/null 2>&1; }

start_dockerd() {
  if docker_answers; then
    log "dockerd already running"
    warn_if_no_mirror
    return
  fi
  if pgrep -x dockerd >/dev/null; then
    log "dockerd is starting; waiting for it"
  else
    log "starting dockerd (log in ${DOCKERD_LOG})"
    setsid nohup dockerd \
      --registry-mirror="${REGISTRY_URL}" \
      --insecure-registry="${REGISTRY_ADDR}" \
      >>"${DOCKERD_LOG}" 2>&1 </dev/null &
  fi
  wait_for dockerd docker_answers
  warn_if_no_mirror
}

# A dockerd someone else started is left alone, but without the mirror the
# test images would be pulled from the Internet, so say so loudly.
warn_if_no_mirror() {
  local mirrors
  mirrors=$(docker info --format '{{json .RegistryConfig.Mirrors}}')
  if [[ "$mirrors" != *"${REGISTRY_ADDR}"* ]]; then
    log "warning: dockerd runs without --registry-mirror=${REGISTRY_URL}"
  fi
}

# dockerd's FORWARD rules drop traffic between network namespaces that are
# not its own bridges; DOCKER-USER is the chain it leaves to us.
allow_forwarding() {
  if iptables -C DOCKER-USER -j ACCEPT 2>/dev/null; then
    log "DOCKER-USER accept rule present"
    return
  fi
  iptables -I DOCKER-USER -j ACCEPT
  log "added DOCKER-USER accept rule"
}

write_registry_config() {
  mkdir -p "${CONFIG_DIR}" "${REGISTRY_DATA}"
  # Debian's default config asks for htpasswd auth; CI pushes anonymously.
  cat >"${REGISTRY_CONFIG}.tmp" <<EOF
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: ${REGISTRY_DATA}
  delete:
    enabled: true
http:
  addr: ${REGISTRY_ADDR}
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  mv "${REGISTRY_CONFIG}.tmp" "${REGISTRY_CONFIG}"
}

registry_answers() { curl -fs -m 2 -o /dev/null "${REGISTRY_URL}/v2/"; }

start_registry() {
  if registry_answers; then
    log "registry already answers on ${REGISTRY_URL}"
    return
  fi
  local status
  status=$(curl -s -m 2 -o /dev/null -w '%{http_code}' \
    "${REGISTRY_URL}/v2/" || true)
  if [[ "$status" != 000 ]]; then
    die "${REGISTRY_ADDR} answers ${status}, not 200" \
      "(Debian's registry service with auth?); stop it first"
  fi

  write_registry_config
  log "starting registry (log in ${REGISTRY_LOG})"
  setsid nohup /usr/bin/docker-registry serve "${REGISTRY_CONFIG}" \
    >>"${REGISTRY_LOG}" 2>&1 </dev/null &
  wait_for registry registry_answers
}

main() {
  [[ $(id -u) == 0 ]] || die "run as root"
  install_packages
  start_dockerd
  allow_forwarding
  start_registry
  log "machine ready"
}

main "$@"
