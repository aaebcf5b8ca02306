"""launcher/cluster/code_snapshot.py: the user's env code copied into a run directory.

Quick: no Ray. The snapshot must be what a node imports (the original may be gone), hold
only code, stay small, and be writable by its owner only whatever the umask.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.cluster import code_snapshot
from launcher.cluster.code_snapshot import CODE_DIR, check_snapshot, ship_code
from launcher.errors import UserError
from launcher.training import envs
from tests.conftest import GYMNASIUM_ENV, REPO

GRIDPKG = REPO / "examples" / "gridpkg"


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "runs" / "job"
    path.mkdir(parents=True)
    return path


def project(root: Path) -> Path:
    """An env file with a helper module next to it, and everything a snapshot leaves out."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "helper.py").write_text("TARGET = 2\n")
    (root / "guess.py").write_text(GYMNASIUM_ENV + "\nfrom helper import TARGET\n")
    (root / "tools").mkdir()
    (root / "tools" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "tools" / "run.sh", 0o755)
    for junk in (".git/objects/x", "__pycache__/guess.cpython-311.pyc", ".mypy_cache/a",
                 ".pytest_cache/b", ".ruff_cache/c", "ray_results/PPO/progress.csv",
                 "node_modules/m/index.js", ".venv/bin/python", "venv/lib/x.py",
                 "virtualenvs/v/x.py", "myenv/pyvenv.cfg", "myenv/lib/site.py", "stale.pyc"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("junk\n")
    return root


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def import_in_fresh_python(env: str, code: str | None, cwd: Path) -> str:
    """Build the env in a new interpreter (as an env runner on another node does) and
    return the file its class came from."""
    script = ("import sys, inspect; from launcher.training import envs\n"
              "env = envs.make_env(sys.argv[1], {}, sys.argv[2] or None)\n"
              "print(inspect.getfile(type(getattr(env, 'env', env))))\n")
    proc = subprocess.run([sys.executable, "-c", script, env, code or ""], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


# --- file.py:Class ---------------------------------------------------------------------
def test_file_env_is_copied_with_its_directory_and_the_spec_points_at_the_copy(tmp_path, run_dir):
    src = project(tmp_path / "proj")
    env, code = ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    snapshot = run_dir / CODE_DIR
    assert code == str(snapshot)
    assert env == f"{snapshot / 'guess.py'}:GuessEnv"
    assert files_under(snapshot) == {"guess.py", "helper.py", "tools/run.sh"}
    assert (snapshot / "__pycache__").is_dir()  # made safe in advance for the nodes' bytecode


def test_relative_file_env_becomes_absolute(tmp_path, run_dir, monkeypatch):
    project(tmp_path / "proj")
    monkeypatch.chdir(tmp_path / "proj")
    env, _ = ship_code("guess.py:GuessEnv", run_dir)
    assert env == f"{run_dir / CODE_DIR / 'guess.py'}:GuessEnv"


def test_the_copy_is_what_imports_after_the_original_is_deleted(tmp_path, run_dir):
    src = project(tmp_path / "proj")
    env, code = ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    shutil.rmtree(src)
    source = import_in_fresh_python(env, code, cwd=tmp_path)
    assert Path(source) == run_dir / CODE_DIR / "guess.py"
    built = envs.make_env(env, {"target": 1}, code)
    built.reset()
    assert built.step(1)[1] == 1.0


def test_code_dir_is_the_import_root_for_a_file_below_it(tmp_path, run_dir):
    root = tmp_path / "proj"
    (root / "envs").mkdir(parents=True)
    (root / "common.py").write_text("SIZE = 4\n")
    (root / "envs" / "guess.py").write_text(GYMNASIUM_ENV + "\nfrom common import SIZE\n")
    env, code = ship_code(f"{root / 'envs' / 'guess.py'}:GuessEnv", run_dir, code_dir=root)
    assert env == f"{run_dir / CODE_DIR / 'envs' / 'guess.py'}:GuessEnv"
    shutil.rmtree(root)
    assert import_in_fresh_python(env, code, cwd=tmp_path).endswith("envs/guess.py")


def test_code_dir_must_hold_the_file(tmp_path, run_dir):
    src = project(tmp_path / "proj")
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="--code .*other does not contain the environment file"):
        ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir, code_dir=tmp_path / "other")
    assert not (run_dir / CODE_DIR).exists()


# --- package.module:Class --------------------------------------------------------------
@pytest.fixture
def gridpkg_outside(tmp_path, monkeypatch):
    """examples/gridpkg copied outside the repository and importable (as with PYTHONPATH)."""
    root = tmp_path / "src"
    shutil.copytree(GRIDPKG, root / "gridpkg")
    monkeypatch.syspath_prepend(str(root))
    for name in [m for m in sys.modules if m == "gridpkg" or m.startswith("gridpkg.")]:
        monkeypatch.delitem(sys.modules, name)
    return root


def test_package_outside_the_environment_is_copied_whole(gridpkg_outside, run_dir, tmp_path):
    env, code = ship_code("gridpkg.env:GridEnv", run_dir)
    assert env == "gridpkg.env:GridEnv" and code == str(run_dir / CODE_DIR)
    assert {"gridpkg/__init__.py", "gridpkg/world.py", "gridpkg/env.py"} <= files_under(Path(code))
    shutil.rmtree(gridpkg_outside)
    assert Path(import_in_fresh_python(env, code, cwd=tmp_path)) == Path(code) / "gridpkg" / "env.py"


