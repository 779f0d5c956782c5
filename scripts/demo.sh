#!/usr/bin/env bash
# Starts a local Flotilla agent with a data directory of its own, applies the
# AwesomeProduct example and shows it answering. Prepares the machine first
# (Docker, the local registry, the example images, the build), so it works
# on a fresh machine. Run as root. Stop the agent with the command it prints.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly DATA_DIR=${FLOTILLA_DEMO_DIR:-$PWD/.demo}
readonly ADDRESS=${FLOTILLA_DEMO_ADDRESS:-127.0.0.1}
readonly FLOTILLA=(node build/src/main.js --data-dir "$DATA_DIR")

bash scripts/setup-machine.sh
[[ -d node_modules ]] || npm ci
npm run build
bash scripts/build-test-images.sh

mkdir -p "$DATA_DIR"
if ! "${FLOTILLA[@]}" version >/dev/null 2>&1; then
  nohup node build/src/main.js agent --data-dir "$DATA_DIR" --name demo \
    --listen "$ADDRESS:7946" >"$DATA_DIR/agent.log" 2>&1 &
  echo $! >"$DATA_DIR/agent.pid"
  for _ in $(seq 50); do "${FLOTILLA[@]}" version >/dev/null 2>&1 && break; sleep 0.2; done
fi

"${FLOTILLA[@]}" apply -f examples/awesome-product.yaml
echo "waiting for 4 ready pods..."
for _ in $(seq 120); do
  ready=$("${FLOTILLA[@]}" get deployment awesome-product -o json |
    node -e 'const d=JSON.parse(require("fs").readFileSync(0));
      const o=d.items?d.items[0]:d; console.log(o.status.readyReplicas||0)')
  [[ $ready == 4 ]] && break
  sleep 0.5
done
"${FLOTILLA[@]}" get pods -o wide
"${FLOTILLA[@]}" get services
node_port=$("${FLOTILLA[@]}" get service awesome-product -o json |
  node -e 'const d=JSON.parse(require("fs").readFileSync(0));
    const o=d.items?d.items[0]:d; console.log(o.spec.ports[0].nodePort)')
echo "--- port 80 (LoadBalancer) and NodePort $node_port:"
for _ in 1 2 3 4; do curl -s "http://$ADDRESS:80/"; done
for _ in 1 2 3 4; do curl -s "http://$ADDRESS:$node_port/"; done
echo "--- the agent runs as pid $(cat "$DATA_DIR/agent.pid" 2>/dev/null || echo '?')," \
  "logs in $DATA_DIR/agent.log; stop it with: kill \$(cat $DATA_DIR/agent.pid)"
echo "    (its containers keep running; 'node build/src/main.js --data-dir $DATA_DIR delete -f examples/awesome-product.yaml' removes them)"
