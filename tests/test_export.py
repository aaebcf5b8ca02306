"""`launcher export`: the policy as one ONNX or TorchScript file, verified against RLlib.

Fast: the refusals (unknown format, missing extra, a bad output path, not a run dir).
Slow: the runs trained in tests/test_evaluate.py (PPO CartPole-v1, SAC Pendulum-v1, the
tutorial's BasicEnv with Discrete observations) exported to both formats, then run in a
fresh Python that imports no Ray: its actions are compared with `launcher evaluate`'s
greedy play and the files play the env on their own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from launcher.errors import MissingTool, UserError
from launcher.results import export
from tests.conftest import assert_one_line_error, call_cli, run_launcher
from tests.test_evaluate import basic_run, ppo_run, run_dir_with_checkpoint, sac_run  # noqa: F401


# --- fast ------------------------------------------------------------------------------
def test_unknown_format(capsys, tmp_path):
    run = run_dir_with_checkpoint(tmp_path / "run")
    code, _, err = call_cli(capsys, "export", str(run), "--format", "tflite", "-o", str(tmp_path / "p"))
    assert_one_line_error(code, err, "unknown format 'tflite' for --format; valid: onnx, torchscript")


def test_not_a_run_dir(capsys, tmp_path):
    code, _, err = call_cli(capsys, "export", str(tmp_path), "-o", str(tmp_path / "p.onnx"))
    assert_one_line_error(code, err, "neither a launcher run directory")


def test_output_in_a_missing_directory(capsys, tmp_path):
    run = run_dir_with_checkpoint(tmp_path / "run")
    code, _, err = call_cli(capsys, "export", str(run), "-o", str(tmp_path / "no" / "p.onnx"))
    assert_one_line_error(code, err, "does not exist")


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    with pytest.raises(MissingTool, match=r"pip install 'launcher\[export\]'"):
        export.check_format("onnx")
    export.check_format("torchscript")  # needs torch only
    with pytest.raises(UserError):
        export.check_format("ONNX")


# --- slow --------------------------------------------------------------------------------
PLAY = """
import sys, json
import numpy as np
import gymnasium as gym
fmt, path, env_id, dtype = sys.argv[1:5]
if fmt == "onnx":
    import onnxruntime as ort
    session = ort.InferenceSession(path)
    act = lambda obs: session.run(None, {"obs": obs})[0]
else:
    import torch
    model = torch.jit.load(path)
    act = lambda obs: model(torch.as_tensor(obs)).detach().numpy()
env = gym.make(env_id)
obs, _ = env.reset(seed=0)
total, done, steps = 0.0, False, 0
while not done:
    action = act(np.asarray([obs], dtype=dtype))[0]
    obs, reward, terminated, truncated, _ = env.step(action)
    total, done, steps = total + float(reward), terminated or truncated, steps + 1
assert "ray" not in sys.modules
print(json.dumps({"return": total, "steps": steps}))
"""


def exported(run: Path, fmt: str, out: Path) -> Path:
    proc = run_launcher("export", str(run), "--format", fmt, "-o", str(out), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "verified on 256 env observations" in proc.stdout, proc.stdout
    return out


def play_without_ray(fmt: str, path: Path, env_id: str, dtype: str = "float32") -> dict:
    import json

    proc = subprocess.run([sys.executable, "-c", PLAY, fmt, str(path), env_id, dtype],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_export_cartpole_and_play_it_without_ray(ppo_run, tmp_path, fmt, suffix):  # noqa: F811
    path = exported(ppo_run, fmt, tmp_path / f"policy{suffix}")
    played = play_without_ray(fmt, path, "CartPole-v1")
    assert played["return"] == played["steps"] > 0
    # The same greedy policy as RLlib's: evaluate's first episode with seed 0 is this one.
    proc = run_launcher("evaluate", str(ppo_run), "-n", "1", "--seed", "0", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"mean return {played['return']:.2f}" in proc.stdout, (played, proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("fmt,suffix", [("onnx", ".onnx"), ("torchscript", ".pt")])
def test_export_sac_continuous_actions(sac_run, tmp_path, fmt, suffix):  # noqa: F811
    path = exported(sac_run, fmt, tmp_path / f"policy{suffix}")
    played = play_without_ray(fmt, path, "Pendulum-v1")
    assert played["steps"] == 200 and played["return"] < 0


@pytest.mark.slow
def test_export_discrete_observations_one_hot(basic_run, tmp_path):  # noqa: F811
    path = exported(basic_run, "onnx", tmp_path / "basic.onnx")
    import numpy as np
    import onnxruntime

    actions = onnxruntime.InferenceSession(str(path)).run(None, {"obs": np.array([0, 1], dtype=np.int64)})[0]
    assert actions.shape == (2,) and actions.dtype == np.int64
    assert set(actions.tolist()) <= set(range(5))


@pytest.mark.slow
def test_a_wrong_export_is_refused(ppo_run, tmp_path, monkeypatch):  # noqa: F811
    """The verification is real: a file whose actions differ from RLlib's is not kept."""
    real = export.run_file
    monkeypatch.setattr(export, "run_file", lambda fmt, path, obs: 1 - real(fmt, path, obs))
    with pytest.raises(UserError, match="export verification failed: .* actions differ"):
        export.export(ppo_run, "onnx", tmp_path / "p.onnx")
    assert not list(tmp_path.iterdir())
