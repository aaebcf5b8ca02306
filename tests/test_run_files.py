"""What a run directory holds is written safely and read back only when it can be trusted:
modes whatever the umask, files of other users refused, damaged files survived, one
run per directory (issue 11)."""

from __future__ import annotations

import os
import stat
import threading

import pytest
import yaml

from launcher.cluster import jobdir
from launcher.contract import RunPaths
from launcher.errors import UserError
from launcher.training import checkpoints as ckpt
from launcher.training.rundir import reserve
from launcher.training.runlog import ReturnWindow, RunLog
from launcher.training.settings import TrainSettings, load_spec

OTHER_UID = 4242


@pytest.fixture
def umask_000():
    old = os.umask(0)
    yield
    os.umask(old)


def make_job(tmp_path, name="job"):
    settings = TrainSettings(output=str(tmp_path), name=name)
    return jobdir.prepare_job(settings, rollout_nodes=1)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- modes whatever the umask --------------------------------------------------------------
def test_a_job_prepared_under_umask_000_is_writable_by_its_owner_only(tmp_path, umask_000):
    job = make_job(tmp_path)
    for path in (job.path, job.spec_path, job.cluster_path):
        assert mode(path) & 0o022 == 0, (path, oct(mode(path)))
    assert mode(job.state_dir) == 0o700 and mode(job.token_path) == 0o600
    jobdir.load_job(job.path)  # and it is trusted again


# --- what others own or can write is refused ----------------------------------------------
@pytest.mark.parametrize("what", ["spec", "cluster", "root"])
def test_a_group_or_world_writable_file_is_refused(tmp_path, what):
    job = make_job(tmp_path)
    path = getattr(RunPaths(job.path), what)
    os.chmod(path, mode(path) | 0o002)
    with pytest.raises(UserError, match="writable by other users"):
        jobdir.load_job(job.path)


def test_a_token_readable_by_others_is_refused(tmp_path):
    job = make_job(tmp_path)
    os.chmod(job.token_path, 0o644)
    with pytest.raises(UserError, match=r"token is readable or writable by other users"):
        jobdir.load_job(job.path)


def test_an_empty_token_is_refused(tmp_path):
    job = make_job(tmp_path)
    job.token_path.write_text("")
    with pytest.raises(UserError, match="token is empty"):
        jobdir.load_job(job.path)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
@pytest.mark.parametrize("what", ["spec", "root", "token"])
def test_files_of_another_user_are_refused(tmp_path, what):
    job = make_job(tmp_path)
    os.chown(getattr(RunPaths(job.path), what), OTHER_UID, -1)
    with pytest.raises(UserError, match=f"belongs to another user \\(uid {OTHER_UID}"):
        jobdir.load_job(job.path)


def test_another_users_spec_is_not_run_by_train_resume(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    TrainSettings().write_spec(run)
    os.chmod(RunPaths(run).spec, 0o666)
    with pytest.raises(UserError, match="writable by other users"):
        load_spec(run)


# --- wrong types read back ---------------------------------------------------------------
@pytest.mark.parametrize("key, value, message", [
    ("num_cpus", "4", "num_cpus must be a whole number or empty"),
    ("stop", [1], "stop must be a mapping"),
    ("local_mode", "no", "local_mode must be true or false"),
    ("num_gpus", True, "num_gpus must be a number"),
    ("env_config", "x", "env_config must be a mapping"),
])
def test_wrong_types_in_spec_yaml_are_one_line(tmp_path, key, value, message):
    run = tmp_path / "run"
    run.mkdir()
    TrainSettings().write_spec(run)
    data = yaml.safe_load(RunPaths(run).spec.read_text())
    data[key] = value
    RunPaths(run).spec.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=message):
        load_spec(run)


@pytest.mark.parametrize("change, message", [
    ({"port_base": "abc"}, "port_base must be a whole number"),
    ({"port_base": 80}, "port_base must be between"),
    ({"ready_timeout_s": -1}, "ready_timeout_s must be positive"),
    ({"roles": {"head": {"nodes": 1}, "rollout": {"nodes": "2"}}}, "roles.rollout: nodes must be"),
    ({"roles": {"head": {"nodes": 1, "cpus": True}}}, "roles.head: cpus must be"),
    ({"job_id": 12}, "job_id must be text"),
])
def test_wrong_types_in_cluster_yaml_are_one_line(tmp_path, change, message):
    job = make_job(tmp_path)
    data = yaml.safe_load(job.cluster_path.read_text())
    data.update(change)
    job.cluster_path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=message):
        jobdir.load_job(job.path)


