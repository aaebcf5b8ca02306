#!/bin/bash
# Container entry point of the Apptainer test cluster: munged, then slurmctld or slurmd in
# the foreground. Usage: apptainer-node controller | node
set -euo pipefail
# The host's /dev/fuse (passed with --device) is root-only; sites ship it 0666, which lets
# Apptainer mount a SIF with squashfuse as an ordinary user instead of unpacking it.
if [ -e /dev/fuse ]; then chmod 666 /dev/fuse; fi
runuser -u munge -- /usr/sbin/munged
case "${1:-node}" in
  controller) exec /usr/sbin/slurmctld -D -i ;;
  node)       exec /usr/sbin/slurmd -D -N "$(hostname -s)" ;;
  *)          exec "$@" ;;
esac
