#!/usr/bin/env bash
# A minimal Debian trixie image for the Apptainer test cluster (tests/apptainer_cluster.py):
#   debootstrap --variant=minbase trixie (+ CA certificates) -> docker import NAME:TAG.
# No Python: the compute nodes of the cluster carry Slurm and Apptainer only. Built once and
# reused by tag. The Debian mirror is the one this machine's apt sources name (read by
# images/base-image.sh --print-mirror); no host name is written into the repo.
# Usage: tests/infra/apptainer/trixie-base.sh [NAME:TAG]   (default lt-apptainer-base:trixie)
# Env: DOCKER (client), MIRROR (override the mirror).
set -euo pipefail
TAG=${1:-lt-apptainer-base:trixie}
DOCKER=${DOCKER:-docker}
HERE=$(cd "$(dirname "$0")" && pwd)
MIRROR=${MIRROR:-$("$HERE/../../../images/base-image.sh" --print-mirror)}
command -v debootstrap >/dev/null || { echo "trixie-base: debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "trixie-base: debootstrap needs root" >&2; exit 1; }
ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/lt-trixie-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT
echo "trixie-base: debootstrap trixie from the machine's apt mirror into $ROOTFS"
debootstrap --variant=minbase --include=ca-certificates trixie "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
  || { tail -n 30 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS"/var/log/*.log "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/*
tar -C "$ROOTFS" --numeric-owner -c . |
  "$DOCKER" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase trixie (+ ca-certificates)" - "$TAG" >/dev/null
"$DOCKER" image inspect --format 'trixie-base: {{.RepoTags}} {{.Size}} bytes' "$TAG"
