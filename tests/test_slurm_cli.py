"""`launcher submit / render / status / logs / cancel / list` against recorded Slurm
commands: fake sbatch, squeue, scontrol, scancel on PATH that log their argument
lists and answer like Slurm 22.05 does. Fast; no cluster needed."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_one_line_error, call_cli

FAKE = r"""#!/bin/bash
# fake Slurm command: record argv and cwd, answer from $FAKE_SLURM
name=$(basename "$0")
printf '%s\n' "$(pwd)" "$name" "$@" "--end--" >> "$FAKE_SLURM/calls"
case "$name" in
  sbatch)
    if [ -f "$FAKE_SLURM/sbatch.fail" ]; then cat "$FAKE_SLURM/sbatch.fail" >&2; exit 1; fi
    echo 4242
    record="JobId=4242 JobName=x JobState=RUNNING Reason=None ExitCode=0:0 RunTime=00:00:05"
    record+=" TimeLimit=01:00:00 NodeList=n[1-2] Restarts=0 WorkDir=$(pwd)"
    printf '%s StdOut=%s/job-4242.log Comment=launcher\n' "$record" "$(pwd)" > "$FAKE_SLURM/job-4242"
    ;;
  scontrol)
    if [ "$1" = show ]; then
      f="$FAKE_SLURM/job-${4}"
      [ -f "$f" ] || { echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1; }
      cat "$f"
    fi
    ;;
  scancel)
    for job; do :; done  # the last argument (after --batch --signal=TERM)
    sed -i 's/JobState=RUNNING/JobState=CANCELLED/' "$FAKE_SLURM/job-$job"
    ;;
  squeue)
    cat "$FAKE_SLURM/squeue" 2>/dev/null
    ;;
  sacct)
    echo "sacct: error: Slurm accounting storage is disabled" >&2; exit 1
    ;;
