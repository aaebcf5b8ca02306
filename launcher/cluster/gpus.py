"""The host's NVIDIA GPUs, as `nvidia-smi -L` lists them: what Docker could hand to a
container. `launcher local` sizes its learner container by this count and `launcher
doctor` reports it.

It is a different question from what torch in this process sees
(launcher/training's visible_gpus): a host can have GPUs that a CPU-only torch, or a
process without them in CUDA_VISIBLE_DEVICES, cannot use.
"""

from __future__ import annotations

import shutil
import subprocess

NVIDIA_SMI = "nvidia-smi"
TIMEOUT_S = 20


def nvidia_gpus() -> int | None:
    """How many GPUs nvidia-smi lists; None when nvidia-smi is not on PATH. A
    nvidia-smi that fails or hangs counts as no GPU."""
    program = shutil.which(NVIDIA_SMI)
    if program is None:
        return None
    try:
        out = subprocess.run([program, "-L"], capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
