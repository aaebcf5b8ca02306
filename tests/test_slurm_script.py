"""The job script's control flow, run for real under bash with stub srun / launcher /
apptainer / scontrol / scancel: the time-limit warning is forwarded to the head's step
alone and leads to a requeue, a TERM to the script checkpoints, does not requeue and
cancels the job, a failing rollout step stops the head
at once, the one-node default shape (no worker step) ends cleanly, and the site
profile's variables reach the node inside an Apptainer container. (The same flows run
on the Slurm container cluster in test_slurm_e2e.py; these take seconds.)

Every test runs under this machine's bash, and also under an old bash (< 4.4, as on
RHEL/CentOS 7, where `set -u` calls an empty array unbound) when LAUNCHER_OLD_BASH names
one: none can be installed from this project's package sources (Debian bookworm ships
bash 5.2 only), so without it those runs are skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from launcher.cluster.slurm import job_options, render
from launcher.cluster.slurm.site import SiteProfile

SRUN = """#!/bin/bash
while [ $# -gt 0 ] && [ "$1" != bash ]; do shift; done
SLURM_NODEID=0 SLURM_CPUS_PER_TASK=2 exec "$@"
"""

# `launcher node` stand-in: behaviour per role from STUB_HEAD / STUB_ROLLOUT / STUB_LEARNER:
#   ok: exit 0 at once; fail: exit 3 at once;
#   serve: run until a signal (USR1 / TERM: "checkpoint", exit 75) or 60 s
LAUNCHER = """#!/bin/bash
role=
while [ $# -gt 0 ]; do [ "$1" = --role ] && role=$2; shift; done
var="STUB_${role^^}"
behaviour=${!var:-ok}
events="$STUB_DIR/events"
echo "$role start" >> "$events"
echo "$role OMP_NUM_THREADS=${OMP_NUM_THREADS-unset}" >> "$events"
case "$behaviour" in
  ok) exit 0 ;;
  fail) echo "$role fail" >> "$events"; exit 3 ;;
  serve)
    trap 'echo "$role USR1" >> "$events"; exit 75' USR1
    trap 'echo "$role TERM" >> "$events"; exit 75' TERM
    for _ in $(seq 1 600); do sleep 0.1; done
    exit 0 ;;
esac
"""

SCONTROL = """#!/bin/bash
echo "scontrol $*" >> "$STUB_DIR/events"
"""

# `apptainer exec --cleanenv ... IMAGE launcher ...` stand-in: runs the command with only
# what --cleanenv lets in, the APPTAINERENV_ variables (prefix removed), plus the stubs'
# own plumbing (PATH, STUB_*).
APPTAINER = """#!/bin/bash
keep=("PATH=$PATH")
for name in $(compgen -e); do
  case "$name" in
    APPTAINERENV_*) keep+=("${name#APPTAINERENV_}=${!name}") ;;
    STUB_*) keep+=("$name=${!name}") ;;
  esac
done
while [ $# -gt 0 ] && [ "$1" != launcher ]; do shift; done
exec env -i "${keep[@]}" "$@"
"""


def bashes() -> list:
    """This machine's bash, and LAUNCHER_OLD_BASH (a bash < 4.4) when it names one."""
    old = os.environ.get("LAUNCHER_OLD_BASH")
    skip = pytest.mark.skip(reason="no bash < 4.4 here: set LAUNCHER_OLD_BASH=/path/to/bash-4.3")
    return ["bash", pytest.param(old or "old-bash", marks=() if old else skip, id="old-bash")]


@pytest.fixture(params=bashes(), ids=lambda b: "bash" if b == "bash" else "old-bash")
def bash(request) -> str:
    return shutil.which(request.param) or request.param


def start(tmp_path: Path, bash: str, gpus: int, nodes: int = 2, site: dict | None = None,
          flags: dict | None = None, **behaviour: str) -> subprocess.Popen:
    """Render a job and run it under `bash` (the steps' `bash -c` too) with the stubs."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, text in (("srun", SRUN), ("launcher", LAUNCHER), ("scontrol", SCONTROL),
                       ("scancel", SCONTROL.replace("scontrol", "scancel")), ("apptainer", APPTAINER)):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    (stubs / "bash").symlink_to(bash)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    script = run_dir / "job.sh"
    options = job_options(SiteProfile.from_dict(site or {}),
                          {"nodes": nodes, "gpus": gpus, "cpus_per_node": 2, **(flags or {})})
    script.write_text(render(options, run_dir))
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "STUB_DIR": str(tmp_path), "SLURM_JOB_ID": "7",
           "HOME": str(tmp_path), "TMPDIR": str(tmp_path / "tmp"),
           **{f"STUB_{role.upper()}": how for role, how in behaviour.items()}}
    return subprocess.Popen([str(stubs / "bash"), str(script)], cwd=run_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def events(tmp_path: Path) -> list[str]:
    path = tmp_path / "events"
    return path.read_text().splitlines() if path.exists() else []


def wait_started(tmp_path: Path, roles: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(e.endswith(" start") for e in events(tmp_path)) >= roles:
            time.sleep(0.3)  # let the stubs install their traps
            return
        time.sleep(0.05)
    raise AssertionError(f"stubs did not start: {events(tmp_path)}")


def finish(proc: subprocess.Popen, timeout_s: float = 60) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout_s)
    return proc.returncode, out


def test_time_limit_warning_is_forwarded_and_the_job_requeues(tmp_path, bash):
    proc = start(tmp_path, bash, gpus=1, head="serve", rollout="ok", learner="ok")
    wait_started(tmp_path, 3)
    os.kill(proc.pid, signal.SIGUSR1)
    code, out = finish(proc)
    assert code == 0, out
    ev = events(tmp_path)
    assert "head USR1" in ev
    assert "scontrol requeue 7" in ev, (ev, out)
    assert "requeueing job 7" in out
    assert "scancel 7" not in ev


def test_the_warning_reaches_the_head_step_alone_not_through_srun(tmp_path, bash):
    """USR1 goes to the head's step process (its pid file in the node's scratch dir): srun
    would signal every process of the step, Apptainer's squashfuse included."""
    proc = start(tmp_path, bash, gpus=1, head="serve", rollout="ok", learner="ok")
    wait_started(tmp_path, 3)
    pid_file = tmp_path / "tmp" / "launcher-7" / "head-step.pid"
    assert pid_file.read_text().strip().isdigit()
    os.kill(proc.pid, signal.SIGUSR1)
    code, out = finish(proc)
    assert code == 0 and "head USR1" in events(tmp_path), out
    assert not (tmp_path / "tmp" / "launcher-7").exists()  # removed at the end


