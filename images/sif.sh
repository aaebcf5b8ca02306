#!/usr/bin/env bash
# Build an Apptainer SIF from the local Docker image (`make sif` / `make sif-gpu`):
#   images/sif.sh cpu|gpu [ARCHIVE.tar]   -> launcher-cpu.sif / launcher-gpu.sif
# Env: SIF (output path), APPTAINER (the command), SIF_COMPRESSION (mksquashfs -comp: gzip, the
# default, which every Apptainer and kernel reads; lz4 and zstd build several times faster).
# apptainer/<variant>.def bootstraps from the local Docker daemon (launcher:<variant>): no
# registry. Where no Docker daemon is (a cluster's login node), pass the image saved with
# `docker save launcher:<variant> -o ARCHIVE.tar`: the same definition is used with its
# header switched to `Bootstrap: docker-archive`.
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANT=${1:-cpu}
ARCHIVE=${2:-}
DOCKER=${DOCKER:-docker}
DEF=apptainer/$VARIANT.def
OUT=${SIF:-launcher-$VARIANT.sif}
[ -f "$DEF" ] || { echo "sif: no $DEF (variants: cpu, gpu)" >&2; exit 2; }
APPTAINER=${APPTAINER:-$(command -v apptainer || command -v singularity || true)}
BUILD_ARGS=(--force)
if [ -n "${SIF_COMPRESSION:-}" ]; then BUILD_ARGS+=(--mksquashfs-args "-comp $SIF_COMPRESSION"); fi
if [ -z "$APPTAINER" ]; then
  cat >&2 <<MSG
sif: apptainer is not installed on this machine (neither 'apptainer' nor 'singularity' is on PATH).
  Install it (https://apptainer.org/docs/admin/main/installation.html), or build the SIF where it is:
    $DOCKER save launcher:$VARIANT -o launcher-$VARIANT.tar     # here, then copy the repo and the file
    images/sif.sh $VARIANT launcher-$VARIANT.tar                  # there
MSG
  exit 1
fi
if [ -n "$ARCHIVE" ]; then
  [ -f "$ARCHIVE" ] || { echo "sif: no such archive: $ARCHIVE" >&2; exit 1; }
  tmpdef=$(mktemp --suffix=.def)
  trap 'rm -f "$tmpdef"' EXIT
  sed -e "s|^Bootstrap: docker-daemon\$|Bootstrap: docker-archive|" \
      -e "s|^From: launcher:$VARIANT\$|From: $(realpath "$ARCHIVE")|" "$DEF" > "$tmpdef"
  echo "sif: $APPTAINER build $OUT ($DEF from $ARCHIVE)"
  "$APPTAINER" build "${BUILD_ARGS[@]}" "$OUT" "$tmpdef"
  exit
fi
if ! "$DOCKER" image inspect "launcher:$VARIANT" >/dev/null 2>&1; then
  echo "sif: no local Docker image launcher:$VARIANT: run 'make image$([ "$VARIANT" = gpu ] && echo -gpu)' first" >&2
  exit 1
fi
echo "sif: $APPTAINER build $OUT $DEF"
exec "$APPTAINER" build "${BUILD_ARGS[@]}" "$OUT" "$DEF"
