"""The job script: launcher/templates/slurm-job.sh.j2 rendered from validated
`JobOptions` and a run directory, and the sbatch command that submits it.

With `gpus > 0` the script is a heterogeneous job (the Ray head + trainer; the rollout
nodes, if any; the learner node with `--gres=gpu:N`); with `gpus == 0` a plain job of
1 + `nodes` nodes whose first node hosts the head and the trainer. What each component
asks Slurm for and each `srun` step's arguments are worked out here; the template only
writes them out. Every node runs
`launcher node --run-dir DIR --role ROLE`; the training settings stay in DIR/spec.yaml.
Every value reaches bash through the template's `q` filter (shlex.quote).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from launcher import __version__
from launcher.cluster.slurm.options import JobOptions, check_run_dir_text
from launcher.contract import EXIT_INTERRUPTED, HEAD, ROLLOUT, SCRIPT_FILE
from launcher.errors import UserError

TEMPLATE = "slurm-job.sh.j2"  # in launcher/templates/ (slurm/job.sh.j2 links to it)
COMMENT = "launcher"  # #SBATCH --comment: how `launcher list` finds our jobs


def template_path() -> Path:
    """The job template: $LAUNCHER_SLURM_TEMPLATE (a site's own copy), else the one
    installed with the package."""
    custom = os.environ.get("LAUNCHER_SLURM_TEMPLATE")
    if custom:
        return Path(custom).expanduser()
    return Path(__file__).resolve().parents[2] / "templates" / TEMPLATE


def template_text() -> str:
    """The template's text; the package's copy through importlib.resources, which also
    reads it from a zipapp (loginpkg.py), where it is no file on disk."""
    if os.environ.get("LAUNCHER_SLURM_TEMPLATE"):
        template = template_path()
        if not template.is_file():
            raise UserError(f"the Slurm job template {template} is missing "
                            "(LAUNCHER_SLURM_TEMPLATE points nowhere)")
        return template.read_text()
    from importlib.resources import files

    try:
        return (files("launcher") / "templates" / TEMPLATE).read_text()
    except OSError:
        raise UserError(f"the Slurm job template {TEMPLATE} is missing from the launcher "
                        "package: a broken installation") from None


def render(options: JobOptions, run_dir: str | Path) -> str:
    """The job script for these options and run directory."""
    import jinja2

    options.validate()
    run_dir = check_run_dir_text(options, run_dir)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=True)
    env.filters["q"] = lambda value: shlex.quote(str(value))
    return env.from_string(template_text()).render(
        version=__version__, comment=COMMENT,
        job_name=options.job_name, time=options.time, signal_s=options.signal_s,
        job_directives=options.job_directives(), components=options.components(),
        steps=steps(options), hetjob=options.hetjob,
        run_dir=run_dir, runtime=options.runtime,
        images={role: options.image_for(role) for role in options.roles} if options.apptainer else {},
        learner_nv=options.learner_nv,
        scratch=options.scratch, modules=options.modules, activate=options.activate,
        unset=options.unset, env=options.env, binds=options.binds,
        exit_interrupted=EXIT_INTERRUPTED,
    )


def steps(options: JobOptions) -> list[dict[str, Any]]:
    """The `srun` steps, head first: their role, srun's arguments and `launcher node`'s
    extra ones. A het job runs one step per component; a plain job runs the head on its
    first node and the rollout nodes on the others."""
    cpus = f"--cpus-per-task={options.cpus_per_node}" if options.cpus_per_node else "--whole"
    spread = ["--ntasks-per-node=1"]
    if not options.hetjob:
        out = [{"role": HEAD, "tail": [], "args": ["--nodes=1", "--ntasks=1", "--relative=0", cpus]}]
        if options.nodes:
            out.append({"role": ROLLOUT, "tail": [], "args": [
                f"--nodes={options.nodes}", f"--ntasks={options.nodes}", *spread, "--relative=1",
                cpus]})
        return out
    out = []
    for comp in options.components():
        nodes = comp["nodes"]
        args = [f"--het-group={comp['group']}", f"--nodes={nodes}", f"--ntasks={nodes}",
                *(spread if comp["role"] == ROLLOUT else []), cpus]
        tail = []
        if comp["gpus"]:
            args.append(f"--gres={options.gres}")
            tail = ["--num-gpus", str(comp["gpus"])]
        out.append({"role": comp["role"], "args": args, "tail": tail})
    return out


def sbatch_command(script: str = SCRIPT_FILE) -> list[str]:
    """sbatch runs in the run directory: the job's working directory and its log
    (job-<id>.log) are there, and no path is spliced into an #SBATCH line."""
    return ["sbatch", "--parsable", script]


def shown_command(run_dir: Path) -> str:
    return f"cd {shlex.quote(str(run_dir))} && {shlex.join(sbatch_command())}"
