"""`launcher export`: a run's policy as one standalone file, ONNX or TorchScript.

The file maps a batch of raw env observations to the actions the env receives, with
everything between them that RLlib does at inference: the observation preprocessing of
training's env-to-module connectors (float32; one-hot for Discrete and MultiDiscrete
observations, as FlattenObservations does), the RLModule's `forward_inference`, the
greedy action of its action distribution, and the module-to-env step that unsquashes or
clips continuous actions to the action space's bounds. Running it needs onnxruntime
(or torch) and nothing of Ray:

    obs   [batch, *observation shape] float32 (Box) or int64 (Discrete, MultiDiscrete)
    ->    actions [batch] int64 (Discrete) or [batch, *action shape] float32 (Box)

An export is verified before it is kept: the restored RLlib runner (restore.py) plays
greedy steps of the env, and on the observations it met the file must give the actions
RLlib sent to the env: equal for discrete actions, within 1e-5 for continuous ones. A
mismatch is an error and no file is left behind. A run whose env-to-module pipeline
holds a connector this file does not reproduce is refused.

A multi-agent run gives one file per policy, named after `-o`: `-o policy.onnx` writes
`policy.POLICY.onnx` for each. Each is verified the same way on observations drawn from
its policy's observation space, against the policy's own RLModule (a multi-agent
runner's steps are not recorded per agent).

ONNX export and checking use the `export` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from launcher.errors import MissingTool, UserError, first_line
from launcher.results import restore

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
EXTRA = "pip install 'launcher[export]'"
VERIFY_STEPS = 256
TOLERANCE = 1e-5
ONNX_OPSET = 17
# The env-to-module connectors that only move data (batching, tensors, episode
# bookkeeping) and the one the launcher adds for non-Box observations.
PLAIN_CONNECTORS = frozenset({
    "AddObservationsFromEpisodesToBatch", "AddStatesFromEpisodesToBatch", "AddTimeDimToBatchAndZeroPad",
    "AgentToModuleMapping", "BatchIndividualItems", "NumpyToTensor", "FlattenObservations",
})


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise MissingTool(f"--format onnx needs onnx and onnxruntime ({first_line(exc)}): "
                              f"{EXTRA}") from None
    return fmt


def check_connectors(runner) -> None:
    extra = [type(c).__name__ for c in runner._env_to_module.connectors
             if type(c).__name__ not in PLAIN_CONNECTORS]
    if extra:
        raise UserError(f"export cannot reproduce the run's env-to-module connectors {', '.join(extra)}")


def policy_module(rl_module, observation_space, action_space, normalize: bool, clip: bool):
    """The torch module of the exported file (see the module docstring)."""
    import gymnasium
    import torch
    from ray.rllib.core.columns import Columns

    dist_cls = rl_module.get_inference_action_dist_cls()
    if isinstance(observation_space, gymnasium.spaces.Discrete):
        sizes = [int(observation_space.n)]
    elif isinstance(observation_space, gymnasium.spaces.MultiDiscrete):
        sizes = [int(n) for n in observation_space.nvec.ravel()]
    elif isinstance(observation_space, gymnasium.spaces.Box):
        sizes = None
    else:
        raise UserError(f"export supports Box, Discrete and MultiDiscrete observations, not "
                        f"{type(observation_space).__name__}")
    box = isinstance(action_space, gymnasium.spaces.Box)
    low = torch.as_tensor(action_space.low if box else 0, dtype=torch.float32)
    high = torch.as_tensor(action_space.high if box else 0, dtype=torch.float32)
    bounded = box and bool(np.all(action_space.bounded_below) and np.all(action_space.bounded_above))

    class Policy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rl_module = rl_module
            self.register_buffer("low", low)
            self.register_buffer("high", high)

        def forward(self, obs):
            if sizes is None:
                x = obs.float()
            else:
                parts = obs.reshape(obs.shape[0], -1).long()
                x = torch.cat([torch.nn.functional.one_hot(parts[:, i], n).float()
                               for i, n in enumerate(sizes)], dim=1)
            out = self.rl_module.forward_inference({Columns.OBS: x})
            if Columns.ACTIONS in out:
                actions = out[Columns.ACTIONS]
            else:
                actions = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS]).to_deterministic().sample()
            if box and normalize and bounded:
                actions = self.low + (actions + 1.0) * (self.high - self.low) / 2.0
            if box and (normalize or clip):
                actions = torch.maximum(torch.minimum(actions, self.high), self.low)
            return actions

    return Policy().eval()


def observations_and_actions(source: restore.Source, seed: int) -> tuple:
    """The restored runner, and the observations it met with the actions it sent, playing greedily."""
    tape = restore.Tape(keep_steps=VERIFY_STEPS)
    settings = restore.eval_settings(source, {}, seed)
    runner = restore.restore_runner(source, settings, tape, explore=False)
    runner.sample(num_timesteps=VERIFY_STEPS, explore=False)
    if not tape.steps:
        raise UserError("export: the env gave no observation to verify the export on")
    obs = np.stack([np.asarray(o) for o, _ in tape.steps])
    actions = np.stack([np.asarray(a) for _, a in tape.steps])
    return runner, obs, actions


def write_file(policy, fmt: str, example, path: Path) -> None:
    import torch

    with torch.no_grad():
        if fmt == "torchscript":
            torch.jit.trace(policy, example, check_trace=False).save(str(path))
        else:
            torch.onnx.export(policy, (example,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["obs"], output_names=["actions"],
                              dynamic_axes={"obs": {0: "batch"}, "actions": {0: "batch"}})


def run_file(fmt: str, path: Path, obs: np.ndarray) -> np.ndarray:
    """The exported file's actions for `obs`, computed the way a user without Ray would."""
    if fmt == "torchscript":
        import torch

        with torch.no_grad():
            return torch.jit.load(str(path))(torch.as_tensor(obs)).numpy()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"obs": obs})[0]


