"""A cluster job's run directory, prepared on shared storage before any node starts.

`prepare_job()` validates the training settings (`train.check`, so a bad env id or a
typo in a hyperparameter fails before anything is submitted or started), creates the
run directory and writes into it everything the nodes need:

    RUN_DIR/spec.yaml          the training settings (place_on_cluster_roles, num_learners)
    RUN_DIR/cluster.yaml       job id/name, nodes per role with their CPUs/GPUs, port base,
                               readiness timeout: what `launcher node` reads
    RUN_DIR/.cluster/          mode 0700; the nodes' rendezvous (see launcher/node.py)
    RUN_DIR/.cluster/token     the job's Ray auth token, mode 0600, never printed

Nothing a user typed goes anywhere but into these files; a Slurm script or a container
only passes `--run-dir RUN_DIR --role ROLE` to `launcher node`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from launcher.errors import UserError
from launcher.training.settings import SPEC_FILE, TrainSettings, check_keys, load_spec, read_yaml

CLUSTER_FILE = "cluster.yaml"
STATE_DIR = ".cluster"
TOKEN_FILE = "token"
ROLES = ("head", "rollout", "learner")
DEFAULT_READY_TIMEOUT_S = 180.0
# Ports: each job gets a block of PORT_BLOCK ports at port_base, derived from its id,
# inside [PORT_LOW, PORT_HIGH) (below Linux's default ephemeral range, 32768+).
PORT_LOW, PORT_HIGH, PORT_BLOCK = 20000, 32000, 20
# Offsets inside the block (launcher/node.py passes them to `ray start`).
PORT_OFFSETS = {
    "gcs": 0, "client_server": 1, "dashboard": 2, "dashboard_agent_listen": 3,
    "dashboard_agent_grpc": 4, "runtime_env_agent": 5, "metrics_export": 6,
    "node_manager": 7, "object_manager": 8,
}
# Ray worker processes get a per-job range too, inside Ray's default 10002-19999.
WORKER_PORTS = 200
WORKER_PORT_LOW = 10002


@dataclass
class RoleSpec:
    """What one role of the job asks for on each of its nodes."""

    nodes: int
    cpus: int | None = None  # None: what the node offers (Slurm allocation / container)
    gpus: float = 0


@dataclass
class ClusterSpec:
    """cluster.yaml: the shape of the job, read by every node."""

    job_id: str
    job_name: str
    port_base: int
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    roles: dict[str, RoleSpec] = field(default_factory=dict)

    # --- derived -------------------------------------------------------------------
    def port(self, name: str) -> int:
        return self.port_base + PORT_OFFSETS[name]

    @property
    def worker_ports(self) -> tuple[int, int]:
        """min/max port for Ray worker processes: a range of its own per job."""
        slot = (self.port_base - PORT_LOW) // PORT_BLOCK
        low = WORKER_PORT_LOW + (slot % 49) * WORKER_PORTS
        return low, low + WORKER_PORTS - 1

    @property
    def short_id(self) -> str:
        return self.job_id[:8]

    def expected(self, role: str) -> int:
        spec = self.roles.get(role)
        return spec.nodes if spec else 0

    @property
    def has_learner(self) -> bool:
        return self.expected("learner") > 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["roles"] = {role: asdict(spec) for role, spec in self.roles.items()}
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ClusterSpec:
        if not isinstance(data, dict):
            raise UserError(f"{where} must be a mapping")
        check_keys(data, ["job_id", "job_name", "port_base", "ready_timeout_s", "roles"], where)
        roles_raw = data.get("roles") or {}
        if not isinstance(roles_raw, dict):
            raise UserError(f"'roles' in {where} must be a mapping")
        check_keys(roles_raw, ROLES, f"{where}: roles")
        roles = {}
        for role, spec in roles_raw.items():
            if not isinstance(spec, dict):
                raise UserError(f"roles.{role} in {where} must be a mapping")
            check_keys(spec, ["nodes", "cpus", "gpus"], f"{where}: roles.{role}")
            roles[role] = RoleSpec(**spec)
        try:
            return cls(job_id=str(data["job_id"]), job_name=str(data["job_name"]),
                       port_base=int(data["port_base"]),
                       ready_timeout_s=float(data.get("ready_timeout_s", DEFAULT_READY_TIMEOUT_S)),
                       roles=roles)
        except KeyError as exc:
            raise UserError(f"{where} lacks {exc.args[0]!r}") from None


@dataclass
class JobDir:
    """A prepared run directory; every path a node needs."""

    path: Path
    settings: TrainSettings
    cluster: ClusterSpec

    @property
    def state_dir(self) -> Path:
        return self.path / STATE_DIR

    @property
    def token_path(self) -> Path:
        return self.state_dir / TOKEN_FILE

    @property
    def spec_path(self) -> Path:
        return self.path / SPEC_FILE

    @property
    def cluster_path(self) -> Path:
        return self.path / CLUSTER_FILE


def port_base_for(job_id: str) -> int:
    """A port block derived from the job id: two jobs on one node collide with
    probability 1/600, and `launcher node` checks the ports are free before Ray starts."""
    slots = (PORT_HIGH - PORT_LOW) // PORT_BLOCK
    return PORT_LOW + (int(job_id[:8], 16) % slots) * PORT_BLOCK


def new_job_id() -> str:
    return secrets.token_hex(6)


def write_token(path: Path) -> None:
    """A fresh random token, created readable by the user only (never world-readable,
    not even for an instant)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    os.replace(tmp, path)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write aside, then rename: a reader on shared storage sees all or nothing."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def place_settings(settings: TrainSettings, has_learner: bool, learner_gpus: float) -> None:
    """A cluster job's settings: actors placed by node roles, the learner (and its GPUs) on
    the learner node; then validated before anything is written or submitted."""
    from launcher.training import loop as training

    settings.place_on_cluster_roles = True
    settings.num_learners = 1 if has_learner else 0
    settings.num_gpus = learner_gpus if has_learner else 0
    settings.address = None  # the head sets it at run time
    training.check(settings, validate_keys=bool(settings.config))  # presets: checked by tests


