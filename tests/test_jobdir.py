"""launcher/jobdir.py: the run directory a cluster job's nodes start from."""

from __future__ import annotations

import stat

import pytest
import yaml

from launcher.cluster import jobdir
from launcher.errors import UserError
from launcher.training.resources import ClusterPlacement
from launcher.training.settings import TrainSettings


def make(tmp_path, **kw):
    settings = TrainSettings(output=str(tmp_path), name=kw.pop("name", "job"))
    kw.setdefault("rollout_nodes", 2)
    return jobdir.prepare_job(settings, **kw)


def test_prepare_writes_spec_cluster_and_private_token(tmp_path):
    job = make(tmp_path, learner_gpus=1, cpus_per_node=2, job_name="my job")
    assert job.path == (tmp_path / "job").resolve()
    spec = yaml.safe_load(job.spec_path.read_text())
    assert "place_on_cluster_roles" not in spec and "num_learners" not in spec  # derived
    assert job.placement == ClusterPlacement(learners=1, learner_gpus=1)
    assert spec["stop"]["reward"] == 475.0  # check() filled the default stop
    cluster = yaml.safe_load(job.cluster_path.read_text())
    assert cluster["job_name"] == "my job"
    assert cluster["roles"] == {"head": {"nodes": 1, "cpus": 2, "gpus": 0},
                                "rollout": {"nodes": 2, "cpus": 2, "gpus": 0},
                                "learner": {"nodes": 1, "cpus": 2, "gpus": 1}}
    assert stat.S_IMODE(job.token_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(job.state_dir.stat().st_mode) == 0o700
    token = job.token_path.read_text()
    assert len(token) == 64 and token not in job.cluster_path.read_text()
    assert token not in job.spec_path.read_text()


def test_no_gpus_means_no_learner_node(tmp_path):
    job = make(tmp_path)
    assert not job.cluster.has_learner
    assert job.placement == ClusterPlacement(learners=0, learner_gpus=0)


def test_cpu_learner_without_gpus(tmp_path):
    job = make(tmp_path, learner=True)
    assert job.cluster.has_learner and job.cluster.roles["learner"].gpus == 0
    assert job.placement == ClusterPlacement(learners=1, learner_gpus=0)


def test_round_trip(tmp_path):
    job = make(tmp_path, learner_gpus=2, ready_timeout_s=30)
    again = jobdir.load_job(job.path)
    assert again.cluster == job.cluster
    assert again.placement == ClusterPlacement(learners=1, learner_gpus=2)


def test_two_jobs_get_different_ids_and_tokens(tmp_path):
    one, two = make(tmp_path, name="a"), make(tmp_path, name="b")
    assert one.cluster.job_id != two.cluster.job_id
    assert one.token_path.read_text() != two.token_path.read_text()


@pytest.mark.parametrize("kw, message", [
    ({"rollout_nodes": -1}, "--nodes"),
    ({"learner_gpus": -1}, "--gpus"),
    ({"cpus_per_node": 0}, "--cpus-per-node"),
    ({"ready_timeout_s": 0}, "timeout"),
])
def test_bad_shapes_are_refused(tmp_path, kw, message):
    with pytest.raises(UserError, match=message):
        make(tmp_path, **kw)
    assert not (tmp_path / "job").exists()


def test_bad_settings_fail_before_the_dir_exists(tmp_path):
    settings = TrainSettings(output=str(tmp_path), name="job", env="NoSuchEnv-v0")
    with pytest.raises(UserError):
        jobdir.prepare_job(settings, rollout_nodes=1)
    assert not (tmp_path / "job").exists()


def test_existing_run_dir_is_refused(tmp_path):
    make(tmp_path)
    with pytest.raises(UserError, match="already exists"):
        make(tmp_path)


def test_load_refuses_a_plain_dir_and_unknown_keys(tmp_path):
    with pytest.raises(UserError, match="not a prepared cluster job"):
        jobdir.load_job(tmp_path)
    job = make(tmp_path)
    data = yaml.safe_load(job.cluster_path.read_text())
    data["roles"]["rollut"] = data["roles"].pop("rollout")
    job.cluster_path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match="did you mean 'rollout'"):
        jobdir.load_job(job.path)


def test_load_needs_the_token(tmp_path):
    job = make(tmp_path)
    job.token_path.unlink()
    with pytest.raises(UserError, match="token"):
        jobdir.load_job(job.path)


def test_cli_prepare_checkpoints_every_iteration_unless_told(tmp_path, capsys):
    """A cluster job's head can be lost without warning; it resumes from the last
    checkpoint, so by default every iteration is checkpointed. An experiment file's or a
    flag's value wins."""
    from tests.conftest import call_cli

    code, stdout, err = call_cli(capsys, "prepare", "--stop-iters", "1", "--output", str(tmp_path),
                                 "--name", "default")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "default" / "spec.yaml").read_text())["checkpoint_every"] == 1
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("env: CartPole-v1\ncheckpoint_every: 4\n")
    code, _, err = call_cli(capsys, "prepare", "-f", str(experiment), "--output", str(tmp_path),
                            "--name", "from-file")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "from-file" / "spec.yaml").read_text())["checkpoint_every"] == 4
    code, _, err = call_cli(capsys, "prepare", "-f", str(experiment), "--checkpoint-every", "0",
                            "--output", str(tmp_path), "--name", "flag")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "flag" / "spec.yaml").read_text())["checkpoint_every"] == 0
