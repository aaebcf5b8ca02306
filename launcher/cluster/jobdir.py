"""A cluster job's run directory, prepared on shared storage before any node starts.

`prepare_job()` validates the training settings (`check_settings`, so a bad env id or a
typo in a hyperparameter fails before anything is submitted or started), reserves the
run directory and writes into it everything the nodes need (the file names are in
launcher/contract.py): spec.yaml (the training settings), cluster.yaml (job id/name,
nodes per role with their CPUs/GPUs, port base, readiness timeout: what `launcher node`
reads), and in .cluster/ (mode 0700) the job's Ray auth token (mode 0600, never
printed). `load_job()` reads them back on a node and trusts them only when they belong
to the user and no one else can write them (launcher/files.py).

The actors' placement is derived from the job's shape (`JobDir.placement`), never
written by a user. Nothing a user typed goes anywhere but into these files; a Slurm
script or a container only passes `--run-dir RUN_DIR --role ROLE` to `launcher node`.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from launcher.cluster.code_snapshot import check_snapshot, ship_code
from launcher.cluster.ports import PORT_BLOCK, PORT_HIGH, PORT_LOW, port_base_for
from launcher.contract import HEAD, LEARNER, ROLES, ROLLOUT, RunPaths
from launcher.errors import UserError
from launcher.files import SECRET_MODE, check_trusted, make_private_dir, write_atomic
from launcher.schema import check_fields
from launcher.training.resources import ClusterPlacement
from launcher.training.run_record import begin_record, choose_seed
from launcher.training.rundir import reserve, reserve_run_dir
from launcher.training.settings import TrainSettings, check_keys, load_spec, read_yaml

DEFAULT_READY_TIMEOUT_S = 180.0
@dataclass
class RoleSpec:
    """What one role of the job asks for on each of its nodes."""

    nodes: int
    cpus: int | None = None  # None: what the node offers (Slurm allocation / container)
    gpus: float = 0

    @classmethod
    def from_dict(cls, data: Any, where: str) -> RoleSpec:
        if not isinstance(data, dict):
            raise UserError(f"{where} must be a mapping")
        check_keys(data, [f.name for f in fields(cls)], where)
        if "nodes" not in data:
            raise UserError(f"{where} lacks 'nodes'")
        check_fields(cls, data, where)
        spec = cls(**data)
        if spec.nodes < 0 or (spec.cpus is not None and spec.cpus < 1) or spec.gpus < 0:
            raise UserError(f"{where}: nodes and gpus must be 0 or more, cpus at least 1")
        return spec


@dataclass
class ClusterSpec:
    """cluster.yaml: the shape of the job, read by every node."""

    job_id: str
    job_name: str
    port_base: int
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    roles: dict[str, RoleSpec] = field(default_factory=dict)

    # --- derived -------------------------------------------------------------------
    @property
    def short_id(self) -> str:
        return self.job_id[:8]

    def expected(self, role: str) -> int:
        spec = self.roles.get(role)
        return spec.nodes if spec else 0

    @property
    def has_learner(self) -> bool:
        return self.expected(LEARNER) > 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["roles"] = {role: asdict(spec) for role, spec in self.roles.items()}
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ClusterSpec:
        """Read cluster.yaml's mapping, every field checked for type and range."""
        if not isinstance(data, dict):
            raise UserError(f"{where} must be a mapping")
        check_keys(data, [f.name for f in fields(cls)], where)
        missing = [name for name in ("job_id", "job_name", "port_base") if name not in data]
        if missing:
            raise UserError(f"{where} lacks {missing[0]!r}")
        check_fields(cls, data, where)
        roles_raw = data.get("roles") or {}
        check_keys(roles_raw, ROLES, f"{where}: roles")
        roles = {role: RoleSpec.from_dict(spec, f"{where}: roles.{role}")
                 for role, spec in roles_raw.items()}
        spec = cls(**{**data, "roles": roles})
        spec.validate(where)
        return spec

    def validate(self, where: str) -> None:
        if not self.job_id.isalnum() or not self.job_name.strip():
            raise UserError(f"{where}: job_id must be letters and digits and job_name not empty")
        if not PORT_LOW <= self.port_base <= PORT_HIGH - PORT_BLOCK:
            raise UserError(f"{where}: port_base must be between {PORT_LOW} and "
                            f"{PORT_HIGH - PORT_BLOCK}, got {self.port_base}")
        if not self.ready_timeout_s > 0:
            raise UserError(f"{where}: ready_timeout_s must be positive, got {self.ready_timeout_s}")
        if self.expected(HEAD) != 1:
            raise UserError(f"{where}: a job has exactly one {HEAD} node")


@dataclass
class JobDir:
    """A prepared run directory; every path a node needs."""

    path: Path
    settings: TrainSettings
    cluster: ClusterSpec

    @property
    def paths(self) -> RunPaths:
        return RunPaths(self.path)

    @property
    def state_dir(self) -> Path:
        return self.paths.state

    @property
    def token_path(self) -> Path:
        return self.paths.token

    @property
    def spec_path(self) -> Path:
        return self.paths.spec

    @property
    def cluster_path(self) -> Path:
        return self.paths.cluster

    @property
    def placement(self) -> ClusterPlacement:
        """Where the trainer puts its actors: derived from the job's shape."""
        learner = self.cluster.roles.get(LEARNER)
        if learner is None or not learner.nodes:
            return ClusterPlacement()
        return ClusterPlacement(learners=1, learner_gpus=learner.gpus)


