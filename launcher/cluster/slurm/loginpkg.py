"""The launcher for a cluster's login node, as one file: a zipapp (PEP 441) of the launcher
and the pure-Python part of what its commands need there (typer, PyYAML, Jinja2, rich...).

A login node has Python, Slurm's commands and Apptainer, but no torch and no Ray. There
`launcher submit --runtime apptainer` plans the job, runs every check that needs the
training stack inside the job's image (inimage.py) and calls sbatch; `status`, `logs`,
`cancel` and `list` need nothing more. The zipapp is built into the SIF (apptainer/*.def,
%post) from the image's own environment, so the login node's launcher is the version of
the image's. A user installs it with one command (install-login.sh, written next to it):

    apptainer exec launcher-cpu.sif cat /opt/launcher/install-login.sh | sh -s launcher-cpu.sif

Compiled extensions are left out, so it runs on any Python from 3.10: PyYAML and MarkupSafe
fall back to their pure-Python code; what has no fallback (pydantic-core, which typer's
parameter handling needs) the script installs with pip for the login node's Python, pinned to
the image's version, into ~/.local/share/launcher/pyX.Y (found by the zipapp, which holds
their pure-Python requirements already: `--no-deps`; no root, no venv, allowed next to an
externally managed Python). Build:
`python -m launcher.cluster.slurm.loginpkg DIR` -> DIR/launcher.pyz, DIR/install-login.sh.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import sys
import zipfile
from pathlib import Path

# What the login node's commands import (the CLI, site profiles and spec files, the job
# template); their own requirements are followed from the installed metadata.
ROOTS = ("launcher", "typer", "PyYAML", "Jinja2", "rich")
SKIPPED_SUFFIXES = (".so", ".pyd", ".pyc", ".dylib")
# Distributions whose compiled part has a pure-Python fallback.
FALLBACKS = frozenset({"pyyaml", "markupsafe"})
# Runs first: the private dir of pip-installed compiled parts on the path, or one line
# saying how to get them.
MAIN = """import os, sys

_native = {native!r}
_where = os.path.join(os.path.expanduser("~"), ".local", "share", "launcher",
                      "py%d.%d" % sys.version_info[:2])
if os.path.isdir(_where):
    sys.path.append(_where)
for _module, _pin in _native.items():
    try:
        __import__(_module)
    except ImportError:
        sys.stderr.write("error: the launcher needs %s for this Python (%d.%d): "
                         "python3 -m pip install --target %s %s\\n"
                         % (_pin, sys.version_info[0], sys.version_info[1], _where, _pin))
        sys.exit(4)

from launcher.cli import main

main()
"""
PIP = """py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
python3 -m pip install --quiet --disable-pip-version-check --no-deps \\
  --target "$HOME/.local/share/launcher/py$py" {pins}
"""
INSTALL = """#!/bin/sh
# Install the launcher on a login node (Python >= 3.10, Apptainer; no torch, no Ray needed):
#   apptainer exec IMAGE.sif cat /opt/launcher/install-login.sh | sh -s IMAGE.sif
# -> $LAUNCHER_BIN/launcher (default ~/.local/bin), the image's own version, and the compiled
# packages it needs, pinned, for this Python (pip; PIP_* settings such as an index apply).
set -eu
sif=${{1:?usage: sh -s IMAGE.sif}}
bin=${{LAUNCHER_BIN:-$HOME/.local/bin}}
mkdir -p "$bin"
apptainer exec "$sif" cat /opt/launcher/launcher.pyz > "$bin/.launcher.$$"
chmod 755 "$bin/.launcher.$$"
mv "$bin/.launcher.$$" "$bin/launcher"
{pip}"$bin/launcher" --version
"""
SHEBANG = b"#!/usr/bin/env python3\n"


def requirement_name(requirement: str) -> str | None:
    """The distribution a requirement names, or None when it only applies to an extra or
    another platform."""
    name, _, marker = requirement.partition(";")
    if "extra" in marker or "Windows" in marker or "win32" in marker:
        return None
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
    return match.group(1) if match else None


def closure(roots: tuple[str, ...] = ROOTS, skip: frozenset[str] = frozenset({"launcher"})
            ) -> list[metadata.Distribution]:
    """The installed distributions `roots` need (the launcher's own heavy requirements are
    not followed: only the roots named here are)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        if key in skip:
            continue
        todo += [n for r in dist.requires or [] if (n := requirement_name(r))]
    return list(seen.values())


def dist_files(dist: metadata.Distribution) -> list[tuple[Path, str]]:
    """(file on disk, name in the archive) for a distribution's Python code and data."""
    out = []
    for item in dist.files or []:
        parts = Path(str(item)).parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info")) or parts[0] in ("..", "bin"):
            continue
        if "__pycache__" in parts or str(item).endswith(SKIPPED_SUFFIXES):
            continue
        path = Path(str(dist.locate_file(item)))
        if path.is_file():
            out.append((path, "/".join(parts)))
    return out


def package_files(name: str) -> list[tuple[Path, str]]:
    """The launcher package from wherever it is imported (an editable install or a source
    tree lists no files in its metadata)."""
    import launcher

    root = Path(launcher.__file__).resolve().parent
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(SKIPPED_SUFFIXES):
            out.append((path, f"{name}/{path.relative_to(root).as_posix()}"))
    return out


def key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def native_modules(dist: metadata.Distribution) -> list[str]:
    """Top-level modules of a distribution that ship compiled code and have no fallback."""
    if key(dist.metadata["Name"]) in FALLBACKS:
        return []
    files = [Path(str(f)) for f in dist.files or []]
    return sorted({f.parts[0] for f in files if str(f).endswith(SKIPPED_SUFFIXES[:2])
                   and len(f.parts) > 1})


def contents() -> tuple[list[tuple[Path, str]], dict[str, str]]:
    """The files to bundle, and {module: 'dist==version'} of what pip must bring."""
    files = package_files("launcher")
    native: dict[str, str] = {}
    for dist in closure():
        name = dist.metadata["Name"]
        if key(name) == "launcher":
            continue
        modules = native_modules(dist)
        if modules:
            native.update({m: f"{key(name)}=={dist.version}" for m in modules})
        else:
            files += dist_files(dist)
    return files, native


def write_zipapp(out: Path, files: list[tuple[Path, str]], native: dict[str, str]) -> None:
    from launcher import __version__

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    names: set[str] = set()
    with open(tmp, "wb") as fh:
        fh.write(SHEBANG)
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("__main__.py", MAIN.format(native=native))
            zf.writestr(f"launcher-{__version__}.dist-info/METADATA",
                        f"Metadata-Version: 2.1\nName: launcher\nVersion: {__version__}\n")
            for path, name in files:
                if name not in names:
                    names.add(name)
                    zf.write(path, name)
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)


def build(out_dir: str | Path) -> Path:
    """Write launcher.pyz (0755) and install-login.sh into `out_dir`; return the zipapp."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, native = contents()
    write_zipapp(out_dir / "launcher.pyz", files, native)
    pins = " ".join(sorted(set(native.values())))
    (out_dir / "install-login.sh").write_text(INSTALL.format(pip=PIP.format(pins=pins) if pins else ""))
    return out_dir / "launcher.pyz"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m launcher.cluster.slurm.loginpkg DIR", file=sys.stderr)
        return 2
    path = build(argv[0])
    print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
