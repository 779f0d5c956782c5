#!/usr/bin/env bash
# Measures what the balancer costs, all in one run on this machine, with
# the same backend (nginx serving a 1 KiB page from memory) and the same
# client (wrk, keep-alive connections) for every path:
#
#   direct            wrk -> backend
#   nginx             wrk -> nginx reverse proxy (upstream keepalive) -> backend
#   flotilla-http     wrk -> Flotilla balancer, HTTP mode -> backend
#   haproxy-tcp       wrk -> HAProxy, TCP mode -> backend
#   flotilla-tcp      wrk -> Flotilla balancer, TCP mode -> backend
#
#   scripts/bench/balancer.sh [--duration SECONDS] [--connections N]
#
# Every proxy runs with one worker pinned to the last CPU; the backend and
# wrk share the others. Prints requests/s and p50/p99 latency per path, and
# ratios against direct and against nginx. nginx and HAProxy run as plain
# child processes with config files in a temp dir, on 127.0.0.1 ports; the
# system services are never touched. Needs wrk (apt-get install -y wrk),
# nginx, haproxy and a build (npx tsc). Bounded: about 6 x (DURATION + 3) s.
set -euo pipefail

readonly HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT=$(cd "${HERE}/../.." && pwd)

DURATION=10
CONNECTIONS=50
WORK=""
PIDS=()

log() { printf 'balancer-bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

parse_args() {
  while (($#)); do
    case "$1" in
      --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
      --connections) CONNECTIONS=${2:?--connections needs a number}; shift 2 ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n "$WORK" ]] && rm -rf "$WORK"
}

check_tools() {
  local tool
  for tool in wrk nginx haproxy node taskset; do
    command -v "$tool" >/dev/null || die "$tool is missing"
  done
  [[ -f "${ROOT}/build/src/lb/balancer.js" ]] || die "no build; run npx tsc -p ${ROOT}"
}

# CPU sets: proxies get the last CPU alone, backend and client the rest.
cpu_sets() {
  local last=$(($(nproc) - 1))
  if ((last == 0)); then
    PROXY_CPUS=0 CLIENT_CPUS=0
  else
    PROXY_CPUS=$last CLIENT_CPUS="0-$((last - 1))"
  fi
}

# start NAME CPUS COMMAND...: runs COMMAND pinned, remembers its pid.
start() {
  local name=$1 cpus=$2
  shift 2
  taskset -c "$cpus" "$@" >"${WORK}/${name}.log" 2>&1 &
  PIDS+=("$!")
}

wait_port() {
  local port=$1 i
  for ((i = 0; i < 100; i++)); do
    if (echo >"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "nothing listens on ${port}; see ${WORK}"
}

write_nginx_config() {
  local name=$1 body=$2
  mkdir -p "${WORK}/${name}"
  cat >"${WORK}/${name}/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid ${WORK}/${name}/nginx.pid;
error_log ${WORK}/${name}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${WORK}/${name}/body;
  proxy_temp_path ${WORK}/${name}/proxy;
  fastcgi_temp_path ${WORK}/${name}/fastcgi;
  uwsgi_temp_path ${WORK}/${name}/uwsgi;
  scgi_temp_path ${WORK}/${name}/scgi;
  keepalive_requests 1000000;
${body}
}
EOF
}

start_servers() {
  local page
  page=$(head -c 1024 /dev/zero | tr '\0' 'x')
  write_nginx_config backend "
  server {
    listen 127.0.0.1:${BACKEND_PORT};
    location / { default_type text/plain; return 200 '${page}'; }
  }"
  write_nginx_config proxy "
  upstream backend { server 127.0.0.1:${BACKEND_PORT}; keepalive 128; }
  server {
    listen 127.0.0.1:${NGINX_PORT};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }"
  cat >"${WORK}/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:${HAPROXY_PORT}
  default_backend backend
backend backend
  server b1 127.0.0.1:${BACKEND_PORT}
EOF

  start backend "$CLIENT_CPUS" nginx -p "${WORK}/backend" -c "${WORK}/backend/nginx.conf"
  start nginx "$PROXY_CPUS" nginx -p "${WORK}/proxy" -c "${WORK}/proxy/nginx.conf"
  start haproxy "$PROXY_CPUS" haproxy -db -f "${WORK}/haproxy.cfg"
  start flotilla-http "$PROXY_CPUS" \
    node "${HERE}/balancer-proxy.js" http "$FLOTILLA_HTTP_PORT" "$BACKEND_PORT"
  start flotilla-tcp "$PROXY_CPUS" \
    node "${HERE}/balancer-proxy.js" tcp "$FLOTILLA_TCP_PORT" "$BACKEND_PORT"
  local port
  for port in "$BACKEND_PORT" "$NGINX_PORT" "$HAPROXY_PORT" \
    "$FLOTILLA_HTTP_PORT" "$FLOTILLA_TCP_PORT"; do
    wait_port "$port"
  done
}

# to_ms VALUE: wrk's "812.00us", "1.20ms" or "1.01s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n
  }'
}

# measure NAME PORT: a short warm-up, then one wrk run; sets RPS, P50, P99.
measure() {
  local name=$1 port=$2 out
  taskset -c "$CLIENT_CPUS" wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:${port}/" >/dev/null
  out=$(taskset -c "$CLIENT_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    "http://127.0.0.1:${port}/")
  echo "$out" >"${WORK}/${name}.wrk"
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
    log "${name}: $(grep 'Non-2xx\|Socket errors' <<<"$out" | tr -s ' ')"
  fi
  RPS[$name]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  P50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  P99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  log "$(printf '%-14s %10s req/s  p50 %8s ms  p99 %8s ms' \
    "$name" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}")"
}

report() {
  local name
  printf '\n%-14s %10s %9s %9s %9s %9s %9s\n' \
    path 'req/s' 'p50 ms' 'p99 ms' 'rps/dir' 'rps/ngx' 'p99/ngx'
  for name in direct nginx flotilla-http haproxy-tcp flotilla-tcp; do
    printf '%-14s %10.0f %9.3f %9.3f %9.2f %9.2f %9.2f\n' \
      "$name" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}" \
      "$(awk -v a="${RPS[$name]}" -v b="${RPS[direct]}" 'BEGIN { print a / b }')" \
      "$(awk -v a="${RPS[$name]}" -v b="${RPS[nginx]}" 'BEGIN { print a / b }')" \
      "$(awk -v a="${P99[$name]}" -v b="${P99[nginx]}" 'BEGIN { print (b > 0 ? a / b : 0) }')"
  done
  printf '\n%s connections, %s s per path, proxies pinned to CPU %s, client and backend to %s\n' \
    "$CONNECTIONS" "$DURATION" "$PROXY_CPUS" "$CLIENT_CPUS"
}

main() {
  parse_args "$@"
  check_tools
  cpu_sets
  WORK=$(mktemp -d /tmp/flotilla-lb-bench.XXXXXX)
  trap cleanup EXIT

  local base=$((20000 + RANDOM % 9000))
  BACKEND_PORT=$base NGINX_PORT=$((base + 1)) HAPROXY_PORT=$((base + 2))
  FLOTILLA_HTTP_PORT=$((base + 3)) FLOTILLA_TCP_PORT=$((base + 4))
  start_servers

  declare -gA RPS P50 P99
  measure direct "$BACKEND_PORT"
  measure nginx "$NGINX_PORT"
  measure flotilla-http "$FLOTILLA_HTTP_PORT"
  measure haproxy-tcp "$HAPROXY_PORT"
  measure flotilla-tcp "$FLOTILLA_TCP_PORT"
  report
}

main "$@"
