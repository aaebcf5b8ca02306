"""The job's container images, checked before submission: each role's image exists where
we submit from, and the learner of a GPU job does not get a CPU-only torch.

Every role runs `--image` unless it has its own (`--head-image`, `--rollout-image`,
`--learner-image`, or the same keys in a site profile): the GPU learner usually runs the
CUDA image, the rollout nodes the smaller CPU one. Which torch an image holds is read from
its labels (`apptainer inspect --labels`): the Docker images set `launcher.torch` (cpu or
cuda), the definitions `launcher.variant`; both reach the SIF. An image whose labels cannot
be read (no apptainer here, a URI, an image built elsewhere) is not refused.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from launcher.cluster.slurm.inimage import apptainer_command
from launcher.cluster.slurm.options import ROLE_IMAGES, JobOptions
from launcher.contract import LEARNER
from launcher.errors import UserError

CPU_LABELS = {"launcher.torch": "cpu", "launcher.variant": "cpu"}


def image_flag(options: JobOptions, role: str) -> str:
    return "--" + ROLE_IMAGES[role].replace("_", "-") if getattr(options, ROLE_IMAGES[role]) else "--image"


def check_sif_paths(options: JobOptions, write: bool) -> None:
    """An image given as a local path must exist (where we submit from); a URI
    (docker://, library://) is Apptainer's to fetch."""
    if not (options.apptainer and write):
        return
    for role in options.roles:
        image = options.image_for(role)
        if "://" not in image and not Path(image).expanduser().exists():
            raise UserError(f"{image_flag(options, role)} {image}: no such file on this machine "
                            "(build it with `make sif`, or give a path the nodes can read)")


def image_labels(image: str, runner=None) -> dict[str, str] | None:
    """The labels of a local SIF, or None when they cannot be read here."""
    command = apptainer_command()
    if command is None or "://" in image or not Path(image).expanduser().is_file():
        return None
    try:
        proc = (runner or subprocess.run)([command, "inspect", "--json", "--labels", image],
                                          capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        labels = json.loads(proc.stdout)["data"]["attributes"]["labels"]
    except (ValueError, KeyError, TypeError):
        return None
    return labels if isinstance(labels, dict) else None


def cpu_only(labels: dict[str, str] | None) -> str | None:
    """The label that says CPU-only torch, as 'key=value', or None."""
    for key, value in CPU_LABELS.items():
        if (labels or {}).get(key) == value:
            return f"{key}={value}"
    return None


def check_image_labels(options: JobOptions, runner=None) -> None:
    """The learner of a GPU job (not --learner-on-cpu) must not run a CPU-only torch."""
    if not (options.apptainer and options.learner_nv):
        return
    image = options.image_for(LEARNER)
    label = cpu_only(image_labels(image, runner))
    if label:
        raise UserError(
            f"{image_flag(options, LEARNER)} {image} holds a CPU-only torch ({label}) but the learner "
            f"gets {options.gpus} GPU(s): give it the CUDA image, --learner-image launcher-gpu.sif "
            "(`make image-gpu && make sif-gpu`), or train it on CPUs with --learner-on-cpu")
