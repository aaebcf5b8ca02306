"""What a run may use: CPUs and GPUs of this machine, env runners that fit them, and the
placement of actors on a cluster job's node roles.

A cluster job's placement is not something a user writes: it follows from the job's
shape in cluster.yaml (`ClusterPlacement`), and the head passes it to the trainer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from launcher.contract import LEARNER_RESOURCE, ROLLOUT_RESOURCE
from launcher.errors import UserError


@dataclass(frozen=True)
class ClusterPlacement:
    """Actors placed by node role: env runners on nodes holding the rollout resource,
    `learners` learner actors (with `learner_gpus` GPUs in all) on the learner node, each
    holding `learner_share` of its slot (concurrent trials of a sweep share the node)."""

    learners: int = 0
    learner_gpus: float = 0
    learner_share: float = 1


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def visible_gpus() -> int:
    """GPUs torch can use in this process."""
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        return 0


def embedded_cpus(settings) -> int:
    """CPUs for an embedded Ray: all usable ones unless fewer are asked for."""
    have = usable_cpus()
    cpus = 1 if settings.local_mode else (settings.num_cpus or have)
    if cpus > have:
        raise UserError(f"--num-cpus {cpus} asks for more CPUs than this machine has ({have})")
    return cpus


def wanted_runners(settings, preset_runners: int | None, cpus: int) -> int:
    """How many remote env runners: the user's number if set, else what fits."""
    if settings.local_mode:
        return 0
    asked = settings.num_env_runners
    if asked is None:
        if preset_runners is None:
            return max(cpus - 1, 0)
        return min(int(preset_runners), max(cpus - 1, 0))
    if asked > 0 and asked > cpus - 1:
        raise UserError(
            f"{asked} env runners need {asked + 1} CPUs (one each plus one for the trainer), "
            f"but only {cpus} are available; lower --num-env-runners or raise --num-cpus"
        )
    return asked


def check_machine(settings, preset_runners: int | None) -> None:
    """An embedded Ray's requests against what this machine has, before Ray starts."""
    wanted_runners(settings, preset_runners, embedded_cpus(settings))
    found = visible_gpus() if settings.num_gpus else 0
    if settings.num_gpus > found:
        raise UserError(
            f"--num-gpus {settings.num_gpus:g} asks for more GPUs than this machine has ({found})"
        )


def placement_for(settings, placement: ClusterPlacement,
                  resources: dict[str, float]) -> tuple[int, dict[str, Any]]:
    """Env-runner count and RLlib placement options on a cluster whose nodes carry role
    resources."""
    rollout_slots = int(resources.get(ROLLOUT_RESOURCE, 0))
    learner_slots = int(resources.get(LEARNER_RESOURCE, 0))
    runners = settings.num_env_runners if settings.num_env_runners is not None else rollout_slots
    if runners > rollout_slots:
        raise UserError(f"{runners} env runners asked for, but the rollout nodes offer {rollout_slots}")
    options: dict[str, Any] = {
        "env_runners": {"custom_resources_per_env_runner": {ROLLOUT_RESOURCE: 1}},
        # A lost rollout node: its env runners are restarted when a node offers room again;
        # meanwhile training goes on with the others. The restarted actors stay pending
        # while no node has room, and RLlib pings them every iteration: keep that short.
        "fault_tolerance": {"restart_failed_env_runners": True,
                            "env_runner_health_probe_timeout_s": 2.0},
    }
    if placement.learners:
        if placement.learners * placement.learner_share > learner_slots:
            raise UserError(f"{placement.learners} learners asked for, but the cluster has "
                            f"{learner_slots} learner slot(s)")
        options["learners"] = {
            "num_learners": placement.learners,
            "num_cpus_per_learner": 1,
            "num_gpus_per_learner": placement.learner_gpus / placement.learners,
            "custom_resources_per_learner": {LEARNER_RESOURCE: placement.learner_share},
        }
    return runners, options


def driver_torch_threads(framework: str) -> int | None:
    """Give torch in this process (the learner and env runner of a local run) one thread,
    or OMP_NUM_THREADS when the user set it; return the count (None: not torch).

    torch's default, a thread per core, collapses when the cores are shared: its threads
    spin-wait on each other while env runners and other jobs hold the cores. Measured on
    a 2-core machine with other jobs running: SAC on Pendulum-v1 sampled 100 env steps
    in 20-137 s per iteration with torch's default and in ~11 s with one thread. Ray's
    actors (remote env runners and learners) already get OMP_NUM_THREADS from their CPUs.
    """
    if framework != "torch":
        return None
    import torch

    try:
        threads = max(int(os.environ.get("OMP_NUM_THREADS", "1")), 1)
    except ValueError:
        threads = 1
    torch.set_num_threads(threads)
    return threads
