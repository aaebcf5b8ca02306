"""The Docker engine and the trainer image, as `launcher local` and `launcher doctor`
see them: one way to connect, one way to check the image.

Both checks fail with one line that says what is missing and how to fix it, never with
docker-py's exception text (a page of urllib3 internals). The error keeps the two
halves apart (`what`, `fix`) so that `launcher doctor` can show them in its table:

    docker_client()            the engine, or EngineUnreachable (MissingTool: exit 4)
    check_image(client, image) the image's facts (labels, id, size), or ImageUnusable
                               (UserError: exit 2) when it is missing, or when its
                               torch cannot use the GPUs the learner would be given
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from launcher.errors import MissingTool, UserError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
TORCH_LABEL = "launcher.torch"  # set by Dockerfile ("cpu") and Dockerfile.gpu ("cuda")
DOCTOR_HINT = "`launcher doctor --for local` checks this machine"


class TwoPartError:
    """An error message in two halves: what is wrong, and what to do about it."""

    def __init__(self, what: str, fix: str, hint: str = ""):
        super().__init__(f"{what}: {fix}" + (f"; {hint}" if hint else ""))
        self.what = what
        self.fix = fix


class EngineUnreachable(TwoPartError, MissingTool):
    """No Docker engine answers (or this user may not use it)."""


class ImageUnusable(TwoPartError, UserError):
    """The trainer image is missing, or cannot do what the run asks of it."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def _os_errors(exc: BaseException):
    """The OS-level errors under docker-py's and requests' wrappers."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            yield exc
        for arg in getattr(exc, "args", ()):
            if isinstance(arg, OSError):
                yield arg
        exc = exc.__cause__ or exc.__context__


def unreachable(exc: BaseException) -> EngineUnreachable:
    """The one line for an engine that did not answer, by the cause underneath."""
    where = engine_address()
    for cause in _os_errors(exc):
        if isinstance(cause, PermissionError):
            return EngineUnreachable(
                f"no permission to use the Docker engine at {where}",
                "add this user to the docker group (then log in again), or set DOCKER_HOST "
                "to an engine this user may use", DOCTOR_HINT)
        if isinstance(cause, FileNotFoundError):
            return EngineUnreachable(
                f"no Docker engine at {where} (no such socket)",
                "start the engine (Debian: apt-get install docker.io && dockerd &), "
                "or set DOCKER_HOST to a running one", DOCTOR_HINT)
        if isinstance(cause, ConnectionRefusedError):
            return EngineUnreachable(
                f"no Docker engine answers at {where} (connection refused)",
                "start the engine, or set DOCKER_HOST to a running one", DOCTOR_HINT)
    return EngineUnreachable(
        f"cannot reach the Docker engine at {where}",
        "start the engine, or set DOCKER_HOST to a running one", DOCTOR_HINT)


def docker_client(timeout: float = 120):
    """A docker-py client for the engine DOCKER_HOST names (default: the local socket),
    checked with a ping; EngineUnreachable otherwise."""
    try:
        import docker
    except ImportError:  # pragma: no cover - a dependency
        raise MissingTool("the docker Python package is missing: pip install docker") from None
    try:
        client = docker.from_env(timeout=timeout)
    except docker.errors.DockerException as exc:
        if any(True for _ in _os_errors(exc)):
            raise unreachable(exc) from None
        raise EngineUnreachable(f"DOCKER_HOST={engine_address()} is not a Docker engine address",
                                "set DOCKER_HOST to one (e.g. unix:///var/run/docker.sock), "
                                "or unset it", DOCTOR_HINT) from None
    try:
        client.ping()
    except Exception as exc:  # docker-py's and requests' errors alike
        raise unreachable(exc) from None
    return client


@dataclass(frozen=True)
class ImageFacts:
    """What the launcher reads of an image: its labels, and what doctor shows."""

    name: str
    short_id: str
    size_bytes: int
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def torch(self) -> str | None:
        """'cpu' or 'cuda' for the launcher's images; None for an image without the label."""
        return self.labels.get(TORCH_LABEL)


def check_image(client, image: str, gpus: int = 0) -> ImageFacts:
    """The image's facts; ImageUnusable when it is not in the engine, or when `gpus` > 0
    (NVIDIA GPUs Docker would hand the learner container) and its torch is CPU-only,
    which would fail only once the learner starts. Images without the label pass."""
    import docker

    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ImageUnusable(f"image {image} not found",
                            "build it with `make image` (or pass --image)") from None
    facts = ImageFacts(image, found.short_id, int(found.attrs.get("Size") or 0),
                       dict(found.labels or {}))
    if gpus and facts.torch == "cpu":
        raise ImageUnusable(f"this host has {gpus} NVIDIA GPU(s) for the learner, but {image} "
                            "has CPU-only torch",
                            "build the CUDA image (`make image-gpu`) and pass --image launcher:gpu")
    return facts
