"""Commands that check this machine and the trainer images: doctor.

The command parses its options, calls the cluster side's checks, and prints what
they found.
"""

from __future__ import annotations

from typing import Annotated

import typer

from launcher.cli import options as opt
from launcher.cluster.doctor import MODES

app = typer.Typer()


@app.command(rich_help_panel=opt.IMAGES_AND_CHECKS)
def doctor(
    modes: Annotated[list[str] | None, typer.Option(
        "--for", **opt.choices(MODES, "mode", "--for"),
        help="Mode to be ready for (repeatable).")] = None,
    image: Annotated[str, typer.Option(
        "--image", metavar="IMAGE", help="Trainer image to look for.")] = "launcher:cpu",
) -> None:
    """Check what this machine offers and say what to do about each missing piece.

    Checks: Ray, /dev/shm size (train); Docker engine, the image, Ray inside the image
    equal to this launcher's (local); sbatch (slurm); apptainer (apptainer); GPUs via
    nvidia-smi / torch (gpu). Exit status 1 only when a check needed by a mode given
    with --for failed; without --for, only `train`'s needs count. Everything else is
    shown as information.
    """
    from launcher.cluster import doctor as doc

    results = doc.run_checks(image, say=typer.echo)
    missing = doc.ready_modes(results)
    ready = [m for m in doc.MODES if not missing[m]]
    typer.echo(f"ready for: {', '.join(ready) or 'nothing'}")
    for mode in doc.MODES:
        if missing[mode]:
            typer.echo(f"not ready for {mode}: missing {', '.join(missing[mode])}")
    raise typer.Exit(doc.exit_status(results, list(modes or [])))
