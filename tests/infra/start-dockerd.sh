#!/usr/bin/env bash
# Start a Docker engine if none answers, and wait (polling) until it does.
# Debian's docker.io ships dockerd; CI machines have only a client preinstalled.
set -euo pipefail
DOCKER=${DOCKER:-/usr/bin/docker}
if "$DOCKER" info >/dev/null 2>&1; then
  echo "docker engine already running"; exit 0
fi
command -v dockerd >/dev/null || { echo "dockerd not installed: apt-get install docker.io" >&2; exit 1; }
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 120); do
  "$DOCKER" info >/dev/null 2>&1 && { echo "docker engine up"; exit 0; }
  sleep 0.5
done
echo "dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