esac
"""


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    """Fake Slurm commands first on PATH; returns the folder holding their state."""
    state = tmp_path / "fake-slurm"
    bindir = state / "bin"
    bindir.mkdir(parents=True)
    for name in ("sbatch", "scontrol", "scancel", "squeue", "sacct"):
        (bindir / name).write_text(FAKE)
        (bindir / name).chmod(0o755)
    monkeypatch.setenv("FAKE_SLURM", str(state))
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.delenv("LAUNCHER_SITE", raising=False)
    return state


def calls(state: Path) -> list[list[str]]:
    path = state / "calls"
    if not path.exists():
        return []
    out, current = [], []
    for line in path.read_text().splitlines():
        if line == "--end--":
            out.append(current)
            current = []
        else:
            current.append(line)
    return out


TINY = ["--stop-iters", "1", "--cpus-per-node", "2"]


def test_dry_run_writes_everything_and_prints_the_exact_command(slurm, tmp_path, capsys):
    out = tmp_path / "runs with space"
    code, stdout, err = call_cli(capsys, "submit", "--dry-run", "--nodes", "2", "--gpus", "1",
                                 *TINY, "--output", str(out), "--name", "r1")
    assert code == 0, err
    run_dir = out / "r1"
    for name in ("job.sh", "spec.yaml", "cluster.yaml", "slurm.yaml", ".cluster/token"):
        assert (run_dir / name).exists(), name
    assert stdout.strip().splitlines()[-1].strip() == \
        f"cd {shlex.quote(str(run_dir))} && sbatch --parsable job.sh"
    assert calls(slurm) == []  # nothing submitted
    cluster = yaml.safe_load((run_dir / "cluster.yaml").read_text())
    assert cluster["roles"]["rollout"]["nodes"] == 2 and cluster["roles"]["learner"]["gpus"] == 1
    spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
    assert "place_on_cluster_roles" not in spec  # placement comes from cluster.yaml
    assert spec["checkpoint_every"] == 1  # a cluster job checkpoints every iteration


def test_checkpoint_every_given_wins_over_the_cluster_default(slurm, tmp_path, capsys):
    code, _, err = call_cli(capsys, "submit", "--dry-run", "--nodes", "1", *TINY, "--output",
                            str(tmp_path), "--name", "r5", "--checkpoint-every", "5")
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "r5" / "spec.yaml").read_text())["checkpoint_every"] == 5


def test_submit_runs_sbatch_in_the_run_dir(slurm, tmp_path, capsys):
    code, stdout, err = call_cli(capsys, "submit", "--nodes", "3", *TINY, "--output", str(tmp_path),
                                 "--name", "r2", "--job-name", "my-job")
    assert code == 0, err
    assert "submitted Slurm job 4242" in stdout
    (cwd, *argv), = calls(slurm)
    assert argv == ["sbatch", "--parsable", "job.sh"] and cwd == str(tmp_path / "r2")
    assert (tmp_path / "r2" / "slurm-job-ids").read_text() == "4242\n"
    assert "#SBATCH --job-name=my-job" in (tmp_path / "r2" / "job.sh").read_text()


def test_slurm_errors_reach_the_user_verbatim(slurm, tmp_path, capsys):
    (slurm / "sbatch.fail").write_text(
        "sbatch: error: Batch job submission failed: Invalid account or account/partition "
        "combination specified\n")
    code, _, err = call_cli(capsys, "submit", *TINY, "--output", str(tmp_path), "--account", "nope")
    assert_one_line_error(code, err, "sbatch failed: sbatch: error: Batch job submission failed: "
                          "Invalid account or account/partition combination specified")


def test_without_sbatch_nothing_is_written(tmp_path, capsys, monkeypatch):
    """A machine without sbatch (not a login node) is told so before a run directory is
    written, with the status of a missing tool (4), not a usage error's."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    monkeypatch.delenv("LAUNCHER_SITE", raising=False)
    code, _, err = call_cli(capsys, "submit", *TINY, "--output", str(tmp_path / "o"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 4 and len(lines) == 1 and "sbatch not found" in lines[0], (code, err)
    assert not (tmp_path / "o").exists()


def test_a_missing_slurm_command_is_a_missing_tool():
    from launcher.cluster.slurm import Slurm
    from launcher.errors import MissingTool

    def runner(argv, **_):
        raise FileNotFoundError(argv[0])

    with pytest.raises(MissingTool, match="squeue not found"):
        Slurm(runner=runner).queue()


@pytest.mark.parametrize("args, fragment", [
    (["--env", "CartPol-v1"], "did you mean 'CartPole-v1'"),
    (["--job-name", "x;reboot"], "--job-name"),
    (["--time", "forever"], "--time"),
    (["--runtime", "apptainer"], "--image"),
    (["--runtime", "apptainer", "--image", "/no/such.sif"], "no such file"),
    (["--set", "lr_typo=1"], "lr_typo"),
    (["--partition", "gpu partition"], "partition"),
])
def test_bad_inputs_fail_before_anything_is_written_or_submitted(slurm, tmp_path, capsys, args,
                                                                   fragment):
    out = tmp_path / "o"
    code, _, err = call_cli(capsys, "submit", *TINY, "--output", str(out), *args)
    assert_one_line_error(code, err, fragment)
    assert calls(slurm) == []
    assert not out.exists() or not any(out.iterdir())


def test_site_profile_and_flags(slurm, tmp_path, capsys):
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"account": "lab", "learner": {"partition": "gpu"},
                                    "cpus_per_node": 4, "modules": ["gcc/12"]}))
    code, stdout, err = call_cli(capsys, "render", "--site", str(site), "--nodes", "2", "--gpus", "1",
                                 "--stop-iters", "1", "--learner-partition", "a100",
                                 "--output", str(tmp_path / "o"))
    assert code == 0, err
    assert "#SBATCH --partition=a100" in stdout and "#SBATCH --account=lab" in stdout
    assert "#SBATCH --cpus-per-task=4" in stdout and "module load gcc/12" in stdout
    assert not (tmp_path / "o").exists()  # render writes nothing


