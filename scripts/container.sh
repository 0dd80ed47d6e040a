#!/usr/bin/env bash
# A container engine for the image test (runtime/tests/container.rs): podman with runc from
# Debian, and the image deploy/Containerfile starts FROM (debian:bookworm-slim) made locally
# with debootstrap from Debian's packages, since no container registry is reachable here.
#
# Usage: scripts/container.sh up     install what is missing, make the base image once
#        scripts/container.sh env    export CONTAINERS_CONF (podman's settings for this machine)
set -euo pipefail
D="${STIR_SERVERS_DIR:-/var/tmp/stir-servers}/container"
CONF="$D/containers.conf"
BASE=docker.io/library/debian:bookworm-slim
log() { echo "[container] $*" >&2; }

up() {
  mkdir -p "$D"
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    log "installing podman, runc and debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman runc debootstrap uidmap >/dev/null
  fi
  # A sandboxed machine may refuse the rlimits and cgroup controllers podman's defaults ask
  # for: no default ulimits, runc rather than crun.
  cat >"$CONF" <<CONF
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$CONF"
  if ! podman image exists "$BASE"; then
    log "making $BASE with debootstrap (Debian bookworm, minbase)"
    local root="$D/rootfs"
    rm -rf "$root"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$D/debootstrap.log" 2>&1 \
      || { tail -20 "$D/debootstrap.log" >&2; exit 1; }
    tar -C "$root" -c . | podman import - "$BASE" >/dev/null
    rm -rf "$root"
  fi
  log "podman $(podman --version | awk '{print $3}') ready, base image $BASE"
}

case "${1:-}" in
  up) up ;;
  env) echo "export CONTAINERS_CONF=$CONF" ;;
  *) echo "usage: $0 up|env" >&2; exit 2 ;;
esac