def test_scancel_term_checkpoints_but_does_not_requeue(tmp_path, bash):
    proc = start(tmp_path, bash, gpus=0, head="serve", rollout="ok")
    wait_started(tmp_path, 2)
    os.kill(proc.pid, signal.SIGTERM)
    code, out = finish(proc)
    ev = events(tmp_path)
    assert code == 75 and "head TERM" in ev, (code, out, ev)
    assert not any(e.startswith("scontrol requeue") for e in ev), ev
    assert "launcher submit --resume" in out
    # `launcher cancel` signals the script alone: once the nodes are done it cancels the job
    assert "scancel 7" in ev and "stopped on request" in out, (ev, out)


def test_a_failing_rollout_step_stops_the_head_at_once(tmp_path, bash):
    started = time.monotonic()
    proc = start(tmp_path, bash, gpus=1, head="serve", rollout="fail", learner="ok")
    code, out = finish(proc)
    assert time.monotonic() - started < 20, "the head should not wait out its timeout"
    assert code != 0, out  # the head was stopped (the real one checkpoints: 75)
    assert "a rollout/learner step failed (status 3)" in out
    assert "head TERM" in events(tmp_path)
    assert not any(e.startswith("scontrol requeue") for e in events(tmp_path))


@pytest.mark.parametrize("gpus", [0, 1])
def test_success_is_the_heads_status(tmp_path, bash, gpus):
    proc = start(tmp_path, bash, gpus=gpus, head="ok", rollout="ok", learner="ok")
    code, out = finish(proc)
    assert code == 0 and "head finished with status 0" in out, out


def test_the_default_shape_one_node_no_worker_step(tmp_path, bash):
    """`launcher submit` with no --nodes / --gpus: the head alone, `worker_pids` empty
    (bash < 4.4 called it unbound under `set -u` and the job died)."""
    proc = start(tmp_path, bash, gpus=0, nodes=0, head="ok")
    code, out = finish(proc)
    assert code == 0 and "head finished with status 0" in out, out
    assert "unbound variable" not in out
    assert [e for e in events(tmp_path) if e.endswith(" start")] == ["head start"]


@pytest.mark.parametrize("runtime", ["apptainer", "none"])
def test_site_env_reaches_the_node_with_either_runtime(tmp_path, bash, runtime):
    """Apptainer's --cleanenv drops the host's variables: the site profile's `env:`
    must still reach `launcher node` inside the container."""
    image = tmp_path / "launcher.sif"
    image.write_text("")
    proc = start(tmp_path, bash, gpus=1, site={"env": {"OMP_NUM_THREADS": 3}},
                 flags={"runtime": runtime, "image": str(image)},
                 head="ok", rollout="ok", learner="ok")
    code, out = finish(proc)
    assert code == 0, out
    seen = sorted(e for e in events(tmp_path) if "OMP_NUM_THREADS" in e)
    assert seen == ["head OMP_NUM_THREADS=3", "learner OMP_NUM_THREADS=3",
                    "rollout OMP_NUM_THREADS=3"], (seen, out)
