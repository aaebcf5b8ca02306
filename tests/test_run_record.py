"""launcher/training/run_record.py: run.json, how a run was made; `launcher results --record`."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from launcher.training import run_record
from launcher.training.settings import TrainSettings
from tests.conftest import call_cli


def test_a_seed_is_chosen_and_said_when_none_is_given():
    said = []
    settings = TrainSettings()
    seed = run_record.choose_seed(settings, say=said.append)
    assert settings.seed == seed and 0 <= seed < 2**31
    assert said == [f"seed {seed} (chosen; --seed {seed} repeats it)"]
    given = TrainSettings(seed=5)
    assert run_record.choose_seed(given, say=said.append) == 5 and len(said) == 1


def test_versions_and_image():
    found = run_record.versions()
    assert found["ray"] == "2.60.0" and found["gymnasium"] and found["torch"] and found["python"]
    assert run_record.image({}) is None
    assert run_record.image({"LAUNCHER_IMAGE": "launcher:cpu",
                             "LAUNCHER_IMAGE_DIGEST": "sha256:ab"}) == {
        "name": "launcher:cpu", "digest": "sha256:ab"}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_env_source_names_the_git_commit_of_the_env_file(tmp_path):
    repo = tmp_path / "envs"
    repo.mkdir()
    (repo / "my_env.py").write_text("X = 1\n")

    def git(*args):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)

    assert run_record.env_source(f"{repo / 'my_env.py'}:Env") == {"file": str(repo / "my_env.py")}
    git("init", "-q")
    git("add", "my_env.py")
    git("commit", "-q", "-m", "env")
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    source = run_record.env_source(f"{repo / 'my_env.py'}:Env")
    assert source == {"file": str(repo / "my_env.py"), "git_commit": commit, "git_dirty": False}
    (repo / "my_env.py").write_text("X = 2\n")
    assert run_record.env_source(f"{repo / 'my_env.py'}:Env")["git_dirty"] is True
    assert run_record.env_source("CartPole-v1") is None
    assert run_record.env_source("gymnasium.envs.classic_control:CartPoleEnv") is None


def test_begun_then_completed_then_resumed(tmp_path, monkeypatch):
    settings = TrainSettings(seed=3)
    run_record.begin_record(tmp_path, settings, argv=["/x/launcher", "submit", "--env", "a b"])
    monkeypatch.setenv("LAUNCHER_IMAGE", "launcher:cpu")
    record = run_record.complete_record(tmp_path, settings, resumed=False)
    assert record["command"] == "launcher submit --env 'a b'"  # the submit side's, kept
    assert record["seed"] == 3 and record["image"]["name"] == "launcher:cpu"
    assert record["hosts"] and record["versions"]["launcher"]
    again = run_record.complete_record(tmp_path, settings, resumed=True)
    assert again["command"] == record["command"] and len(again["resumed"]) == 1
    assert json.loads((tmp_path / "run.json").read_text()) == again


def test_results_shows_the_record_columns(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "progress.csv").write_text("training_iteration,num_env_steps_sampled_lifetime,"
                                      "episode_return_mean,time_total_s\n1,100,20.0,1.0\n")
    (run / "run.json").write_text(json.dumps({
        "seed": 42, "versions": {"launcher": "0.1.0", "ray": "2.60.0", "torch": "2.13.0",
                                 "gymnasium": "1.2.2"},
        "image": {"name": "launcher:cpu", "digest": "sha256:" + "f" * 64}, "hosts": ["n1", "n2"],
        "env_source": {"file": "/e.py", "git_commit": "0123456789abcdef", "git_dirty": True}}))
    code, out, _ = call_cli(capsys, "results", str(run), "--record")
    assert code == 0
    for text in ("seed", "42", "2.60.0", "launcher:cpu@sha256:ffffffffffff", "n1,n2",
                 "0123456789ab+dirty"):
        assert text in out, out
    code, out, _ = call_cli(capsys, "results", str(run))
    assert code == 0 and "n1,n2" not in out
