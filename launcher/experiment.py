"""Read an experiment file (`--config` / `-f`) into TrainSettings fields.

Accepted shapes:
  * the launcher's own: top-level TrainSettings keys (algo, env, stop, config, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launcher.errors import UserError
from launcher.settings import read_yaml


def translate_config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """RLlib config keys as users write them -> current AlgorithmConfig keys."""
    return dict(config)


def load_experiment(path: str | Path) -> dict[str, Any]:
    """Parse an experiment file into a (partial) TrainSettings dict."""
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    data = dict(data)
    if "config" in data:
        data["config"] = translate_config(data["config"] or {}, where=str(path))
    return data
