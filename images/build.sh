#!/usr/bin/env bash
# Build an image with BuildKit, choosing what the site offers (this is what `make image` runs):
#   images/build.sh cpu|gpu
#   images/build.sh extra cpu|gpu   launcher:<variant> plus the packages of $EXTRA_REQUIREMENTS
#                                   (Dockerfile.extra), tagged launcher:<variant>-extra or $TAG
# - base: $BASE_IMAGE if set; else the local launcher-base:bookworm when it exists
#   (`make base-image`); else python:3.11-slim when it can be pulled; else an error that
#   says to run `make base-image`.
# - CA bundle: $CA_BUNDLE, default $PIP_CERT or pip's `cert` setting (the host pip's bundle), passed as the
#   BuildKit secret `ca` (used by pip during the build only, not stored in the image).
# - wheels: the CPU torch wheel is copied into wheelhouse/ from pip's find-links
#   directories when one lies there; if `make wheelhouse` resolved every wheel for the
#   current lock files, the build runs with PIP_OFFLINE=1 (no network).
# - extra: FROM launcher:<variant>[-tf] ($FROM_IMAGE to choose another). The requirements file
#   goes to wheelhouse/extra/; where the host's pip resolves all its wheels there first (host
#   Python 3.11 on x86_64, like the image; the image's installed versions as constraints), the
#   build runs with PIP_OFFLINE=1.
# Env: DOCKER, TAG, FRAMEWORK (torch|tf), BASE_IMAGE, CA_BUNDLE, PIP_OFFLINE, PROGRESS, PIP,
# EXTRA_REQUIREMENTS, FROM_IMAGE, and
# BUILD_ARGS: more `docker build` options, split on spaces (e.g. BUILD_ARGS="--network none").
set -euo pipefail
if [ -n "${EXTRA_REQUIREMENTS:-}" ]; then  # a path from where the caller stands
  EXTRA_REQUIREMENTS=$(realpath -m -- "$EXTRA_REQUIREMENTS")
fi
cd "$(dirname "$0")/.."
VARIANT=${1:-cpu}
DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
FRAMEWORK=${FRAMEWORK:-torch}
LOCAL_BASE=${LOCAL_BASE:-launcher-base:bookworm}
PUBLIC_BASE=python:3.11-slim
PIP=${PIP:-python3 -m pip}
suffix=; [ "$FRAMEWORK" = tf ] && suffix=-tf
export DOCKER_BUILDKIT=1

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

ca_args=()
if [ -z "${CA_BUNDLE:-}" ]; then
  CA_BUNDLE=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
fi
if [ -n "$CA_BUNDLE" ] && [ -s "$CA_BUNDLE" ]; then
  ca_args=(--secret "id=ca,src=$CA_BUNDLE")
fi
read -r -a build_args <<< "${BUILD_ARGS:-}"

# Wheels of $EXTRA_REQUIREMENTS resolved by the host's pip into wheelhouse/extra/, with the
# versions installed in image $1 as constraints. Succeeds only when every wheel is there.
prefetch_extra() {
  python3 -c 'import platform, sys; sys.exit(sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64")' ||
    return 1
  "$DOCKER" run --rm --entrypoint /opt/venv/bin/pip "$1" list --format=freeze > wheelhouse/extra/.image-pins.txt ||
    return 1
  $PIP wheel --quiet --wheel-dir wheelhouse/extra -c wheelhouse/extra/.image-pins.txt \
    -r wheelhouse/extra/requirements.txt
}

