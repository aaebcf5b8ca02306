"""The user's env code, copied into a cluster job's run directory: what every node imports.

A cluster job's nodes see the run directory (at the same absolute path everywhere) and
the image, nothing else of the machine the job was started from. So when `--env` names
code that lives outside the image, `ship_code()` copies it into RUN_DIR/code and
rewrites the settings to import it from there:

    file.py:Class           the file's directory (or `--code DIR`, which must hold the
                            file) becomes RUN_DIR/code; env -> RUN_DIR/code/.../file.py:Class
    package.module:Class    the top-level package (or module file) becomes
                            RUN_DIR/code/package; with `--code DIR`, DIR is the import
                            root that holds the package (or DIR is the package itself).
                            A package installed in the Python environment (site-packages,
                            as in the image) is not copied.

The settings' `code` then names RUN_DIR/code by its absolute path: launcher/training/envs.py
puts it first on `sys.path` in the driver and in every env runner before it imports the
entry point (the env creator registered with RLlib carries it to other nodes). spec.yaml
records the snapshot, not the user's path, so editing or deleting the original after
submission changes nothing, and a later `--resume` imports the same snapshot.

Version-control data, caches, virtual environments and results are left out; above
MAX_BYTES or MAX_FILES the copy is refused with one line that names `--code`. Files are
created writable by the user only, whatever the umask, and every package directory gets
an empty `__pycache__` of the same mode, so the bytecode Python writes on the nodes never
lands in a directory that others could write to (`check_snapshot` verifies all of it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import site
import stat
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from launcher.contract import CODE_DIR
from launcher.errors import UserError
from launcher.files import FILE_MODE, check_trusted

MAX_BYTES = 50 * 1024 * 1024
MAX_FILES = 5000
DIR_MODE = 0o750
EXEC_MODE = 0o750
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache",
                       ".ruff_cache", "ray_results", "node_modules", ".venv", "venv",
                       "virtualenvs"})
SKIP_SUFFIXES = (".pyc", ".pyo")
NOT_SHIPPED = frozenset({"launcher"})  # packages the image always has


@dataclass
class Plan:
    """What to copy: `source` (a directory, or one module file) to `into` (relative to
    RUN_DIR/code); `file`: for file.py:Class, the file's path relative to RUN_DIR/code."""

    source: Path
    into: str = ""
    file: str | None = None


