"""Videos of evaluated episodes: one MP4 per episode, a PNG strip of each, a GIF of the first.

Frames are the env's own `render()` in `rgb_array` mode. The MP4 is encoded with
imageio and the ffmpeg binary that the imageio-ffmpeg wheel ships (the `video` extra:
no system ffmpeg and no moviepy needed; Gymnasium's RecordVideo would pull moviepy and
its dependencies for the same ffmpeg call). The PNG strip (a few frames side by side)
and the short GIF are small enough for a README or a notebook.

    DIR/episode-000.mp4   every frame, at the env's render_fps
    DIR/episode-000.png   STRIP_FRAMES frames, evenly spaced, side by side
    DIR/episode-000.gif   the first episode only, scaled down, at most GIF_FRAMES frames
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from launcher.errors import MissingTool, UserError, first_line

EXTRA = "pip install 'launcher[video]'"
DEFAULT_FPS = 30
STRIP_FRAMES = 6
STRIP_HEIGHT = 120
GIF_FRAMES = 120
GIF_WIDTH = 320


def quiet_pygame() -> None:
    """Gymnasium's classic-control envs draw with pygame: no window, no sound device."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def check_encoder() -> None:
    """imageio and its bundled ffmpeg, or one line naming the extra."""
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise MissingTool(f"--video needs imageio with an ffmpeg encoder ({first_line(exc)}): "
                          f"{EXTRA}") from None


def check_frame(frame, env: str) -> np.ndarray:
    """A frame must be an H x W x 3 array of bytes; anything else: the env cannot be filmed."""
    array = np.asarray(frame) if frame is not None else None
    if array is None or array.ndim != 3 or array.shape[2] not in (3, 4) or array.size == 0:
        got = "nothing" if frame is None else f"{type(frame).__name__} {getattr(array, 'shape', '')}"
        raise UserError(f"--video: environment {env!r} does not render rgb_array frames "
                        f"(render() returned {got})")
    return array[..., :3].astype(np.uint8, copy=False)


def check_renders(make_env, env: str) -> int:
    """Build one env, reset it and render one frame; return its frames per second."""
    quiet_pygame()
    try:
        instance = make_env()
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"--video: environment {env!r} cannot be built to render: {first_line(exc)}"
                        ) from None
    try:
        instance.reset(seed=0)
        frame = instance.render()
    except Exception as exc:
        missing = type(exc).__name__ == "DependencyNotInstalled"
        raise (MissingTool if missing else UserError)(
            f"--video: environment {env!r} cannot render rgb_array frames: {first_line(exc)}"
            + (f" ({EXTRA})" if missing else "")) from None
    finally:
        try:
            instance.close()
        except Exception:
            pass
    check_frame(frame, env)
    return int(instance.metadata.get("render_fps") or DEFAULT_FPS)


def _scaled(frame: np.ndarray, height: int) -> np.ndarray:
    """Nearest-neighbour scaling to `height` rows (enough for a preview, no extra library)."""
    rows = np.linspace(0, frame.shape[0] - 1, height).astype(int)
    width = max(1, round(frame.shape[1] * height / frame.shape[0]))
    cols = np.linspace(0, frame.shape[1] - 1, width).astype(int)
    return frame[rows][:, cols]


def write_mp4(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, codec="libx264", pixelformat="yuv420p",
                            macro_block_size=2, ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def write_strip(frames: list[np.ndarray], path: Path) -> Path:
    import imageio.v2 as imageio

    picks = np.linspace(0, len(frames) - 1, min(STRIP_FRAMES, len(frames))).astype(int)
    tiles = [_scaled(frames[i], STRIP_HEIGHT) for i in picks]
    gap = np.full((STRIP_HEIGHT, 4, 3), 128, dtype=np.uint8)  # a grey line between frames
    imageio.imwrite(path, np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1))
    return path


def write_gif(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    import imageio.v2 as imageio

    step = max(1, -(-len(frames) // GIF_FRAMES))
    height = max(1, round(frames[0].shape[0] * GIF_WIDTH / frames[0].shape[1]))
    kept = [_scaled(f, height) for f in frames[::step]]
    imageio.mimsave(path, kept, duration=1000 * step / fps, loop=0)
    return path


class EpisodeFilm:
    """Writes each finished episode's frames (see the module docstring); `written` lists files."""

    def __init__(self, folder: str | Path, env: str, fps: int = DEFAULT_FPS):
        self.folder = Path(folder).expanduser()
        self.env, self.fps = env, fps
        self.episodes = 0
        self.written: list[Path] = []
        self.frame_counts: list[int] = []

    def prepare(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--video {self.folder}: cannot create it ({exc.strerror})") from None

    def __call__(self, frames: list) -> None:
        frames = [check_frame(f, self.env) for f in frames]
        if not frames:
            return
        stem = self.folder / f"episode-{self.episodes:03d}"
        self.written.append(write_mp4(frames, stem.with_suffix(".mp4"), self.fps))
        self.written.append(write_strip(frames, stem.with_suffix(".png")))
        if self.episodes == 0:
            self.written.append(write_gif(frames, stem.with_suffix(".gif"), self.fps))
        self.frame_counts.append(len(frames))
        self.episodes += 1
