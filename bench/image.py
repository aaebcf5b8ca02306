"""Container image figures (issue 3 goals): `make bench-image`.

  1. size of launcher:cpu, uncompressed                         goal <= 1.8 GB
  2. rebuild after a change to the launcher's own code only,
     dependencies cached (a copy of the build context with one
     line added to launcher/__init__.py; tagged launcher:bench,
     removed afterwards)                                         goal <= 30 s
  3. `docker run` to the first finished training iteration      goal <= 10 s

Run after `make image`. Options: --image, --runs N (for 3), --skip-rebuild, --baseline (3 also
on the host, outside any container: what the image adds on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from solve_time import LAUNCHER_LINE, timed_run  # bench/ is this script's sys.path[0]

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.slurm_cluster import docker_cli  # noqa: E402

DOCKER = docker_cli()
CONTEXT = ["Dockerfile", "Dockerfile.gpu", ".dockerignore", "pyproject.toml", "README.md",
           "launcher", "images"]


def image_size(image: str) -> int:
    out = subprocess.run([DOCKER, "image", "inspect", "--format", "{{.Size}}", image],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def copy_context(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in CONTEXT:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    (dest / "wheelhouse").mkdir()
    for wheel in (REPO / "wheelhouse").iterdir():  # hard links: no 200 MB copy
        try:
            os.link(wheel, dest / "wheelhouse" / wheel.name)
        except OSError:
            shutil.copy2(wheel, dest / "wheelhouse" / wheel.name)


def build(context: Path, tag: str, expect_rebuilt: bool = False) -> float:
    env = {**os.environ, "DOCKER": DOCKER, "TAG": tag, "PROGRESS": "plain"}
    start = time.monotonic()
    result = subprocess.run([str(context / "images" / "build.sh"), "cpu"], cwd=context, env=env,
                            capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    if expect_rebuilt and "Successfully installed launcher" not in result.stdout + result.stderr:
        sys.exit("the launcher's layer was not rebuilt: the figure would be meaningless")
    return elapsed


def rebuild_time() -> float:
    tag = "launcher:bench"
    with tempfile.TemporaryDirectory(prefix="lt-img-bench-") as tmp:
        context = Path(tmp)
        copy_context(context)
        build(context, tag)  # same sources as `make image`: every layer from the cache
        init = context / "launcher" / "__init__.py"
        init.write_text(init.read_text() + f"# bench {uuid.uuid4().hex}\n")
        elapsed = build(context, tag, expect_rebuilt=True)
    subprocess.run([DOCKER, "image", "rm", tag], capture_output=True)
    return elapsed


TRAIN = ["launcher", "train", "--env", "CartPole-v1", "--stop-iters", "1"]


def run_to_first_iteration(image: str | None) -> float:
    """Seconds from `docker run` (or, image None, from starting the host's launcher) to the
    first finished training iteration on stdout."""
    if image is None:
        tmp = tempfile.mkdtemp(prefix="lt-img-bench-")
        cmd = [str(Path(sys.executable).parent / "launcher"), *TRAIN[1:], "--output", tmp]
    else:
        name = f"lt-img-bench-{uuid.uuid4().hex[:8]}"
        cmd = [DOCKER, "run", "--rm", "--name", name, "--shm-size=2g", image,
               *TRAIN, "--output", "/tmp/results"]
    try:
        first = timed_run(cmd, LAUNCHER_LINE, timeout=120)["first_iter_s"]
    finally:
        if image is None:
            shutil.rmtree(tmp, ignore_errors=True)
    if first is None:  # timed_run printed the output's tail
        sys.exit("no training iteration reported")
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="launcher:cpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--baseline", action="store_true",
                        help="also time the same training run on the host, outside any container")
    args = parser.parse_args()

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (figures 2 and 3 depend on it)")
    size = image_size(args.image)
    verdict = lambda ok: "ok" if ok else "OVER GOAL"  # noqa: E731
    print(f"image size          {size / 1e9:6.2f} GB ({size / 2**30:.2f} GiB)   goal <= 1.8 GB   "
          f"{verdict(size <= 1.8e9)}", flush=True)
    if not args.skip_rebuild:
        seconds = rebuild_time()
        print(f"code-only rebuild   {seconds:6.1f} s                goal <= 30 s     "
              f"{verdict(seconds <= 30)}", flush=True)
    for label, image in [("run to iteration 1", args.image), ("  same, host venv", None)]:
        if image is None and not args.baseline:
            break
        times = [run_to_first_iteration(image) for _ in range(args.runs)]
        if not times:
            return
        best, median = min(times), statistics.median(times)
        goal = f"goal <= 10 s     {verdict(median <= 10)}" if image else "(no container: the baseline)"
        print(f"{label:<19} {median:6.1f} s median, {best:.1f} s best of {len(times)}   {goal}   "
              f"({', '.join(f'{t:.1f}' for t in times)})", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
