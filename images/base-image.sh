#!/usr/bin/env bash
# Make a local Debian bookworm base image for sites where no registry can be reached:
#   debootstrap (minbase + python3, venv, CA certificates, tini) -> docker import.
# The Debian mirror is read from this machine's own apt sources at run time, so no
# host name is written into the repo.
# Usage: images/base-image.sh [NAME:TAG]      (default launcher-base:bookworm)
#        images/base-image.sh --print-mirror  (only say which mirror would be used)
# Env: DOCKER (client), MIRROR (override the mirror), SUITE (default bookworm),
#      APT_ETC (where the apt sources are read, default /etc/apt).
set -euo pipefail
TAG=${1:-launcher-base:bookworm}
SUITE=${SUITE:-bookworm}
APT_ETC=${APT_ETC:-/etc/apt}
DOCKER=${DOCKER:-docker}
# bookworm's python3 is 3.11: the same ABI (cp311) as python:3.11-slim and the torch wheels.
PACKAGES=python3,python3-venv,ca-certificates,tini

mirror_from_apt_sources() {
  # deb822 files (*.sources): the first URIs line of a stanza whose Suites name $SUITE.
  local f
  for f in "$APT_ETC"/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; done=1; exit } uri=""; ok=0; next }
      tolower($1) == "uris:"   { uri=$2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok=1 }
      END { if (!done && uri != "" && ok) print uri }' "$f"
  done
}

mirror_list_files() {
  # one-line format (sources.list, *.list): "deb [opts] URI SUITE COMPONENTS..."
  cat "$APT_ETC"/sources.list "$APT_ETC"/sources.list.d/*.list 2>/dev/null || true
}

mirror_from_one_line_sources() {
  mirror_list_files |
    awk -v suite="$SUITE" '$1 == "deb" {
      n = 2; if ($2 ~ /^\[/) { while (n <= NF && $n !~ /\]$/) n++; n++ }
      if ($(n + 1) == suite) { print $n; exit } }'
}

if [ -z "${MIRROR:-}" ]; then
  MIRROR=$({ mirror_from_apt_sources; mirror_from_one_line_sources; } | head -n1 || true)
fi
if [ -z "$MIRROR" ]; then
  echo "base-image: no apt source for '$SUITE' found in $APT_ETC/sources.list{,.d/}; set MIRROR=<debian mirror URL>" >&2
  exit 1
fi
if [ "$TAG" = --print-mirror ]; then
  echo "$MIRROR"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base-image: debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "base-image: debootstrap needs root" >&2; exit 1; }

ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/launcher-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT
echo "base-image: debootstrap $SUITE from the machine's apt mirror into $ROOTFS"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR"
# Keep the image small and reproducible-ish: no apt lists, caches or logs.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS"/var/log/*.log "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/*
echo "base-image: docker import -> $TAG"
tar -C "$ROOTFS" --numeric-owner -c . |
  "$DOCKER" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $SUITE (+ $PACKAGES)" - "$TAG"
"$DOCKER" image inspect --format 'base-image: {{.RepoTags}} {{.Size}} bytes' "$TAG"