def new_job_id() -> str:
    return secrets.token_hex(6)


def write_token(path: Path) -> None:
    """A fresh random token, readable by the user only (never world-readable, not even
    for an instant)."""
    make_private_dir(path.parent)
    write_atomic(path, secrets.token_hex(32), mode=SECRET_MODE)


def place_settings(settings: TrainSettings, has_learner: bool, learner_gpus: float) -> ClusterPlacement:
    """A cluster job's settings checked as its head will run them: actors placed by node
    roles, the learner (and its GPUs) on the learner node. Returns that placement."""
    from launcher.training.loop import check_settings

    placement = ClusterPlacement(learners=1 if has_learner else 0,
                                 learner_gpus=learner_gpus if has_learner else 0)
    settings.address = None  # the head sets it at run time
    check_settings(settings, validate_keys=bool(settings.config), placement=placement)
    return placement


def check_shape(rollout_nodes: int, learner_gpus: float, sizes: dict[str, int | None],
                ready_timeout_s: float) -> None:
    if rollout_nodes < 0:
        raise UserError(f"--nodes must be 0 or more, got {rollout_nodes}")
    if learner_gpus < 0:
        raise UserError(f"--gpus must be 0 or more, got {learner_gpus}")
    for flag, value in sizes.items():
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if ready_timeout_s <= 0:
        raise UserError(f"the readiness timeout must be positive, got {ready_timeout_s}")


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
    sweep=None,
) -> JobDir:
    """Validate, reserve the run dir, write spec.yaml, cluster.yaml and the token.

    rollout_nodes: nodes that run env runners only (>= 0; with no learner the head
        runs env runners too, on its CPUs but one).
    learner_gpus: GPUs the learner node gives the learner; > 0 implies a learner node.
    learner: force a learner node with no GPU (e.g. `launcher local --gpus 1` on a
        host without GPUs: a CPU learner placed by the same custom resource).
    cpus_per_node: CPUs of each rollout node (also head/learner unless given);
        None: what each node finds (Slurm allocation, container limit).
    run_dir: default OUTPUT/NAME as for `launcher train`; created exclusively.
    sweep: a training.sweep_start.SweepPlan (`settings` are its first trial's): every
        trial checked with the job's placement, the record written into the run dir,
        whose head then runs the trials (node.py).
    """
    check_shape(rollout_nodes, learner_gpus, {"--cpus-per-node": cpus_per_node,
                "head CPUs": head_cpus, "learner CPUs": learner_cpus}, ready_timeout_s)
    has_learner = bool(learner_gpus) if learner is None else learner
    if learner_gpus and not has_learner:
        raise UserError("GPUs for the learner need a learner node")
    head_cpus = head_cpus or cpus_per_node
    placement = place_settings(settings, has_learner, learner_gpus)
    if sweep is not None:
        from launcher.training.sweep_record import check_trials

        check_trials(sweep.trials, placement=placement)
    run_dir = reserve_run_dir(settings) if run_dir is None else reserve(Path(run_dir).expanduser())
    run_dir = run_dir.resolve()
    choose_seed(settings)
    begin_record(run_dir, settings)  # the user's command and env, before the snapshot
    original_env = settings.env
    try:
        settings.env, settings.code = ship_code(settings.env, run_dir, settings.code)
        if sweep is not None:
            from launcher.training.sweep_record import follow_snapshot

            follow_snapshot(sweep.trials, original_env, settings.env, settings.code)
    except UserError:
        shutil.rmtree(run_dir, ignore_errors=True)  # reserved above, nothing else in it yet
        raise
    job_id = job_id or new_job_id()
    roles = {HEAD: RoleSpec(nodes=1, cpus=head_cpus, gpus=0),
             ROLLOUT: RoleSpec(nodes=rollout_nodes, cpus=cpus_per_node, gpus=0)}
    if has_learner:
        roles[LEARNER] = RoleSpec(nodes=1, cpus=learner_cpus or cpus_per_node, gpus=learner_gpus)
    cluster = ClusterSpec(job_id=job_id, job_name=job_name or run_dir.name,
                          port_base=port_base_for(job_id), ready_timeout_s=ready_timeout_s,
                          roles=roles)
    job = JobDir(path=run_dir, settings=settings, cluster=cluster)
    settings.write_spec(run_dir)
    write_atomic(job.cluster_path, yaml.safe_dump(cluster.to_dict(), sort_keys=False))
    write_token(job.token_path)
    if sweep is not None:
        sweep.write(run_dir)
    return job


def load_job(run_dir: str | Path) -> JobDir:
    """Read a prepared run directory back (what every node does first), trusting it only
    when this user owns it and no one else can change it."""
    paths = RunPaths(Path(run_dir).expanduser().resolve())
    if not paths.cluster.is_file():
        raise UserError(f"{paths.root} is not a prepared cluster job (no {paths.cluster.name} in it)")
    for path in (paths.root, paths.cluster):
        check_trusted(path)
    settings = load_spec(paths.root)
    cluster = ClusterSpec.from_dict(read_yaml(paths.cluster), str(paths.cluster))
    job = JobDir(path=paths.root, settings=settings, cluster=cluster)
    if not paths.token.is_file():
        raise UserError(f"{paths.token} is missing: the job's auth token; prepare the job again")
    check_trusted(paths.state)
    check_trusted(paths.token, secret=True)
    check_snapshot(paths.root)
    if not paths.token.read_text().strip():
        raise UserError(f"{paths.token} is empty: the job's auth token; prepare the job again")
    return job
