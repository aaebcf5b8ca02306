"""The trainer's connection to Ray: an embedded Ray sized to this machine, or a running
cluster (`--address`, RAY_ADDRESS, or the head of a cluster job, already connected).

A cluster address is tried with a plain TCP connection first, so an address where
nothing answers is one line at once, instead of Ray's minutes of GCS retries (twenty
attempts of ~40 s, each logging three lines). Ray's C++ start-up chatter on stderr is
filtered (stderr_filter.py) from the moment Ray is started or joined.
"""

from __future__ import annotations

import contextlib
import os
import socket

from launcher.errors import UserError, first_line
from launcher.training import stderr_filter
from launcher.training.resources import embedded_cpus

# Attempts (about one per second, plus Ray's own timeouts) to reach a GCS that accepts
# TCP connections but does not answer as Ray; Ray's default is 20. A value the user
# exported wins.
GCS_ATTEMPTS = {"RAY_gcs_server_port_wait_time_s": "2"}
PROBE_TIMEOUT_S = 5.0

# Ray's processes retry their first connection to a local socket (the raylet to its own
# object store, a worker to its raylet) after raylet_client_connect_timeout_milliseconds,
# 1 s by default; that first try often races the socket's creation and costs a whole
# second of every node's start. Retry every 0.1 s instead, with the same 10 s of patience.
# A value the user exported wins.
RAY_FAST_CONNECT = {"RAY_raylet_client_connect_timeout_milliseconds": "100",
                    "RAY_raylet_client_num_connect_attempts": "100"}


def fast_connect_env() -> dict[str, str]:
    return {name: os.environ.get(name, value) for name, value in RAY_FAST_CONNECT.items()}


def split_address(address: str) -> tuple[str, int] | None:
    """(host, port) of `HOST:PORT`, `[IPv6]:PORT` or `ray://HOST:PORT`; None for Ray's
    own `auto` / `local`, which name no socket."""
    if address in ("auto", "local"):
        return None
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--address {address!r} must be HOST:PORT (the Ray head's GCS port, "
                        "6379 by default)")
    return host, int(port)


def check_address(address: str | None) -> None:
    """Refuse, in one line, a cluster address where nothing accepts a connection."""
    where = split_address(address) if address else None
    if where is None:
        return
    try:
        socket.create_connection(where, timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__.replace("Error", " error").strip()
        raise UserError(f"cannot connect to the Ray cluster at {address}: nothing answers at "
                        f"{where[0]}:{where[1]} ({why.lower()}); start its head with "
                        "`ray start --head`, or check the address") from None


@contextlib.contextmanager
def _patience():
    """GCS_ATTEMPTS while joining a cluster; the environment as it was afterwards."""
    before = {name: os.environ.get(name) for name in GCS_ATTEMPTS}
    os.environ.update({name: before[name] or value for name, value in GCS_ATTEMPTS.items()})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def connect_ray(settings) -> dict[str, float]:
    """Start embedded Ray sized to this machine, or join a cluster; return its resources.
    A process already connected (a cluster head, a sweep's trial actor) keeps its Ray."""
    import ray

    if ray.is_initialized():  # `launcher node` connected already, or a sweep's trial actor
        return ray.cluster_resources()
    address = settings.address or os.environ.get("RAY_ADDRESS")
    if address:
        check_address(address)
        stderr_filter.install()
        try:
            with _patience():
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except Exception as exc:
            raise UserError(f"cannot connect to the Ray cluster at {address}: {first_line(exc)}") from None
        return ray.cluster_resources()
    cpus = embedded_cpus(settings)
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.update(fast_connect_env())
    stderr_filter.install()
    ray.init(num_cpus=cpus, num_gpus=settings.num_gpus or 0, include_dashboard=False,
             logging_level="ERROR", log_to_driver=False)
    return ray.cluster_resources()