def ship_code(env: str, run_dir: str | Path, code_dir: str | Path | None = None
              ) -> tuple[str, str | None]:
    """Copy the env's code into RUN_DIR/code; return (env, code) for the job's settings.

    A Gymnasium id, or a module importable from the installed environment with no
    `code_dir`, comes back unchanged with code None (nothing to copy).
    """
    run_dir = Path(run_dir).resolve()
    plan = plan_copy(env, code_dir)
    if plan is None:
        return env, None
    target = run_dir / CODE_DIR
    if target.exists():
        raise UserError(f"{target} already exists: the run directory already holds a code snapshot")
    files = collect(plan.source, skip=run_dir)
    tmp = run_dir / f".{CODE_DIR}.{secrets.token_hex(4)}.tmp"
    try:
        make_dir(tmp)
        write_tree(files, tmp / plan.into)
        os.rename(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot copy the env's code from {plan.source} into {target}: "
                        f"{exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if plan.file is not None:
        env = f"{target / plan.file}:{env.rpartition(':')[2]}"
    return env, str(target)


# --- what to copy --------------------------------------------------------------------
def plan_copy(env: str, code_dir: str | Path | None) -> Plan | None:
    """Decide what `env` needs copied (None: nothing). An env module named without
    `:attr` (a PettingZoo env module, training/multiagent.py) is shipped as a module is."""
    target, sep, _ = env.rpartition(":")
    if not sep and _env_module(env, code_dir):
        target, sep = env, ":"
    if not sep:
        if code_dir is not None:
            raise UserError(f"--code is for an env given as file.py:Class or package.module:Class, "
                            f"not the Gymnasium id {env!r}")
        return None
    code = None
    if code_dir is not None:
        code = Path(code_dir).expanduser().resolve()
        if not code.is_dir():
            raise UserError(f"--code {code_dir}: not a directory")
    if target.endswith(".py") or "/" in target:
        return plan_file(target, code)
    return plan_module(target, code)


# A dotted module name (training/envs.py's is_env_module, which also rules out Gymnasium
# ids; no Gymnasium id has this shape). Checked here without importing Gymnasium, which a
# login node lacks.
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def _env_module(env: str, code_dir) -> bool:
    """A dotted module name, importable here or (with --code) meant to come from there."""
    found = code_dir is not None or importlib.util.find_spec(env.split(".")[0]) is not None
    return bool(MODULE_NAME.fullmatch(env)) and found


def plan_file(target: str, code: Path | None) -> Plan:
    path = Path(target).expanduser().resolve()
    if not path.is_file():
        raise UserError(f"environment file not found: {target}")
    root = code or path.parent
    if not path.is_relative_to(root):
        raise UserError(f"--code {root} does not contain the environment file {path}")
    return Plan(source=root, file=path.relative_to(root).as_posix())


def plan_module(target: str, code: Path | None) -> Plan | None:
    top = target.split(".")[0]
    if code is not None:
        if (code / top).is_dir() or (code / f"{top}.py").is_file():
            return Plan(source=code)
        if code.name == top:
            return Plan(source=code, into=top)
        raise UserError(f"--code {code} holds no package or module {top!r}")
    found = module_location(top)
    if top in NOT_SHIPPED or installed(found):
        return None
    return Plan(source=found, into=found.name if found.is_dir() else "")


def module_location(top: str) -> Path:
    """The directory of top-level package `top`, or its file for a plain module."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        raise UserError(f"cannot find module {top!r}: {exc}") from None
    if spec is None:
        raise UserError(f"cannot find module {top!r}: it is not importable here")
    locations = list(spec.submodule_search_locations or [])
    if len(locations) > 1:
        raise UserError(f"package {top!r} is spread over {len(locations)} directories; "
                        "pass --code DIR with the one to ship")
    if locations:
        return Path(locations[0]).resolve()
    if not spec.origin or not Path(spec.origin).is_file():
        return Path(spec.origin or top)  # built-in / frozen: part of Python
    return Path(spec.origin).resolve()


def installed(path: Path) -> bool:
    """Whether `path` lies in this Python's installation (stdlib, site-packages)."""
    if not path.is_absolute():
        return True
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(getattr(site, "getsitepackages", list)())
    roots.add(site.getusersitepackages())
    return any(path.is_relative_to(Path(root).resolve()) for root in roots if root)


# --- copying ---------------------------------------------------------------------------
def skipped_dir(path: Path) -> bool:
    return path.name in SKIP_DIRS or (path / "pyvenv.cfg").is_file()


def collect(source: Path, skip: Path) -> list[tuple[Path, Path]]:
    """(file, path relative to `source`) for everything to copy; refuses above the limits
    as soon as they are passed. A directory entry is (dir, rel) with rel ending in '/'."""
    if source.is_file():
        return [(source, Path(source.name))]
    excluded = {skip, skip.parent} if skip.parent != source else {skip}
    out: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    size = count = 0
    for top, dirs, names in os.walk(source, followlinks=True):
        here = Path(top)
        seen.add(here.resolve())
        dirs[:] = sorted(d for d in dirs if not skipped_dir(here / d)
                         and (here / d).resolve() not in excluded | seen)
        rel = here.relative_to(source)
        out.append((here, rel))
        for name in sorted(names):
            path = here / name
            if name.endswith(SKIP_SUFFIXES) or not path.is_file():
                continue
            size += path.stat().st_size
            count += 1
            out.append((path, rel / name))
            if size > MAX_BYTES or count > MAX_FILES:
                raise too_big(source)
    return out


def too_big(source: Path) -> UserError:
    return UserError(f"the env's code in {source} is over {MAX_BYTES // 2**20} MB or "
                     f"{MAX_FILES} files, too much to copy with the job: pass --code DIR with "
                     "the directory that holds only the env's code")


def make_dir(path: Path) -> None:
    os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE)  # mkdir's mode is masked by the umask; this one is not


def write_tree(files: list[tuple[Path, Path]], dest: Path) -> None:
    """Copy `files` under `dest` with modes that do not depend on the umask; an empty
    `__pycache__` (same modes) next to every Python file."""
    if not dest.exists():
        make_dir(dest)
    for source, rel in files:
        out = dest / rel
        if source.is_dir():
            if rel != Path("."):
                make_dir(out)
            continue
        mode = EXEC_MODE if os.stat(source).st_mode & stat.S_IXUSR else FILE_MODE
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as dst, open(source, "rb") as src:
            shutil.copyfileobj(src, dst)
        cache = out.parent / "__pycache__"
        if out.suffix == ".py" and not cache.exists():
            make_dir(cache)


def check_snapshot(run_dir: str | Path) -> None:
    """Refuse a code snapshot that another user owns or could change (a node imports it)."""
    root = Path(run_dir) / CODE_DIR
    if not root.exists():
        return
    check_trusted(root)
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            check_trusted(Path(top) / name)
