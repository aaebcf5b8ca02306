"""launcher/cluster/host.py: what a node offers Ray (sizing) and its address."""

from __future__ import annotations

import pytest

from launcher.cluster import host
from launcher.cluster.jobdir import prepare_job
from launcher.errors import UserError
from launcher.training.settings import TrainSettings


@pytest.fixture
def job(tmp_path):
    return prepare_job(TrainSettings(output=str(tmp_path), name="job"), rollout_nodes=2,
                       cpus_per_node=3, ready_timeout_s=5)


@pytest.fixture
def gpu_job(tmp_path):
    return prepare_job(TrainSettings(output=str(tmp_path), name="gjob"), rollout_nodes=1,
                       learner_gpus=2)


def test_role_resources(job, gpu_job):
    assert host.node_resources(job, "rollout", None, None, env={}) == (3, 0, {"rollout_node": 3})
    # no learner node: the head runs env runners on all its CPUs but one
    assert host.node_resources(job, "head", 4, None, env={}) == (4, 0, {"rollout_node": 3})
    assert host.node_resources(job, "head", 1, None, env={}) == (1, 0, {})
    # with a learner node the head only trains
    assert host.node_resources(gpu_job, "head", 4, None, env={})[2] == {}
    cpus, gpus, res = host.node_resources(gpu_job, "learner", 2, None,
                                          env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert (cpus, gpus, res) == (2, 2, {"learner_node": 1})


def test_sizing_order_args_then_slurm_then_cluster_yaml(job):
    env = {"SLURM_CPUS_ON_NODE": "7"}
    assert host.node_resources(job, "rollout", 5, None, env=env)[0] == 5
    assert host.node_resources(job, "rollout", None, None, env=env)[0] == 7
    assert host.node_resources(job, "rollout", None, None, env={})[0] == 3


def test_bad_sizes_are_refused(job):
    with pytest.raises(UserError, match="--num-cpus must be at least 1"):
        host.node_resources(job, "rollout", 0, None, env={})
    with pytest.raises(UserError, match="--num-gpus must be 0 or more"):
        host.node_resources(job, "rollout", 1, -1, env={})


def test_learner_without_its_gpus_is_refused(gpu_job):
    with pytest.raises(UserError, match="should have 2 GPU"):
        host.node_resources(gpu_job, "learner", 2, None, env={})
    with pytest.raises(UserError, match="should have 2 GPU"):
        host.node_resources(gpu_job, "learner", 2, None, env={"CUDA_VISIBLE_DEVICES": ""})


def test_cuda_visible_devices_count():
    assert host.visible_cuda_devices({}) is None
    assert host.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert host.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": "2,3"}) == 2
    assert host.visible_cuda_devices({"CUDA_VISIBLE_DEVICES": "-1"}) == 0


def test_addresses():
    assert host.is_loopback("127.0.1.1") and host.is_loopback("::1")
    assert not host.is_loopback("10.0.0.1")
    assert host.local_ip_towards("127.0.0.1", 9) == "127.0.0.1"
    try:
        ip = host.own_ip()
    except UserError:
        pytest.skip("this machine has no non-loopback address")
    assert not host.is_loopback(ip)
