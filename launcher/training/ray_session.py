"""The trainer's connection to Ray: an embedded Ray sized to this machine, or a running
cluster (`--address`, RAY_ADDRESS, or the head of a cluster job, already connected)."""

from __future__ import annotations

import os

from launcher.errors import UserError
from launcher.training.resources import embedded_cpus

# Ray's processes retry their first connection to a local socket (the raylet to its own
# object store, a worker to its raylet) after raylet_client_connect_timeout_milliseconds,
# 1 s by default; that first try often races the socket's creation and costs a whole
# second of every node's start. Retry every 0.1 s instead, with the same 10 s of patience.
# A value the user exported wins.
RAY_FAST_CONNECT = {"RAY_raylet_client_connect_timeout_milliseconds": "100",
                    "RAY_raylet_client_num_connect_attempts": "100"}


def fast_connect_env() -> dict[str, str]:
    return {name: os.environ.get(name, value) for name, value in RAY_FAST_CONNECT.items()}


def connect_ray(settings) -> dict[str, float]:
    """Start embedded Ray sized to this machine, or join a cluster; return its resources."""
    import ray

    address = settings.address or os.environ.get("RAY_ADDRESS")
    if address:
        if ray.is_initialized():  # `launcher node` connected already, to wait for the nodes
            return ray.cluster_resources()
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except Exception as exc:
            raise UserError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
        return ray.cluster_resources()
    cpus = embedded_cpus(settings)
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.update(fast_connect_env())
    ray.init(num_cpus=cpus, num_gpus=settings.num_gpus or 0, include_dashboard=False,
             logging_level="ERROR", log_to_driver=False)
    return ray.cluster_resources()
