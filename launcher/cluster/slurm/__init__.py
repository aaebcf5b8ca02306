"""Slurm: a training job rendered from typed options into one bash script, submitted
with sbatch, and looked after (status, logs, cancel).

    site.py      site profiles, and the checks every value passes (flag, profile, file)
    options.py   JobOptions: flags > site profile > defaults; slurm.yaml in the run dir
    render.py    the job template (launcher/templates/slurm-job.sh.j2) and the sbatch command
    commands.py  the one wrapper around sbatch / squeue / scontrol / sacct / scancel
    submit.py    `launcher submit` / `render`: plan a job (run dir, script, options)
    images.py    each role's image: it exists, and no CPU-only torch on a GPU learner (labels)
    inimage.py   the checks that need torch and Ray, run in the job's image (login nodes)
    loginpkg.py  the launcher as one zipapp for a login node without torch or Ray
    jobs.py      `launcher status` / `logs` / `cancel`

May import: launcher.cluster.jobdir, launcher.results, launcher.training,
launcher.contract, launcher.errors, launcher.files. The CLI uses the names below.
"""

from launcher.cluster.slurm.commands import Slurm, SlurmError, parse_scontrol
from launcher.cluster.slurm.jobs import cancel, log_chunks, status_lines
from launcher.cluster.slurm.options import JobOptions, job_options
from launcher.cluster.slurm.render import render, shown_command
from launcher.cluster.slurm.site import SiteProfile, load_site
from launcher.cluster.slurm.submit import PlannedJob, plan

__all__ = [
    "JobOptions", "PlannedJob", "SiteProfile", "Slurm", "SlurmError", "cancel", "job_options",
    "load_site", "log_chunks", "parse_scontrol", "plan", "render", "shown_command",
    "status_lines",
]