def test_render_has_no_dry_run_and_a_usage_error_is_one_line(capsys):
    """render never submits: it takes no --dry-run, and Typer's usage error for it is one
    line, like every other bad input."""
    code, _, err = call_cli(capsys, "render", "--dry-run")
    assert_one_line_error(code, err, "No such option: --dry-run", "render --help")
    code, _, err = call_cli(capsys, "submit", "--nodes", "two")
    assert_one_line_error(code, err, "'--nodes'", "submit --help")


def submitted(slurm, tmp_path, capsys, name="r3") -> Path:
    code, _, err = call_cli(capsys, "submit", *TINY, "--nodes", "2", "--output", str(tmp_path),
                            "--name", name)
    assert code == 0, err
    return tmp_path / name


def test_status_logs_cancel(slurm, tmp_path, capsys):
    run_dir = submitted(slurm, tmp_path, capsys)
    (run_dir / "job-4242.log").write_text("launcher: job 4242 started\nline two\n")
    (run_dir / "progress.csv").write_text(
        "training_iteration,num_env_steps_sampled_lifetime,episode_return_mean\n1,4000,22.5\n")
    code, stdout, err = call_cli(capsys, "status", "4242")
    assert code == 0, err
    assert "RUNNING" in stdout and str(run_dir) in stdout and "iteration 1" in stdout
    code, stdout, _ = call_cli(capsys, "status", str(run_dir))  # a run dir works too
    assert code == 0 and "4242" in stdout
    code, stdout, _ = call_cli(capsys, "logs", "4242")
    assert stdout == "launcher: job 4242 started\nline two\n"
    code, stdout, err = call_cli(capsys, "cancel", "4242")
    assert code == 0 and "CANCELLED" in stdout, err
    # a running job: its job script is asked first (it checkpoints and cancels the job)
    scancels = [c[1:] for c in calls(slurm) if c[1] == "scancel"]
    assert scancels == [["scancel", "--batch", "--signal=TERM", "4242"]]
    code, stdout, _ = call_cli(capsys, "cancel", "4242")
    assert "already ended" in stdout


def test_unknown_job_and_bad_job_argument(slurm, capsys):
    code, _, err = call_cli(capsys, "status", "999")
    assert_one_line_error(code, err, "does not know job 999")
    code, _, err = call_cli(capsys, "logs", "1; rm -rf /")
    assert_one_line_error(code, err, "neither a Slurm job id nor a run directory")


def test_list_shows_only_launcher_jobs_merging_components(slurm, capsys):
    (slurm / "squeue").write_text(
        "77+0|rl|RUNNING|1:00|1:00:00|1|lt-c1|launcher|/runs/a b\n"
        "77+1|rl|RUNNING|1:00|1:00:00|2|lt-c[2-3]|launcher|/runs/a b\n"
        "78|other|RUNNING|0:10|10:00|1|lt-c4|(null)|/home/x\n")
    code, stdout, err = call_cli(capsys, "list")
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1].split()[:3] == ["77", "rl", "RUNNING"]
    assert "/runs/a b" in lines[1] and " 3 " in lines[1]


def test_resume(slurm, tmp_path, capsys):
    run_dir = submitted(slurm, tmp_path, capsys, name="r4")
    # still running: refused
    code, _, err = call_cli(capsys, "submit", "--resume", str(run_dir))
    assert_one_line_error(code, err, "no checkpoint")
    (run_dir / "checkpoints" / "checkpoint_000003").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint_000003" / "state.pkl").write_text("x")
    code, _, err = call_cli(capsys, "submit", "--resume", str(run_dir))
    assert_one_line_error(code, err, "still queued or running")
    call_cli(capsys, "cancel", "4242")
    code, _, err = call_cli(capsys, "submit", "--resume", str(run_dir), "--gpus", "1")
    assert_one_line_error(code, err, "keeps its shape")
    code, _, err = call_cli(capsys, "submit", "--resume", str(run_dir), "--env", "Pendulum-v1")
    assert_one_line_error(code, err, "cannot change")
    code, stdout, err = call_cli(capsys, "submit", "--resume", str(run_dir), "--stop-iters", "9",
                                 "--time", "02:00:00")
    assert code == 0, err
    assert yaml.safe_load((run_dir / "spec.yaml").read_text())["stop"]["iters"] == 9
    assert "#SBATCH --time=02:00:00" in (run_dir / "job.sh").read_text()
    assert (run_dir / "slurm-job-ids").read_text().split() == ["4242", "4242"]


