"""Facts about the machine a node runs on: what it offers Ray and where it is reached.

Sizing: a node advertises --num-cpus / --num-gpus when given, else what Slurm allocated
(SLURM_CPUS_ON_NODE) and CUDA_VISIBLE_DEVICES name, else its role's entry in
cluster.yaml, else the CPUs this process may use; and the Ray resource of its role
(contract.ROLLOUT_RESOURCE / LEARNER_RESOURCE) that places actors on it.

Addresses: the head binds to what its hostname resolves to (Docker, most clusters), else
an interface's IPv4; a worker to the address its kernel would use to reach the head.
"""

from __future__ import annotations

import os
import socket

from launcher.contract import HEAD, LEARNER, LEARNER_RESOURCE, ROLLOUT, ROLLOUT_RESOURCE
from launcher.errors import UserError

SIOCGIFADDR = 0x8915  # ioctl: an interface's IPv4 address


# --- sizing ------------------------------------------------------------------------------
def visible_cuda_devices(env: dict[str, str]) -> int | None:
    """GPUs named by CUDA_VISIBLE_DEVICES (Slurm's --gres sets it); None when unset."""
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return len([v for v in value.split(",") if v.strip() and v.strip() != "-1"])


def node_cpus(role_cpus: int | None, num_cpus: int | None, env: dict[str, str]) -> int:
    """--num-cpus, else Slurm's allocation, else cluster.yaml's, else this process's."""
    from launcher.training.resources import usable_cpus

    if num_cpus is None and env.get("SLURM_CPUS_ON_NODE", "").isdigit():
        num_cpus = int(env["SLURM_CPUS_ON_NODE"])
    if num_cpus is None and role_cpus:
        num_cpus = role_cpus
    if num_cpus is None:
        num_cpus = usable_cpus()
    if num_cpus < 1:
        raise UserError(f"--num-cpus must be at least 1, got {num_cpus}")
    return num_cpus


def node_resources(job, role: str, num_cpus: int | None, num_gpus: float | None,
                   env: dict[str, str] | None = None) -> tuple[int, float, dict[str, float]]:
    """CPUs, GPUs and custom resources this node advertises to Ray (job: a JobDir)."""
    env = os.environ if env is None else env
    spec = job.cluster.roles.get(role)
    cpus = node_cpus(spec.cpus if spec else None, num_cpus, env)
    gpus = num_gpus if num_gpus is not None else (visible_cuda_devices(env) or 0)
    if gpus < 0:
        raise UserError(f"--num-gpus must be 0 or more, got {gpus}")
    resources: dict[str, float] = {}
    if role == ROLLOUT:
        resources[ROLLOUT_RESOURCE] = cpus
    elif role == LEARNER:
        resources[LEARNER_RESOURCE] = 1
        wanted = spec.gpus if spec else 0
        if wanted and gpus < wanted:
            raise UserError(
                f"the learner node should have {wanted:g} GPU(s) but sees {gpus:g} "
                "(CUDA_VISIBLE_DEVICES); run it on a GPU node or pass --num-gpus"
            )
    elif role == HEAD and not job.cluster.has_learner and cpus > 1:
        resources[ROLLOUT_RESOURCE] = cpus - 1
    return cpus, gpus, resources


# --- addresses ---------------------------------------------------------------------------
def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


def local_ip_towards(host: str, port: int) -> str | None:
    """The local address the kernel would use to reach host (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((host, port))
            return sock.getsockname()[0]
    except OSError:
        return None


def own_ip() -> str:
    """This node's address on the cluster network: what its hostname resolves to
    (Docker and most clusters), else the first non-loopback IPv4 of an interface."""
    try:
        ips = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        ips = set()
    good = sorted(ip for ip in ips if not is_loopback(ip))
    if good:
        return good[0]
    for ip in interface_ips():
        return ip
    raise UserError("cannot tell this node's network address; pass --node-ip")


def interface_ips() -> list[str]:
    """Non-loopback IPv4 addresses of this machine's interfaces (Linux, no extra package)."""
    import fcntl
    import struct

    found: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return found
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            try:
                packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                                     struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
            ip = socket.inet_ntoa(packed[20:24])
            if not is_loopback(ip):
                found.append(ip)
    return found
