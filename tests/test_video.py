"""launcher/results/video.py: frames of a real env encoded to MP4, a PNG strip and a GIF,
decoded again and counted."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest

from launcher.errors import MissingTool, UserError
from launcher.results import video


def decoded_frames(path: Path) -> int:
    """The frames a decoder reads back from a video file (imageio's bundled ffmpeg)."""
    import imageio.v2 as imageio

    with imageio.get_reader(path) as reader:
        return sum(1 for frame in reader if np.asarray(frame).size)


def cartpole_frames(steps: int) -> list[np.ndarray]:
    video.quiet_pygame()
    env = gymnasium.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=0)
    frames = [env.render()]
    for _ in range(steps):
        env.step(env.action_space.sample())
        frames.append(env.render())
    env.close()
    return frames


def test_an_episode_becomes_an_mp4_a_strip_and_a_gif(tmp_path):
    film = video.EpisodeFilm(tmp_path / "v", "CartPole-v1", fps=50)
    film.prepare()
    film(cartpole_frames(9))
    film(cartpole_frames(4))
    assert decoded_frames(tmp_path / "v" / "episode-000.mp4") == 10
    assert decoded_frames(tmp_path / "v" / "episode-001.mp4") == 5
    import imageio.v2 as imageio

    strip = imageio.imread(tmp_path / "v" / "episode-000.png")
    assert strip.shape[0] == video.STRIP_HEIGHT and strip.shape[1] > 5 * video.STRIP_HEIGHT
    # A GIF stores identical consecutive frames once (CartPole's first steps barely move).
    assert 1 < len(imageio.mimread(tmp_path / "v" / "episode-000.gif")) <= 10
    assert not (tmp_path / "v" / "episode-001.gif").exists()  # the first episode only
    assert film.frame_counts == [10, 5]


def test_a_long_episode_gives_a_short_gif(tmp_path):
    frames = [np.full((40, 60, 3), i % 255, dtype=np.uint8) for i in range(300)]
    gif = video.write_gif(frames, tmp_path / "x.gif", fps=30)
    import imageio.v2 as imageio

    kept = imageio.mimread(gif)
    assert len(kept) <= video.GIF_FRAMES and kept[0].shape[1] == video.GIF_WIDTH


def test_the_env_renders_check():
    fps = video.check_renders(lambda: gymnasium.make("CartPole-v1", render_mode="rgb_array"),
                              "CartPole-v1")
    assert fps == 50
    with pytest.raises(UserError, match="does not render rgb_array frames"), \
            pytest.warns(UserWarning, match="without specifying any render mode"):
        video.check_renders(lambda: gymnasium.make("CartPole-v1"), "CartPole-v1")


def test_a_frame_that_is_not_an_image_is_refused():
    with pytest.raises(UserError, match="does not render rgb_array frames"):
        video.check_frame("ansi text", "X")
    assert video.check_frame(np.zeros((2, 3, 4)), "X").shape == (2, 3, 3)


def test_missing_encoder_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # makes the import fail
    with pytest.raises(MissingTool, match=r"pip install 'launcher\[video\]'"):
        video.check_encoder()
