"""Files of a run directory written safely and read back only when they can be trusted.

A run directory often sits on a shared filesystem, and a cluster node executes what
its files say (spec.yaml names the env code it imports; job.sh is a script). So:

- every file is written aside and renamed into place (a reader on another node sees
  all of it or nothing), with its mode set explicitly, whatever the umask: writable by
  its owner only;
- before a file or directory is trusted it must belong to the user reading it and be
  writable by no one else; otherwise one line says why and nothing runs.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from launcher.errors import UserError

FILE_MODE = 0o640
SECRET_MODE = 0o600


def write_atomic(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Write aside, then rename: a reader on shared storage sees all or nothing."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the mode given to open() is masked by the umask
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def make_private_dir(path: Path, mode: int = 0o700) -> Path:
    """Create a directory (and its parents) and set its mode whatever the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        check_trusted(path)  # made earlier: only if it is ours and no one else's
    os.chmod(path, mode)
    return path


def check_trusted(path: Path, secret: bool = False) -> None:
    """Refuse a file or directory that another user owns or may write (a secret: that
    anyone else may read), with one line that says why."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{path} is missing") from None
    uid = os.geteuid()
    if info.st_uid != uid:
        raise UserError(f"{path} belongs to another user (uid {info.st_uid}, not {uid}); "
                        "refusing to trust it")
    others = 0o077 if secret else 0o022
    if stat.S_IMODE(info.st_mode) & others:
        what = "readable or writable" if secret else "writable"
        raise UserError(f"{path} is {what} by other users (mode "
                        f"{stat.S_IMODE(info.st_mode):o}); chmod go-w it (or remove it) first")

