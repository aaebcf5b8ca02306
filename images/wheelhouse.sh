#!/usr/bin/env bash
# Wheels resolved on the host, for image builds (wheelhouse/ is bind-mounted into the pip steps).
#   images/wheelhouse.sh torch        copy the CPU torch wheel from pip's find-links dirs, if one is there
#   images/wheelhouse.sh all [tf]     every wheel the CPU image needs (`make wheelhouse`): then the
#                                     build needs no network at all (PIP_OFFLINE=1)
#   images/wheelhouse.sh check cpu    exit 0 when wheelhouse/ is complete for the current lock files
# Host pip (with its own index, proxy and CA settings) does the downloading; the host Python
# must be 3.11 on x86_64 like the image, because sdists (gym) are built into wheels here.
set -euo pipefail
cd "$(dirname "$0")/.."
WH=wheelhouse
TORCH=2.13.0+cpu
PIP=${PIP:-python3 -m pip}
mkdir -p "$WH"

lock_digest() {  # what a complete wheelhouse was made for
  cat images/requirements.txt
  [ "${1:-}" = tf ] && cat images/requirements-tf.txt
  echo "torch==$TORCH"
}

find_links_dirs() {
  { echo "${PIP_FIND_LINKS:-}" | tr ' ' '\n'; $PIP config get global.find-links 2>/dev/null | tr ' ' '\n'; } |
    sed 's|^file://||' | while read -r d; do [ -d "$d" ] && echo "$d"; done || true
}

copy_torch() {
  ls "$WH"/torch-"$TORCH"-cp311-*.whl >/dev/null 2>&1 && return 0
  local d f
  for d in $(find_links_dirs); do
    for f in "$d"/torch-"$TORCH"-cp311-cp311-*x86_64.whl; do
      [ -f "$f" ] || continue
      echo "wheelhouse: torch $TORCH from $d"
      ln -f "$f" "$WH/" 2>/dev/null || cp "$f" "$WH/"
      return 0
    done
  done
  return 0  # none here: the Dockerfile fetches it from the PyTorch CPU index
}

case "${1:-}" in
  torch)
    copy_torch ;;
  all)
    python3 -c 'import platform, sys; sys.exit(sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64")' || {
      echo "wheelhouse: needs Python 3.11 on x86_64 (the image's ABI); found $(python3 -V)" >&2; exit 1; }
    copy_torch
    if ! ls "$WH"/torch-"$TORCH"-*.whl >/dev/null 2>&1; then
      $PIP download --no-deps --only-binary=:all: --dest "$WH" \
        --index-url https://download.pytorch.org/whl/cpu "torch==$TORCH"
    fi
    reqs=(-r images/requirements.txt)
    [ "${2:-}" = tf ] && reqs+=(-r images/requirements-tf.txt)
    # --no-deps: the lock files are complete; sdists (gym) are built into wheels here.
    $PIP wheel --no-deps --wheel-dir "$WH" "${reqs[@]}"
    lock_digest "${2:-}" | sha256sum | cut -d' ' -f1 > "$WH/.complete"
    echo "wheelhouse: complete ($(find "$WH" -name '*.whl' | wc -l) wheels); image builds now run offline" ;;
  check)
    [ "${2:-cpu}" = cpu ] || exit 1   # GPU torch (CUDA, several GB) is never put in the wheelhouse
    [ -f "$WH/.complete" ] && [ "$(lock_digest "${FRAMEWORK:-}" | sha256sum | cut -d' ' -f1)" = "$(cat "$WH/.complete")" ] ;;
  *)
    echo "usage: $0 torch | all [tf] | check cpu|gpu" >&2; exit 2 ;;
esac
