"""The one wrapper around Slurm's commands (sbatch, squeue, scontrol, sacct, scancel),
and the run directory's record of the jobs submitted from it (slurm-job-ids).

Every command goes through `Slurm.run`: argument lists, never a shell; Slurm's own
error text reaches the user verbatim; a machine without the command gets one line
(MissingTool). Tests swap `runner` for a recorder, or put fake commands on PATH.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from launcher.cluster.slurm.render import COMMENT, sbatch_command
from launcher.contract import SCRIPT_FILE, RunPaths
from launcher.errors import MissingTool, UserError

ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING",
                 "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}
SCONTROL_PAIR = re.compile(r"(?:^|\s)([A-Za-z:/]+)=(.*?)(?=\s[A-Za-z:/]+=|\Z)")


class SlurmError(UserError):
    """A Slurm command failed; the message is Slurm's own text."""


def missing(command: str) -> MissingTool:
    return MissingTool(f"{command} not found: run this on a machine with Slurm's commands "
                       "(a login node), or put them on PATH")


def require_sbatch() -> None:
    """Before anything is written for a job: this machine can submit it."""
    if shutil.which("sbatch") is None:
        raise missing("sbatch")


def recorded_job_ids(run_dir: str | Path) -> list[str]:
    """The Slurm jobs submitted from a run dir, oldest first (none: never submitted)."""
    path = RunPaths(run_dir).job_ids
    if not path.is_file():
        return []
    return [x.strip() for x in path.read_text().splitlines() if x.strip()]


def parse_scontrol(line: str) -> dict[str, str]:
    """`scontrol show job --oneliner`: Key=Value pairs separated by spaces; values
    may hold spaces (WorkDir, Command), so split on ' Key=' boundaries."""
    out: dict[str, str] = {}
    for match in SCONTROL_PAIR.finditer(line.strip()):
        out.setdefault(match.group(1), match.group(2))
    return out


class Slurm:
    """Runs Slurm's commands. `runner` is subprocess.run's signature; tests replace it."""

    def __init__(self, runner=None, timeout: float = 60):
        self.runner = runner or subprocess.run
        self.timeout = timeout

    def run(self, *argv: str, cwd: str | Path | None = None, check: bool = True
            ) -> subprocess.CompletedProcess:
        argv = [str(a) for a in argv]
        try:
            proc = self.runner(argv, cwd=cwd, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise missing(argv[0]) from None
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{argv[0]} did not answer within {self.timeout:g} s") from None
        if check and proc.returncode != 0:
            text = (proc.stderr or proc.stdout or "").strip()
            raise SlurmError(f"{argv[0]} failed: {text or f'exit status {proc.returncode}'}")
        return proc

    # --- submission ---------------------------------------------------------------------
    def submit(self, run_dir: Path, script: str = SCRIPT_FILE) -> str:
        """sbatch the run dir's script and record the job id. When sbatch fails, the
        run dir stays as it is and `launcher submit --resume RUN_DIR` submits it again."""
        try:
            out = self.run(*sbatch_command(script), cwd=run_dir).stdout.strip()
        except SlurmError as exc:
            raise SlurmError(f"{exc} (nothing was submitted; to try again: "
                             f"launcher submit --resume {shlex.quote(str(run_dir))})") from None
        job_id = out.split(";")[0].strip()  # --parsable: "id" or "id;cluster"
        if not (job_id.isascii() and job_id.isdigit()):
            raise SlurmError(f"sbatch answered {out!r}, not a job id")
        with open(RunPaths(run_dir).job_ids, "a") as fh:
            fh.write(job_id + "\n")
        return job_id

    # --- looking at jobs ----------------------------------------------------------------
    def show(self, job: str) -> dict[str, str] | None:
        """scontrol's record of the job (the first component of a het job), or None
        when the controller no longer knows it."""
        proc = self.run("scontrol", "show", "job", "--oneliner", job, check=False)
        if proc.returncode != 0:
            if "Invalid job id" in (proc.stderr or ""):
                return None
            raise SlurmError(f"scontrol failed: {(proc.stderr or proc.stdout).strip()}")
        line = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""
        return parse_scontrol(line)

    def accounting(self, job: str) -> dict[str, str] | None:
        """sacct's record (for jobs the controller forgot); None without accounting."""
        fields = ["JobID", "JobName", "State", "ExitCode", "WorkDir", "Elapsed", "NodeList"]
        proc = self.run("sacct", "-n", "-P", "-X", "-j", job, "-o", ",".join(fields), check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            return None
        values = proc.stdout.strip().splitlines()[0].split("|")
        record = dict(zip(fields, values, strict=False))
        return {"JobId": record["JobID"], "JobName": record["JobName"],
                "JobState": record["State"].split()[0], "ExitCode": record["ExitCode"],
                "WorkDir": record["WorkDir"], "RunTime": record["Elapsed"],
                "NodeList": record["NodeList"]}

    def record(self, job: str) -> dict[str, str]:
        info = self.show(job) or self.accounting(job)
        if info is None:
            raise UserError(f"Slurm does not know job {job} (any more): its results are in "
                            "its run directory")
        return info

    def queue(self) -> list[dict[str, str]]:
        """This user's jobs that the launcher submitted (het components merged)."""
        columns = [("JobId", "%i"), ("Name", "%j"), ("State", "%T"), ("TimeUsed", "%M"),
                   ("TimeLimit", "%l"), ("NumNodes", "%D"), ("Reason", "%R"), ("Comment", "%k"),
                   ("WorkDir", "%Z")]  # WorkDir last: the only field that may hold a '|'
        fields = [name for name, _ in columns]
        fmt = "|".join(code for _, code in columns)
        proc = self.run("squeue", "--me", "--noheader", "-o", fmt)
        jobs: dict[str, dict[str, str]] = {}
        for line in proc.stdout.splitlines():
            values = [v.strip() for v in line.split("|", len(fields) - 1)]
            if len(values) < len(fields):
                continue
            row = dict(zip(fields, values, strict=False))
            if row["Comment"] != COMMENT:
                continue
            leader, _, _ = row["JobId"].partition("+")
            if leader in jobs:
                prev = jobs[leader]
                prev["NumNodes"] = str(int(prev["NumNodes"] or 0) + int(row["NumNodes"] or 0))
                continue
            row["JobId"] = leader
            jobs[leader] = row
        return list(jobs.values())

    def cancel(self, job: str) -> None:
        self.run("scancel", job)

    def wait_gone(self, job: str, timeout_s: float = 120, poll_s: float = 1.0) -> str:
        """Poll until the job is no longer active; return its final state."""
        deadline = time.monotonic() + timeout_s
        state = "UNKNOWN"
        while time.monotonic() < deadline:
            info = self.show(job)
            if info is None:
                return "GONE"
            state = info.get("JobState", "UNKNOWN")
            if state not in ACTIVE_STATES:
                return state
            time.sleep(poll_s)
        return state
