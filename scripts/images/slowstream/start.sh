#!/bin/sh
# Entry point of the slowstream test image: on port 8080, /cgi-bin/stream?N
# sends N blocks of 64 KiB, one a second, so that a download lasts N
# seconds. Block i is 4096 lines of the 15-digit number i, which lets a test
# check that nothing was lost, repeated or reordered. / names the revision.
set -eu

mkdir -p /www/cgi-bin
echo "slowstream revision=${REVISION:-unknown} host=$(hostname)" \
  >/www/index.html
cat >/www/cgi-bin/stream <<'CGI'
#!/bin/sh
blocks=${QUERY_STRING:-30}
printf 'Content-Type: application/octet-stream\r\n'
printf 'Content-Length: %d\r\n\r\n' $((blocks * 65536))
i=0
while [ "$i" -lt "$blocks" ]; do
  yes "$(printf '%015d' "$i")" | head -c 65536
  i=$((i + 1))
  [ "$i" -lt "$blocks" ] && sleep 1
done
exit 0
CGI
chmod 755 /www/cgi-bin/stream

httpd -f -p 8080 -h /www &
pid=$!

# As PID 1 the shell would ignore SIGTERM without a handler.
stop() {
  kill "$pid" 2>/dev/null || true
  wait
  exit 0
}
trap stop TERM INT

echo "slowstream ${REVISION:-unknown} listening on 8080"
wait
