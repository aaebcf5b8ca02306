#!/bin/sh
# Image entry point (after tini): choose the user that runs the command, then exec it.
#
# Started as root (Docker's default for this image):
#   LAUNCHER_USER=root           stay root (Slurm daemons, `launcher node` in node images)
#   LAUNCHER_USER=UID[:GID]|NAME run as that user
#   otherwise, if $LAUNCHER_RESULTS (default /results) is a mount point: run as the owner
#     of that directory, so results on the host belong to the host user who owns it
#     (a root-owned mount, e.g. one Docker created itself, keeps root);
#   otherwise: the unprivileged `launcher` user (uid 1000).
# Started as non-root (`docker run --user`, Apptainer never reaches this script): no
# switching; only HOME is made writable when it is not.
set -eu
results=${LAUNCHER_RESULTS:-/results}

writable_home() {  # $1: uid; keep HOME when usable, else a private one under /tmp
  if [ -n "${HOME:-}" ] && [ "$HOME" != / ] && [ -d "$HOME" ] && [ -w "$HOME" ] &&
     [ "$(stat -c %u "$HOME")" = "$1" ]; then
    return
  fi
  HOME=/tmp/home-$1
  export HOME
}

is_mount() {  # from the kernel's mount table: no util-linux `mountpoint` needed
  awk -v dir="$1" '$5 == dir { found = 1 } END { exit !found }' /proc/self/mountinfo
}

if [ "$(id -u)" != 0 ]; then
  writable_home "$(id -u)"
  mkdir -p "$HOME"
  : "${USER:=$(id -un 2>/dev/null || echo "user$(id -u)")}"
  export USER LOGNAME="$USER"
  exec "$@"
fi

target=${LAUNCHER_USER:-}
if [ -z "$target" ]; then
  if [ -d "$results" ] && is_mount "$results"; then
    target=$(stat -c %u:%g "$results")
  else
    target=launcher
  fi
fi
case "$target" in
  root|0|0:0) exec "$@" ;;
  *:*) uid=${target%%:*}; gid=${target#*:} ;;
  *) uid=$(id -u "$target"); gid=$(id -g "$target") ;;
esac
if [ "$uid" = 0 ]; then
  exec "$@"
fi
name=$(getent passwd "$uid" | cut -d: -f1 || true)
USER=${name:-user$uid}
LOGNAME=$USER
HOME=$(getent passwd "$uid" | cut -d: -f6 || true)
export USER LOGNAME
if [ -z "$HOME" ] || [ ! -d "$HOME" ] || [ "$(stat -c %u "$HOME")" != "$uid" ]; then
  HOME=/tmp/home-$uid
  mkdir -p "$HOME" && chown "$uid:$gid" "$HOME"
fi
export HOME
if [ -n "$name" ]; then groups=--init-groups; else groups=--clear-groups; fi
exec setpriv --reuid="$uid" --regid="$gid" "$groups" -- "$@"