def test_logs_follow_returns_when_the_job_has_ended(slurm, tmp_path, capsys):
    run_dir = submitted(slurm, tmp_path, capsys, name="r5")
    (run_dir / "job-4242.log").write_text("one\ntwo\n")
    record = slurm / "job-4242"
    record.write_text(record.read_text().replace("JobState=RUNNING", "JobState=COMPLETED"))
    code, stdout, err = call_cli(capsys, "logs", "4242", "--follow")
    assert code == 0 and stdout == "one\ntwo\n", err


def test_a_failed_sbatch_can_be_retried_with_resume(slurm, tmp_path, capsys):
    """sbatch refused the job: the run dir was written but never submitted. The error
    says how to retry, and `submit --resume` submits it (from the start: no checkpoint)."""
    (slurm / "sbatch.fail").write_text("sbatch: error: Invalid account\n")
    code, _, err = call_cli(capsys, "submit", *TINY, "--output", str(tmp_path), "--name", "r6",
                            "--account", "nope")
    run_dir = tmp_path / "r6"
    assert_one_line_error(code, err, "sbatch: error: Invalid account",
                          f"launcher submit --resume {run_dir}")
    assert not (run_dir / "slurm-job-ids").exists()
    (slurm / "sbatch.fail").unlink()
    code, stdout, err = call_cli(capsys, "submit", "--resume", str(run_dir), "--account", "lab")
    assert code == 0 and "submitted Slurm job 4242" in stdout, err
    assert (run_dir / "slurm-job-ids").read_text() == "4242\n"
    assert "#SBATCH --account=lab" in (run_dir / "job.sh").read_text()
    # submitted once, still no checkpoint: a resume would start over, and is refused
    call_cli(capsys, "cancel", "4242")
    code, _, err = call_cli(capsys, "submit", "--resume", str(run_dir))
    assert_one_line_error(code, err, "no checkpoint")


HOSTILE_OPTIONS = {
    "unset": {"unset": ["X; touch /tmp/pwned"]},
    "env name": {"env": {"A=1 touch /tmp/pwned #": "x"}},
    "env name newline": {"env": {"FOO\n": "x"}},
    "all of them": {"unset": ["X; touch /tmp/pwned"], "env": {"A=1 touch": "x"},
                    "modules": ["$(touch /tmp/pwned)"]},
    "job name": {"job_name": "x\n#SBATCH --uid=0"},
    "partition": {"learner": {"partition": "gpu --uid=0"}},
    "placement type": {"head": ["gpu"]},
    "nodes type": {"nodes": "2; touch /tmp/pwned"},
    "cpus bool": {"cpus_per_node": True},
    "time": {"time": "00:99"},
    "runtime": {"runtime": "$(touch /tmp/pwned)"},
    "env value type": {"env": {"A": ["x"]}},
    "binds type": {"binds": "/scratch"},
    "unknown key": {"sbatch_extra": "--uid=0"},
    "learner_on_cpu type": {"learner_on_cpu": "no"},
    "not a mapping": ["nodes", 1],
}