def verify(fmt: str, path: Path, obs: np.ndarray, expected: np.ndarray, discrete: bool) -> float:
    """Refuse the file unless its actions are RLlib's; return the largest difference."""
    got = run_file(fmt, path, obs)
    if got.shape != expected.shape:
        got = got.reshape(expected.shape) if got.size == expected.size else got
    if got.shape != expected.shape:
        raise UserError(f"export verification failed: actions of shape {got.shape}, RLlib's are "
                        f"{expected.shape}")
    difference = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    worst = float(difference.max()) if difference.size else 0.0
    wrong = int((difference > (0 if discrete else TOLERANCE)).reshape(len(obs), -1).any(axis=1).sum())
    if wrong:
        raise UserError(f"export verification failed: {wrong} of {len(obs)} actions differ from "
                        f"RLlib's (largest difference {worst:.3g}); nothing written")
    return worst


def export(target: str | Path, fmt: str, out: str | Path) -> dict:
    """Export RUN_DIR's (or a checkpoint's) policy to `out`, verified; see the module docstring."""
    import gymnasium

    check_format(fmt)
    out = Path(out).expanduser()
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: the directory {out.parent} does not exist")
    if out.is_dir():
        raise UserError(f"-o {out} is a directory; give a file name such as policy{FORMATS[fmt]}")
    source = restore.locate(target, "export")
    if restore.policies_in(source.checkpoint):
        return export_policies(source, fmt, out)
    runner, obs, actions = observations_and_actions(source, seed=0)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        check_connectors(runner)
        observation_space = runner.env.single_observation_space
        action_space = runner.env.single_action_space
        policy = policy_module(runner.module, observation_space, action_space,
                               runner.config.normalize_actions, runner.config.clip_actions)
        box_obs = isinstance(observation_space, gymnasium.spaces.Box)
        obs = obs.astype(np.float32 if box_obs else np.int64)
        import torch

        write_file(policy, fmt, torch.as_tensor(obs[:1]), tmp)
        discrete = not isinstance(action_space, gymnasium.spaces.Box)
        worst = verify(fmt, tmp, obs, actions, discrete)
        os.replace(tmp, out)
    finally:
        runner.stop()
        tmp.unlink(missing_ok=True)
    return {"file": str(out), "format": fmt, "checkpoint": str(source.checkpoint),
            "verified_on": len(obs), "largest_difference": worst,
            "obs": f"[batch, {', '.join(map(str, obs.shape[1:]))}] {obs.dtype}".replace("[batch, ]",
                                                                                         "[batch]"),
            "actions": f"{'int64' if discrete else 'float32'} {tuple(action_space.shape)}"}


def policy_file(out: Path, policy_id: str) -> Path:
    """`-o policy.onnx` -> policy.POLICY.onnx beside it."""
    return out.with_name(f"{out.stem}.{policy_id}{out.suffix}")


def export_policies(source: restore.Source, fmt: str, out: Path) -> dict:
    """A multi-agent run: one verified file per policy (see the module docstring); files
    are kept only once every policy's file is verified."""
    import gymnasium
    import torch

    runner = restore.restore_runner(source, restore.eval_settings(source, {}, 0), restore.Tape())
    written: list[tuple[Path, Path]] = []
    files, worst = {}, 0.0
    try:
        check_connectors(runner)
        for policy_id in restore.policies_in(source.checkpoint):
            rl_module = runner.module[policy_id]
            obs_space, act_space = rl_module.observation_space, rl_module.action_space
            policy = policy_module(rl_module, obs_space, act_space, runner.config.normalize_actions,
                                   runner.config.clip_actions)
            obs_space.seed(0)
            box_obs = isinstance(obs_space, gymnasium.spaces.Box)
            obs = np.stack([np.asarray(obs_space.sample()) for _ in range(VERIFY_STEPS)])
            obs = obs.astype(np.float32 if box_obs else np.int64)
            with torch.no_grad():
                expected = policy(torch.as_tensor(obs)).numpy()
            path = policy_file(out, policy_id)
            tmp = path.with_name(f".{path.name}.partial")
            written.append((tmp, path))
            write_file(policy, fmt, torch.as_tensor(obs[:1]), tmp)
            discrete = not isinstance(act_space, gymnasium.spaces.Box)
            worst = max(worst, verify(fmt, tmp, obs, expected, discrete))
            files[policy_id] = str(path)
        for tmp, path in written:
            os.replace(tmp, path)
    finally:
        runner.stop()
        for tmp, _path in written:
            tmp.unlink(missing_ok=True)
    return {"files": files, "format": fmt, "checkpoint": str(source.checkpoint),
            "verified_on": VERIFY_STEPS, "largest_difference": worst}
