"""Commands that use what a run trained: evaluate (and film) it, export its policy.

Each command parses its options, calls one function of the results side and prints
what it returns; Ray, torch and the encoders are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from launcher.cli import options as opt

app = typer.Typer()
# launcher/results/export.py's FORMATS, named here without importing numpy for --help
# (tests/test_cli_help.py checks that they agree).
EXPORT_FORMATS = ("onnx", "torchscript")

Target = Annotated[Path, typer.Argument(
    metavar="RUN_DIR|CHECKPOINT",
    help="A run directory (its best checkpoint, else its newest) or one of its checkpoints.")]


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def evaluate(
    target: Target,
    episodes: Annotated[int, typer.Option(
        "--episodes", "-n", metavar="N", help="Episodes to play.")] = 10,
    seed: Annotated[int | None, typer.Option(
        "--seed", metavar="N", help="Seed of the env resets.",
        show_default="chosen, and recorded")] = None,
    explore: Annotated[bool, typer.Option(
        "--explore", help="Sample actions as in training instead of the greedy ones.")] = False,
    env_config: Annotated[list[str] | None, typer.Option(
        "--env-config", metavar="KEY=VALUE",
        help="Env constructor argument over the run's own (repeatable), e.g. "
             "max_episode_steps=1000.")] = None,
    video: Annotated[Path | None, typer.Option(
        "--video", metavar="DIR", help="Write an MP4 (and a PNG strip) per episode into DIR; "
                                       "the first episode also as a GIF.")] = None,
) -> None:
    """Play a trained policy greedily for N episodes; print and record (eval.json) its return."""
    from launcher.contract import EVAL_FILE as EVAL_JSON
    from launcher.results.evaluate import evaluate as run_evaluation

    result = run_evaluation(target, episodes=episodes, seed=seed, explore=explore,
                            env_config=env_config, video_dir=video)
    typer.echo(f"checkpoint: {result.checkpoint}"
               + (f" (iteration {result.iteration})" if result.iteration else ""))
    typer.echo(result.summary())
    for path in result.videos:
        typer.echo(f"video:      {path}")
    typer.echo(f"wrote {Path(result.run_dir) / EVAL_JSON}")


@app.command(rich_help_panel=opt.TRAIN_AND_INSPECT)
def export(
    target: Target,
    fmt: Annotated[str, typer.Option(
        "--format", **opt.choices(EXPORT_FORMATS, "format", "--format"),
        help="onnx, or torchscript (a .pt file).")] = "onnx",
    out: Annotated[Path, typer.Option(
        "--output", "--out", "-o", metavar="FILE", help="File to write (policy.onnx, policy.pt).")] = Path(
        "policy.onnx"),
) -> None:
    """Write the policy, with its observation preprocessing, as one file that runs without Ray.

    A multi-agent run: one file per policy, `-o policy.onnx` giving policy.POLICY.onnx."""
    from launcher.results.export import export as run_export

    done = run_export(target, fmt, out)
    typer.echo(f"checkpoint: {done['checkpoint']}")
    if "files" in done:  # a multi-agent run: a file per policy
        for policy_id, file in done["files"].items():
            typer.echo(f"wrote {file} ({done['format']}): policy {policy_id}")
        typer.echo(f"verified on {done['verified_on']} observations per policy: actions match "
                   f"its RLModule's (largest difference {done['largest_difference']:.2g})")
        return
    typer.echo(f"wrote {done['file']} ({done['format']}): obs {done['obs']} -> actions "
               f"{done['actions']}")
    typer.echo(f"verified on {done['verified_on']} env observations: actions match RLlib's "
               f"(largest difference {done['largest_difference']:.2g})")
