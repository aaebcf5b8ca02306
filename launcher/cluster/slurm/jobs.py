"""Looking after submitted jobs: `launcher status`, `logs` and `cancel`.

A job is named by its Slurm id or by its run directory (whose slurm-job-ids file names
the newest submission). What Slurm knows comes from commands.py; what the run has done
so far from the run directory itself (the head's done.json, progress.csv).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from launcher.cluster.slurm.commands import ACTIVE_STATES, Slurm, recorded_job_ids
from launcher.contract import RunPaths, job_log_name
from launcher.errors import UserError

JOB_ID = re.compile(r"[0-9]+(\+[0-9]+)?")
GRACE_S = 90  # `launcher cancel`: seconds for a running job to stop by itself


def resolve_job(job: str) -> tuple[str, Path | None]:
    """A job id, or a run directory (its newest submission)."""
    text = str(job).strip()
    if JOB_ID.fullmatch(text):
        return text.partition("+")[0], None
    path = Path(text).expanduser()
    ids = recorded_job_ids(path) if path.is_dir() else []
    if ids:
        return ids[-1], path.resolve()
    raise UserError(f"{job!r} is neither a Slurm job id nor a run directory submitted with "
                    "`launcher submit`")


def active_job(run_dir: Path, slurm: Slurm | None = None) -> str | None:
    """The run dir's newest job when Slurm still queues or runs it."""
    ids = recorded_job_ids(run_dir)
    if not ids:
        return None
    try:
        info = (slurm or Slurm()).show(ids[-1])
    except UserError:
        return None  # no Slurm here: nothing to protect
    return ids[-1] if info and info.get("JobState") in ACTIVE_STATES else None


def log_path(info: dict[str, str], job: str, run_dir: Path | None) -> Path:
    """Where the job's log is: scontrol's StdOut, else RUN_DIR/job-<id>.log."""
    out = info.get("StdOut")
    if out:
        return Path(out)
    base = run_dir or (Path(info["WorkDir"]) if info.get("WorkDir") else None)
    if base is None:
        raise UserError(f"cannot tell where job {job} writes its log")
    return base / job_log_name(job)


def progress_summary(run_dir: Path) -> str | None:
    """The newest iteration in the run's progress table, or None before the first."""
    from launcher.results.tables import read_run

    try:
        curve = read_run(run_dir)
    except (UserError, OSError, ValueError):
        return None
    if not curve.iterations:
        return None
    ret = curve.returns[-1]
    shown = "-" if ret is None else f"{ret:.1f}"
    return f"iteration {curve.iterations[-1]}, mean return {shown}, {curve.env_steps[-1]} env steps"


def trainer_summary(run_dir: Path) -> str | None:
    """How the head's trainer ended (its done.json), or None while it runs."""
    done = RunPaths(run_dir).done
    if not done.is_file():
        return None
    try:
        marker = json.loads(done.read_text())
        return f"exit {marker.get('status')}: {marker.get('reason')}"
    except (OSError, ValueError, AttributeError):
        return None


def status_lines(job: str, slurm: Slurm | None = None) -> list[tuple[str, str]]:
    """`launcher status`: (label, value) pairs from Slurm's record and the run dir."""
    slurm = slurm or Slurm()
    job_id, run_dir = resolve_job(job)
    info = slurm.record(job_id)
    run_dir = run_dir or (Path(info["WorkDir"]) if info.get("WorkDir") else None)
    reason = info.get("Reason")
    lines = [("job", f"{job_id} ({info.get('JobName', '?')})"),
             ("state", info.get("JobState", "?") + (
                 f" ({reason})" if reason not in (None, "", "None") else "")),
             ("exit code", info.get("ExitCode", "?")),
             ("time", f"{info.get('RunTime', '?')} of {info.get('TimeLimit', '?')}"),
             ("nodes", info.get("NodeList", "?"))]
    if info.get("Restarts") not in (None, "0"):
        lines.append(("restarts", info["Restarts"]))
    if run_dir is not None:
        lines.append(("run dir", str(run_dir)))
        for label, text in (("trainer", trainer_summary(run_dir)),
                            ("progress", progress_summary(run_dir))):
            if text:
                lines.append((label, text))
    try:
        lines.append(("log", str(log_path(info, job_id, run_dir))))
    except UserError:
        pass
    return lines


def read_from(path: Path, offset: int) -> tuple[str, int]:
    """The text of `path` after `offset`, and the new offset."""
    with open(path, errors="replace") as fh:
        fh.seek(offset)
        return fh.read(), fh.tell()


def log_chunks(job: str, follow: bool = False, slurm: Slurm | None = None, poll_s: float = 1.0):
    """The log's text; with `follow`, new text as it arrives until the job ends."""
    slurm = slurm or Slurm()
    job_id, run_dir = resolve_job(job)
    info = slurm.record(job_id)
    path = log_path(info, job_id, run_dir)
    offset = 0
    while True:
        if path.is_file():
            text, offset = read_from(path, offset)
            if text:
                yield text
        elif not follow:
            state = info.get("JobState", "")
            raise UserError(f"no log yet at {path} (job {job_id} is {state or 'unknown'})")
        if not follow:
            return
        current = slurm.show(job_id)
        if current is None or current.get("JobState") not in ACTIVE_STATES:
            if path.is_file():  # what was written while we looked
                rest, offset = read_from(path, offset)
                if rest:
                    yield rest
            return
        time.sleep(poll_s)


def cancel(job: str, slurm: Slurm | None = None, timeout_s: float = 120,
           grace_s: float = GRACE_S) -> tuple[str, str]:
    """Stop a job and wait until Slurm has ended it.

    A running job is asked first: SIGTERM to its job script alone (`scancel --batch`),
    which has the head checkpoint, lets the other nodes leave and clean up, and cancels
    the job itself. A plain scancel signals every process of every step at once,
    Apptainer's squashfuse included, whose image mount then vanishes under the trainer.
    Only when the job has not ended after `grace_s` (or is not running yet) comes scancel.
    """
    slurm = slurm or Slurm()
    job_id, _ = resolve_job(job)
    info = slurm.record(job_id)
    if info.get("JobState") not in ACTIVE_STATES:
        return job_id, f"already ended ({info.get('JobState')})"
    if info.get("JobState") == "RUNNING":
        slurm.run("scancel", "--batch", "--signal=TERM", job_id, check=False)
        final = slurm.wait_gone(job_id, timeout_s=grace_s)
        if final not in ACTIVE_STATES:
            return job_id, final
    slurm.cancel(job_id)
    final = slurm.wait_gone(job_id, timeout_s=timeout_s)
    if final in ACTIVE_STATES:
        return job_id, f"still {final} after {timeout_s:.0f} s; Slurm is ending it"
    return job_id, final