build_extra() {  # $1: cpu|gpu, the image to build on
  local from=${FROM_IMAGE:-launcher:$1$suffix} offline=${PIP_OFFLINE:-}
  local tag=${TAG:-$from-extra}
  if [ -z "${EXTRA_REQUIREMENTS:-}" ] || [ ! -f "$EXTRA_REQUIREMENTS" ]; then
    echo "image: EXTRA_REQUIREMENTS must name a requirements file (got '${EXTRA_REQUIREMENTS:-}')" >&2
    exit 2
  fi
  if ! have_image "$from"; then
    echo "image: no local image $from to add packages to: run 'make image$([ "$1" = gpu ] && echo -gpu)' first" >&2
    exit 1
  fi
  rm -rf wheelhouse/extra
  mkdir -p wheelhouse/extra
  cp "$EXTRA_REQUIREMENTS" wheelhouse/extra/requirements.txt
  if [ -z "$offline" ]; then
    offline=0
    if prefetch_extra "$from"; then
      offline=1
    else
      echo "image: the host's pip could not resolve every wheel of $EXTRA_REQUIREMENTS; the build fetches them"
    fi
  fi
  echo "image: building $tag from $from with $EXTRA_REQUIREMENTS, PIP_OFFLINE=$offline"
  exec "$DOCKER" build --progress="${PROGRESS:-plain}" "${ca_args[@]}" "${build_args[@]}" \
    --build-arg FROM_IMAGE="$from" --build-arg PIP_OFFLINE="$offline" -f Dockerfile.extra -t "$tag" .
}

if [ "$VARIANT" = extra ]; then
  build_extra "${2:-cpu}"
fi
TAG=${TAG:-launcher:$VARIANT$suffix}

if [ -z "${BASE_IMAGE:-}" ]; then
  if have_image "$LOCAL_BASE"; then
    BASE_IMAGE=$LOCAL_BASE
  elif have_image "$PUBLIC_BASE" || timeout 120 "$DOCKER" pull -q "$PUBLIC_BASE" >/dev/null 2>&1; then
    BASE_IMAGE=$PUBLIC_BASE
  else
    echo "image: cannot pull $PUBLIC_BASE (no registry?) and $LOCAL_BASE does not exist." >&2
    echo "image: run 'make base-image' first (debootstrap, needs root), or set BASE_IMAGE=..." >&2
    exit 1
  fi
fi

args=(--progress="${PROGRESS:-plain}" --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg FRAMEWORK="$FRAMEWORK")
args+=("${ca_args[@]}")

mkdir -p wheelhouse
if [ "$VARIANT" = cpu ]; then
  images/wheelhouse.sh torch
  if ls wheelhouse/torch-*+cpu-*.whl >/dev/null 2>&1; then
    args+=(--build-arg TORCH_INDEX_URL=)   # the wheel is in the context: no extra index to ask
  fi
fi
if [ -z "${PIP_OFFLINE:-}" ]; then
  PIP_OFFLINE=0
  images/wheelhouse.sh check "$VARIANT" && PIP_OFFLINE=1
fi
args+=(--build-arg PIP_OFFLINE="$PIP_OFFLINE")
args+=("${build_args[@]}")

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- launcher pyproject.toml Dockerfile Dockerfile.gpu images 2>/dev/null)" ]; then
  revision=$revision-dirty
fi
source_url=$(git remote get-url origin 2>/dev/null || echo unknown)
args+=(--build-arg VERSION="$version" --build-arg REVISION="$revision"
       --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" --build-arg SOURCE="$source_url")

echo "image: building $TAG ($VARIANT, $FRAMEWORK) from $BASE_IMAGE, PIP_OFFLINE=$PIP_OFFLINE"
case "$VARIANT" in
  cpu)
    exec "$DOCKER" build "${args[@]}" -t "$TAG" . ;;
  gpu)
    # Dockerfile.gpu builds on the CPU Dockerfile's `deps` stage (same base, venv, pins).
    deps_tag=launcher:deps$suffix
    "$DOCKER" build "${args[@]}" --target deps -t "$deps_tag" .
    exec "$DOCKER" build "${args[@]}" --build-arg DEPS_IMAGE="$deps_tag" -f Dockerfile.gpu -t "$TAG" . ;;
  *)
    echo "image: unknown variant '$VARIANT' (cpu, gpu or extra)" >&2; exit 2 ;;
esac
