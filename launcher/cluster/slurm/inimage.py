"""The checks that need the training stack, run inside the job's image before sbatch.

A login node has Slurm's commands and Apptainer but often neither torch nor Ray (see
loginpkg.py). With `--runtime apptainer`, whatever needs them (the env is built once, the
RLlib config is validated, the run directory is prepared: jobdir.prepare_job) runs in the
SIF the nodes will run, with the job's binds and site variables:

    apptainer exec --cleanenv [--bind ...] IMAGE python -m launcher.cluster.slurm.inimage

The request (YAML on stdin) holds the validated training settings and the job's shape;
nothing reaches a shell. The answer is one JSON line; a mistake is the same one line
(`error: ...`, exit 2) as on a machine with the stack, passed on unchanged.

The checks run here instead (as before) with `--runtime none`, or where Apptainer or the
image is missing but the stack is installed (a laptop rendering a script).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from launcher.contract import HEAD
from launcher.errors import MissingTool, UserError

ANSWER = "launcher-inimage: "
STACK = ("ray", "gymnasium")
TIMEOUT_S = 900


def stack_here() -> bool:
    """Ray and Gymnasium are installed here."""
    for name in STACK:
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def apptainer_command() -> str | None:
    return shutil.which("apptainer") or shutil.which("singularity")


def runs_in_image(options) -> bool:
    """Where the checks run for these JobOptions: True in the image, False here; one line
    when neither can (MissingTool, exit 4)."""
    image = options.image_for(HEAD) if options.apptainer else None
    if image and apptainer_command() is not None \
            and ("://" in image or Path(image).expanduser().is_file()):
        return True
    if stack_here():
        return False
    if options.apptainer:
        why = "apptainer is not on PATH" if apptainer_command() is None else f"no such file: {image}"
        raise MissingTool(f"the job's checks need Ray and torch, which are not installed here, or "
                          f"Apptainer to run them in the image ({why})")
    raise MissingTool("Ray and torch are not installed here, and --runtime none runs the nodes "
                      "in this environment: use --runtime apptainer --image FILE.sif, or install "
                      "the launcher with its training stack (`make venv`)")


def existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def request_paths(request: dict[str, Any]) -> list[str]:
    """Host paths the image must see: the output directory (its nearest existing parent:
    it may not exist yet), the directory of an env file given as a path, a run dir."""
    if request.get("run_dir"):
        return [str(Path(request["run_dir"]).parent)]
    settings = request["settings"]
    paths = [str(existing_ancestor(Path(settings["output"])))]
    module, sep, _ = str(settings.get("env", "")).rpartition(":")
    if sep and module.endswith(".py") and Path(module).expanduser().is_file():
        paths.append(str(Path(module).expanduser().resolve().parent))
    return paths


def binds_for(request: dict[str, Any], options) -> list[str]:
    """--bind arguments: the job's binds and the request's paths."""
    binds = list(options.binds)
    paths = request_paths(request)
    for path in paths:
        if path != "/" and not any(b.split(":")[0] == path for b in binds):
            binds.append(path)
    return [arg for bind in binds for arg in ("--bind", bind)]


def run_in_image(options, request: dict[str, Any], runner=None) -> dict[str, Any]:
    """Send `request` to this module's `main` in the image; its answer, or its one-line
    error raised again here."""
    import yaml

    image = options.image_for(HEAD)
    argv = [apptainer_command() or "apptainer", "exec", "--cleanenv", *binds_for(request, options),
            image, "python", "-m", "launcher.cluster.slurm.inimage"]
    env = {**os.environ, **{f"APPTAINERENV_{k}": v for k, v in options.env.items()}}
    try:
        proc = (runner or subprocess.run)(argv, input=yaml.safe_dump(request), capture_output=True,
                                          text=True, timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise UserError(f"the checks in {image} did not finish within {TIMEOUT_S} s") from None
    for line in reversed(proc.stdout.splitlines()):
        if proc.returncode == 0 and line.startswith(ANSWER):
            return json.loads(line[len(ANSWER):])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    if errors:
        error = MissingTool if proc.returncode == MissingTool.exit_code else UserError
        raise error(errors[-1][len("error: "):])
    tail = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
    raise UserError(f"the checks in {image} failed (exit {proc.returncode}): {tail}")


def request_for(action: str, settings, shape: dict[str, Any] | None = None, **extra) -> dict[str, Any]:
    """A request for `main`: the settings with an absolute output (the image sees the same
    paths through the binds)."""
    data = settings.to_dict()
    data["output"] = str(Path(settings.output).expanduser().resolve())
    return {"action": action, "settings": data, "shape": shape or {}, **extra}


# --- inside the image ------------------------------------------------------------------------
def answer(request: dict[str, Any]) -> dict[str, Any]:
    """What the image answers: `prepare` reserves and fills the run dir; `check` only
    validates and names the run dir; `load` reads a submitted run dir back."""
    from launcher.cluster import jobdir
    from launcher.training.rundir import run_dir_name
    from launcher.training.settings import TrainSettings
    from launcher.training.sweep_record import check_trials
    from launcher.training.sweep_start import SweepPlan

    action = request.get("action")
    if action == "load":
        return {"run_dir": str(jobdir.load_job(request["run_dir"]).path)}
    settings = TrainSettings.from_dict(request["settings"], where="the training options")
    shape = request["shape"]
    sweep = SweepPlan.from_dict(request["sweep"]) if request.get("sweep") else None
    if action == "prepare":
        job = jobdir.prepare_job(settings, **shape, cpus_per_node=request.get("cpus_per_node"),
                                 job_name=request.get("job_name"), sweep=sweep)
        return {"run_dir": str(job.path)}
    if action == "check":
        placement = jobdir.place_settings(settings, bool(request.get("hetjob")),
                                          shape.get("learner_gpus", 0))
        if sweep is not None:
            check_trials(sweep.trials, placement=placement)
        return {"run_dir": str(Path(settings.output) / run_dir_name(settings))}
    raise UserError(f"unknown request {action!r} (the image's launcher is another version?)")


def main() -> int:
    import yaml

    try:
        request = yaml.safe_load(sys.stdin.read())
        result = answer(request)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(ANSWER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
