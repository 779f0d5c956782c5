#!/usr/bin/env bash
# Builds the images the tests run, from busybox-static alone (no base image,
# no network), and pushes them to the local registry on 127.0.0.1:5000 that
# dockerd uses as its mirror, so a pull by the short name works offline.
# An image whose inputs have not changed since the last push is skipped.
set -euo pipefail

readonly REGISTRY=127.0.0.1:5000
readonly BUSYBOX=/bin/busybox
readonly HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly IMAGES_DIR="${HERE}/images"
readonly MANIFEST_TYPES='application/vnd.docker.distribution.manifest.v2+json'

log() { printf 'build-test-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Bump when make_rootfs changes what goes into every image.
readonly LAYOUT_REVISION=1

# image_config APP VERSION: the Dockerfile instructions of an image, one a
# line, for docker import --change.
image_config() {
  local app=$1 version=$2
  echo 'ENV PATH=/bin'
  echo 'ENTRYPOINT ["/bin/sh", "/app/start.sh"]'
  if [[ "$app" == awsprdct ]]; then
    echo "ENV AWSPRDCT_VERSION=${version}"
    echo 'EXPOSE 80 3000'
  fi
}

# Hash of everything that goes into an image; stored as a label so that a
# later run can tell the pushed image is still current without rebuilding.
inputs_hash() {
  local app=$1 version=$2
  {
    cat "${BUSYBOX}" "${IMAGES_DIR}/${app}/start.sh"
    image_config "$app" "$version"
    echo "layout ${LAYOUT_REVISION}"
  } | sha256sum | cut -c1-32
}

# Lays out a root file system with busybox and one symlink per applet.
make_rootfs() {
  local root=$1 app=$2 applet
  mkdir -p "${root}"/{bin,etc,tmp,www,app,proc,sys,dev}
  chmod 1777 "${root}/tmp"
  cp "${BUSYBOX}" "${root}/bin/busybox"
  for applet in $("${BUSYBOX}" --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "${root}/bin/${applet}"
  done
  printf 'root:x:0:0:root:/:/bin/sh\n' >"${root}/etc/passwd"
  printf 'root:x:0:\n' >"${root}/etc/group"
  install -m 755 "${IMAGES_DIR}/${app}/start.sh" "${root}/app/start.sh"
}

registry_digest() {
  local repo=$1 tag=$2
  curl -fsI -m 5 -H "Accept: ${MANIFEST_TYPES}" \
    "http://${REGISTRY}/v2/${repo}/manifests/${tag}" \
    | tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}

local_label() {
  docker image inspect 2>/dev/null \
    -f '{{index .Config.Labels "flotilla.inputs"}}' "$1"
}

# True when the local image carries this hash and the registry serves
# exactly the pushed manifest.
is_current() {
  local repo=$1 tag=$2 hash=$3 remote
  [[ "$(local_label "${REGISTRY}/${repo}:${tag}")" == "$hash" ]] || return 1
  remote=$(registry_digest "$repo" "$tag") || return 1
  [[ -n "$remote" ]] || return 1
  docker image inspect -f '{{join .RepoDigests "\n"}}' \
    "${REGISTRY}/${repo}:${tag}" | grep -qxF "${REGISTRY}/${repo}@${remote}"
}

# build_image REPO TAG APP VERSION: APP names the folder under images/.
build_image() {
  local repo=$1 tag=$2 app=$3 version=$4
  local hash previous
  hash=$(inputs_hash "$app" "$version")
  if is_current "$repo" "$tag" "$hash"; then
    if [[ "$(local_label "${repo}:${tag}")" != "$hash" ]]; then
      verify_pull_through_mirror "$repo" "$tag"
    fi
    log "${repo}:${tag} is current"
    return
  fi

  log "building ${repo}:${tag}"
  previous=$(image_id "${REGISTRY}/${repo}:${tag}")
  import_image "${REGISTRY}/${repo}:${tag}" "$app" "$version" "$hash"
  docker push -q "${REGISTRY}/${repo}:${tag}" >/dev/null
  docker tag "${REGISTRY}/${repo}:${tag}" "${repo}:${tag}"
  verify_pull_through_mirror "$repo" "$tag"
  remove_if_untagged "$previous"
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# import_image NAME APP VERSION HASH: packs the root file system and turns
# it into an image with docker import.
import_image() {
  local name=$1 app=$2 version=$3 hash=$4 work line
  local changes=(--change "LABEL flotilla.inputs=${hash}")
  while IFS= read -r line; do
    changes+=(--change "$line")
  done < <(image_config "$app" "$version")

  work=$(mktemp -d)
  make_rootfs "${work}/root" "$app"
  tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 \
    -C "${work}/root" -cf - . \
    | docker import "${changes[@]}" - "$name" >/dev/null
  rm -rf "${work}"
}

# The superseded build has lost its tags but is still referenced by digest
# under both names, which plain `image rm` refuses; a running container
# still keeps it.
remove_if_untagged() {
  local id=$1 tags
  [[ -n "$id" ]] || return 0
  tags=$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null) \
    || return 0
  if [[ "$tags" == 0 ]]; then
    docker image rm -f "$id" >/dev/null 2>&1 || true
  fi
}

# Drops the short name and pulls it again: dockerd asks its mirror first, so
# this fails (or fetches a foreign image) unless the mirror serves our push.
verify_pull_through_mirror() {
  local repo=$1 tag=$2 want got
  want=$(docker image inspect -f '{{.Id}}' "${REGISTRY}/${repo}:${tag}")
  docker image rm "${repo}:${tag}" >/dev/null 2>&1 || true
  docker pull -q "${repo}:${tag}" >/dev/null \
    || die "pulling ${repo}:${tag} through the mirror failed"
  got=$(docker image inspect -f '{{.Id}}' "${repo}:${tag}")
  [[ "$got" == "$want" ]] \
    || die "${repo}:${tag} pulled ${got}, expected ${want}"
  log "pushed ${repo}:${tag}; pull by short name through the mirror works"
}

main() {
  local setup='run scripts/setup-machine.sh'
  [[ -x "${BUSYBOX}" ]] || die "${BUSYBOX} missing; ${setup}"
  docker info >/dev/null 2>&1 || die "docker does not answer; ${setup}"
  curl -fs -m 5 -o /dev/null "http://${REGISTRY}/v2/" \
    || die "no registry on ${REGISTRY}; ${setup}"

  build_image awesomeproduct/awsprdct amazing awsprdct amazing
  build_image awesomeproduct/awsprdct v2 awsprdct v2
  build_image flotilla-test/crasher 1 crasher 1
  build_image flotilla-test/slowstream 1 slowstream 1
}

main "$@"
