"""How a sweep's trials share the Ray cluster they run on.

`size_trials`, from the cluster's resources when the sweep starts:
  embedded Ray or `--address`: a trial holds 1 CPU (its trainer) plus one per env runner;
      as many trials run at once as fit (at most --max-concurrent), and each gets the
      env runners its share of the CPUs allows (no more than its preset asks for); the
      GPUs asked for (--num-gpus) are split between them (fractional GPUs for learners).
  a cluster job (`launcher node`'s head, `placement`): the trials' trainers run on the
      head; the rollout nodes' env-runner slots are split between concurrent trials, and
      the learner node (its slot, GPUs) is shared: each learner holds 1/N of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from launcher.contract import ROLLOUT_RESOURCE
from launcher.errors import UserError
from launcher.training.resources import ClusterPlacement


@dataclass(frozen=True)
class Sizing:
    concurrent: int  # trials at once
    runners: int  # env runners per trial
    actor_cpus: float  # CPUs the trial's actor (its trainer) holds
    trial_gpus: float  # GPUs per trial (its learner's)
    placement: ClusterPlacement | None = None  # per trial, on a cluster job


def share(total: float, parts: int) -> float:
    """total / parts, rounded down to Ray's resource precision (1e-4)."""
    return math.floor(total / parts * 1e4) / 1e4 if total else 0.0


def size_trials(resources: dict[str, float], trials: int, *, runners: int | None = None,
                preset: int | None = None, max_concurrent: int | None = None, gpus: float = 0,
                placement: ClusterPlacement | None = None,
                learner_cpus: int | None = None) -> Sizing:
    """How many trials run at once, and what each gets (see the module docstring)."""
    limit = min(trials, max_concurrent or trials)
    if placement is not None:
        return _size_on_roles(resources, limit, runners, placement, learner_cpus)
    cpus = int(resources.get("CPU", 0))
    need = 1 + (runners or 0)
    if cpus < need:
        raise UserError(f"a trial needs {need} CPUs (one for its trainer, one per env runner), "
                        f"but the cluster has {cpus}; lower --num-env-runners")
    concurrent = min(limit, cpus // need)
    if runners is None:
        runners = max(cpus // concurrent - 1, 0)
        runners = runners if preset is None else min(runners, int(preset))
    return Sizing(concurrent, runners, 1, share(gpus, concurrent))


def _size_on_roles(resources: dict[str, float], limit: int, runners: int | None,
                   placement: ClusterPlacement, learner_cpus: int | None) -> Sizing:
    slots = int(resources.get(ROLLOUT_RESOURCE, 0))
    if runners is not None and runners > slots:
        raise UserError(f"{runners} env runners per trial asked for, but the rollout nodes offer {slots}")
    per = 1 if runners is None else runners
    concurrent = min(limit, slots // per) if per and slots else 1
    if placement.learners:
        concurrent = min(concurrent, max(learner_cpus or 1, 1))
    concurrent = max(concurrent, 1)
    runners = slots // concurrent if runners is None else runners
    trial = replace(placement, learner_gpus=share(placement.learner_gpus, concurrent),
                    learner_share=share(1, concurrent))
    return Sizing(concurrent, runners, 0, 0.0, trial)


def learner_node_cpus() -> int | None:
    """CPUs of the node that holds the learner role's resource, if any."""
    import ray

    from launcher.contract import LEARNER_RESOURCE

    for node in ray.nodes():
        if node.get("Alive") and LEARNER_RESOURCE in (node.get("Resources") or {}):
            return int(node["Resources"].get("CPU", 1))
    return None