@pytest.mark.parametrize("name", sorted(HOSTILE_OPTIONS))
def test_resume_refuses_an_edited_slurm_yaml(slurm, tmp_path, capsys, name):
    """slurm.yaml is read back on `submit --resume` and rendered into a script: every
    field is checked as a flag or a site value is, and nothing is rendered or written."""
    code, _, err = call_cli(capsys, "submit", "--dry-run", *TINY, "--output", str(tmp_path),
                            "--name", "r7")
    assert code == 0, err
    run_dir = tmp_path / "r7"
    saved = yaml.safe_load((run_dir / "slurm.yaml").read_text())
    edit = HOSTILE_OPTIONS[name]
    hostile = {**saved, **edit} if isinstance(edit, dict) else edit
    (run_dir / "slurm.yaml").write_text(yaml.safe_dump(hostile))
    script = (run_dir / "job.sh").read_text()
    code, _, err = call_cli(capsys, "submit", "--resume", str(run_dir))
    assert_one_line_error(code, err, "slurm.yaml")
    assert (run_dir / "job.sh").read_text() == script
    assert calls(slurm) == [] and not Path("/tmp/pwned").exists()


def test_apptainer_run_dir_with_bind_separators_is_refused_before_writing(slurm, tmp_path, capsys):
    image = tmp_path / "launcher.sif"
    image.write_text("")
    out = tmp_path / "a:b"
    code, _, err = call_cli(capsys, "submit", *TINY, "--runtime", "apptainer", "--image", str(image),
                            "--output", str(out))
    assert_one_line_error(code, err, "the run directory", "Apptainer")
    assert not out.exists() and calls(slurm) == []


# --- a login node without torch or Ray: the zipapp, the checks in the image ----------------------
# Blocks the training stack in a subprocess, as on a login node that has only Python.
BLOCKER = """import sys
class _NoStack:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "torch", "gymnasium", "gym", "numpy"):
            raise ImportError("not on this login node: " + name)
sys.meta_path.insert(0, _NoStack())
"""
# apptainer stand-in (the real one runs in tests/test_apptainer_e2e.py): `exec [options] IMAGE
# python ARGS` runs ARGS with this test environment's Python, which has the stack.
APPTAINER_STAND_IN = r"""#!/bin/bash
[ "$1" = exec ] || exit 99
shift
while [ $# -gt 0 ]; do
  case "$1" in --cleanenv) shift ;; --bind|--env) shift 2 ;; *) break ;; esac
done
echo "image=$1 $*" >> "$STAND_IN_LOG"
shift
[ "$1" = python ] && shift
PYTHONPATH="$REPO" exec "$TEST_PYTHON" "$@"
"""


@pytest.fixture(scope="module")
def zipapp(tmp_path_factory):
    from launcher.cluster.slurm import loginpkg

    return loginpkg.build(tmp_path_factory.mktemp("login"))


@pytest.fixture
def login_node(tmp_path, slurm, monkeypatch):
    """Environment of a login node without the training stack, with an apptainer stand-in."""
    import sys

    from tests.conftest import REPO

    blocker = tmp_path / "no-stack"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    bindir = tmp_path / "apptainer-bin"
    bindir.mkdir()
    (bindir / "apptainer").write_text(APPTAINER_STAND_IN)
    (bindir / "apptainer").chmod(0o755)
    image = tmp_path / "launcher-cpu.sif"
    image.write_text("")
    env = {**os.environ, "PYTHONPATH": str(blocker), "STAND_IN_LOG": str(tmp_path / "stand-in.log"),
           "TEST_PYTHON": sys.executable, "REPO": str(REPO)}
    env.pop("LAUNCHER_SITE", None)
    return {"env": env, "image": image, "apptainer_bin": bindir, "log": tmp_path / "stand-in.log"}


