"""The node's scratch: a Ray temp dir of its own, created fresh and removed at the end.

Ray keeps its sockets, logs and spilled objects in its temp dir; whoever can write there
can take the node's sockets. So a node never reuses a directory it did not create:

- the job's scratch dir on this node: in a Slurm job `$LAUNCHER_SCRATCH/launcher-$SLURM_JOB_ID`
  (the job script exports LAUNCHER_SCRATCH); created mode 0700 when missing, refused
  (one line, exit 2) when it exists but belongs to another user or others can write it;
- outside Slurm (or when LAUNCHER_SCRATCH is not visible here, as inside a container
  that binds the scratch on /tmp) the base is $TMPDIR, else /tmp;
- Ray's temp dir: `mkdtemp` in that base (unpredictable name, owned by the user, 0700),
  checked again once made.

Ray's socket paths must stay under 107 bytes; when the scratch path is too long for
them, the temp dir is made under /tmp instead. The node makes the temp dir the TMPDIR of
itself and of every process it starts (`NodeScratch.export()`), so the temporary files of
Ray's workers and of the trainer land there too. `NodeScratch.remove()` deletes the temp
dir and then the job's scratch dir when nothing else is left in it (another node of the
same job on this machine may still use it).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import UserError
from launcher.files import check_trusted, make_private_dir

# Ray's longest socket path under its temp dir, with the longest date and pid it names.
RAY_SOCKET_SUFFIX = "/session_2026-11-25_09-15-28_123456_4194304/sockets/plasma_store"
SOCKET_PATH_LIMIT = 107
FALLBACK_BASE = Path("/tmp")


@dataclass
class NodeScratch:
    """Ray's temp dir for this node, and the job's scratch dir it lies in (if any)."""

    temp_dir: Path
    job_scratch: Path | None = None

    def export(self) -> None:
        """Make the temp dir this process's and its children's TMPDIR, so what they leave
        there goes with it."""
        os.environ["TMPDIR"] = str(self.temp_dir)
        tempfile.tempdir = None  # forget the directory Python's tempfile chose before

    def remove(self) -> None:
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        if self.job_scratch is not None:
            try:
                self.job_scratch.rmdir()
            except OSError:  # not empty: another node of the job, or gone already
                pass


def job_scratch_dir(env: dict[str, str]) -> Path | None:
    """`$LAUNCHER_SCRATCH/launcher-$SLURM_JOB_ID` where both are set and the scratch root
    exists on this machine; None elsewhere."""
    root, job_id = env.get("LAUNCHER_SCRATCH"), env.get("SLURM_JOB_ID")
    if not root or not job_id or not Path(root).is_dir():
        return None
    return Path(root) / f"launcher-{job_id}"


def fits_ray_sockets(base: Path, prefix: str) -> bool:
    """Ray's sockets under a mkdtemp(prefix=prefix, dir=base) stay under the limit."""
    longest = f"{base}/{prefix}{'x' * 8}{RAY_SOCKET_SUFFIX}"
    return len(longest.encode()) < SOCKET_PATH_LIMIT


def check_private(path: Path, what: str) -> None:
    """A real directory (not a link) of this user's that no one else can write, else a
    one-line refusal."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise UserError(f"cannot use {what} {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(f"refusing {what} {path}: not a directory (a link or a file)")
    check_trusted(path)


def private_dir(path: Path, what: str) -> None:
    """Create `path` mode 0700 (whatever the umask), or take the one that exists only
    when it is this user's and no one else can write it."""
    if os.path.lexists(path):
        check_private(path, what)
    try:
        make_private_dir(path)
    except OSError as exc:
        raise UserError(f"cannot create {what} {path}: {exc.strerror}") from None


def make_scratch(role: str, env: dict[str, str] | None = None) -> NodeScratch:
    """Create this node's Ray temp dir; see the module docstring for where."""
    env = os.environ if env is None else env
    prefix = f"ray{role[0]}"
    job_scratch = job_scratch_dir(env)
    if job_scratch is not None and fits_ray_sockets(job_scratch, prefix):
        private_dir(job_scratch, "scratch dir")
        base = job_scratch
    else:
        job_scratch = None
        base = Path(env.get("TMPDIR") or FALLBACK_BASE)
        if not base.is_dir() or not fits_ray_sockets(base, prefix):
            base = FALLBACK_BASE
    try:
        temp_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    except OSError as exc:
        raise UserError(f"cannot create Ray's temp dir in {base}: {exc.strerror}") from None
    scratch = NodeScratch(temp_dir, job_scratch)
    try:
        check_private(temp_dir, "Ray temp dir")
    except UserError:
        scratch.remove()
        raise
    return scratch
