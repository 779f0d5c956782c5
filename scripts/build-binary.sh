#!/usr/bin/env bash
# Builds dist/flotilla: one executable that runs without Node or
# node_modules on the target machine. esbuild bundles the program into one
# CommonJS file, and Node 20's single-executable-application support injects
# it, with better-sqlite3's addon as an asset, into a copy of this node.
# Works offline: everything comes from node_modules.
#
# FLOTILLA_ENTRY overrides the entry file (default src/main.ts).
set -euo pipefail

readonly ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ENTRY=${FLOTILLA_ENTRY:-${ROOT}/src/main.ts}
readonly WORK="${ROOT}/build/sea"
readonly OUT="${ROOT}/dist/flotilla"
readonly ADDON="${ROOT}/node_modules/better-sqlite3/build/Release/better_sqlite3.node"
readonly FUSE=NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2

log() { printf 'build-binary: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Prepended to the bundle. A SEA's own require loads built-in modules only.
# better-sqlite3 loads an addon given by path through __non_webpack_require__
# when that exists, so that one loads from disk. Every other require of a
# non-built-in is an optional part that its caller probes inside try/catch
# (ssh2's native code, debug's supports-color, undici's node:sqlite); the
# SEA require would fail those too, but with a warning on every start, so
# they fail here with the codes plain Node gives, which callers test for.
read -r -d '' BANNER <<'JS' || true
const __non_webpack_require__ =
  require("node:module").createRequire(process.execPath);
require = ((seaRequire, isBuiltin) => (id) => {
  if (isBuiltin(id)) return seaRequire(id);
  const err = new Error(`Cannot find module '${id}' in the single executable`);
  err.code = id.startsWith("node:")
    ? "ERR_UNKNOWN_BUILTIN_MODULE"
    : "MODULE_NOT_FOUND";
  throw err;
})(require, require("node:module").isBuiltin);
JS
readonly BANNER

# ssh2 (pulled in by dockerode) has optional native parts that cannot be
# bundled. It requires them inside try/catch and falls back to JavaScript,
# so left external they fail softly at run time.
bundle() {
  log "bundling ${ENTRY#"${ROOT}/"}"
  "${ROOT}/node_modules/.bin/esbuild" "${ENTRY}" \
    --bundle --platform=node --target=node20 --format=cjs \
    --external:cpu-features --external:'*.node' \
    --banner:js="${BANNER}" \
    --log-level=warning \
    --outfile="${WORK}/flotilla.js"
}

write_sea_config() {
  cat >"${WORK}/sea-config.json" <<EOF
{
  "main": "${WORK}/flotilla.js",
  "output": "${WORK}/sea-prep.blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": true,
  "assets": { "better_sqlite3.node": "${ADDON}" }
}
EOF
}

# postject's ELF library warns once for every note section it adds a name
# for ("Can't find string offset"); the injection is fine, the noise hides
# real messages.
without_note_warnings() {
  local messages status=0
  messages=$("$@" 2>&1) || status=$?
  printf '%s\n' "$messages" | grep -v "Can't find string offset" >&2 || true
  return "$status"
}

# Copies this node, drops its symbols and injects the blob. The result
# replaces dist/flotilla only when complete; running copies keep the old.
make_executable() {
  local node temp="${WORK}/flotilla"
  node=$(node -p process.execPath)
  rm -f "${temp}"
  cp "${node}" "${temp}"
  chmod u+w "${temp}"
  if command -v strip >/dev/null; then strip "${temp}"; fi

  local extra=()
  # macOS refuses to run a signed binary whose contents changed; Linux
  # binaries carry no signature.
  if [[ "$(uname -s)" == Darwin ]]; then
    codesign --remove-signature "${temp}"
    extra=(--macho-segment-name NODE_SEA)
  fi
  (cd "${ROOT}" && without_note_warnings npx --no -- postject "${temp}" \
    NODE_SEA_BLOB "${WORK}/sea-prep.blob" --sentinel-fuse "${FUSE}" "${extra[@]}")
  if [[ "$(uname -s)" == Darwin ]]; then codesign --sign - "${temp}"; fi

  mkdir -p "$(dirname "${OUT}")"
  mv -f "${temp}" "${OUT}"
}

main() {
  [[ -f "${ENTRY}" ]] || die "entry ${ENTRY} not found"
  [[ -f "${ADDON}" ]] || die "${ADDON} missing; run npm ci"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [[ "$major" == 20 ]] || die "expected Node 20, got $(node --version)"

  mkdir -p "${WORK}"
  bundle
  write_sea_config
  node --experimental-sea-config "${WORK}/sea-config.json"
  make_executable

  local bytes
  bytes=$(wc -c <"${OUT}")
  log "built ${OUT#"${ROOT}/"}: $((bytes / 1048576)) MiB (${bytes} bytes)"
}

main "$@"
