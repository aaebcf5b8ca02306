"""launcher/cluster/scratch.py: a node's Ray temp dir is its own, made fresh, and goes
away with the node."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from launcher.cluster import scratch
from launcher.errors import UserError


@pytest.fixture
def short(tmp_path):
    """A base directory short enough for Ray's socket paths (pytest's tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def slurm_env(root, job_id="4242") -> dict[str, str]:
    return {"LAUNCHER_SCRATCH": str(root), "SLURM_JOB_ID": job_id}


def test_temp_dir_is_fresh_private_and_unpredictable(short):
    """Issue 11: the temp dir was /tmp/ray_<job id>_<role><n>, predictable and reused
    when another user had made it first (and left behind 0777)."""
    env = {"TMPDIR": str(short)}
    one, two = scratch.make_scratch("head", env), scratch.make_scratch("head", env)
    try:
        assert one.temp_dir != two.temp_dir
        for made in (one, two):
            assert made.temp_dir.parent == short and made.job_scratch is None
            assert mode(made.temp_dir) == 0o700
            assert os.lstat(made.temp_dir).st_uid == os.getuid()
            longest = f"{made.temp_dir}{scratch.RAY_SOCKET_SUFFIX}"
            assert len(longest.encode()) < scratch.SOCKET_PATH_LIMIT
    finally:
        one.remove()
        two.remove()
    assert not one.temp_dir.exists() and not two.temp_dir.exists()
    assert short.is_dir()  # $TMPDIR itself is not the node's to remove


def test_in_a_slurm_job_the_scratch_dir_is_made_private_and_removed(short):
    old = os.umask(0)
    try:
        made = scratch.make_scratch("rollout", slurm_env(short))
    finally:
        os.umask(old)
    assert made.job_scratch == short / "launcher-4242"
    assert made.temp_dir.parent == made.job_scratch
    assert mode(made.job_scratch) == 0o700 and mode(made.temp_dir) == 0o700
    (made.temp_dir / "session_x").mkdir()  # what Ray leaves
    made.remove()
    assert not made.job_scratch.exists()  # issue 11: /tmp/launcher-<jobid> stayed behind


def test_the_scratch_dir_stays_while_another_node_uses_it(short):
    env = slurm_env(short)
    head, learner = scratch.make_scratch("head", env), scratch.make_scratch("learner", env)
    head.remove()
    assert learner.temp_dir.is_dir()
    learner.remove()
    assert not learner.job_scratch.exists()


def test_a_scratch_dir_others_can_write_is_refused(short):
    existing = short / "launcher-4242"
    existing.mkdir()
    existing.chmod(0o777)
    with pytest.raises(UserError, match="writable by other users"):
        scratch.make_scratch("head", slurm_env(short))
    assert list(existing.iterdir()) == []


def test_a_scratch_dir_of_another_user_is_refused(short, monkeypatch):
    (short / "launcher-4242").mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(UserError, match="belongs to another user"):
        scratch.make_scratch("head", slurm_env(short))


def test_a_linked_scratch_dir_is_refused(short):
    target = short / "elsewhere"
    target.mkdir(mode=0o700)
    (short / "launcher-4242").symlink_to(target)
    with pytest.raises(UserError, match="not a directory"):
        scratch.make_scratch("head", slurm_env(short))


def test_a_temp_dir_that_is_not_private_is_refused_and_removed(short, monkeypatch):
    made = []
    real = scratch.tempfile.mkdtemp

    def loose(**kw):
        path = real(**kw)
        os.chmod(path, 0o777)
        made.append(path)
        return path

    monkeypatch.setattr(scratch.tempfile, "mkdtemp", loose)
    with pytest.raises(UserError, match="writable by other users"):
        scratch.make_scratch("head", {"TMPDIR": str(short)})
    assert made and not os.path.exists(made[0])


def test_a_scratch_path_too_long_for_rays_sockets_falls_back_to_tmp(tmp_path):
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    made = scratch.make_scratch("head", {**slurm_env(deep), "TMPDIR": str(deep)})
    try:
        assert made.temp_dir.parent == scratch.FALLBACK_BASE and made.job_scratch is None
        assert not (deep / "launcher-4242").exists()
    finally:
        made.remove()


def test_outside_slurm_or_without_a_visible_scratch_root_tmpdir_is_used(short):
    made = scratch.make_scratch("head", {"LAUNCHER_SCRATCH": str(short / "absent"),
                                         "SLURM_JOB_ID": "1", "TMPDIR": str(short)})
    try:
        assert made.temp_dir.parent == short and made.job_scratch is None
    finally:
        made.remove()


def test_exported_temp_dir_is_the_tmpdir_of_the_node_and_its_children(short, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(short))
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)  # restored afterwards
    made = scratch.make_scratch("head")
    try:
        made.export()
        child = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
                               capture_output=True, text=True, check=True)
        assert child.stdout.strip() == str(made.temp_dir) == tempfile.gettempdir()
    finally:
        made.remove()
