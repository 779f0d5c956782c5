#!/bin/sh
# Entry point of the awsprdct test image: the same page on ports 80 and
# 3000, naming the image version and the container, so that tests can tell
# which replica and which revision answered.
set -eu

mkdir -p /www
echo "awsprdct version=${AWSPRDCT_VERSION:-unknown} host=$(hostname)" \
  >/www/index.html

httpd -f -p 80 -h /www &
p80=$!
httpd -f -p 3000 -h /www &
p3000=$!

# As PID 1 the shell would ignore SIGTERM without a handler, and docker stop
# would wait out its grace period before killing us.
stop() {
  kill "$p80" "$p3000" 2>/dev/null || true
  wait
  exit 0
}
trap stop TERM INT

echo "awsprdct ${AWSPRDCT_VERSION:-unknown} listening on 80 and 3000"
wait
