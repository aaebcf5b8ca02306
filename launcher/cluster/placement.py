"""Where a cluster job's actors run: the env runners and learners with the role and host
of their node, written to RUN_DIR/.cluster/placement.json while the head trains, so a
test or a user can see that the roles hold."""

from __future__ import annotations

import json

from launcher.cluster.jobdir import JobDir
from launcher.cluster.rendezvous import joined_nodes
from launcher.contract import LEARNER, RunPaths
from launcher.files import write_atomic
from launcher.training.progress import Reporter

ENV_RUNNER, LEARNER_ACTOR, OTHER = "env_runner", LEARNER, "other"


def actor_kind(class_name: str) -> str:
    """env_runner / learner for RLlib's actors (learners run as Ray Train workers,
    `_WrappedExecutable`), other for anything else."""
    if "EnvRunner" in class_name:
        return ENV_RUNNER
    if "Learner" in class_name or class_name.endswith("_WrappedExecutable"):
        return LEARNER_ACTOR
    return OTHER


def actor_placement() -> list[dict]:
    """Ray's actors with the role and host of the node they live on."""
    import ray

    nodes = {n.ip: n for n in joined_nodes()}
    out = []
    for actor_id, info in sorted(ray._private.state.actors().items()):
        name = info.get("ActorClassName", "")
        ip = (info.get("Address") or {}).get("IPAddress", "")
        where = nodes.get(ip)
        out.append({"actor": actor_id[:12], "kind": actor_kind(name), "class": name,
                    "state": info.get("State"), "ip": ip,
                    "role": where.role if where else "?", "host": where.host if where else "?"})
    return out


def placement_line(actors) -> str:
    """`env_runner on rollout host1, rollout host2; learner on learner host3`."""
    where: dict[str, list[str]] = {}
    for actor in actors:
        where.setdefault(actor["kind"], []).append(f"{actor['role']} {actor['host']}")
    return "placement: " + "; ".join(
        f"{kind} on {', '.join(sorted(hosts))}" for kind, hosts in sorted(where.items()))


class PlacementReporter(Reporter):
    """The usual progress lines, plus placement.json (written each iteration, logged
    once)."""

    def __init__(self, job: JobDir, log):
        super().__init__(live=False)
        self.path = RunPaths(job.path).placement
        self.node_log = log
        self.seen: dict[str, dict] = {}
        self.logged = False

    def update(self, row: dict, elapsed_s: float) -> None:
        super().update(row, elapsed_s)
        try:
            actors = actor_placement()
        except Exception as exc:  # a debugging API of Ray's; never let it stop training
            self.node_log(f"placement unknown: {type(exc).__name__}: {exc}")
            return
        for actor in actors:
            if actor["state"] == "ALIVE":
                self.seen[actor["actor"]] = actor
        write_atomic(self.path, json.dumps(sorted(self.seen.values(), key=lambda a: a["actor"]),
                                           indent=1))
        if not self.logged and self.seen:
            self.logged = True
            self.node_log(placement_line(self.seen.values()))
