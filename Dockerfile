# launcher: the RLlib trainer as a container image (CPU build of torch).
#
#   make image                          # -> launcher:cpu (picks the base, CA bundle and wheels; see README)
#   docker build -t launcher:cpu .      # plain build from the public python:3.11-slim
#
# Build arguments
#   BASE_IMAGE       Debian-based image with python3.11 + venv: python:3.11-slim (default) or the
#                    local debootstrapped one (`make base-image` -> launcher-base:bookworm)
#   FRAMEWORK        torch (default) | tf: also install the `tf` extra (RLlib framework tf2)
#   PIP_OFFLINE      1: install only from wheelhouse/ (`make wheelhouse`), no network at all
#   TORCH_INDEX_URL  where the CPU torch wheel comes from when wheelhouse/ has none
#   VERSION, REVISION, CREATED, SOURCE: OCI labels
# Secret (optional): --secret id=ca,src=CA.pem  extra CA bundle for pip behind a TLS-inspecting
#                    proxy; mounted for the pip steps only, never stored in a layer.
#
# Layers, from rarely to often changed: base + tini + venv -> pinned dependencies
# (images/requirements*.txt) -> torch -> the launcher itself (--no-deps, seconds to rebuild).
ARG BASE_IMAGE=python:3.11-slim

# ---- deps: everything but torch and the launcher; Dockerfile.gpu builds on this stage too ----
FROM ${BASE_IMAGE} AS deps
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive
# tini (PID 1) reaps the processes Ray leaves behind; the local base already has it.
# `launcher` (uid 1000) is the unprivileged default user (see images/entrypoint.sh);
# the venv lives outside $HOME because Apptainer mounts the host's $HOME over it.
# DL3008 (apt version pin) ignored: tini is 0.19.0 in every Debian release a Python 3.11 base
# can be on, but its Debian revision differs between them (bookworm: 0.19.0-1+b3), so an exact
# pin would break the build whenever BASE_IMAGE moves release; the base tag fixes the release.
# hadolint ignore=DL3008
RUN if ! command -v tini >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends tini \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --gid 1000 launcher \
    && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash launcher \
    && install -d -o 1000 -g 1000 /results \
    && python3 -m venv /opt/venv
# RAY_TMPDIR=/tmp: Ray's session dir becomes /tmp/ray/..., short enough for its Unix sockets
# (< 107 bytes) whatever TMPDIR a batch system sets. TF_USE_LEGACY_KERAS only matters
# when TensorFlow is imported (FRAMEWORK=tf): RLlib's tf2 stack needs Keras 2.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONNOUSERSITE=1 \
    PYTHONUNBUFFERED=1 \
    RAY_TMPDIR=/tmp \
    TF_USE_LEGACY_KERAS=1 \
    LANG=C.UTF-8
ARG PIP_OFFLINE=0
ARG FRAMEWORK=torch
COPY images/requirements.txt images/requirements-tf.txt /opt/launcher/
RUN --mount=type=bind,source=images/pip-install.sh,target=/usr/local/bin/pip-install \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=images/slim-venv.sh,target=/usr/local/bin/slim-venv \
    pip-install --no-deps -r /opt/launcher/requirements.txt \
    && if [ "$FRAMEWORK" = tf ]; then pip-install --no-deps -r /opt/launcher/requirements-tf.txt; fi \
    && slim-venv
# No usage-statistics reporting from Ray (clusters are often offline; nothing to wait for).
ENV RAY_USAGE_STATS_ENABLED=0
COPY images/entrypoint.sh /usr/local/bin/launcher-entrypoint
WORKDIR /results
ENTRYPOINT ["tini", "--", "launcher-entrypoint"]
CMD ["launcher", "--help"]

# ---- the CPU image ----
FROM deps
ARG TORCH_VERSION=2.13.0+cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN --mount=type=bind,source=images/pip-install.sh,target=/usr/local/bin/pip-install \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=images/slim-venv.sh,target=/usr/local/bin/slim-venv \
    pip-install --no-deps ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}" \
    && slim-venv \
    && python -c "import torch, ray.rllib.algorithms.ppo; print('torch', torch.__version__)"
COPY pyproject.toml README.md /opt/launcher/src/
COPY launcher /opt/launcher/src/launcher
RUN --mount=type=bind,source=images/pip-install.sh,target=/usr/local/bin/pip-install \
    pip-install --no-deps --no-build-isolation --no-cache-dir /opt/launcher/src \
    && rm -rf /opt/launcher/src \
    && pip check \
    && launcher --version
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://example.invalid/launcher
LABEL org.opencontainers.image.title="launcher" \
      org.opencontainers.image.description="Ray RLlib trainer (CPU torch)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      launcher.torch="cpu"
