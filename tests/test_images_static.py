"""Container image sources, checked without building: hadolint, shellcheck, golden records of
the Apptainer definitions, and the pinned lists against pyproject.toml. Quick (no Docker)."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden" / "apptainer"
DEFS = ["cpu.def", "gpu.def"]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.fail(f"{name} not found: it comes with the `test` extra (make venv)")
    return path


def def_sections(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """An Apptainer definition: (header keywords, {section name: body})."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^%(\w+)\s*$", line)
        if match:
            current = match.group(1)
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
    return header, {k: "\n".join(v).strip("\n") for k, v in sections.items()}


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_pass_hadolint(dockerfile):
    # Only DL3008 is ignored (on tini's apt line, with its reason in the Dockerfile). pip runs
    # through images/pip-install.sh: pins come from the lock files, caches from a cache mount.
    result = subprocess.run([tool("hadolint"), "--no-color", str(REPO / dockerfile)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_scripts_pass_shellcheck():
    scripts = sorted(str(p) for p in [*(REPO / "images").glob("*.sh"),
                                      *(REPO / "tests" / "infra" / "apptainer").glob("*.sh")])
    result = subprocess.run([tool("shellcheck"), *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DEFS)
def test_apptainer_definitions_match_golden(name):
    """What users build on clusters shows up in review: refresh deliberately."""
    current = (REPO / "apptainer" / name).read_text()
    golden_path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden_path.write_text(current)
    golden = golden_path.read_text()
    diff = "".join(difflib.unified_diff(golden.splitlines(True), current.splitlines(True),
                                        f"golden/apptainer/{name}", f"apptainer/{name}"))
    assert not diff, (f"apptainer/{name} differs from its golden record:\n{diff}\n"
                      f"If the change is intended: UPDATE_GOLDEN=1 .venv/bin/pytest "
                      f"tests/test_images_static.py -k golden, and commit tests/golden/apptainer/{name}")


@pytest.mark.parametrize("name", DEFS)
def test_apptainer_definitions_have_what_clusters_need(name):
    variant = name.removesuffix(".def")
    header, sections = def_sections((REPO / "apptainer" / name).read_text())
    # from the locally built Docker image: no registry needed
    assert header == {"Bootstrap": "docker-daemon", "From": f"launcher:{variant}"}
    assert {"labels", "environment", "runscript", "test", "help"} <= set(sections)
    assert sections["runscript"].strip() == 'exec launcher "$@"'
    test = sections["test"]
    assert re.search(r"import ray, torch, gymnasium, launcher\b", test), test
    assert "launcher --version" in test
    assert "RAY_TMPDIR" in sections["environment"]
    if variant == "gpu":
        assert "--nv" in sections["help"]


def _names(requirements: Path) -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def _normalize(spec: str) -> tuple[str, str | None]:
    match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(==\s*([^,;\s]+))?", spec)
    assert match, spec
    return match.group(1).lower().replace("_", "-"), match.group(4)


def test_image_lock_files_cover_pyproject():
    """The image installs images/requirements*.txt with --no-deps: a dependency added to
    pyproject.toml without `make lock` would otherwise be missing (the build's `pip check`
    catches it too, but only after minutes)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = _names(REPO / "images" / "requirements.txt")
    tf = {**base, **_names(REPO / "images" / "requirements-tf.txt")}
    extras = project["optional-dependencies"]
    for pins, specs in ((base, project["dependencies"]), (base, extras["multiagent"]),
                        (tf, extras["tf"])):
        for spec in specs:
            name, exact = _normalize(spec)
            if name == "torch":  # its own layer: CPU or CUDA build
                continue
            assert name in pins, f"{name} is not in the image lock files: run `make lock`"
            if exact:
                assert pins[name] == exact, \
                    f"{name}: pyproject pins {exact}, the lock has {pins[name]}: run `make lock`"


DEB822 = """Types: deb
URIs: http://security.mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
# a comment inside a stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


@pytest.mark.parametrize("files, expected", [
    ({"sources.list.d/debian.sources": DEB822}, "http://mirror.example/debian"),
    ({"sources.list": "# old style\n"
                      "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"
                      "deb http://two.example/debian bookworm main\n"}, "http://one.example/debian"),
    ({"sources.list.d/other.list": "deb http://x.example/debian-security bookworm-security main\n"}, None),
])
def test_base_image_reads_the_mirror_from_apt_sources(tmp_path, files, expected):
    """The mirror is never written in the repo: base-image.sh finds it in the apt sources."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "MIRROR"}
    result = subprocess.run([str(REPO / "images" / "base-image.sh"), "--print-mirror"],
                            env={**env, "APT_ETC": str(tmp_path)}, capture_output=True, text=True)
    if expected is None:
        assert result.returncode == 1 and "set MIRROR=" in result.stderr, result
    else:
        assert (result.returncode, result.stdout.strip()) == (0, expected), result