def run_zipapp(zipapp, env, *args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(zipapp), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_login_zipapp_holds_no_compiled_code_and_no_training_stack(zipapp):
    import subprocess
    import zipfile

    from tests.test_slurm_render import shellcheck

    names = zipfile.ZipFile(zipapp).namelist()
    assert "__main__.py" in names and "launcher/templates/slurm-job.sh.j2" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    assert not {n.split("/")[0] for n in names} & {"ray", "torch", "gymnasium", "numpy", "pydantic_core"}
    install = zipapp.with_name("install-login.sh")
    assert "--no-deps" in install.read_text() and "pydantic-core==" in install.read_text()
    checked = subprocess.run([shellcheck(), str(install)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


@pytest.mark.slow  # RLlib validates the settings in a subprocess: seconds
def test_login_zipapp_renders_through_the_image_without_the_stack(zipapp, login_node, tmp_path):
    env = {**login_node["env"], "PATH": f"{login_node['apptainer_bin']}:{os.environ['PATH']}"}
    args = ("render", "--runtime", "apptainer", "--image", str(login_node["image"]), "--nodes", "2",
            "--gpus", "1", "--output", str(tmp_path / "runs"))
    proc = run_zipapp(zipapp, env, *args)
    assert proc.returncode == 0, proc.stderr
    assert f"export LAUNCHER_IMAGE_HEAD={login_node['image']}" in proc.stdout
    assert "-m launcher.cluster.slurm.inimage" in login_node["log"].read_text()
    wrong = run_zipapp(zipapp, env, *args, "--env", "CartPol-v1")
    assert_one_line_error(wrong.returncode, wrong.stderr, "did you mean 'CartPole-v1'")


@pytest.mark.slow
def test_login_zipapp_submits_through_the_image(zipapp, login_node, tmp_path, slurm):
    env = {**login_node["env"], "PATH": f"{login_node['apptainer_bin']}:{env_path(slurm)}"}
    proc = run_zipapp(zipapp, env, "submit", "--runtime", "apptainer", "--image", str(login_node["image"]),
                      *TINY, "--output", str(tmp_path / "runs"), "--name", "z1")
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "runs" / "z1"
    assert (run_dir / "spec.yaml").is_file() and (run_dir / ".cluster" / "token").is_file()
    assert (run_dir / "job.sh").is_file() and "submitted Slurm job 4242" in proc.stdout


def env_path(slurm) -> str:
    return f"{slurm / 'bin'}:{os.environ['PATH']}"


@pytest.mark.parametrize("args, fragment", [
    (("--runtime", "none"), "--runtime none runs the nodes in this environment"),
    (("--runtime", "apptainer", "--image", "/nonexistent.sif"), "apptainer is not on PATH"),
])
def test_login_node_without_stack_or_apptainer_is_a_missing_tool(zipapp, login_node, args, fragment):
    proc = run_zipapp(zipapp, login_node["env"], "render", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 4 and len(lines) == 1 and fragment in lines[0], proc.stderr


LABELS = {"cpu": {"launcher.torch": "cpu", "launcher.variant": "cpu"},
          "gpu": {"launcher.torch": "cuda", "launcher.variant": "gpu"}}


def inspect_answer(labels):
    import json
    import subprocess

    def runner(argv, **_):
        assert argv[1:4] == ["inspect", "--json", "--labels"]
        out = json.dumps({"data": {"attributes": {"labels": labels}}, "type": "container"})
        return subprocess.CompletedProcess(argv, 0, out, "")
    return runner


@pytest.mark.parametrize("flags, labels, refused", [
    ({"gpus": 1}, LABELS["cpu"], True),
    ({"gpus": 1, "learner_on_cpu": True}, LABELS["cpu"], False),
    ({"gpus": 1}, LABELS["gpu"], False),
    ({"gpus": 0}, LABELS["cpu"], False),
    ({"gpus": 1}, {}, False),  # labels that say nothing: not refused
])
def test_a_cpu_torch_image_on_a_gpu_learner_is_refused_from_its_labels(tmp_path, monkeypatch, flags,
                                                                     labels, refused):
    """The labels as `apptainer inspect --json --labels` prints them (recorded answer)."""
    from launcher.cluster.slurm import SiteProfile, images, job_options
    from launcher.errors import UserError

    sif = tmp_path / "cpu.sif"
    sif.write_text("")
    monkeypatch.setattr(images, "apptainer_command", lambda: "apptainer")
    options = job_options(SiteProfile(), {"nodes": 1, "runtime": "apptainer", "image": str(sif), **flags})
    if refused:
        with pytest.raises(UserError) as err:
            images.check_image_labels(options, runner=inspect_answer(labels))
        assert "launcher.torch=cpu" in str(err.value) and "--learner-image" in str(err.value)
    else:
        images.check_image_labels(options, runner=inspect_answer(labels))


def test_render_writes_every_site_option(slurm, tmp_path, capsys):
    code, stdout, err = call_cli(
        capsys, "render", "--nodes", "1", "--gpus", "2", "--gpu-type", "a100", "--mem", "16G",
        "--constraint", "intel&ib", "--reservation", "rl-week", "--mail-type", "END,FAIL",
        "--mail-user", "me@lab.org", "--dependency", "afterok:11:12", "--exclusive",
        "--sbatch", "tmp=20G", "--sbatch", "learner:gres-flags=enforce-binding",
        "--stop-iters", "1", "--output", str(tmp_path / "o"))
    assert code == 0, err
    for line in ("--gres=gpu:a100:2", "--mem=16G", "--constraint=intel&ib", "--reservation=rl-week",
                 "--mail-type=END,FAIL", "--mail-user=me@lab.org", "--dependency=afterok:11:12",
                 "--exclusive", "--tmp=20G", "--gres-flags=enforce-binding"):
        assert f"#SBATCH {line}\n" in stdout, line
    assert stdout.count("#SBATCH --gres-flags=enforce-binding") == 1  # the learner's only
    assert stdout.count("#SBATCH --mem=16G") == 3  # every component
    assert "srun --het-group=2 --nodes=1 --ntasks=1 --cpus-per-task" not in stdout  # --exclusive
    assert "--het-group=2 --nodes=1 --ntasks=1 --whole --gres=gpu:a100:2" in stdout
    assert not (tmp_path / "o").exists() and calls(slurm) == []


def test_render_nodes_0_gpus_1_is_a_head_and_a_learner(slurm, tmp_path, capsys):
    code, stdout, err = call_cli(capsys, "render", "--nodes", "0", "--gpus", "1",
                                 "--stop-iters", "1", "--output", str(tmp_path / "o"))
    assert code == 0, err
    assert "--nodes=0" not in stdout and stdout.count("#SBATCH hetjob") == 1
    assert "node_step rollout" not in stdout and "--het-group=1" in stdout


@pytest.mark.parametrize("args, fragment", [
    (["--mem", "4GB"], "--mem '4GB' is not a Slurm memory size"),
    (["--mail-type", "SOMETIMES"], "--mail-type"),
    (["--mail-user", "a b"], "--mail-user"),
    (["--dependency", "afterok"], "--dependency"),
    (["--constraint", "a b"], "--constraint"),
    (["--reservation", "$(id)"], "reservation"),
    (["--gpu-type", "a100"], "give --gpus N"),
    (["--sbatch", "nodes=3"], "use --nodes"),
    (["--sbatch", "signal=USR1@5"], "use --checkpoint-before"),
    (["--sbatch", "output=x.log"], "option of the launcher's own"),
    (["--sbatch", "tmp=1G;id"], "no spaces"),
    (["--nodes", "0", "--cpus-per-node", "1"], "the head runs the env runners"),
    (["--nodes", "-1"], "--nodes"),
    (["--time", "99:99:99"], "--time"),
])
def test_bad_site_options_fail_before_anything_is_written(slurm, tmp_path, capsys, args, fragment):
    for command in ("submit", "render"):
        out = tmp_path / command
        code, _, err = call_cli(capsys, command, "--stop-iters", "1", "--output", str(out), *args)
        assert_one_line_error(code, err, fragment)
        assert not out.exists()
    assert calls(slurm) == []