def prepare_job(
    settings: TrainSettings,
    *,
    rollout_nodes: int,
    learner_gpus: float = 0,
    learner: bool | None = None,
    cpus_per_node: int | None = None,
    head_cpus: int | None = None,
    learner_cpus: int | None = None,
    job_name: str | None = None,
    job_id: str | None = None,
    run_dir: str | Path | None = None,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> JobDir:
    """Validate, create the run dir, write spec.yaml, cluster.yaml and the token.

    rollout_nodes: nodes that run env runners only (>= 0; with no learner the head
        runs env runners too, on its CPUs but one).
    learner_gpus: GPUs the learner node gives the learner; > 0 implies a learner node.
    learner: force a learner node with no GPU (e.g. `launcher local --gpus 1` on a
        host without GPUs: a CPU learner placed by the same custom resource).
    cpus_per_node: CPUs of each rollout node (also head/learner unless given);
        None: what each node finds (Slurm allocation, container limit).
    run_dir: default OUTPUT/NAME as for `launcher train`.
    """
    from launcher.training import loop as training

    if rollout_nodes < 0:
        raise UserError(f"--nodes must be 0 or more, got {rollout_nodes}")
    if learner_gpus < 0:
        raise UserError(f"--gpus must be 0 or more, got {learner_gpus}")
    for flag, value in (("--cpus-per-node", cpus_per_node), ("head CPUs", head_cpus),
                        ("learner CPUs", learner_cpus)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if ready_timeout_s <= 0:
        raise UserError(f"the readiness timeout must be positive, got {ready_timeout_s}")
    has_learner = bool(learner_gpus) if learner is None else learner
    if learner_gpus and not has_learner:
        raise UserError("GPUs for the learner need a learner node")
    # No rollout node: the head runs env runners on its CPUs but one (with one CPU, the
    # trainer samples by itself).
    head_cpus = head_cpus or cpus_per_node

    place_settings(settings, has_learner, learner_gpus)

    if run_dir is None:
        run_dir = training.prepare_run_dir(settings)
    run_dir = Path(run_dir).expanduser().resolve()
    if (run_dir / SPEC_FILE).exists():
        raise UserError(f"run directory {run_dir} already exists: resume it with --resume {run_dir}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create run directory {run_dir}: {exc.strerror}") from None

    job_id = job_id or new_job_id()
    roles = {"head": RoleSpec(nodes=1, cpus=head_cpus, gpus=0),
             "rollout": RoleSpec(nodes=rollout_nodes, cpus=cpus_per_node, gpus=0)}
    if has_learner:
        roles["learner"] = RoleSpec(nodes=1, cpus=learner_cpus or cpus_per_node, gpus=learner_gpus)
    cluster = ClusterSpec(job_id=job_id, job_name=job_name or run_dir.name,
                          port_base=port_base_for(job_id), ready_timeout_s=ready_timeout_s,
                          roles=roles)
    job = JobDir(path=run_dir, settings=settings, cluster=cluster)
    settings.write_spec(run_dir)
    write_atomic(job.cluster_path, yaml.safe_dump(cluster.to_dict(), sort_keys=False))
    write_token(job.token_path)
    return job


def load_job(run_dir: str | Path) -> JobDir:
    """Read a prepared run directory back (what every node does first)."""
    run_dir = Path(run_dir).expanduser().resolve()
    if not (run_dir / CLUSTER_FILE).is_file():
        raise UserError(f"{run_dir} is not a prepared cluster job (no {CLUSTER_FILE} in it)")
    settings = load_spec(run_dir)
    cluster = ClusterSpec.from_dict(read_yaml(run_dir / CLUSTER_FILE), str(run_dir / CLUSTER_FILE))
    job = JobDir(path=run_dir, settings=settings, cluster=cluster)
    if not job.token_path.is_file():
        raise UserError(f"{job.token_path} is missing: the job's auth token; prepare the job again")
    return job
