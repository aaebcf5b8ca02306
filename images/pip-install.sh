#!/bin/sh
# `pip install` for image builds, bind-mounted by the Dockerfiles (never left in an image).
#  - wheels resolved on the host (`make wheelhouse`) are found in /wheelhouse first;
#  - PIP_OFFLINE=1 (build arg): install from /wheelhouse only (--no-index), no network;
#  - an extra CA bundle (TLS-inspecting proxies) comes as the BuildKit secret `ca`:
#    docker build --secret id=ca,src=/path/ca.pem ...  (mounted for this RUN only).
set -eu
if [ -s /run/secrets/ca ]; then
  export PIP_CERT=/run/secrets/ca
fi
if [ "${PIP_OFFLINE:-0}" = 1 ]; then
  set -- --no-index --find-links /wheelhouse "$@"
elif ls /wheelhouse/*.whl >/dev/null 2>&1; then
  set -- --find-links /wheelhouse "$@"
fi
exec /opt/venv/bin/pip install --disable-pip-version-check --no-input --progress-bar off "$@"
