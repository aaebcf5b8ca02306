"""`launcher local`: a cluster job's topology as Docker containers on one machine.

A private Docker network, a head container, N rollout containers and, with --gpus G > 0,
a learner container (a GPU device request when the host has NVIDIA GPUs, else a CPU
learner placed by the same `learner_node` resource as on Slurm). Every container runs
the trainer image's `launcher node --run-dir DIR --role ROLE`, exactly as a Slurm job's
nodes do, on a run directory bind-mounted at the same path as on the host and written
as the invoking user. The head's progress lines stream to the terminal; containers and
network are removed at the end, also on Ctrl-C, SIGTERM and failure.

This module checks everything (options, a resumed run dir, engine, image, settings)
before the run directory is written or a container starts, and prepares the run
directory. The engine and the image are checked by launcher/cluster/docker_engine.py,
the host's GPUs counted by launcher/cluster/gpus.py; the containers are started,
watched and removed by launcher/cluster/local_containers.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.cluster.jobdir import JobDir, load_job, prepare_job
from launcher.cluster.local_containers import LocalCluster, run_cluster
from launcher.contract import LEARNER, LEARNER_RESOURCE, ROLLOUT, RunPaths
from launcher.errors import UserError
from launcher.training.settings import TrainSettings

DEFAULT_IMAGE = "launcher:cpu"
DEFAULT_SHM = "1g"
SIZE_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[bkmgBKMG]?$")


@dataclass
class LocalOptions:
    nodes: int = 2
    gpus: float = 0
    cpus_per_node: int | None = None
    memory: str | None = None
    shm_size: str = DEFAULT_SHM
    image: str = DEFAULT_IMAGE
    keep: bool = False
    prefix: str | None = None  # container/network names: PREFIX-head, PREFIX-rollout-1, ...
    ready_timeout_s: float = 120.0
    extra_env: dict[str, str] = field(default_factory=dict)


def check_size(value: str | None, flag: str) -> None:
    if value is not None and not SIZE_RE.match(value):
        raise UserError(f"{flag} expects a size such as 512m or 2g, got {value!r}")


def check_options(opts: LocalOptions) -> None:
    if opts.nodes < 0:
        raise UserError(f"--nodes must be 0 or more, got {opts.nodes}")
    if opts.gpus < 0 or opts.gpus != int(opts.gpus):
        raise UserError(f"--gpus must be a whole number, 0 or more, got {opts.gpus}")
    if opts.cpus_per_node is not None and opts.cpus_per_node < 1:
        raise UserError(f"--cpus-per-node must be at least 1, got {opts.cpus_per_node}")
    check_size(opts.memory, "--memory")
    check_size(opts.shm_size, "--shm-size")
    if opts.prefix is not None and not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}$", opts.prefix):
        raise UserError(f"--prefix must be letters, digits, '-', '_' or '.', got {opts.prefix!r}")


def default_cpus_per_node(nodes: int, learner: bool) -> int:
    """Share this machine's CPUs between the containers, at least one each."""
    from launcher.training.resources import usable_cpus

    return max(1, usable_cpus() // (nodes + 1 + int(learner)))


@dataclass
class Machine:
    """What this machine offers a run, found before anything is written."""

    client: Any
    gpus_found: int  # NVIDIA GPUs on the host (counted only when --gpus asks for some)
    learner_on_cpu: bool  # --gpus asked for more GPUs than the host has: a CPU learner


def check_machine(opts: LocalOptions) -> Machine:
    """The engine, the host's GPUs and the image; one line when one of them is missing."""
    from launcher.cluster.docker_engine import check_image, docker_client
    from launcher.cluster.gpus import nvidia_gpus

    client = docker_client()
    gpus_found = (nvidia_gpus() or 0) if opts.gpus else 0
    learner_on_cpu = bool(opts.gpus) and gpus_found < opts.gpus
    check_image(client, opts.image, gpus=0 if learner_on_cpu else gpus_found)
    return Machine(client, gpus_found, learner_on_cpu)


# --- the command -------------------------------------------------------------------------
def resumed_job(run_dir: Path, overrides: dict | None, retry_failed: bool = False) -> JobDir:
    """The run dir being resumed (checked by check_resumable), its topology from
    cluster.yaml, the options given again written into its spec (a sweep's: into its
    unfinished trials), and a clean rendezvous: the previous head and nodes are gone."""
    import shutil

    from launcher.training.resume import resumed_settings
    from launcher.training.sweep_record import is_sweep_dir, update_for_resume

    job = load_job(run_dir)
    if is_sweep_dir(run_dir):
        update_for_resume(run_dir, overrides or {}, retry_failed)
    elif overrides:
        resumed_settings(run_dir, overrides).write_spec(run_dir)
        job = load_job(run_dir)
    paths = RunPaths(job.path)
    paths.head.unlink(missing_ok=True)
    paths.done.unlink(missing_ok=True)
    shutil.rmtree(paths.nodes, ignore_errors=True)
    return job


def job_for_run(settings: TrainSettings | None, opts: LocalOptions, resume: Path | None,
                resume_overrides: dict | None, learner_on_cpu: bool, sweep=None,
                retry_failed: bool = False) -> JobDir:
    """A fresh job dir for `settings` (and `sweep`, its trials), or the one being resumed."""
    if resume is not None:
        return resumed_job(resume, resume_overrides, retry_failed)
    assert settings is not None
    has_learner = opts.gpus > 0
    cpus = opts.cpus_per_node or default_cpus_per_node(opts.nodes, has_learner)
    head_cpus = 1 if (opts.nodes or has_learner) else max(cpus, 2)
    return prepare_job(
        settings, rollout_nodes=opts.nodes, learner_gpus=0 if learner_on_cpu else opts.gpus,
        learner=has_learner, cpus_per_node=cpus, head_cpus=head_cpus, learner_cpus=1,
        ready_timeout_s=opts.ready_timeout_s, sweep=sweep,
    )


def run_local(settings: TrainSettings | None, opts: LocalOptions, *, resume: Path | None = None,
              resume_overrides: dict | None = None, sweep=None, retry_failed: bool = False,
              say=print) -> int:
    """Run a job as containers (`sweep`: a SweepPlan whose first trial is `settings`);
    return the head's exit status."""
    import logging

    from launcher.training.resume import check_resumable
    from launcher.training.sweep_record import check_sweep_resumable, is_sweep_dir

    check_options(opts)
    if resume is not None:  # before the engine: a wrong directory needs no Docker to say so
        resume = (check_sweep_resumable(resume, retry_failed) if is_sweep_dir(resume)
                  else check_resumable(resume, cluster=True))
    # RLlib announces at import time, once per framework probe, that it skips TensorFlow.
    logging.getLogger("ray.rllib.utils.framework").setLevel(logging.ERROR)
    machine = check_machine(opts)
    job = job_for_run(settings, opts, resume, resume_overrides, machine.learner_on_cpu, sweep,
                      retry_failed)
    if opts.gpus and machine.learner_on_cpu and resume is None:
        say(f"note: this host has {machine.gpus_found} NVIDIA GPU(s); the learner container "
            f"runs on CPU, placed by the {LEARNER_RESOURCE} resource as on Slurm")
    learner = job.cluster.roles.get(LEARNER)
    gpu_devices = not machine.learner_on_cpu and learner is not None and bool(learner.gpus)
    cluster = LocalCluster(machine.client, job, opts, gpu_devices, say)
    say(f"local cluster {cluster.prefix}: head + {job.cluster.expected(ROLLOUT)} rollout"
        + (f" + learner ({learner.gpus:g} GPU)" if job.cluster.has_learner else "")
        + f" container(s) from {opts.image}; results in {job.path}")
    return run_cluster(cluster, say)
