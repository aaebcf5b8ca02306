"""`launcher tensorboard RUN_DIR...`: TensorBoard on one or several runs.

Every run directory gets a name (its folder name) in TensorBoard's `--logdir_spec`,
so several runs show side by side. On a cluster login node (or inside a Slurm
job, or any SSH session) the command a user runs on their laptop to reach it is
printed too: the tutorial's `ssh -NfL 6006:localhost:6006 $USER@login-node`.

TensorBoard is the optional extra `tensorboard` (pip install 'launcher[tensorboard]');
training itself writes the event files with tensorboardX, a core dependency.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from launcher.errors import UserError

EVENT_GLOB = "events.out.tfevents.*"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def has_event_files(run_dir: Path) -> bool:
    return any(p.is_file() for p in Path(run_dir).rglob(EVENT_GLOB))


def logdir_spec(run_dirs: list[Path]) -> str:
    """`name:path,name:path` for TensorBoard; each dir must hold event files."""
    if not run_dirs:
        raise UserError("give at least one run directory")
    names: dict[str, int] = {}
    parts = []
    for run_dir in run_dirs:
        path = Path(run_dir).expanduser()
        if not path.is_dir():
            raise UserError(f"run directory not found: {run_dir}")
        if not has_event_files(path):
            raise UserError(f"{run_dir} has no TensorBoard event files ({EVENT_GLOB}): "
                            "is it a launcher run directory (ray_results/<run>)?")
        resolved = str(path.resolve())
        if "," in resolved:
            raise UserError(f"TensorBoard cannot serve a path containing a comma: {resolved}")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.resolve().name) or "run"
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name}_{names[name]}"
        parts.append(f"{name}:{resolved}")
    return ",".join(parts)


def tunnel_command(port: int, env: Mapping[str, str] | None = None) -> str | None:
    """The ssh command for the user's laptop, when this looks like a remote machine.

    On a login node (an SSH session): forward to this host's localhost. Inside a Slurm
    job (a compute node): forward through the submit host to this node."""
    env = os.environ if env is None else env
    remote = any(env.get(k) for k in ("SSH_CONNECTION", "SSH_CLIENT", "SLURM_CLUSTER_NAME",
                                       "SLURM_JOB_ID"))
    if not remote:
        return None
    user = env.get("USER") or getpass.getuser()
    node = socket.getfqdn() or socket.gethostname()
    if env.get("SLURM_JOB_ID"):
        login = env.get("SLURM_SUBMIT_HOST") or "LOGIN_NODE"
        return f"ssh -N -L {port}:{node}:{port} {user}@{login}"
    return f"ssh -N -L {port}:localhost:{port} {user}@{node}"


def _tensorboard_program():
    # TensorBoard imports TensorFlow when it is installed (the `tf` extra): keep its
    # C++ INFO/WARNING lines off the terminal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from tensorboard import program
    except ImportError:
        raise UserError("TensorBoard is not installed: pip install 'launcher[tensorboard]'") from None
    return program


def start(run_dirs: list[Path], port: int = 6006, host: str = "127.0.0.1") -> str:
    """Start TensorBoard in a background thread of this process; return its URL."""
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    spec = logdir_spec(run_dirs)
    program = _tensorboard_program()
    board = program.TensorBoard()
    try:
        board.configure(argv=[None, "--logdir_spec", spec, "--port", str(port), "--host", host,
                              "--reload_interval", "5"])
        return board.launch()
    except program.TensorBoardPortInUseError:
        raise UserError(f"port {port} on {host} is already in use: pick another with --port") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"TensorBoard cannot start on {host}:{port}: {exc}") from None


def serve(run_dirs: list[Path], port: int = 6006, host: str = "127.0.0.1",
          say: Callable[[str], None] = print) -> None:
    """Start TensorBoard, print where to reach it, and serve until interrupted."""
    url = start(run_dirs, port, host)
    say(f"TensorBoard on {len(run_dirs)} run(s) at {url} (Ctrl+C to stop)")
    tunnel = tunnel_command(port)
    if tunnel:
        say(f"from your laptop: {tunnel}")
        say(f"then open http://localhost:{port}/")
        if os.environ.get("SLURM_JOB_ID") and host in LOOPBACK:
            say("(this is a compute node: for that tunnel start TensorBoard with --host 0.0.0.0)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        say("TensorBoard stopped")