def test_legacy_placement_keys_in_an_old_spec_are_ignored(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    TrainSettings().write_spec(run)
    data = yaml.safe_load(RunPaths(run).spec.read_text())
    data.update(num_learners=1, place_on_cluster_roles=True)
    RunPaths(run).spec.write_text(yaml.safe_dump(data))
    assert load_spec(run).algo == "PPO"


# --- one run per directory ----------------------------------------------------------------
def test_reserving_a_run_dir_is_exclusive_under_a_race(tmp_path):
    target = tmp_path / "out" / "run"
    won, lost = [], []

    def claim():
        try:
            won.append(reserve(target))
        except UserError as exc:
            lost.append(str(exc))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7
    assert all("already exists" in text for text in lost)


def test_a_second_cluster_job_into_the_same_run_dir_is_refused(tmp_path):
    make_job(tmp_path, name="same")
    with pytest.raises(UserError, match="already exists"):
        make_job(tmp_path, name="same")


# --- damaged checkpoints and logs ---------------------------------------------------------
def fake_checkpoint(run_dir, iteration: int, content: bool = True):
    path = RunPaths(run_dir).checkpoints / f"checkpoint_{iteration:06d}"
    path.mkdir(parents=True)
    if content:
        (path / "state.pkl").write_bytes(b"x")
    return path


def test_checkpoints_are_ordered_by_iteration_not_by_name(tmp_path):
    fake_checkpoint(tmp_path, 999999)
    fake_checkpoint(tmp_path, 1000000)
    assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint_1000000"


def test_an_empty_newest_checkpoint_is_skipped(tmp_path):
    fake_checkpoint(tmp_path, 4)
    fake_checkpoint(tmp_path, 5, content=False)
    assert ckpt.latest_checkpoint(tmp_path).name == "checkpoint_000004"


class FakeAlgo:
    """Loads any checkpoint but the ones named broken."""

    def __init__(self, broken):
        self.broken, self.loaded, self._iteration = broken, None, 0

    def load_checkpoint(self, path):
        if any(path.endswith(name) for name in self.broken):
            raise ValueError("pickle data was truncated")
        self.loaded = path


def test_restore_falls_back_to_the_newest_checkpoint_that_loads(tmp_path):
    for i in (3, 4, 5):
        fake_checkpoint(tmp_path, i)
    said = []
    algo = FakeAlgo(broken=["checkpoint_000005"])
    assert ckpt.restore_latest(algo, tmp_path, say=said.append) == 4
    assert algo.loaded.endswith("checkpoint_000004") and algo._iteration == 4
    assert "checkpoint_000005 does not load (pickle data was truncated)" in said[0]


def test_restore_with_no_loadable_checkpoint_is_one_line(tmp_path):
    fake_checkpoint(tmp_path, 1)
    with pytest.raises(UserError, match="no checkpoint in .* loads"):
        ckpt.restore_latest(FakeAlgo(broken=["checkpoint_000001"]), tmp_path, say=lambda _: None)


def test_a_torn_last_line_in_the_logs_does_not_break_resume(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    for i in (1, 2, 3):
        log.append({"training_iteration": i, "num_env_steps_sampled_lifetime": 100 * i})
    log.close()
    with open(RunPaths(tmp_path).progress, "a") as fh:
        fh.write("4,40")  # a head killed mid-write
    with open(RunPaths(tmp_path).result, "a") as fh:
        fh.write('{"training_iteration": 4, "num_env')
    again = RunLog(tmp_path, tensorboard=False)
    again.truncate_after(2)
    assert [int(r["training_iteration"]) for r in again.rows] == [1, 2]
    lines = RunPaths(tmp_path).result.read_text().splitlines()
    assert len(lines) == 2
    again.append({"training_iteration": 3, "num_env_steps_sampled_lifetime": 300})
    assert len(RunLog(tmp_path, tensorboard=False).rows) == 3


def test_the_mean_return_spans_the_last_episodes_across_iterations():
    window = ReturnWindow(4)

    def iteration(mean, episodes):
        result = {"env_runners": {"num_episodes": episodes}}
        if mean is not None:
            result["env_runners"]["episode_return_mean"] = mean
        window.smooth(result)
        return result["env_runners"].get("episode_return_mean")

    assert iteration(None, 0) is None  # nothing ended yet: nothing to report
    assert iteration(-800.0, 1) == -800.0
    assert iteration(-400.0, 1) == pytest.approx(-600.0)
    assert iteration(None, 0) == pytest.approx(-600.0)  # no episode ended: the window's mean
    assert iteration(-100.0, 3) == pytest.approx((-400 - 300) / 4)  # the last 4 episodes
    assert iteration(10.0, 20) == 10.0  # one iteration fills the window


def test_per_policy_mean_returns_are_smoothed_alike_and_still_add_up():
    window = ReturnWindow(2)
    for total, a, b, episodes in [(-10.0, -4.0, -6.0, 1), (-20.0, -12.0, -8.0, 1), (-30.0, -10.0, -20.0, 1)]:
        result = {"env_runners": {"num_episodes": episodes, "episode_return_mean": total,
                                  "module_episode_returns_mean": {"a": a, "b": b}}}
        window.smooth(result)
    runners = result["env_runners"]
    assert runners["episode_return_mean"] == pytest.approx(-25.0)  # the last 2 episodes
    per_policy = runners["module_episode_returns_mean"]
    assert per_policy == pytest.approx({"a": -11.0, "b": -14.0})
    assert sum(per_policy.values()) == pytest.approx(runners["episode_return_mean"])
