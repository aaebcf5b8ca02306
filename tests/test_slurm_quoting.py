"""Nothing a user types can run a command through the job script (property-based).

Hostile strings (quotes, `$(...)`, backticks, `;`, `|`, `&`, globs, spaces, unicode)
go into every user-controlled value that reaches bash: the run directory (from
--output / --name), the image path, binds, modules, the environment to activate,
env values, the scratch dir. The rendered script then runs for real under bash,
with stub `srun`, `launcher`, `apptainer`, `module` and `scontrol` on PATH that
record their arguments. Each hostile string carries `touch MARKER`: the marker must
never appear, and every value must arrive byte for byte as one argument.

Values that end up on `#SBATCH` lines (job name, partition, account, QoS, time) are
parsed by sbatch, not bash: for them the property is "refused, or a plain Slurm name".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from launcher.cluster.slurm import job_options, render
from launcher.cluster.slurm.site import BIND_SEPARATORS, SLURM_NAME, SiteProfile
from launcher.errors import UserError

MARK = "MARKER"
PAYLOADS = ["$(touch {m})", "`touch {m}`", "; touch {m}", "| touch {m}", "&& touch {m}",
            "' ; touch {m} ; '", "\" ; touch {m} ; \"", "$(touch {m})'\"", "\\'; touch {m} #",
            "${{IFS}}touch${{IFS}}{m}", "* ?", "-rf", "--bind=/etc"]

hostile_piece = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n\r/"),
    max_size=12)


@st.composite
def hostile(draw, slash_ok: bool = False) -> str:
    """A string mixing a payload that would touch MARKER with arbitrary text."""
    payload = draw(st.sampled_from(PAYLOADS)).format(m=MARK)
    before, after = draw(hostile_piece), draw(hostile_piece)
    text = f"{before}{payload}{after}"
    if not slash_ok:
        text = text.replace("/", "_")
    return text


STUB = """#!/bin/bash
# records its name and arguments, one per line, NUL-separated
printf '%s\\0' "$(basename "$0")" "$@" > "$STUB_LOG.$$"
"""

SRUN = """#!/bin/bash
# srun stub: record, then run the step command (everything from `bash` on) locally
printf '%s\\0' srun "$@" > "$STUB_LOG.srun.$$"
while [ $# -gt 0 ] && [ "$1" != bash ]; do shift; done
SLURM_NODEID=0 SLURM_CPUS_PER_TASK=2 exec "$@"
"""


def make_stubs(folder: Path) -> Path:
    stubs = folder / "bin"
    stubs.mkdir()
    for name in ("launcher", "apptainer", "module", "scontrol"):
        (stubs / name).write_text(STUB.format())
    (stubs / "srun").write_text(SRUN)
    for path in stubs.iterdir():
        path.chmod(0o755)
    return stubs


def run_script(text: str, work: Path) -> list[list[str]]:
    """Run the rendered script with stubs; return the recorded calls."""
    stubs = make_stubs(work)
    script = work / "job.sh"
    script.write_text(text)
    log = work / "calls"  # each stub process writes calls.<pid>
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "STUB_LOG": str(log), "SLURM_JOB_ID": "42",
           "HOME": str(work), "TMPDIR": str(work / "tmp")}
    proc = subprocess.run(["bash", str(script)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = []
    for path in sorted(work.glob("calls.*")):
        calls.append(path.read_text(errors="surrogateescape").split("\0")[:-1])
    return calls


def markers(root: Path) -> list[Path]:
    return [p for p in root.rglob(MARK)] + ([Path.cwd() / MARK] if (Path.cwd() / MARK).exists() else [])


def no_bind_separators(text: str) -> str:
    for sep in BIND_SEPARATORS:
        text = text.replace(sep, "_")
    return text


needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@needs_bash
@pytest.mark.slow  # runs the rendered script under bash 25 times (~25 s): `make test`, not the quick suite
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_name=hostile(), image=hostile(), bind=hostile(), module=hostile(),
       env_value=hostile(), activate_name=hostile(), scratch_name=hostile(),
       runtime=st.sampled_from(["none", "apptainer"]), gpus=st.sampled_from([0, 1]))
def test_hostile_values_arrive_verbatim_and_run_nothing(run_name, image, bind, module, env_value,
                                                        activate_name, scratch_name, runtime, gpus):
    if runtime == "apptainer":  # Apptainer's --bind syntax: those are refused (test_slurm_render)
        run_name, bind, scratch_name = (no_bind_separators(t) for t in (run_name, bind, scratch_name))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_dir = work / "runs" / run_name
        run_dir.mkdir(parents=True)
        activate = work / f"act {activate_name}"
        activate.write_text("export ACTIVATED=1\n")
        scratch = work / f"scratch {scratch_name}"
        site = SiteProfile.from_dict({
            "modules": [module], "binds": [bind], "env": {"USER_VALUE": env_value},
            "activate": str(activate), "scratch": str(scratch), "unset": ["LD_PRELOAD"]})
        options = job_options(site, {"nodes": 2, "gpus": gpus, "cpus_per_node": 2,
                                     "runtime": runtime, "image": image, "job_name": "q"})
        calls = run_script(render(options, run_dir), work)

        assert not markers(work), "a hostile value ran a command"
        by_tool = {}
        for call in calls:
            by_tool.setdefault(call[0], []).append(call[1:])
        assert by_tool["module"] == [["load", module]]
        node_calls = by_tool["apptainer" if runtime == "apptainer" else "launcher"]
        roles = sorted(args[args.index("--role") + 1] for args in node_calls)
        assert roles == (["head", "learner", "rollout"] if gpus else ["head", "rollout"])
        for args in node_calls:
            assert args[args.index("--run-dir") + 1] == str(run_dir)
            if runtime == "apptainer":
                assert args[args.index("node") - 2:args.index("node")] == [image, "launcher"]
                pairs = list(zip(args, args[1:], strict=False))
                assert ("--bind", bind) in pairs
                role = args[args.index("--role") + 1]
                assert f"{scratch}/launcher-42/{role}:/tmp" in args


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=40), where=st.sampled_from(["job_name", "partition", "account",
                                                          "qos", "learner_qos", "time"]))
def test_sbatch_line_values_are_refused_or_plain(name, where):
    try:
        options = job_options(SiteProfile(), {where: name, "gpus": 1})
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    text = render(options, "/r")
    if where == "time":
        assert f"#SBATCH --time={name.strip()}" in text
    else:
        assert SLURM_NAME.fullmatch(name)
        assert f"={name}\n" in text


@settings(max_examples=40, deadline=None)
@given(run_name=hostile(slash_ok=True))
def test_run_dir_is_one_single_quoted_word(run_name):
    """Static view of the same property: the run dir appears once, as a single
    shlex-quoted word in an assignment, and bash -n accepts the script."""
    import shlex

    run_dir = "/shared/" + run_name
    text = render(job_options(SiteProfile(), {"nodes": 1}), run_dir)
    assert f"export LAUNCHER_RUN_DIR={shlex.quote(run_dir)}\n" in text
    assert text.count(shlex.quote(run_dir)) == 1
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as fh:
        fh.write(text)
    try:
        assert subprocess.run(["bash", "-n", fh.name], capture_output=True).returncode == 0
    finally:
        os.unlink(fh.name)


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=20), where=st.sampled_from(["env", "unset"]))
def test_variable_names_are_refused_or_plain(name, where):
    """Env names and `unset` entries reach bash as words of their own: anything but a
    variable name (a trailing newline included) is refused."""
    from launcher.cluster.slurm.site import ENV_NAME

    profile = {"env": {name: "x"}} if where == "env" else {"unset": [name]}
    try:
        site = SiteProfile.from_dict(profile)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert ENV_NAME.fullmatch(name)
    text = render(job_options(site, {}), "/r")
    assert (f"\nexport {name}=x\n" if where == "env" else f"\nunset {name}\n") in text


SITE_VALUE = st.one_of(st.text(max_size=30), hostile(), st.sampled_from(
    ["16G", "a100|h100", "END,FAIL", "afterok:12:13", "me@lab.org", "tmp=20G", "learner:tmp=1G"]))


@settings(max_examples=150, deadline=None)
@given(value=SITE_VALUE, where=st.sampled_from(["mem", "constraint", "reservation", "mail_type",
                                                "mail_user", "dependency", "gpu_type", "sbatch"]))
def test_site_option_values_are_refused_or_one_plain_word(value, where):
    """The #SBATCH lines of --mem, --constraint, ..., --sbatch: a value is refused in one
    line, or lands on its own #SBATCH line as one word without a shell or quote character."""
    flags = {where: [value] if where == "sbatch" else value, "gpus": 1}
    try:
        options = job_options(SiteProfile(), flags)
    except UserError as exc:
        assert "\n" not in str(exc).replace(repr(value), "")
        return
    base = set(render(job_options(SiteProfile(), {"gpus": 1}), "/r").splitlines())
    added = [line for line in render(options, "/r").splitlines()
             if line.startswith("#SBATCH ") and line not in base]
    assert added, (where, value)
    for line in added:
        word = line.removeprefix("#SBATCH ")
        assert word.startswith("--") and not set(word) & set(" \t\r\n'\"`$;#\\<>(){}~"), line
