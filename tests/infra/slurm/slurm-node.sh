#!/bin/bash
# Container entry point of the Slurm test cluster: munged, then slurmctld or slurmd
# in the foreground. Usage: slurm-node controller | node
set -euo pipefail
runuser -u munge -- /usr/sbin/munged
case "${1:-node}" in
  controller) exec /usr/sbin/slurmctld -D -i ;;
  node)       exec /usr/sbin/slurmd -D -N "$(hostname -s)" ;;
  *)          exec "$@" ;;
esac