def test_code_dir_for_a_package_is_its_import_root_or_the_package(gridpkg_outside, tmp_path):
    (gridpkg_outside / "shared.py").write_text("X = 1\n")
    first = tmp_path / "r1"
    first.mkdir()
    ship_code("gridpkg.env:GridEnv", first, code_dir=gridpkg_outside)
    assert {"shared.py", "gridpkg/world.py"} <= files_under(first / CODE_DIR)
    second = tmp_path / "r2"
    second.mkdir()
    ship_code("gridpkg.env:GridEnv", second, code_dir=gridpkg_outside / "gridpkg")
    assert "gridpkg/world.py" in files_under(second / CODE_DIR)
    with pytest.raises(UserError, match="holds no package or module 'gridpkg'"):
        ship_code("gridpkg.env:GridEnv", tmp_path / "r3", code_dir=tmp_path)


def test_installed_package_and_gymnasium_id_are_not_copied(run_dir):
    spec = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"
    assert ship_code(spec, run_dir) == (spec, None)
    assert ship_code("CartPole-v1", run_dir) == ("CartPole-v1", None)
    assert not (run_dir / CODE_DIR).exists()
    with pytest.raises(UserError, match="--code is for an env given as file.py:Class"):
        ship_code("CartPole-v1", run_dir, code_dir=run_dir)


# --- what is left out, limits, modes ---------------------------------------------------
def test_run_dir_and_output_inside_the_code_dir_are_left_out(tmp_path):
    src = project(tmp_path / "proj")
    (src / "out" / "old-run" / "checkpoints").mkdir(parents=True)
    (src / "out" / "old-run" / "checkpoints" / "big").write_bytes(b"0" * 1000)
    run_dir = src / "out" / "job"
    run_dir.mkdir()
    ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    assert files_under(run_dir / CODE_DIR) == {"guess.py", "helper.py", "tools/run.sh"}


def test_symlink_loop_is_followed_once(tmp_path, run_dir):
    src = project(tmp_path / "proj")
    (src / "tools" / "loop").symlink_to(src)
    ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    assert files_under(run_dir / CODE_DIR) == {"guess.py", "helper.py", "tools/run.sh"}


@pytest.mark.parametrize("limit", ["MAX_BYTES", "MAX_FILES"])
def test_too_much_code_is_refused_with_one_line_that_names_code(tmp_path, run_dir, monkeypatch, limit):
    src = project(tmp_path / "proj")
    monkeypatch.setattr(code_snapshot, limit, 2 if limit == "MAX_FILES" else 100)
    with pytest.raises(UserError) as info:
        ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    message = str(info.value)
    assert "\n" not in message and "--code DIR" in message and str(src) in message
    assert not (run_dir / CODE_DIR).exists() and list(run_dir.iterdir()) == []


def test_modes_are_owner_writable_only_whatever_the_umask(tmp_path, run_dir):
    src = project(tmp_path / "proj")
    old = os.umask(0)
    try:
        ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    finally:
        os.umask(old)
    snapshot = run_dir / CODE_DIR
    for path in [snapshot, *snapshot.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o022 == 0, (path, oct(mode))
    assert stat.S_IMODE((snapshot / "tools" / "run.sh").stat().st_mode) & stat.S_IXUSR
    check_snapshot(run_dir)  # what a node checks before it imports


def test_bytecode_written_on_a_node_under_umask_000_stays_private(tmp_path, run_dir):
    src = project(tmp_path / "proj")
    env, code = ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    script = ("import os, sys; os.umask(0); sys.path.insert(0, sys.argv[1]); import helper")
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", script, code], check=True, timeout=60, env=clean)
    written = list((Path(code) / "__pycache__").glob("helper.*.pyc"))
    assert written, "python wrote no bytecode"
    check_snapshot(run_dir)


def test_check_snapshot_refuses_what_others_can_write(tmp_path, run_dir):
    src = project(tmp_path / "proj")
    ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    os.chmod(run_dir / CODE_DIR / "helper.py", 0o666)
    with pytest.raises(UserError, match="helper.py is writable by other users"):
        check_snapshot(run_dir)


def test_a_second_snapshot_in_the_same_run_dir_is_refused(tmp_path, run_dir):
    src = project(tmp_path / "proj")
    ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)
    with pytest.raises(UserError, match="already holds a code snapshot"):
        ship_code(f"{src / 'guess.py'}:GuessEnv", run_dir)


# --- the --code flag, through the real CLI -------------------------------------------------
def test_prepare_with_code_ships_that_folder(tmp_path, capsys, monkeypatch):
    from tests.conftest import call_cli

    project = tmp_path / "project"
    (project / "envs").mkdir(parents=True)
    (project / "envs" / "mine.py").write_text(
        "from gymnasium.envs.classic_control import CartPoleEnv as Mine\n")
    (project / "notes.txt").write_text("shipped too: --code takes the whole project folder\n")
    monkeypatch.chdir(project)
    code, out, err = call_cli(capsys, "prepare", "--env", "envs/mine.py:Mine", "--code", ".",
                              "--output", str(tmp_path / "runs"), "--name", "r1")
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1])
    spec = (run_dir / "spec.yaml").read_text()
    assert f"env: {run_dir / CODE_DIR / 'envs' / 'mine.py'}:Mine" in spec, spec
    assert (run_dir / CODE_DIR / "notes.txt").is_file()


def test_code_that_does_not_hold_the_env_file_is_one_line(tmp_path, capsys, monkeypatch):
    from tests.conftest import call_cli

    (tmp_path / "envs").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "envs" / "mine.py").write_text(
        "from gymnasium.envs.classic_control import CartPoleEnv as Mine\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = call_cli(capsys, "prepare", "--env", "envs/mine.py:Mine", "--code", "other",
                            "--output", str(tmp_path / "runs"), "--name", "r2")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "does not contain the environment file" in err
    assert not (tmp_path / "runs" / "r2").exists()  # nothing left behind
